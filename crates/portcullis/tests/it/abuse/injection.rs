//! SQL and LDAP injection strings in every user-controlled field that reaches a query: user
//! name and password (token endpoint and legacy JSON login), email, client id and secret,
//! refresh token, state, scope, redirect URI, provider name in paths, the login-record user
//! path, the TokenReview token; on SQLite and PostgreSQL. Then LDAP filter metacharacters
//! against the real slapd (the LDAP provider's unit tests check the escaping; this checks the
//! server). No answer is a 5xx, nothing signs in, and no data changes.

use portcullis_test_support::Server;
use portcullis_test_upstreams::peers::ldap::Slapd;
use serde_json::Value;

use crate::common::*;
use crate::federation::user_names;

const SQL: &[&str] = &[
    "' OR '1'='1",
    "' OR 1=1 --",
    "admin'--",
    "admin' #",
    "admin')--",
    "\" OR \"\"=\"",
    "'; DROP TABLE users; --",
    "'; UPDATE users SET password_hash=NULL; --",
    "1; SELECT pg_sleep(5)--",
    "' UNION SELECT NULL,NULL,NULL--",
    "%' OR name LIKE '%",
    "alice'/*",
    "\\' OR 1=1 -- ",
    "alice\u{0}",
    "admin\u{2019} OR 1=1 --",
];

const LDAP: &[&str] = &[
    "*",
    "*)(uid=*",
    "*)(|(uid=*",
    "alice)(|(objectClass=*))",
    "alice*",
    "a*e",
    "\\2a",
    "admin)(&)",
    "*()|&'",
    "alice\\00",
    "alice)(uid=bob",
];

on_both_backends!(sql_injection_strings_change_nothing);

async fn get_status(server: &Server, path: &str) -> u16 {
    http()
        .get(server.url(path))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The password grant as the configured client `app` (with clients configured, the token
/// endpoint wants the client's credentials, as KubeSphere 3.2 does).
async fn app_login(
    server: &Server,
    user: &str,
    password: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    token(
        server,
        &[
            ("grant_type", "password"),
            ("username", user),
            ("password", password),
            ("client_id", "app"),
            ("client_secret", "app-secret"),
        ],
    )
    .await
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn sql_injection_strings_change_nothing(pg: bool) {
    let b = backend(pg).await;
    let text = format!(
        "{}    clients:\n    - name: app\n      secret: app-secret\n      redirectURIs: [\"http://127.0.0.1:5555/cb\"]\nportcullis:\n  ipMaxFailures: 100000\n",
        config(true).replace(
            "authenticateRateLimiterMaxTries: 3",
            "authenticateRateLimiterMaxTries: 100"
        )
    );
    let server = start(Some(text), &b);
    // An email that is itself an injection string is a valid address, stored as written.
    add_user(
        &server,
        &[
            "alice",
            "--password",
            "alice-Passw0rd",
            "--email",
            "x'or'1'='1@example.com",
        ],
    );
    let (_, _, body) = app_login(&server, "admin", ADMIN_PASSWORD).await;
    let admin = body["access_token"].as_str().unwrap().to_owned();
    let users_before = user_names(&server);

    for s in SQL {
        for (user, password) in [
            (*s, *s),
            (*s, "alice-Passw0rd"),
            ("alice", *s),
            ("admin", *s),
        ] {
            let (status, _, body) = app_login(&server, user, password).await;
            assert_eq!(status, 400, "{user:?}/{password:?}: {body}");
            let resp = http()
                .post(server.url("/kapis/iam.kubesphere.io/v1alpha2/login"))
                .json(&serde_json::json!({"username": user, "password": password}))
                .send()
                .await
                .unwrap();
            assert!(
                resp.status().is_client_error(),
                "legacy {user:?}: {}",
                resp.status()
            );
        }
        // Client credentials, refresh tokens, TokenReview.
        let (status, _, _) = token(
            &server,
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "alice-Passw0rd"),
                ("client_id", s),
                ("client_secret", s),
            ],
        )
        .await;
        assert!(matches!(status, 400 | 401), "client_id {s:?}: {status}");
        let resp = http()
            .post(server.url("/oauth/token"))
            .basic_auth(s, Some(s))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", s)])
            .send()
            .await
            .unwrap();
        assert!(
            resp.status().is_client_error(),
            "basic {s:?}: {}",
            resp.status()
        );
        let (status, _, _) = token(
            &server,
            &[("grant_type", "refresh_token"), ("refresh_token", s)],
        )
        .await;
        // No client credentials with clients configured: 401 before the token is even read.
        assert!(matches!(status, 400 | 401), "refresh {s:?}: {status}");
        assert!(!is_authenticated(&server, s).await);
        // Query parameters and path segments.
        let e = enc(s);
        for path in [
            format!(
                "/oauth/authorize?response_type=code&client_id={e}&redirect_uri={e}&state={e}&scope={e}"
            ),
            format!(
                "/oauth/authorize?response_type=code&client_id=app&redirect_uri=http%3A%2F%2F127.0.0.1%3A5555%2Fcb&state={e}&scope={e}&code_challenge={e}&code_challenge_method=S256"
            ),
            format!("/oauth/logout?post_logout_redirect_uri={e}&state={e}&client_id={e}"),
            format!("/login/{}", e.replace('+', "%20")),
            format!(
                "/oauth/callback/{}?code={e}&state={e}",
                e.replace('+', "%20")
            ),
            format!("/login?return_to={e}&lang={e}&notice={e}"),
        ] {
            let status = get_status(&server, &path).await;
            assert!(status < 500, "{path}: {status}");
        }
        let records = format!(
            "/kapis/iam.kubesphere.io/v1alpha2/users/{}/loginrecords",
            e.replace('+', "%20")
        );
        let resp = http()
            .get(server.url(&records))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        assert!(status < 500, "{records}: {status}");
        if status == 200 {
            // Failed attempts are recorded under the name tried, even an unknown one (so a
            // record reveals nothing about accounts): only failures, never a success.
            let list: Value = resp.json().await.unwrap();
            for item in list["items"].as_array().unwrap() {
                assert_eq!(item["spec"]["success"], false, "{records}: {list}");
            }
        }
    }

    // Nothing changed: the same users, the real passwords still work, the email as written.
    assert_eq!(user_names(&server), users_before);
    assert_eq!(app_login(&server, "alice", "alice-Passw0rd").await.0, 200);
    assert_eq!(
        app_login(&server, "x'or'1'='1@example.com", "alice-Passw0rd")
            .await
            .0,
        200
    );
    assert_eq!(app_login(&server, "admin", ADMIN_PASSWORD).await.0, 200);
    let logs = server.logs();
    assert!(!logs.contains("panicked"), "{logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ldap_filter_injection_finds_nobody() {
    let slapd = Slapd::start()
        .await
        .expect("slapd starts (run crates/test-upstreams/peers/ci-install.sh)");
    let b = backend(false).await;
    let text = format!(
        "{}portcullis:\n  ipMaxFailures: 100000\n",
        crate::ldap_login::ldap_config(&slapd.host_port()).replace(
            "authenticateRateLimiterMaxTries: 3",
            "authenticateRateLimiterMaxTries: 100"
        )
    );
    let server = start(Some(text), &b);
    let users_before = user_names(&server);
    for s in LDAP.iter().chain(SQL) {
        // Up to the per-name limit of 3: a wildcard name with alice's password, with a
        // wildcard password, and with a wrong one. None may find and bind anyone.
        for password in ["alicepw", "*", "wrong"] {
            let (status, _, body) = password_login(&server, s, password).await;
            assert_eq!(status, 400, "{s:?}/{password:?}: {body}");
        }
    }
    for s in LDAP {
        let (status, _, body) = password_login(&server, "alice", s).await;
        assert_eq!(status, 400, "alice/{s:?}: {body}");
    }
    assert_eq!(
        user_names(&server),
        users_before,
        "no LDAP user was created"
    );
    // The real user still logs in (auto mapping creates exactly that one user).
    let (status, _, body) = password_login(&server, "alice", "alicepw").await;
    assert_eq!(status, 200, "{body}");
    let mut expected = users_before;
    expected.push("alice".to_owned());
    expected.sort();
    let mut now = user_names(&server);
    now.sort();
    assert_eq!(now, expected);
}

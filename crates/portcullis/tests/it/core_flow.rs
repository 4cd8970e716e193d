//! The core flow of issue 2, run once on SQLite and once on PostgreSQL: password grant,
//! refresh, TokenReview, logout, multipleLogin, lockout and recovery, disabled users, login
//! records.

use std::time::Duration;

use portcullis_test_support::eventually;
use serde_json::Value;

use crate::common::*;

on_both_backends!(
    password_refresh_review_logout,
    multiple_login_false_revokes_older_session,
    lockout_then_recovery,
    disabled_user_is_refused_everywhere,
    login_records_are_listed,
    refresh_token_reuse_revokes_the_session,
);

async fn password_refresh_review_logout(pg: bool) {
    let b = backend(pg).await;
    let server = start(Some(config(true)), &b);
    add_user(
        &server,
        &[
            "alice",
            "--password",
            "alice-Passw0rd",
            "--email",
            "alice@example.com",
            "--groups",
            "devs,ops",
        ],
    );

    let (status, headers, body) = password_login(&server, "alice", "alice-Passw0rd").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(headers["cache-control"], "no-store");
    let access = body["access_token"].as_str().unwrap().to_string();
    let refresh = body["refresh_token"].as_str().unwrap().to_string();

    // Login by email works too, as in KubeSphere.
    let (status, _, _) = password_login(&server, "alice@example.com", "alice-Passw0rd").await;
    assert_eq!(status, 200);

    // TokenReview: good token with groups; garbage and refresh tokens refused with 200.
    let st = review(&server, &access).await;
    assert_eq!(st["authenticated"], true, "{st}");
    assert_eq!(st["user"]["username"], "alice");
    assert_eq!(st["user"]["groups"], serde_json::json!(["devs", "ops"]));
    assert!(!st["user"]["uid"].as_str().unwrap().is_empty());
    assert_eq!(review(&server, "garbage").await["authenticated"], false);
    let st = review(&server, &refresh).await;
    assert_eq!(
        st["authenticated"], false,
        "a refresh token is not an access token"
    );
    assert!(st["error"].as_str().unwrap().contains("wrong token type"));

    // v1beta1 is accepted and echoed.
    let resp = http()
        .post(server.url("/oauth/authenticate"))
        .json(&serde_json::json!({"apiVersion": "authentication.k8s.io/v1beta1", "kind": "TokenReview", "spec": {"token": access}}))
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["apiVersion"], "authentication.k8s.io/v1beta1");
    assert_eq!(v["status"]["authenticated"], true);

    // Refresh: a new pair, and the access token is refused where a refresh token is expected.
    let (status, _, body) = token(
        &server,
        &[("grant_type", "refresh_token"), ("refresh_token", &access)],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    let (status, _, body) = token(
        &server,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let access2 = body["access_token"].as_str().unwrap().to_string();
    assert!(is_authenticated(&server, &access2).await);

    // Logout revokes the presented session: both its access tokens are refused afterwards.
    let resp = http()
        .get(server.url("/oauth/logout"))
        .bearer_auth(&access2)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["message"], "success");
    let st = review(&server, &access2).await;
    assert_eq!(st["authenticated"], false);
    assert_eq!(st["error"], "token has been revoked");
    assert!(
        !is_authenticated(&server, &access).await,
        "same session, also revoked"
    );

    // Logout redirects only to registered URIs.
    let resp = http()
        .get(server.url("/oauth/logout?post_logout_redirect_uri=https://evil.example/"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let own = format!("{}/done", server.base);
    let resp = http()
        .get(server.url("/oauth/logout"))
        .query(&[("post_logout_redirect_uri", own.as_str()), ("state", "xyz")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(
        resp.headers()["location"].to_str().unwrap(),
        format!("{own}?state=xyz")
    );

    // Bad inputs: clear 4xx, never 500.
    let (status, _, body) = token(&server, &[("grant_type", "magic")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let (status, _, body) = token(
        &server,
        &[("grant_type", "password"), ("username", "alice")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let resp = http()
        .post(server.url("/oauth/token"))
        .body("grant_type=password")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "missing form content type");
    let big = "x".repeat(200_000);
    let resp = http()
        .post(server.url("/oauth/token"))
        .form(&[("grant_type", big.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let resp = http()
        .post(server.url("/oauth/authenticate"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = http().get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let resp = http().get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let metrics = http()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("portcullis_logins_total"), "{metrics}");

    // No secret or token in the logs.
    let logs = server.logs();
    assert!(
        !logs.contains(SECRET) && !logs.contains("alice-Passw0rd") && !logs.contains(&access),
        "{logs}"
    );

    // A token Portcullis issues is accepted by an independent JWT library given only the secret.
    let key = jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.validate_aud = false;
    let data = jsonwebtoken::decode::<Value>(&access2, &key, &validation)
        .expect("verifies with the shared secret");
    assert_eq!(data.claims["username"], "alice");
    assert_eq!(data.claims["sub"], "alice");
    assert_eq!(data.claims["token_type"], "access_token");
    assert_eq!(data.claims["extra"]["email"][0], "alice@example.com");
}

async fn multiple_login_false_revokes_older_session(pg: bool) {
    let b = backend(pg).await;
    let server = start(Some(config(false)), &b);
    add_user(&server, &["bob", "--password", "bob-Passw0rd!"]);
    let (_, _, first) = password_login(&server, "bob", "bob-Passw0rd!").await;
    let first = first["access_token"].as_str().unwrap().to_string();
    assert!(is_authenticated(&server, &first).await);
    let (_, _, second) = password_login(&server, "bob", "bob-Passw0rd!").await;
    let second = second["access_token"].as_str().unwrap().to_string();
    assert!(is_authenticated(&server, &second).await);
    assert!(
        !is_authenticated(&server, &first).await,
        "the older session is revoked"
    );
}

async fn lockout_then_recovery(pg: bool) {
    let b = backend(pg).await;
    let mut server = start(Some(config(true)), &b);
    add_user(&server, &["carol", "--password", "carol-Passw0rd"]);
    for i in 0..3 {
        let (status, _, body) = password_login(&server, "carol", "wrong").await;
        assert_eq!(status, 400, "attempt {i}: {body}");
        assert_eq!(body["error_description"], "incorrect username or password");
    }
    // Locked: even the right password gets 429 with Retry-After.
    let (status, headers, body) = password_login(&server, "carol", "carol-Passw0rd").await;
    assert_eq!(status, 429, "{body}");
    let retry: i64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=600).contains(&retry), "{retry}");

    // An unknown user gets exactly the same answers, lockout included (no enumeration).
    for _ in 0..3 {
        let (status, _, body) = password_login(&server, "nobody", "wrong").await;
        assert_eq!(
            (status, body["error_description"].as_str()),
            (400, Some("incorrect username or password"))
        );
    }
    let (status, _, _) = password_login(&server, "nobody", "wrong").await;
    assert_eq!(status, 429);

    // After the window the account works again.
    server.advance_clock(Duration::from_secs(601)).unwrap();
    eventually(Duration::from_secs(10), "lock expires", || async {
        let (status, _, _) = password_login(&server, "carol", "carol-Passw0rd").await;
        (status == 200).then_some(())
    })
    .await
    .unwrap();
}

async fn disabled_user_is_refused_everywhere(pg: bool) {
    let b = backend(pg).await;
    let server = start(Some(config(true)), &b);
    add_user(&server, &["dave", "--password", "dave-Passw0rd"]);
    let (_, _, body) = password_login(&server, "dave", "dave-Passw0rd").await;
    let access = body["access_token"].as_str().unwrap().to_string();
    let refresh = body["refresh_token"].as_str().unwrap().to_string();
    assert!(is_authenticated(&server, &access).await);

    // Disabled with the CLI while the server runs: the running server notices within seconds.
    let out = server.cli(&["user", "disable", "dave"]).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually(
        Duration::from_secs(10),
        "token of disabled user refused",
        || async { (!is_authenticated(&server, &access).await).then_some(()) },
    )
    .await
    .unwrap();
    let (status, _, body) = password_login(&server, "dave", "dave-Passw0rd").await;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (400, Some("account is disabled"))
    );
    let (status, _, _) = password_login(&server, "dave", "wrong-password").await;
    assert_eq!(status, 400);
    let (status, _, _) = token(
        &server,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(status, 400);

    // Enabled again: logs in; a password change with the CLI revokes the new session.
    assert!(
        server
            .cli(&["user", "enable", "dave"])
            .unwrap()
            .status
            .success()
    );
    let (status, _, body) = password_login(&server, "dave", "dave-Passw0rd").await;
    assert_eq!(status, 200);
    let access = body["access_token"].as_str().unwrap().to_string();
    let out = server
        .cli(&["user", "passwd", "dave", "--password", "dave-NewPassw0rd"])
        .unwrap();
    assert!(out.status.success());
    eventually(
        Duration::from_secs(10),
        "token revoked after password change",
        || async { (!is_authenticated(&server, &access).await).then_some(()) },
    )
    .await
    .unwrap();
    assert_eq!(
        password_login(&server, "dave", "dave-NewPassw0rd").await.0,
        200
    );

    // Deleted: tokens refused, login refused.
    let (_, _, body) = password_login(&server, "dave", "dave-NewPassw0rd").await;
    let access = body["access_token"].as_str().unwrap().to_string();
    assert!(
        server
            .cli(&["user", "delete", "dave"])
            .unwrap()
            .status
            .success()
    );
    eventually(
        Duration::from_secs(10),
        "token revoked after deletion",
        || async { (!is_authenticated(&server, &access).await).then_some(()) },
    )
    .await
    .unwrap();
    assert_eq!(
        password_login(&server, "dave", "dave-NewPassw0rd").await.0,
        400
    );
}

async fn login_records_are_listed(pg: bool) {
    let b = backend(pg).await;
    let server = start(Some(config(true)), &b);
    add_user(&server, &["erin", "--password", "erin-Passw0rd"]);
    add_user(&server, &["frank", "--password", "frank-Passw0rd"]);
    assert_eq!(password_login(&server, "erin", "bad").await.0, 400);
    let (_, _, body) = password_login(&server, "erin", "erin-Passw0rd").await;
    let erin = body["access_token"].as_str().unwrap().to_string();
    let url = server.url("/kapis/iam.kubesphere.io/v1alpha2/users/erin/loginrecords");
    let resp = http()
        .get(&url)
        .header("User-Agent", "it-test")
        .bearer_auth(&erin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["totalItems"], 2, "{v}");
    let newest = &v["items"][0];
    assert_eq!(newest["kind"], "LoginRecord");
    assert_eq!(newest["spec"]["success"], true);
    assert_eq!(newest["spec"]["reason"], "authenticated successfully");
    assert_eq!(newest["spec"]["type"], "Token");
    assert_eq!(newest["spec"]["sourceIP"], "127.0.0.1");
    assert_eq!(
        newest["metadata"]["labels"]["iam.kubesphere.io/user-ref"],
        "erin"
    );
    assert_eq!(v["items"][1]["spec"]["success"], false);
    assert_eq!(v["items"][1]["spec"]["reason"], "incorrect password");

    // Unauthenticated: 401 Status; another user's records: 403; an admin may read them.
    let resp = http().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.json::<Value>().await.unwrap()["kind"], "Status");
    let (_, _, body) = password_login(&server, "frank", "frank-Passw0rd").await;
    let frank = body["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        http()
            .get(&url)
            .bearer_auth(&frank)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let (_, _, body) = password_login(&server, "admin", ADMIN_PASSWORD).await;
    let admin = body["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        http()
            .get(&url)
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let resp = http()
        .get(format!("{url}?limit=0"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    // The legacy JSON login answers the same token JSON.
    let resp = http()
        .post(server.url("/kapis/iam.kubesphere.io/v1alpha2/login"))
        .json(&serde_json::json!({"username": "erin", "password": "erin-Passw0rd"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.json::<Value>().await.unwrap()["access_token"].is_string());
}

async fn refresh_token_reuse_revokes_the_session(pg: bool) {
    let b = backend(pg).await;
    let server = start(Some(config(true)), &b);
    add_user(&server, &["gina", "--password", "gina-Passw0rd"]);
    let (_, _, body) = password_login(&server, "gina", "gina-Passw0rd").await;
    let refresh1 = body["refresh_token"].as_str().unwrap().to_string();
    let (status, _, body) = token(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh1),
        ],
    )
    .await;
    assert_eq!(status, 200);
    let access2 = body["access_token"].as_str().unwrap().to_string();
    // Replaying the used refresh token is refused and kills the session.
    let (status, _, body) = token(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh1),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{body}"
    );
    assert!(!is_authenticated(&server, &access2).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn inactivity_timeout_ends_idle_sessions_but_not_used_ones() {
    let b = backend(false).await;
    let mut server = start(Some(config(true)), &b);
    add_user(&server, &["hank", "--password", "hank-Passw0rd"]);
    let (_, _, body) = password_login(&server, "hank", "hank-Passw0rd").await;
    let busy = body["access_token"].as_str().unwrap().to_string();
    let (_, _, body) = password_login(&server, "hank", "hank-Passw0rd").await;
    let idle = body["access_token"].as_str().unwrap().to_string();
    let idle_refresh = body["refresh_token"].as_str().unwrap().to_string();
    assert!(is_authenticated(&server, &busy).await && is_authenticated(&server, &idle).await);

    // 20 minutes, the busy session is used; 20 more: it is still live (40 > 30 minutes in all),
    // while the idle one, unused for 40 minutes, is refused, for access and refresh alike.
    server.advance_clock(Duration::from_secs(20 * 60)).unwrap();
    eventually(Duration::from_secs(10), "clock moved", || async {
        let st = review(&server, &busy).await;
        (st["authenticated"] == true).then_some(())
    })
    .await
    .unwrap();
    server.advance_clock(Duration::from_secs(20 * 60)).unwrap();
    eventually(Duration::from_secs(10), "idle session refused", || async {
        let st = review(&server, &idle).await;
        (st["error"] == "session expired after inactivity").then_some(())
    })
    .await
    .unwrap();
    assert!(is_authenticated(&server, &busy).await);
    let (status, _, body) = token(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &idle_refresh),
        ],
    )
    .await;
    assert_eq!(status, 400, "{body}");
}

/// PyJWT, a library nobody on the team wrote, accepts Portcullis' token given only the secret.
#[tokio::test(flavor = "multi_thread")]
async fn pyjwt_accepts_the_token_with_only_the_secret() {
    let b = backend(false).await;
    let server = start(Some(config(true)), &b);
    let (_, _, body) = password_login(&server, "admin", ADMIN_PASSWORD).await;
    let access = body["access_token"].as_str().unwrap();
    let script = "import sys, jwt\nc = jwt.decode(sys.argv[1], sys.argv[2], algorithms=['HS256'])\nprint(c['username'], c['token_type'])";
    let out = std::process::Command::new("python3")
        .args(["-c", script, access, SECRET])
        .output()
        .expect("python3 must be installed");
    assert!(
        out.status.success(),
        "PyJWT refused the token (is PyJWT installed? .ci/run installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "admin access_token"
    );
}

//! Two servers on one PostgreSQL database (and one Redis) behave as one: a token issued by one
//! is verified by the other, a logout on one is refused on the other, and the lockout counter is
//! shared.

use std::time::Duration;

use portcullis_test_support::{Backend, Server, ServerOptions, eventually};

use crate::common::*;

fn start_replica(db: &str, redis_db: u32) -> Server {
    let mut opts = ServerOptions::new(bin(), Some(config(true)));
    opts.backend = Backend::Postgres(db.to_string());
    opts.env
        .push(("PORTCULLIS_ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into()));
    opts.env.push((
        "PORTCULLIS_REDIS".into(),
        format!("redis://127.0.0.1:6379/{redis_db}"),
    ));
    Server::start(opts).expect("replica starts")
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_share_tokens_revocations_and_lockout() {
    let pg = portcullis_test_support::PgDatabase::create().await.unwrap();
    let a = start_replica(&pg.url, 5);
    let b = start_replica(&pg.url, 5);
    add_user(&a, &["lena", "--password", "lena-Passw0rd"]);

    let (status, _, body) = password_login(&a, "lena", "lena-Passw0rd").await;
    assert_eq!(status, 200);
    let access = body["access_token"].as_str().unwrap().to_string();
    let refresh = body["refresh_token"].as_str().unwrap().to_string();
    assert!(
        is_authenticated(&b, &access).await,
        "issued on A, verified on B"
    );

    // Refresh on B, then the old refresh token replayed on A is detected as reuse.
    let (status, _, body) = token(
        &b,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let access2 = body["access_token"].as_str().unwrap().to_string();
    let (status, _, _) = token(
        &a,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(status, 400);
    eventually(
        Duration::from_secs(5),
        "reuse on A revokes the session on B",
        || async { (!is_authenticated(&b, &access2).await).then_some(()) },
    )
    .await
    .unwrap();

    // Logout on B is refused on A.
    let (_, _, body) = password_login(&a, "lena", "lena-Passw0rd").await;
    let access3 = body["access_token"].as_str().unwrap().to_string();
    assert!(is_authenticated(&b, &access3).await);
    http()
        .get(b.url("/oauth/logout"))
        .bearer_auth(&access3)
        .send()
        .await
        .unwrap();
    eventually(Duration::from_secs(5), "logout on B seen on A", || async {
        (!is_authenticated(&a, &access3).await).then_some(())
    })
    .await
    .unwrap();

    // Three failures spread over both replicas lock the account on both.
    assert_eq!(password_login(&a, "lena", "wrong").await.0, 400);
    assert_eq!(password_login(&b, "lena", "wrong").await.0, 400);
    assert_eq!(password_login(&a, "lena", "wrong").await.0, 400);
    assert_eq!(password_login(&b, "lena", "lena-Passw0rd").await.0, 429);
    assert_eq!(password_login(&a, "lena", "lena-Passw0rd").await.0, 429);
}

/// Concurrent guesses cannot exceed the limit: 12 parallel wrong passwords with a limit of 3
/// produce exactly 3 "incorrect" answers and 9 lockouts.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_guesses_never_exceed_the_limit() {
    let b = backend(true).await;
    let server = start(Some(config(true)), &b);
    add_user(&server, &["mona", "--password", "mona-Passw0rd"]);
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let url = server.url("/oauth/token");
        tasks.push(tokio::spawn(async move {
            http()
                .post(url)
                .form(&[
                    ("grant_type", "password"),
                    ("username", "mona"),
                    ("password", "wrong"),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 400).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        9,
        "{statuses:?}"
    );
}

/// Correct logins of one account at once, four times the lockout limit: each waits for a slot
/// that an attempt in flight holds, and all get in; nothing is locked or counted as a failure.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_correct_logins_beyond_the_limit_all_succeed() {
    let b = backend(true).await;
    let server = start(Some(config(true)), &b);
    add_user(&server, &["nora", "--password", "nora-Passw0rd"]);
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let url = server.url("/oauth/token");
        tasks.push(tokio::spawn(async move {
            let form = [
                ("grant_type", "password"),
                ("username", "nora"),
                ("password", "nora-Passw0rd"),
            ];
            let resp = http().post(url).form(&form).send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }));
    }
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 200, "{body}");
    }
    // No failure was counted: three wrong passwords still lock, not fewer.
    for expected in [400, 400, 400, 429] {
        let (status, _, body) = password_login(&server, "nora", "wrong").await;
        assert_eq!(status, expected, "{body}");
    }
}

/// Logins whose client goes away while the password is checked give their lockout slots back:
/// eight such attempts against a limit of three, the clients gone while attempts hold the
/// account's slots, leave the account usable with no failure counted (before, each cancelled
/// attempt kept its slot for the whole window, and the account answered 429).
#[tokio::test(flavor = "multi_thread")]
async fn abandoned_logins_give_their_lockout_slots_back() {
    use tokio::io::AsyncWriteExt;
    let b = backend(true).await;
    let Backend::Postgres(db_url) = b.backend.clone() else {
        unreachable!("backend(true) is PostgreSQL")
    };
    let server = start(Some(config(true)), &b);
    add_user(&server, &["olga", "--password", "olga-Passw0rd"]);
    let db = sqlx::PgPool::connect(&db_url).await.unwrap();
    let addr = server.base.trim_start_matches("http://").to_owned();
    let body = "grant_type=password&username=olga&password=olga-Passw0rd";
    let request = format!(
        "POST /oauth/token HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut sockets = Vec::new();
    for _ in 0..8 {
        let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
        socket.write_all(request.as_bytes()).await.unwrap();
        sockets.push(socket);
    }
    // Attempts hold slots (reserved, the hash not yet done): now the clients go away.
    eventually(Duration::from_secs(20), "attempts in flight", || async {
        let held: Option<i64> =
            sqlx::query_scalar("SELECT failures FROM lockouts WHERE lock_key = 'user:olga'")
                .fetch_optional(&db)
                .await
                .unwrap();
        held.is_some_and(|n| n > 0).then_some(())
    })
    .await
    .unwrap();
    drop(sockets);
    let (status, _, body) = password_login(&server, "olga", "olga-Passw0rd").await;
    assert_eq!(status, 200, "{body}");
    for expected in [400, 400, 400, 429] {
        let (status, _, body) = password_login(&server, "olga", "wrong").await;
        assert_eq!(status, expected, "{body}");
    }
}

/// The standard test configuration with a different access-token lifetime and, optionally, an
/// identity-provider list (YAML lines under `identityProviders:`).
fn config_with(max_age: &str, providers: &str) -> String {
    let base = config(true).replace(
        "accessTokenMaxAge: 1h",
        &format!("accessTokenMaxAge: {max_age}"),
    );
    if providers.is_empty() {
        base
    } else {
        format!("{base}    identityProviders:\n{providers}")
    }
}

const GITHUB_ENTRY: &str = r#"    - name: github
      type: GitHubIdentityProvider
      mappingMethod: auto
      provider:
        clientID: "replica-client"
        clientSecret: "replica-client-secret"
        endpoint:
          authURL: "http://127.0.0.1:9/login/oauth/authorize"
          tokenURL: "http://127.0.0.1:9/login/oauth/access_token"
          userInfoURL: "http://127.0.0.1:9/api/user"
"#;

/// The public OAuth configuration a replica serves.
async fn oauth_config(server: &Server) -> serde_json::Value {
    http()
        .get(server.url("/kapis/config.kubesphere.io/v1alpha2/configs/oauth"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Writes the file the way a ConfigMap update or an editor does: a new file renamed over it.
fn replace_config(server: &Server, text: &str) {
    let tmp = server.config.with_extension("yaml.new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &server.config).unwrap();
}

const TWO_HOURS_NS: f64 = 7_200_000_000_000.0;

/// Issue 7: three `portcullis serve` on one PostgreSQL database and one Redis behave as one
/// server, and pick up configuration changes from their files without a restart, rejecting a bad
/// one while the old one keeps serving.
#[tokio::test(flavor = "multi_thread")]
async fn three_replicas_behave_as_one_and_reload_their_config() {
    let pg = portcullis_test_support::PgDatabase::create().await.unwrap();
    let replicas = [
        start_replica(&pg.url, 6),
        start_replica(&pg.url, 6),
        start_replica(&pg.url, 6),
    ];
    let [a, b, c] = &replicas;
    add_user(a, &["nora", "--password", "nora-Passw0rd"]);

    // A token issued by A is verified by B and C.
    let (status, _, body) = password_login(a, "nora", "nora-Passw0rd").await;
    assert_eq!(status, 200, "{body}");
    let first = body["access_token"].as_str().unwrap().to_string();
    assert_eq!(body["expires_in"], 3600);
    for r in [b, c] {
        assert!(
            is_authenticated(r, &first).await,
            "issued on A, verified on {}",
            r.base
        );
    }

    // A logout on B is refused on A (and C).
    let (_, _, body) = password_login(a, "nora", "nora-Passw0rd").await;
    let second = body["access_token"].as_str().unwrap().to_string();
    let resp = http()
        .get(b.url("/oauth/logout"))
        .bearer_auth(&second)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success() || resp.status().is_redirection());
    for r in [a, c] {
        eventually(
            Duration::from_secs(5),
            "logout on B refused everywhere",
            || async { (!is_authenticated(r, &second).await).then_some(()) },
        )
        .await
        .unwrap();
    }

    // The lockout counter is shared: three failures spread over three replicas lock everywhere.
    add_user(a, &["olaf", "--password", "olaf-Passw0rd"]);
    assert_eq!(password_login(a, "olaf", "wrong").await.0, 400);
    assert_eq!(password_login(b, "olaf", "wrong").await.0, 400);
    assert_eq!(password_login(c, "olaf", "wrong").await.0, 400);
    for r in &replicas {
        assert_eq!(password_login(r, "olaf", "olaf-Passw0rd").await.0, 429);
    }

    // A good change (longer tokens, one more identity provider) is picked up by all three.
    let good = config_with("2h", GITHUB_ENTRY);
    for r in &replicas {
        replace_config(r, &good);
    }
    for r in &replicas {
        eventually(Duration::from_secs(10), "the new config served", || async {
            let cfg = oauth_config(r).await;
            (cfg["accessTokenMaxAge"].as_f64() == Some(TWO_HOURS_NS)
                && cfg["identityProviders"][0]["name"] == "github")
                .then_some(())
        })
        .await
        .unwrap();
        assert_eq!(
            metric(r, "portcullis_config_reload_total{result=\"success\"}").await,
            Some(1.0)
        );
        let (status, _, body) = password_login(r, "nora", "nora-Passw0rd").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["expires_in"], 7200, "new logins get the new lifetime");
        let start = http().get(r.url("/login/github")).send().await.unwrap();
        let code = start.status();
        assert!(
            code.is_redirection(),
            "the added provider starts logins: {code} {}",
            start.text().await.unwrap_or_default()
        );
    }
    assert!(
        is_authenticated(c, &first).await,
        "a token issued before the reload stays valid"
    );

    // A bad change (a provider without its clientID: the file parses, the provider does not
    // build) is rejected by all three, and the previous configuration keeps serving.
    let bad = config_with(
        "3h",
        &GITHUB_ENTRY.replace("        clientID: \"replica-client\"\n", ""),
    );
    for r in &replicas {
        replace_config(r, &bad);
    }
    for r in &replicas {
        eventually(
            Duration::from_secs(10),
            "the bad config rejected",
            || async {
                (metric(r, "portcullis_config_reload_total{result=\"error\"}").await == Some(1.0))
                    .then_some(())
            },
        )
        .await
        .unwrap();
        assert_eq!(
            metric(r, "portcullis_config_last_reload_success").await,
            Some(0.0)
        );
        let cfg = oauth_config(r).await;
        assert_eq!(cfg["accessTokenMaxAge"].as_f64(), Some(TWO_HOURS_NS));
        assert_eq!(cfg["identityProviders"][0]["name"], "github");
        let (status, _, body) = password_login(r, "nora", "nora-Passw0rd").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["expires_in"], 7200);
        let logs = r.logs();
        assert!(
            logs.contains("identityProviders[0].provider")
                && logs.contains("missing required option `clientID`"),
            "the error names the key: {logs}"
        );
    }

    // Fixing the file recovers the gauge.
    for r in &replicas {
        replace_config(
            r,
            &config_with("2h", GITHUB_ENTRY).replace("auto", "lookup"),
        );
    }
    for r in &replicas {
        eventually(
            Duration::from_secs(10),
            "the fixed config applied",
            || async {
                (metric(r, "portcullis_config_last_reload_success").await == Some(1.0))
                    .then_some(())
            },
        )
        .await
        .unwrap();
    }

    // Nothing secret in any replica's whole log.
    for r in &replicas {
        let logs = r.logs();
        for secret in [
            SECRET,
            "nora-Passw0rd",
            "olaf-Passw0rd",
            "replica-client-secret",
            first.as_str(),
            second.as_str(),
        ] {
            assert!(!logs.contains(secret), "a secret or token is in the log");
        }
    }
}

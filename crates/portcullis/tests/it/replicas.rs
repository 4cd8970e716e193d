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

//! KubeSphere's Redis key scheme (spec §6.4) against the local Redis: with the top-level
//! `redis:` block configured, every issued access and refresh token is also written as
//! `kubesphere:user:<name>:token:<jwt>` with the token's lifetime, so ks-apiservers sharing the
//! Redis accept it; logout, refresh rotation and revoking the user delete the keys.

use portcullis_test_support::{Server, ServerOptions};
use redis::AsyncCommands;

use crate::common::*;

/// The Redis database this test uses (user names are unique per run, so reruns do not collide).
const DB: i64 = 7;

fn ks_config() -> String {
    format!(
        "{}redis:\n  host: 127.0.0.1\n  port: 6379\n  db: {DB}\n",
        config(true)
    )
}

async fn redis() -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(format!("redis://127.0.0.1:6379/{DB}")).unwrap();
    client
        .get_multiplexed_async_connection()
        .await
        .expect("Redis at 127.0.0.1:6379 must be running")
}

fn key(user: &str, token: &str) -> String {
    format!("kubesphere:user:{user}:token:{token}")
}

async fn ttl(conn: &mut redis::aio::MultiplexedConnection, k: &str) -> i64 {
    conn.ttl(k).await.unwrap()
}

async fn value(conn: &mut redis::aio::MultiplexedConnection, k: &str) -> Option<String> {
    conn.get(k).await.unwrap()
}

fn start_ks() -> Server {
    let mut opts = ServerOptions::new(bin(), Some(ks_config()));
    opts.env
        .push(("PORTCULLIS_ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into()));
    Server::start(opts).expect("server starts")
}

#[tokio::test(flavor = "multi_thread")]
async fn issued_tokens_are_registered_and_revocations_delete_them() {
    let server = start_ks();
    let mut conn = redis().await;
    let user = unique_name("ks");
    add_user(&server, &[&user, "--password", "ks-Passw0rd!"]);

    // Login: both tokens written, value = the JWT, TTL = lifetime (1h; refresh 1h + 30m).
    let (status, _, body) = password_login(&server, &user, "ks-Passw0rd!").await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap().to_string();
    let refresh = body["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(
        value(&mut conn, &key(&user, &access)).await.as_deref(),
        Some(access.as_str())
    );
    assert_eq!(
        value(&mut conn, &key(&user, &refresh)).await.as_deref(),
        Some(refresh.as_str())
    );
    let t = ttl(&mut conn, &key(&user, &access)).await;
    assert!((3590..=3600).contains(&t), "access TTL {t}");
    let t = ttl(&mut conn, &key(&user, &refresh)).await;
    assert!((5390..=5400).contains(&t), "refresh TTL {t}");

    // Refresh rotation: the old pair's keys are deleted, the new pair's written.
    let (status, _, body) = token(
        &server,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let access2 = body["access_token"].as_str().unwrap().to_string();
    let refresh2 = body["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(value(&mut conn, &key(&user, &access)).await, None);
    assert_eq!(value(&mut conn, &key(&user, &refresh)).await, None);
    assert_eq!(
        value(&mut conn, &key(&user, &access2)).await.as_deref(),
        Some(access2.as_str())
    );
    assert_eq!(
        value(&mut conn, &key(&user, &refresh2)).await.as_deref(),
        Some(refresh2.as_str())
    );

    // Logout deletes the session's keys, and only those.
    let (_, _, other) = password_login(&server, &user, "ks-Passw0rd!").await;
    let access3 = other["access_token"].as_str().unwrap().to_string();
    let resp = http()
        .get(server.url("/oauth/logout"))
        .bearer_auth(&access2)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success() || resp.status().is_redirection());
    assert_eq!(value(&mut conn, &key(&user, &access2)).await, None);
    assert_eq!(value(&mut conn, &key(&user, &refresh2)).await, None);
    assert!(
        value(&mut conn, &key(&user, &access3)).await.is_some(),
        "the other session stays"
    );

    // Revoking the user (disable, from the CLI on the same store and Redis) deletes the rest.
    let out = server.cli(&["user", "disable", &user]).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(value(&mut conn, &key(&user, &access3)).await, None);
    let left: Vec<String> = conn
        .keys(format!("kubesphere:user:{user}:token:*"))
        .await
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_redis_block_nothing_is_written() {
    // PORTCULLIS_REDIS alone is Portcullis' own bus, not KubeSphere's Redis.
    let mut opts = ServerOptions::new(bin(), Some(config(true)));
    opts.env.push((
        "PORTCULLIS_REDIS".into(),
        format!("redis://127.0.0.1:6379/{DB}"),
    ));
    let server = Server::start(opts).expect("server starts");
    let mut conn = redis().await;
    let user = unique_name("plain");
    add_user(&server, &[&user, "--password", "plain-Passw0rd!"]);
    let (status, _, body) = password_login(&server, &user, "plain-Passw0rd!").await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(value(&mut conn, &key(&user, access)).await, None);
}

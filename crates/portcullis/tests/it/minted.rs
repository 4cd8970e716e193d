//! Tokens minted outside Portcullis with the shared `jwtSecret` (spec §10 item 19): whoever holds
//! the secret can sign any claims, but Portcullis accepts a token only for a live session of
//! the token's own user, and only with `exp` when sessions expire. TokenReview is the judge.

use serde_json::{Value, json};

use crate::common::*;
use crate::federation::claims;

const ALICE: &str = "alice-Passw0rd";
const BOB: &str = "bob-Passw0rd!";

/// Signs `claims` with the shared secret, as any holder of `jwtSecret` can.
fn mint(claims: &Value) -> String {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let key = EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key).unwrap()
}

async fn access_token(server: &portcullis_test_support::Server, user: &str, pw: &str) -> String {
    let (status, _, body) = password_login(server, user, pw).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// Asserts TokenReview refuses `token` with `error`.
async fn refused(server: &portcullis_test_support::Server, token: &str, error: &str, why: &str) {
    let st = review(server, token).await;
    assert_eq!(st["authenticated"], false, "{why}: {st}");
    assert_eq!(st["error"], error, "{why}: {st}");
}

/// The forgeries every configuration must refuse; `alice` is a live access token of alice.
/// Another user's name comes first, so a replica that has not seen alice's session meets it
/// through the forgery.
async fn forgeries_are_refused(server: &portcullis_test_support::Server, alice: &str) {
    let own = claims(alice);
    let mut no_session = own.clone();
    no_session.as_object_mut().unwrap().remove("sid");
    refused(
        server,
        &mint(&no_session),
        "token was not issued by this server (no session)",
        "no sid",
    )
    .await;
    let mut as_admin = own.clone();
    as_admin["username"] = json!("admin");
    as_admin["sub"] = json!("admin");
    refused(
        server,
        &mint(&as_admin),
        "token was not issued by this server (no session)",
        "alice's live session for another user",
    )
    .await;
    let mut unknown = own.clone();
    unknown["sid"] = json!("no-such-session-0123456789");
    refused(
        server,
        &mint(&unknown),
        "token has been revoked",
        "a sid no session has",
    )
    .await;
    let mut forever = own.clone();
    forever.as_object_mut().unwrap().remove("exp");
    refused(
        server,
        &mint(&forever),
        "token has no expiry",
        "no exp while accessTokenMaxAge > 0",
    )
    .await;
    // Control: the holder re-signing alice's own claims is accepted (the secret is the same).
    assert!(is_authenticated(server, &mint(&own)).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn minted_tokens_need_a_live_session_of_their_own_user() {
    let b = backend(false).await;
    let server = start(Some(config(true)), &b);
    add_user(&server, &["alice", "--password", ALICE]);
    add_user(&server, &["bob", "--password", BOB]);
    let alice = access_token(&server, "alice", ALICE).await;
    forgeries_are_refused(&server, &alice).await;
    // Bob's name on alice's session, by a holder who knows both names.
    let mut as_bob = claims(&alice);
    as_bob["username"] = json!("bob");
    refused(
        &server,
        &mint(&as_bob),
        "token was not issued by this server (no session)",
        "bob on alice's session",
    )
    .await;
    // After logout the session is gone for every forgery too.
    let resp = http()
        .get(server.url("/oauth/logout"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    refused(
        &server,
        &mint(&claims(&alice)),
        "token has been revoked",
        "after logout",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_an_inactivity_timeout_a_session_must_still_exist() {
    let b = backend(true).await;
    let yaml = config(true).replace(
        "accessTokenInactivityTimeout: 30m",
        "accessTokenInactivityTimeout: 0s",
    );
    let server = start(Some(yaml.clone()), &b);
    add_user(&server, &["alice", "--password", ALICE]);
    let alice = access_token(&server, "alice", ALICE).await;
    forgeries_are_refused(&server, &alice).await;

    // A second replica on the same database meets the session for the first time through a
    // token: it looks the session up once and applies the same rules.
    let replica = start(Some(yaml), &b);
    forgeries_are_refused(&replica, &alice).await;
    assert!(is_authenticated(&replica, &alice).await);
}

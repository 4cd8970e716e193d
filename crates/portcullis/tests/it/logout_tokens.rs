//! Logout ends the whole session, whichever of its tokens it is given (spec §10 item 13;
//! KubeSphere 4.x left the refresh token valid after a logout): after a logout with the access
//! token the session's refresh tokens are refused by the refresh grant (`invalid_grant`), and
//! after a logout with the refresh token its access tokens are refused by TokenReview. Other
//! sessions, of the same user or another, are untouched.

use serde_json::Value;

use crate::common::*;

on_both_backends!(logout_with_either_token_ends_refresh_and_access_tokens);

const ALICE: &str = "alice-Passw0rd";
const BOB: &str = "bob-Passw0rd!";

/// Access and refresh token of a password login.
async fn login(server: &portcullis_test_support::Server, user: &str, pw: &str) -> (String, String) {
    let (status, _, body) = password_login(server, user, pw).await;
    assert_eq!(status, 200, "{body}");
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

async fn refresh(server: &portcullis_test_support::Server, refresh_token: &str) -> (u16, Value) {
    let (status, _, body) = token(
        server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await;
    (status, body)
}

/// `GET` or `POST /oauth/logout` with a Bearer token, as ks-console does.
async fn logout(server: &portcullis_test_support::Server, post: bool, bearer: &str) {
    let url = server.url("/oauth/logout");
    let req = if post {
        http().post(url)
    } else {
        http().get(url)
    };
    let resp = req.bearer_auth(bearer).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["message"], "success");
}

#[track_caller]
fn refused_grant(got: (u16, Value), what: &str) {
    assert_eq!(
        (got.0, got.1["error"].as_str()),
        (400, Some("invalid_grant")),
        "{what}: {}",
        got.1
    );
}

async fn logout_with_either_token_ends_refresh_and_access_tokens(pg: bool) {
    let b = backend(pg).await;
    let server = start(Some(config(true)), &b);
    add_user(&server, &["alice", "--password", ALICE]);
    add_user(&server, &["bob", "--password", BOB]);
    let (bob_access, bob_refresh) = login(&server, "bob", BOB).await;
    let (other_access, other_refresh) = login(&server, "alice", ALICE).await;

    // Logout with the access token: a session that has been refreshed once, logged out with
    // its first access token. Every refresh token it ever had is refused afterwards.
    let (access1, refresh1) = login(&server, "alice", ALICE).await;
    let (status, body) = refresh(&server, &refresh1).await;
    assert_eq!(status, 200, "{body}");
    let access2 = body["access_token"].as_str().unwrap().to_owned();
    let refresh2 = body["refresh_token"].as_str().unwrap().to_owned();
    assert!(is_authenticated(&server, &access1).await);
    logout(&server, false, &access1).await;
    refused_grant(
        refresh(&server, &refresh2).await,
        "the current refresh token after logout",
    );
    refused_grant(
        refresh(&server, &refresh1).await,
        "the rotated-out refresh token after logout",
    );
    for t in [&access1, &access2] {
        let st = review(&server, t).await;
        assert_eq!(st["authenticated"], false, "{st}");
        assert_eq!(st["error"], "token has been revoked", "{st}");
    }
    // Refused still, the second time (a refused refresh issues nothing).
    refused_grant(refresh(&server, &refresh2).await, "asked again");

    // Logout with the refresh token (POST this time): the session's access token is refused by
    // TokenReview and its refresh token by the refresh grant.
    let (access3, refresh3) = login(&server, "alice", ALICE).await;
    assert!(is_authenticated(&server, &access3).await);
    logout(&server, true, &refresh3).await;
    let st = review(&server, &access3).await;
    assert_eq!(st["authenticated"], false, "{st}");
    assert_eq!(st["error"], "token has been revoked", "{st}");
    refused_grant(
        refresh(&server, &refresh3).await,
        "the refresh token used to log out",
    );

    // The user's other session and another user's session go on, refresh included.
    assert!(is_authenticated(&server, &other_access).await);
    assert!(is_authenticated(&server, &bob_access).await);
    let (status, body) = refresh(&server, &other_refresh).await;
    assert_eq!(status, 200, "alice's other session refreshes: {body}");
    let (status, body) = refresh(&server, &bob_refresh).await;
    assert_eq!(status, 200, "bob refreshes: {body}");
}

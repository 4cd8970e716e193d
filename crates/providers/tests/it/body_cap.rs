//! The 1 MiB cap on upstream answers (`MAX_BODY` in `crates/providers/src/http.rs`, applied by the one
//! function every provider reads answers with), through the real providers against a [`ScriptedUpstream`]
//! (and the real `oidc-provider` for the steps before userinfo and JWKS): answers of 1 MiB + 1 byte and of
//! 2 MiB, with `Content-Length` and chunked without it, are refused with an error naming the endpoint and
//! the cap; endless answers are cut at the cap (the client closes the connection, it does not read on);
//! answers of exactly 1 MiB still work.

use std::time::{Duration, Instant};

use portcullis_idp::{CallbackRequest, OAuthProvider};
use portcullis_test_upstreams::peers::oidc::REDIRECT_URI;
use portcullis_test_upstreams::{Answered, Framing, Scripted, ScriptedUpstream};
use serde_json::{Value, json};

use crate::{oidc, support};

/// The cap (`MAX_BODY`, private to `http.rs`).
const CAP: usize = 1024 * 1024;

/// The refused sizes and framings.
const OVER: [(usize, Framing); 4] = [
    (CAP + 1, Framing::ContentLength),
    (CAP + 1, Framing::Chunked),
    (2 * CAP, Framing::ContentLength),
    (2 * CAP, Framing::Chunked),
];

/// Both framings.
const FRAMINGS: [Framing; 2] = [Framing::ContentLength, Framing::Chunked];

/// The error for an answer over the cap from `what`.
fn too_large(what: &str) -> String {
    format!("{what} answered a body larger than {CAP} bytes")
}

/// `value` (a JSON object) with a `padding` member that makes its serialisation exactly `size`
/// bytes.
fn padded(mut value: Value, size: usize) -> Vec<u8> {
    value["padding"] = json!("");
    let bare = serde_json::to_vec(&value).unwrap().len();
    assert!(size >= bare, "{size} < {bare}");
    value["padding"] = json!("a".repeat(size - bare));
    let out = serde_json::to_vec(&value).unwrap();
    assert_eq!(out.len(), size);
    out
}

/// A JSON answer of exactly `size` bytes framed with `framing`.
fn answer(value: Value, size: usize, framing: Framing) -> Scripted {
    Scripted::json(padded(value, size)).framed(framing)
}

/// An endless chunked JSON answer: `{"padding":"aaaa…` forever.
fn endless() -> Scripted {
    Scripted::endless("application/json", r#"{"padding":""#)
}

#[track_caller]
fn assert_refused<T: std::fmt::Debug>(
    result: Result<T, portcullis_idp::ProviderError>,
    what: &str,
    case: &str,
) {
    let e = result.expect_err(case);
    assert!(
        e.is_upstream() && e.to_string().contains(&too_large(what)),
        "{case}: {e}"
    );
}

/// After an endless answer was refused: the client closed the connection (polled with a
/// deadline) long before the server reached
/// [`ENDLESS_LIMIT`](portcullis_test_upstreams::ENDLESS_LIMIT), having been sent the cap plus at
/// most what the loopback socket buffers hold (a few MiB).
async fn assert_cut_at_the_cap(upstream: &ScriptedUpstream, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let endless: Vec<Answered> = upstream
            .answered(path)
            .into_iter()
            .filter(|a| a.endless)
            .collect();
        if !endless.is_empty() {
            for a in endless {
                assert!(a.closed_by_client, "{path}: {a:?}");
                assert!(a.body_bytes_written >= CAP as u64, "{path}: {a:?}");
                assert!(a.body_bytes_written < 64 * 1024 * 1024, "{path}: {a:?}");
            }
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{path}: the client never closed the connection"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An OIDC provider without `issuer` whose endpoints are `auth`, `token`, `jwks` and `userinfo`.
fn oidc_provider(
    auth: &str,
    token: &str,
    jwks: &str,
    userinfo: &str,
) -> std::sync::Arc<dyn OAuthProvider> {
    support::create(
        "OIDCIdentityProvider",
        json!({"clientID": "rs256", "clientSecret": "rs256-secret", "redirectURL": REDIRECT_URI,
               "scopes": ["openid", "email"], "getUserInfo": true,
               "endpoint": {"authURL": auth, "tokenURL": token, "jwksURL": jwks, "userInfoURL": userinfo}}),
        support::http(),
    )
    .unwrap()
}

/// The token endpoint (OIDC provider): over the cap refused, endless cut. (An answer of exactly the
/// cap is accepted: [`answers_of_exactly_1_mib_still_work`].)
#[tokio::test]
async fn token_endpoint_answers_over_1_mib_are_refused() {
    support::init();
    let up = ScriptedUpstream::start().await;
    let base = up.base_url();
    let p = oidc_provider(
        &format!("{base}/auth"),
        &format!("{base}/token"),
        &format!("{base}/jwks"),
        &format!("{base}/me"),
    );
    let what = "OIDC provider `test` token endpoint";
    let token = json!({"access_token": "at", "token_type": "Bearer", "id_token": "x.y.z"});
    let cb = CallbackRequest::from_query("code=c&state=s");
    for (size, framing) in OVER {
        up.set("/token", answer(token.clone(), size, framing));
        assert_refused(p.exchange(&cb).await, what, &format!("{size} {framing:?}"));
    }
    up.set("/token", endless());
    let started = Instant::now();
    assert_refused(p.exchange(&cb).await, what, "endless");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_cut_at_the_cap(&up, "/token").await;
    assert_eq!(
        up.requests("/jwks"),
        0,
        "nothing was read past the token answer"
    );
}

/// The userinfo endpoint, after a real login at `oidc-provider` (code, ID token and keys are
/// real): over the cap refused, endless cut, exactly the cap accepted and used.
#[tokio::test]
async fn userinfo_answers_over_1_mib_are_refused() {
    let issuer = oidc::shared().conform.clone();
    let up = ScriptedUpstream::start().await;
    let p = oidc_provider(
        &format!("{issuer}/auth"),
        &format!("{issuer}/token"),
        &format!("{issuer}/jwks"),
        &format!("{}/me", up.base_url()),
    );
    let what = "OIDC userinfo endpoint";
    let info = json!({"sub": "alice", "email": "big@example.org"});
    for (size, framing) in OVER {
        up.set("/me", answer(info.clone(), size, framing));
        assert_refused(
            oidc::login(&*p, "alice").await,
            what,
            &format!("{size} {framing:?}"),
        );
    }
    up.set("/me", endless());
    let started = Instant::now();
    assert_refused(oidc::login(&*p, "alice").await, what, "endless");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_cut_at_the_cap(&up, "/me").await;
    for framing in FRAMINGS {
        up.set("/me", answer(info.clone(), CAP, framing));
        let id = oidc::login(&*p, "alice")
            .await
            .unwrap_or_else(|e| panic!("{framing:?}: {e}"));
        assert_eq!(id.email.as_deref(), Some("big@example.org"), "{framing:?}");
    }
}

/// The JWKS endpoint, after a real code exchange: over the cap refused, endless cut; the real key
/// set padded to exactly the cap verifies the real ID token.
#[tokio::test]
async fn jwks_answers_over_1_mib_are_refused() {
    let issuer = oidc::shared().conform.clone();
    let keys: Value = support::http()
        .get(format!("{issuer}/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        keys["keys"].as_array().is_some_and(|k| !k.is_empty()),
        "{keys}"
    );
    let up = ScriptedUpstream::start().await;
    let what = "OIDC JWKS endpoint";
    // A new provider for each answer: keys, once fetched, are cached.
    let provider = || {
        oidc_provider(
            &format!("{issuer}/auth"),
            &format!("{issuer}/token"),
            &format!("{}/jwks", up.base_url()),
            &format!("{issuer}/me"),
        )
    };
    for (size, framing) in OVER {
        up.set("/jwks", answer(keys.clone(), size, framing));
        assert_refused(
            oidc::login(&*provider(), "alice").await,
            what,
            &format!("{size} {framing:?}"),
        );
    }
    up.set("/jwks", endless());
    assert_refused(oidc::login(&*provider(), "alice").await, what, "endless");
    assert_cut_at_the_cap(&up, "/jwks").await;
    for framing in FRAMINGS {
        up.set("/jwks", answer(keys.clone(), CAP, framing));
        let id = oidc::login(&*provider(), "alice")
            .await
            .unwrap_or_else(|e| panic!("{framing:?}: {e}"));
        assert_eq!(id.user_id(), "alice");
    }
}

/// OIDC discovery: over the cap refused (the login cannot start), endless cut, exactly the cap
/// accepted.
#[tokio::test]
async fn discovery_answers_over_1_mib_are_refused() {
    support::init();
    let up = ScriptedUpstream::start().await;
    let base = up.base_url();
    let path = "/.well-known/openid-configuration";
    let doc = json!({"issuer": base, "authorization_endpoint": format!("{base}/auth"),
                     "token_endpoint": format!("{base}/token"), "jwks_uri": format!("{base}/jwks")});
    let provider = || {
        support::create(
            "OIDCIdentityProvider",
            json!({"issuer": base, "clientID": "c", "clientSecret": "s", "redirectURL": REDIRECT_URI}),
            support::http(),
        )
        .unwrap()
    };
    let what = "OIDC discovery";
    for (size, framing) in OVER {
        up.set(path, answer(doc.clone(), size, framing));
        assert_refused(
            provider().prepare().await,
            what,
            &format!("{size} {framing:?}"),
        );
    }
    up.set(path, endless());
    assert_refused(provider().prepare().await, what, "endless");
    assert_cut_at_the_cap(&up, path).await;
    for framing in FRAMINGS {
        up.set(path, answer(doc.clone(), CAP, framing));
        let p = provider();
        p.prepare()
            .await
            .unwrap_or_else(|e| panic!("{framing:?}: {e}"));
        assert_eq!(
            p.public_options()["endpoint"]["tokenURL"],
            json!(format!("{base}/token"))
        );
    }
}

/// A whole login at a generic OAuth 2.0 provider whose token and user answers are exactly 1 MiB
/// each, with either framing, works; one byte more in the user answer is refused.
#[tokio::test]
async fn answers_of_exactly_1_mib_still_work() {
    support::init();
    let up = ScriptedUpstream::start().await;
    let base = up.base_url();
    let p = support::create(
        "OAuth2IdentityProvider",
        json!({"clientID": "c", "clientSecret": "s", "redirectURL": REDIRECT_URI, "pkce": false,
               "authURL": format!("{base}/authorize"), "tokenURL": format!("{base}/token"),
               "userInfoURL": format!("{base}/user")}),
        support::http(),
    )
    .unwrap();
    let token = json!({"access_token": "at", "token_type": "bearer"});
    let user = json!({"id": 7, "login": "big", "email": "big@example.org"});
    let cb = CallbackRequest::from_query("code=c&state=s");
    for framing in FRAMINGS {
        up.set("/token", answer(token.clone(), CAP, framing));
        up.set("/user", answer(user.clone(), CAP, framing));
        let id = p
            .exchange(&cb)
            .await
            .unwrap_or_else(|e| panic!("{framing:?}: {e}"));
        assert_eq!(
            (id.user_id(), id.username.as_deref()),
            ("7", Some("big")),
            "{framing:?}"
        );
        up.set("/user", answer(user.clone(), CAP + 1, framing));
        assert_refused(
            p.exchange(&cb).await,
            "OAuth 2.0 provider `test` userinfo",
            &format!("{framing:?}"),
        );
    }
}

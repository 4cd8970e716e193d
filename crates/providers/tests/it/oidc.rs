//! `OIDCIdentityProvider` against a real, OpenID-certified provider (node `oidc-provider`, started by the tests):
//! RS256 and ES256, claims in the ID token or only at userinfo, nonce, PKCE, tampered tokens, key rotation, an
//! upstream that is down when the provider is created, and option errors; and, against a [`ScriptedUpstream`],
//! discovery documents naming another issuer.

use std::time::{Duration, Instant};

use portcullis_idp::{
    AuthorizationRequest, CallbackRequest, Identity, OAuthProvider, ProviderError,
};
use portcullis_test_upstreams::peers::oidc::{self as peer, OidcPeer, REDIRECT_URI};
use portcullis_test_upstreams::peers::token_proxy::{Tamper, TokenProxy};
use portcullis_test_upstreams::{Scripted, ScriptedUpstream, pkce_challenge_s256};
use serde_json::{Value, json};
use url::Url;

use crate::support;

const TYPE: &str = "OIDCIdentityProvider";
const VERIFIER: &str = "oidc-test-verifier-0123456789-0123456789-0123456789";

pub(crate) fn shared() -> &'static OidcPeer {
    support::init();
    OidcPeer::shared().unwrap_or_else(|e| panic!("{e}"))
}

fn options(issuer: &str, client: &str) -> Value {
    json!({"issuer": issuer, "clientID": client, "clientSecret": format!("{client}-secret"),
           "redirectURL": REDIRECT_URI, "scopes": ["email", "profile", "openid", "groups"]})
}

fn provider(options: Value) -> std::sync::Arc<dyn OAuthProvider> {
    support::create(TYPE, options, support::http()).unwrap()
}

/// The authorization URL, polling while discovery (lazy, in the background) has not completed.
async fn authorization_url(p: &dyn OAuthProvider, req: &AuthorizationRequest) -> Url {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match p.authorization_url(req) {
            Ok(url) => return url,
            Err(e) if Instant::now() > deadline => panic!("discovery never succeeded: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Logs `login` in at the upstream and returns the callback the server would hand to `exchange`.
pub(crate) async fn callback(p: &dyn OAuthProvider, login: &str) -> (Url, CallbackRequest) {
    let nonce = format!("nonce-{login}-{:?}", Instant::now());
    let req = AuthorizationRequest::new("state-1")
        .with_pkce_challenge(pkce_challenge_s256(VERIFIER))
        .with_nonce(nonce.clone());
    let url = authorization_url(p, &req).await;
    let back = peer::login(&url, login)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let cb = CallbackRequest::from_query(back.query().unwrap_or(""))
        .with_pkce_verifier(VERIFIER)
        .with_nonce(nonce);
    (url, cb)
}

pub(crate) async fn login(p: &dyn OAuthProvider, who: &str) -> Result<Identity, ProviderError> {
    let (_, cb) = callback(p, who).await;
    p.exchange(&cb).await
}

#[tokio::test]
async fn rs256_with_userinfo_maps_every_claim() {
    let peer = shared();
    let mut opts = options(&peer.conform, "rs256");
    opts["getUserInfo"] = json!(true);
    let p = provider(opts);
    let (url, cb) = callback(&*p, "alice").await;
    let q: std::collections::BTreeMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(
        q["scope"], "openid email profile groups",
        "openid once and first, the others kept"
    );
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q.contains_key("nonce") && q["state"] == "state-1");
    assert_eq!(cb.param("state"), Some("state-1"));
    let id = p.exchange(&cb).await.unwrap();
    assert_eq!(id.user_id(), "alice");
    assert_eq!(id.username.as_deref(), Some("alice"));
    assert_eq!(id.email.as_deref(), Some("alice@example.org"));
    assert_eq!(id.email_verified, Some(true));
    assert_eq!(id.display_name.as_deref(), Some("User alice"));
    assert_eq!(id.groups, vec!["users", "alice-group"]);
    let e = p.exchange(&cb).await.unwrap_err();
    assert!(e.is_bad_credentials(), "a replayed code: {e}");
}

#[tokio::test]
async fn conform_id_token_without_userinfo_has_only_the_subject() {
    let p = provider(options(&shared().conform, "rs256"));
    let id = login(&*p, "bob").await.unwrap();
    assert_eq!(id.user_id(), "bob");
    assert_eq!(
        (id.username, id.email),
        (None, None),
        "conformIdTokenClaims keeps profile claims at userinfo"
    );
}

#[tokio::test]
async fn es256_with_claims_in_the_id_token() {
    let p = provider(options(&shared().nonconform, "es256"));
    let id = login(&*p, "carol").await.unwrap();
    assert_eq!(id.user_id(), "carol");
    assert_eq!(id.username.as_deref(), Some("carol"));
    assert_eq!(id.email.as_deref(), Some("carol@example.org"));
    assert_eq!(id.groups, vec!["users", "carol-group"]);
}

#[tokio::test]
async fn custom_claim_keys_and_required_verified_email() {
    let mut opts = options(&shared().nonconform, "rs256");
    opts["emailKey"] = json!("preferred_username");
    opts["preferredUsernameKey"] = json!("name");
    opts["groupsClaim"] = json!("/groups/1");
    opts["requireEmailVerified"] = json!(true);
    opts["clockSkew"] = json!("30s");
    let p = provider(opts);
    let id = login(&*p, "dave").await.unwrap();
    assert_eq!(id.email.as_deref(), Some("dave"));
    assert_eq!(id.username.as_deref(), Some("User dave"));
    assert_eq!(id.groups, vec!["dave-group"]);
    let mut opts = options(&shared().nonconform, "rs256");
    opts["requireEmailVerified"] = json!(true);
    let e = login(&*provider(opts), "unverified-erin")
        .await
        .unwrap_err();
    assert!(
        e.is_bad_credentials() && e.to_string().contains("requireEmailVerified"),
        "{e}"
    );
}

#[tokio::test]
async fn nonce_mismatch_is_refused() {
    let p = provider(options(&shared().nonconform, "rs256"));
    let (_, cb) = callback(&*p, "alice").await;
    let e = p
        .exchange(&cb.with_nonce("another-login"))
        .await
        .unwrap_err();
    assert!(
        e.is_bad_credentials() && e.to_string().contains("nonce"),
        "{e}"
    );
}

#[tokio::test]
async fn client_authentication_styles() {
    let issuer = &shared().conform;
    let mut opts = options(issuer, "post");
    opts["clientAuthStyle"] = json!("body");
    assert_eq!(
        login(&*provider(opts), "alice").await.unwrap().user_id(),
        "alice"
    );
    let mut basic = options(issuer, "rs256");
    basic["clientAuthStyle"] = json!("basic");
    assert_eq!(
        login(&*provider(basic), "alice").await.unwrap().user_id(),
        "alice"
    );
    let mut wrong = options(issuer, "rs256");
    wrong["clientSecret"] = json!("not-the-secret");
    let e = login(&*provider(wrong), "alice").await.unwrap_err();
    assert!(
        e.is_misconfigured() && e.to_string().contains("clientSecret"),
        "{e}"
    );
}

#[tokio::test]
async fn tampered_id_tokens_are_refused_without_issuer_too() {
    let issuer = shared().nonconform.clone();
    let proxy = TokenProxy::start(&format!("{issuer}/token")).await;
    let opts = json!({"clientID": "rs256", "clientSecret": "rs256-secret", "redirectURL": REDIRECT_URI,
        "scopes": ["openid", "email", "profile"],
        "endpoint": {"authURL": format!("{issuer}/auth"), "tokenURL": proxy.token_url(),
                     "jwksURL": format!("{issuer}/jwks"), "userInfoURL": format!("{issuer}/me")}});
    let p = provider(opts);
    let id = login(&*p, "alice").await.unwrap();
    assert_eq!(
        (id.user_id(), id.email.as_deref()),
        ("alice", Some("alice@example.org"))
    );
    for (tamper, needle) in [
        (Tamper::FlipSignature, "signature"),
        (Tamper::ForgeSubject, "signature"),
        (Tamper::AlgNone, "not a signed JWT"),
        (Tamper::Hs256Header, "HS256"),
    ] {
        proxy.set(tamper);
        let e = login(&*p, "alice").await.unwrap_err();
        assert!(
            e.is_upstream() && e.to_string().contains(needle),
            "{tamper:?}: {e}"
        );
    }
}

#[tokio::test]
async fn upstream_down_at_start_then_key_rotation() {
    support::init();
    let mut peer = OidcPeer::start().unwrap_or_else(|e| panic!("{e}"));
    peer.stop();
    // Created while the upstream is down: creation succeeds, the login URL cannot be built yet.
    let p = provider(options(&peer.conform, "rs256"));
    let e = p
        .authorization_url(&AuthorizationRequest::new("s"))
        .unwrap_err();
    assert!(
        e.is_upstream() && e.to_string().contains("discovery"),
        "{e}"
    );
    peer.restart().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(login(&*p, "alice").await.unwrap().user_id(), "alice");
    // New process, new signing keys with new key ids: the JWKS is fetched again on the unknown kid.
    peer.restart().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(login(&*p, "bob").await.unwrap().user_id(), "bob");
    let public = p.public_options();
    assert_eq!(
        public["endpoint"]["jwksURL"],
        format!("{}/jwks", peer.conform)
    );
    assert_eq!(
        public["endpoint"]["endSessionURL"],
        format!("{}/session/end", peer.conform)
    );
    assert!(!public.contains_key("clientSecret"), "{public:?}");
}

#[tokio::test]
async fn end_session_url_for_logout() {
    let issuer = &shared().conform;
    let mut opts = options(issuer, "rs256");
    opts["postLogoutRedirectURI"] = json!("https://console.example/login");
    let opts = portcullis_idp::ProviderOptions::from_value(opts).unwrap();
    let p =
        portcullis_providers::OidcIdentityProvider::new("oidc", &opts, &support::http()).unwrap();
    assert_eq!(p.end_session_url(None), None, "unknown before discovery");
    authorization_url(&p, &AuthorizationRequest::new("s")).await;
    let url = p.end_session_url(Some("hint")).unwrap();
    assert!(
        url.as_str()
            .starts_with(&format!("{issuer}/session/end?client_id=rs256")),
        "{url}"
    );
    let q: std::collections::BTreeMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(
        q["post_logout_redirect_uri"],
        "https://console.example/login"
    );
    assert_eq!(q["id_token_hint"], "hint");
}

#[test]
fn option_errors_name_the_key() {
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"redirectURL": REDIRECT_URI, "issuer": "https://op"}),
            "`clientID`",
        ),
        (
            json!({"clientID": "a", "issuer": "https://op"}),
            "`redirectURL`",
        ),
        (
            json!({"clientID": "a", "redirectURL": REDIRECT_URI, "issuer": "not a url"}),
            "`issuer`",
        ),
        (
            json!({"clientID": "a", "redirectURL": REDIRECT_URI,
                "endpoint": {"authURL": "https://op/a", "tokenURL": "https://op/t"}}),
            "`endpoint.jwksURL`",
        ),
        (
            json!({"clientID": "a", "redirectURL": REDIRECT_URI, "getUserInfo": true,
                "endpoint": {"authURL": "https://op/a", "tokenURL": "https://op/t", "jwksURL": "https://op/k"}}),
            "`endpoint.userInfoURL`",
        ),
        (
            json!({"clientID": "a", "redirectURL": REDIRECT_URI, "issuer": "https://op", "clockSkew": "soon"}),
            "`clockSkew`",
        ),
        (
            json!({"clientID": "a", "redirectURL": REDIRECT_URI, "issuer": "https://op", "clientAuthStyle": "jwt"}),
            "`clientAuthStyle`",
        ),
    ];
    for (opts, needle) in cases {
        let e = support::create(TYPE, opts, support::http()).err().unwrap();
        assert!(
            e.is_misconfigured() && e.to_string().contains(needle),
            "{needle}: {e}"
        );
    }
}

const DISCOVERY: &str = "/.well-known/openid-configuration";

/// A discovery document of an upstream at `base` that names `issuer` (no `issuer` member when
/// `None`).
fn discovery_document(base: &str, issuer: Option<&str>) -> Value {
    let mut doc = json!({
        "authorization_endpoint": format!("{base}/auth"),
        "token_endpoint": format!("{base}/token"),
        "jwks_uri": format!("{base}/jwks"),
        "userinfo_endpoint": format!("{base}/me"),
        "id_token_signing_alg_values_supported": ["RS256"],
    });
    if let Some(issuer) = issuer {
        doc["issuer"] = json!(issuer);
    }
    doc
}

/// ASVS 5.0 10.5.3, OpenID Connect Discovery §4.3: a discovery document whose `issuer` is not
/// the configured `issuer` (another host, port, scheme or path, or none at all) is refused, and
/// the login fails at each of its steps (waiting for discovery, the login URL, the code exchange)
/// with an error that names both issuers. Nothing else is ever requested from that upstream: no
/// code is exchanged and no key is fetched.
#[tokio::test]
async fn discovery_naming_another_issuer_is_refused() {
    support::init();
    let op = ScriptedUpstream::start().await;
    let base = op.base_url();
    for (what, claimed) in [
        (
            "another host",
            Some("https://accounts.evil.example".to_owned()),
        ),
        ("another port", Some(support::closed_port_url())),
        (
            "another scheme",
            Some(base.replacen("http://", "https://", 1)),
        ),
        ("another path", Some(format!("{base}/tenant"))),
        ("no issuer", None),
    ] {
        op.set(
            DISCOVERY,
            Scripted::json(discovery_document(&base, claimed.as_deref()).to_string()),
        );
        let p = provider(options(&base, "rs256"));
        let named = format!(
            "names issuer {:?}, but option `issuer` is {base:?}; they must be equal",
            claimed.as_deref().unwrap_or("")
        );
        let e = p.prepare().await.unwrap_err();
        assert!(e.to_string().contains(&named), "{what}: {e}");
        let e = p
            .authorization_url(&AuthorizationRequest::new("s"))
            .unwrap_err();
        assert!(e.to_string().contains(&named), "{what}: {e}");
        let e = p
            .exchange(&CallbackRequest::from_query("code=c&state=s"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains(&named), "{what}: {e}");
        assert!(p.public_options().get("endpoint").is_none(), "{what}");
    }
    assert_eq!(op.requested_paths(), vec![DISCOVERY.to_owned()]);
}

/// The trailing-slash choice: the configured `issuer` and the document's are compared with
/// trailing slashes removed, so `https://op` and `https://op/` are one issuer (the document is
/// fetched from the same URL either way, and an upstream's two spellings are a common
/// misconfiguration, not an attack); anything else must be equal. ID tokens are then checked
/// against the document's own spelling: with the real upstream configured with a slash its
/// issuer does not have, the whole login works.
#[tokio::test]
async fn discovery_issuer_may_differ_only_by_a_trailing_slash() {
    support::init();
    let op = ScriptedUpstream::start().await;
    let base = op.base_url();
    for (configured, claimed) in [
        (base.clone(), format!("{base}/")),
        (format!("{base}/"), base.clone()),
    ] {
        op.set(
            DISCOVERY,
            Scripted::json(discovery_document(&base, Some(&claimed)).to_string()),
        );
        let p = provider(options(&configured, "rs256"));
        p.prepare()
            .await
            .unwrap_or_else(|e| panic!("{configured} / {claimed}: {e}"));
        let url = p
            .authorization_url(&AuthorizationRequest::new("s"))
            .unwrap();
        assert!(url.as_str().starts_with(&format!("{base}/auth?")), "{url}");
    }
    let issuer = &shared().conform;
    assert!(!issuer.ends_with('/'), "{issuer}");
    let p = provider(options(&format!("{issuer}/"), "rs256"));
    assert_eq!(login(&*p, "alice").await.unwrap().user_id(), "alice");
}

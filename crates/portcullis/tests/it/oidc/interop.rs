//! Interoperability: two independent, widely used relying-party libraries drive Portcullis
//! through discovery, code + PKCE + nonce, the token exchange, ID-token validation, userinfo,
//! refresh, introspection, revocation and logout:
//!
//! * `openid-client` 6 from npm (OpenID-certified RP, panva), through
//!   `crates/portcullis/tests/interop/rp.mjs` (installed by `tests/interop/ci-install.sh`), as a
//!   confidential client with `client_secret_basic` and `client_secret_post` (RS256) and as a
//!   public client (`none` + PKCE, ES256);
//! * the Rust `openidconnect` 4 crate, over our reqwest client (a small adapter, redirects off).

use std::path::PathBuf;

use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClient, CoreClientAuthMethod, CoreGrantType,
    CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreJwsSigningAlgorithm, CoreResponseMode, CoreResponseType, CoreRevocableToken,
    CoreSubjectIdentifierType, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AdditionalProviderMetadata, AuthenticationFlow, AuthorizationCode, ClientId,
    ClientSecret, CsrfToken, IntrospectionUrl, IssuerUrl, LogoutProviderMetadata, LogoutRequest,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, PostLogoutRedirectUrl, ProviderMetadata,
    RedirectUrl, RevocationUrl, Scope, TokenIntrospectionResponse, TokenResponse,
};
use serde::{Deserialize, Serialize};

use super::*;

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// Runs rp.mjs; returns its report, failing the test with the report when it failed.
fn run_node_rp(server: &Server, client: &str, secret: &str, auth: &str, alg: &str) -> Value {
    let dir = interop_dir();
    assert!(
        dir.join("node_modules/openid-client").is_dir(),
        "the openid-client harness is not installed: run {}/ci-install.sh",
        dir.display()
    );
    let out = std::process::Command::new("node")
        .arg(dir.join("rp.mjs"))
        .current_dir(&dir)
        .env("ISSUER", &server.base)
        .env("CLIENT_ID", client)
        .env("CLIENT_SECRET", secret)
        .env("AUTH", auth)
        .env("REDIRECT_URI", REDIRECT)
        .env("POST_LOGOUT_URI", BYE)
        .env("ALG", alg)
        .env("USERNAME", "alice")
        .env("PASSWORD", ALICE_PASSWORD)
        .output()
        .expect("node runs (Node.js 20 or newer is needed)");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "rp.mjs printed no report: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(out.status.success(), "openid-client failed: {report:#}");
    report
}

fn step<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {report:#}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn openid_client_from_npm() {
    let (server, _b) = oidc_server(false, "").await;
    for (client, secret, auth, alg) in [
        ("app", "app-secret", "basic", "RS256"),
        ("app", "app-secret", "post", "RS256"),
        ("spa", "", "none", "ES256"),
    ] {
        let r = run_node_rp(&server, client, secret, auth, alg);
        let what = format!("{client}/{auth}/{alg}");
        assert_eq!(step(&r, "discovery")["issuer"], server.base, "{what}");
        assert_eq!(step(&r, "authorize")["iss"], server.base, "{what}");
        let t = step(&r, "token");
        assert_eq!(
            (t["sub"].as_str(), t["alg"].as_str()),
            (Some("alice"), Some(alg)),
            "{what}"
        );
        assert_eq!(t["nonce_ok"], true);
        assert_eq!(t["claims"]["email"], "alice@example.com");
        assert_eq!(
            step(&r, "userinfo")["info"]["groups"],
            serde_json::json!(["devs", "ops"])
        );
        let refresh = step(&r, "refresh");
        assert_eq!(
            (
                refresh["auth_time_kept"].as_bool(),
                refresh["rotated"].as_bool()
            ),
            (Some(true), Some(true))
        );
        assert_eq!(
            step(&r, "refresh_reuse")["result"],
            "invalid_grant",
            "{what}"
        );
        if secret.is_empty() {
            assert_ne!(step(&r, "revoke")["userinfo_after"], "accepted", "{what}");
        } else {
            let i = step(&r, "introspect");
            assert_eq!(
                (i["active"].as_bool(), i["client_id"].as_str()),
                (Some(true), Some(client))
            );
            assert_eq!(step(&r, "revoke")["active_after"], false, "{what}");
        }
        let l = step(&r, "logout");
        assert_eq!(
            (l["to"].as_str(), l["state_ok"].as_bool()),
            (Some(BYE), Some(true)),
            "{what}"
        );
        assert_eq!(l["cookie_cleared"], true);
        assert_eq!(
            step(&r, "prompt_none_after_logout")["result"],
            "login_required",
            "{what}"
        );
    }
}

/// `introspection_endpoint` and `revocation_endpoint` from discovery.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct Endpoints {
    introspection_endpoint: String,
    revocation_endpoint: String,
}
impl AdditionalProviderMetadata for Endpoints {}

type Metadata = ProviderMetadata<
    LogoutProviderMetadata<Endpoints>,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// openidconnect refuses a revocation endpoint that is not https (RFC 7009 §2, a client-side
/// MUST). The test gives it this https URL and the transport below sends it to the plain-HTTP
/// test server, as a TLS-terminating proxy in front of Portcullis would.
const TLS_FRONT: &str = "https://portcullis.test";

/// openidconnect's HTTP client: our reqwest client, redirects off.
async fn send(
    http: reqwest::Client,
    base: String,
    mut req: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, std::io::Error> {
    if let Some(rest) = req.uri().to_string().strip_prefix(TLS_FRONT) {
        *req.uri_mut() = format!("{base}{rest}")
            .parse()
            .map_err(std::io::Error::other)?;
    }
    let req = reqwest::Request::try_from(req).map_err(std::io::Error::other)?;
    let resp = http.execute(req).await.map_err(std::io::Error::other)?;
    let mut b = openidconnect::http::Response::builder().status(resp.status());
    for (k, v) in resp.headers() {
        b = b.header(k, v);
    }
    let body = resp.bytes().await.map_err(std::io::Error::other)?.to_vec();
    b.body(body).map_err(std::io::Error::other)
}

#[tokio::test(flavor = "multi_thread")]
async fn openidconnect_crate() {
    let (server, _b) = oidc_server(true, "").await;
    let (reqwest_client, base) = (http(), server.base.clone());
    let rp_http = move |req| send(reqwest_client.clone(), base.clone(), req);
    let issuer = IssuerUrl::new(server.base.clone()).unwrap();
    let meta = Metadata::discover_async(issuer, &rp_http)
        .await
        .expect("discovery");
    let extra = meta.additional_metadata().clone();
    let end_session = extra
        .end_session_endpoint
        .clone()
        .expect("end_session_endpoint");
    let client = CoreClient::from_provider_metadata(
        meta,
        ClientId::new("app".into()),
        Some(ClientSecret::new("app-secret".into())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap())
    .set_introspection_url(
        IntrospectionUrl::new(extra.additional_metadata.introspection_endpoint.clone()).unwrap(),
    )
    .set_revocation_url(
        RevocationUrl::new(
            extra
                .additional_metadata
                .revocation_endpoint
                .replace(&server.base, TLS_FRONT),
        )
        .unwrap(),
    );

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, state, nonce) = client
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let pairs: Vec<(String, String)> = auth_url.query_pairs().into_owned().collect();
    let query: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut browser = Browser::new(&server);
    let out = browser
        .authorize(&query, Some(("alice", ALICE_PASSWORD)))
        .await;
    let p = out.params();
    assert_eq!(&p["state"], state.secret());
    let tokens = client
        .exchange_code(AuthorizationCode::new(p["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&rp_http)
        .await
        .expect("code exchange");
    let id_token = tokens.id_token().expect("an ID token");
    let verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &nonce)
        .expect("the ID token verifies");
    assert_eq!(claims.subject().as_str(), "alice");
    assert_eq!(claims.preferred_username().unwrap().as_str(), "alice");
    let expected_hash = claims.access_token_hash().expect("at_hash");
    let actual = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(&actual, expected_hash);
    // A mismatched nonce (a replayed ID token) is caught by the library.
    assert!(
        id_token
            .claims(&verifier, &Nonce::new("another".into()))
            .is_err()
    );

    let info: CoreUserInfoClaims = client
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .unwrap()
        .request_async(&rp_http)
        .await
        .expect("userinfo");
    assert_eq!(info.email().unwrap().as_str(), "alice@example.com");

    let refreshed = client
        .exchange_refresh_token(tokens.refresh_token().unwrap())
        .unwrap()
        .request_async(&rp_http)
        .await
        .expect("refresh");
    let new_id = refreshed.id_token().expect("a new ID token on refresh");
    let c2 = new_id
        .claims(&verifier, |_: Option<&Nonce>| Ok(()))
        .expect("refreshed ID token verifies");
    assert_eq!(c2.auth_time(), claims.auth_time());

    let intro = client
        .introspect(refreshed.access_token())
        .request_async(&rp_http)
        .await
        .expect("introspection");
    assert!(intro.active());
    assert_eq!(intro.username(), Some("alice"));
    let revocable: CoreRevocableToken = refreshed.refresh_token().unwrap().into();
    client
        .revoke_token(revocable)
        .unwrap()
        .request_async(&rp_http)
        .await
        .expect("revocation");
    let intro = client
        .introspect(refreshed.access_token())
        .request_async(&rp_http)
        .await
        .unwrap();
    assert!(
        !intro.active(),
        "revoking the refresh token ended the session"
    );

    // RP-initiated logout, URL built by the library, followed by the browser.
    let logout = LogoutRequest::from(end_session)
        .set_id_token_hint(new_id)
        .set_post_logout_redirect_uri(PostLogoutRedirectUrl::new(BYE.into()).unwrap())
        .set_state(CsrfToken::new("logout-state".into()))
        .http_get_url();
    let resp = browser.get(logout.as_str()).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(
        resp.headers()["location"],
        format!("{BYE}?state=logout-state")
    );
    assert!(!browser.cookies.contains_key("portcullis_session"));

    // The public ES256 client, with the library told to expect ES256.
    let meta = Metadata::discover_async(IssuerUrl::new(server.base.clone()).unwrap(), &rp_http)
        .await
        .unwrap();
    let spa = CoreClient::from_provider_metadata(meta, ClientId::new("spa".into()), None)
        .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let (challenge, pkce_verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, _, nonce) = spa
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge)
        .url();
    let pairs: Vec<(String, String)> = auth_url.query_pairs().into_owned().collect();
    let query: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let out = browser
        .authorize(&query, Some(("alice", ALICE_PASSWORD)))
        .await;
    let tokens = spa
        .exchange_code(AuthorizationCode::new(out.params()["code"].clone()))
        .unwrap()
        .set_pkce_verifier(pkce_verifier)
        .request_async(&rp_http)
        .await
        .expect("public client code exchange");
    let es = spa
        .id_token_verifier()
        .set_allowed_algs([CoreJwsSigningAlgorithm::EcdsaP256Sha256]);
    let claims = tokens
        .id_token()
        .unwrap()
        .claims(&es, &nonce)
        .expect("ES256 ID token verifies");
    assert_eq!(claims.subject().as_str(), "alice");
    // The same token is refused by a verifier that only allows RS256.
    let rs_only = spa
        .id_token_verifier()
        .set_allowed_algs([CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256]);
    assert!(tokens.id_token().unwrap().claims(&rs_only, &nonce).is_err());
}

//! Helpers: the crypto provider, clients, and a "browser" that follows the authorization redirect.

use std::sync::Arc;
use std::time::Duration;

use portcullis_idp::{
    AuthorizationRequest, CallbackRequest, Identity, OAuthProvider, ProviderError, ProviderOptions,
};
use portcullis_test_upstreams::pkce_challenge_s256;
use serde_json::Value;

/// Installs the one rustls crypto provider of this test binary (idempotent).
pub fn init() {
    rustls::crypto::aws_lc_rs::default_provider()
        .install_default()
        .ok();
}

/// The production client.
pub fn http() -> reqwest::Client {
    init();
    portcullis_providers::http_client(false)
}

/// The production client with a short total timeout.
pub fn http_with_timeout(timeout: Duration) -> reqwest::Client {
    init();
    portcullis_providers::http_client_builder()
        .timeout(timeout)
        .build()
        .unwrap()
}

/// Creates a provider through the built-in registry, as the server does.
pub fn create(
    provider_type: &str,
    options: Value,
    http: reqwest::Client,
) -> Result<Arc<dyn OAuthProvider>, ProviderError> {
    let options = ProviderOptions::from_value(options)?;
    let provider =
        portcullis_providers::builtin_registry(http).create(provider_type, "test", &options)?;
    Ok(provider.as_oauth().expect("an OAuth provider").clone())
}

/// The result of sending a browser to the authorization URL: the callback the provider would receive.
pub struct Callback {
    pub request: CallbackRequest,
    pub url: url::Url,
}

/// Plays the browser: builds the authorization URL (with a PKCE challenge when the provider supports it), adds
/// `extra` query parameters (the fakes' `login_as`), follows the one redirect back and returns the callback, with
/// the verifier attached. Checks that `state` comes back unchanged.
pub async fn authorize(provider: &dyn OAuthProvider, extra: &[(&str, &str)]) -> Callback {
    let verifier = "a-verifier-that-is-long-enough-for-rfc-7636-43-characters-min";
    let mut req = AuthorizationRequest::new("state-123");
    if provider.supports_pkce() {
        req = req.with_pkce_challenge(pkce_challenge_s256(verifier));
    }
    let mut url = provider.authorization_url(&req).unwrap();
    for (k, v) in extra {
        url.query_pairs_mut().append_pair(k, v);
    }
    let response = http().get(url.clone()).send().await.unwrap();
    assert_eq!(
        response.status(),
        302,
        "authorize answered {}",
        response.status()
    );
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let back = url::Url::parse(&location).unwrap();
    let mut request = CallbackRequest::from_query(back.query().unwrap_or(""));
    assert_eq!(
        request.param("state"),
        Some("state-123"),
        "state must come back unchanged"
    );
    if provider.supports_pkce() {
        request = request.with_pkce_verifier(verifier);
    }
    Callback { request, url }
}

/// Authorizes and exchanges in one go.
pub async fn login(
    provider: &dyn OAuthProvider,
    extra: &[(&str, &str)],
) -> Result<Identity, ProviderError> {
    let cb = authorize(provider, extra).await;
    provider.exchange(&cb.request).await
}

/// Asserts an upstream-class error whose message contains `needle`.
#[track_caller]
pub fn assert_upstream(result: Result<Identity, ProviderError>, needle: &str) {
    match result {
        Err(e) => assert!(
            e.is_upstream() && e.to_string().contains(needle),
            "expected upstream error with {needle:?}, got: {e}"
        ),
        Ok(id) => panic!("expected an upstream error, got identity {id:?}"),
    }
}

/// A loopback URL where nothing listens (bound, then released).
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

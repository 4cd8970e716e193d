//! Portcullis' built-in identity providers, each behind a cargo feature: `GitHubIdentityProvider` (`github`) and
//! `AliyunIDaaSProvider` (`aliyun-idaas`), both on by default.
//!
//! They implement the plugin API of [`portcullis_idp`] exactly as a third-party plugin would; nothing here is
//! privileged. Main design decision: **one HTTP client for all providers**. The binary builds one
//! [`reqwest::Client`] with [`http_client`] (rustls, redirects off, connect and total timeouts) and hands clones to
//! the factories, so TLS policy and timeouts live in one place; only a provider configured with
//! `insecureSkipVerify: true` gets a separate client, built on a code path named `dangerous_*` that logs a warning.
//! The OAuth 2.0 code exchange is written by hand in a shared module (`oauth2_client`) so that every upstream quirk
//! (errors with HTTP 200, form-encoded answers) lands in the right [`ProviderError`](portcullis_idp::ProviderError)
//! class.
//!
//! ```no_run
//! let http = portcullis_providers::http_client(false);
//! let registry = portcullis_providers::builtin_registry(http);
//! assert!(registry.resolve("AliyunIDaasProvider").is_some());
//! ```

#[cfg(feature = "aliyun-idaas")]
pub mod aliyun_idaas;
#[cfg(feature = "github")]
pub mod github;
// With every provider feature off, the shared helpers have no user; that build exists only to keep features honest.
#[cfg_attr(
    not(any(feature = "github", feature = "aliyun-idaas")),
    allow(dead_code)
)]
mod http;
#[cfg_attr(
    not(any(feature = "github", feature = "aliyun-idaas")),
    allow(dead_code)
)]
mod oauth2_client;

#[cfg(feature = "aliyun-idaas")]
pub use aliyun_idaas::{AliyunIdaasFactory, AliyunIdaasProvider};
#[cfg(feature = "github")]
pub use github::{GitHubFactory, GitHubIdentityProvider};
pub use http::{
    CONNECT_TIMEOUT, REQUEST_TIMEOUT, USER_AGENT, http_client_builder, try_http_client,
};

use portcullis_idp::ProviderRegistry;

/// The shared HTTP client for identity providers: rustls with the platform's roots (aws-lc-rs), redirects off,
/// [`CONNECT_TIMEOUT`] and [`REQUEST_TIMEOUT`], `User-Agent: Portcullis/<version>`.
///
/// `insecure_skip_verify` turns TLS verification off for every provider using this client and logs a warning;
/// prefer the per-provider `insecureSkipVerify` option.
///
/// # Panics
///
/// If the TLS backend cannot be initialised (no usable crypto provider); [`try_http_client`] returns the error
/// instead.
pub fn http_client(insecure_skip_verify: bool) -> reqwest::Client {
    try_http_client(insecure_skip_verify).expect("building the identity providers' HTTP client")
}

/// A registry with every built-in provider enabled by cargo features, sharing `http`, plus the alias
/// `AliyunIDaasProvider` → `AliyunIDaaSProvider`. Add custom factories to the returned registry.
pub fn builtin_registry(http: reqwest::Client) -> ProviderRegistry {
    #[allow(unused_mut)] // not mutated when every provider feature is off
    let mut registry = ProviderRegistry::new();
    #[cfg(feature = "github")]
    registry.register_oauth(GitHubFactory::new(http.clone()));
    #[cfg(feature = "aliyun-idaas")]
    registry
        .register_oauth(AliyunIdaasFactory::new(http.clone()))
        .alias(AliyunIdaasFactory::ALIAS, AliyunIdaasFactory::TYPE);
    let _ = http;
    registry
}

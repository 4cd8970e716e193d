//! Portcullis' built-in identity providers, each behind a cargo feature (all on by default):
//!
//! | Feature | `type` | Kind |
//! |---|---|---|
//! | `github` | `GitHubIdentityProvider` | OAuth 2.0 |
//! | `aliyun-idaas` | `AliyunIDaaSProvider` (alias `AliyunIDaasProvider`) | OAuth 2.0 |
//! | `oidc` | `OIDCIdentityProvider` | OpenID Connect |
//! | `ldap` | `LDAPIdentityProvider` | password |
//! | `cas` | `CASIdentityProvider` | CAS 2.0/3.0 |
//! | `generic-oauth2` | `OAuth2IdentityProvider` (alias `GenericOAuth2Provider`) | OAuth 2.0 described in YAML |
//!
//! They implement the plugin API of [`portcullis_idp`] exactly as a third-party plugin would; nothing here is
//! privileged. Main design decision: **one HTTP client for all providers**. The binary builds one
//! [`reqwest::Client`] with [`http_client`] (rustls, redirects off, connect and total timeouts) and hands clones to
//! the factories, so TLS policy and timeouts live in one place; only a provider configured with
//! `insecureSkipVerify: true` gets a separate client, built on a code path named `dangerous_*` that logs a warning.
//! The OAuth 2.0 code exchange is written by hand in a shared module (`oauth2_client`) so that every upstream quirk
//! (errors with HTTP 200, form-encoded answers) lands in the right [`ProviderError`](portcullis_idp::ProviderError)
//! class. LDAP does not use HTTP: it keeps its own small connection pools per provider.
//!
//! ```no_run
//! let http = portcullis_providers::http_client(false);
//! let registry = portcullis_providers::builtin_registry(http);
//! assert!(registry.resolve("AliyunIDaasProvider").is_some());
//! ```

#[cfg(feature = "aliyun-idaas")]
pub mod aliyun_idaas;
#[cfg(feature = "cas")]
pub mod cas;
#[cfg(feature = "generic-oauth2")]
pub mod generic_oauth2;
#[cfg(feature = "github")]
pub mod github;
#[cfg(feature = "ldap")]
pub mod ldap;
#[cfg(feature = "oidc")]
pub mod oidc;
// With every HTTP provider feature off, the shared helpers have no user; that build exists only to keep features
// honest.
#[cfg_attr(
    not(any(
        feature = "github",
        feature = "aliyun-idaas",
        feature = "oidc",
        feature = "cas",
        feature = "generic-oauth2"
    )),
    allow(dead_code)
)]
mod http;
#[cfg_attr(
    not(any(
        feature = "github",
        feature = "aliyun-idaas",
        feature = "oidc",
        feature = "generic-oauth2"
    )),
    allow(dead_code)
)]
mod oauth2_client;

#[cfg(feature = "aliyun-idaas")]
pub use aliyun_idaas::{AliyunIdaasFactory, AliyunIdaasProvider};
#[cfg(feature = "cas")]
pub use cas::{CasFactory, CasIdentityProvider};
#[cfg(feature = "generic-oauth2")]
pub use generic_oauth2::{GenericOAuth2Factory, GenericOAuth2Provider};
#[cfg(feature = "github")]
pub use github::{GitHubFactory, GitHubIdentityProvider};
pub use http::{
    CONNECT_TIMEOUT, REQUEST_TIMEOUT, USER_AGENT, http_client_builder, try_http_client,
};
#[cfg(feature = "ldap")]
pub use ldap::{LdapFactory, LdapIdentityProvider};
#[cfg(feature = "oidc")]
pub use oidc::{OidcFactory, OidcIdentityProvider};

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

/// A registry with every built-in provider enabled by cargo features, sharing `http`, plus the aliases
/// `AliyunIDaasProvider` → `AliyunIDaaSProvider` and `GenericOAuth2Provider` → `OAuth2IdentityProvider`. Add
/// custom factories to the returned registry.
pub fn builtin_registry(http: reqwest::Client) -> ProviderRegistry {
    #[allow(unused_mut)] // not mutated when every provider feature is off
    let mut registry = ProviderRegistry::new();
    #[cfg(feature = "github")]
    registry.register_oauth(GitHubFactory::new(http.clone()));
    #[cfg(feature = "aliyun-idaas")]
    registry
        .register_oauth(AliyunIdaasFactory::new(http.clone()))
        .alias(AliyunIdaasFactory::ALIAS, AliyunIdaasFactory::TYPE);
    #[cfg(feature = "oidc")]
    registry.register_oauth(OidcFactory::new(http.clone()));
    #[cfg(feature = "ldap")]
    registry.register_password(LdapFactory::new());
    #[cfg(feature = "cas")]
    registry.register_oauth(CasFactory::new(http.clone()));
    #[cfg(feature = "generic-oauth2")]
    registry
        .register_oauth(GenericOAuth2Factory::new(http.clone()))
        .alias(GenericOAuth2Factory::ALIAS, GenericOAuth2Factory::TYPE);
    let _ = http;
    registry
}

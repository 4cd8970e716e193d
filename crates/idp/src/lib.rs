//! The identity-provider plugin API of Portcullis: the one crate a third-party provider depends on.
//!
//! It is the Rust form of KubeSphere's plugin interfaces (`Identity`, `OAuthProvider`, `OAuthProviderFactory`,
//! `GenericProvider`; spec §4.1):
//!
//! * [`Identity`]: who the upstream says the user is; only a non-empty, *stable* [`Identity::user_id`] is required.
//! * [`OAuthProvider`]: builds the authorization URL from a server-chosen [`AuthorizationRequest`] (state, PKCE
//!   challenge, nonce) and exchanges the [`CallbackRequest`] for an [`Identity`].
//! * [`PasswordProvider`]: checks a user name and password (LDAP).
//! * [`OAuthProviderFactory`] / [`PasswordProviderFactory`] / [`ProviderFactory`]: create a provider from its
//!   free-form [`ProviderOptions`], validating them without network I/O.
//! * [`ProviderRegistry`]: the factories keyed by `type`, filled explicitly by the binary.
//! * [`ProviderError`]: separates "bad credentials" (refuse this login) from "misconfigured" and "upstream broken".
//! * [`Secret`]: a string with a redacted `Debug`.
//!
//! Main design decision: **no global state and no `init()` self-registration**. Where KubeSphere's plugins
//! register themselves from `init()` and are linked in by blank imports, here the binary builds a
//! [`ProviderRegistry`] and registers each factory in one explicit line, so a custom build sees exactly which
//! providers it contains and tests can build registries of their own. Async trait methods use the `async-trait`
//! crate, so providers are plain `Arc<dyn OAuthProvider>` trait objects. The crate depends only on serde,
//! serde_json, url, thiserror and async-trait: a plugin does not inherit Portcullis' HTTP server, HTTP client or
//! database.
//!
//! A minimal provider:
//!
//! ```
//! use std::sync::Arc;
//! use async_trait::async_trait;
//! use portcullis_idp::*;
//! use serde_json::{Map, Value};
//! use url::Url;
//!
//! struct Example { auth_url: Url, client_id: String, public: Map<String, Value> }
//!
//! #[async_trait]
//! impl OAuthProvider for Example {
//!     fn authorization_url(&self, req: &AuthorizationRequest) -> Result<Url, ProviderError> {
//!         let mut url = self.auth_url.clone();
//!         url.query_pairs_mut()
//!             .append_pair("client_id", &self.client_id)
//!             .append_pair("response_type", "code")
//!             .append_pair("state", &req.state);
//!         Ok(url)
//!     }
//!     fn supports_pkce(&self) -> bool { false }
//!     async fn exchange(&self, callback: &CallbackRequest) -> Result<Identity, ProviderError> {
//!         let code = callback.code()?; // turns `error=access_denied` into BadCredentials
//!         // ... exchange `code` at the token endpoint, fetch the user ...
//!         Ok(Identity::new(format!("user-of-{code}"))?.with_username("someone"))
//!     }
//!     fn public_options(&self) -> Map<String, Value> { self.public.clone() }
//! }
//!
//! struct ExampleFactory;
//! impl OAuthProviderFactory for ExampleFactory {
//!     fn provider_type(&self) -> &str { "ExampleIdentityProvider" }
//!     fn create(&self, _name: &str, options: &ProviderOptions) -> Result<Arc<dyn OAuthProvider>, ProviderError> {
//!         let client_id = options.require_str("clientID")?;
//!         let auth_url = options.require_url("endpoint.authURL")?;
//!         options.get_secret("clientSecret")?;
//!         Ok(Arc::new(Example { auth_url, client_id, public: options.public_map() }))
//!     }
//! }
//!
//! let mut registry = ProviderRegistry::new();
//! registry.register_oauth(ExampleFactory);
//! let options = ProviderOptions::from_value(serde_json::json!({
//!     "clientID": "abc", "clientSecret": "s3cret", "endpoint": {"authURL": "https://idp.example/authorize"},
//!     "colour": "blue",
//! })).unwrap();
//! let provider = registry.create("ExampleIdentityProvider", "example", &options).unwrap();
//! assert_eq!(options.warnings(), vec!["unknown option `colour` is ignored"]);
//! assert!(!provider.public_options().contains_key("clientSecret"));
//! let url = provider.as_oauth().unwrap().authorization_url(&AuthorizationRequest::new("xyz")).unwrap();
//! assert!(url.as_str().contains("state=xyz"));
//! ```

mod ci_de;
mod error;
mod identity;
mod options;
mod provider;
mod registry;
mod secret;

pub use error::{BoxError, ProviderError};
pub use identity::Identity;
pub use options::ProviderOptions;
pub use provider::{
    AuthorizationRequest, CallbackRequest, OAuthProvider, PasswordProvider, Provider,
};
pub use registry::{
    OAuthProviderFactory, PasswordProviderFactory, ProviderFactory, ProviderRegistry,
};
pub use secret::Secret;

/// Re-exported so a plugin can name the trait attribute without its own dependency line.
pub use async_trait::async_trait;

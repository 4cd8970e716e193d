//! Factories and the [`ProviderRegistry`] the binary fills explicitly.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::{OAuthProvider, PasswordProvider, Provider, ProviderError, ProviderOptions};

/// Creates providers of one `type` from their options: the general factory the [`ProviderRegistry`] stores.
///
/// Most plugins implement the narrower [`OAuthProviderFactory`] (the seed's name) or [`PasswordProviderFactory`]
/// and register it with [`ProviderRegistry::register_oauth`] / [`ProviderRegistry::register_password`]; implement
/// this trait directly only for a factory that can create either kind.
pub trait ProviderFactory: Send + Sync {
    /// The `type` string of `identityProviders[]` this factory serves, case-sensitive
    /// (for example `GitHubIdentityProvider`).
    fn provider_type(&self) -> &str;

    /// Validates `options` and creates the provider named `name` (the IdP's `name`, used in callback paths).
    ///
    /// Must fail with [`ProviderError::Misconfigured`] naming the option for a missing required option or a
    /// malformed value, and must not do network I/O that can fail permanently: a provider that needs the network
    /// at start (OIDC discovery) does it lazily or retries. Read options only through the
    /// [`ProviderOptions`] getters, so unknown keys can be reported.
    fn create(&self, name: &str, options: &ProviderOptions) -> Result<Provider, ProviderError>;
}

/// Creates redirect-based providers: the Rust form of KubeSphere's `OAuthProviderFactory` (spec §4.1).
pub trait OAuthProviderFactory: Send + Sync {
    /// The `type` string this factory serves; see [`ProviderFactory::provider_type`].
    fn provider_type(&self) -> &str;

    /// Creates the provider; same contract as [`ProviderFactory::create`].
    fn create(
        &self,
        name: &str,
        options: &ProviderOptions,
    ) -> Result<Arc<dyn OAuthProvider>, ProviderError>;
}

/// Creates user-name-and-password providers: KubeSphere's `GenericProviderFactory` (spec §4.1).
pub trait PasswordProviderFactory: Send + Sync {
    /// The `type` string this factory serves; see [`ProviderFactory::provider_type`].
    fn provider_type(&self) -> &str;

    /// Creates the provider; same contract as [`ProviderFactory::create`].
    fn create(
        &self,
        name: &str,
        options: &ProviderOptions,
    ) -> Result<Arc<dyn PasswordProvider>, ProviderError>;
}

struct OAuthAdapter<F>(F);

impl<F: OAuthProviderFactory> ProviderFactory for OAuthAdapter<F> {
    fn provider_type(&self) -> &str {
        self.0.provider_type()
    }
    fn create(&self, name: &str, options: &ProviderOptions) -> Result<Provider, ProviderError> {
        self.0.create(name, options).map(Provider::OAuth)
    }
}

struct PasswordAdapter<F>(F);

impl<F: PasswordProviderFactory> ProviderFactory for PasswordAdapter<F> {
    fn provider_type(&self) -> &str {
        self.0.provider_type()
    }
    fn create(&self, name: &str, options: &ProviderOptions) -> Result<Provider, ProviderError> {
        self.0.create(name, options).map(Provider::Password)
    }
}

/// The factories a binary knows, keyed by `type`.
///
/// There is no global registry and no self-registration: the binary builds one, adds the built-ins (see
/// `portcullis_providers::builtin_registry`) and any custom factory in one line, and hands it to the server.
///
/// ```
/// # use portcullis_idp::*;
/// # use std::sync::Arc;
/// struct Gitea;
/// impl OAuthProviderFactory for Gitea {
///     fn provider_type(&self) -> &str { "GiteaIdentityProvider" }
///     fn create(&self, _name: &str, options: &ProviderOptions)
///         -> Result<Arc<dyn OAuthProvider>, ProviderError> {
///         let _client_id = options.require_str("clientID")?;
///         unimplemented!("build the provider")
///     }
/// }
/// let mut registry = ProviderRegistry::new();
/// registry.register_oauth(Gitea).alias("GiteaProvider", "GiteaIdentityProvider");
/// assert_eq!(registry.known_types(), vec!["GiteaIdentityProvider"]);
/// assert_eq!(registry.resolve("GiteaProvider"), Some("GiteaIdentityProvider"));
/// assert_eq!(registry.accepted_types(), vec!["GiteaIdentityProvider", "GiteaProvider"]);
/// ```
#[derive(Default, Clone)]
pub struct ProviderRegistry {
    factories: BTreeMap<String, Arc<dyn ProviderFactory>>,
    aliases: BTreeMap<String, String>,
}

impl ProviderRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        ProviderRegistry::default()
    }

    /// Adds a factory under its [`provider_type`](ProviderFactory::provider_type). A factory already registered
    /// for that type is replaced, so a custom build can override a built-in provider.
    pub fn register(&mut self, factory: impl ProviderFactory + 'static) -> &mut Self {
        self.register_arc(Arc::new(factory))
    }

    /// [`register`](Self::register) for a factory that is already shared.
    pub fn register_arc(&mut self, factory: Arc<dyn ProviderFactory>) -> &mut Self {
        self.factories
            .insert(factory.provider_type().to_owned(), factory);
        self
    }

    /// Adds an [`OAuthProviderFactory`].
    pub fn register_oauth(&mut self, factory: impl OAuthProviderFactory + 'static) -> &mut Self {
        self.register(OAuthAdapter(factory))
    }

    /// Adds a [`PasswordProviderFactory`].
    pub fn register_password(
        &mut self,
        factory: impl PasswordProviderFactory + 'static,
    ) -> &mut Self {
        self.register(PasswordAdapter(factory))
    }

    /// Makes `alias` another name for the registered (or later registered) type `target`, for spellings found in
    /// the wild (`AliyunIDaasProvider` for `AliyunIDaaSProvider`). A registered type of the same name wins over
    /// an alias.
    pub fn alias(&mut self, alias: impl Into<String>, target: impl Into<String>) -> &mut Self {
        self.aliases.insert(alias.into(), target.into());
        self
    }

    /// The registered types (not aliases), sorted.
    pub fn known_types(&self) -> Vec<&str> {
        self.factories.keys().map(String::as_str).collect()
    }

    /// Every `type` string a configuration may use: the registered types and the aliases whose
    /// target is registered, sorted.
    pub fn accepted_types(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .factories
            .keys()
            .map(String::as_str)
            .chain(
                self.aliases
                    .iter()
                    .filter(|(_, target)| self.factories.contains_key(target.as_str()))
                    .map(|(alias, _)| alias.as_str()),
            )
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The canonical type for `provider_type` (itself or the alias target), if a factory serves it. Types are
    /// compared case-sensitively, as KubeSphere does.
    pub fn resolve(&self, provider_type: &str) -> Option<&str> {
        if let Some((k, _)) = self.factories.get_key_value(provider_type) {
            return Some(k);
        }
        let target = self.aliases.get(provider_type)?;
        self.factories
            .get_key_value(target.as_str())
            .map(|(k, _)| k.as_str())
    }

    /// The factory for `provider_type` (or an alias of it).
    pub fn factory(&self, provider_type: &str) -> Option<&Arc<dyn ProviderFactory>> {
        self.factories.get(self.resolve(provider_type)?)
    }

    /// Creates the provider `name` of `provider_type` from `options`. An unknown type is
    /// [`ProviderError::Misconfigured`] listing the known ones (with a hint when only the case differs).
    /// Afterwards, [`ProviderOptions::warnings`] lists the options the factory did not read.
    pub fn create(
        &self,
        provider_type: &str,
        name: &str,
        options: &ProviderOptions,
    ) -> Result<Provider, ProviderError> {
        match self.factory(provider_type) {
            Some(f) => f.create(name, options),
            None => {
                let hint = self
                    .factories
                    .keys()
                    .chain(self.aliases.keys())
                    .find(|k| k.eq_ignore_ascii_case(provider_type))
                    .map(|k| format!("; did you mean `{k}`? (types are case-sensitive)"))
                    .unwrap_or_default();
                Err(ProviderError::misconfigured(format!(
                    "unknown identity provider type `{provider_type}` (known types: {}){hint}",
                    self.known_types().join(", ")
                )))
            }
        }
    }
}

impl fmt::Debug for ProviderRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderRegistry")
            .field("types", &self.known_types())
            .field("aliases", &self.aliases)
            .finish()
    }
}

//! [`ProviderSet`]: the identity providers of the configuration, created, in configuration order.

use std::path::Path;

use portcullis_config::{IdentityProviderConfig, Problem};
use portcullis_idp::{Provider, ProviderError, ProviderOptions, ProviderRegistry};
use serde_json::Value;

/// One configured identity provider: its configuration and the created instance (or why it could
/// not be created).
#[derive(Debug, Clone)]
pub struct ProviderEntry {
    /// The `identityProviders[]` entry.
    pub config: IdentityProviderConfig,
    /// The provider, or the creation error (already reported at start).
    pub provider: Result<Provider, String>,
}

impl ProviderEntry {
    /// The `name`.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The button label: `displayName`, else `name`.
    pub fn label(&self) -> &str {
        self.config
            .display_name
            .as_deref()
            .unwrap_or(&self.config.name)
    }

    /// A provider option read case-insensitively as a string (`redirectURL`, ...).
    pub fn option_str(&self, key: &str) -> Option<String> {
        let options = ProviderOptions::new(self.config.provider.clone());
        options
            .get_str(key)
            .ok()
            .flatten()
            .filter(|s| !s.trim().is_empty())
    }
}

/// The identity providers in configuration order, each created from its options. Built by the
/// binary (which owns the registry of concrete providers) and held by the engine.
#[derive(Debug, Clone, Default)]
pub struct ProviderSet {
    entries: Vec<ProviderEntry>,
}

impl ProviderSet {
    /// Creates every configured provider with `registry`. Returns the set, the errors (a missing
    /// `clientID`, a malformed URL, an unknown type: each a [`Problem`] whose key path names the
    /// entry's `provider` map) and the warnings (option keys no provider reads). Every provider is
    /// created, `disabled` ones included, so a broken entry is reported before it is enabled.
    pub fn build(
        configs: &[IdentityProviderConfig],
        registry: &ProviderRegistry,
        source: Option<&Path>,
    ) -> (ProviderSet, Vec<Problem>, Vec<Problem>) {
        let mut entries = Vec::with_capacity(configs.len());
        let (mut errors, mut warnings) = (Vec::new(), Vec::new());
        for config in configs {
            let problem = |message: String| Problem {
                file: source.map(Path::to_path_buf),
                line: config.line,
                path: format!("{}.provider", config.path),
                message,
            };
            let options = ProviderOptions::new(config.provider.clone());
            let created = registry.create(&config.provider_type, &config.name, &options);
            let provider = match created {
                Ok(p) => {
                    for w in options.warnings() {
                        warnings.push(problem(format!(
                            "{w} (identity provider \"{}\")",
                            config.name
                        )));
                    }
                    Ok(p)
                }
                Err(e) => {
                    let message = match &e {
                        ProviderError::Misconfigured(m) => m.clone(),
                        other => other.to_string(),
                    };
                    errors.push(problem(format!(
                        "identity provider \"{}\" ({}): {message}",
                        config.name, config.provider_type
                    )));
                    Err(message)
                }
            };
            if config.name == "confirm" {
                warnings.push(problem(
                    "an identity provider named \"confirm\" cannot be started from /login/confirm \
                     (that is the registration page); rename it to use the login page"
                        .into(),
                ));
            }
            entries.push(ProviderEntry {
                config: config.clone(),
                provider,
            });
        }
        (ProviderSet { entries }, errors, warnings)
    }

    /// An empty set (no identity providers).
    pub fn empty() -> Self {
        ProviderSet::default()
    }

    /// Every entry, in configuration order.
    pub fn entries(&self) -> &[ProviderEntry] {
        &self.entries
    }

    /// The entry named `name`.
    pub fn get(&self, name: &str) -> Option<&ProviderEntry> {
        self.entries.iter().find(|e| e.config.name == name)
    }

    /// What `/kapis/config.kubesphere.io/v1alpha2/configs/oauth` publishes for `name`: the
    /// provider's public options (secrets removed, defaulted endpoints filled in). `None` for an
    /// unknown name or a provider that could not be created.
    pub fn public_options(&self, name: &str) -> Option<Value> {
        match &self.get(name)?.provider {
            Ok(p) => Some(Value::Object(p.public_options())),
            Err(_) => None,
        }
    }
}

/// Whether `redirect_url` is Portcullis' own callback for provider `name` under `public_url`
/// (`<publicURL>/oauth/callback/<name>`, a trailing slash tolerated).
pub fn points_at_callback(redirect_url: &str, public_url: &url::Url, name: &str) -> bool {
    let Ok(url) = url::Url::parse(redirect_url.trim()) else {
        return false;
    };
    let want = format!(
        "{}/oauth/callback/{name}",
        public_url.path().trim_end_matches('/')
    );
    url.origin() == public_url.origin() && url.path().trim_end_matches('/') == want
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_detection() {
        let public = url::Url::parse("https://ks.example.com/auth").unwrap();
        assert!(points_at_callback(
            "https://ks.example.com/auth/oauth/callback/github",
            &public,
            "github"
        ));
        assert!(points_at_callback(
            "https://ks.example.com/auth/oauth/callback/github/",
            &public,
            "github"
        ));
        assert!(!points_at_callback(
            "https://console.example.com/oauth/redirect/github",
            &public,
            "github"
        ));
        assert!(!points_at_callback(
            "http://ks.example.com/auth/oauth/callback/github",
            &public,
            "github"
        ));
        assert!(!points_at_callback(
            "https://ks.example.com/auth/oauth/callback/gitlab",
            &public,
            "github"
        ));
        assert!(!points_at_callback("not a url", &public, "github"));
    }
}

//! The identity providers of this build: the built-in registry plus the factories a custom build
//! registers, one shared HTTP client with the upstream timeout, and the creation of every
//! configured provider at start (`serve` and `check-config` alike).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use portcullis_config::{Config, Problem};
use portcullis_core::ProviderSet;
use portcullis_idp::ProviderRegistry;

use crate::cli::CommonOpts;

/// Adds a custom build's provider factories to the registry.
pub(crate) type RegistryHook = Arc<dyn Fn(&mut ProviderRegistry) + Send + Sync>;

/// What every command needs to know about this build's providers.
#[derive(Clone)]
pub(crate) struct Wiring {
    hook: RegistryHook,
}

impl Wiring {
    pub(crate) fn new(hook: RegistryHook) -> Self {
        Wiring { hook }
    }

    /// The registry: built-ins sharing one HTTP client (timeout from `--upstream-timeout`),
    /// then the custom factories (which may replace a built-in type).
    pub(crate) fn registry(&self, common: &CommonOpts) -> Result<ProviderRegistry> {
        let http = http_client(common.upstream_timeout)?;
        let mut registry = portcullis_providers::builtin_registry(http);
        (self.hook)(&mut registry);
        Ok(registry)
    }
}

/// The shared upstream client; `timeout` replaces the default total timeout (and caps the
/// connect timeout).
fn http_client(timeout: Option<Duration>) -> Result<reqwest::Client> {
    let mut builder = portcullis_providers::http_client_builder();
    if let Some(t) = timeout {
        builder = builder
            .timeout(t)
            .connect_timeout(t.min(portcullis_providers::CONNECT_TIMEOUT));
    }
    builder
        .build()
        .context("building the HTTP client for identity providers")
}

/// Parses `--upstream-timeout` (a Go duration such as `15s` or `1m30s`).
pub(crate) fn parse_timeout(text: &str) -> Result<Duration, String> {
    let d = portcullis_config::parse_go_duration(text)?;
    if d.is_zero() {
        return Err("the upstream timeout must be longer than zero".into());
    }
    Ok(d)
}

/// Creates every configured identity provider. Fails listing every misconfigured one (each
/// message names the entry's key path); returns the set and the warnings (unknown option keys).
pub(crate) fn build(
    config: &Config,
    registry: &ProviderRegistry,
) -> Result<(ProviderSet, Vec<Problem>)> {
    let (set, errors, warnings) = ProviderSet::build(
        &config.authentication.oauth_options.identity_providers,
        registry,
        config.source.as_deref(),
    );
    if !errors.is_empty() {
        let mut text = String::from("invalid identity provider configuration:");
        for e in &errors {
            text.push_str(&format!("\n{e}"));
        }
        for w in &warnings {
            text.push_str(&format!("\nwarning: {w}"));
        }
        bail!(text);
    }
    Ok((set, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout("1m30s"), Ok(Duration::from_secs(90)));
        assert!(parse_timeout("0s").is_err());
        assert!(parse_timeout("soon").is_err());
    }
}

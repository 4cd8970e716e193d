//! Where the upstream's endpoints come from: OpenID Connect Discovery (`<issuer>/.well-known/openid-configuration`)
//! done lazily and cached, or the configured `endpoint.*` when there is no `issuer`.
//!
//! Discovery never blocks provider creation: `create` starts one attempt in the background (when a tokio runtime is
//! running), every use that finds no metadata tries again (at most once per [`RETRY_INTERVAL`] from the synchronous
//! `authorization_url`, inline from `exchange`), and the first success is kept for the life of the provider. So a
//! provider whose upstream is down at start begins to work as soon as the upstream is back.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;
use portcullis_idp::ProviderError;
use reqwest::Client;
use serde_json::Value;
use url::Url;

use super::jwks::{self, Jwks};
use crate::http::{self, excerpt};

/// The least time between two discovery attempts after a failure (and between two background
/// attempts started by `authorization_url`).
pub(crate) const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// The upstream's endpoints and capabilities, from discovery or configuration.
pub(crate) struct Endpoints {
    /// The `iss` every ID token must carry; `None` without `issuer` (then `iss` is not compared).
    pub issuer: Option<String>,
    pub auth_url: Url,
    pub token_url: Url,
    pub userinfo_url: Option<Url>,
    pub end_session_url: Option<Url>,
    /// `token_endpoint_auth_methods_supported` (empty when unknown).
    pub token_auth_methods: Vec<String>,
    /// The algorithms an ID token may be signed with.
    pub algorithms: Vec<Algorithm>,
    pub jwks: Jwks,
}

/// The configured endpoints, which fill what discovery does not say.
#[derive(Debug, Clone, Default)]
pub(crate) struct Configured {
    pub auth_url: Option<Url>,
    pub token_url: Option<Url>,
    pub userinfo_url: Option<Url>,
    pub jwks_url: Option<Url>,
    pub end_session_url: Option<Url>,
}

/// The lazily discovered endpoints of one provider.
pub(crate) struct Discovery {
    issuer: String,
    url: Url,
    configured: Configured,
    http: Client,
    cached: RwLock<Option<Arc<Endpoints>>>,
    last_attempt: Mutex<Option<Instant>>,
    /// When the last attempt failed, and why.
    last_error: Mutex<Option<(Instant, String)>>,
    fetch: tokio::sync::Mutex<()>,
}

impl Discovery {
    /// Discovery for `issuer` (as configured; compared exactly with the document's `issuer`).
    pub fn new(
        issuer: String,
        configured: Configured,
        http: Client,
    ) -> Result<Self, ProviderError> {
        let url = Url::parse(&format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        ))
        .map_err(|e| {
            ProviderError::misconfigured(format!("option `issuer` is not a valid URL: {e}"))
        })?;
        Ok(Discovery {
            issuer,
            url,
            configured,
            http,
            cached: RwLock::new(None),
            last_attempt: Mutex::new(None),
            last_error: Mutex::new(None),
            fetch: tokio::sync::Mutex::new(()),
        })
    }

    /// The endpoints if discovery has succeeded.
    pub fn cached(&self) -> Option<Arc<Endpoints>> {
        self.cached
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Starts a background attempt if none ran in the last [`RETRY_INTERVAL`] and a tokio runtime is available.
    pub fn kick(self: &Arc<Self>) {
        {
            let mut last = self.last_attempt.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|t| t.elapsed() < RETRY_INTERVAL) {
                return;
            }
            *last = Some(Instant::now());
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let this = self.clone();
            handle.spawn(async move {
                if let Err(e) = this.get().await {
                    tracing::warn!(issuer = %this.issuer, error = %e, "OIDC discovery failed; retrying on next use");
                }
            });
        }
    }

    /// Why the endpoints are not known yet, for the error `authorization_url` returns.
    pub fn not_ready(&self) -> ProviderError {
        let why = self
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or_else(|| "it has not completed yet".into(), |(_, why)| why.clone());
        ProviderError::upstream(format!(
            "OpenID Connect discovery at {} has not succeeded: {why}; it is retried on the next login",
            self.url
        ))
    }

    /// The endpoints, discovering them now if needed: single-flight (a caller arriving during
    /// an attempt waits for it), and at most one attempt per [`RETRY_INTERVAL`] after a failure
    /// (a caller within it gets the failure at once).
    pub async fn get(&self) -> Result<Arc<Endpoints>, ProviderError> {
        if let Some(e) = self.cached() {
            return Ok(e);
        }
        let _guard = self.fetch.lock().await;
        if let Some(e) = self.cached() {
            return Ok(e);
        }
        let failed_recently = self
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < RETRY_INTERVAL);
        if failed_recently {
            return Err(self.not_ready());
        }
        *self.last_attempt.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        match self.discover().await {
            Ok(endpoints) => {
                let endpoints = Arc::new(endpoints);
                *self.cached.write().unwrap_or_else(|e| e.into_inner()) = Some(endpoints.clone());
                *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
                tracing::info!(issuer = %self.issuer, "OIDC discovery succeeded");
                Ok(endpoints)
            }
            Err(e) => {
                *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((Instant::now(), e.to_string()));
                Err(e)
            }
        }
    }

    async fn discover(&self) -> Result<Endpoints, ProviderError> {
        let what = "OIDC discovery";
        let request = self
            .http
            .get(self.url.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        let answer = http::send(request, what).await?;
        if !answer.status.is_success() {
            return Err(ProviderError::upstream(format!(
                "{what} ({}) answered HTTP {}: {}",
                self.url,
                answer.status.as_u16(),
                answer.excerpt()
            )));
        }
        let doc = answer.json(what)?;
        let issuer = doc
            .get("issuer")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if issuer.trim_end_matches('/') != self.issuer.trim_end_matches('/') {
            // OpenID Connect Discovery §4.3: a mismatch means the wrong server or an attack.
            return Err(ProviderError::misconfigured(format!(
                "{what}: the document at {} names issuer {:?}, but option `issuer` is {:?}; they must be equal",
                self.url,
                excerpt(issuer, 200),
                self.issuer
            )));
        }
        let url = |key: &str| -> Result<Option<Url>, ProviderError> {
            match doc.get(key).and_then(Value::as_str) {
                None | Some("") => Ok(None),
                Some(raw) => Url::parse(raw).map(Some).map_err(|e| {
                    ProviderError::upstream(format!("{what}: `{key}` is not a valid URL ({e})"))
                }),
            }
        };
        let c = &self.configured;
        let required = |key: &str, configured: &Option<Url>| -> Result<Url, ProviderError> {
            url(key)?.or_else(|| configured.clone()).ok_or_else(|| {
                ProviderError::upstream(format!("{what}: the document has no `{key}`"))
            })
        };
        let strings = |key: &str| -> Vec<String> {
            doc.get(key)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let jwks_url = required("jwks_uri", &c.jwks_url)?;
        Ok(Endpoints {
            // The document's own spelling is what its tokens carry.
            issuer: Some(issuer.to_owned()),
            auth_url: required("authorization_endpoint", &c.auth_url)?,
            token_url: required("token_endpoint", &c.token_url)?,
            userinfo_url: url("userinfo_endpoint")?.or_else(|| c.userinfo_url.clone()),
            end_session_url: url("end_session_endpoint")?.or_else(|| c.end_session_url.clone()),
            token_auth_methods: strings("token_endpoint_auth_methods_supported"),
            algorithms: jwks::allowed_algorithms(&strings("id_token_signing_alg_values_supported")),
            jwks: Jwks::new(jwks_url, self.http.clone()),
        })
    }
}

/// The endpoints of a provider configured without `issuer`: `endpoint.authURL`, `endpoint.tokenURL` and
/// `endpoint.jwksURL` are required (the ID token is verified against the JWKS; it is never parsed unverified).
pub(crate) fn static_endpoints(c: Configured, http: Client) -> Result<Endpoints, ProviderError> {
    let need = |u: Option<Url>, key: &str| {
        u.ok_or_else(|| {
            ProviderError::misconfigured(format!(
                "missing required option `{key}` (required when `issuer` is not set)"
            ))
        })
    };
    let jwks_url = need(c.jwks_url, "endpoint.jwksURL")?;
    Ok(Endpoints {
        issuer: None,
        auth_url: need(c.auth_url, "endpoint.authURL")?,
        token_url: need(c.token_url, "endpoint.tokenURL")?,
        userinfo_url: c.userinfo_url,
        end_session_url: c.end_session_url,
        token_auth_methods: Vec::new(),
        algorithms: jwks::ASYMMETRIC.to_vec(),
        jwks: Jwks::new(jwks_url, http),
    })
}

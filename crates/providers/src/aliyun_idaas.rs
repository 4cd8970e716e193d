//! `AliyunIDaaSProvider` (spec §4.3): Alibaba Cloud IDaaS over OAuth 2.0, with its `{success, message, code,
//! data}` userinfo envelope.
//!
//! PKCE is **off by default** (option `pkce: true` turns it on): KubeSphere never sent it, IDaaS (EIAM 1.x)
//! does not document it for confidential clients, and an unexpected `code_verifier` could make a strict server
//! refuse the exchange. Instances that support it (EIAM 2.0) should enable it. `insecureSkipVerify` is accepted
//! as a Portcullis extension (KubeSphere's IDaaS provider has no such option).

use std::sync::Arc;

use async_trait::async_trait;
use portcullis_idp::{
    AuthorizationRequest, CallbackRequest, Identity, OAuthProvider, OAuthProviderFactory,
    ProviderError, ProviderOptions,
};
use reqwest::Client;
use serde_json::{Map, Value};
use url::Url;

use crate::http::{self, excerpt, string_field};
use crate::oauth2_client::{ClientAuth, OAuth2Client};

/// Creates [`AliyunIdaasProvider`]s for `type: AliyunIDaaSProvider`.
#[derive(Debug, Clone)]
pub struct AliyunIdaasFactory {
    http: Client,
}

impl AliyunIdaasFactory {
    /// The `type` string (capital S, as in KubeSphere's code).
    pub const TYPE: &'static str = "AliyunIDaaSProvider";
    /// The spelling in KubeSphere's documentation, registered as an alias by
    /// [`builtin_registry`](crate::builtin_registry).
    pub const ALIAS: &'static str = "AliyunIDaasProvider";

    /// A factory whose providers use the shared client `http`.
    pub fn new(http: Client) -> Self {
        AliyunIdaasFactory { http }
    }
}

impl OAuthProviderFactory for AliyunIdaasFactory {
    fn provider_type(&self) -> &str {
        Self::TYPE
    }

    /// Options: `clientID`, `clientSecret`, `redirectURL`, `endpoint.authURL|tokenURL|userInfoURL` (all
    /// required), `scopes`, `pkce` (default false), `insecureSkipVerify` (default false).
    fn create(
        &self,
        name: &str,
        options: &ProviderOptions,
    ) -> Result<Arc<dyn OAuthProvider>, ProviderError> {
        Ok(Arc::new(AliyunIdaasProvider::new(
            name, options, &self.http,
        )?))
    }
}

/// A configured Aliyun IDaaS provider.
#[derive(Debug)]
pub struct AliyunIdaasProvider {
    oauth: OAuth2Client,
    user_info_url: Url,
    pkce: bool,
    http: Client,
    public: Map<String, Value>,
}

impl AliyunIdaasProvider {
    /// Validates `options` and builds the provider; no network I/O.
    pub fn new(
        name: &str,
        options: &ProviderOptions,
        http: &Client,
    ) -> Result<Self, ProviderError> {
        let client_id = options.require_str("clientID")?;
        let client_secret = options
            .get_secret("clientSecret")?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ProviderError::misconfigured("missing required option `clientSecret`")
            })?;
        let redirect_url = options.require_url("redirectURL")?;
        let scopes = options.get_str_list("scopes")?.unwrap_or_default();
        let auth_url = options.require_url("endpoint.authURL")?;
        let token_url = options.require_url("endpoint.tokenURL")?;
        let user_info_url = options.require_url("endpoint.userInfoURL")?;
        let pkce = options.get_bool("pkce")?.unwrap_or(false);
        let insecure = options.get_bool("insecureSkipVerify")?.unwrap_or(false);
        let http = if insecure {
            http::dangerous_insecure_client(name)?
        } else {
            http.clone()
        };
        let oauth = OAuth2Client {
            upstream: "Aliyun IDaaS".into(),
            client_id,
            client_secret: Some(client_secret),
            auth_url,
            token_url,
            redirect_url: Some(redirect_url.into()),
            scopes,
            client_auth: ClientAuth::RequestBody,
        };
        Ok(AliyunIdaasProvider {
            oauth,
            user_info_url,
            pkce,
            http,
            public: options.public_map(),
        })
    }
}

/// The identity in an IDaaS userinfo answer: the envelope must say `"success": true` and carry a `data` object with
/// a `sub` (the user id); `username`, `email` and `nickname` are taken when present. A failure envelope is an
/// upstream error carrying IDaaS' message and code.
pub fn userinfo_identity(envelope: &Value) -> Result<Identity, ProviderError> {
    let what = "Aliyun IDaaS userinfo";
    if envelope.get("success") != Some(&Value::Bool(true)) {
        let message = envelope
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("no message");
        let code = string_field(envelope, "code").unwrap_or_else(|| "none".into());
        return Err(ProviderError::upstream(format!(
            "{what} reported failure: {} (code {})",
            excerpt(message, 200),
            excerpt(&code, 64)
        )));
    }
    let Some(data) = envelope.get("data").filter(|d| d.is_object()) else {
        return Err(ProviderError::upstream(format!(
            "{what} answered success without `data`"
        )));
    };
    let Some(sub) = string_field(data, "sub") else {
        return Err(ProviderError::upstream(format!(
            "{what} answered a user without `data.sub`"
        )));
    };
    Ok(Identity::new(sub)?
        .with_username(string_field(data, "username").unwrap_or_default())
        .with_email(string_field(data, "email").unwrap_or_default())
        .with_display_name(string_field(data, "nickname").unwrap_or_default()))
}

#[async_trait]
impl OAuthProvider for AliyunIdaasProvider {
    fn authorization_url(&self, req: &AuthorizationRequest) -> Result<Url, ProviderError> {
        Ok(self.oauth.authorization_url(req, self.pkce, false))
    }

    fn supports_pkce(&self) -> bool {
        self.pkce
    }

    async fn exchange(&self, callback: &CallbackRequest) -> Result<Identity, ProviderError> {
        let code = callback.code()?;
        let verifier = if self.pkce {
            callback.pkce_verifier.as_deref()
        } else {
            None
        };
        let token = self.oauth.exchange_code(&self.http, code, verifier).await?;

        let what = "Aliyun IDaaS userinfo";
        let request = self
            .http
            .get(self.user_info_url.clone())
            .bearer_auth(token.access_token.expose())
            .header(reqwest::header::ACCEPT, "application/json");
        let answer = http::send(request, what).await?;
        let parsed = answer.json(what);
        if !answer.status.is_success() {
            let detail = parsed
                .ok()
                .and_then(|v| {
                    v.get("message")
                        .and_then(Value::as_str)
                        .map(|m| excerpt(m, 200))
                })
                .unwrap_or_else(|| answer.excerpt());
            return Err(ProviderError::upstream(format!(
                "{what} answered HTTP {}: {detail}",
                answer.status.as_u16()
            )));
        }
        userinfo_identity(&parsed?)
    }

    fn public_options(&self) -> Map<String, Value> {
        self.public.clone()
    }
}

//! `OIDCIdentityProvider` (spec §4.4): an OpenID Connect relying party for the authorization-code flow.
//!
//! Fixed against KubeSphere (spec §4.4, §10 items 2 and 17):
//! * the ID token signature is **always** verified against the upstream's JWKS (`jwks_uri` from discovery, or
//!   `endpoint.jwksURL`, required without `issuer`); keys are cached and refetched on an unknown `kid` (rotation);
//!   only asymmetric algorithms; `iss`, `aud`, `azp`, `exp`/`nbf`/`iat` with `clockSkew` leeway, and `nonce`;
//! * PKCE `S256` is sent (option `pkce`, default true);
//! * `openid` is always requested exactly once and the other configured scopes are kept;
//! * discovery is lazy and retried ([`discovery`]): an upstream that is down when Portcullis starts is picked up
//!   when it comes back, and `create` never does network I/O that can fail.
//!
//! Portcullis options beyond KubeSphere's: `requireEmailVerified` (refuse logins whose e-mail is not verified),
//! `groupsClaim` (default `groups`; a claim name or a JSON pointer such as `/realm_access/roles`), `clockSkew`
//! (seconds or a duration such as `30s`, default 10 s), `pkce`, `clientAuthStyle` (`auto`, `basic`, `body`).

mod claims;
mod discovery;
mod jwks;
mod options;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use portcullis_idp::{
    AuthorizationRequest, CallbackRequest, Identity, OAuthProvider, OAuthProviderFactory,
    ProviderError, ProviderOptions, Secret,
};
use reqwest::Client;
use serde_json::{Map, Value, json};
use url::Url;

pub use self::claims::{IdTokenCheck, Mapping};
use self::discovery::{Configured, Discovery, Endpoints};
use self::options::AuthStyle;
use crate::http::{self, excerpt};
use crate::oauth2_client::{ClientAuth, OAuth2Client};

pub use self::options::DEFAULT_CLOCK_SKEW;

/// Creates [`OidcIdentityProvider`]s for `type: OIDCIdentityProvider`.
#[derive(Debug, Clone)]
pub struct OidcFactory {
    http: Client,
}

impl OidcFactory {
    /// The `type` string.
    pub const TYPE: &'static str = "OIDCIdentityProvider";

    /// A factory whose providers use the shared client `http`.
    pub fn new(http: Client) -> Self {
        OidcFactory { http }
    }
}

impl OAuthProviderFactory for OidcFactory {
    fn provider_type(&self) -> &str {
        Self::TYPE
    }

    fn create(
        &self,
        name: &str,
        options: &ProviderOptions,
    ) -> Result<Arc<dyn OAuthProvider>, ProviderError> {
        Ok(Arc::new(OidcIdentityProvider::new(
            name, options, &self.http,
        )?))
    }
}

enum Source {
    Discovered(Arc<Discovery>),
    Static(Arc<Endpoints>),
}

/// A configured OpenID Connect provider.
pub struct OidcIdentityProvider {
    name: String,
    client_id: String,
    client_secret: Option<Secret>,
    redirect_url: String,
    scopes: Vec<String>,
    get_user_info: bool,
    pkce: bool,
    auth_style: AuthStyle,
    leeway: u64,
    post_logout_redirect_uri: Option<Url>,
    mapping: Mapping,
    source: Source,
    http: Client,
    public: Map<String, Value>,
}

impl std::fmt::Debug for OidcIdentityProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcIdentityProvider")
            .field("name", &self.name)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl OidcIdentityProvider {
    /// Validates `options` and builds the provider. No network I/O can fail here: with `issuer`, discovery starts
    /// in the background and is retried on use.
    pub fn new(
        name: &str,
        options: &ProviderOptions,
        http: &Client,
    ) -> Result<Self, ProviderError> {
        let client_id = options.require_str("clientID")?;
        let client_secret = options
            .get_secret("clientSecret")?
            .filter(|s| !s.is_empty());
        let redirect_url = options.require_url("redirectURL")?.to_string();
        let scopes =
            options::effective_scopes(&options.get_str_list("scopes")?.unwrap_or_default());
        let get_user_info = options.get_bool("getUserInfo")?.unwrap_or(false);
        let insecure = options.get_bool("insecureSkipVerify")?.unwrap_or(false);
        let pkce = options.get_bool("pkce")?.unwrap_or(true);
        let auth_style = options::auth_style(options)?;
        let leeway = options::clock_skew(options)?.as_secs();
        let mapping = Mapping {
            email_key: options
                .get_str("emailKey")?
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "email".into()),
            preferred_username_key: options
                .get_str("preferredUsernameKey")?
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "preferred_username".into()),
            groups_claim: options
                .get_str("groupsClaim")?
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "groups".into()),
            require_email_verified: options.get_bool("requireEmailVerified")?.unwrap_or(false),
        };
        let post_logout_redirect_uri = options.get_url("postLogoutRedirectURI")?;
        let configured = Configured {
            auth_url: options.get_url("endpoint.authURL")?,
            token_url: options.get_url("endpoint.tokenURL")?,
            userinfo_url: options.get_url("endpoint.userInfoURL")?,
            jwks_url: options.get_url("endpoint.jwksURL")?,
            end_session_url: options.get_url("endpoint.endSessionURL")?,
        };
        let http = if insecure {
            http::dangerous_insecure_client(name)?
        } else {
            http.clone()
        };
        let issuer = options
            .get_str("issuer")?
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty());
        let source = match issuer {
            Some(issuer) => {
                options.get_url("issuer")?;
                let d = Arc::new(Discovery::new(issuer, configured, http.clone())?);
                d.kick();
                Source::Discovered(d)
            }
            None => {
                if get_user_info && configured.userinfo_url.is_none() {
                    return Err(ProviderError::misconfigured(
                        "missing required option `endpoint.userInfoURL` (required by `getUserInfo` when `issuer` is not set)",
                    ));
                }
                Source::Static(Arc::new(discovery::static_endpoints(
                    configured,
                    http.clone(),
                )?))
            }
        };
        Ok(OidcIdentityProvider {
            name: name.to_owned(),
            client_id,
            client_secret,
            redirect_url,
            scopes,
            get_user_info,
            pkce,
            auth_style,
            leeway,
            post_logout_redirect_uri,
            mapping,
            source,
            http,
            public: options.public_map(),
        })
    }

    /// Where to send the browser to end the upstream session (RP-initiated logout, as KubeSphere 4.x does):
    /// `end_session_endpoint` with `client_id`, `post_logout_redirect_uri` (when configured) and `id_token_hint`
    /// (when given). `None` when the upstream has no end-session endpoint or discovery has not succeeded yet.
    pub fn end_session_url(&self, id_token_hint: Option<&str>) -> Option<Url> {
        let mut url = self.endpoints_now()?.end_session_url.clone()?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_id", &self.client_id);
            if let Some(r) = &self.post_logout_redirect_uri {
                q.append_pair("post_logout_redirect_uri", r.as_str());
            }
            if let Some(hint) = id_token_hint {
                q.append_pair("id_token_hint", hint);
            }
        }
        Some(url)
    }

    fn endpoints_now(&self) -> Option<Arc<Endpoints>> {
        match &self.source {
            Source::Static(e) => Some(e.clone()),
            Source::Discovered(d) => d.cached(),
        }
    }

    async fn endpoints(&self) -> Result<Arc<Endpoints>, ProviderError> {
        match &self.source {
            Source::Static(e) => Ok(e.clone()),
            Source::Discovered(d) => d.get().await,
        }
    }

    fn oauth(&self, e: &Endpoints) -> OAuth2Client {
        let has = |m: &str| e.token_auth_methods.iter().any(|x| x == m);
        let client_auth = match self.auth_style {
            AuthStyle::Fixed(a) => a,
            // OpenID Connect's default is client_secret_basic; use the body only when the upstream says so.
            AuthStyle::Auto if !has("client_secret_basic") && has("client_secret_post") => {
                ClientAuth::RequestBody
            }
            AuthStyle::Auto if self.client_secret.is_none() => ClientAuth::RequestBody,
            AuthStyle::Auto => ClientAuth::Basic,
        };
        OAuth2Client {
            upstream: format!("OIDC provider `{}`", self.name),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            auth_url: e.auth_url.clone(),
            token_url: e.token_url.clone(),
            redirect_url: Some(self.redirect_url.clone()),
            scopes: self.scopes.clone(),
            client_auth,
        }
    }

    /// GET userinfo and check that it describes the ID token's subject (OpenID Connect Core §5.3.2).
    async fn user_info(
        &self,
        e: &Endpoints,
        token: &str,
        sub: &str,
    ) -> Result<Map<String, Value>, ProviderError> {
        let Some(url) = &e.userinfo_url else {
            return Err(ProviderError::misconfigured(
                "`getUserInfo` is set but the provider has no userinfo endpoint (set `endpoint.userInfoURL`)",
            ));
        };
        let what = "OIDC userinfo endpoint";
        let request = self
            .http
            .get(url.clone())
            .bearer_auth(token)
            .header(reqwest::header::ACCEPT, "application/json");
        let answer = http::send(request, what).await?;
        if !answer.status.is_success() {
            return Err(ProviderError::upstream(format!(
                "{what} answered HTTP {}: {}",
                answer.status.as_u16(),
                answer.excerpt()
            )));
        }
        let Value::Object(map) = answer.json(what)? else {
            return Err(ProviderError::upstream(format!(
                "{what} answered JSON that is not an object"
            )));
        };
        match map.get("sub").and_then(Value::as_str) {
            Some(s) if s == sub => Ok(map),
            other => Err(ProviderError::upstream(format!(
                "{what} describes subject {:?}, not the ID token's",
                other.map(|s| excerpt(s, 100))
            ))),
        }
    }
}

#[async_trait]
impl OAuthProvider for OidcIdentityProvider {
    fn authorization_url(&self, req: &AuthorizationRequest) -> Result<Url, ProviderError> {
        match (&self.source, self.endpoints_now()) {
            (_, Some(e)) => Ok(self.oauth(&e).authorization_url(req, self.pkce, true)),
            (Source::Discovered(d), None) => {
                d.kick();
                Err(d.not_ready())
            }
            (Source::Static(_), None) => Err(ProviderError::upstream("no endpoints")),
        }
    }

    /// Waits for discovery (started when the provider was built) or retries it, so the first
    /// login after a start, or after the upstream comes back, does not fail.
    async fn prepare(&self) -> Result<(), ProviderError> {
        self.endpoints().await.map(|_| ())
    }

    fn supports_pkce(&self) -> bool {
        self.pkce
    }

    async fn exchange(&self, callback: &CallbackRequest) -> Result<Identity, ProviderError> {
        let code = callback.code()?;
        let e = self.endpoints().await?;
        let verifier = if self.pkce {
            callback.pkce_verifier.as_deref()
        } else {
            None
        };
        let token = self
            .oauth(&e)
            .exchange_code(&self.http, code, verifier)
            .await?;
        let Some(id_token) = token
            .raw
            .get("id_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        else {
            return Err(ProviderError::upstream(
                "no id_token in the token response (is the `openid` scope granted?)",
            ));
        };
        let mut claims = e.jwks.verify(id_token, &e.algorithms).await?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let check = IdTokenCheck {
            issuer: e.issuer.as_deref(),
            client_id: &self.client_id,
            leeway: self.leeway,
        };
        check.check(&claims, callback.nonce.as_deref(), now)?;
        if self.get_user_info {
            let sub = claims
                .get("sub")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let info = self
                .user_info(&e, token.access_token.expose(), &sub)
                .await?;
            // KubeSphere's rule: userinfo claims overwrite the ID token's (except the checked ones).
            for (k, v) in info {
                if !matches!(
                    k.as_str(),
                    "iss" | "aud" | "sub" | "exp" | "iat" | "nonce" | "azp"
                ) {
                    claims.insert(k, v);
                }
            }
        }
        self.mapping.identity(&claims)
    }

    fn public_options(&self) -> Map<String, Value> {
        let mut public = self.public.clone();
        if let Some(e) = self.endpoints_now() {
            public.retain(|k, _| !k.eq_ignore_ascii_case("endpoint"));
            let mut endpoint = json!({"authURL": e.auth_url.as_str(), "tokenURL": e.token_url.as_str(),
                                      "jwksURL": e.jwks.url().as_str()});
            if let Some(u) = &e.userinfo_url {
                endpoint["userInfoURL"] = json!(u.as_str());
            }
            if let Some(u) = &e.end_session_url {
                endpoint["endSessionURL"] = json!(u.as_str());
            }
            public.insert("endpoint".into(), endpoint);
        }
        public
    }
}

//! `OAuth2IdentityProvider` (alias `GenericOAuth2Provider`): any OAuth 2.0 authorization server described entirely
//! in YAML, so that most services (GitLab, Gitea, Google, Keycloak's plain OAuth, in-house servers) need no
//! compiled plugin.
//!
//! The login is the authorization-code flow (RFC 6749 §4.1, PKCE RFC 7636 by default) followed by one GET of
//! `userInfoURL` with the access token; the JSON it answers is mapped to an [`Identity`] by the `claims`
//! expressions (see [`expr`] for the syntax). The type name follows KubeSphere's `<Name>IdentityProvider`
//! convention; `GenericOAuth2Provider` is registered as an alias.
//!
//! Options: `authURL`, `tokenURL`, `userInfoURL` (required; also accepted under `endpoint.`), `clientID`
//! (required), `clientSecret`, `redirectURL` (required), `scopes`, `clientAuthStyle` (`basic`, the default, or
//! `body`), `pkce` (default true), `userInfoAuthStyle` (`header`, the default: `Authorization: Bearer`, or `query`:
//! `?access_token=`), `insecureSkipVerify`, and `claims.{userID, username, email, emailVerified, displayName,
//! groups}` with the defaults `[/sub, /id]`, `[/preferred_username, /login, /username]`, `/email`,
//! `/email_verified`, `/name` and none.

mod expr;

use std::sync::Arc;

use async_trait::async_trait;
use portcullis_idp::{
    AuthorizationRequest, CallbackRequest, Identity, OAuthProvider, OAuthProviderFactory,
    ProviderError, ProviderOptions,
};
use reqwest::Client;
use serde_json::{Map, Value};
use url::Url;

use self::expr::Expr;
use crate::http;
use crate::oauth2_client::{ClientAuth, OAuth2Client};

/// Creates [`GenericOAuth2Provider`]s for `type: OAuth2IdentityProvider`.
#[derive(Debug, Clone)]
pub struct GenericOAuth2Factory {
    http: Client,
}

impl GenericOAuth2Factory {
    /// The `type` string.
    pub const TYPE: &'static str = "OAuth2IdentityProvider";
    /// Another accepted spelling, registered as an alias by [`builtin_registry`](crate::builtin_registry).
    pub const ALIAS: &'static str = "GenericOAuth2Provider";

    /// A factory whose providers use the shared client `http`.
    pub fn new(http: Client) -> Self {
        GenericOAuth2Factory { http }
    }
}

impl OAuthProviderFactory for GenericOAuth2Factory {
    fn provider_type(&self) -> &str {
        Self::TYPE
    }

    fn create(
        &self,
        name: &str,
        options: &ProviderOptions,
    ) -> Result<Arc<dyn OAuthProvider>, ProviderError> {
        Ok(Arc::new(GenericOAuth2Provider::new(
            name, options, &self.http,
        )?))
    }
}

#[derive(Debug, Clone)]
struct Claims {
    user_id: Expr,
    username: Expr,
    email: Expr,
    email_verified: Expr,
    display_name: Expr,
    groups: Option<Expr>,
}

/// A configured generic OAuth 2.0 provider.
#[derive(Debug)]
pub struct GenericOAuth2Provider {
    oauth: OAuth2Client,
    user_info_url: Url,
    token_in_query: bool,
    pkce: bool,
    claims: Claims,
    http: Client,
    public: Map<String, Value>,
}

/// An endpoint URL: `key` at the top level, else `endpoint.<key>`.
fn endpoint(options: &ProviderOptions, key: &str) -> Result<Url, ProviderError> {
    match options.get_url(key)? {
        Some(url) => Ok(url),
        None => options.get_url(&format!("endpoint.{key}"))?.ok_or_else(|| {
            ProviderError::misconfigured(format!("missing required option `{key}`"))
        }),
    }
}

fn expr(options: &ProviderOptions, key: &str, default: &[&str]) -> Result<Expr, ProviderError> {
    match options.get_value(&format!("claims.{key}")) {
        None | Some(Value::Null) => Ok(Expr::default_of(default)),
        Some(v) => Expr::parse(&format!("claims.{key}"), v),
    }
}

fn choice<'a>(
    options: &ProviderOptions,
    key: &str,
    allowed: &[&'a str],
) -> Result<&'a str, ProviderError> {
    let value = options.get_str(key)?.map(|s| s.trim().to_ascii_lowercase());
    match value.as_deref() {
        None | Some("") => Ok(allowed[0]),
        Some(v) => allowed.iter().find(|a| **a == v).copied().ok_or_else(|| {
            ProviderError::misconfigured(format!(
                "option `{key}` must be one of {}, found {v:?}",
                allowed
                    .iter()
                    .map(|a| format!("`{a}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        }),
    }
}

impl GenericOAuth2Provider {
    /// Validates `options` and builds the provider; no network I/O.
    pub fn new(
        name: &str,
        options: &ProviderOptions,
        http: &Client,
    ) -> Result<Self, ProviderError> {
        let client_id = options.require_str("clientID")?;
        let client_secret = options
            .get_secret("clientSecret")?
            .filter(|s| !s.is_empty());
        let redirect_url = options.require_url("redirectURL")?;
        let auth_url = endpoint(options, "authURL")?;
        let token_url = endpoint(options, "tokenURL")?;
        let user_info_url = endpoint(options, "userInfoURL")?;
        let scopes = options.get_str_list("scopes")?.unwrap_or_default();
        let client_auth = match choice(options, "clientAuthStyle", &["basic", "body"])? {
            "body" => ClientAuth::RequestBody,
            _ if client_secret.is_none() => ClientAuth::RequestBody,
            _ => ClientAuth::Basic,
        };
        let token_in_query = choice(options, "userInfoAuthStyle", &["header", "query"])? == "query";
        let pkce = options.get_bool("pkce")?.unwrap_or(true);
        let insecure = options.get_bool("insecureSkipVerify")?.unwrap_or(false);
        let claims = Claims {
            user_id: expr(options, "userID", &["/sub", "/id"])?,
            username: expr(
                options,
                "username",
                &["/preferred_username", "/login", "/username"],
            )?,
            email: expr(options, "email", &["/email"])?,
            email_verified: expr(options, "emailVerified", &["/email_verified"])?,
            display_name: expr(options, "displayName", &["/name"])?,
            groups: match options.get_value("claims.groups") {
                None | Some(Value::Null) => None,
                Some(v) => Some(Expr::parse("claims.groups", v)?),
            },
        };
        let http = if insecure {
            http::dangerous_insecure_client(name)?
        } else {
            http.clone()
        };
        let oauth = OAuth2Client {
            upstream: format!("OAuth 2.0 provider `{name}`"),
            client_id,
            client_secret,
            auth_url,
            token_url,
            redirect_url: Some(redirect_url.into()),
            scopes,
            client_auth,
        };
        Ok(GenericOAuth2Provider {
            oauth,
            user_info_url,
            token_in_query,
            pkce,
            claims,
            http,
            public: options.public_map(),
        })
    }

    /// Maps a userinfo document to an identity with the configured `claims` expressions.
    ///
    /// # Errors
    /// The document yields no user id.
    pub fn identity(&self, doc: &Value) -> Result<Identity, ProviderError> {
        let c = &self.claims;
        let Some(user_id) = c.user_id.text(doc) else {
            return Err(ProviderError::upstream(format!(
                "{} userinfo answered a user without an id (claims.userID: {}): {}",
                self.oauth.upstream,
                c.user_id.source(),
                http::excerpt(&doc.to_string(), 160)
            )));
        };
        let mut identity = Identity::new(user_id)?
            .with_username(c.username.text(doc).unwrap_or_default())
            .with_email(c.email.text(doc).unwrap_or_default())
            .with_display_name(c.display_name.text(doc).unwrap_or_default());
        if let Some(v) = c.email_verified.boolean(doc) {
            identity = identity.with_email_verified(v);
        }
        for g in c.groups.iter().flat_map(|g| g.list(doc)) {
            identity = identity.with_group(g);
        }
        Ok(identity)
    }
}

#[async_trait]
impl OAuthProvider for GenericOAuth2Provider {
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
        let what = format!("{} userinfo", self.oauth.upstream);
        let mut request = self
            .http
            .get(self.user_info_url.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        request = if self.token_in_query {
            request.query(&[("access_token", token.access_token.expose())])
        } else {
            request.bearer_auth(token.access_token.expose())
        };
        let answer = http::send(request, &what).await?;
        if !answer.status.is_success() {
            return Err(ProviderError::upstream(format!(
                "{what} answered HTTP {}: {}",
                answer.status.as_u16(),
                answer.excerpt()
            )));
        }
        self.identity(&answer.json(&what)?)
    }

    fn public_options(&self) -> Map<String, Value> {
        self.public.clone()
    }
}

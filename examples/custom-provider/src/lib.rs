//! A worked identity-provider plugin: `GiteaIdentityProvider`, for [Gitea](https://about.gitea.com/)
//! (and Forgejo), a service Portcullis does not ship. It depends on the plugin API
//! (`portcullis-idp`), an HTTP client and JSON, nothing else of Portcullis; the binary in
//! `src/main.rs` registers it in one line.
//!
//! Configuration (`identityProviders[]` of kubesphere.yaml):
//!
//! ```yaml
//! - name: gitea
//!   type: GiteaIdentityProvider
//!   mappingMethod: auto
//!   provider:
//!     baseURL: https://gitea.example.com
//!     clientID: 0f5d...
//!     clientSecret: gto_...
//!     redirectURL: https://auth.example.com/oauth/callback/gitea
//!     scopes: [read:user]
//! ```
//!
//! Gitea's OAuth 2.0 endpoints: `GET /login/oauth/authorize`, `POST /login/oauth/access_token`
//! (PKCE `S256` supported), and the user at `GET /api/v1/user`, whose numeric `id` is the stable
//! user id (the `login` can be renamed).

use std::sync::Arc;
use std::time::Duration;

use portcullis_idp::{
    AuthorizationRequest, CallbackRequest, Identity, OAuthProvider, OAuthProviderFactory,
    ProviderError, ProviderOptions, Secret, async_trait,
};
use serde_json::{Map, Value, json};
use url::Url;

/// Creates [`GiteaProvider`]s for `type: GiteaIdentityProvider`.
#[derive(Debug, Clone)]
pub struct GiteaFactory {
    http: reqwest::Client,
}

impl GiteaFactory {
    /// The `type` string.
    pub const TYPE: &'static str = "GiteaIdentityProvider";

    /// A factory with its own HTTP client: redirects off (an OAuth client must not follow
    /// them), 5 s to connect, 15 s per request.
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .user_agent("portcullis-gitea-example")
            .build()
            .expect("an HTTP client with default TLS settings");
        GiteaFactory { http }
    }
}

impl Default for GiteaFactory {
    fn default() -> Self {
        Self::new()
    }
}

impl OAuthProviderFactory for GiteaFactory {
    fn provider_type(&self) -> &str {
        Self::TYPE
    }

    /// Options: `baseURL`, `clientID`, `clientSecret`, `redirectURL` (all required), `scopes`.
    /// Reads them only through the getters, so Portcullis can warn about unknown keys; no
    /// network I/O here.
    fn create(
        &self,
        _name: &str,
        options: &ProviderOptions,
    ) -> Result<Arc<dyn OAuthProvider>, ProviderError> {
        let base = options.require_url("baseURL")?;
        let client_id = options.require_str("clientID")?;
        let client_secret = options
            .get_secret("clientSecret")?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ProviderError::misconfigured("missing required option `clientSecret`")
            })?;
        let redirect_url = options.require_url("redirectURL")?;
        let scopes = options.get_str_list("scopes")?.unwrap_or_default();
        let endpoint = |path: &str| -> Result<Url, ProviderError> {
            let text = format!("{}{path}", base.as_str().trim_end_matches('/'));
            Url::parse(&text).map_err(|e| {
                ProviderError::misconfigured(format!(
                    "option `baseURL` gives no valid {path} URL: {e}"
                ))
            })
        };
        let (auth_url, token_url, user_url) = (
            endpoint("/login/oauth/authorize")?,
            endpoint("/login/oauth/access_token")?,
            endpoint("/api/v1/user")?,
        );
        // What ks-console reads to draw a button: the configured options (secret removed by
        // `public_map`) plus the endpoints.
        let mut public = options.public_map();
        public.insert(
            "endpoint".into(),
            json!({"authURL": auth_url.as_str(), "tokenURL": token_url.as_str(), "userInfoURL": user_url.as_str()}),
        );
        Ok(Arc::new(GiteaProvider {
            http: self.http.clone(),
            client_id,
            client_secret,
            redirect_url: redirect_url.to_string(),
            scopes,
            auth_url,
            token_url,
            user_url,
            public,
        }))
    }
}

/// A configured Gitea provider.
#[derive(Debug)]
pub struct GiteaProvider {
    http: reqwest::Client,
    client_id: String,
    client_secret: Secret,
    redirect_url: String,
    scopes: Vec<String>,
    auth_url: Url,
    token_url: Url,
    user_url: Url,
    public: Map<String, Value>,
}

/// Reads a JSON answer; transport failures, HTML and bad JSON are the provider's fault.
async fn json_answer(
    request: reqwest::RequestBuilder,
    what: &str,
) -> Result<(reqwest::StatusCode, Value), ProviderError> {
    let response = request.send().await.map_err(|e| {
        let how = if e.is_timeout() {
            "timed out"
        } else {
            "could not be reached"
        };
        ProviderError::upstream_with(format!("Gitea {what} {how}"), e)
    })?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| {
        ProviderError::upstream_with(format!("Gitea {what} failed while answering"), e)
    })?;
    let value = serde_json::from_slice(&body).map_err(|e| {
        ProviderError::upstream_with(
            format!(
                "Gitea {what} answered HTTP {} without valid JSON",
                status.as_u16()
            ),
            e,
        )
    })?;
    Ok((status, value))
}

#[async_trait]
impl OAuthProvider for GiteaProvider {
    fn authorization_url(&self, req: &AuthorizationRequest) -> Result<Url, ProviderError> {
        let mut url = self.auth_url.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_id", &self.client_id)
                .append_pair("redirect_uri", &self.redirect_url)
                .append_pair("response_type", "code")
                .append_pair("state", &req.state);
            if !self.scopes.is_empty() {
                q.append_pair("scope", &self.scopes.join(" "));
            }
            if let Some(challenge) = &req.pkce_challenge {
                q.append_pair("code_challenge", challenge)
                    .append_pair("code_challenge_method", "S256");
            }
        }
        Ok(url)
    }

    fn supports_pkce(&self) -> bool {
        true
    }

    async fn exchange(&self, callback: &CallbackRequest) -> Result<Identity, ProviderError> {
        // `error=access_denied` and a missing code become BadCredentials here.
        let code = callback.code()?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.redirect_url.as_str()),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.expose()),
        ];
        if let Some(v) = &callback.pkce_verifier {
            form.push(("code_verifier", v));
        }
        let request = self
            .http
            .post(self.token_url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form);
        let (status, token) = json_answer(request, "token endpoint").await?;
        if let Some(error) = token.get("error").and_then(Value::as_str) {
            let detail = token
                .get("error_description")
                .and_then(Value::as_str)
                .unwrap_or(error);
            return Err(match error {
                "invalid_grant" | "access_denied" => ProviderError::bad_credentials(format!(
                    "Gitea refused the authorization code ({detail})"
                )),
                "invalid_client" | "unauthorized_client" | "invalid_request" => {
                    ProviderError::misconfigured(format!("Gitea refused the client ({detail})"))
                }
                _ => ProviderError::upstream(format!("Gitea token endpoint failed ({detail})")),
            });
        }
        let access_token = match token.get("access_token").and_then(Value::as_str) {
            Some(t) if status.is_success() && !t.is_empty() => t.to_owned(),
            _ => {
                return Err(ProviderError::upstream(format!(
                    "Gitea token endpoint answered HTTP {} without an access_token",
                    status.as_u16()
                )));
            }
        };
        let request = self
            .http
            .get(self.user_url.clone())
            .bearer_auth(access_token);
        let (status, user) = json_answer(request, "/api/v1/user").await?;
        if !status.is_success() {
            return Err(ProviderError::upstream(format!(
                "Gitea /api/v1/user answered HTTP {}",
                status.as_u16()
            )));
        }
        let id = match user.get("id") {
            Some(Value::Number(n)) if n.is_u64() => n.to_string(),
            _ => {
                return Err(ProviderError::upstream(
                    "Gitea /api/v1/user answered a user without a numeric `id`",
                ));
            }
        };
        let text = |key: &str| {
            user.get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Ok(Identity::new(id)?
            .with_username(text("login"))
            .with_email(text("email"))
            .with_display_name(text("full_name")))
    }

    fn public_options(&self) -> Map<String, Value> {
        self.public.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(value: Value) -> ProviderOptions {
        ProviderOptions::from_value(value).unwrap()
    }

    #[test]
    fn options_are_checked_and_secrets_kept_private() {
        let f = GiteaFactory::new();
        let err = f
            .create("gitea", &options(json!({"baseURL": "https://g.example", "clientSecret": "s", "redirectURL": "https://a/cb"})))
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "misconfigured: missing required option `clientID`"
        );
        let opts = options(json!({
            "baseURL": "https://g.example/", "clientID": "id", "clientSecret": "s3cret",
            "redirectURL": "https://auth.example/oauth/callback/gitea", "colour": "red",
        }));
        let p = f.create("gitea", &opts).unwrap();
        assert_eq!(opts.warnings(), vec!["unknown option `colour` is ignored"]);
        let public = p.public_options();
        assert!(!public.contains_key("clientSecret"));
        assert_eq!(
            public["endpoint"]["authURL"],
            "https://g.example/login/oauth/authorize"
        );
        let url = p
            .authorization_url(&AuthorizationRequest::new("st").with_pkce_challenge("ch"))
            .unwrap();
        let q: std::collections::BTreeMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["state"], "st");
        assert_eq!(q["code_challenge"], "ch");
        assert_eq!(
            q["redirect_uri"],
            "https://auth.example/oauth/callback/gitea"
        );
    }
}

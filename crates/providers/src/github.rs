//! `GitHubIdentityProvider` (spec §4.2): GitHub's OAuth app flow and REST user API, github.com or Enterprise.
//!
//! Deliberate deviations from KubeSphere, all for safety:
//! * the user id is GitHub's numeric `id` (as a decimal string), not the mutable `login`: a renamed account keeps
//!   its link and a new account that takes an old login cannot inherit it. KubeSphere's links used `login`, so
//!   `login` is also offered as a [legacy id](portcullis_idp::Identity::legacy_user_ids) to migrate them;
//! * PKCE (`S256`) is sent (GitHub supports it);
//! * when `/user` has no public e-mail, the primary *verified* address of `/user/emails` is used (needs the
//!   `user:email` or `user` scope; without it the identity simply has no e-mail);
//! * HTTP statuses, HTML and malformed JSON are errors, never an identity with empty fields.
//!
//! Groups (an extension; KubeSphere's GitHub provider has none): option `groups` is `none` (the default: no extra
//! API call), `orgs`, `teams` or `orgsAndTeams`. Organisations become groups named by their `login` (from
//! `/user/orgs`), teams groups named `<org login>/<team slug>` (from `/user/teams`), organisations first, each in
//! GitHub's order, without duplicates. Both lists are read beside `endpoint.userInfoURL` (so
//! `https://ghe.example/api/v3/user/orgs` on GitHub Enterprise), 100 entries a page through GitHub's `Link`
//! pagination, at most 20 pages. The token needs the `read:org` scope: when `groups` is set and a list cannot be
//! read (refused for lack of scope, 5xx, HTML, malformed), the login fails with an upstream error naming the
//! endpoint and the scope, because an allow-list on groups must not see an empty membership (fail closed). See
//! the `groups` module.

use std::sync::Arc;

use async_trait::async_trait;
use portcullis_idp::{
    AuthorizationRequest, CallbackRequest, Identity, OAuthProvider, OAuthProviderFactory,
    ProviderError, ProviderOptions,
};
use reqwest::Client;
use serde_json::{Map, Value, json};
use url::Url;

use crate::http::{self, excerpt, string_field};
use crate::oauth2_client::{ClientAuth, OAuth2Client};

mod groups;

use groups::{GroupSource, Groups};
pub use groups::{MAX_PAGES, PER_PAGE};

/// Default `endpoint.authURL`.
pub const DEFAULT_AUTH_URL: &str = "https://github.com/login/oauth/authorize";
/// Default `endpoint.tokenURL`.
pub const DEFAULT_TOKEN_URL: &str = "https://github.com/login/oauth/access_token";
/// Default `endpoint.userInfoURL`.
pub const DEFAULT_USER_INFO_URL: &str = "https://api.github.com/user";

/// Creates [`GitHubIdentityProvider`]s for `type: GitHubIdentityProvider`.
#[derive(Debug, Clone)]
pub struct GitHubFactory {
    http: Client,
}

impl GitHubFactory {
    /// The `type` string.
    pub const TYPE: &'static str = "GitHubIdentityProvider";

    /// A factory whose providers use the shared client `http` (see [`http_client`](crate::http_client)).
    pub fn new(http: Client) -> Self {
        GitHubFactory { http }
    }
}

impl OAuthProviderFactory for GitHubFactory {
    fn provider_type(&self) -> &str {
        Self::TYPE
    }

    /// Options: `clientID` and `clientSecret` (required), `redirectURL` (optional: GitHub then uses the app's
    /// registered callback), `scopes`, `insecureSkipVerify`, `endpoint.authURL|tokenURL|userInfoURL`, `groups`
    /// (`none`, `orgs`, `teams`, `orgsAndTeams`).
    fn create(
        &self,
        name: &str,
        options: &ProviderOptions,
    ) -> Result<Arc<dyn OAuthProvider>, ProviderError> {
        Ok(Arc::new(GitHubIdentityProvider::new(
            name, options, &self.http,
        )?))
    }
}

/// A configured GitHub (or GitHub Enterprise) provider.
#[derive(Debug)]
pub struct GitHubIdentityProvider {
    oauth: OAuth2Client,
    user_info_url: Url,
    emails_url: Url,
    groups: Groups,
    http: Client,
    public: Map<String, Value>,
}

impl GitHubIdentityProvider {
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
        let redirect_url = options.get_url("redirectURL")?.map(String::from);
        let scopes = options.get_str_list("scopes")?.unwrap_or_default();
        let insecure = options.get_bool("insecureSkipVerify")?.unwrap_or(false);
        let url = |key: &str, default: &str| -> Result<Url, ProviderError> {
            Ok(options
                .get_url(key)?
                .unwrap_or_else(|| Url::parse(default).expect("valid default URL")))
        };
        let auth_url = url("endpoint.authURL", DEFAULT_AUTH_URL)?;
        let token_url = url("endpoint.tokenURL", DEFAULT_TOKEN_URL)?;
        let user_info_url = url("endpoint.userInfoURL", DEFAULT_USER_INFO_URL)?;
        let emails_url = url_beside(&user_info_url, "emails");
        let groups = Groups::new(GroupSource::from_options(options)?, &user_info_url, &scopes);

        let mut public = options.public_map();
        public.retain(|k, _| !k.eq_ignore_ascii_case("endpoint"));
        public.insert(
            "endpoint".into(),
            json!({"authURL": auth_url.as_str(), "tokenURL": token_url.as_str(), "userInfoURL": user_info_url.as_str()}),
        );
        let http = if insecure {
            http::dangerous_insecure_client(name)?
        } else {
            http.clone()
        };
        let oauth = OAuth2Client {
            upstream: "GitHub".into(),
            client_id,
            client_secret: Some(client_secret),
            auth_url,
            token_url,
            redirect_url,
            scopes,
            client_auth: ClientAuth::RequestBody,
        };
        Ok(GitHubIdentityProvider {
            oauth,
            user_info_url,
            emails_url,
            groups,
            http,
            public,
        })
    }

    /// GET an API URL with GitHub's required headers.
    async fn api_get(
        &self,
        url: &Url,
        token: &str,
        what: &str,
    ) -> Result<http::Answer, ProviderError> {
        let request = self
            .http
            .get(url.clone())
            .bearer_auth(token)
            .header(reqwest::header::ACCEPT, "application/vnd.github+json")
            .header(reqwest::header::USER_AGENT, http::USER_AGENT)
            .header("X-GitHub-Api-Version", "2022-11-28");
        http::send(request, what).await
    }

    /// The primary verified address from `/user/emails`; `None` (logged) on any failure: an e-mail is optional.
    async fn primary_verified_email(&self, token: &str) -> Option<String> {
        let what = "GitHub /user/emails";
        let answer = match self.api_get(&self.emails_url, token, what).await {
            Ok(a) if a.status.is_success() => a,
            Ok(a) => {
                tracing::debug!(
                    status = a.status.as_u16(),
                    "{what} not readable (is the user:email scope granted?)"
                );
                return None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "{what} failed; continuing without an e-mail address");
                return None;
            }
        };
        let list = match answer.json(what) {
            Ok(Value::Array(list)) => list,
            Ok(_) | Err(_) => {
                tracing::warn!(
                    "{what} answered something other than a list; continuing without an e-mail address"
                );
                return None;
            }
        };
        list.iter()
            .find(|e| {
                e.get("primary") == Some(&Value::Bool(true))
                    && e.get("verified") == Some(&Value::Bool(true))
            })
            .and_then(|e| e.get("email")?.as_str().map(str::to_owned))
    }
}

/// `/user/<leaf>` beside the configured `userInfoURL`: `https://api.github.com/user` → `.../user/emails`,
/// `https://ghe.example/api/v3/user` → `.../api/v3/user/emails`.
/// The identity in a GitHub `/user` answer: the numeric `id` (a number, or a string of digits) is the user id, `login`
/// the user name and legacy id (KubeSphere linked by it), `name` and the public `email` when set. Anything that is not
/// an object with such an `id` is an upstream error. The organisations, teams and private e-mail addresses need more
/// requests and are added by the caller.
pub fn user_identity(user: &Value) -> Result<Identity, ProviderError> {
    let what = "GitHub /user";
    if !user.is_object() {
        return Err(ProviderError::upstream(format!(
            "{what} answered JSON that is not an object"
        )));
    }
    let id = match user.get("id") {
        Some(Value::Number(n)) if n.is_u64() => n.to_string(),
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.clone()
        }
        _ => {
            return Err(ProviderError::upstream(format!(
                "{what} answered a user without a numeric `id`"
            )));
        }
    };
    let login = string_field(user, "login").unwrap_or_default();
    let mut identity = Identity::new(id)?
        .with_username(login.clone())
        .with_legacy_user_id(login)
        .with_display_name(string_field(user, "name").unwrap_or_default());
    // GitHub lets a user show only a verified address as the public `email`, and the fallback
    // (the caller's) is the primary verified one: either way the address is verified.
    if let Some(email) = string_field(user, "email") {
        identity = identity.with_email(email).with_email_verified(true);
    }
    Ok(identity)
}

fn url_beside(user_info: &Url, leaf: &str) -> Url {
    let mut url = user_info.clone();
    let path = format!("{}/{leaf}", url.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_query(None);
    url
}

#[async_trait]
impl OAuthProvider for GitHubIdentityProvider {
    fn authorization_url(&self, req: &AuthorizationRequest) -> Result<Url, ProviderError> {
        Ok(self.oauth.authorization_url(req, true, false))
    }

    fn supports_pkce(&self) -> bool {
        true
    }

    async fn exchange(&self, callback: &CallbackRequest) -> Result<Identity, ProviderError> {
        let code = callback.code()?;
        let token = self
            .oauth
            .exchange_code(&self.http, code, callback.pkce_verifier.as_deref())
            .await?;
        let token = token.access_token.expose();

        let what = "GitHub /user";
        let answer = self.api_get(&self.user_info_url, token, what).await?;
        if !answer.status.is_success() {
            let detail = answer
                .json(what)
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
        let mut identity = user_identity(&answer.json(what)?)?;
        if identity.email.is_none()
            && let Some(email) = self.primary_verified_email(token).await
        {
            identity = identity.with_email(email).with_email_verified(true);
        }
        for group in self.groups.fetch(self, token).await? {
            identity = identity.with_group(group);
        }
        Ok(identity)
    }

    fn public_options(&self) -> Map<String, Value> {
        self.public.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_url_sits_beside_user_info() {
        let u = |s: &str| url_beside(&Url::parse(s).unwrap(), "emails").to_string();
        assert_eq!(
            u("https://api.github.com/user"),
            "https://api.github.com/user/emails"
        );
        assert_eq!(
            u("https://ghe.example/api/v3/user/?x=1"),
            "https://ghe.example/api/v3/user/emails"
        );
    }
}

//! `CASIdentityProvider` (spec §4.5): Central Authentication Service 2.0/3.0 service-ticket validation.
//!
//! Fixed against KubeSphere: `casServerURL` is the CAS **base** URL and every URL is derived from it (`/login`,
//! `/p3/serviceValidate` for CAS 3, the default, or `/serviceValidate` with `protocolVersion: 2`); a trailing `/`
//! and a trailing `/login` (the old, broken advice) are tolerated with a warning. Released attributes are mapped
//! (e-mail, display name, groups), failure codes are reported, and answers are parsed as namespaced XML.
//!
//! The server's `state` travels inside the service URL (`<redirectURL>?state=..`): CAS has no `state` parameter,
//! but it returns to the service URL unchanged with `ticket` appended, so the callback carries `state` back and the
//! same service string is rebuilt for validation. A callback without `state` is validated against `redirectURL`
//! itself (a login started by ks-console's own link). Tickets are single-use at the CAS server: a replayed ticket
//! comes back as `INVALID_TICKET`, which is [`BadCredentials`](ProviderError::BadCredentials). CAS has no PKCE.

mod xml;

use std::sync::Arc;

use async_trait::async_trait;
use portcullis_idp::{
    AuthorizationRequest, CallbackRequest, Identity, OAuthProvider, OAuthProviderFactory,
    ProviderError, ProviderOptions,
};
use reqwest::Client;
use serde_json::{Map, Value, json};
use url::Url;

pub use self::xml::{Validation, parse as parse_service_response};
use crate::http::{self, excerpt};

/// Creates [`CasIdentityProvider`]s for `type: CASIdentityProvider`.
#[derive(Debug, Clone)]
pub struct CasFactory {
    http: Client,
}

impl CasFactory {
    /// The `type` string.
    pub const TYPE: &'static str = "CASIdentityProvider";

    /// A factory whose providers use the shared client `http`.
    pub fn new(http: Client) -> Self {
        CasFactory { http }
    }
}

impl OAuthProviderFactory for CasFactory {
    fn provider_type(&self) -> &str {
        Self::TYPE
    }

    fn create(
        &self,
        name: &str,
        options: &ProviderOptions,
    ) -> Result<Arc<dyn OAuthProvider>, ProviderError> {
        Ok(Arc::new(CasIdentityProvider::new(
            name, options, &self.http,
        )?))
    }
}

/// A configured CAS provider.
#[derive(Debug)]
pub struct CasIdentityProvider {
    login_url: Url,
    validate_url: Url,
    service: Url,
    email_attributes: Vec<String>,
    display_name_attributes: Vec<String>,
    groups_attributes: Vec<String>,
    http: Client,
    public: Map<String, Value>,
}

/// The CAS base URL: no trailing `/`, and no trailing `/login` (with a warning).
fn base_url(mut url: Url, name: &str) -> Url {
    let mut path = url.path().trim_end_matches('/').to_owned();
    if let Some(stripped) = path.strip_suffix("/login") {
        tracing::warn!(
            provider = name,
            "option `casServerURL` ends with /login; it should be the CAS base URL (for example \
             https://cas.example.com/cas); using {stripped:?} as the base"
        );
        path = stripped.to_owned();
    }
    url.set_path(&path);
    url.set_query(None);
    url.set_fragment(None);
    url
}

fn joined(base: &Url, suffix: &str) -> Url {
    let mut url = base.clone();
    let path = format!("{}/{suffix}", base.path().trim_end_matches('/'));
    url.set_path(&path);
    url
}

/// An attribute-name option: the configured name only, or the defaults in order.
fn attribute_names(
    options: &ProviderOptions,
    key: &str,
    defaults: &[&str],
) -> Result<Vec<String>, ProviderError> {
    Ok(
        match options.get_str(key)?.filter(|s| !s.trim().is_empty()) {
            Some(name) => vec![name.trim().to_owned()],
            None => defaults.iter().map(|s| (*s).to_owned()).collect(),
        },
    )
}

impl CasIdentityProvider {
    /// Validates `options` and builds the provider; no network I/O.
    pub fn new(
        name: &str,
        options: &ProviderOptions,
        http: &Client,
    ) -> Result<Self, ProviderError> {
        let base = base_url(options.require_url("casServerURL")?, name);
        let service = options.require_url("redirectURL")?;
        let version = match options
            .get_str("protocolVersion")?
            .as_deref()
            .map(str::trim)
        {
            None | Some("") | Some("3") | Some("3.0") => 3,
            Some("2") | Some("2.0") => 2,
            Some(other) => {
                return Err(ProviderError::misconfigured(format!(
                    "option `protocolVersion` must be 2 or 3, found {other:?}"
                )));
            }
        };
        let insecure = options.get_bool("insecureSkipVerify")?.unwrap_or(false);
        let email_attributes = attribute_names(options, "emailAttribute", &["email", "mail"])?;
        let display_name_attributes = attribute_names(
            options,
            "displayNameAttribute",
            &["displayName", "name", "cn"],
        )?;
        let groups_attributes =
            attribute_names(options, "groupsAttribute", &["memberOf", "groups"])?;
        let http = if insecure {
            http::dangerous_insecure_client(name)?
        } else {
            http.clone()
        };
        let login_url = joined(&base, "login");
        let validate_url = joined(
            &base,
            if version == 3 {
                "p3/serviceValidate"
            } else {
                "serviceValidate"
            },
        );
        let mut public = options.public_map();
        public.retain(|k, _| !k.eq_ignore_ascii_case("casServerURL"));
        public.insert(
            "casServerURL".into(),
            json!(base.as_str().trim_end_matches('/')),
        );
        public.insert("loginURL".into(), json!(login_url.as_str()));
        Ok(CasIdentityProvider {
            login_url,
            validate_url,
            service,
            email_attributes,
            display_name_attributes,
            groups_attributes,
            http,
            public,
        })
    }

    /// The service URL for a login with `state` (or `redirectURL` itself without one).
    fn service(&self, state: Option<&str>) -> String {
        let mut service = self.service.clone();
        if let Some(state) = state.filter(|s| !s.is_empty()) {
            service.query_pairs_mut().append_pair("state", state);
        }
        service.into()
    }

    fn first<'a>(
        attributes: &'a std::collections::BTreeMap<String, Vec<String>>,
        names: &[String],
    ) -> Option<&'a str> {
        names
            .iter()
            .find_map(|n| attributes.get(n).and_then(|v| v.first()))
            .map(String::as_str)
    }
}

/// A CAS failure code as a [`ProviderError`] (CAS protocol §2.5.2's codes).
fn failure(code: &str, message: &str) -> ProviderError {
    let detail = format!("{}: {}", excerpt(code, 64), excerpt(message, 200));
    match code {
        "INVALID_TICKET" | "INVALID_TICKET_SPEC" => ProviderError::bad_credentials(format!(
            "the CAS server refused the ticket; it is unknown, expired or already used (tickets are single-use) ({detail})"
        )),
        "INVALID_SERVICE" => ProviderError::bad_credentials(format!(
            "the CAS server says the ticket was issued for another service; redirectURL must be the service the \
             login used ({detail})"
        )),
        "INVALID_REQUEST"
        | "UNAUTHORIZED_SERVICE"
        | "UNAUTHORIZED_SERVICE_PROXY"
        | "INVALID_PROXY_CALLBACK" => ProviderError::misconfigured(format!(
            "the CAS server refused the validation request; check casServerURL and that redirectURL is a \
                 registered service ({detail})"
        )),
        _ => ProviderError::upstream(format!(
            "the CAS server failed the ticket validation ({detail})"
        )),
    }
}

#[async_trait]
impl OAuthProvider for CasIdentityProvider {
    fn authorization_url(&self, req: &AuthorizationRequest) -> Result<Url, ProviderError> {
        let mut url = self.login_url.clone();
        url.query_pairs_mut()
            .append_pair("service", &self.service(Some(&req.state)));
        Ok(url)
    }

    fn supports_pkce(&self) -> bool {
        false
    }

    async fn exchange(&self, callback: &CallbackRequest) -> Result<Identity, ProviderError> {
        callback.check_error()?;
        let Some(ticket) = callback.param("ticket").filter(|t| !t.trim().is_empty()) else {
            return Err(ProviderError::bad_credentials(
                "the callback has no CAS ticket",
            ));
        };
        let what = "CAS ticket validation";
        let service = self.service(callback.param("state"));
        let request = self
            .http
            .get(self.validate_url.clone())
            .query(&[("service", service.as_str()), ("ticket", ticket)]);
        let answer = http::send(request, what).await?;
        if answer.status == reqwest::StatusCode::NOT_FOUND {
            return Err(ProviderError::misconfigured(format!(
                "{what}: {} answered HTTP 404; check casServerURL (the CAS base URL) and protocolVersion (2 for \
                 servers without /p3/serviceValidate)",
                http::without_query(&self.validate_url)
            )));
        }
        if !answer.status.is_success() {
            return Err(ProviderError::upstream(format!(
                "{what} answered HTTP {}: {}",
                answer.status.as_u16(),
                answer.excerpt()
            )));
        }
        let body = String::from_utf8_lossy(&answer.body);
        match xml::parse(&body) {
            Err(why) => Err(ProviderError::upstream(format!(
                "{what} answered something that is not a CAS response ({why}): {}",
                answer.excerpt()
            ))),
            Ok(Validation::Failure { code, message }) => Err(failure(&code, &message)),
            Ok(Validation::Success { user, attributes }) => {
                let mut identity = Identity::new(user.clone())?.with_username(user);
                if let Some(email) = Self::first(&attributes, &self.email_attributes) {
                    identity = identity.with_email(email);
                }
                if let Some(name) = Self::first(&attributes, &self.display_name_attributes) {
                    identity = identity.with_display_name(name);
                }
                if let Some(groups) = self
                    .groups_attributes
                    .iter()
                    .find_map(|n| attributes.get(n))
                {
                    for g in groups {
                        identity = identity.with_group(g.clone());
                    }
                }
                Ok(identity)
            }
        }
    }

    fn public_options(&self) -> Map<String, Value> {
        self.public.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_is_normalised() {
        let b = |s: &str| base_url(Url::parse(s).unwrap(), "t").to_string();
        assert_eq!(b("https://cas.example/cas/"), "https://cas.example/cas");
        assert_eq!(
            b("https://cas.example/cas/login"),
            "https://cas.example/cas"
        );
        assert_eq!(
            b("https://cas.example/cas/login/?x=1"),
            "https://cas.example/cas"
        );
        assert_eq!(b("https://cas.example"), "https://cas.example/");
        let base = Url::parse("https://cas.example/").unwrap();
        assert_eq!(joined(&base, "login").as_str(), "https://cas.example/login");
    }

    #[test]
    fn failure_codes_are_classified() {
        assert!(failure("INVALID_TICKET", "x").is_bad_credentials());
        assert!(failure("INVALID_SERVICE", "x").is_bad_credentials());
        assert!(failure("UNAUTHORIZED_SERVICE", "x").is_misconfigured());
        let e = failure("INTERNAL_ERROR", "db down");
        assert!(
            e.is_upstream() && e.to_string().contains("INTERNAL_ERROR: db down"),
            "{e}"
        );
    }
}

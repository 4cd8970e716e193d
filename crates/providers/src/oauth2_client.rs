//! A small, general OAuth 2.0 authorization-code client (RFC 6749 §4.1, PKCE RFC 7636), written by hand over the
//! shared reqwest client. Shared by every OAuth-style provider (GitHub, IDaaS, and later OIDC and a generic one).
//!
//! Written by hand rather than with the `oauth2` crate because the upstreams' quirks are the point: GitHub answers
//! errors with HTTP 200, some servers answer form-encoded bodies, and each error code must land in the right
//! [`ProviderError`] class. The `oauth2` crate surfaces GitHub's 200-with-error as a parse error
//! (crates-and-peers.md §B.4) and would need an adapter for reqwest 0.13.

use portcullis_idp::{AuthorizationRequest, ProviderError, Secret};
use reqwest::Client;
use serde_json::{Map, Value};
use url::Url;

use crate::http::{self, excerpt};

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)] // which variants are used depends on the enabled provider features
pub(crate) enum ClientAuth {
    /// `client_id` and `client_secret` in the form body (GitHub, IDaaS).
    RequestBody,
    /// HTTP Basic with the form-urlencoded id and secret.
    Basic,
}

/// The client side of one OAuth 2.0 registration.
#[derive(Debug, Clone)]
pub(crate) struct OAuth2Client {
    /// Names the upstream in messages ("GitHub", "Aliyun IDaaS", a generic provider's name).
    pub upstream: String,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub auth_url: Url,
    pub token_url: Url,
    /// `redirect_uri`, sent when set.
    pub redirect_url: Option<String>,
    pub scopes: Vec<String>,
    pub client_auth: ClientAuth,
}

/// A successful token answer.
#[derive(Debug)]
pub(crate) struct TokenResponse {
    pub access_token: Secret,
    /// Granted scopes: `scope` split at spaces and commas (GitHub separates with commas).
    #[allow(dead_code)] // read by tests and by providers that check grants
    pub scopes: Vec<String>,
    /// The whole answer (`id_token`, `refresh_token`, `expires_in`, ...), for OIDC and others.
    #[allow(dead_code)]
    pub raw: Map<String, Value>,
}

impl OAuth2Client {
    /// The authorization URL: the configured `authURL` (its query kept) plus `response_type=code`, `client_id`,
    /// `redirect_uri`, `scope` (space-separated), `state`, the PKCE challenge when `pkce` and given, and `nonce`
    /// when `nonce` and given.
    pub fn authorization_url(&self, req: &AuthorizationRequest, pkce: bool, nonce: bool) -> Url {
        let mut url = self.auth_url.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &self.client_id);
            if let Some(r) = &self.redirect_url {
                q.append_pair("redirect_uri", r);
            }
            if !self.scopes.is_empty() {
                q.append_pair("scope", &self.scopes.join(" "));
            }
            q.append_pair("state", &req.state);
            if pkce && let Some(challenge) = &req.pkce_challenge {
                q.append_pair("code_challenge", challenge)
                    .append_pair("code_challenge_method", "S256");
            }
            if nonce && let Some(n) = &req.nonce {
                q.append_pair("nonce", n);
            }
        }
        url
    }

    /// Exchanges `code` (and the PKCE `verifier`) at the token endpoint.
    pub async fn exchange_code(
        &self,
        http: &Client,
        code: &str,
        verifier: Option<&str>,
    ) -> Result<TokenResponse, ProviderError> {
        let what = format!("{} token endpoint", self.upstream);
        let mut form: Vec<(&str, &str)> =
            vec![("grant_type", "authorization_code"), ("code", code)];
        if let Some(r) = &self.redirect_url {
            form.push(("redirect_uri", r));
        }
        if let Some(v) = verifier {
            form.push(("code_verifier", v));
        }
        let mut request = http
            .post(self.token_url.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        match self.client_auth {
            ClientAuth::RequestBody => {
                form.push(("client_id", &self.client_id));
                if let Some(s) = &self.client_secret {
                    form.push(("client_secret", s.expose()));
                }
            }
            ClientAuth::Basic => {
                let enc = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                let secret = self.client_secret.as_ref().map(|s| enc(s.expose()));
                request = request.basic_auth(enc(&self.client_id), secret);
            }
        }
        let answer = http::send(request.form(&form), &what).await?;
        parse_token_answer(&answer, &what)
    }
}

/// Reads a token answer: JSON or form-encoded, an `error` field honoured whatever the HTTP status.
pub(crate) fn parse_token_answer(
    answer: &http::Answer,
    what: &str,
) -> Result<TokenResponse, ProviderError> {
    let status = answer.status;
    let text = String::from_utf8_lossy(&answer.body);
    let looks_form = answer.content_type.contains("x-www-form-urlencoded")
        || (!answer.is_html() && !text.trim_start().starts_with(['{', '[']) && text.contains('='));
    let map = if looks_form {
        url::form_urlencoded::parse(text.trim().as_bytes())
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect()
    } else {
        match answer.json(what) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(ProviderError::upstream(format!(
                    "{what} answered JSON that is not an object"
                )));
            }
            Err(e) if !status.is_success() => {
                let why = if answer.is_html() {
                    "an HTML page"
                } else {
                    "no OAuth error"
                };
                let msg = format!(
                    "{what} answered HTTP {} with {why}: {}",
                    status.as_u16(),
                    answer.excerpt()
                );
                return Err(ProviderError::upstream_with(msg, e));
            }
            Err(e) => return Err(e),
        }
    };
    if let Some(error) = map
        .get("error")
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty())
    {
        let description = map.get("error_description").and_then(Value::as_str);
        return Err(classify_error(what, error, description));
    }
    if !status.is_success() {
        return Err(ProviderError::upstream(format!(
            "{what} answered HTTP {} without an OAuth error: {}",
            status.as_u16(),
            answer.excerpt()
        )));
    }
    let access_token = match map.get("access_token") {
        Some(Value::String(t)) if !t.is_empty() => Secret::new(t.clone()),
        _ => {
            return Err(ProviderError::upstream(format!(
                "{what} answered without an access_token"
            )));
        }
    };
    if let Some(tt) = map.get("token_type").and_then(Value::as_str)
        && !tt.eq_ignore_ascii_case("bearer")
    {
        return Err(ProviderError::upstream(format!(
            "{what} issued an unsupported token_type {:?} (only bearer is supported)",
            excerpt(tt, 32)
        )));
    }
    let scopes = map
        .get("scope")
        .and_then(Value::as_str)
        .map(|s| {
            s.split([' ', ','])
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Ok(TokenResponse {
        access_token,
        scopes,
        raw: map,
    })
}

/// Maps an OAuth error code (RFC 6749 §5.2, plus GitHub's own) to its class.
pub(crate) fn classify_error(what: &str, error: &str, description: Option<&str>) -> ProviderError {
    let code = excerpt(error, 64);
    let detail = match description.filter(|d| !d.trim().is_empty()) {
        Some(d) => format!("{code}: {}", excerpt(d, 200)),
        None => code.clone(),
    };
    match code.as_str() {
        "invalid_grant" | "bad_verification_code" | "access_denied" | "expired_token" => {
            ProviderError::bad_credentials(format!(
                "{what} refused the authorization code; it is wrong, expired or already used ({detail})"
            ))
        }
        "invalid_client" | "incorrect_client_credentials" | "unauthorized_client" => {
            ProviderError::misconfigured(format!(
                "{what} refused the client credentials; check clientID and clientSecret ({detail})"
            ))
        }
        "redirect_uri_mismatch" => ProviderError::misconfigured(format!(
            "{what} refused the redirect URI; redirectURL must match the callback URL registered at the provider ({detail})"
        )),
        "invalid_scope"
        | "unsupported_grant_type"
        | "invalid_request"
        | "application_suspended" => {
            ProviderError::misconfigured(format!("{what} refused the token request ({detail})"))
        }
        _ => ProviderError::upstream(format!("{what} failed the token request ({detail})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    fn answer(status: u16, ct: &str, body: &str) -> http::Answer {
        http::Answer {
            status: StatusCode::from_u16(status).unwrap(),
            content_type: ct.into(),
            body: body.as_bytes().to_vec(),
            headers: Default::default(),
        }
    }

    #[test]
    fn parses_json_and_form_answers() {
        let t = parse_token_answer(
            &answer(
                200,
                "application/json",
                r#"{"access_token":"a","token_type":"bearer","scope":"user,repo"}"#,
            ),
            "x",
        )
        .unwrap();
        assert_eq!(t.access_token.expose(), "a");
        assert_eq!(t.scopes, vec!["user", "repo"]);
        let t = parse_token_answer(
            &answer(
                200,
                "application/x-www-form-urlencoded",
                "access_token=b&scope=read%3Aorg&token_type=bearer",
            ),
            "x",
        )
        .unwrap();
        assert_eq!(t.access_token.expose(), "b");
        assert_eq!(t.scopes, vec!["read:org"]);
        let t = parse_token_answer(
            &answer(200, "text/plain", "access_token=c&token_type=Bearer"),
            "x",
        )
        .unwrap();
        assert_eq!(t.access_token.expose(), "c");
    }

    #[test]
    fn errors_are_classified_whatever_the_status() {
        let e = parse_token_answer(
            &answer(
                200,
                "application/json",
                r#"{"error":"bad_verification_code"}"#,
            ),
            "x",
        )
        .unwrap_err();
        assert!(e.is_bad_credentials(), "{e}");
        let e = parse_token_answer(
            &answer(
                200,
                "application/x-www-form-urlencoded",
                "error=incorrect_client_credentials",
            ),
            "x",
        )
        .unwrap_err();
        assert!(e.is_misconfigured(), "{e}");
        let e = parse_token_answer(
            &answer(400, "application/json", r#"{"error":"invalid_grant"}"#),
            "x",
        )
        .unwrap_err();
        assert!(e.is_bad_credentials(), "{e}");
        let e = parse_token_answer(
            &answer(
                503,
                "application/json",
                r#"{"error":"temporarily_unavailable"}"#,
            ),
            "x",
        )
        .unwrap_err();
        assert!(e.is_upstream(), "{e}");
        let e = parse_token_answer(&answer(502, "text/html", "<html>Bad Gateway</html>"), "x")
            .unwrap_err();
        assert!(e.is_upstream() && e.to_string().contains("HTTP 502"), "{e}");
        let e = parse_token_answer(
            &answer(200, "application/json", r#"{"token_type":"bearer"}"#),
            "x",
        )
        .unwrap_err();
        assert!(e.to_string().contains("without an access_token"), "{e}");
        let e = parse_token_answer(
            &answer(
                200,
                "application/json",
                r#"{"access_token":"a","token_type":"mac"}"#,
            ),
            "x",
        )
        .unwrap_err();
        assert!(e.to_string().contains("token_type"), "{e}");
        let e = parse_token_answer(&answer(200, "application/json", ""), "x").unwrap_err();
        assert!(e.to_string().contains("empty body"), "{e}");
    }

    #[tokio::test]
    async fn basic_client_authentication_round_trip() {
        rustls::crypto::aws_lc_rs::default_provider()
            .install_default()
            .ok();
        let fake = portcullis_test_upstreams::FakeIdaas::start().await;
        fake.add_user("s1", "u", None, None);
        let http = crate::http_client(false);
        let client = OAuth2Client {
            upstream: "IDaaS".into(),
            client_id: fake.client_id(),
            client_secret: Some(Secret::new(fake.client_secret())),
            auth_url: Url::parse(&fake.auth_url()).unwrap(),
            token_url: Url::parse(&fake.token_url()).unwrap(),
            redirect_url: Some("https://app/cb".into()),
            scopes: vec![],
            client_auth: ClientAuth::Basic,
        };
        let url = client.authorization_url(&AuthorizationRequest::new("s"), false, false);
        let url = format!("{url}&login_as=s1");
        let location = http.get(url).send().await.unwrap().headers()["location"]
            .to_str()
            .unwrap()
            .to_owned();
        let code = Url::parse(&location)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .into_owned();
        let token = client.exchange_code(&http, &code, None).await.unwrap();
        assert!(!token.access_token.is_empty());
        assert_eq!(token.raw["token_type"], "Bearer");
        let sent = fake
            .requests()
            .into_iter()
            .find(|r| r.path == "/oauth/token")
            .unwrap();
        assert!(sent.headers["authorization"].starts_with("Basic "));
        assert!(
            !sent.params.contains_key("client_secret"),
            "the secret travels only in the header"
        );
    }

    #[test]
    fn authorization_url_keeps_query_and_adds_pkce() {
        let c = OAuth2Client {
            upstream: "T".into(),
            client_id: "id".into(),
            client_secret: None,
            auth_url: Url::parse("https://h/auth?tenant=x").unwrap(),
            token_url: Url::parse("https://h/token").unwrap(),
            redirect_url: Some("https://app/cb".into()),
            scopes: vec!["a".into(), "b".into()],
            client_auth: ClientAuth::Basic,
        };
        let req = AuthorizationRequest::new("st")
            .with_pkce_challenge("ch")
            .with_nonce("n");
        let url = c.authorization_url(&req, true, false);
        let q: std::collections::BTreeMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["tenant"], "x");
        assert_eq!(q["scope"], "a b");
        assert_eq!(q["code_challenge"], "ch");
        assert_eq!(q["code_challenge_method"], "S256");
        assert!(!q.contains_key("nonce"));
        assert!(
            !c.authorization_url(&req, false, false)
                .as_str()
                .contains("code_challenge")
        );
    }
}

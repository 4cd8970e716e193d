//! [`View`]: what a page needs to know about its request (language, CSRF token, request id,
//! the language-switch links), extracted before the handler runs.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use serde::Serialize;

use super::csrf::csrf_token;
use super::i18n::{LOCALES, Locale, negotiate};
use crate::AppState;
use crate::pages::{cookie, request_id, set_cookie};

/// The cookie remembering the language chosen with `?lang=`.
pub const LANG_COOKIE: &str = "portcullis_lang";
const LANG_COOKIE_AGE_S: i64 = 365 * 24 * 3600;

/// The request as the page templates see it.
pub struct View {
    /// The page's language.
    pub locale: Locale,
    /// The browser's CSRF token (new ones are set with the response).
    pub csrf: String,
    /// The request id (also in the server's log lines for this request).
    pub request_id: String,
    /// The query without `lang`, for the language-switch links.
    query: Vec<(String, String)>,
    /// `Set-Cookie` values to send (a new CSRF token, a chosen language).
    cookies: Vec<HeaderValue>,
}

/// One entry of the language switch.
#[derive(Serialize)]
pub struct LanguageLink {
    code: &'static str,
    name: String,
    href: String,
    current: bool,
}

impl View {
    /// Builds the view of a request.
    pub fn new(state: &AppState, uri_query: Option<&str>, headers: &HeaderMap) -> View {
        let mut cookies = Vec::new();
        let pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(uri_query.unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let chosen = pairs
            .iter()
            .find(|(k, _)| k == "lang")
            .and_then(|(_, v)| Locale::from_code(v));
        let public = state.config().portcullis.public_url.clone();
        if let Some(l) = chosen {
            cookies.push(set_cookie(
                LANG_COOKIE,
                l.code(),
                "/",
                Some(LANG_COOKIE_AGE_S),
                &public,
            ));
        }
        let locale = chosen
            .or_else(|| cookie(headers, LANG_COOKIE).and_then(|c| Locale::from_code(&c)))
            .or_else(|| {
                headers
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(negotiate)
            })
            .unwrap_or(Locale::En);
        let (csrf, set) = csrf_token(state, headers);
        cookies.extend(set);
        View {
            locale,
            csrf,
            request_id: request_id(headers),
            query: pairs.into_iter().filter(|(k, _)| k != "lang").collect(),
            cookies,
        }
    }

    /// The text of a catalog key in this page's language.
    pub fn text(&self, key: &str, args: &[(&str, &str)]) -> String {
        self.locale.text(key, args)
    }

    /// Why a federated login failed, in this page's language.
    pub fn reason(&self, reason: &portcullis_core::federation::Reason) -> String {
        super::reasons::reason_text(self.locale, reason)
    }

    /// The language switch: same page, same query, another `lang`.
    pub fn languages(&self) -> Vec<LanguageLink> {
        LOCALES
            .into_iter()
            .map(|l| {
                let q = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(self.query.iter())
                    .append_pair("lang", l.code())
                    .finish();
                LanguageLink {
                    code: l.code(),
                    name: l.text("lang_name", &[]),
                    href: format!("?{q}"),
                    current: l == self.locale,
                }
            })
            .collect()
    }

    /// Adds the view's cookies to a response's headers.
    pub fn set_cookies(&self, headers: &mut HeaderMap) {
        for c in &self.cookies {
            headers.append(header::SET_COOKIE, c.clone());
        }
    }
}

impl FromRequestParts<AppState> for View {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        Ok(View::new(state, parts.uri.query(), &parts.headers))
    }
}

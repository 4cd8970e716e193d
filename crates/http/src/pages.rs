//! What every page and browser redirect shares: HTML escaping, the security headers and the
//! cookies of the browser login. The pages themselves are templates in [`crate::ui`].
//!
//! Every page is plain HTML with everything interpolated escaped, no script and no inline style,
//! sent with `Content-Security-Policy: default-src 'none'; style-src 'self'; form-action 'self';
//! frame-ancestors 'none'`, `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer` (an
//! authorization code in a URL never leaks through `Referer`) and `Cache-Control: no-store`.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use url::Url;

/// The login-state cookie: its value is the OAuth `state` of a browser login in flight.
pub const LOGIN_STATE_COOKIE: &str = "portcullis_login_state";
/// The pending-registration cookie (`mappingMethod: manual`, browser path).
pub const REGISTRATION_COOKIE: &str = "portcullis_registration";
/// The session cookie: the access token of the browser's session.
pub const SESSION_COOKIE: &str = "portcullis_session";
/// Set next to the login-state cookie when the signed-in user links another identity provider
/// from the account page; its value is the same state.
pub const LINK_COOKIE: &str = "portcullis_link";

const CSP: &str =
    "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'";

/// HTML-escapes text for element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The security headers every page and login redirect carries.
pub fn secure_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// A redirect (`302` or `303`) with the page security headers.
pub fn redirect(status: StatusCode, location: &str) -> Response {
    let mut resp = status.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    secure_headers(resp.headers_mut());
    resp
}

/// `path` (starting with `/`) under the public URL: `https://ks.example.com/auth` + `/login`.
pub fn public_path(public: &Url, path: &str) -> String {
    format!("{}{path}", public.as_str().trim_end_matches('/'))
}

/// The path part of the public URL, for cookie `Path` attributes (`` or `/auth`).
fn base_path(public: &Url) -> &str {
    public.path().trim_end_matches('/')
}

/// A `Set-Cookie` value: `HttpOnly; SameSite=Lax`, `Secure` when the public URL is https, the
/// path under the public URL's path. `max_age_s` of 0 deletes the cookie.
pub fn set_cookie(
    name: &str,
    value: &str,
    path: &str,
    max_age_s: Option<i64>,
    public: &Url,
) -> HeaderValue {
    let mut c = format!(
        "{name}={value}; Path={}{path}; HttpOnly; SameSite=Lax",
        base_path(public)
    );
    if let Some(age) = max_age_s {
        c.push_str(&format!("; Max-Age={}", age.max(0)));
    }
    if public.scheme() == "https" {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// Deletes a cookie set with [`set_cookie`].
pub fn clear_cookie(name: &str, path: &str, public: &Url) -> HeaderValue {
    set_cookie(name, "", path, Some(0), public)
}

/// The value of cookie `name` in the request's `Cookie` headers (the first one, non-empty).
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v.to_owned())
}

/// The request id set by the request-id layer.
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_cookies() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        let https = Url::parse("https://ks.example.com/auth").unwrap();
        let c = set_cookie("a", "b", "/oauth/callback", Some(600), &https);
        assert_eq!(
            c.to_str().unwrap(),
            "a=b; Path=/auth/oauth/callback; HttpOnly; SameSite=Lax; Max-Age=600; Secure"
        );
        let http = Url::parse("http://127.0.0.1:9090").unwrap();
        assert_eq!(
            clear_cookie("a", "/", &http).to_str().unwrap(),
            "a=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"
        );
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            "x=1; portcullis_session=tok".parse().unwrap(),
        );
        assert_eq!(cookie(&h, "portcullis_session").as_deref(), Some("tok"));
        assert_eq!(cookie(&h, "y"), None);
        assert_eq!(public_path(&http, "/login"), "http://127.0.0.1:9090/login");
    }
}

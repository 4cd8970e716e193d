//! CSRF protection of every form: a double-submit token. The browser gets a random 128-bit
//! token in the `portcullis_csrf` cookie (HttpOnly, SameSite=Lax, Path=/); every form carries
//! it in a hidden `csrf_token` field, and a POST is accepted only when the two are equal
//! (compared in constant time). Another site can neither read the cookie nor set it, so it
//! cannot build a form that passes. The confirm page uses the pending registration's own
//! token, checked by the engine.

use axum::http::{HeaderMap, HeaderValue};
use portcullis_core::constant_time_eq;

use crate::AppState;
use crate::pages::{cookie, set_cookie};
use crate::request::FormParams;

/// The CSRF cookie of the forms.
pub const CSRF_COOKIE: &str = "portcullis_csrf";
/// Path of the CSRF cookie (under the public URL's path): every page has forms.
const CSRF_PATH: &str = "/";

/// The CSRF token of this browser: the cookie's, or a new one (then `Some(Set-Cookie)`).
pub fn csrf_token(state: &AppState, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    if let Some(t) = cookie(headers, CSRF_COOKIE).filter(|t| t.len() >= 22) {
        return (t, None);
    }
    let token = portcullis_core::random_id();
    let public = state.config().portcullis.public_url.clone();
    let c = set_cookie(CSRF_COOKIE, &token, CSRF_PATH, None, &public);
    (token, Some(c))
}

/// Whether a submitted form echoes this browser's CSRF cookie.
pub fn csrf_ok(headers: &HeaderMap, form: &FormParams) -> bool {
    match (cookie(headers, CSRF_COOKIE), form.get("csrf_token")) {
        (Some(c), Some(sent)) => c.len() >= 22 && constant_time_eq(&c, sent),
        _ => false,
    }
}

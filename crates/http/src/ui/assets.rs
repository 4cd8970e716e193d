//! `GET /assets/portcullis.css` (the stylesheet, embedded in the binary) and
//! `GET /assets/theme.css` (the branding colour from `portcullis.ui.primaryColor`). Both are
//! same-origin, so the pages' `style-src 'self'` allows them.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// The embedded stylesheet.
pub const STYLESHEET: &str = include_str!("assets/portcullis.css");

fn css(body: String) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// `GET /assets/portcullis.css`.
pub async fn stylesheet() -> Response {
    css(STYLESHEET.to_owned())
}

/// `GET /assets/theme.css`: the configured primary colour (validated `#rrggbb`).
pub async fn theme(State(state): State<AppState>) -> Response {
    let color = state.config().portcullis.ui.primary_color.clone();
    css(format!(":root {{ --primary: {color}; }}\n"))
}

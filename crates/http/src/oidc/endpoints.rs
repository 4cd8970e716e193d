//! `GET|POST /oauth/userinfo` (Bearer access token), `POST /oauth/introspect` (RFC 7662,
//! confidential clients) and `POST /oauth/revoke` (RFC 7009, any configured client; a public
//! client identifies itself with `client_id`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::OidcError;

use super::require_client;
use crate::AppState;
use crate::error::ApiError;
use crate::request::{FormParams, bearer_token, require_form};

fn no_store(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

/// A Bearer error with its `WWW-Authenticate` challenge (RFC 6750 §3).
fn bearer_error(e: OidcError) -> Response {
    let code = e.code();
    let description = e.to_string().replace(['"', '\\'], "'");
    let mut resp = ApiError::from(e).into_response();
    let challenge = format!(
        "Bearer realm=\"portcullis\", error=\"{code}\", error_description=\"{description}\""
    );
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

/// `GET|POST /oauth/userinfo`.
pub async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = bearer_token(&headers) else {
        let mut resp = (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({
                "error": "invalid_token",
                "error_description": "an access token is required (Authorization: Bearer)",
            })),
        )
            .into_response();
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"portcullis\""),
        );
        return resp;
    };
    match state.engine().userinfo(token).await {
        Ok(claims) => no_store(Json(claims).into_response()),
        Err(e) => bearer_error(e),
    }
}

fn form_of(headers: &HeaderMap, body: &Bytes) -> Result<FormParams, ApiError> {
    require_form(headers)?;
    FormParams::parse(body)
}

/// `POST /oauth/introspect`.
pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let form = form_of(&headers, &body)?;
    let client = require_client(&state, &headers, &form)?;
    if client.secret.is_none() {
        return Err(OidcError::InvalidClient(
            "introspection is only for confidential clients".into(),
        )
        .into());
    }
    let token = form.require("token")?;
    let answer = state
        .engine()
        .introspect(token, form.get("token_type_hint"))
        .await?;
    Ok(no_store(Json(answer.0).into_response()))
}

/// `POST /oauth/revoke`: 200 whether or not the token was known, valid or the client's.
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let form = form_of(&headers, &body)?;
    let client = require_client(&state, &headers, &form)?;
    let token = form.require("token")?;
    state.engine().revoke_token(token, &client).await?;
    Ok(no_store(StatusCode::OK.into_response()))
}

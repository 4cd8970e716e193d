//! The token endpoint's OpenID Connect grants, dispatched from `oauth::token` after client
//! authentication: `authorization_code` (and KubeSphere 3.2's spelling `code`),
//! `client_credentials`, and the completion of `refresh_token` for sessions of the code flow.

use axum::Json;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use portcullis_config::OAuthClient;
use portcullis_core::oidc::{CodeExchange, OidcTokens};
use portcullis_core::{OidcError, Refreshed, RequestContext};
use serde_json::json;

use crate::AppState;
use crate::error::ApiError;
use crate::oauth::token_response;
use crate::request::FormParams;

fn require(client: Option<&OAuthClient>) -> Result<&OAuthClient, ApiError> {
    client
        .ok_or_else(|| OidcError::InvalidClient("client authentication is required".into()).into())
}

/// The token JSON of an OpenID Connect grant: the refresh token only when the grant gives one,
/// `id_token` and `scope` when there are some.
fn response(t: &OidcTokens) -> Response {
    let mut body = json!({
        "access_token": t.tokens.access_token,
        "token_type": "Bearer",
    });
    if let Some(e) = t.tokens.expires_in {
        body["expires_in"] = json!(e);
    }
    if t.refresh {
        body["refresh_token"] = json!(t.tokens.refresh_token);
    }
    if let Some(id) = &t.id_token {
        body["id_token"] = json!(id);
    }
    if !t.scope.is_empty() {
        body["scope"] = json!(t.scope);
    }
    let mut resp = Json(body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

/// `grant_type=authorization_code` (or `code`).
pub(crate) async fn authorization_code(
    state: &AppState,
    client: Option<&OAuthClient>,
    form: &FormParams,
    ctx: &RequestContext,
) -> Result<Response, ApiError> {
    let client = require(client)?;
    let exchange = CodeExchange {
        code: form.require("code")?,
        redirect_uri: form.get("redirect_uri"),
        code_verifier: form.get("code_verifier"),
        client,
    };
    let tokens = state.engine().exchange_code(&exchange, ctx).await?;
    Ok(response(&tokens))
}

/// `grant_type=client_credentials`.
pub(crate) async fn client_credentials(
    state: &AppState,
    client: Option<&OAuthClient>,
    form: &FormParams,
    ctx: &RequestContext,
) -> Result<Response, ApiError> {
    let client = require(client)?;
    let tokens = state
        .engine()
        .client_credentials(client, form.get("scope"), ctx)
        .await?;
    Ok(response(&tokens))
}

/// The answer to a successful refresh: with scope and a new ID token for a session of the code
/// flow, else KubeSphere's token JSON.
pub(crate) async fn after_refresh(
    state: &AppState,
    refreshed: Refreshed,
    client: Option<&OAuthClient>,
) -> Result<Response, ApiError> {
    match state.engine().oidc_refreshed(&refreshed, client).await? {
        Some(tokens) => Ok(response(&tokens)),
        None => Ok(token_response(&refreshed.tokens)),
    }
}

//! `GET /.well-known/openid-configuration` (also under `/oauth/`, KubeSphere 3.2's place) and
//! `GET /oauth/keys` (the JWKS). Discovery lists exactly what is implemented: the code flow with
//! S256 PKCE only, `query` responses, RS256 and ES256 ID tokens, secrets by Basic or form (and
//! `none` for public clients, which are identified by `client_id` and must use PKCE).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::oidc::claims::{SUPPORTED_CLAIMS, SUPPORTED_SCOPES};
use serde_json::json;

use crate::AppState;
use crate::error::ApiError;
use crate::pages::public_path;

fn cached(mut resp: Response, seconds: u32) -> Response {
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={seconds}")) {
        resp.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    resp
}

/// The discovery document (OpenID Connect Discovery 1.0 §3, RFC 8414).
pub async fn configuration(State(state): State<AppState>) -> Response {
    let public = state.config().portcullis.public_url.clone();
    let at = |p: &str| public_path(&public, p);
    let secrets = ["client_secret_basic", "client_secret_post"];
    let doc = json!({
        "issuer": state.engine().oidc_issuer(),
        "authorization_endpoint": at("/oauth/authorize"),
        "token_endpoint": at("/oauth/token"),
        "userinfo_endpoint": at("/oauth/userinfo"),
        "jwks_uri": at("/oauth/keys"),
        "introspection_endpoint": at("/oauth/introspect"),
        "revocation_endpoint": at("/oauth/revoke"),
        "end_session_endpoint": at("/oauth/logout"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", "password"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "scopes_supported": SUPPORTED_SCOPES,
        "claims_supported": SUPPORTED_CLAIMS,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": secrets,
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "authorization_response_iss_parameter_supported": true,
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
    });
    cached(Json(doc).into_response(), 3600)
}

/// `GET /oauth/keys`: every published verification key.
pub async fn keys(State(state): State<AppState>) -> Result<Response, ApiError> {
    let jwks = state.engine().jwks().await?;
    Ok(cached(Json(jwks).into_response(), 300))
}

//! `POST /oauth/authenticate`: the Kubernetes webhook TokenReview (`authentication.k8s.io/v1`
//! and `v1beta1`). A bad token is `authenticated: false` with HTTP 200, as the webhook contract
//! wants; only a malformed request body is a 400.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::status(StatusCode::BAD_REQUEST, "BadRequest", message)
}

/// `POST /oauth/authenticate`.
pub async fn token_review(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let review: Value = serde_json::from_slice(&body)
        .map_err(|e| bad(format!("request body is not valid JSON: {e}")))?;
    let api_version = review
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("authentication.k8s.io/v1");
    if !matches!(
        api_version,
        "authentication.k8s.io/v1" | "authentication.k8s.io/v1beta1"
    ) {
        return Err(bad(format!(
            "unsupported apiVersion {api_version:?}: expected authentication.k8s.io/v1 or v1beta1"
        )));
    }
    if let Some(kind) = review.get("kind").and_then(Value::as_str)
        && kind != "TokenReview"
    {
        return Err(bad(format!(
            "unsupported kind {kind:?}: expected TokenReview"
        )));
    }
    let token = review
        .get("spec")
        .and_then(|s| s.get("token"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| bad("spec.token must be a non-empty string"))?;
    let status = match state.engine().authenticate_bearer(token).await {
        Ok(p) => {
            metrics::counter!("portcullis_token_verifications_total", "result" => "valid")
                .increment(1);
            json!({
                "authenticated": true,
                "user": { "username": p.username, "uid": p.uid, "groups": p.groups, "extra": p.extra },
            })
        }
        Err(e) => {
            metrics::counter!("portcullis_token_verifications_total", "result" => "invalid")
                .increment(1);
            json!({ "authenticated": false, "error": e.to_string() })
        }
    };
    Ok(Json(json!({
        "apiVersion": api_version,
        "kind": "TokenReview",
        "metadata": { "creationTimestamp": null },
        "spec": {},
        "status": status,
    }))
    .into_response())
}

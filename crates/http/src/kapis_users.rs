//! `POST /kapis/iam.kubesphere.io/v1alpha2/users` for KubeSphere's pre-registration flow
//! (spec §3.9, §5.4): ks-console creates the user of a first login with the
//! `system:pre-registration` token the callback gave it.
//!
//! Only `metadata.name` and `spec.email` of the posted User are used. Groups, passwords, labels
//! and annotations are ignored (KubeSphere kept them, which let self-registration join groups,
//! spec §10 item 21), and a pre-registration creates exactly one user. Other callers are
//! refused: administrators create users with `portcullis user add`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use portcullis_core::FederationError;
use portcullis_core::federation::PRE_REGISTRATION_USER;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::federated::status_of;
use crate::kapis::require_principal;

fn status_error(e: &FederationError) -> ApiError {
    let status = status_of(e);
    let reason = match status {
        StatusCode::BAD_REQUEST => "BadRequest",
        StatusCode::CONFLICT => "AlreadyExists",
        StatusCode::FORBIDDEN => "Forbidden",
        StatusCode::UNAUTHORIZED => "Unauthorized",
        _ => "InternalError",
    };
    ApiError::status(status, reason, e.to_string())
}

/// `POST /kapis/iam.kubesphere.io/v1alpha2/users`.
pub async fn create_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let caller = require_principal(&state, &headers).await?;
    if caller.username != PRE_REGISTRATION_USER {
        return Err(ApiError::status(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "user {:?} may not create users here: this endpoint serves only the \
                 pre-registration of a first login; administrators use `portcullis user add`",
                caller.username
            ),
        ));
    }
    let bad = |m: String| ApiError::status(StatusCode::BAD_REQUEST, "BadRequest", m);
    let user: Value = serde_json::from_slice(&body)
        .map_err(|e| bad(format!("request body is not a valid User object: {e}")))?;
    let name = user
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| bad("metadata.name is required".into()))?;
    let email = match user.pointer("/spec/email") {
        None | Some(Value::Null) => None,
        Some(Value::String(e)) if e.is_empty() => None,
        Some(Value::String(e)) => Some(e.as_str()),
        Some(_) => return Err(bad("spec.email must be a string".into())),
    };
    let ignored: Vec<&str> = [
        "/spec/password",
        "/spec/groups",
        "/metadata/labels",
        "/metadata/annotations",
    ]
    .into_iter()
    .filter(|p| user.pointer(p).is_some())
    .collect();
    if !ignored.is_empty() {
        tracing::info!(fields = ?ignored, "pre-registration: ignoring fields a self-registration may not set");
    }
    let created = state
        .engine()
        .register_from_pre_registration(&caller, name, email)
        .await
        .map_err(|e| status_error(&e))?;
    let idp = caller
        .extra
        .get("idp")
        .and_then(|v| v.first())
        .cloned()
        .unwrap_or_default();
    let uid = caller
        .extra
        .get("uid")
        .and_then(|v| v.first())
        .cloned()
        .unwrap_or_default();
    let mut annotations = serde_json::Map::new();
    annotations.insert(
        format!("iam.kubesphere.io/identity-provider.{idp}"),
        json!(uid),
    );
    let mut spec = json!({});
    if let Some(e) = &created.email {
        spec["email"] = json!(e);
    }
    Ok(Json(json!({
        "apiVersion": "iam.kubesphere.io/v1alpha2",
        "kind": "User",
        "metadata": {
            "name": created.name,
            "uid": created.uid,
            "labels": {
                "iam.kubesphere.io/identify-provider": idp,
                "iam.kubesphere.io/origin-uid": uid,
            },
            "annotations": annotations,
        },
        "spec": spec,
        "status": { "state": "Active" },
    })))
}

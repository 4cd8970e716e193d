//! The one HTTP error type: every handler returns it, and this file alone decides status codes
//! and wire formats (OAuth 2.0 JSON errors, RFC 6749 §5.2, or Kubernetes `Status` JSON on the
//! `/kapis` API, as KubeSphere does).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::{AuthError, CoreError};
use serde_json::json;

/// An error answer.
#[derive(Debug)]
pub enum ApiError {
    /// An OAuth error: status, `error` code, description.
    OAuth {
        /// HTTP status.
        status: StatusCode,
        /// RFC 6749 error code.
        code: &'static str,
        /// Human-readable description.
        description: String,
        /// Seconds for `Retry-After` (429).
        retry_after: Option<i64>,
        /// Send `WWW-Authenticate: Basic` (failed client authentication).
        challenge: bool,
    },
    /// A Kubernetes `Status` error (the `/kapis` API).
    Status {
        /// HTTP status.
        status: StatusCode,
        /// `reason`: Unauthorized, Forbidden, NotFound, BadRequest, InternalError.
        reason: &'static str,
        /// `message`.
        message: String,
    },
}

impl ApiError {
    /// `invalid_request` (400).
    pub fn invalid_request(description: impl Into<String>) -> Self {
        ApiError::OAuth {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request",
            description: description.into(),
            retry_after: None,
            challenge: false,
        }
    }

    /// A Kubernetes Status error.
    pub fn status(status: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError::Status {
            status,
            reason,
            message: message.into(),
        }
    }

    /// 401 Status for the `/kapis` API.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::status(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            format!("Unauthorized: {}", message.into()),
        )
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let description = e.to_string();
        let (status, code, retry_after, challenge) = match e {
            AuthError::InvalidCredentials
            | AuthError::AccountDisabled
            | AuthError::InvalidGrant(_) => (StatusCode::BAD_REQUEST, "invalid_grant", None, false),
            AuthError::Locked { retry_after_s } => (
                StatusCode::TOO_MANY_REQUESTS,
                "invalid_grant",
                Some(retry_after_s.max(1)),
                false,
            ),
            AuthError::InvalidClient(_) => (StatusCode::UNAUTHORIZED, "invalid_client", None, true),
            AuthError::UnauthorizedClient(_) => {
                (StatusCode::BAD_REQUEST, "unauthorized_client", None, false)
            }
            AuthError::InvalidRequest(_) => {
                (StatusCode::BAD_REQUEST, "invalid_request", None, false)
            }
            AuthError::UnsupportedGrantType(_) => (
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                None,
                false,
            ),
            AuthError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                Some(5),
                false,
            ),
            _ => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                None,
                false,
            ),
        };
        ApiError::OAuth {
            status,
            code,
            description,
            retry_after,
            challenge,
        }
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Invalid(m) => ApiError::status(StatusCode::BAD_REQUEST, "BadRequest", m),
            CoreError::NotFound(m) => ApiError::status(StatusCode::NOT_FOUND, "NotFound", m),
            CoreError::Conflict(m) => ApiError::status(StatusCode::CONFLICT, "AlreadyExists", m),
            other if other.is_unavailable() => {
                tracing::error!(error = %other, "database unavailable");
                ApiError::status(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailable",
                    "the database is unavailable; try again later",
                )
            }
            other => {
                tracing::error!(error = %other, "internal error");
                ApiError::status(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "internal error; see the server log",
                )
            }
        }
    }
}

impl From<portcullis_store::StoreError> for ApiError {
    fn from(e: portcullis_store::StoreError) -> Self {
        CoreError::from(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::OAuth {
                status,
                code,
                description,
                retry_after,
                challenge,
            } => {
                let mut body = json!({ "error": code });
                if !description.is_empty() {
                    body["error_description"] = json!(description);
                }
                let mut resp = (status, Json(body)).into_response();
                let h = resp.headers_mut();
                h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
                if let Some(s) = retry_after
                    && let Ok(v) = HeaderValue::from_str(&s.to_string())
                {
                    h.insert(header::RETRY_AFTER, v);
                }
                if challenge {
                    h.insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Basic realm=\"portcullis\""),
                    );
                }
                resp
            }
            ApiError::Status {
                status,
                reason,
                message,
            } => {
                let body = json!({
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Failure",
                    "message": message,
                    "reason": reason,
                    "code": status.as_u16(),
                });
                (status, Json(body)).into_response()
            }
        }
    }
}

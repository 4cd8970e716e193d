//! An OAuth 2.0 upstream that answers at once and keeps no state, for the federated-login
//! benchmark (Portcullis' generic `OAuth2IdentityProvider`, claims `/id`, `/login`, `/email`).
//!
//! * `GET /authorize`: never called by the benchmark (the load generator takes the `state` from
//!   Portcullis' redirect and calls the callback itself); answers 200.
//! * `POST /token`: the code `u<N>.<anything>` (chosen by the load generator) stands for upstream
//!   user N; answers the access token `at-<N>`. Any other code is 400 `invalid_grant`.
//! * `GET /user` with `Authorization: Bearer at-<N>`: user N's document.
//!
//! Usage: `instant-upstream [ADDR]` (default `127.0.0.1:0`); prints the address it listens on.

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let app = Router::new()
        .route("/authorize", get(|| async { "instant upstream" }))
        .route("/token", post(token))
        .route("/user", get(user));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("{}", listener.local_addr()?);
    axum::serve(listener, app).await
}

/// The upstream user a code or token stands for.
fn user_of(value: &str, prefix: &str) -> Option<u64> {
    value.strip_prefix(prefix)?.split('.').next()?.parse().ok()
}

async fn token(body: Bytes) -> Response {
    let code = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    match user_of(&code, "u") {
        Some(n) => axum::Json(json!({
            "access_token": format!("at-{n}"),
            "token_type": "bearer",
            "expires_in": 3600,
        }))
        .into_response(),
        None => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant"})),
        )
            .into_response(),
    }
}

async fn user(headers: HeaderMap) -> Response {
    let n = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| user_of(t, "at-"));
    match n {
        Some(n) => axum::Json(json!({
            "id": n,
            "login": format!("fed-user-{n}"),
            "name": format!("Federated User {n}"),
            "email": format!("fed-user-{n}@bench.invalid"),
        }))
        .into_response(),
        None => (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"message": "401 Unauthorized"})),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::user_of;

    #[test]
    fn codes_and_tokens_name_their_user() {
        assert_eq!(user_of("u42.1234-0000000000000007", "u"), Some(42));
        assert_eq!(user_of("at-42", "at-"), Some(42));
        assert_eq!(user_of("x42", "u"), None);
        assert_eq!(user_of("u.1", "u"), None);
    }
}

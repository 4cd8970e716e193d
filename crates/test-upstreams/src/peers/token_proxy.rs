//! [`TokenProxy`]: a man in the middle for a real token endpoint that alters the `id_token` it returns, to test
//! that a relying party refuses tampered ID tokens issued by a real OpenID provider.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::common::{self, Server};

/// What the proxy does to the `id_token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Tamper {
    /// Pass it through unchanged.
    Nothing,
    /// Change one character of the signature.
    FlipSignature,
    /// Replace `sub` in the payload by `admin`, keeping header and signature.
    ForgeSubject,
    /// Re-encode with `{"alg":"none"}` and an empty signature.
    AlgNone,
    /// Replace the header by one naming `HS256` (a token "signed with the client secret"), keeping the rest.
    Hs256Header,
}

#[derive(Clone)]
struct ProxyState {
    target: String,
    tamper: Arc<Mutex<Tamper>>,
    http: reqwest::Client,
}

/// A running proxy; dropping it stops it.
#[derive(Debug)]
pub struct TokenProxy {
    server: Server,
    tamper: Arc<Mutex<Tamper>>,
}

impl TokenProxy {
    /// Starts a proxy whose `/token` forwards to `target` (a token endpoint URL).
    ///
    /// # Panics
    ///
    /// If no rustls crypto provider is installed.
    pub async fn start(target: &str) -> TokenProxy {
        let tamper = Arc::new(Mutex::new(Tamper::Nothing));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client for the token proxy");
        let state = ProxyState {
            target: target.to_owned(),
            tamper: tamper.clone(),
            http,
        };
        let router = Router::new()
            .route("/token", post(forward))
            .with_state(state);
        TokenProxy {
            server: Server::start(router).await,
            tamper,
        }
    }

    /// The proxy's token endpoint.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.server.base_url())
    }

    /// Chooses what happens to the next ID tokens.
    pub fn set(&self, tamper: Tamper) {
        *self.tamper.lock().unwrap_or_else(|e| e.into_inner()) = tamper;
    }
}

fn tampered(token: &str, how: Tamper) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = parts.as_slice() else {
        return token.to_owned();
    };
    match how {
        Tamper::Nothing => token.to_owned(),
        Tamper::FlipSignature => {
            let mut sig: Vec<char> = signature.chars().collect();
            if let Some(c) = sig.get_mut(5) {
                *c = if *c == 'A' { 'B' } else { 'A' };
            }
            format!("{header}.{payload}.{}", sig.into_iter().collect::<String>())
        }
        Tamper::ForgeSubject => {
            let mut claims: Value = URL_SAFE_NO_PAD
                .decode(payload)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or(Value::Null);
            claims["sub"] = Value::String("admin".into());
            format!(
                "{header}.{}.{signature}",
                URL_SAFE_NO_PAD.encode(claims.to_string())
            )
        }
        Tamper::AlgNone => format!(
            "{}.{payload}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#)
        ),
        Tamper::Hs256Header => {
            format!(
                "{}.{payload}.{signature}",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#)
            )
        }
    }
}

async fn forward(State(state): State<ProxyState>, headers: HeaderMap, body: Bytes) -> Response {
    let mut request = state.http.post(&state.target).body(body);
    for name in ["authorization", "content-type", "accept"] {
        if let Some(v) = headers.get(name) {
            request = request.header(name, v.as_bytes());
        }
    }
    let Ok(upstream) = request.send().await else {
        return (StatusCode::BAD_GATEWAY, "token endpoint unreachable").into_response();
    };
    let status =
        StatusCode::from_u16(upstream.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let Ok(mut json) = upstream.json::<Value>().await else {
        return (StatusCode::BAD_GATEWAY, "token endpoint answered no JSON").into_response();
    };
    let how = *state.tamper.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(token) = json.get("id_token").and_then(Value::as_str) {
        json["id_token"] = Value::String(tampered(token, how));
    }
    common::json(status, json)
}

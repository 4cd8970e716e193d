//! `/oauth/token` (password and refresh_token grants here; the OpenID Connect grants in
//! [`crate::oidc::token`]) and `/oauth/logout`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use portcullis_core::{IssuedTokens, PasswordLogin, RequestContext};
use serde_json::json;
use std::collections::HashMap;
use std::net::SocketAddr;

use crate::AppState;
use crate::error::ApiError;
use crate::request::{FormParams, bearer_token, client_ip, require_form, user_agent};
use crate::ui::{View, allow_form_target};

/// The token JSON KubeSphere's console reads, with `Cache-Control: no-store` (RFC 6749 §5.1).
pub fn token_response(t: &IssuedTokens) -> Response {
    let mut body = json!({
        "access_token": t.access_token,
        "token_type": "Bearer",
        "refresh_token": t.refresh_token,
    });
    if let Some(e) = t.expires_in {
        body["expires_in"] = json!(e);
    }
    let mut resp = Json(body).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

/// The request context (address, user agent) of a request.
pub fn request_context(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> RequestContext {
    RequestContext {
        ip: client_ip(peer, headers, &state.trusted_proxies()),
        user_agent: user_agent(headers),
    }
}

/// `POST /oauth/token`.
pub async fn token(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    require_form(&headers)?;
    let form = FormParams::parse(&body)?;
    // Client credentials: Basic header or form body, not both (RFC 6749 §2.3.1).
    let (client_id, client_secret) = crate::oidc::client_credentials(&headers, &form)?;
    let client = state
        .engine()
        .authenticate_client(client_id.as_deref(), client_secret.as_deref())?;
    let ctx = request_context(&state, peer, &headers);
    let grant = form.require("grant_type")?;
    let issued = match grant {
        "password" => {
            if let Some(c) = &client
                && !portcullis_core::Settings::client_may_use_password(c)
            {
                return Err(portcullis_core::AuthError::UnauthorizedClient(
                    "this client is not trusted to use the password grant".into(),
                )
                .into());
            }
            let login = PasswordLogin {
                login: form.require("username")?,
                password: form.require("password")?,
                client_id: client.as_ref().map(|c| c.name.as_str()).unwrap_or(""),
                login_type: "Token",
            };
            state.engine().password_login(&login, &ctx).await?
        }
        "refresh_token" => {
            let token = form.require("refresh_token")?;
            let issued = state
                .engine()
                .refresh(token, client.as_ref().map(|c| c.name.as_str()))
                .await?;
            return crate::oidc::token::after_refresh(&state, issued, client.as_ref()).await;
        }
        // OpenID Connect (KubeSphere 3.2 spelled the code grant `code`).
        "authorization_code" | "code" => {
            return crate::oidc::token::authorization_code(&state, client.as_ref(), &form, &ctx)
                .await;
        }
        "client_credentials" => {
            return crate::oidc::token::client_credentials(&state, client.as_ref(), &form, &ctx)
                .await;
        }
        other => {
            return Err(portcullis_core::AuthError::UnsupportedGrantType(other.to_string()).into());
        }
    };
    Ok(token_response(&issued))
}

/// `GET|POST /oauth/logout`: revokes the presented token's session; with
/// `post_logout_redirect_uri` (which must be registered) redirects there with `state`.
/// OpenID Connect RP-initiated logout adds `id_token_hint` and `client_id` (the redirect must
/// then be registered for that client). The browser's session cookie is ended only when the
/// request shows it is the user's own (see [`crate::oidc::logout::cookie_session`]); otherwise
/// the user is asked to confirm on a page whose form POSTs back here with the CSRF token.
pub async fn logout(
    State(state): State<AppState>,
    view: View,
    Query(mut query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    use crate::oidc::logout::{CookieSession, Proof};
    let confirmed = crate::oidc::logout::confirmed(&headers, &body);
    crate::oidc::logout::merge_form(&mut query, &headers, &body);
    let hint = crate::oidc::logout::hint(&state, &query).await?;
    let client = crate::oidc::logout::client_of(hint.as_ref(), &query)?;
    let redirect = match query
        .get("post_logout_redirect_uri")
        .filter(|s| !s.is_empty())
    {
        Some(uri) => Some(match &client {
            Some(c) => crate::oidc::logout::client_redirect(&state, c, uri)?,
            None => allowed_logout_redirect(&state, uri)?,
        }),
        None => None,
    };
    let bearer = bearer_token(&headers);
    let mut bearer_user = None;
    if let Some(token) = bearer {
        bearer_user = state
            .engine()
            .verify(token, portcullis_core::TokenType::AccessToken)
            .await
            .ok()
            .map(|c| c.username);
        state.engine().logout(token).await?;
    }
    if let Some(h) = &hint {
        state.engine().end_session_of(h).await?;
    }
    let proof = Proof {
        hint_user: hint.as_ref().map(|h| h.sub.as_str()),
        bearer_user: bearer_user.as_deref(),
        confirmed,
    };
    let cleared = match crate::oidc::logout::cookie_session(&state, &headers, &proof).await? {
        CookieSession::Ended(c) => Some(c),
        CookieSession::None => None,
        // A Bearer request ends its own session only; it never gets an HTML page.
        CookieSession::Unproven(_) if bearer.is_some() => None,
        CookieSession::Unproven(user) => {
            let page =
                crate::oidc::logout::confirm_page(&state, &view, &user, client.as_deref(), &query);
            return Ok(match &redirect {
                Some(url) => allow_form_target(page, url.as_str()),
                None => page,
            });
        }
    };
    let mut resp = match redirect {
        Some(mut url) => {
            if let Some(s) = query.get("state").filter(|s| !s.is_empty()) {
                url.query_pairs_mut().append_pair("state", s);
            }
            Redirect::to(url.as_str()).into_response()
        }
        // The confirmation page's form: back to the sign-in page, like the account page's
        // sign-out.
        None if confirmed => return Ok(crate::account::signed_out(&state, "signed_out")),
        None => (StatusCode::OK, Json(json!({ "message": "success" }))).into_response(),
    };
    if let Some(c) = cleared {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(resp)
}

/// A logout redirect is allowed only when it exactly matches a client's
/// `postLogoutRedirectURIs` (or, for clients without them, a non-wildcard `redirectURIs` entry),
/// or lies under this server's own public URL. Anything else is an open redirect.
fn allowed_logout_redirect(state: &AppState, uri: &str) -> Result<url::Url, ApiError> {
    let parsed = url::Url::parse(uri).map_err(|_| {
        ApiError::invalid_request("post_logout_redirect_uri is not an absolute URL")
    })?;
    let config = state.config();
    let registered = config.authentication.oauth_options.clients.iter().any(|c| {
        let list = if c.post_logout_redirect_uris.is_empty() {
            &c.redirect_uris
        } else {
            &c.post_logout_redirect_uris
        };
        list.iter().any(|r| !r.contains('*') && r == uri)
    });
    let public = &config.portcullis.public_url;
    let own = parsed.origin() == public.origin() && parsed.path().starts_with(public.path());
    if registered || own {
        Ok(parsed)
    } else {
        Err(ApiError::invalid_request(
            "post_logout_redirect_uri is not registered for any client",
        ))
    }
}

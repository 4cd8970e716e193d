//! KubeSphere's `/kapis` endpoints that belong to authentication: the public identity-provider
//! list, the legacy JSON login and a user's login records.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use portcullis_core::{PasswordLogin, Principal};
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::oauth::{request_context, token_response};
use crate::request::bearer_token;

/// Whether an option key names a secret (compared case-insensitively on the key alone), so the
/// public config never carries it, whatever its spelling.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "privatekey",
        "private_key",
        "credential",
        "signkeydata",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// Removes secret keys from a JSON value, recursively through maps and lists.
pub fn strip_secrets(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|k, _| !is_secret_key(k));
            map.values_mut().for_each(strip_secrets);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_secrets),
        _ => {}
    }
}

fn nanos(d: std::time::Duration) -> Value {
    json!(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// `GET /kapis/config.kubesphere.io/v1alpha2/configs/oauth`: unauthenticated, secrets stripped,
/// key material never included.
pub async fn oauth_config(State(state): State<AppState>) -> Json<Value> {
    let config = state.config();
    let oauth = &config.authentication.oauth_options;
    let providers: Vec<Value> = oauth
        .identity_providers
        .iter()
        .filter(|p| !p.disabled)
        .map(|p| {
            let mut options = state
                .public_provider_options(&p.name)
                .unwrap_or_else(|| Value::Object(p.provider.clone()));
            strip_secrets(&mut options);
            let mut entry = json!({
                "name": p.name,
                "type": p.provider_type,
                "mappingMethod": match p.mapping_method {
                    portcullis_config::MappingMethod::Auto => "auto",
                    portcullis_config::MappingMethod::Lookup => "lookup",
                    portcullis_config::MappingMethod::Manual => "manual",
                },
                "provider": options,
            });
            if let Some(d) = &p.display_name {
                entry["displayName"] = json!(d);
            }
            if p.hidden {
                entry["hidden"] = json!(true);
            }
            if p.disable_login_confirmation {
                entry["disableLoginConfirmation"] = json!(true);
            }
            entry
        })
        .collect();
    let clients: Vec<Value> = oauth
        .clients
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "grantMethod": match c.grant_method {
                    portcullis_config::GrantMethod::Auto => "auto",
                    portcullis_config::GrantMethod::Prompt => "prompt",
                    portcullis_config::GrantMethod::Deny => "deny",
                },
                "redirectURIs": c.redirect_uris,
                "scopeRestrictions": c.scope_restrictions,
                "trusted": c.trusted,
            })
        })
        .collect();
    let mut body = json!({
        "identityProviders": providers,
        "clients": clients,
        "accessTokenMaxAge": nanos(oauth.access_token_max_age),
        "accessTokenInactivityTimeout": nanos(oauth.access_token_inactivity_timeout),
    });
    if let Some(i) = &oauth.issuer {
        body["issuer"] = json!(i);
    }
    Json(body)
}

/// `POST /kapis/iam.kubesphere.io/v1alpha2/login`: `{"username":..,"password":..}` → token JSON.
pub async fn legacy_login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid_request(format!("request body is not valid JSON: {e}")))?;
    let field = |k: &str| {
        value
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::invalid_request(format!("missing required field {k:?}")))
    };
    let login = PasswordLogin {
        login: field("username")?,
        password: field("password")?,
        client_id: "",
        login_type: "Token",
    };
    let ctx = request_context(&state, peer, &headers);
    let issued = state.engine().password_login(&login, &ctx).await?;
    Ok(token_response(&issued))
}

/// The caller of a `/kapis` request, from its Bearer access token.
pub async fn require_principal(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Principal, ApiError> {
    let token = bearer_token(headers)
        .ok_or_else(|| ApiError::unauthorized("a Bearer access token is required"))?;
    state
        .engine()
        .authenticate_bearer(token)
        .await
        .map_err(|e| ApiError::unauthorized(e.to_string()))
}

fn parse_positive(
    query: &HashMap<String, String>,
    key: &str,
    default: i64,
    max: i64,
) -> Result<i64, ApiError> {
    match query.get(key) {
        None => Ok(default),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::status(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!("query parameter {key:?} must be a whole number from 1 to {max}"),
            )),
        },
    }
}

fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// `GET /kapis/iam.kubesphere.io/v1alpha2/users/{user}/loginrecords`: the caller's own records,
/// or anyone's for members of `adminGroups`. `{"items": [LoginRecord...], "totalItems": N}`,
/// newest first; `limit` (default 10, at most 1000) and 1-based `page`.
pub async fn login_records(
    State(state): State<AppState>,
    Path(user): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let caller = require_principal(&state, &headers).await?;
    let settings = state.engine().settings();
    let admin = caller
        .groups
        .iter()
        .any(|g| settings.admin_groups.contains(g));
    if caller.username != user && !admin {
        return Err(ApiError::status(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "user {:?} may not read the login records of {user:?}",
                caller.username
            ),
        ));
    }
    if user.chars().any(char::is_control) {
        // No user name holds a control character (PostgreSQL cannot even store a NUL).
        return Err(ApiError::status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "a user name cannot contain control characters",
        ));
    }
    let limit = parse_positive(&query, "limit", 10, 1000)?;
    let page = parse_positive(&query, "page", 1, 1_000_000)?;
    let (records, total) = state
        .engine()
        .store()
        .list_login_records(&user, (page - 1) * limit, limit)
        .await?;
    let items: Vec<Value> = records
        .into_iter()
        .map(|r| {
            let mut labels = Map::new();
            labels.insert("iam.kubesphere.io/user-ref".into(), json!(r.user));
            json!({
                "apiVersion": "iam.kubesphere.io/v1alpha2",
                "kind": "LoginRecord",
                "metadata": {
                    "name": format!("{}-{}", r.user, r.id.rsplit('-').next().unwrap_or(&r.id)),
                    "labels": labels,
                    "creationTimestamp": rfc3339(r.at),
                },
                "spec": {
                    "type": r.login_type,
                    "provider": r.provider,
                    "sourceIP": r.source_ip,
                    "userAgent": r.user_agent,
                    "success": r.success,
                    "reason": r.reason,
                },
            })
        })
        .collect();
    Ok(Json(json!({ "items": items, "totalItems": total })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_secret_keys_is_stripped() {
        let mut v = json!({
            "clientID": "id", "clientSecret": "s", "CLIENTSECRET": "s", "client_secret": "s",
            "managerPassword": "p", "PASSWORD": "p",
            "endpoint": {"tokenURL": "u", "secret": "s"},
            "list": [{"bindPassword": "p", "ok": 1}],
            "privateKey": "k", "signKeyData": "k",
        });
        strip_secrets(&mut v);
        let s = v.to_string();
        assert!(
            !s.contains("\"s\"") && !s.contains("\"p\"") && !s.contains("\"k\""),
            "{s}"
        );
        assert_eq!(v["endpoint"]["tokenURL"], "u");
        assert_eq!(v["list"][0]["ok"], 1);
    }
}

//! Parsing the OIDC-specific options: scopes, `clockSkew`, `clientAuthStyle`.

use std::time::Duration;

use portcullis_idp::{ProviderError, ProviderOptions};
use serde_json::Value;

use crate::oauth2_client::ClientAuth;

/// Default `clockSkew`.
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(10);

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthStyle {
    /// `client_secret_basic` unless discovery lists only `client_secret_post` (or there is no secret).
    Auto,
    Fixed(ClientAuth),
}

/// `clientAuthStyle`: `auto` (default), `basic` or `body`.
pub(crate) fn auth_style(options: &ProviderOptions) -> Result<AuthStyle, ProviderError> {
    match options
        .get_str("clientAuthStyle")?
        .as_deref()
        .map(str::trim)
    {
        None | Some("") | Some("auto") => Ok(AuthStyle::Auto),
        Some("basic") => Ok(AuthStyle::Fixed(ClientAuth::Basic)),
        Some("body") => Ok(AuthStyle::Fixed(ClientAuth::RequestBody)),
        Some(other) => Err(ProviderError::misconfigured(format!(
            "option `clientAuthStyle` must be `auto`, `basic` or `body`, found {other:?}"
        ))),
    }
}

/// `openid` first and once, then the configured scopes in order without duplicates (spec §10 item 17).
pub(crate) fn effective_scopes(configured: &[String]) -> Vec<String> {
    let mut out = vec!["openid".to_owned()];
    for s in configured {
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    out
}

/// `clockSkew`: a number of seconds, or a duration string (`10s`, `1m`, `500ms`).
pub(crate) fn clock_skew(options: &ProviderOptions) -> Result<Duration, ProviderError> {
    match options.get_value("clockSkew") {
        None | Some(Value::Null) => Ok(DEFAULT_CLOCK_SKEW),
        Some(Value::Number(n)) => n.as_u64().map(Duration::from_secs).ok_or_else(|| {
            ProviderError::misconfigured(
                "option `clockSkew` must be a whole number of seconds or a duration like `30s`",
            )
        }),
        Some(Value::String(s)) => humantime::parse_duration(s.trim()).map_err(|e| {
            ProviderError::misconfigured(format!(
                "option `clockSkew` is not a duration ({s:?}: {e})"
            ))
        }),
        Some(_) => Err(ProviderError::misconfigured(
            "option `clockSkew` must be a number of seconds or a duration like `30s`",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openid_is_requested_once_and_first() {
        let s = |v: &[&str]| effective_scopes(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(s(&[]), vec!["openid"]);
        assert_eq!(
            s(&["email", "openid", "profile", "email"]),
            vec!["openid", "email", "profile"]
        );
        assert_eq!(s(&["openid"]), vec!["openid"]);
    }

    #[test]
    fn clock_skew_accepts_seconds_and_durations() {
        let o =
            |v: Value| ProviderOptions::from_value(serde_json::json!({ "clockSkew": v })).unwrap();
        assert_eq!(clock_skew(&o(Value::Null)).unwrap(), DEFAULT_CLOCK_SKEW);
        assert_eq!(clock_skew(&o(30.into())).unwrap(), Duration::from_secs(30));
        assert_eq!(
            clock_skew(&o("1m 30s".into())).unwrap(),
            Duration::from_secs(90)
        );
        assert!(clock_skew(&o((-1).into())).is_err());
        assert!(
            clock_skew(&o("soon".into()))
                .unwrap_err()
                .to_string()
                .contains("`clockSkew`")
        );
    }
}

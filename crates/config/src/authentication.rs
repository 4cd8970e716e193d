//! The `authentication:` block (spec §1.3) and `oauthOptions` (§1.4), with KubeSphere's code
//! defaults and its startup checks.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::Report;
use crate::fields::{Field, Fields};
use crate::raw::Node;
use crate::{AuthenticationOptions, OAuthOptions, Secret, clients, providers};

const AUTH_KEYS: &[&str] = &[
    "authenticateRateLimiterMaxTries",
    "authenticateRateLimiterDuration",
    "maximumClockSkew",
    "loginHistoryRetentionPeriod",
    "loginHistoryMaximumEntries",
    "multipleLogin",
    "jwtSecret",
    "kubectlImage",
    "oauthOptions",
];

const OAUTH_KEYS: &[&str] = &[
    "issuer",
    "signKey",
    "signKeyData",
    "accessTokenMaxAge",
    "accessTokenInactivityTimeout",
    "clients",
    "identityProviders",
];

/// `authenticateRateLimiterMaxTries` default.
pub(crate) const DEFAULT_MAX_TRIES: u32 = 5;
const DEFAULT_LIMITER_DURATION: Duration = Duration::from_secs(30 * 60);
const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(10);
const DEFAULT_RETENTION: Duration = Duration::from_secs(168 * 3600);
const DEFAULT_MAX_ENTRIES: u32 = 100;
const DEFAULT_KUBECTL_IMAGE: &str = "kubesphere/kubectl:v1.0.0";
const DEFAULT_TOKEN_AGE: Duration = Duration::from_secs(2 * 3600);

/// Where the JWT secret may come from besides the file.
pub(crate) struct JwtSources<'a> {
    /// `--jwt-secret` / `PORTCULLIS_JWT_SECRET`: beats the file.
    pub overriding: Option<&'a Secret>,
    /// The secret given to [`crate::defaults`]: used when nothing else gives one.
    pub fallback: Option<&'a Secret>,
}

/// Reads the block; `section` is `(key line, value)` when the file has one.
pub(crate) fn read(
    report: &mut Report,
    section: Option<(Option<usize>, &Node)>,
    jwt: JwtSources<'_>,
    known_provider_types: &[&str],
) -> AuthenticationOptions {
    let (line, node) = section.map_or((None, None), |(l, n)| (l, Some(n)));
    let f = Fields::read(
        report,
        node,
        "authentication",
        line,
        AUTH_KEYS,
        &auth_elsewhere,
    );
    let duration = |r: &mut Report, key: &str, default| {
        f.get(key).and_then(|v| v.duration(r)).unwrap_or(default)
    };

    let max_tries = f
        .get("authenticateRateLimiterMaxTries")
        .and_then(|v| v.int::<u32>(report));
    let max_entries = f
        .get("loginHistoryMaximumEntries")
        .and_then(|v| v.int::<u32>(report));
    let tries = max_tries.unwrap_or(DEFAULT_MAX_TRIES);
    let entries = max_entries.unwrap_or(DEFAULT_MAX_ENTRIES);
    if max_tries == Some(0) {
        let message = "must be at least 1 (the number of failed logins that lock an account)";
        report.error(
            f.line_of("authenticateRateLimiterMaxTries"),
            &f.key_path("authenticateRateLimiterMaxTries"),
            message,
        );
    } else if tries > entries {
        // KubeSphere refuses to start on this too: the failures are counted in login records.
        let key = if max_tries.is_some() {
            "authenticateRateLimiterMaxTries"
        } else {
            "loginHistoryMaximumEntries"
        };
        report.error(
            f.line_of(key),
            &f.key_path(key),
            format!(
                "authenticateRateLimiterMaxTries ({tries}) must not exceed \
                 loginHistoryMaximumEntries ({entries}): failures are counted in the login history"
            ),
        );
    }

    let jwt_secret = jwt_secret(report, &f, jwt);
    let kubectl_image = f
        .get("kubectlImage")
        .and_then(|v| v.string(report))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_KUBECTL_IMAGE.to_owned());
    let oauth = f.get("oauthOptions");
    let oauth_options = read_oauth(report, oauth.as_ref(), &f, known_provider_types);

    AuthenticationOptions {
        authenticate_rate_limiter_max_tries: tries,
        authenticate_rate_limiter_duration: duration(
            report,
            "authenticateRateLimiterDuration",
            DEFAULT_LIMITER_DURATION,
        ),
        maximum_clock_skew: duration(report, "maximumClockSkew", DEFAULT_CLOCK_SKEW),
        login_history_retention_period: duration(
            report,
            "loginHistoryRetentionPeriod",
            DEFAULT_RETENTION,
        ),
        login_history_maximum_entries: entries,
        multiple_login: f
            .get("multipleLogin")
            .and_then(|v| v.bool(report))
            .unwrap_or(false),
        jwt_secret,
        kubectl_image,
        oauth_options,
    }
}

fn jwt_secret(report: &mut Report, f: &Fields, jwt: JwtSources<'_>) -> Secret {
    // `Some(None)`: the key is there with the wrong type, which is already reported.
    let from_file = f.get("jwtSecret").map(|v| v.secret(report));
    if let Some(secret) = jwt.overriding {
        if secret.is_empty() {
            report.override_error(
                "--jwt-secret / PORTCULLIS_JWT_SECRET",
                "JWT secret MUST not be empty",
            );
        }
        return secret.clone();
    }
    match from_file {
        Some(Some(secret)) if !secret.is_empty() => return Secret::new(secret),
        Some(None) => return Secret::default(),
        // The block itself is broken (already reported): "missing" would only be noise.
        _ if f.invalid => return Secret::default(),
        _ => {}
    }
    match jwt.fallback {
        Some(secret) if !secret.is_empty() => secret.clone(),
        _ => {
            report.error(
                f.line_of("jwtSecret"),
                &f.key_path("jwtSecret"),
                "JWT secret MUST not be empty (set authentication.jwtSecret, --jwt-secret or \
                 PORTCULLIS_JWT_SECRET; it must be the same on every cluster that shares tokens)",
            );
            Secret::default()
        }
    }
}

fn read_oauth(
    report: &mut Report,
    field: Option<&Field>,
    auth: &Fields,
    known_provider_types: &[&str],
) -> OAuthOptions {
    let path = auth.key_path("oauthOptions");
    let f = Fields::read(
        report,
        field.map(|f| f.node),
        &path,
        field.and_then(|f| f.line),
        OAUTH_KEYS,
        &oauth_elsewhere,
    );
    let optional = |r: &mut Report, key: &str| {
        f.get(key)
            .and_then(|v| v.string(r))
            .filter(|s| !s.is_empty())
    };
    let issuer = optional(report, "issuer");
    let sign_key = optional(report, "signKey").map(PathBuf::from);
    let sign_key_data = f
        .get("signKeyData")
        .and_then(|v| v.secret(report))
        .filter(|s| !s.is_empty())
        .map(Secret::new);
    let duration = |r: &mut Report, key: &str| {
        f.get(key)
            .and_then(|v| v.duration(r))
            .unwrap_or(DEFAULT_TOKEN_AGE)
    };
    let access_token_max_age = duration(report, "accessTokenMaxAge");
    let access_token_inactivity_timeout = duration(report, "accessTokenInactivityTimeout");
    let clients = f
        .get("clients")
        .map(|v| clients::read(report, &v))
        .unwrap_or_default();
    let identity_providers = f
        .get("identityProviders")
        .map(|v| providers::read(report, &v, known_provider_types))
        .unwrap_or_default();
    OAuthOptions {
        issuer,
        sign_key,
        sign_key_data,
        access_token_max_age,
        access_token_inactivity_timeout,
        clients,
        identity_providers,
    }
}

/// Hints for keys under `authentication` that belong somewhere else.
fn auth_elsewhere(key: &str) -> Option<String> {
    if key.eq_ignore_ascii_case("issuer") {
        return Some(
            "`issuer` goes under `oauthOptions` (KubeSphere 3.2); the KubeSphere 4.x \
             `authentication.issuer` block is not read: move its `jwtSecret` and `maximumClockSkew` \
             up into `authentication`, `url` to `oauthOptions.issuer` and the rest into `oauthOptions`"
                .to_owned(),
        );
    }
    OAUTH_KEYS
        .iter()
        .find(|k| k.eq_ignore_ascii_case(key))
        .map(|k| format!("`{k}` goes under `authentication.oauthOptions`"))
}

/// Hints for keys under `oauthOptions` that belong directly under `authentication`.
fn oauth_elsewhere(key: &str) -> Option<String> {
    AUTH_KEYS
        .iter()
        .find(|k| k.eq_ignore_ascii_case(key))
        .map(|k| format!("`{k}` goes directly under `authentication`"))
}

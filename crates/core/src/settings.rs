//! The parts of the configuration the engine runs on, in the units it uses.

use portcullis_config::{Config, GrantMethod, OAuthClient};
use portcullis_store::LockoutPolicy;

/// The step a stored session expiry is rounded up to (see [`Settings::session_expiry`]).
pub const SESSION_EXPIRY_STEP_MS: i64 = 60_000;

fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Engine settings derived from a [`Config`].
#[derive(Debug, Clone)]
pub struct Settings {
    /// `iss` of issued tokens: `oauthOptions.issuer`, else `publicURL`.
    pub issuer: String,
    /// `accessTokenMaxAge` in ms; 0 = tokens never expire.
    pub access_max_age_ms: i64,
    /// `accessTokenInactivityTimeout` in ms; 0 = no inactivity timeout.
    pub inactivity_ms: i64,
    /// `portcullis.sessionMaxLifetime` in ms; 0 = unlimited.
    pub session_max_lifetime_ms: i64,
    /// `maximumClockSkew` in whole seconds.
    pub clock_skew_s: i64,
    /// `multipleLogin`.
    pub multiple_login: bool,
    /// Per-account lockout.
    pub user_lockout: LockoutPolicy,
    /// Per-address lockout.
    pub ip_lockout: LockoutPolicy,
    /// `loginHistoryRetentionPeriod` in ms.
    pub retention_ms: i64,
    /// `loginHistoryMaximumEntries`.
    pub max_records_per_user: i64,
    /// OAuth clients; when empty, the token endpoint needs no client credentials.
    pub clients: Vec<OAuthClient>,
    /// Groups whose members may read everyone's login records.
    pub admin_groups: Vec<String>,
}

impl Settings {
    /// Derives the settings.
    pub fn from_config(config: &Config) -> Self {
        let auth = &config.authentication;
        let oauth = &auth.oauth_options;
        let window_ms = ms(auth.authenticate_rate_limiter_duration).max(1);
        let issuer = oauth
            .issuer
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| {
                config
                    .portcullis
                    .public_url
                    .as_str()
                    .trim_end_matches('/')
                    .to_string()
            });
        Settings {
            issuer,
            access_max_age_ms: ms(oauth.access_token_max_age),
            inactivity_ms: ms(oauth.access_token_inactivity_timeout),
            session_max_lifetime_ms: ms(config.portcullis.session_max_lifetime),
            clock_skew_s: i64::try_from(auth.maximum_clock_skew.as_secs()).unwrap_or(i64::MAX),
            multiple_login: auth.multiple_login,
            user_lockout: LockoutPolicy {
                max_failures: i64::from(auth.authenticate_rate_limiter_max_tries.max(1)),
                window_ms,
            },
            ip_lockout: LockoutPolicy {
                max_failures: i64::from(config.portcullis.ip_max_failures.max(1)),
                window_ms,
            },
            retention_ms: ms(auth.login_history_retention_period),
            max_records_per_user: i64::from(auth.login_history_maximum_entries),
            clients: oauth.clients.clone(),
            admin_groups: config.portcullis.admin_groups.clone(),
        }
    }

    /// Token lifetimes for a client: its own `accessTokenMaxAge` / `accessTokenInactivityTimeout`
    /// where set, else the global ones. Returns (access max age ms, inactivity ms).
    pub fn lifetimes(&self, client: Option<&OAuthClient>) -> (i64, i64) {
        let max_age = client
            .and_then(|c| c.access_token_max_age)
            .map(ms)
            .unwrap_or(self.access_max_age_ms);
        let inactivity = client
            .and_then(|c| c.access_token_inactivity_timeout)
            .map(ms)
            .unwrap_or(self.inactivity_ms);
        (max_age, inactivity)
    }

    /// When a session created at `created_at` must end whatever its refreshes
    /// (`sessionMaxLifetime`), or `None` when unlimited.
    pub fn session_end(&self, created_at: i64) -> Option<i64> {
        (self.session_max_lifetime_ms > 0)
            .then(|| created_at.saturating_add(self.session_max_lifetime_ms))
    }

    /// The expiry of a session refreshed (or created) at `now`: the refresh token's lifetime
    /// (`None` when tokens never expire) rounded up to [`SESSION_EXPIRY_STEP_MS`], cut at the
    /// session's absolute end.
    ///
    /// Why rounded: the refresh grant updates the session row every time, and on PostgreSQL an
    /// update that changes an indexed column (`expires_at` is, for pruning) cannot be a HOT
    /// update: each one added index entries, and without a vacuum in between a session refreshed
    /// thousands of times made every later lookup of it slower (1,700 refreshes a second fell
    /// to 1,100 over 30 seconds with autovacuum off). Rounded, the column changes once a minute
    /// at most. The session then outlives its refresh token by less than a step; the token's own
    /// `exp` still ends it on time.
    pub fn session_expiry(
        &self,
        created_at: i64,
        now: i64,
        max_age: i64,
        inactivity: i64,
    ) -> Option<i64> {
        let by_refresh = (max_age > 0).then(|| {
            let t = now.saturating_add(max_age).saturating_add(inactivity);
            t.div_euclid(SESSION_EXPIRY_STEP_MS)
                .saturating_add(i64::from(t.rem_euclid(SESSION_EXPIRY_STEP_MS) != 0))
                .saturating_mul(SESSION_EXPIRY_STEP_MS)
        });
        match (by_refresh, self.session_end(created_at)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The configured client with this name.
    pub fn client(&self, name: &str) -> Option<&OAuthClient> {
        self.clients.iter().find(|c| c.name == name)
    }

    /// Whether the client may use the password grant.
    pub fn client_may_use_password(client: &OAuthClient) -> bool {
        client.trusted && client.grant_method != GrantMethod::Deny
    }
}

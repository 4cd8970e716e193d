//! The validated, typed configuration. Everything here has passed validation; defaults are
//! KubeSphere's code defaults (spec §1.3, §1.4), not its installer's.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::Secret;

/// The whole configuration Portcullis runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from, when there was one.
    pub source: Option<PathBuf>,
    /// The `authentication:` block.
    pub authentication: AuthenticationOptions,
    /// The top-level `redis:` block, when it names a host.
    pub redis: Option<RedisOptions>,
    /// The top-level `portcullis:` block, with flags and environment applied.
    pub portcullis: PortcullisOptions,
    /// Non-fatal findings (unknown keys with a "did you mean" hint, and the like), each with its location.
    pub warnings: Vec<String>,
    /// Files secret values were read from (`${file:...}` references), which the server watches
    /// for changes like the configuration file itself.
    pub secret_files: Vec<PathBuf>,
}

/// KubeSphere's `authentication:` block.
#[derive(Debug, Clone)]
pub struct AuthenticationOptions {
    /// Failed logins within the window that lock an account. Default 5.
    pub authenticate_rate_limiter_max_tries: u32,
    /// Failure-counting window and lock length. Default 30m.
    pub authenticate_rate_limiter_duration: Duration,
    /// Allowed clock skew when checking `iat`. Default 10s.
    pub maximum_clock_skew: Duration,
    /// Login records older than this are deleted. Default 168h.
    pub login_history_retention_period: Duration,
    /// Login records kept per user. Default 100.
    pub login_history_maximum_entries: u32,
    /// When false, a new login revokes the user's other sessions. Default false.
    pub multiple_login: bool,
    /// HMAC key of the HS256 tokens. Never empty.
    pub jwt_secret: Secret,
    /// Not used by Portcullis; kept so the block round-trips. Default `kubesphere/kubectl:v1.0.0`.
    pub kubectl_image: String,
    /// `oauthOptions`.
    pub oauth_options: OAuthOptions,
}

/// `authentication.oauthOptions`.
#[derive(Debug, Clone)]
pub struct OAuthOptions {
    /// `issuer` (KubeSphere 3.2), when set.
    pub issuer: Option<String>,
    /// `signKey`: path of a PEM RSA private key for ID tokens.
    pub sign_key: Option<PathBuf>,
    /// `signKeyData`: base64 of a PEM RSA private key.
    pub sign_key_data: Option<Secret>,
    /// Access-token lifetime; zero means tokens never expire. Default 2h.
    pub access_token_max_age: Duration,
    /// Inactivity timeout, and the extra lifetime of refresh tokens. Zero disables it. Default 2h.
    pub access_token_inactivity_timeout: Duration,
    /// OAuth clients.
    pub clients: Vec<OAuthClient>,
    /// External identity providers, in file order.
    pub identity_providers: Vec<IdentityProviderConfig>,
}

/// How a client's users consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantMethod {
    /// No consent page.
    Auto,
    /// Ask once per client and scope set.
    Prompt,
    /// Refuse.
    Deny,
}

/// An entry of `oauthOptions.clients`.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    /// `name`: the `client_id`.
    pub name: String,
    /// `secret`; `None` (or empty in the file) makes a public client.
    pub secret: Option<Secret>,
    /// `respondWithChallenges` (parsed, unused, as in KubeSphere).
    pub respond_with_challenges: bool,
    /// `redirectURIs`, matched exactly. `*` entries are only allowed on development clients.
    pub redirect_uris: Vec<String>,
    /// `postLogoutRedirectURIs`; when empty, `redirect_uris` are used for logout redirects.
    pub post_logout_redirect_uris: Vec<String>,
    /// `grantMethod`, default auto.
    pub grant_method: GrantMethod,
    /// `scopeRestrictions`: scopes the client may ask for; empty means any.
    pub scope_restrictions: Vec<String>,
    /// Per-client `accessTokenMaxAge`, when set.
    pub access_token_max_age: Option<Duration>,
    /// Per-client `accessTokenInactivityTimeout`, when set.
    pub access_token_inactivity_timeout: Option<Duration>,
    /// `trusted`: may use the password grant. A client without the key is trusted (KubeSphere 3.2).
    pub trusted: bool,
    /// `development`: allows `*` and loopback wildcards in `redirectURIs`. Default false.
    pub development: bool,
    /// `idTokenSigningAlg` (Portcullis extension, after OpenID Connect's client metadata
    /// `id_token_signed_response_alg`): `RS256` (default) or `ES256`.
    pub id_token_signing_alg: IdTokenAlg,
}

/// The algorithm a client's ID tokens are signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdTokenAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (the OpenID Connect default).
    #[default]
    Rs256,
    /// ECDSA with P-256 and SHA-256.
    Es256,
}

impl IdTokenAlg {
    /// The JOSE name.
    pub fn as_str(self) -> &'static str {
        match self {
            IdTokenAlg::Rs256 => "RS256",
            IdTokenAlg::Es256 => "ES256",
        }
    }
}

/// `mappingMethod` of an identity provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MappingMethod {
    /// Create the user on first login.
    Auto,
    /// Only log in users already linked.
    Lookup,
    /// Let the user confirm a name on first login (`manual`, alias `mixed`).
    Manual,
}

/// An entry of `oauthOptions.identityProviders`.
///
/// `Debug` redacts the values of `provider` keys that look secret (`clientSecret`,
/// `managerPassword`, ...), at any depth.
#[derive(Clone)]
pub struct IdentityProviderConfig {
    /// `name`: unique; the callback path segment.
    pub name: String,
    /// `type`: the factory key, for example `GitHubIdentityProvider`.
    pub provider_type: String,
    /// `mappingMethod`. KubeSphere applies no default; Portcullis defaults to `manual`, the safe one.
    pub mapping_method: MappingMethod,
    /// `disableLoginConfirmation` (3.2): with `auto`, create the user directly.
    pub disable_login_confirmation: bool,
    /// `displayName` (4.x): button label.
    pub display_name: Option<String>,
    /// `hidden` (4.x): no button on the login page.
    pub hidden: bool,
    /// `disabled` (4.x): not usable at all.
    pub disabled: bool,
    /// `allowedGroups` (Portcullis): when not empty, only people the provider reports in at
    /// least one of these groups (compared before `groupsPrefix` is applied) may log in.
    pub allowed_groups: Vec<String>,
    /// `groupsPrefix` (Portcullis): prepended to every group name the provider reports before
    /// it reaches tokens and TokenReview (for example `github:`), so upstream groups cannot
    /// collide with cluster groups. Empty by default; never `system:...`.
    pub groups_prefix: String,
    /// `provider`: the free-form options map, keys in their original case.
    pub provider: serde_json::Map<String, serde_json::Value>,
    /// Key path of this entry, for messages (`authentication.oauthOptions.identityProviders[1]`).
    pub path: String,
    /// 1-based line of this entry in the file, when known.
    pub line: Option<usize>,
}

impl std::fmt::Debug for IdentityProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityProviderConfig")
            .field("name", &self.name)
            .field("provider_type", &self.provider_type)
            .field("mapping_method", &self.mapping_method)
            .field(
                "disable_login_confirmation",
                &self.disable_login_confirmation,
            )
            .field("display_name", &self.display_name)
            .field("hidden", &self.hidden)
            .field("disabled", &self.disabled)
            .field("allowed_groups", &self.allowed_groups)
            .field("groups_prefix", &self.groups_prefix)
            .field(
                "provider",
                &redacted(&serde_json::Value::Object(self.provider.clone())),
            )
            .field("path", &self.path)
            .field("line", &self.line)
            .finish()
    }
}

/// Whether a provider option's name says it holds a secret.
pub(crate) fn is_secret_key(key: &str) -> bool {
    const MARKERS: [&str; 7] = [
        "secret",
        "password",
        "passwd",
        "token",
        "credential",
        "privatekey",
        "keydata",
    ];
    let key: String = key
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    MARKERS.iter().any(|m| key.contains(m))
}

/// A copy of `value` with the values of secret-looking keys replaced by `***`.
fn redacted(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if is_secret_key(k) {
                        Value::String("***".to_owned())
                    } else {
                        redacted(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redacted).collect()),
        other => other.clone(),
    }
}

/// KubeSphere's top-level `redis:` block.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// `host`.
    pub host: String,
    /// `port`, default 6379.
    pub port: u16,
    /// `password`, may be empty.
    pub password: Secret,
    /// `db`, default 0.
    pub db: i64,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Portcullis' own settings (`portcullis:` block, flags, `PORTCULLIS_*` environment).
#[derive(Debug, Clone)]
pub struct PortcullisOptions {
    /// `listen`: address to bind. Default `127.0.0.1:9090`.
    pub listen: SocketAddr,
    /// `publicURL`: the external base URL. Default `http://<listen>` (a loopback address for an
    /// unspecified listen address). Trailing slashes of the path are trimmed, except that the
    /// root path is always `/` in a `Url`; to build an endpoint, trim the trailing `/` of
    /// `as_str()` and append the path (`Url::join` would drop a last path segment).
    pub public_url: url::Url,
    /// `database`: `sqlite://PATH`, `sqlite:PATH` or `postgres://...`. Default `sqlite://<dataDir>/portcullis.db`.
    pub database: Secret,
    /// `redis`: a `redis://` URL. When absent, the top-level KubeSphere `redis:` block is used if present.
    pub redis_url: Option<Secret>,
    /// `logFormat`: `text` or `json`. Default text.
    pub log_format: LogFormat,
    /// `dataDir`: where the embedded database and generated secrets live. Default `./portcullis-data`.
    pub data_dir: PathBuf,
    /// `trustedProxies`: peers whose `X-Forwarded-For`/`X-Real-IP` are believed (IP addresses or CIDRs).
    pub trusted_proxies: Vec<IpNet>,
    /// `adminGroups`: members may read every user's login records. Default `[platform-admins]`.
    pub admin_groups: Vec<String>,
    /// `ipMaxFailures`: failed logins per client address per window before that address is refused.
    /// Default ten times `authenticateRateLimiterMaxTries`.
    pub ip_max_failures: u32,
    /// `signingKeyRotationPeriod`: how often the ID-token signing keys generated in the database
    /// are replaced (the old key keeps verifying for a grace period). Zero: never. Default 90 days.
    pub signing_key_rotation_period: Duration,
    /// `requestReadTimeout`: how long a client may take to send a request's head (the request
    /// line and headers), and then again its body; slower clients get 408 or are disconnected.
    /// An idle keep-alive connection is closed after this time too. Default 30 s. Read at start
    /// only.
    pub request_read_timeout: Duration,
    /// `sessionMaxLifetime`: the absolute lifetime of a session, however often it is refreshed;
    /// after it a refresh is refused and the session's tokens expire. Zero: unlimited
    /// (KubeSphere's behaviour). Default 30 days.
    pub session_max_lifetime: Duration,
    /// `ui`: branding and template overrides of the login and account pages.
    pub ui: UiOptions,
    /// `tracing`: OpenTelemetry trace export (used by a binary built with `otel`).
    pub tracing: TracingOptions,
}

/// `portcullis.tracing`: OpenTelemetry trace export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TracingOptions {
    /// `otlpEndpoint`: base URL of an OTLP/HTTP receiver (`/v1/traces` is appended). `None`:
    /// the standard `OTEL_EXPORTER_OTLP_*` environment variables decide.
    pub otlp_endpoint: Option<url::Url>,
}

/// `portcullis.ui`: how the login and account pages look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiOptions {
    /// `templatesDir`: a directory whose `*.html` files replace the built-in templates of the
    /// same name. Read when the configuration is loaded.
    pub templates_dir: Option<PathBuf>,
    /// `productName`: shown in the page header and titles. Default `Portcullis`.
    pub product_name: String,
    /// `logoURL`: an image shown in the header (an http(s) URL or a path on this server).
    pub logo_url: Option<String>,
    /// `primaryColor`: `#rrggbb` of buttons and links; at least 4.5:1 against white. Default `#1d4ed8`.
    pub primary_color: String,
}

impl Default for UiOptions {
    fn default() -> Self {
        UiOptions {
            templates_dir: None,
            product_name: crate::DEFAULT_PRODUCT_NAME.to_owned(),
            logo_url: None,
            primary_color: crate::DEFAULT_PRIMARY_COLOR.to_owned(),
        }
    }
}

/// An IP network (address and prefix length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    /// Network address.
    pub addr: std::net::IpAddr,
    /// Prefix length in bits.
    pub prefix: u8,
}

impl IpNet {
    /// Whether `ip` lies in this network.
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let bits = u32::from(self.prefix.min(32));
                let mask = if bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - bits)
                };
                (u32::from(net) & mask) == (u32::from(ip) & mask)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let bits = u32::from(self.prefix.min(128));
                let mask = if bits == 0 {
                    0
                } else {
                    u128::MAX << (128 - bits)
                };
                (u128::from(net) & mask) == (u128::from(ip) & mask)
            }
            _ => false,
        }
    }
}

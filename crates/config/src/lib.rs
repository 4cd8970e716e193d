//! Reads KubeSphere's `kubesphere.yaml` into Portcullis' typed, validated [`Config`].
//!
//! Role: the only place that looks at configuration text. The whole file is accepted; only the
//! top-level `authentication`, `redis` and `portcullis` sections are read, everything else
//! (`monitoring:`, `devops:`, ...) is skipped without a word.
//!
//! Main design decision: parse, don't validate. serde-saphyr turns the text into a small
//! span-aware tree (`raw`), so every key and value keeps its line; one pass then turns the
//! tree into [`Config`], matching keys case-insensitively as viper/mapstructure do, and
//! reports EVERY problem at once as `FILE:LINE: KEY.PATH: message`. Unknown keys inside the
//! read sections are warnings with a "did you mean" hint; wrong types and failed checks are
//! errors. Secret values never appear in `Debug` output or in messages.

mod authentication;
mod clients;
mod duration;
mod error;
mod fields;
mod model;
mod portcullis;
mod providers;
mod raw;
mod redis;
mod secret;
mod secret_ref;
mod telemetry;
mod ui;

use std::path::{Path, PathBuf};

pub use duration::parse_go_duration;
pub use error::{ConfigError, Problem};
pub use model::*;
pub use portcullis::DEFAULT_REQUEST_READ_TIMEOUT;
pub use secret::Secret;
pub use ui::{DEFAULT_PRIMARY_COLOR, DEFAULT_PRODUCT_NAME};

use crate::error::Report;
use crate::raw::{Kind, Node};

/// Settings given outside the file: the binary fills these from its flags and `PORTCULLIS_*`
/// environment variables (flag over environment). Each beats the file. `Debug` hides the
/// database and Redis URLs, which may hold passwords.
#[derive(Clone, Default)]
pub struct Overrides {
    /// `--listen` / `PORTCULLIS_LISTEN`.
    pub listen: Option<String>,
    /// `--public-url` / `PORTCULLIS_PUBLIC_URL`.
    pub public_url: Option<String>,
    /// `--database` / `PORTCULLIS_DATABASE`. May hold a password: never logged.
    pub database: Option<String>,
    /// `--redis` / `PORTCULLIS_REDIS`; an empty value means no Redis URL.
    pub redis: Option<String>,
    /// `--log-format` / `PORTCULLIS_LOG_FORMAT`.
    pub log_format: Option<String>,
    /// `--data-dir` / `PORTCULLIS_DATA_DIR`.
    pub data_dir: Option<PathBuf>,
    /// `--jwt-secret` / `PORTCULLIS_JWT_SECRET`: beats `authentication.jwtSecret`.
    pub jwt_secret: Option<Secret>,
    /// `--otlp-endpoint` / `PORTCULLIS_OTLP_ENDPOINT`: beats `portcullis.tracing.otlpEndpoint`.
    pub otlp_endpoint: Option<String>,
    /// `--session-max-lifetime` / `PORTCULLIS_SESSION_MAX_LIFETIME`: a Go duration.
    pub session_max_lifetime: Option<String>,
}

impl std::fmt::Debug for Overrides {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |v: &Option<String>| v.as_ref().map(|_| "***");
        f.debug_struct("Overrides")
            .field("listen", &self.listen)
            .field("public_url", &self.public_url)
            .field("database", &hidden(&self.database))
            .field("redis", &hidden(&self.redis))
            .field("log_format", &self.log_format)
            .field("data_dir", &self.data_dir)
            .field("jwt_secret", &self.jwt_secret)
            .field("otlp_endpoint", &self.otlp_endpoint)
            .field("session_max_lifetime", &self.session_max_lifetime)
            .finish()
    }
}

/// What the loader needs besides the text.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions<'a> {
    /// Identity provider `type`s this build can create (`GitHubIdentityProvider`, ...). Any
    /// other `type` in the file is an error.
    pub known_provider_types: &'a [&'a str],
    /// Flag and environment values.
    pub overrides: Overrides,
}

/// Reads and validates the file at `path` (see [`load_str`]).
///
/// # Errors
/// The file cannot be read, is not UTF-8, or [`load_str`] fails.
pub fn load_file(path: &Path, opts: &LoadOptions) -> Result<Config, ConfigError> {
    let fail = |message: String| ConfigError {
        problems: vec![Problem {
            file: Some(path.to_path_buf()),
            line: None,
            path: String::new(),
            message,
        }],
        warnings: Vec::new(),
    };
    let bytes =
        read_limited(path).map_err(|e| fail(format!("cannot read the configuration file: {e}")))?;
    if bytes.len() > raw::MAX_INPUT_BYTES {
        let limit = raw::MAX_INPUT_BYTES;
        return Err(fail(format!(
            "the file is larger than {limit} bytes; is this a kubesphere.yaml?"
        )));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        fail(format!(
            "not UTF-8 text (invalid byte at offset {at}); is this a kubesphere.yaml?"
        ))
    })?;
    load_str(&text, Some(path), opts)
}

/// Reads at most one byte more than the parser accepts, so `/dev/zero` cannot exhaust memory.
fn read_limited(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let limit = u64::try_from(raw::MAX_INPUT_BYTES)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Reads and validates a whole `kubesphere.yaml`. `source` names the file in messages.
///
/// # Errors
/// Every problem found: invalid YAML, wrong types, failed checks, bad overrides.
pub fn load_str(
    text: &str,
    source: Option<&Path>,
    opts: &LoadOptions,
) -> Result<Config, ConfigError> {
    build(text, source, opts, None)
}

/// The configuration without a file: every default, `jwt_secret` as the JWT secret (unless
/// [`Overrides::jwt_secret`] is set, which wins here as everywhere), overrides applied.
///
/// # Errors
/// A bad override, or an empty secret.
pub fn defaults(jwt_secret: Secret, opts: &LoadOptions) -> Result<Config, ConfigError> {
    build("", None, opts, Some(&jwt_secret))
}

fn build(
    text: &str,
    source: Option<&Path>,
    opts: &LoadOptions,
    fallback: Option<&Secret>,
) -> Result<Config, ConfigError> {
    let mut report = Report::new(source, text);
    let root = match raw::parse(text) {
        Ok(root) => root,
        Err(e) => {
            report.error(e.line, "", e.message);
            return Err(report.into_error());
        }
    };
    if let Some(found) = root.not_a_map {
        // Nothing else can be read from such a document.
        report.error(
            Some(1),
            "",
            format!("expected a map of sections (authentication:, redis:, ...), found {found}"),
        );
        return Err(report.into_error());
    }
    configmap_hint(&mut report, &root);
    for (name, line) in &root.skipped {
        // Only near misses: KubeSphere's many other sections must stay silent.
        let lower = name.to_lowercase();
        if let Some(section) = raw::SECTIONS
            .iter()
            .find(|s| fields::edit_distance(&lower, s) <= 2)
        {
            report.warn(
                Some(*line),
                name,
                format!("unknown section, ignored; did you mean `{section}`?"),
            );
        }
    }
    let [auth, redis, portcullis] =
        raw::SECTIONS.map(|name| section(&mut report, &root.sections, name));
    let jwt = authentication::JwtSources {
        overriding: opts.overrides.jwt_secret.as_ref(),
        fallback,
    };
    let authentication = authentication::read(&mut report, auth, jwt, opts.known_provider_types);
    let redis = redis::read(&mut report, redis);
    let max_tries = authentication.authenticate_rate_limiter_max_tries;
    let portcullis = portcullis::read(&mut report, portcullis, &opts.overrides, max_tries);
    let config = Config {
        source: source.map(Path::to_path_buf),
        authentication,
        redis,
        portcullis,
        warnings: Vec::new(),
        secret_files: report.secret_files.clone(),
    };
    let (mut config, warnings) = report.into_result(config)?;
    config.warnings = warnings.iter().map(Problem::to_string).collect();
    Ok(config)
}

/// A whole ConfigMap (`kubectl get cm -o yaml`) instead of the file inside it.
fn configmap_hint(report: &mut Report, root: &raw::Root) {
    let has = |name: &str| root.skipped.iter().find(|(n, _)| n == name);
    if let (Some(_), Some((_, line))) = (has("kind"), has("data"))
        && root.sections.is_empty()
    {
        report.warn(
            Some(*line),
            "data",
            "this looks like a Kubernetes ConfigMap; give Portcullis the kubesphere.yaml inside \
             it: kubectl -n kubesphere-system get cm kubesphere-config \
             -o jsonpath='{.data.kubesphere\\.yaml}'",
        );
    }
}

/// The section `name` (matched case-insensitively): line of its key and its value. Giving a
/// section twice (in different case) is an error.
fn section<'n>(
    report: &mut Report,
    sections: &'n [(Node, Node)],
    name: &str,
) -> Option<(Option<usize>, &'n Node)> {
    let mut matching = sections
        .iter()
        .filter(|(k, _)| matches!(&k.kind, Kind::Str(s) if s.eq_ignore_ascii_case(name)));
    let (key, value) = matching.next()?;
    for (again, _) in matching {
        let first = key
            .line()
            .map_or(String::new(), |l| format!(" on line {l}"));
        report.error(
            again.line(),
            name,
            format!("section given twice (also{first}; keys are case-insensitive)"),
        );
    }
    Some((key.line(), value))
}

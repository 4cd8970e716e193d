//! Portcullis' own `portcullis:` block, with flag and environment overrides.
//!
//! Precedence: an override (flag over `PORTCULLIS_*` environment, merged by the binary) beats
//! the file, which beats the default. Errors about an override name the flag and variable.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use crate::error::Report;
use crate::fields::{Field, Fields};
use crate::raw::Node;
use crate::{IpNet, LogFormat, Overrides, PortcullisOptions, Secret};

const PORTCULLIS_KEYS: &[&str] = &[
    "listen",
    "publicURL",
    "database",
    "redis",
    "logFormat",
    "dataDir",
    "trustedProxies",
    "adminGroups",
    "ipMaxFailures",
    "signingKeyRotationPeriod",
    "requestReadTimeout",
    "sessionMaxLifetime",
    "ui",
    "tracing",
];

/// Default `listen`.
pub(crate) const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9090);
const DEFAULT_DATA_DIR: &str = "./portcullis-data";
const DEFAULT_ADMIN_GROUP: &str = "platform-admins";
/// Default `signingKeyRotationPeriod`: 90 days.
const DEFAULT_KEY_ROTATION: std::time::Duration = std::time::Duration::from_secs(90 * 24 * 3600);
/// Default `requestReadTimeout`: 30 seconds (hyper's own default for the request head).
pub const DEFAULT_REQUEST_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Default `sessionMaxLifetime`: 30 days, OWASP ASVS 4.0.3 3.3.2's bound for level 1
/// (re-authentication at least every 30 days, however actively a session is used).
pub(crate) const DEFAULT_SESSION_MAX_LIFETIME: std::time::Duration =
    std::time::Duration::from_secs(30 * 24 * 3600);

/// A setting's value and where it came from, for messages.
pub(crate) struct Setting {
    pub(crate) value: String,
    /// `--flag / PORTCULLIS_VAR` for an override, the key path for the file.
    source: String,
    line: Option<usize>,
    from_override: bool,
}

impl Setting {
    pub(crate) fn fail(&self, report: &mut Report, message: String) {
        if self.from_override {
            report.override_error(&self.source, message);
        } else {
            report.error(self.line, &self.source, message);
        }
    }
}

/// The override if given, else the file's value. An empty value in the file means "not set"
/// (templated files render absent values that way); an empty override is checked like any other.
pub(crate) fn setting(
    report: &mut Report,
    over: Option<&str>,
    flag: &str,
    f: &Fields,
    key: &str,
) -> Option<Setting> {
    let from_file = f
        .get(key)
        .and_then(|v| v.string(report).map(|s| (s, v.line)));
    pick(over, flag, f, key, from_file)
}

/// [`setting`] for a secret: a `${file:...}` or `${env:...}` reference in the file is resolved
/// (only when no override wins, so an unused reference is not read).
fn secret_setting(
    report: &mut Report,
    over: Option<&str>,
    flag: &str,
    f: &Fields,
    key: &str,
) -> Option<Setting> {
    let from_file = match over {
        Some(_) => None,
        None => f
            .get(key)
            .and_then(|v| v.secret(report).map(|s| (s, v.line))),
    };
    pick(over, flag, f, key, from_file)
}

fn pick(
    over: Option<&str>,
    flag: &str,
    f: &Fields,
    key: &str,
    from_file: Option<(String, Option<usize>)>,
) -> Option<Setting> {
    if let Some(value) = over {
        let env = flag
            .trim_start_matches('-')
            .replace('-', "_")
            .to_uppercase();
        return Some(Setting {
            value: value.to_owned(),
            source: format!("{flag} / PORTCULLIS_{env}"),
            line: None,
            from_override: true,
        });
    }
    let (value, line) = from_file.filter(|(v, _)| !v.is_empty())?;
    Some(Setting {
        value,
        source: f.key_path(key),
        line,
        from_override: false,
    })
}

/// Reads the block; `max_tries` is the effective `authenticateRateLimiterMaxTries`.
pub(crate) fn read(
    report: &mut Report,
    section: Option<(Option<usize>, &Node)>,
    over: &Overrides,
    max_tries: u32,
) -> PortcullisOptions {
    let (line, node) = section.map_or((None, None), |(l, n)| (l, Some(n)));
    let f = Fields::read(report, node, "portcullis", line, PORTCULLIS_KEYS, &|_| None);

    let listen = match setting(report, over.listen.as_deref(), "--listen", &f, "listen") {
        None => DEFAULT_LISTEN,
        Some(s) => s.value.trim().parse::<SocketAddr>().unwrap_or_else(|_| {
            s.fail(report, format!("invalid listen address {:?}: expected IP:PORT such as 127.0.0.1:9090 or [::]:9090", s.value));
            DEFAULT_LISTEN
        }),
    };
    let public_url = match setting(
        report,
        over.public_url.as_deref(),
        "--public-url",
        &f,
        "publicURL",
    ) {
        Some(s) => public_url(&s.value).unwrap_or_else(|e| {
            s.fail(report, e);
            default_public_url(listen)
        }),
        None => default_public_url(listen),
    };
    let data_dir = match (
        &over.data_dir,
        f.get("dataDir").and_then(|v| v.string(report)),
    ) {
        (Some(dir), _) if dir.as_os_str().is_empty() => {
            report.override_error("--data-dir / PORTCULLIS_DATA_DIR", "must not be empty");
            PathBuf::from(DEFAULT_DATA_DIR)
        }
        (Some(dir), _) => dir.clone(),
        (None, Some(dir)) if !dir.is_empty() => PathBuf::from(dir),
        (None, _) => PathBuf::from(DEFAULT_DATA_DIR),
    };
    let database = match secret_setting(
        report,
        over.database.as_deref(),
        "--database",
        &f,
        "database",
    ) {
        Some(s)
            if ["sqlite:", "postgres://", "postgresql://"]
                .iter()
                .any(|p| s.value.starts_with(p)) =>
        {
            Secret::new(s.value)
        }
        Some(s) => {
            // The value may hold a password: never quote it.
            s.fail(
                report,
                "must start with sqlite:// (or sqlite:), postgres:// or postgresql://".to_owned(),
            );
            Secret::default()
        }
        None => Secret::new(format!(
            "sqlite://{}",
            data_dir.join("portcullis.db").display()
        )),
    };
    let redis_url = match secret_setting(report, over.redis.as_deref(), "--redis", &f, "redis") {
        Some(s) if s.value.is_empty() => None,
        Some(s) if s.value.starts_with("redis://") || s.value.starts_with("rediss://") => {
            Some(Secret::new(s.value))
        }
        Some(s) => {
            s.fail(report, "must start with redis:// or rediss://".to_owned());
            None
        }
        None => None,
    };
    let log_format = match setting(
        report,
        over.log_format.as_deref(),
        "--log-format",
        &f,
        "logFormat",
    ) {
        None => LogFormat::Text,
        Some(s) => match s.value.to_ascii_lowercase().as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            _ => {
                s.fail(
                    report,
                    format!("unknown log format {:?}; valid: text, json", s.value),
                );
                LogFormat::Text
            }
        },
    };
    let trusted_proxies = f
        .get("trustedProxies")
        .map(|v| trusted_proxies(report, &v))
        .unwrap_or_default();
    let admin_groups = match f.get("adminGroups").and_then(|v| v.strings(report)) {
        None => vec![DEFAULT_ADMIN_GROUP.to_owned()],
        Some(items) => items
            .into_iter()
            .filter_map(|(group, path, line)| {
                if group.is_empty() {
                    report.error(line, &path, "a group name must not be empty");
                }
                (!group.is_empty()).then_some(group)
            })
            .collect(),
    };
    let ip_max_failures = match f.get("ipMaxFailures") {
        None => max_tries.saturating_mul(10),
        Some(v) => match v.int::<u32>(report) {
            Some(0) => {
                report.error(v.line, &v.path, "must be at least 1");
                1
            }
            Some(n) => n,
            None => 1,
        },
    };
    // Zero turns rotation off (the keys generated first are kept).
    let signing_key_rotation_period = f
        .get("signingKeyRotationPeriod")
        .and_then(|v| v.duration(report))
        .unwrap_or(DEFAULT_KEY_ROTATION);
    let request_read_timeout = match f.get("requestReadTimeout") {
        None => DEFAULT_REQUEST_READ_TIMEOUT,
        Some(v) => match v.duration(report) {
            Some(d) if d < std::time::Duration::from_millis(100) => {
                report.error(
                    v.line,
                    &v.path,
                    "must be at least 100ms (a client needs time to send its request)",
                );
                DEFAULT_REQUEST_READ_TIMEOUT
            }
            Some(d) => d,
            None => DEFAULT_REQUEST_READ_TIMEOUT,
        },
    };
    let session_max_lifetime = session_max_lifetime(report, over, &f);
    let ui = crate::ui::read(report, f.get("ui"), &f);
    let tracing = crate::telemetry::read(report, f.get("tracing"), &f, over);
    PortcullisOptions {
        listen,
        public_url,
        database,
        redis_url,
        log_format,
        data_dir,
        trusted_proxies,
        admin_groups,
        ip_max_failures,
        signing_key_rotation_period,
        request_read_timeout,
        session_max_lifetime,
        ui,
        tracing,
    }
}

/// `sessionMaxLifetime` (or `--session-max-lifetime` / `PORTCULLIS_SESSION_MAX_LIFETIME`): a
/// Go duration; zero means unlimited (KubeSphere's behaviour).
fn session_max_lifetime(report: &mut Report, over: &Overrides, f: &Fields) -> std::time::Duration {
    const FLAG: &str = "--session-max-lifetime / PORTCULLIS_SESSION_MAX_LIFETIME";
    if let Some(value) = over.session_max_lifetime.as_deref() {
        return match crate::duration::parse_go_duration(value.trim()) {
            Ok(d) => d,
            Err(e) => {
                report.override_error(FLAG, format!("{e}; write e.g. `720h` (0 = unlimited)"));
                DEFAULT_SESSION_MAX_LIFETIME
            }
        };
    }
    f.get("sessionMaxLifetime")
        .and_then(|v| v.duration(report))
        .unwrap_or(DEFAULT_SESSION_MAX_LIFETIME)
}

/// `http://<listen>`, with a loopback address in place of an unspecified one.
fn default_public_url(listen: SocketAddr) -> url::Url {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let text = format!("http://{}", SocketAddr::new(ip, listen.port()));
    url::Url::parse(&text)
        .unwrap_or_else(|_| url::Url::parse("http://127.0.0.1:9090").expect("literal URL parses"))
}

/// An absolute http(s) URL without credentials, query or fragment; trailing slashes trimmed.
fn public_url(value: &str) -> Result<url::Url, String> {
    const EXAMPLE: &str = "write e.g. https://ks.example.com or https://example.com/auth";
    let mut url = url::Url::parse(value.trim())
        .map_err(|e| format!("not an absolute URL ({e}); {EXAMPLE}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("the scheme must be http or https; {EXAMPLE}"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain a user name or password".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "must not have a query (?...) or fragment (#...); {EXAMPLE}"
        ));
    }
    let trimmed = url.path().trim_end_matches('/').to_owned();
    url.set_path(&trimmed);
    Ok(url)
}

fn trusted_proxies(report: &mut Report, field: &Field) -> Vec<IpNet> {
    let Some(items) = field.strings(report) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(items.len());
    for (text, path, line) in items {
        match parse_ip_net(text.trim()) {
            Some(net) => out.push(net),
            None => report.error(line, &path, format!("{text:?} is not an IP address or CIDR (e.g. 10.0.0.0/8, 192.168.1.10, fd00::/8)")),
        }
    }
    out
}

/// `ADDR` or `ADDR/PREFIX`.
pub(crate) fn parse_ip_net(text: &str) -> Option<IpNet> {
    let (addr, prefix) = match text.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (text, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse::<u8>().ok().filter(|p| *p <= max)?
        }
        Some(_) => return None,
    };
    Some(IpNet { addr, prefix })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_nets() {
        let n = parse_ip_net("10.0.0.0/8").unwrap();
        assert!(n.contains("10.1.2.3".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        assert_eq!(parse_ip_net("192.168.1.1").unwrap().prefix, 32);
        assert_eq!(parse_ip_net("fd00::/8").unwrap().prefix, 8);
        assert_eq!(parse_ip_net("::1").unwrap().prefix, 128);
        for bad in [
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0/8",
            "host",
            "::/129",
            "1.2.3.4/+8",
            "",
        ] {
            assert!(parse_ip_net(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn public_urls() {
        assert_eq!(
            public_url("https://ks.example.com/").unwrap().as_str(),
            "https://ks.example.com/"
        );
        assert_eq!(
            public_url("https://ks.example.com/auth/").unwrap().as_str(),
            "https://ks.example.com/auth"
        );
        for bad in [
            "ks.example.com",
            "ftp://x",
            "https://x/?a=1",
            "https://x/#f",
            "https://u:p@x/",
            "/path",
        ] {
            assert!(public_url(bad).is_err(), "{bad}");
        }
        assert_eq!(
            default_public_url("0.0.0.0:80".parse().unwrap()).as_str(),
            "http://127.0.0.1/"
        );
        assert_eq!(
            default_public_url("[::]:9090".parse().unwrap()).as_str(),
            "http://[::1]:9090/"
        );
    }
}

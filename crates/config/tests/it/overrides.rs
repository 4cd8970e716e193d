//! Flags and environment beat the file, which beats the defaults; `defaults()` without a file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use portcullis_config::{LoadOptions, LogFormat, Overrides, Secret, defaults, load_str};

use crate::common::{TYPES, dedent};

const FILE: &str = r#"
    authentication:
      jwtSecret: from-file
    portcullis:
      listen: 10.0.0.1:8000
      publicURL: https://file.example/base/
      database: postgres://file
      redis: redis://file
      logFormat: json
      dataDir: /file/data
      tracing:
        otlpEndpoint: http://file-collector:4318
      sessionMaxLifetime: 12h
"#;

fn with(overrides: Overrides) -> LoadOptions<'static> {
    LoadOptions {
        known_provider_types: TYPES,
        overrides,
    }
}

#[test]
fn file_beats_defaults() {
    let c = load_str(&dedent(FILE), None, &with(Overrides::default()))
        .unwrap_or_else(|e| panic!("{e}"));
    let p = &c.portcullis;
    assert_eq!(c.authentication.jwt_secret.expose(), "from-file");
    assert_eq!(p.listen.to_string(), "10.0.0.1:8000");
    assert_eq!(
        p.public_url.as_str(),
        "https://file.example/base",
        "trailing slash trimmed"
    );
    assert_eq!(p.database.expose(), "postgres://file");
    assert_eq!(
        p.redis_url.as_ref().map(Secret::expose),
        Some("redis://file")
    );
    assert_eq!(p.log_format, LogFormat::Json);
    assert_eq!(p.data_dir, Path::new("/file/data"));
    assert_eq!(
        p.tracing.otlp_endpoint.as_ref().map(url::Url::as_str),
        Some("http://file-collector:4318/")
    );
    assert_eq!(p.session_max_lifetime, Duration::from_secs(12 * 3600));
}

#[test]
fn overrides_beat_the_file() {
    let overrides = Overrides {
        listen: Some("[::1]:7000".into()),
        public_url: Some("http://flag.example".into()),
        database: Some("sqlite:/tmp/flag.db".into()),
        redis: Some("rediss://flag".into()),
        log_format: Some("text".into()),
        data_dir: Some(PathBuf::from("/flag/data")),
        jwt_secret: Some(Secret::new("from-flag")),
        otlp_endpoint: Some("https://flag-collector:4318".into()),
        session_max_lifetime: Some("0".into()),
    };
    let c = load_str(&dedent(FILE), None, &with(overrides)).unwrap_or_else(|e| panic!("{e}"));
    let p = &c.portcullis;
    assert_eq!(c.authentication.jwt_secret.expose(), "from-flag");
    assert_eq!(p.listen.to_string(), "[::1]:7000");
    assert_eq!(p.public_url.as_str(), "http://flag.example/");
    assert_eq!(p.database.expose(), "sqlite:/tmp/flag.db");
    assert_eq!(
        p.redis_url.as_ref().map(Secret::expose),
        Some("rediss://flag")
    );
    assert_eq!(p.log_format, LogFormat::Text);
    assert_eq!(p.data_dir, Path::new("/flag/data"));
    assert_eq!(
        p.tracing.otlp_endpoint.as_ref().map(url::Url::as_str),
        Some("https://flag-collector:4318/")
    );
    assert_eq!(p.session_max_lifetime, Duration::ZERO, "0 = unlimited");
}

#[test]
fn derived_defaults_follow_overrides() {
    let overrides = Overrides {
        listen: Some("0.0.0.0:8443".into()),
        data_dir: Some(PathBuf::from("/srv/pc")),
        ..Overrides::default()
    };
    let c = load_str("authentication: {jwtSecret: s}\n", None, &with(overrides))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.portcullis.public_url.as_str(), "http://127.0.0.1:8443/");
    assert_eq!(
        c.portcullis.database.expose(),
        "sqlite:///srv/pc/portcullis.db"
    );
}

#[test]
fn jwt_secret_from_override_alone_is_enough() {
    let overrides = Overrides {
        jwt_secret: Some(Secret::new("env")),
        ..Overrides::default()
    };
    let c = load_str("monitoring: {}\n", None, &with(overrides)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.authentication.jwt_secret.expose(), "env");
}

#[test]
fn bad_overrides_name_flag_and_variable() {
    let overrides = Overrides {
        listen: Some("nope".into()),
        public_url: Some("ftp://x".into()),
        database: Some("mysql://u:pw-HIDDEN@h".into()),
        redis: Some("http://r".into()),
        log_format: Some("xml".into()),
        data_dir: Some(PathBuf::new()),
        jwt_secret: Some(Secret::new("")),
        otlp_endpoint: Some("collector:4318".into()),
        session_max_lifetime: Some("30".into()),
    };
    let e = load_str(&dedent(FILE), None, &with(overrides)).unwrap_err();
    let paths: Vec<&str> = e.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "--jwt-secret / PORTCULLIS_JWT_SECRET",
            "--listen / PORTCULLIS_LISTEN",
            "--public-url / PORTCULLIS_PUBLIC_URL",
            "--data-dir / PORTCULLIS_DATA_DIR",
            "--database / PORTCULLIS_DATABASE",
            "--redis / PORTCULLIS_REDIS",
            "--log-format / PORTCULLIS_LOG_FORMAT",
            "--session-max-lifetime / PORTCULLIS_SESSION_MAX_LIFETIME",
            "--otlp-endpoint / PORTCULLIS_OTLP_ENDPOINT",
        ]
    );
    assert!(
        e.problems
            .iter()
            .all(|p| p.file.is_none() && p.line.is_none())
    );
    assert!(!e.to_string().contains("HIDDEN"), "{e}");
    assert!(
        e.to_string()
            .contains("--listen / PORTCULLIS_LISTEN: invalid listen address \"nope\""),
        "{e}"
    );
}

#[test]
fn defaults_without_a_file() {
    let c = defaults(Secret::new("generated"), &with(Overrides::default()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.authentication.jwt_secret.expose(), "generated");
    assert_eq!(c.authentication.authenticate_rate_limiter_max_tries, 5);
    assert_eq!(c.portcullis.listen.to_string(), "127.0.0.1:9090");
    assert!(c.source.is_none() && c.redis.is_none() && c.warnings.is_empty());
    assert_eq!(
        c.portcullis.session_max_lifetime,
        Duration::from_secs(30 * 24 * 3600),
        "ASVS 3.3.2's level-1 bound"
    );

    let overrides = Overrides {
        jwt_secret: Some(Secret::new("flag")),
        log_format: Some("json".into()),
        ..Overrides::default()
    };
    let c = defaults(Secret::new("generated"), &with(overrides)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.authentication.jwt_secret.expose(),
        "flag",
        "the override wins"
    );
    assert_eq!(c.portcullis.log_format, LogFormat::Json);

    let e = defaults(Secret::new(""), &with(Overrides::default())).unwrap_err();
    assert!(
        e.problems[0]
            .message
            .contains("JWT secret MUST not be empty")
    );
}

#[test]
fn debug_of_overrides_hides_urls_and_secret() {
    let overrides = Overrides {
        database: Some("postgres://u:pw-HIDDEN@h/d".into()),
        redis: Some("redis://:pw-HIDDEN@h".into()),
        jwt_secret: Some(Secret::new("jwt-HIDDEN")),
        listen: Some("127.0.0.1:1".into()),
        ..Overrides::default()
    };
    let debug = format!("{:?}", with(overrides));
    assert!(!debug.contains("HIDDEN"), "{debug}");
    assert!(debug.contains("127.0.0.1:1"));
}

//! Files that load, and what they load to.

use std::path::Path;
use std::time::Duration;

use portcullis_config::{GrantMethod, LogFormat, MappingMethod, load_file, load_str};

use crate::common::{dedent, ok, opts};

const HOUR: Duration = Duration::from_secs(3600);

/// The `kubesphere.yaml` of the seed document ("Integrate an Identity Provider").
#[test]
fn seed_document_example() {
    let text = r#"
        authentication:
          authenticateRateLimiterMaxTries: 10
          authenticateRateLimiterDuration: 10m0s
          jwtSecret: '******'
          oauthOptions:
            accessTokenMaxAge: 1h
            accessTokenInactivityTimeout: 30m
            identityProviders:
            - name: github
              type: GitHubIdentityProvider
              mappingMethod: auto
              provider:
                clientID: '******'
                clientSecret: '******'
                redirectURL: 'https://ks-console/oauth/redirect/github'
    "#;
    let types = ["GitHubIdentityProvider"];
    let opts = portcullis_config::LoadOptions {
        known_provider_types: &types,
        overrides: Default::default(),
    };
    let c = load_str(&dedent(text), None, &opts).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let a = &c.authentication;
    assert_eq!(a.authenticate_rate_limiter_max_tries, 10);
    assert_eq!(
        a.authenticate_rate_limiter_duration,
        Duration::from_secs(600)
    );
    assert_eq!(a.jwt_secret.expose(), "******");
    assert_eq!(a.oauth_options.access_token_max_age, HOUR);
    assert_eq!(
        a.oauth_options.access_token_inactivity_timeout,
        Duration::from_secs(1800)
    );
    let [p] = a.oauth_options.identity_providers.as_slice() else {
        panic!("one provider")
    };
    assert_eq!(p.name, "github");
    assert_eq!(p.provider_type, "GitHubIdentityProvider");
    assert_eq!(p.mapping_method, MappingMethod::Auto);
    assert_eq!(p.path, "authentication.oauthOptions.identityProviders[0]");
    assert_eq!(p.line, Some(9));
    assert_eq!(p.provider["clientID"], "******");
    assert_eq!(
        p.provider["redirectURL"],
        "https://ks-console/oauth/redirect/github"
    );
}

/// Spec §1.2. Its client has `redirectURIs: ["*"]`, which Portcullis only allows on a
/// development client; on a normal client it is dropped with a warning (see
/// `errors::wildcard_redirect_on_a_normal_client_is_dropped_with_a_warning`).
#[test]
fn spec_example_all_values() {
    let text = r#"
        authentication:
          authenticateRateLimiterMaxTries: 10
          authenticateRateLimiterDuration: 10m0s
          loginHistoryRetentionPeriod: 168h
          loginHistoryMaximumEntries: 100
          maximumClockSkew: 10s
          multipleLogin: true
          kubectlImage: kubesphere/kubectl:v1.0.0
          jwtSecret: "<random string>"
          oauthOptions:
            accessTokenMaxAge: 2h
            accessTokenInactivityTimeout: 2h
            clients:
            - name: default
              secret: kubesphere
              respondWithChallenges: true
              redirectURIs: ["*"]
              development: true
              grantMethod: auto
              scopeRestrictions: ["full"]
              accessTokenMaxAge: 24h
              accessTokenInactivityTimeout: 0s
            identityProviders:
            - name: github                      # also the callback path segment
              type: GitHubIdentityProvider
              mappingMethod: auto               # auto | lookup | mixed
              provider:                         # opaque map handed to the provider factory
                clientID: xxx
                clientSecret: xxx
                redirectURL: https://ks-console.example.com/oauth/redirect/github
                scopes: [user]
        redis:
          host: redis.kubesphere-system.svc
          port: 6379
          password: ""
          db: 0
    "#;
    let c = ok(text);
    let a = &c.authentication;
    assert_eq!(a.authenticate_rate_limiter_max_tries, 10);
    assert_eq!(
        a.authenticate_rate_limiter_duration,
        Duration::from_secs(600)
    );
    assert_eq!(a.login_history_retention_period, 168 * HOUR);
    assert_eq!(a.login_history_maximum_entries, 100);
    assert_eq!(a.maximum_clock_skew, Duration::from_secs(10));
    assert!(a.multiple_login);
    assert_eq!(a.kubectl_image, "kubesphere/kubectl:v1.0.0");
    assert_eq!(a.jwt_secret.expose(), "<random string>");
    let o = &a.oauth_options;
    assert_eq!(
        (o.access_token_max_age, o.access_token_inactivity_timeout),
        (2 * HOUR, 2 * HOUR)
    );
    assert_eq!(
        (&o.issuer, &o.sign_key, &o.sign_key_data),
        (&None, &None, &None)
    );
    let [cl] = o.clients.as_slice() else {
        panic!("one client")
    };
    assert_eq!(cl.name, "default");
    assert_eq!(cl.secret.as_ref().map(|s| s.expose()), Some("kubesphere"));
    assert!(cl.respond_with_challenges);
    assert_eq!(cl.redirect_uris, ["*"]);
    assert!(cl.post_logout_redirect_uris.is_empty());
    assert_eq!(cl.grant_method, GrantMethod::Auto);
    assert_eq!(cl.scope_restrictions, ["full"]);
    assert_eq!(cl.access_token_max_age, Some(24 * HOUR));
    assert_eq!(cl.access_token_inactivity_timeout, Some(Duration::ZERO));
    assert!(cl.trusted, "trusted defaults to true");
    assert!(cl.development);
    let [p] = o.identity_providers.as_slice() else {
        panic!("one provider")
    };
    assert_eq!(
        (p.name.as_str(), p.provider_type.as_str()),
        ("github", "GitHubIdentityProvider")
    );
    assert_eq!(p.mapping_method, MappingMethod::Auto);
    assert_eq!(p.line, Some(24));
    assert_eq!(p.provider["scopes"], serde_json::json!(["user"]));
    assert_eq!(p.provider.len(), 4);
    let r = c.redis.as_ref().expect("redis block with a host");
    assert_eq!(
        (r.host.as_str(), r.port, r.password.expose(), r.db),
        ("redis.kubesphere-system.svc", 6379, "", 0)
    );
    // The development client is worth a warning.
    assert!(
        c.warnings.iter().any(|w| w.contains("wildcard")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn keys_match_case_insensitively() {
    let c = ok(r#"
        Authentication:
          JWTSecret: s3cret
          AUTHENTICATERATELIMITERMAXTRIES: 3
          multiplelogin: true
          OAuthOptions:
            AccessTokenMaxAge: 1h
            Clients:
            - NAME: c
              RedirectUris: [https://a.example/cb]
            IdentityProviders:
            - Name: gh
              TYPE: GitHubIdentityProvider
              MappingMethod: lookup
              Provider: {ClientID: x, clientSecret: y}
        REDIS:
          HOST: r
        PortCullis:
          LISTEN: 127.0.0.1:1
          publicurl: https://p.example
    "#);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let a = &c.authentication;
    assert_eq!(a.jwt_secret.expose(), "s3cret");
    assert_eq!(a.authenticate_rate_limiter_max_tries, 3);
    assert!(a.multiple_login);
    assert_eq!(a.oauth_options.access_token_max_age, HOUR);
    assert_eq!(
        a.oauth_options.clients[0].redirect_uris,
        ["https://a.example/cb"]
    );
    let p = &a.oauth_options.identity_providers[0];
    assert_eq!(p.mapping_method, MappingMethod::Lookup);
    // Provider option keys keep their case.
    assert!(p.provider.contains_key("ClientID") && p.provider.contains_key("clientSecret"));
    assert_eq!(c.redis.as_ref().map(|r| r.host.as_str()), Some("r"));
    assert_eq!(c.portcullis.listen.port(), 1);
    assert_eq!(c.portcullis.public_url.as_str(), "https://p.example/");
}

#[test]
fn every_duration_form() {
    let cases: [(&str, Duration); 9] = [
        ("10m0s", Duration::from_secs(600)),
        ("2h", 2 * HOUR),
        ("168h", 168 * HOUR),
        ("1h30m", Duration::from_secs(5400)),
        ("1.5h", Duration::from_secs(5400)),
        ("300ms", Duration::from_millis(300)),
        ("0", Duration::ZERO),
        ("0s", Duration::ZERO),
        ("\"2h0m0s\"", 2 * HOUR),
    ];
    for (written, expected) in cases {
        let c = ok(&format!(
            "authentication:\n  jwtSecret: s\n  maximumClockSkew: {written}\n"
        ));
        assert_eq!(c.authentication.maximum_clock_skew, expected, "{written}");
    }
}

#[test]
fn defaults_when_keys_are_absent() {
    let c = ok("authentication:\n  jwtSecret: s\n");
    let a = &c.authentication;
    assert_eq!(a.authenticate_rate_limiter_max_tries, 5);
    assert_eq!(
        a.authenticate_rate_limiter_duration,
        Duration::from_secs(1800)
    );
    assert_eq!(a.maximum_clock_skew, Duration::from_secs(10));
    assert_eq!(a.login_history_retention_period, 168 * HOUR);
    assert_eq!(a.login_history_maximum_entries, 100);
    assert!(!a.multiple_login);
    assert_eq!(a.kubectl_image, "kubesphere/kubectl:v1.0.0");
    let o = &a.oauth_options;
    assert_eq!(
        (o.access_token_max_age, o.access_token_inactivity_timeout),
        (2 * HOUR, 2 * HOUR)
    );
    assert!(o.clients.is_empty() && o.identity_providers.is_empty());
    assert!(c.redis.is_none());
    let p = &c.portcullis;
    assert_eq!(p.listen.to_string(), "127.0.0.1:9090");
    assert_eq!(p.public_url.as_str(), "http://127.0.0.1:9090/");
    assert_eq!(p.data_dir, Path::new("./portcullis-data"));
    assert_eq!(
        p.database.expose(),
        "sqlite://./portcullis-data/portcullis.db"
    );
    assert!(p.redis_url.is_none());
    assert_eq!(p.log_format, LogFormat::Text);
    assert!(p.trusted_proxies.is_empty());
    assert_eq!(p.admin_groups, ["platform-admins"]);
    assert_eq!(p.ip_max_failures, 50);
    assert!(c.warnings.is_empty());
    assert!(c.source.is_none());
}

#[test]
fn optional_values_and_client_defaults() {
    let c = ok(r#"
        authentication:
          jwtSecret: s
          authenticateRateLimiterMaxTries: 7
          kubectlImage:
          oauthOptions:
            clients:
            - name: public
              secret: ""
            - name: untrusted
              trusted: false
              grantMethod: prompt
            identityProviders:
            - name: a
              type: AliyunIDaasProvider
            - name: b
              type: CASIdentityProvider
              mappingMethod: mixed
        redis:
          host: ""
          port: 6380
        portcullis:
          listen: ""
          publicURL: ""
          database: ""
          redis: ""
          logFormat: ""
          dataDir: ""
    "#);
    let p = &c.portcullis;
    assert_eq!(
        p.listen.to_string(),
        "127.0.0.1:9090",
        "empty means the default"
    );
    assert_eq!(p.public_url.as_str(), "http://127.0.0.1:9090/");
    assert_eq!(
        p.database.expose(),
        "sqlite://./portcullis-data/portcullis.db"
    );
    assert!(p.redis_url.is_none());
    assert_eq!(p.log_format, LogFormat::Text);
    let o = &c.authentication.oauth_options;
    assert!(
        o.clients[0].secret.is_none(),
        "an empty secret makes a public client"
    );
    assert!(o.clients[0].trusted);
    assert_eq!(o.clients[0].grant_method, GrantMethod::Auto);
    assert_eq!(o.clients[0].access_token_max_age, None);
    assert!(!o.clients[1].trusted);
    assert_eq!(o.clients[1].grant_method, GrantMethod::Prompt);
    assert_eq!(o.identity_providers[0].provider_type, "AliyunIDaaSProvider");
    assert_eq!(
        o.identity_providers[0].mapping_method,
        MappingMethod::Manual,
        "absent means manual"
    );
    assert_eq!(
        o.identity_providers[1].mapping_method,
        MappingMethod::Manual,
        "mixed means manual"
    );
    assert_eq!(c.authentication.kubectl_image, "kubesphere/kubectl:v1.0.0");
    assert_eq!(c.portcullis.ip_max_failures, 70, "ten times maxTries");
    assert!(c.redis.is_none(), "no host, no redis");
    assert!(
        c.warnings.iter().any(|w| w.contains("redis.host")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn reference_example_file_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/kubesphere.yaml");
    let c = load_file(&path, &opts()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.source.as_deref(), Some(path.as_path()));
    let a = &c.authentication;
    assert_eq!(a.authenticate_rate_limiter_max_tries, 10);
    assert_eq!(
        a.oauth_options.issuer.as_deref(),
        Some("https://ks-console.example.com/oauth")
    );
    assert_eq!(
        a.oauth_options.sign_key.as_deref(),
        Some(Path::new("/etc/kubesphere/pki/sign.key"))
    );
    assert_eq!(a.oauth_options.clients.len(), 2);
    assert_eq!(
        a.oauth_options.clients[0].post_logout_redirect_uris,
        ["https://ks-console.example.com/login"]
    );
    assert_eq!(a.oauth_options.identity_providers.len(), 2);
    assert_eq!(
        a.oauth_options.identity_providers[0]
            .display_name
            .as_deref(),
        Some("GitHub")
    );
    let p = &c.portcullis;
    assert_eq!(p.listen.to_string(), "0.0.0.0:9090");
    assert_eq!(p.public_url.as_str(), "https://ks-console.example.com/");
    assert_eq!(p.log_format, LogFormat::Json);
    assert_eq!(p.data_dir, Path::new("/var/lib/portcullis"));
    assert!(p.database.expose().starts_with("postgres://"));
    assert!(p.redis_url.is_some());
    assert_eq!(p.trusted_proxies.len(), 3);
    assert!(
        p.trusted_proxies[0].contains("10.20.30.40".parse().unwrap_or_else(|_| unreachable!()))
    );
    assert_eq!(p.admin_groups, ["platform-admins", "auditors"]);
    assert_eq!(p.ip_max_failures, 100);
    // The only warning is the one about the development client.
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
}

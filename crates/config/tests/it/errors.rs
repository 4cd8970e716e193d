//! Each check: the exact key path, the right line, a useful message; and all problems at once.

use std::io::Write;

use portcullis_config::load_file;

use crate::common::{assert_problem, errors, one_error, opts};

#[test]
fn wrong_type_on_second_provider_points_at_its_line() {
    let p = one_error(
        r#"
        authentication:
          jwtSecret: s
          oauthOptions:
            identityProviders:
            - name: github
              type: GitHubIdentityProvider
            - name: gh2
              mappingMethod: auto
              type: GithubProvider
    "#,
    );
    assert_problem(
        &p,
        "authentication.oauthOptions.identityProviders[1].type",
        9,
        "unknown provider type \"GithubProvider\"; known: AliyunIDaaSProvider, CASIdentityProvider, \
         GitHubIdentityProvider, LDAPIdentityProvider, OIDCIdentityProvider",
    );
}

#[test]
fn provider_type_case_mismatch_gets_a_hint() {
    let p = one_error(
        "authentication:\n  jwtSecret: s\n  oauthOptions:\n    identityProviders:\n    - {name: a, type: GithubIdentityProvider}\n",
    );
    assert_problem(
        &p,
        "authentication.oauthOptions.identityProviders[0].type",
        5,
        "did you mean `GitHubIdentityProvider`?",
    );
}

#[test]
fn file_and_line_in_display() {
    let mut file = tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("{e}"));
    let text = "monitoring: {}\nauthentication:\n  jwtSecret: s\n  multipleLogin: maybe\n";
    file.write_all(text.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    let e = load_file(file.path(), &opts()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}:4: authentication.multipleLogin: expected true or false, found a string",
            file.path().display()
        )
    );
    let missing = load_file(
        std::path::Path::new("/nonexistent/kubesphere.yaml"),
        &opts(),
    )
    .unwrap_err();
    assert!(
        missing
            .to_string()
            .starts_with("/nonexistent/kubesphere.yaml: cannot read"),
        "{missing}"
    );
}

#[test]
fn jwt_secret_required() {
    let p = one_error("authentication:\n  multipleLogin: true\n");
    assert_problem(
        &p,
        "authentication.jwtSecret",
        1,
        "JWT secret MUST not be empty",
    );
    let p = one_error("redis: {}\nauthentication:\n  jwtSecret: \"\"\n");
    assert_problem(
        &p,
        "authentication.jwtSecret",
        3,
        "JWT secret MUST not be empty",
    );
    let p = one_error("");
    assert_eq!(
        (p.path.as_str(), p.line),
        ("authentication.jwtSecret", None)
    );
}

#[test]
fn bare_number_duration_is_an_error() {
    let problems = errors(
        r#"
        authentication:
          jwtSecret: s
          authenticateRateLimiterDuration: 600
          oauthOptions:
            accessTokenMaxAge: 7200
            accessTokenInactivityTimeout: 1d
            clients:
            - name: c
              accessTokenMaxAge: 1.5
    "#,
    );
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert_problem(
        &problems[0],
        "authentication.authenticateRateLimiterDuration",
        3,
        "bare number 600 is 600 nanoseconds in KubeSphere; write e.g. `2h`",
    );
    assert_problem(
        &problems[1],
        "authentication.oauthOptions.accessTokenMaxAge",
        5,
        "bare number 7200 is 7200 nanoseconds in KubeSphere; write e.g. `2h`",
    );
    assert_problem(
        &problems[2],
        "authentication.oauthOptions.accessTokenInactivityTimeout",
        6,
        "unknown unit \"d\"",
    );
    assert_problem(
        &problems[3],
        "authentication.oauthOptions.clients[0].accessTokenMaxAge",
        9,
        "bare number 1.5 is 1.5 nanoseconds",
    );
}

#[test]
fn rate_limiter_checks() {
    let p = one_error(
        "authentication:\n  jwtSecret: s\n  authenticateRateLimiterMaxTries: 11\n  loginHistoryMaximumEntries: 10\n",
    );
    assert_problem(
        &p,
        "authentication.authenticateRateLimiterMaxTries",
        3,
        "must not exceed loginHistoryMaximumEntries (10)",
    );
    let p = one_error("authentication:\n  jwtSecret: s\n  loginHistoryMaximumEntries: 2\n");
    assert_problem(
        &p,
        "authentication.loginHistoryMaximumEntries",
        3,
        "authenticateRateLimiterMaxTries (5) must not exceed",
    );
    let p = one_error("authentication:\n  jwtSecret: s\n  authenticateRateLimiterMaxTries: 0\n");
    assert_problem(
        &p,
        "authentication.authenticateRateLimiterMaxTries",
        3,
        "must be at least 1",
    );
    let p = one_error("authentication:\n  jwtSecret: s\n  authenticateRateLimiterMaxTries: -1\n");
    assert_problem(
        &p,
        "authentication.authenticateRateLimiterMaxTries",
        3,
        "-1 is out of range",
    );
}

#[test]
fn provider_checks() {
    let problems = errors(
        r#"
        authentication:
          jwtSecret: s
          oauthOptions:
            identityProviders:
            - type: GitHubIdentityProvider
            - name: gh
            - name: -bad-
              type: GitHubIdentityProvider
            - name: ok
              type: LDAPIdentityProvider
              mappingMethod: Auto
              provider: [a, b]
            - name: ok
              type: OIDCIdentityProvider
            - just a string
    "#,
    );
    let summary: Vec<(&str, Option<usize>)> =
        problems.iter().map(|p| (p.path.as_str(), p.line)).collect();
    let base = "authentication.oauthOptions.identityProviders";
    assert_eq!(
        summary,
        [
            (format!("{base}[0].name").as_str(), Some(5)),
            (&format!("{base}[1].type"), Some(6)),
            (&format!("{base}[2].name"), Some(7)),
            (&format!("{base}[3].mappingMethod"), Some(11)),
            (&format!("{base}[3].provider"), Some(12)),
            (&format!("{base}[4].name"), Some(13)),
            (&format!("{base}[5]"), Some(15)),
        ],
        "{problems:#?}"
    );
    assert!(problems[0].message.contains("needs a `name`"));
    assert!(
        problems[1]
            .message
            .contains("needs a `type`; known: AliyunIDaaSProvider")
    );
    assert!(problems[2].message.contains("valid label value"));
    assert!(problems[3].message.contains(
        "unknown mapping method \"Auto\"; valid: auto, lookup, manual, mixed (did you mean `auto`?)"
    ));
    assert!(
        problems[4]
            .message
            .contains("expected a map of provider options, found a list")
    );
    assert!(problems[5].message.contains("duplicate identity provider name \"ok\": already used by authentication.oauthOptions.identityProviders[3] (line 9)"));
    assert!(
        problems[6]
            .message
            .contains("expected an identity provider (a map), found a string")
    );
}

#[test]
fn client_checks() {
    let problems = errors(
        r#"
        authentication:
          jwtSecret: s
          oauthOptions:
            clients:
            - secret: x
            - name: a
              redirectURIs:
              - https://ok.example/cb
              - "*"
              - /relative
              - https://x.example/cb#frag
              postLogoutRedirectURIs: [not a url]
              grantMethod: always
            - name: a
    "#,
    );
    let summary: Vec<(&str, Option<usize>)> =
        problems.iter().map(|p| (p.path.as_str(), p.line)).collect();
    let base = "authentication.oauthOptions.clients";
    assert_eq!(
        summary,
        [
            (format!("{base}[0].name").as_str(), Some(5)),
            (&format!("{base}[1].redirectURIs[2]"), Some(10)),
            (&format!("{base}[1].redirectURIs[3]"), Some(11)),
            (&format!("{base}[1].postLogoutRedirectURIs[0]"), Some(12)),
            (&format!("{base}[1].grantMethod"), Some(13)),
            (&format!("{base}[2].name"), Some(14)),
        ],
        "{problems:#?}"
    );
    assert!(problems[1].message.contains("not an absolute URL"));
    assert!(problems[2].message.contains("fragment"));
    assert!(problems[4].message.contains("valid: auto, prompt, deny"));
    assert!(problems[5].message.contains("duplicate client name \"a\""));
}

#[test]
fn wildcard_redirect_on_a_normal_client_is_dropped_with_a_warning() {
    // Spec §1.2's client as KubeSphere ships it: the file still loads (an existing
    // kubesphere.yaml must load unchanged), the wildcard is dropped and the reason is given.
    let text = "authentication:\n  jwtSecret: s\n  oauthOptions:\n    clients:\n    - name: default\n      redirectURIs: [\"*\"]\n";
    let config =
        portcullis_config::load_str(text, None, &portcullis_config::LoadOptions::default())
            .unwrap();
    let client = &config.authentication.oauth_options.clients[0];
    assert!(client.redirect_uris.is_empty());
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.contains("clients[0].redirectURIs[0]")
                && w.contains("is ignored")
                && w.contains("matched exactly")),
        "{:?}",
        config.warnings
    );
}

#[test]
fn type_errors_name_what_was_expected() {
    let problems = errors(
        r#"
        authentication:
          jwtSecret: [a, b]
          loginHistoryMaximumEntries: lots
          oauthOptions: [x]
        redis:
          host: r
          port: 99999
          db: -1
        portcullis: just text
    "#,
    );
    let got: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "line 2: authentication.jwtSecret: expected a string, found a list",
            "line 3: authentication.loginHistoryMaximumEntries: expected an integer, found a string",
            "line 4: authentication.oauthOptions: expected a map, found a list",
            "line 7: redis.port: 99999 is out of range",
            "line 8: redis.db: must not be negative",
            "line 9: portcullis: expected a map, found a string",
        ]
    );
}

#[test]
fn duplicate_keys_in_different_case() {
    let p = one_error("authentication:\n  jwtSecret: a\n  JWTSecret: b\n");
    assert_problem(
        &p,
        "authentication.JWTSecret",
        3,
        "`jwtSecret` is already set on line 2 (keys are case-insensitive)",
    );
    let p = one_error("authentication:\n  jwtSecret: a\nAuthentication:\n  jwtSecret: b\n");
    assert_problem(&p, "authentication", 3, "section given twice");
}

#[test]
fn portcullis_block_checks() {
    let problems = errors(
        r#"
        authentication: {jwtSecret: s}
        portcullis:
          listen: localhost:80
          publicURL: ks.example.com
          database: mysql://u:hunter2@h/d
          redis: http://r
          logFormat: xml
          trustedProxies: [10.0.0.0/8, 300.1.1.1, 10.0.0.0/40]
          adminGroups: [""]
          ipMaxFailures: 0
    "#,
    );
    let got: Vec<(&str, Option<usize>)> =
        problems.iter().map(|p| (p.path.as_str(), p.line)).collect();
    assert_eq!(
        got,
        [
            ("portcullis.listen", Some(3)),
            ("portcullis.publicURL", Some(4)),
            ("portcullis.database", Some(5)),
            ("portcullis.redis", Some(6)),
            ("portcullis.logFormat", Some(7)),
            ("portcullis.trustedProxies[1]", Some(8)),
            ("portcullis.trustedProxies[2]", Some(8)),
            ("portcullis.adminGroups[0]", Some(9)),
            ("portcullis.ipMaxFailures", Some(10)),
        ],
        "{problems:#?}"
    );
    let all: String = problems.iter().map(|p| format!("{p}\n")).collect();
    assert!(
        !all.contains("hunter2"),
        "database URLs may hold passwords: {all}"
    );
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let problems = errors(
        r#"
        authentication:
          maximumClockSkew: 5
          oauthOptions:
            identityProviders:
            - {name: a, type: Nope}
            - {name: b, type: AlsoNope}
        portcullis:
          logFormat: yaml
    "#,
    );
    assert_eq!(problems.len(), 5, "{problems:#?}");
}

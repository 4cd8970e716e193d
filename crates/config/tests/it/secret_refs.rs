//! `${file:...}` and `${env:...}` in every secret-bearing key, through the whole loader.

use portcullis_config::{load_file, load_str};

use crate::common::{dedent, opts};

/// Every secret-bearing key of the file reads its value from a file (relative paths start at the
/// configuration file's directory); the files are listed for the reload watcher; other keys of
/// the provider map stay as written.
#[test]
fn every_secret_key_reads_a_file() {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in [
        ("jwt", "jwt-from-file\n"),
        ("client", "client-from-file"),
        ("gh", "gh-from-file\r\n"),
        ("ldap", "ldap-from-file\n"),
        ("redis", "redis-from-file\n"),
        ("db", "postgres://u:pw@db/x\n"),
        ("redis-url", "redis://:pw@redis:6379/0\n"),
    ] {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    let text = dedent(
        r#"
        authentication:
          JWTSECRET: "${file:jwt}"
          oauthOptions:
            clients:
            - name: app
              secret: ${file:client}
            identityProviders:
            - name: github
              type: GitHubIdentityProvider
              provider:
                clientsecret: "${file:gh}"
                clientID: "${file:gh}"
                endpoint:
                  managerPassword: "${file:ldap}"
        redis:
          host: redis
          Password: "${file:redis}"
        portcullis:
          database: "${file:db}"
          redis: "${file:redis-url}"
    "#,
    );
    let file = dir.path().join("kubesphere.yaml");
    std::fs::write(&file, &text).unwrap();
    let c = load_file(&file, &opts()).unwrap_or_else(|e| panic!("{e}"));
    let a = &c.authentication;
    assert_eq!(a.jwt_secret.expose(), "jwt-from-file");
    let client = &a.oauth_options.clients[0];
    assert_eq!(client.secret.as_ref().unwrap().expose(), "client-from-file");
    let p = &a.oauth_options.identity_providers[0].provider;
    assert_eq!(p["clientsecret"], "gh-from-file");
    assert_eq!(p["endpoint"]["managerPassword"], "ldap-from-file");
    assert_eq!(
        p["clientID"], "${file:gh}",
        "not a secret key: taken literally"
    );
    assert_eq!(
        c.redis.as_ref().unwrap().password.expose(),
        "redis-from-file"
    );
    assert_eq!(c.portcullis.database.expose(), "postgres://u:pw@db/x");
    assert_eq!(
        c.portcullis.redis_url.as_ref().unwrap().expose(),
        "redis://:pw@redis:6379/0"
    );
    assert_eq!(c.secret_files.len(), 7);
    assert!(c.secret_files.contains(&dir.path().join("jwt")));
}

#[test]
fn unresolvable_references_are_located_errors() {
    let text = dedent(
        r#"
        authentication:
          jwtSecret: "${env:PORTCULLIS_CONFIG_TEST_UNSET}"
          oauthOptions:
            clients:
            - name: app
              secret: "${file:/nonexistent/portcullis/secret}"
        portcullis:
          database: "${file:}"
    "#,
    );
    let e = load_str(&text, None, &opts()).unwrap_err();
    let shown: Vec<String> = e.problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "line 2: authentication.jwtSecret: environment variable PORTCULLIS_CONFIG_TEST_UNSET is not set",
            "line 6: authentication.oauthOptions.clients[0].secret: cannot read secret file /nonexistent/portcullis/secret: No such file or directory (os error 2)",
            "line 8: portcullis.database: ${file:} needs a path: ${file:/path/to/secret}",
        ]
    );
}

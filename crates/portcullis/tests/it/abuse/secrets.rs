//! Secrets (issue 9, item 6). Every secret-bearing key Portcullis reads, in every spelling a
//! case-insensitive reader accepts, never reaches the log (at `trace` level), a config error or
//! the public config endpoint; nor do passwords, tokens and cookies. Secrets may come from
//! files (`${file:...}`, as a mounted Kubernetes Secret) or the environment (`${env:...}`),
//! with precise errors, and a changed secret file is picked up by the live reload.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use portcullis_test_support::{PgDatabase, Server, ServerOptions, eventually};
use serde_json::Value;

use crate::common::*;
use crate::federation::{Browser, PUBLIC};

/// Every secret-bearing key (the `Secret` fields of crates/config and the `get_secret` options
/// of crates/providers), the value the tests give it, and its spellings: as documented, lower
/// case, upper case (keys are matched case-insensitively, as KubeSphere's viper does).
const SECRETS: &[(&str, &str)] = &[
    ("authentication.jwtSecret", "jwt-SEKRIT-0123456789abcdef"),
    (
        "authentication.oauthOptions.clients[].secret",
        "client-SEKRIT-1",
    ),
    (
        "identityProviders[].provider.clientSecret (GitHub; OIDC, IDaaS, OAuth2 alike)",
        "gh-SEKRIT-2",
    ),
    (
        "identityProviders[].provider.managerPassword (LDAP)",
        "ldap-SEKRIT-3",
    ),
    ("redis.password", "redis-SEKRIT-4"),
    ("portcullis.database (password in the URL)", "db-SEKRIT-5"),
    (
        "portcullis.redis (password in the URL)",
        "redisurl-SEKRIT-6",
    ),
    (
        "authentication.oauthOptions.signKeyData",
        "MIIEowIBAAKCAQEA",
    ),
];
/// A user's password, and the admin's (from `PORTCULLIS_ADMIN_PASSWORD`).
const USER_PASSWORD: &str = "user-SEKRIT-7";
const ADMIN_SECRET: &str = "admin-SEKRIT-8";

fn value(key: &str) -> &'static str {
    SECRETS.iter().find(|(k, _)| k.starts_with(key)).unwrap().1
}

#[derive(Clone, Copy, Debug)]
enum Spelling {
    Documented,
    Lower,
    Upper,
}

fn spell(key: &str, s: Spelling) -> String {
    match s {
        Spelling::Documented => key.to_owned(),
        Spelling::Lower => key.to_lowercase(),
        Spelling::Upper => key.to_uppercase(),
    }
}

/// The signing key of the OIDC tests as `signKeyData` wants it: the base64 of the PEM file.
fn sign_key_data() -> String {
    use base64::Engine as _;
    let pem = include_str!("../oidc/testdata/sign-key-pkcs1.pem");
    base64::engine::general_purpose::STANDARD.encode(pem)
}

/// A kubesphere.yaml with every secret, its keys spelt `s`, the database `db_url` and Redis on
/// `redis_port` (both Redis passwords are real: the private Redis wants one of them).
fn all_secrets_yaml(s: Spelling, db_url: &str, redis_port: u16) -> String {
    let k = |key: &str| spell(key, s);
    format!(
        r#"
authentication:
  {jwt}: "{jwt_v}"
  multipleLogin: true
  authenticateRateLimiterMaxTries: 100
  oauthOptions:
    accessTokenMaxAge: 1h
    {sign}: "{sign_v}"
    clients:
    - name: app
      {secret}: "{client_v}"
      redirectURIs: ["http://127.0.0.1:5555/cb"]
    identityProviders:
    - name: github
      type: GitHubIdentityProvider
      mappingMethod: auto
      provider:
        clientID: gh-client-id
        {client_secret}: "{gh_v}"
        redirectURL: "{PUBLIC}/oauth/callback/github"
    - name: corp-ldap
      type: LDAPIdentityProvider
      mappingMethod: auto
      provider:
        host: 127.0.0.1:1
        managerDN: cn=admin,dc=example,dc=org
        {manager}: "{ldap_v}"
        userSearchBase: ou=Users,dc=example,dc=org
        loginAttribute: uid
        mailAttribute: mail
redis:
  host: 127.0.0.1
  port: {redis_port}
  {password}: "{redis_v}"
portcullis:
  publicURL: {PUBLIC}
  {database}: "{db_url}"
  {redis}: "redis://:{redisurl_v}@127.0.0.1:{redis_port}/0"
"#,
        jwt = k("jwtSecret"),
        jwt_v = value("authentication.jwtSecret"),
        sign = k("signKeyData"),
        sign_v = sign_key_data(),
        secret = k("secret"),
        client_v = value("authentication.oauthOptions.clients"),
        client_secret = k("clientSecret"),
        gh_v = value("identityProviders[].provider.clientSecret"),
        manager = k("managerPassword"),
        ldap_v = value("identityProviders[].provider.managerPassword"),
        password = k("password"),
        redis_v = value("redis.password"),
        database = k("database"),
        redis = k("redis"),
        redisurl_v = value("portcullis.redis"),
    )
}

/// Fails when `text` holds any secret of the table, password, or one of `more`.
#[track_caller]
fn assert_clean(text: &str, more: &[&str], what: &str) {
    for (key, secret) in SECRETS {
        assert!(!text.contains(secret), "{what}: the value of {key} leaked");
    }
    for secret in [USER_PASSWORD, ADMIN_SECRET].iter().chain(more) {
        assert!(!text.contains(secret), "{what}: {secret:.12}... leaked");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_in_every_spelling_never_reach_logs_or_the_config_endpoint() {
    for spelling in [Spelling::Documented, Spelling::Lower, Spelling::Upper] {
        let db = PgDatabase::create()
            .await
            .expect("PostgreSQL at 127.0.0.1:5432");
        let db_url = db.url.replacen(
            "postgres://postgres@",
            &format!("postgres://postgres:{}@", value("portcullis.database")),
            1,
        );
        assert!(db_url.contains(value("portcullis.database")), "{db_url}");
        let redis = crate::degradation::PrivateRedis::start_with_passwords(&[
            value("redis.password"),
            value("portcullis.redis"),
        ]);
        let yaml = all_secrets_yaml(spelling, &db_url, redis.port);
        let mut opts = ServerOptions::new(bin(), Some(yaml));
        opts.env.push(("RUST_LOG".into(), "trace".into()));
        opts.env
            .push(("PORTCULLIS_ADMIN_PASSWORD".into(), ADMIN_SECRET.into()));
        let server = Server::start(opts).expect("server starts");
        add_user(&server, &["alice", "--password", USER_PASSWORD]);
        let seen = exercise(&server).await;
        // signKeyData as written in the file (base64), a 40-character piece of it, and the key.
        let key_data = sign_key_data();
        let mut more: Vec<&str> = seen.iter().map(String::as_str).collect();
        more.extend([key_data.as_str(), &key_data[200..240]]);

        // The public configuration: no secret value, no secret key.
        let cfg = http()
            .get(server.url("/kapis/config.kubesphere.io/v1alpha2/configs/oauth"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_clean(&cfg, &more, &format!("{spelling:?}: /configs/oauth"));
        let lower = cfg.to_lowercase();
        for key in ["secret", "password", "signkeydata"] {
            assert!(
                !lower.contains(key),
                "{spelling:?}: /configs/oauth names {key}: {cfg}"
            );
        }
        assert!(
            cfg.contains("gh-client-id"),
            "the public part is there: {cfg}"
        );

        // A reload at trace level (the file changes), then the whole log and standard output.
        let text = std::fs::read_to_string(&server.config).unwrap();
        std::fs::write(&server.config, format!("{text}# changed\n")).unwrap();
        eventually(Duration::from_secs(20), "the reload is logged", || async {
            server
                .logs()
                .contains("configuration reloaded")
                .then_some(())
        })
        .await
        .unwrap();
        let logs = server.logs();
        assert!(
            logs.lines().count() > 100,
            "trace logging is on: {logs:.2000}"
        );
        assert_clean(&logs, &more, &format!("{spelling:?}: the log"));
        assert_clean(
            &server.stdout.lock().unwrap(),
            &more,
            &format!("{spelling:?}: stdout"),
        );
        drop(server);
        drop(db);
        drop(redis);
    }
}

/// A password grant through the client `app` of the all-secrets configuration.
async fn app_login(
    server: &Server,
    user: &str,
    password: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let form = [
        ("grant_type", "password"),
        ("username", user),
        ("password", password),
        ("client_id", "app"),
        (
            "client_secret",
            value("authentication.oauthOptions.clients"),
        ),
    ];
    token(server, &form).await
}

/// Logins, refresh, TokenReview, the sign-in page, a federated start, an LDAP login that fails
/// to connect, logout. Returns the tokens and cookies seen, which must not be logged either.
async fn exercise(server: &Server) -> Vec<String> {
    let mut seen = Vec::new();
    // With clients configured, the token endpoint wants a client (here in the form).
    let client = value("authentication.oauthOptions.clients");
    let (status, _, body) = app_login(server, "alice", USER_PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap().to_owned();
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    assert!(is_authenticated(server, &access).await);
    let (status, _, body) = token(
        server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", "app"),
            ("client_secret", client),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    seen.extend([
        access.clone(),
        refresh,
        body["refresh_token"].as_str().unwrap().to_owned(),
    ]);
    // The client secret through Basic and form authentication, right and wrong.
    let resp = http()
        .post(server.url("/oauth/token"))
        .basic_auth("app", Some(client))
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", USER_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (status, _, _) = token(
        server,
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "wrong-SEKRIT-9"),
            ("client_id", "app"),
            ("client_secret", client),
        ],
    )
    .await;
    assert_eq!(status, 400);
    seen.push("wrong-SEKRIT-9".to_owned());
    // An unknown name goes to LDAP, which cannot be reached: an error with no password in it.
    let (status, _, _) = app_login(server, "ldap-only-user", "ldap-user-SEKRIT-10").await;
    assert_eq!(status, 400);
    seen.push("ldap-user-SEKRIT-10".to_owned());
    // The pages: CSRF and session cookies, a federated start.
    let mut br = Browser::new(server);
    br.get(&format!("{PUBLIC}/login")).await;
    let csrf = br.cookie("portcullis_csrf").unwrap();
    let hop = br
        .post_form(
            &format!("{PUBLIC}/login"),
            &[
                ("csrf_token", &csrf),
                ("username", "alice"),
                ("password", USER_PASSWORD),
            ],
        )
        .await;
    assert_eq!(hop.status, 303, "{}", hop.body);
    let session = br.cookie("portcullis_session").unwrap();
    assert_eq!(br.get(&format!("{PUBLIC}/account")).await.status, 200);
    let start = br.get(&format!("{PUBLIC}/login/github")).await;
    assert_eq!(start.status, 302);
    let state_cookie = br.cookie("portcullis_login_state").unwrap();
    seen.extend([csrf, session, state_cookie]);
    // The admin's password from the environment, and logout.
    let (status, _, body) = app_login(server, "admin", ADMIN_SECRET).await;
    assert_eq!(status, 200, "{body}");
    seen.push(body["access_token"].as_str().unwrap().to_owned());
    let resp = http()
        .get(server.url("/oauth/logout"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    seen
}

/// `portcullis check-config FILE` with `env`; (success, stdout and stderr together).
fn check_config(file: &Path, env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(bin())
        .arg("check-config")
        .arg(file)
        .env_clear()
        .env("RUST_LOG", "trace")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn config_errors_never_quote_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kubesphere.yaml");
    let good = all_secrets_yaml(Spelling::Documented, "sqlite://x.db", 6379);
    // Each secret key broken in several ways, in each spelling: errors on the secret's own line.
    let lines = [
        ("jwtSecret", "jwt-SEKRIT-0123456789abcdef"),
        ("secret", "client-SEKRIT-1"),
        ("clientSecret", "gh-SEKRIT-2"),
        ("managerPassword", "ldap-SEKRIT-3"),
        ("password", "redis-SEKRIT-4"),
    ];
    for spelling in [Spelling::Documented, Spelling::Lower, Spelling::Upper] {
        for (key, secret) in lines {
            let original = format!("{key}: \"{secret}\"");
            assert!(good.contains(&original), "{original}");
            for broken in [
                format!("{}: [\"{secret}\"]", spell(key, spelling)),
                format!("{}: {{inner: \"{secret}\"}}", spell(key, spelling)),
                format!("{}: \"{secret}", spell(key, spelling)),
                format!("{}: {secret}: oops", spell(key, spelling)),
                format!("{}: \"{secret}\" trailing", spell(key, spelling)),
                format!("{}x: \"{secret}\"", spell(key, spelling)),
                format!("{}: 987654321012345", spell(key, spelling)),
            ] {
                std::fs::write(&file, good.replace(&original, &broken)).unwrap();
                let (_, out) = check_config(&file, &[]);
                assert_clean(
                    &out,
                    &["987654321012345"],
                    &format!("check-config with {broken:?}"),
                );
            }
        }
    }
    // Database and Redis URLs that fail their checks are not quoted either.
    for (original, broken) in [
        (
            "database: \"sqlite://x.db\"",
            "database: \"mysql://u:db-SEKRIT-5@db/x\"",
        ),
        ("redis: \"redis://", "redis: \"http://"),
    ] {
        std::fs::write(&file, good.replace(original, broken)).unwrap();
        let (ok, out) = check_config(&file, &[]);
        assert!(!ok, "{broken}: {out}");
        assert_clean(&out, &[], &format!("check-config with {broken:?}"));
    }
    // Flags and environment overrides with bad values.
    std::fs::write(&file, &good).unwrap();
    let (ok, out) = check_config(
        &file,
        &[("PORTCULLIS_DATABASE", "mysql://u:db-SEKRIT-5@db/x")],
    );
    assert!(!ok);
    assert_clean(&out, &[], "a bad PORTCULLIS_DATABASE");
}

/// `token`'s claims when it verifies with `secret`.
fn verifies_with(token: &str, secret: &str) -> bool {
    let key = jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.validate_aud = false;
    jsonwebtoken::decode::<Value>(token, &key, &validation).is_ok()
}

/// The admin's access token, through the client `app` (its secret comes from the environment).
async fn admin_access(server: &Server) -> String {
    let form = [
        ("grant_type", "password"),
        ("username", "admin"),
        ("password", ADMIN_SECRET),
        ("client_id", "app"),
        ("client_secret", "env-client-SEKRIT-1"),
    ];
    let (status, _, body) = token(server, &form).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_from_files_and_the_environment() {
    use std::os::unix::fs::symlink;
    // A mounted Kubernetes Secret: `jwtSecret -> ..data/jwtSecret`, `..data -> ..v1`.
    let mount = tempfile::tempdir().unwrap();
    crate::reload::kubelet_update(
        mount.path(),
        "v1",
        "jwtSecret",
        "file-jwt-SEKRIT-0123456789\n",
    );
    symlink("..data/jwtSecret", mount.path().join("jwtSecret")).unwrap();
    let jwt_file = mount.path().join("jwtSecret");
    let yaml = format!(
        "{}    clients:\n    - name: app\n      secret: \"${{env:PORTCULLIS_IT_APP_SECRET}}\"\n      redirectURIs: [\"http://127.0.0.1:5555/cb\"]\n",
        config(true).replace(
            &format!("jwtSecret: \"{SECRET}\""),
            &format!("jwtSecret: \"${{file:{}}}\"", jwt_file.display())
        )
    );
    let env = [
        ("PORTCULLIS_IT_APP_SECRET", "env-client-SEKRIT-1"),
        ("PORTCULLIS_ADMIN_PASSWORD", ADMIN_SECRET),
    ];
    let mut opts = ServerOptions::new(bin(), Some(yaml.clone()));
    opts.env
        .extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let server = Server::start(opts).expect("server starts");

    // The file's content, without its trailing newline, signs the tokens.
    let access = admin_access(&server).await;
    assert!(verifies_with(&access, "file-jwt-SEKRIT-0123456789"));
    assert!(!verifies_with(&access, "file-jwt-SEKRIT-0123456789\n"));
    // The variable's value is the client secret; the reference itself is not.
    let basic = |secret: &'static str| {
        http()
            .post(server.url("/oauth/token"))
            .basic_auth("app", Some(secret))
            .form(&[
                ("grant_type", "password"),
                ("username", "admin"),
                ("password", ADMIN_SECRET),
            ])
            .send()
    };
    assert_eq!(basic("env-client-SEKRIT-1").await.unwrap().status(), 200);
    assert_eq!(
        basic("${env:PORTCULLIS_IT_APP_SECRET}")
            .await
            .unwrap()
            .status(),
        401
    );

    // The kubelet rotates the Secret: the live reload signs with the new value.
    crate::reload::kubelet_update(
        mount.path(),
        "v2",
        "jwtSecret",
        "rotated-jwt-SEKRIT-abcdef\n",
    );
    eventually(
        Duration::from_secs(20),
        "the rotated secret signs",
        || async {
            verifies_with(&admin_access(&server).await, "rotated-jwt-SEKRIT-abcdef").then_some(())
        },
    )
    .await
    .unwrap();
    // An empty rotation is refused by the reload; the running secret stays.
    crate::reload::kubelet_update(mount.path(), "v3", "jwtSecret", "\n");
    eventually(
        Duration::from_secs(20),
        "the bad rotation is refused",
        || async { server.logs().contains("is empty").then_some(()) },
    )
    .await
    .unwrap();
    assert!(verifies_with(
        &admin_access(&server).await,
        "rotated-jwt-SEKRIT-abcdef"
    ));
    let logs = server.logs();
    for secret in [
        "file-jwt-SEKRIT",
        "rotated-jwt-SEKRIT",
        "env-client-SEKRIT",
        ADMIN_SECRET,
    ] {
        assert!(!logs.contains(secret), "{secret} leaked into the log");
    }

    // check-config: precise errors naming the key and the file or variable.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kubesphere.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let (ok, out) = check_config(&file, &env);
    assert!(!ok, "the rotated file is empty: {out}");
    assert!(
        out.contains("authentication.jwtSecret")
            && out.contains("is empty")
            && out.contains(&jwt_file.display().to_string()),
        "{out}"
    );
    crate::reload::kubelet_update(
        mount.path(),
        "v4",
        "jwtSecret",
        "again-jwt-SEKRIT-0123456789",
    );
    assert!(check_config(&file, &env).0);
    let (ok, out) = check_config(&file, &env[1..]);
    assert!(!ok);
    assert!(
        out.contains("authentication.oauthOptions.clients[0].secret")
            && out.contains("environment variable PORTCULLIS_IT_APP_SECRET is not set"),
        "{out}"
    );
    std::fs::remove_file(&jwt_file).unwrap();
    let (ok, out) = check_config(&file, &env);
    assert!(!ok);
    assert!(
        out.contains("authentication.jwtSecret: cannot read secret file"),
        "{out}"
    );
    assert!(!out.contains("SEKRIT"), "{out}");
}

//! End-to-end tests of the login and account pages in a real headless browser: the real
//! server, three fake GitHub servers (an `auto` provider, a `manual` one, a broken one) and
//! `tests/e2e/pages.mjs`, which drives Debian's chromium through playwright-core. Screenshots
//! go to the server's temporary directory, or to `PORTCULLIS_E2E_SCREENSHOTS` when set.
//!
//! Needs node, `tests/e2e/node_modules` (`tests/e2e/ci-install.sh`) and `/usr/bin/chromium`.
//! Without them the test fails under `CI=true` and is skipped with a message otherwise.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use portcullis_test_upstreams::{FakeGitHub, Mode};

use crate::common::*;

const ALICE_PASSWORD: &str = "alice-Passw0rd";
const REDIRECT: &str = "http://127.0.0.1:5555/cb";

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e")
}

/// Whether node, playwright-core and chromium are there; under CI a missing one is a failure.
fn tools_present() -> bool {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let missing: Vec<&str> = [
        (
            "node",
            std::process::Command::new("node")
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success()),
        ),
        (
            "tests/e2e/node_modules/playwright-core (run tests/e2e/ci-install.sh)",
            e2e_dir().join("node_modules/playwright-core").is_dir(),
        ),
        ("chromium", Path::new(&chromium).exists()),
    ]
    .into_iter()
    .filter(|(_, ok)| !ok)
    .map(|(what, _)| what)
    .collect();
    if missing.is_empty() {
        return true;
    }
    let message = format!("browser end-to-end tests need: {}", missing.join(", "));
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
    eprintln!("SKIPPED: {message}");
    false
}

fn provider(gh: &FakeGitHub, name: &str, display: &str, mapping: &str, extra: &str) -> String {
    format!(
        r#"    - name: {name}
      type: GitHubIdentityProvider
      displayName: "{display}"
      mappingMethod: {mapping}
{extra}      provider:
        clientID: "{}"
        clientSecret: "{}"
        scopes: [user:email]
        endpoint:
          authURL: "{}"
          tokenURL: "{}"
          userInfoURL: "{}"
"#,
        gh.client_id(),
        gh.client_secret(),
        gh.auth_url(),
        gh.token_url(),
        gh.user_info_url()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn login_pages_in_a_real_browser() {
    if !tools_present() {
        return;
    }
    let github = FakeGitHub::start().await;
    github.add_user(
        7,
        "octocat",
        Some("octo@github.example"),
        vec![("octo@github.example", true, true)],
    );
    github.login_as(7);
    let corp = FakeGitHub::start().await;
    corp.add_user(
        55,
        "MonaLisa",
        Some("mona@corp.example"),
        vec![("mona@corp.example", true, true)],
    );
    corp.login_as(55);
    let broken = FakeGitHub::start().await;
    broken.add_user(1, "someone", None, vec![]);
    broken.login_as(1);
    broken.set_token_mode(Mode::Error500);

    let providers = [
        provider(&github, "github", "GitHub", "auto", ""),
        provider(&corp, "corp", "Corp SSO", "manual", ""),
        provider(&github, "secret", "Hidden", "auto", "      hidden: true\n"),
        provider(&broken, "broken", "Broken IdP", "auto", ""),
    ]
    .concat();
    let yaml = format!(
        r#"
authentication:
  jwtSecret: "{SECRET}"
  multipleLogin: true
  authenticateRateLimiterMaxTries: 5
  oauthOptions:
    accessTokenMaxAge: 1h
    accessTokenInactivityTimeout: 30m
    clients:
    - name: consent
      secret: consent-secret
      redirectURIs: ["{REDIRECT}"]
      grantMethod: prompt
    identityProviders:
{providers}
portcullis:
  publicURL: http://127.0.0.1:0
"#
    );
    let b = backend(false).await;
    let server = start(Some(yaml), &b);
    for (fake, name) in [(&github, "github"), (&corp, "corp"), (&broken, "broken")] {
        fake.set_callback_url(Some(&server.url(&format!("/oauth/callback/{name}"))));
    }
    add_user(
        &server,
        &[
            "alice",
            "--password",
            ALICE_PASSWORD,
            "--email",
            "alice@example.com",
        ],
    );

    let shots = std::env::var_os("PORTCULLIS_E2E_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| server.dir.path().join("screenshots"));
    let mut node = tokio::process::Command::new("node");
    node.arg("pages.mjs")
        .current_dir(e2e_dir())
        .env("PORTCULLIS_URL", &server.base)
        .env("E2E_SHOTS", &shots)
        .env("E2E_REDIRECT", REDIRECT)
        .env("ALICE_PASSWORD", ALICE_PASSWORD)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let run = tokio::time::timeout(Duration::from_secs(240), node.output())
        .await
        .expect("the browser tests finish within 4 minutes")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "browser tests failed:\n{stdout}\n{stderr}\nserver log:\n{}",
        server.logs()
    );
    let cases: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let passed = cases.iter().filter(|c| c["ok"] == true).count();
    assert_eq!(passed, 8, "every case ran and passed:\n{stdout}");

    // The error page's request id is the one in the server's log line about the failure.
    let id = cases
        .iter()
        .find_map(|c| c["request_id"].as_str())
        .expect("the error case printed its request id")
        .to_owned();
    let logs = server.logs();
    assert!(
        logs.lines()
            .any(|l| l.contains(&id) && l.contains("browser login failed")),
        "no log line with request id {id}:\n{logs}"
    );
    for name in [
        "sign-in-en",
        "sign-in-zh-CN",
        "sign-in-phone",
        "sign-in-error",
        "account",
        "provider-login",
        "confirm",
        "sessions",
        "consent",
        "error",
    ] {
        let file = shots.join(format!("{name}.png"));
        let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        assert!(size > 5_000, "screenshot {} was written", file.display());
    }
}

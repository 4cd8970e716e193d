//! A misconfigured identity provider stops `check-config` and `serve` with its key path; unknown
//! option keys are only warnings.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use portcullis_test_upstreams::FakeGitHub;

use super::*;

fn run(args: &[&str], dir: &std::path::Path) -> (bool, String) {
    let mut child = Command::new(bin())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("PORTCULLIS_DATA_DIR", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("portcullis {args:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn misconfigured_providers_stop_check_config_and_serve() {
    let gh = FakeGitHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kubesphere.yaml");
    let path = file.to_str().unwrap();

    let good = github(&gh, "github", "auto", None, "");
    let no_client_id = good.replace(&format!("        clientID: \"{}\"\n", gh.client_id()), "");
    let bad_url = good
        .replace("name: github", "name: broken")
        .replace(&gh.token_url(), "not a url");
    std::fs::write(&file, yaml(&[no_client_id.clone(), bad_url])).unwrap();
    let (ok, text) = run(&["check-config", path], dir.path());
    assert!(!ok, "{text}");
    assert!(
        text.contains("authentication.oauthOptions.identityProviders[0].provider: identity provider \"github\" (GitHubIdentityProvider): missing required option `clientID`"),
        "{text}"
    );
    assert!(
        text.contains("identityProviders[1].provider: identity provider \"broken\" (GitHubIdentityProvider): option `endpoint.tokenURL` is not a valid URL"),
        "{text}"
    );
    let (ok, serve_text) = run(
        &["serve", "--config", path, "--listen", "127.0.0.1:0"],
        dir.path(),
    );
    assert!(!ok, "{serve_text}");
    assert!(
        serve_text.contains("identityProviders[0].provider") && serve_text.contains("`clientID`"),
        "{serve_text}"
    );
    assert!(!serve_text.contains("portcullis is serving"));

    // An unknown type is a configuration error naming the key.
    let unknown = good.replace("GitHubIdentityProvider", "GithubIdentityProvider");
    std::fs::write(&file, yaml(&[unknown])).unwrap();
    let (ok, text) = run(&["check-config", path], dir.path());
    assert!(!ok);
    assert!(text.contains("identityProviders[0].type"), "{text}");
    assert!(
        text.contains("did you mean `GitHubIdentityProvider`"),
        "{text}"
    );

    // Unknown option keys are warnings; the secret is never printed.
    let extra = good.replace("        scopes:", "        colour: blue\n        scopes:");
    std::fs::write(&file, yaml(&[extra])).unwrap();
    let (ok, text) = run(&["check-config", path], dir.path());
    assert!(ok, "{text}");
    assert!(
        text.contains("warning:") && text.contains("unknown option `colour` is ignored"),
        "{text}"
    );
    assert!(!text.contains(&gh.client_secret()), "{text}");
}

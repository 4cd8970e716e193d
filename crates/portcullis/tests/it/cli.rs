//! The CLI: user management, check-config and token inspect, with clear errors.

use serde_json::Value;

use crate::common::*;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn user_commands_and_errors() {
    let b = backend(false).await;
    let server = start(Some(config(true)), &b);
    add_user(
        &server,
        &[
            "ivy",
            "--password",
            "ivy-Passw0rd",
            "--email",
            "ivy@example.com",
            "--groups",
            "a,b",
            "--display-name",
            "Ivy",
        ],
    );

    // Password from standard input (scriptable).
    let out = server
        .cli_with_stdin(
            &["user", "add", "jack", "--email", "jack@example.com"],
            Some("jack-Passw0rd\n"),
        )
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        password_login(&server, "jack", "jack-Passw0rd").await.0,
        200
    );

    // Clear errors, non-zero exit, nothing written.
    for (args, want) in [
        (
            vec!["user", "add", "ivy", "--password", "another-Passw0rd"],
            "is taken",
        ),
        (
            vec![
                "user",
                "add",
                "kim",
                "--password",
                "another-Passw0rd",
                "--email",
                "IVY@example.com",
            ],
            "already used",
        ),
        (
            vec!["user", "add", "Bad Name", "--password", "another-Passw0rd"],
            "may only contain",
        ),
        (
            vec!["user", "add", "kim", "--password", "short"],
            "at least 8",
        ),
        (
            vec![
                "user",
                "add",
                "kim",
                "--password",
                "another-Passw0rd",
                "--email",
                "not-an-email",
            ],
            "not a valid email",
        ),
        (vec!["user", "disable", "nobody"], "does not exist"),
        (vec!["user", "show", "nobody"], "does not exist"),
        (vec!["user", "list", "-o", "yaml"], "unknown output format"),
    ] {
        let out = server.cli(&args).unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
    }

    let out = server.cli(&["user", "list", "-o", "json"]).unwrap();
    let users: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "ivy", "jack"]);
    assert!(
        users.to_string().find("argon2").is_none(),
        "hashes are never printed"
    );

    let out = server.cli(&["user", "show", "ivy", "-o", "json"]).unwrap();
    let ivy: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(ivy["email"], "ivy@example.com");
    assert_eq!(ivy["groups"], serde_json::json!(["a", "b"]));
    assert_eq!(ivy["displayName"], "Ivy");
    assert_eq!(ivy["state"], "Active");

    // token inspect: valid, then revoked after logout; garbage refused.
    let (_, _, body) = password_login(&server, "ivy", "ivy-Passw0rd").await;
    let access = body["access_token"].as_str().unwrap().to_string();
    let out = server.cli(&["token", "inspect", &access]).unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["claims"]["username"], "ivy");
    assert_eq!(v["status"], "valid");
    http()
        .post(server.url("/oauth/logout"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    let out = server.cli(&["token", "inspect", &access]).unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("revoked"), "{}", stderr(&out));
    let out = server.cli(&["token", "inspect", "garbage"]).unwrap();
    assert!(!out.status.success());

    // --help works for every command.
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["user", "add", "--help"],
        vec!["token", "inspect", "--help"],
        vec!["check-config", "--help"],
    ] {
        assert!(server.cli(&args).unwrap().status.success(), "{args:?}");
    }
}

#[test]
fn check_config_reports_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, config(true)).unwrap();
    let out = std::process::Command::new(bin())
        .args(["check-config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "authentication:\n  jwtSecret: s\n  oauthOptions:\n    identityProviders:\n    - name: github\n      type: GithubProvider\n      provider: {}\n",
    )
    .unwrap();
    let out = std::process::Command::new(bin())
        .args(["check-config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("bad.yaml:6"), "{err}");
    assert!(
        err.contains("authentication.oauthOptions.identityProviders[0].type"),
        "{err}"
    );
    assert!(err.contains("GithubProvider"), "{err}");

    std::fs::write(
        &bad,
        "authentication:\n  oauthOptions:\n    accessTokenMaxAge: 1h\n",
    )
    .unwrap();
    let out = std::process::Command::new(bin())
        .args(["check-config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("JWT secret MUST not be empty"),
        "{}",
        stderr(&out)
    );

    let out = std::process::Command::new(bin())
        .args(["check-config", "/nonexistent/kubesphere.yaml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("/nonexistent/kubesphere.yaml"),
        "{}",
        stderr(&out)
    );
}

/// The seed document's example `authentication` block passes `check-config` as it is.
#[test]
fn seed_document_example_passes_check_config() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kubesphere.yaml");
    std::fs::write(
        &file,
        "authentication:\n  authenticateRateLimiterMaxTries: 10\n  authenticateRateLimiterDuration: 10m0s\n  jwtSecret: '******'\n  oauthOptions:\n    accessTokenMaxAge: 1h\n    accessTokenInactivityTimeout: 30m\n    identityProviders:\n    - name: github\n      type: GitHubIdentityProvider\n      mappingMethod: auto\n      provider:\n        clientID: '******'\n        clientSecret: '******'\n        redirectURL: 'https://ks-console/oauth/redirect/github'\n",
    )
    .unwrap();
    let out = std::process::Command::new(bin())
        .arg("check-config")
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("configuration is valid"));
}

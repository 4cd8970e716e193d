//! Live reload on one server: the Kubernetes ConfigMap layout (the file is a symlink through
//! `..data`, which the kubelet swaps atomically), SIGHUP, a start-only setting that changes
//! (warned about, running value kept), and no secret or token in the whole log afterwards.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use portcullis_test_support::{Server, eventually};

use crate::common::*;

const TWO_HOURS_NS: f64 = 7_200_000_000_000.0;

/// What the kubelet does on a ConfigMap update: a new timestamped directory, a temporary
/// `..data_tmp` symlink to it, renamed over `..data`.
fn configmap_update(dir: &Path, version: &str, text: &str) {
    kubelet_update(dir, version, "kubesphere.yaml", text);
}

/// The kubelet's update of a mounted ConfigMap or Secret holding the file `name`.
pub fn kubelet_update(dir: &Path, version: &str, name: &str, text: &str) {
    let data = dir.join(format!("..{version}"));
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join(name), text).unwrap();
    let tmp = dir.join("..data_tmp");
    symlink(format!("..{version}"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
}

async fn max_age(server: &Server) -> Option<f64> {
    let cfg: serde_json::Value = http()
        .get(server.url("/kapis/config.kubesphere.io/v1alpha2/configs/oauth"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    cfg["accessTokenMaxAge"].as_f64()
}

#[tokio::test(flavor = "multi_thread")]
async fn configmap_swap_sighup_and_start_only_settings() {
    let b = backend(false).await;
    let server = start(Some(config(true)), &b);
    let dir = server.dir.path().to_path_buf();
    add_user(&server, &["rita", "--password", "rita-Passw0rd"]);
    let (status, _, body) = password_login(&server, "rita", "rita-Passw0rd").await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap().to_string();

    // Turn the file into the ConfigMap layout (same content: nothing to reload).
    configmap_update(&dir, "2026_v1", &config(true));
    let link = dir.join("kubesphere.yaml.link");
    symlink("..data/kubesphere.yaml", &link).unwrap();
    std::fs::rename(&link, &server.config).unwrap();

    // The kubelet swaps in a new version: picked up.
    let v2 = config(true).replace("accessTokenMaxAge: 1h", "accessTokenMaxAge: 2h");
    configmap_update(&dir, "2026_v2", &v2);
    eventually(
        Duration::from_secs(10),
        "the swapped ConfigMap applied",
        || async { (max_age(&server).await == Some(TWO_HOURS_NS)).then_some(()) },
    )
    .await
    .unwrap();
    assert_eq!(
        metric(
            &server,
            "portcullis_config_reload_total{result=\"success\"}"
        )
        .await,
        Some(1.0),
        "one reload for the whole swap (debounced, unchanged content ignored)"
    );

    // A start-only setting changes: warned about, the running database stays.
    let elsewhere = dir.join("elsewhere.db");
    let v3 = format!(
        "{v2}portcullis:\n  database: sqlite://{}\n",
        elsewhere.display()
    );
    configmap_update(&dir, "2026_v3", &v3);
    eventually(
        Duration::from_secs(10),
        "the start-only warning",
        || async {
            server
                .logs()
                .lines()
                .any(|l| l.contains("read only at start") && l.contains("portcullis.database"))
                .then_some(())
        },
    )
    .await
    .unwrap();
    let (status, _, body) = password_login(&server, "rita", "rita-Passw0rd").await;
    assert_eq!(status, 200, "still the same database: {body}");
    assert!(!elsewhere.exists());

    // SIGHUP reloads even when the file did not change.
    server.signal("HUP").unwrap();
    eventually(Duration::from_secs(10), "SIGHUP reload", || async {
        (metric(
            &server,
            "portcullis_config_reload_total{result=\"success\"}",
        )
        .await
            == Some(3.0))
        .then_some(())
    })
    .await
    .unwrap();
    assert!(
        is_authenticated(&server, &token).await,
        "tokens survive reloads"
    );

    let logs = server.logs();
    assert!(logs.contains("\"trigger\":\"SIGHUP\""), "{logs}");
    let refresh = body["refresh_token"].as_str().unwrap();
    for secret in [SECRET, "rita-Passw0rd", ADMIN_PASSWORD, &token, refresh] {
        assert!(!logs.contains(secret), "a secret or token is in the log");
    }
}

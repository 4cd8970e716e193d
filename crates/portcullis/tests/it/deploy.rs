//! deploy/: the offline checks (hadolint on the Dockerfile, the Helm chart linted and rendered
//! by Helm's own engine, every manifest validated against the Kubernetes schemas, the objects'
//! contract) pass; and the real binary accepts each rendered kubesphere.yaml with `check-config`
//! and serves with exactly the container's environment, answering the probes.
//!
//! The tools come from `deploy/tools/install.sh` (a venv under deploy/tools/.venv). Without them
//! the test fails under CI=true and is skipped, loudly, elsewhere.

use std::path::PathBuf;
use std::process::Command;

use portcullis_test_support::{Backend, PgDatabase, Server, ServerOptions};
use serde_json::Value;

use crate::common::*;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tools_python() -> Option<PathBuf> {
    let python = repo_root().join("deploy/tools/.venv/bin/python");
    if python.exists() {
        return Some(python);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("deploy/tools/.venv is missing: run deploy/tools/install.sh (CI must install it)");
    }
    eprintln!("SKIPPED: deploy checks need deploy/tools/install.sh to have run");
    None
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_files_pass_offline_checks_and_run() {
    let Some(python) = tools_python() else {
        return;
    };
    let out_dir = tempfile::tempdir().unwrap();
    let out = Command::new(&python)
        .arg(repo_root().join("deploy/tools/check.py"))
        .arg("--out")
        .arg(out_dir.path())
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "deploy checks failed:\n{report}");
    assert!(report.contains("deploy checks: all passed"), "{report}");
    println!("{report}");

    let mut scenarios: Vec<String> = std::fs::read_dir(out_dir.path())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".run.json").map(str::to_owned)
        })
        .collect();
    scenarios.sort();
    assert_eq!(scenarios, ["helm-postgres", "helm-sqlite", "manifests"]);

    for scenario in &scenarios {
        let config_file = out_dir.path().join(format!("{scenario}.kubesphere.yaml"));
        let contract: Value = serde_json::from_str(
            &std::fs::read_to_string(out_dir.path().join(format!("{scenario}.run.json"))).unwrap(),
        )
        .unwrap();
        let env: Vec<(String, String)> = contract["env"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        let secret = env
            .iter()
            .find(|(k, _)| k == "PORTCULLIS_JWT_SECRET")
            .map(|(_, v)| v.clone())
            .expect("the jwtSecret comes from the Secret");

        // The file alone lacks the secret (it is in the Secret); with it, it is valid.
        let check = |with_secret: bool| {
            let mut cmd = Command::new(bin());
            cmd.arg("check-config").arg(&config_file).env_clear();
            if with_secret {
                cmd.env("PORTCULLIS_JWT_SECRET", &secret);
            }
            cmd.output().unwrap()
        };
        let bare = check(false);
        assert!(
            !bare.status.success(),
            "{scenario}: jwtSecret must come from the Secret"
        );
        assert!(String::from_utf8_lossy(&bare.stderr).contains("jwtSecret"));
        let ok = check(true);
        assert!(
            ok.status.success(),
            "{scenario}: check-config: {}",
            String::from_utf8_lossy(&ok.stderr)
        );

        // Serve as the pod would: the container's environment, with the in-cluster addresses
        // swapped for the local PostgreSQL and Redis (the listen address and data directory
        // come from the test harness).
        let pg = match env.iter().any(|(k, _)| k == "PORTCULLIS_DATABASE") {
            true => Some(
                PgDatabase::create()
                    .await
                    .expect("PostgreSQL at 127.0.0.1:5432"),
            ),
            false => None,
        };
        let yaml = std::fs::read_to_string(&config_file)
            .unwrap()
            .replace("redis.kubesphere-system.svc", "127.0.0.1");
        let mut opts = ServerOptions::new(bin(), Some(yaml));
        opts.backend = pg
            .as_ref()
            .map_or(Backend::Sqlite, |db| Backend::Postgres(db.url.clone()));
        opts.env = env
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "PORTCULLIS_LISTEN" | "PORTCULLIS_DATA_DIR" | "PORTCULLIS_DATABASE"
                )
            })
            .cloned()
            .collect();
        let server = Server::start(opts).expect("serves with the rendered configuration");
        for probe in ["/healthz", "/readyz"] {
            let resp = http().get(server.url(probe)).send().await.unwrap();
            assert_eq!(resp.status(), 200, "{scenario}: {probe}");
        }
        if let Some((_, admin)) = env.iter().find(|(k, _)| k == "PORTCULLIS_ADMIN_PASSWORD") {
            let (status, _, body) = token(
                &server,
                &[
                    ("grant_type", "password"),
                    ("username", "admin"),
                    ("password", admin),
                    ("client_id", "kubesphere"),
                    ("client_secret", "kubesphere"),
                ],
            )
            .await;
            assert_eq!(status, 200, "{scenario}: admin login: {body}");
            assert!(body["access_token"].is_string(), "{body}");
        }
        drop(server);
    }
}

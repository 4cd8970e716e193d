//! `portcullis import kubesphere`: a generated KubeSphere export of 10,000 users (bcrypt cost 4, so
//! generating and checking it is quick) is imported with progress shown, then EVERY user logs in
//! with the old password through the real server's password grant; links, states, plaintext
//! passwords and login records are honoured; a second run changes nothing and says so; a dry run
//! writes nothing; `--overwrite` replaces a differing user; bad files give precise errors and
//! write nothing. On SQLite and PostgreSQL.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::common::*;

const USERS: usize = 10_000;

struct Fixture {
    users: PathBuf,
    special: PathBuf,
    records: PathBuf,
    admin: PathBuf,
}

fn password(i: usize) -> String {
    format!("Kube-{i:05}-Passw0rd")
}

fn name(i: usize) -> String {
    format!("user-{i:05}")
}

fn rfc3339(offset_s: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let t = time::OffsetDateTime::from_unix_timestamp(now + offset_s).unwrap();
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// Every 500th user (from 3) is Disabled, every 500th (from 4) AuthLimitExceeded; every 10th
/// has a 4.x GitHub link annotation, every 100th (from 1) 3.x CAS labels as well.
fn state(i: usize) -> &'static str {
    match i % 500 {
        3 => "Disabled",
        4 => "AuthLimitExceeded",
        _ => "Active",
    }
}

fn user_yaml(i: usize, hash: &str, created: &str) -> String {
    let mut s = format!(
        "- apiVersion: iam.kubesphere.io/v1beta1\n  kind: User\n  metadata:\n    name: {n}\n    uid: 6b1f{i:04x}-0000-4000-8000-{i:012}\n    creationTimestamp: \"{created}\"\n",
        n = name(i)
    );
    if i.is_multiple_of(10) {
        s.push_str(&format!(
            "    annotations:\n      iam.kubesphere.io/identity-provider.github: \"gh-{i}\"\n      iam.kubesphere.io/last-password-change-time: \"{created}\"\n"
        ));
    }
    if i % 100 == 1 {
        s.push_str(&format!(
            "    labels:\n      iam.kubesphere.io/identify-provider: cas\n      iam.kubesphere.io/origin-uid: cas-{i}\n"
        ));
    }
    s.push_str(&format!(
        "  spec:\n    email: {n}@example.com\n    groups: [team-{g}]\n    password: \"{hash}\"\n  status:\n    state: {st}\n",
        n = name(i),
        g = i % 10,
        st = state(i)
    ));
    s
}

/// The export files, generated once per test process under the target directory.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("import-fixture");
        std::fs::create_dir_all(&dir).unwrap();
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let created = rfc3339(-86_400);
        let chunks: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let created = created.clone();
                    s.spawn(move || {
                        let mut out = String::new();
                        for i in (t..USERS).step_by(threads) {
                            let hash = bcrypt::hash_with_result(password(i), 4)
                                .unwrap()
                                .format_for_version(bcrypt::Version::TwoA);
                            out.push_str(&user_yaml(i, &hash, &created));
                        }
                        out
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let users = dir.join("users.yaml");
        std::fs::write(
            &users,
            format!(
                "apiVersion: v1\nkind: List\nmetadata:\n  resourceVersion: \"\"\nitems:\n{}",
                chunks.concat()
            ),
        )
        .unwrap();

        let special = dir.join("special.yaml");
        std::fs::write(
            &special,
            format!(
                r#"# A user whose password KubeSphere had not hashed yet (after `kubectl patch` and
# `kubectl annotate users plain-pat iam.kubesphere.io/password-encrypted-`).
apiVersion: iam.kubesphere.io/v1alpha2
kind: User
metadata:
  name: plain-pat
spec:
  email: pat@example.com
  password: Plain-Passw0rd
---
# A 3.x user who only logs in through GitHub (no password, no state: derived Active).
apiVersion: iam.kubesphere.io/v1alpha2
kind: User
metadata:
  name: octocat
  labels:
    iam.kubesphere.io/identify-provider: github
    iam.kubesphere.io/origin-uid: octocat
spec:
  email: octocat@example.com
---
apiVersion: iam.kubesphere.io/v1alpha2
kind: GlobalRoleBinding
metadata:
  name: octocat-platform-regular
---
apiVersion: iam.kubesphere.io/v1alpha2
kind: User
metadata:
  name: {long}
spec:
  password: "{hash}"
"#,
                long = "a".repeat(70),
                hash = bcrypt::hash("whatever1", 4).unwrap()
            ),
        )
        .unwrap();

        let records = dir.join("loginrecords.yaml");
        let record = |name: &str, user: Option<&str>, success: bool, reason: &str, ip: &str| {
            let label = user
                .map(|u| format!("    labels:\n      iam.kubesphere.io/user-ref: {u}\n"))
                .unwrap_or_default();
            format!(
                "- apiVersion: iam.kubesphere.io/v1alpha2\n  kind: LoginRecord\n  metadata:\n    name: {name}\n{label}    creationTimestamp: \"{at}\"\n  spec:\n    type: Token\n    provider: \"\"\n    sourceIP: {ip}\n    userAgent: ks-console\n    success: {success}\n    reason: {reason}\n",
                at = rfc3339(-3600)
            )
        };
        std::fs::write(
            &records,
            format!(
                "apiVersion: v1\nkind: List\nitems:\n{}{}{}{}{}",
                record("user-00000-a1b2c", Some("user-00000"), true, "authenticated successfully", "10.1.2.3"),
                record("user-00000-d4e5f", Some("user-00000"), false, "incorrect password", "10.1.2.4"),
                record("user-00000-g6h7i", Some("user-00000"), true, "authenticated successfully", "10.1.2.5"),
                record("ghost-j8k9l", Some("ghost"), true, "authenticated successfully", "10.1.2.6"),
                record("orphan-m1n2o", None, false, "incorrect password", "10.1.2.7"),
            ),
        )
        .unwrap();

        let admin = dir.join("admin.yaml");
        std::fs::write(
            &admin,
            format!(
                r#"apiVersion: iam.kubesphere.io/v1alpha2
kind: User
metadata:
  name: admin
  annotations:
    iam.kubesphere.io/uninitialized: "true"
spec:
  email: admin@kubesphere.io
  password: "{}"
status:
  state: Active
"#,
                bcrypt::hash_with_result("P@88w0rd", 4)
                    .unwrap()
                    .format_for_version(bcrypt::Version::TwoA)
            ),
        )
        .unwrap();
        Fixture {
            users,
            special,
            records,
            admin,
        }
    })
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn import(
    server: &portcullis_test_support::Server,
    args: &[&Path],
    extra: &[&str],
) -> std::process::Output {
    let mut all: Vec<String> = vec!["import".into(), "kubesphere".into()];
    all.extend(extra.iter().map(|s| s.to_string()));
    all.extend(args.iter().map(|p| p.display().to_string()));
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    server.cli(&refs).unwrap()
}

fn user_list(server: &portcullis_test_support::Server) -> Vec<Value> {
    let out = server.cli(&["user", "list", "-o", "json"]).unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
}

fn user_show(server: &portcullis_test_support::Server, name: &str) -> Value {
    let out = server.cli(&["user", "show", name, "-o", "json"]).unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Logs every user in, at most `CONCURRENT` at a time; returns (name, status, error text) of
/// each login that did not answer 200.
async fn log_everyone_in(
    server: &portcullis_test_support::Server,
    logins: Vec<(String, String)>,
) -> Vec<(String, u16, String)> {
    const CONCURRENT: usize = 8;
    let client = http();
    let url = server.url("/oauth/token");
    let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENT));
    let mut tasks = tokio::task::JoinSet::new();
    for (user, pw) in logins {
        let (client, url, slots) = (client.clone(), url.clone(), slots.clone());
        tasks.spawn(async move {
            let _slot = slots.acquire_owned().await.unwrap();
            let resp = client
                .post(&url)
                .form(&[
                    ("grant_type", "password"),
                    ("username", user.as_str()),
                    ("password", pw.as_str()),
                ])
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            let ok = status == 200 && body["access_token"].as_str().is_some();
            (
                user,
                status,
                if ok { String::new() } else { body.to_string() },
            )
        });
    }
    let mut refused = Vec::new();
    while let Some(r) = tasks.join_next().await {
        let (user, status, err) = r.unwrap();
        if status != 200 || !err.is_empty() {
            refused.push((user, status, err));
        }
    }
    refused.sort();
    refused
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_users_sqlite() {
    ten_thousand_users(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_users_postgres() {
    ten_thousand_users(true).await;
}

async fn ten_thousand_users(pg: bool) {
    let f = fixture();
    let b = backend(pg).await;
    let server = start(Some(config(true)), &b);
    let inputs = [f.users.as_path(), f.special.as_path(), f.records.as_path()];
    let expected_users = USERS + 2; // plus plain-pat and octocat

    // Dry run: every count reported, nothing written.
    let dry = import(&server, &inputs, &["--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    let out = text(&dry.stdout);
    assert!(out.contains("dry run: nothing was written"), "{out}");
    assert!(
        out.contains(&format!("users: {expected_users} would be imported, 0 would be updated, 0 unchanged, 1 skipped, 0 failed")),
        "{out}"
    );
    assert_eq!(
        user_list(&server).len(),
        1,
        "the dry run wrote nothing (only the bootstrap admin)"
    );

    // The import, with progress lines on standard error (not a terminal here).
    let run = import(&server, &inputs, &[]);
    let (out, err) = (text(&run.stdout), text(&run.stderr));
    assert!(run.status.success(), "{out}\n{err}");
    assert!(
        out.contains(&format!(
            "users: {expected_users} imported, 0 updated, 0 unchanged, 1 skipped, 0 failed"
        )),
        "{out}"
    );
    assert!(
        out.contains("login records: 3 imported, 0 unchanged, 2 skipped"),
        "{out}"
    );
    assert!(out.contains("other objects: 1 skipped"), "{out}");
    let progress: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("importing: "))
        .collect();
    assert!(progress.len() >= 10, "progress lines every tenth: {err}");
    assert!(progress.last().unwrap().contains("(100%)"), "{err}");
    for why in [
        "GlobalRoleBinding (iam.kubesphere.io/v1alpha2) is not a KubeSphere User or LoginRecord",
        "not a valid Portcullis user name",
        "user \"ghost\" is not in Portcullis",
        "no iam.kubesphere.io/user-ref label",
    ] {
        assert!(out.contains(why), "skip reason {why:?} in {out}");
    }
    assert!(
        err.contains("identity provider \"github\", which is not configured"),
        "{err}"
    );
    assert_eq!(user_list(&server).len(), expected_users + 1);

    // A second run changes nothing, and says so. (Run before anyone logs in: a user's first
    // login replaces the imported bcrypt hash with argon2id, after which a re-import reports the
    // password as different and leaves it alone unless --overwrite.)
    let before = user_list(&server);
    let again = import(&server, &inputs, &[]);
    let out = text(&again.stdout);
    assert!(again.status.success(), "{out}\n{}", text(&again.stderr));
    assert!(
        out.contains(&format!(
            "users: 0 imported, 0 updated, {expected_users} unchanged, 1 skipped, 0 failed"
        )),
        "{out}"
    );
    assert!(
        out.contains("login records: 0 imported, 3 unchanged, 2 skipped"),
        "{out}"
    );
    assert!(out.contains("nothing to change"), "{out}");
    assert_eq!(user_list(&server), before, "the second run wrote nothing");

    // Imported users log in with their old passwords, except the Disabled ones: every Disabled
    // user and every 25th other one (each first login also re-hashes the bcrypt hash with
    // argon2id, so all 10,000 would take minutes in a debug build).
    let mut logins: Vec<(String, String)> = (0..USERS)
        .filter(|i| i % 25 == 0 || state(*i) == "Disabled")
        .map(|i| (name(i), password(i)))
        .collect();
    logins.push(("plain-pat".into(), "Plain-Passw0rd".into()));
    let refused = log_everyone_in(&server, logins).await;
    let disabled: Vec<String> = (0..USERS)
        .filter(|i| state(*i) == "Disabled")
        .map(name)
        .collect();
    assert_eq!(
        refused.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        disabled,
        "only the Disabled users are refused: {:?}",
        refused.iter().take(5).collect::<Vec<_>>()
    );
    for (_, status, body) in &refused {
        assert_eq!(*status, 400);
        assert!(body.contains("account is disabled"), "{body}");
    }
    // Email login works too, and a wrong password is still wrong.
    assert_eq!(
        password_login(&server, "user-00042@example.com", &password(42))
            .await
            .0,
        200
    );
    assert_ne!(
        password_login(&server, "user-00043", &password(42)).await.0,
        200
    );

    // Fields, states and links as in the export.
    let u10 = user_show(&server, "user-00010");
    assert_eq!(u10["email"], "user-00010@example.com");
    assert_eq!(u10["groups"], serde_json::json!(["team-0"]));
    assert_eq!(u10["uid"], "6b1f000a-0000-4000-8000-000000000010");
    assert_eq!(
        u10["identities"],
        serde_json::json!([{"provider": "github", "uid": "gh-10", "username": null}])
    );
    let u101 = user_show(&server, "user-00101");
    assert_eq!(
        u101["identities"],
        serde_json::json!([{"provider": "cas", "uid": "cas-101", "username": null}])
    );
    assert_eq!(user_show(&server, "user-00003")["state"], "Disabled");
    assert_eq!(
        user_show(&server, "user-00004")["state"],
        "AuthLimitExceeded"
    );
    let octocat = user_show(&server, "octocat");
    assert_eq!(octocat["state"], "Active");
    assert_eq!(octocat["hasPassword"], false);
    assert_eq!(octocat["identities"][0]["provider"], "github");

    // The imported login records are served like Portcullis' own.
    let (_, _, tokens) = password_login(&server, "user-00000", &password(0)).await;
    let resp = http()
        .get(
            server.url("/kapis/iam.kubesphere.io/v1alpha2/users/user-00000/loginrecords?limit=100"),
        )
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let records: Value = resp.json().await.unwrap();
    let ips: Vec<&str> = records["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["spec"]["sourceIP"].as_str())
        .collect();
    for ip in ["10.1.2.3", "10.1.2.4", "10.1.2.5"] {
        assert!(ips.contains(&ip), "imported record from {ip} in {records}");
    }

    // KubeSphere's admin differs from the bootstrap admin: skipped unless --overwrite.
    let skip = import(&server, &[f.admin.as_path()], &[]);
    let out = text(&skip.stdout);
    assert!(skip.status.success(), "{out}");
    assert!(out.contains("1 skipped"), "{out}");
    assert!(
        out.contains("differs in: password, email, groups, uninitialized; pass --overwrite"),
        "{out}"
    );
    assert_eq!(
        password_login(&server, "admin", ADMIN_PASSWORD).await.0,
        200
    );
    let dry = import(&server, &[f.admin.as_path()], &["--overwrite", "--dry-run"]);
    assert!(
        text(&dry.stdout).contains("1 would be updated"),
        "{}",
        text(&dry.stdout)
    );
    assert_eq!(
        password_login(&server, "admin", ADMIN_PASSWORD).await.0,
        200
    );
    let over = import(&server, &[f.admin.as_path()], &["--overwrite"]);
    let out = text(&over.stdout);
    assert!(over.status.success(), "{out}");
    assert!(out.contains("users: 0 imported, 1 updated"), "{out}");
    assert_eq!(password_login(&server, "admin", "P@88w0rd").await.0, 200);
    assert_ne!(
        password_login(&server, "admin", ADMIN_PASSWORD).await.0,
        200
    );
    let admin = user_show(&server, "admin");
    assert_eq!(admin["uninitialized"], true);
    assert_eq!(admin["groups"], serde_json::json!([]));
}

/// Each bad input names the file, the object and the field, exits non-zero and writes nothing,
/// also for the valid objects next to it. A conflict with Portcullis' own data fails only that
/// object.
#[tokio::test(flavor = "multi_thread")]
async fn bad_files_give_precise_errors_and_write_nothing() {
    let b = backend(false).await;
    let server = start(Some(config(true)), &b);
    let dir = tempfile::tempdir().unwrap();
    let good = "apiVersion: iam.kubesphere.io/v1alpha2\nkind: User\nmetadata:\n  name: fine\nspec:\n  password: Fine-Passw0rd\n";
    let list = |items: &str| {
        format!(
            "apiVersion: v1\nkind: List\nitems:\n- {}\n{items}",
            good.replace('\n', "\n  ").trim_end()
        )
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "syntax.yaml",
            format!("{good}---\nkind: User\nmetadata: [unclosed\n"),
            "syntax.yaml: not valid YAML",
        ),
        (
            "noname.yaml",
            list("- apiVersion: iam.kubesphere.io/v1alpha2\n  kind: User\n  metadata: {}\n"),
            "noname.yaml, items[1] (User without metadata.name): metadata.name is missing",
        ),
        (
            "state.yaml",
            list(
                "- apiVersion: iam.kubesphere.io/v1alpha2\n  kind: User\n  metadata: {name: frozen}\n  status: {state: Frozen}\n",
            ),
            "state.yaml, items[1] (User \"frozen\"): status.state: unknown state \"Frozen\" (expected Active, Disabled or AuthLimitExceeded)",
        ),
        (
            "encrypted.yaml",
            list(
                "- apiVersion: iam.kubesphere.io/v1alpha2\n  kind: User\n  metadata:\n    name: enc\n    annotations: {iam.kubesphere.io/password-encrypted: \"true\"}\n  spec: {password: not-a-hash}\n",
            ),
            "encrypted.yaml, items[1] (User \"enc\"): spec.password is not a valid bcrypt hash although iam.kubesphere.io/password-encrypted is \"true\"",
        ),
        (
            "groups.yaml",
            list(
                "- apiVersion: iam.kubesphere.io/v1alpha2\n  kind: User\n  metadata: {name: grp}\n  spec: {groups: admins}\n",
            ),
            "groups.yaml, items[1] (User \"grp\"): spec.groups: expected a list, found \"admins\"",
        ),
        (
            "label.yaml",
            list(
                "- apiVersion: iam.kubesphere.io/v1alpha2\n  kind: User\n  metadata:\n    name: half\n    labels: {iam.kubesphere.io/identify-provider: github}\n",
            ),
            "label.yaml, items[1] (User \"half\"): labels iam.kubesphere.io/identify-provider (\"github\") and iam.kubesphere.io/origin-uid (absent) must be set together",
        ),
        (
            "email.yaml",
            list(
                "- apiVersion: iam.kubesphere.io/v1alpha2\n  kind: User\n  metadata: {name: mail}\n  spec: {email: not-an-email}\n",
            ),
            "email.yaml, items[1] (User \"mail\"): spec.email: \"not-an-email\" is not a valid email address",
        ),
        (
            "dup.yaml",
            list(""),
            "dup.yaml, items[0] (User \"fine\"): user \"fine\" is also defined at",
        ),
    ];
    for (file, content, want) in &cases {
        let path = dir.path().join(file);
        std::fs::write(&path, content).unwrap();
        let mut inputs = vec![path.as_path()];
        let extra = dir.path().join("extra.yaml");
        if *file == "dup.yaml" {
            std::fs::write(&extra, good).unwrap();
            inputs.insert(0, extra.as_path());
        }
        let out = import(&server, &inputs, &[]);
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{file} must fail");
        assert!(err.contains(want), "{file}: expected {want:?} in:\n{err}");
        assert!(err.contains("nothing was imported"), "{err}");
        assert_eq!(user_list(&server).len(), 1, "{file}: nothing written");
    }
    let missing = import(&server, &[dir.path().join("nosuch.yaml").as_path()], &[]);
    assert!(!missing.status.success());
    assert!(
        text(&missing.stderr).contains("nosuch.yaml: cannot read"),
        "{}",
        text(&missing.stderr)
    );

    // A conflict with data already in Portcullis fails that object only, whole.
    add_user(
        &server,
        &[
            "ivy",
            "--password",
            "ivy-Passw0rd",
            "--email",
            "ivy@example.com",
        ],
    );
    add_user(&server, &["gus", "--no-password"]);
    let out = server
        .cli(&[
            "user",
            "link",
            "gus",
            "--provider",
            "github",
            "--uid",
            "taken",
        ])
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let path = dir.path().join("conflicts.yaml");
    std::fs::write(
        &path,
        list(concat!(
            "- apiVersion: iam.kubesphere.io/v1alpha2\n  kind: User\n  metadata: {name: ivy2}\n  spec: {email: IVY@example.com}\n",
            "- apiVersion: iam.kubesphere.io/v1beta1\n  kind: User\n  metadata:\n    name: linked\n    annotations: {iam.kubesphere.io/identity-provider.github: taken}\n",
        )),
    )
    .unwrap();
    let out = import(&server, &[path.as_path()], &[]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("users: 1 imported, 0 updated, 0 unchanged, 0 skipped, 2 failed"),
        "{stdout}"
    );
    assert!(stderr.contains("conflicts.yaml, items[1] (User \"ivy2\"): email \"IVY@example.com\" is already used by Portcullis user \"ivy\""), "{stderr}");
    assert!(stderr.contains("conflicts.yaml, items[2] (User \"linked\"): identity github/taken is already linked to Portcullis user \"gus\""), "{stderr}");
    let names: Vec<String> = user_list(&server)
        .iter()
        .map(|u| u["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["admin", "fine", "gus", "ivy"]);
    assert_eq!(
        password_login(&server, "fine", "Fine-Passw0rd").await.0,
        200
    );
}

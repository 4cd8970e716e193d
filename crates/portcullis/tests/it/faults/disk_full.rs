//! SQLite on a full disk: the data directory on a 4 MiB tmpfs, filled to the last byte. Logins
//! and user creation then fail cleanly (503 "temporarily unavailable" with the cause in the log,
//! or the CLI's one-line error; never a panic, a 500 or a hang), tokens already issued keep
//! verifying, and once space is freed everything works again with no help, nothing acknowledged
//! is lost and `PRAGMA integrity_check` answers `ok`. Needs root for the mount; skips loudly
//! without it.

use std::io::Write;
use std::time::Duration;

use portcullis_test_support::{Server, eventually};

use super::{TmpfsMount, sqlite_integrity};
use crate::common::*;

/// Writes zeros to `path` until the filesystem is full.
fn fill(path: &std::path::Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 16 * 1024];
    while f.write_all(&chunk).is_ok() {}
    // The last bytes, in smaller writes.
    while f.write_all(&[0u8; 512]).is_ok() {}
    let _ = f.sync_all();
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_disk_full_fails_cleanly_and_recovers() {
    let Some(mount) = TmpfsMount::new("4m") else {
        return;
    };
    let dir = tempfile::tempdir_in(mount.path()).unwrap();
    let db = dir.path().join("portcullis.db");
    let opts = options(Some(config(true)), &backend(false).await);
    let mut server = Server::start_in(opts, dir).unwrap();
    add_user(&server, &["dora", "--password", "dora-Passw0rd"]);
    let (st, _, body) = password_login(&server, "dora", "dora-Passw0rd").await;
    assert_eq!(st, 200, "{body}");
    let before = body["access_token"].as_str().unwrap().to_owned();

    let filler = mount.path().join("filler");
    fill(&filler);

    // Logins write a session and a login record: with the WAL unable to grow they fail. Every
    // answer is 200 (a write that still fitted) or 503, and the store's error is logged.
    let mut statuses = Vec::new();
    let mut accepted = Vec::new();
    for _ in 0..60 {
        let (st, _, body) = password_login(&server, "dora", "dora-Passw0rd").await;
        statuses.push(st);
        if st == 200 {
            accepted.push(body["access_token"].as_str().unwrap().to_owned());
        } else {
            assert_eq!(body["error"], "temporarily_unavailable", "{body}");
        }
    }
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&503),
        "a full disk must show: {statuses:?}"
    );
    let logs = server.logs();
    assert!(
        logs.contains("database or disk is full"),
        "the cause is in the log: {logs}"
    );
    // New users cannot be written either; the CLI says why in one line.
    let out = server
        .cli(&["user", "add", "eve", "--password", "eve-Passw0rd"])
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        assert!(err.contains("full"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let eve_created = out.status.success();
    assert!(is_authenticated(&server, &before).await);
    assert!(server.is_running());

    // Space comes back: everything works again without a restart.
    std::fs::remove_file(&filler).unwrap();
    eventually(Duration::from_secs(30), "logins again", || async {
        (password_login(&server, "dora", "dora-Passw0rd").await.0 == 200).then_some(())
    })
    .await
    .unwrap();
    add_user(&server, &["fay", "--password", "fay-Passw0rd"]);
    assert_eq!(password_login(&server, "fay", "fay-Passw0rd").await.0, 200);
    if eve_created {
        assert_eq!(password_login(&server, "eve", "eve-Passw0rd").await.0, 200);
    }
    for token in accepted.iter().chain([&before]) {
        assert!(is_authenticated(&server, token).await);
    }
    let logs = server.logs();
    assert!(!logs.contains("panicked"), "{logs}");
    assert!(!logs.contains("\"status\":500"), "{logs}");

    let dir = server.stop();
    assert_eq!(sqlite_integrity(&db).await, "ok");
    drop(dir);
    drop(mount);
}

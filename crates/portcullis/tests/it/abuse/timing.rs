//! The time of a login answer must not tell an unknown user from a wrong password: both verify
//! a password hash of the same kind (a dummy argon2id hash for unknown names; an imported bcrypt
//! hash is replaced by argon2id at the first successful login). Measured as the ratio of the
//! medians of interleaved attempts in one run, never as an absolute time.

use std::time::{Duration, Instant};

use portcullis_test_support::Server;

use crate::common::*;

/// Attempts of each kind; the median of this many is stable on a busy machine.
const ROUNDS: usize = 41;

/// Limits high enough that no attempt meets the lockout.
fn lenient_config() -> String {
    format!(
        "{}portcullis:\n  ipMaxFailures: 100000\n",
        config(true).replace(
            "authenticateRateLimiterMaxTries: 3",
            "authenticateRateLimiterMaxTries: 100"
        )
    )
}

async fn timed_login(server: &Server, user: &str, password: &str) -> Duration {
    let start = Instant::now();
    let (status, _, body) = password_login(server, user, password).await;
    let took = start.elapsed();
    assert_eq!(status, 400, "{user}: {body}");
    assert_eq!(body["error_description"], "incorrect username or password");
    took
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The ratio of the median times of a wrong password for `user` and of unknown names.
async fn unknown_over_wrong(server: &Server, user: &str) -> f64 {
    // Warm up: the dummy hash is made on first use, connections are opened.
    for i in 0..3 {
        timed_login(server, &format!("warm-{i}"), "wrong-password").await;
        timed_login(server, user, "wrong-password").await;
    }
    let (mut unknown, mut wrong) = (Vec::new(), Vec::new());
    for i in 0..ROUNDS {
        // Alternate which goes first, so a drift in load hits both alike.
        let name = unique_name("nobody");
        if i % 2 == 0 {
            unknown.push(timed_login(server, &name, "wrong-password").await);
            wrong.push(timed_login(server, user, "wrong-password").await);
        } else {
            wrong.push(timed_login(server, user, "wrong-password").await);
            unknown.push(timed_login(server, &name, "wrong-password").await);
        }
    }
    let (u, w) = (median(unknown), median(wrong));
    let ratio = u.as_secs_f64() / w.as_secs_f64();
    eprintln!("{user}: unknown {u:?}, wrong password {w:?}, ratio {ratio:.2}");
    ratio
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_user_and_wrong_password_take_the_same_time() {
    let b = backend(false).await;
    let server = start(Some(lenient_config()), &b);
    add_user(&server, &["timed", "--password", "timed-Passw0rd"]);
    let ratio = unknown_over_wrong(&server, "timed").await;
    assert!((0.8..=1.25).contains(&ratio), "ratio {ratio:.2}");
}

/// An imported KubeSphere user keeps a bcrypt hash (cost 10) until the first successful login,
/// which replaces it by argon2id: from then on a wrong password costs what an unknown name does.
#[tokio::test(flavor = "multi_thread")]
async fn an_imported_bcrypt_user_is_upgraded_at_the_first_login() {
    let b = backend(false).await;
    let server = start(Some(lenient_config()), &b);
    let hash = bcrypt::hash_with_result("Legacy-Passw0rd", 10)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoA);
    let export = server.dir.path().join("users.yaml");
    std::fs::write(
        &export,
        format!(
            "apiVersion: iam.kubesphere.io/v1alpha2\nkind: User\nmetadata:\n  name: legacy\nspec:\n  email: legacy@example.com\n  password: \"{hash}\"\nstatus:\n  state: Active\n"
        ),
    )
    .unwrap();
    let out = server
        .cli(&["import", "kubesphere", &export.display().to_string()])
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (status, _, body) = password_login(&server, "legacy", "Legacy-Passw0rd").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        server
            .logs()
            .contains("password hash upgraded from bcrypt to argon2id")
    );
    let ratio = unknown_over_wrong(&server, "legacy").await;
    assert!((0.8..=1.25).contains(&ratio), "ratio {ratio:.2}");
    // The same password still works, now against the new hash; no second upgrade.
    assert_eq!(
        password_login(&server, "legacy", "Legacy-Passw0rd").await.0,
        200
    );
    assert_eq!(server.logs().matches("password hash upgraded").count(), 1);
}

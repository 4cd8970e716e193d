//! `portcullis serve` with no configuration at all: embedded SQLite in the data directory, a
//! generated jwtSecret kept across restarts, and an `admin` user with a one-time password.

use portcullis_test_support::{Server, ServerOptions};

use crate::common::*;

#[tokio::test(flavor = "multi_thread")]
async fn starts_on_defaults_and_keeps_its_secret() {
    let server = Server::start(ServerOptions::new(bin(), None)).unwrap();
    let printed = portcullis_test_support::eventually(
        std::time::Duration::from_secs(10),
        "admin password printed",
        || async {
            let out = server.stdout.lock().unwrap().clone();
            out.lines().find_map(|l| {
                l.strip_prefix("Created user \"admin\" with the one-time password: ")
                    .map(str::to_owned)
            })
        },
    )
    .await
    .unwrap();
    let secret_file = server.dir.path().join("jwt-secret");
    let secret = std::fs::read_to_string(&secret_file).unwrap();
    assert!(secret.trim().len() >= 40);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&secret_file)
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }
    assert!(server.dir.path().join("portcullis.db").exists());
    assert!(
        !server.logs().contains(&printed),
        "the password is not logged"
    );

    let (status, _, body) = password_login(&server, "admin", &printed).await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap().to_string();
    // The generated password is one-time: the token says the account must set a new one.
    let st = review(&server, &access).await;
    assert_eq!(st["user"]["extra"]["uninitialized"][0], "true");
    assert_eq!(st["user"]["groups"][0], "platform-admins");

    // Restart on the same data directory: same secret, token still valid, no second admin.
    let dir = server.stop();
    let server = Server::start_in(ServerOptions::new(bin(), None), dir).unwrap();
    assert!(is_authenticated(&server, &access).await);
    assert!(!server.stdout.lock().unwrap().contains("one-time password"));
}

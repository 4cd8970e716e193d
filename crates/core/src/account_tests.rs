//! Unit tests of the account operations, on a real SQLite store with an injected clock.

use std::sync::Arc;

use portcullis_config::LoadOptions;

use super::*;
use crate::{AuthError, IssuedTokens, ManualClock, NewUser, PasswordLogin, TokenError, TokenType};

const T0: i64 = 1_800_000_000_000;
const PASSWORD: &str = "Passw0rd-long";
const YAML: &str = "authentication:\n  jwtSecret: s3cret\n  authenticateRateLimiterMaxTries: 2\n  authenticateRateLimiterDuration: 1m\n  multipleLogin: true\n";

struct Fixture {
    engine: Arc<Engine>,
    clock: ManualClock,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = portcullis_store::open(&format!("sqlite://{}/p.db", dir.path().display()))
        .await
        .unwrap();
    let config = portcullis_config::load_str(YAML, None, &LoadOptions::default()).unwrap();
    let clock = ManualClock::new(T0);
    let engine = Engine::new(&config, store, Arc::new(clock.clone()))
        .await
        .unwrap();
    Fixture {
        engine,
        clock,
        _dir: dir,
    }
}

fn ctx() -> RequestContext {
    RequestContext {
        ip: "192.0.2.7".into(),
        user_agent: "unit".into(),
    }
}

impl Fixture {
    async fn add(&self, name: &str, password: Option<&str>) {
        self.engine
            .add_user(NewUser {
                name: name.into(),
                password: password.map(str::to_owned),
                ..Default::default()
            })
            .await
            .unwrap();
    }

    async fn login(&self, name: &str, password: &str) -> Result<IssuedTokens, AuthError> {
        let attempt = PasswordLogin {
            login: name,
            password,
            client_id: "",
            login_type: "Token",
        };
        self.engine.password_login(&attempt, &ctx()).await
    }

    async fn session_ids(&self, user: &str) -> Vec<String> {
        let overview = self.engine.account_overview(user, 10).await.unwrap();
        overview.sessions.into_iter().map(|s| s.id).collect()
    }

    async fn is_live(&self, t: &IssuedTokens) -> bool {
        match self
            .engine
            .verify(&t.access_token, TokenType::AccessToken)
            .await
        {
            Ok(_) => true,
            Err(TokenError::Revoked) => false,
            Err(e) => panic!("unexpected token error {e}"),
        }
    }
}

#[tokio::test]
async fn sessions_are_listed_and_revoked_for_their_owner_only() {
    let f = fixture().await;
    f.add("ann", Some(PASSWORD)).await;
    f.add("bob", Some(PASSWORD)).await;
    let first = f.login("ann", PASSWORD).await.unwrap();
    f.clock.advance_ms(1_000);
    let second = f.login("ann", PASSWORD).await.unwrap();
    let bobs = f.login("bob", PASSWORD).await.unwrap();

    // Newest first, and only ann's own.
    assert_eq!(
        f.session_ids("ann").await,
        vec![second.session_id.clone(), first.session_id.clone()]
    );
    let overview = f.engine.account_overview("ann", 10).await.unwrap();
    assert_eq!(overview.user.name, "ann");
    assert_eq!(overview.logins.len(), 2);
    assert!(overview.logins.iter().all(|r| r.success));

    // Bob's session id reads as absent for ann, and stays live.
    assert!(matches!(
        f.engine.revoke_own_session("ann", &bobs.session_id).await,
        Err(AccountError::NoSuchSession)
    ));
    assert!(f.is_live(&bobs).await);
    assert!(matches!(
        f.engine.revoke_own_session("ann", "no-such-id").await,
        Err(AccountError::NoSuchSession)
    ));

    f.engine
        .revoke_own_session("ann", &first.session_id)
        .await
        .unwrap();
    assert!(!f.is_live(&first).await);
    assert!(f.is_live(&second).await);
    assert_eq!(f.session_ids("ann").await, vec![second.session_id.clone()]);
    // A revoked session cannot be revoked twice.
    assert!(matches!(
        f.engine.revoke_own_session("ann", &first.session_id).await,
        Err(AccountError::NoSuchSession)
    ));
    assert_eq!(f.session_ids("bob").await, vec![bobs.session_id]);
}

#[tokio::test]
async fn the_last_way_into_an_account_cannot_be_unlinked() {
    let f = fixture().await;
    f.add("cat", None).await;
    f.add("dan", Some(PASSWORD)).await;
    let e = &f.engine;
    e.link_identity("cat", "github", "1", Some("cat-gh"))
        .await
        .unwrap();
    e.link_identity("dan", "github", "2", None).await.unwrap();

    // No password and one link: refused, the link stays.
    assert!(matches!(
        e.unlink_own_identity("cat", "github", "1").await,
        Err(AccountError::OnlyWayIn)
    ));
    assert_eq!(
        e.account_overview("cat", 1).await.unwrap().identities.len(),
        1
    );
    // Someone else's identity reads as absent.
    assert!(matches!(
        e.unlink_own_identity("cat", "github", "2").await,
        Err(AccountError::NoSuchIdentity)
    ));

    // With a second link, either may go, but not both.
    e.link_identity("cat", "oidc", "c", None).await.unwrap();
    e.unlink_own_identity("cat", "github", "1").await.unwrap();
    assert!(matches!(
        e.unlink_own_identity("cat", "oidc", "c").await,
        Err(AccountError::OnlyWayIn)
    ));
    // An account with a password may drop its only link.
    e.unlink_own_identity("dan", "github", "2").await.unwrap();
    assert!(
        e.account_overview("dan", 1)
            .await
            .unwrap()
            .identities
            .is_empty()
    );
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one_and_ends_every_session() {
    let f = fixture().await;
    f.add("eve", Some(PASSWORD)).await;
    let a = f.login("eve", PASSWORD).await.unwrap();
    let b = f.login("eve", PASSWORD).await.unwrap();
    let e = &f.engine;

    assert!(matches!(
        e.change_own_password("eve", "wrong-one", "New-passw0rd", &ctx())
            .await,
        Err(PasswordChangeError::WrongPassword)
    ));
    assert!(f.is_live(&a).await, "a refused change ends nothing");
    let weak = e
        .change_own_password("eve", PASSWORD, "short", &ctx())
        .await;
    assert!(matches!(
        weak,
        Err(PasswordChangeError::Invalid(PasswordProblem::TooShort))
    ));

    let revoked = e
        .change_own_password("eve", PASSWORD, "New-passw0rd", &ctx())
        .await
        .unwrap();
    assert_eq!(revoked, 2);
    assert!(!f.is_live(&a).await && !f.is_live(&b).await);
    assert!(f.session_ids("eve").await.is_empty());
    // A new lockout window, so the old password's refusal below is not a lock.
    f.clock.advance_ms(60_000);
    assert_eq!(
        f.login("eve", PASSWORD).await.unwrap_err(),
        AuthError::InvalidCredentials
    );
    f.login("eve", "New-passw0rd").await.unwrap();

    // The failed attempt was recorded in the login history.
    let logins = e.account_overview("eve", 10).await.unwrap().logins;
    assert_eq!(logins.iter().filter(|r| !r.success).count(), 2);
}

#[tokio::test]
async fn wrong_current_passwords_count_under_the_login_lockout() {
    let f = fixture().await;
    f.add("fay", Some(PASSWORD)).await;
    f.add("gus", None).await;
    let e = &f.engine;
    for _ in 0..2 {
        assert!(matches!(
            e.change_own_password("fay", "wrong-one", "New-passw0rd", &ctx())
                .await,
            Err(PasswordChangeError::WrongPassword)
        ));
    }
    // Locked: even the right current password is refused, and so is a login.
    assert!(matches!(
        e.change_own_password("fay", PASSWORD, "New-passw0rd", &ctx())
            .await,
        Err(PasswordChangeError::Locked(60))
    ));
    assert_eq!(
        f.login("fay", PASSWORD).await.unwrap_err(),
        AuthError::Locked { retry_after_s: 60 }
    );
    f.clock.advance_ms(60_000);
    e.change_own_password("fay", PASSWORD, "New-passw0rd", &ctx())
        .await
        .unwrap();

    assert!(matches!(
        e.change_own_password("gus", "anything", "New-passw0rd", &ctx())
            .await,
        Err(PasswordChangeError::NoPassword)
    ));
}

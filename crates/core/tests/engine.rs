//! The engine driven with an injected clock on a real SQLite store: token expiry, retention of
//! login records, lockout windows and revocation polling, without sleeping.

use std::sync::Arc;

use portcullis_config::{LoadOptions, Secret};
use portcullis_core::tokens::TokenCodec;
use portcullis_core::{
    AuthError, Engine, ManualClock, NewUser, PasswordLogin, RequestContext, TokenError, TokenType,
};
use portcullis_store::{LoginRecord, Store};

const T0: i64 = 1_800_000_000_000;

async fn engine(yaml: &str) -> (Arc<Engine>, ManualClock, Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        portcullis_store::open(&format!("sqlite://{}/p.db", dir.path().display()))
            .await
            .unwrap();
    let config = portcullis_config::load_str(yaml, None, &LoadOptions::default()).unwrap();
    let clock = ManualClock::new(T0);
    let engine = Engine::new(&config, store.clone(), Arc::new(clock.clone()))
        .await
        .unwrap();
    (engine, clock, store, dir)
}

const YAML: &str = "authentication:\n  jwtSecret: s3cret\n  authenticateRateLimiterMaxTries: 2\n  authenticateRateLimiterDuration: 1m\n  loginHistoryMaximumEntries: 3\n  loginHistoryRetentionPeriod: 1h\n  multipleLogin: true\n  oauthOptions:\n    accessTokenMaxAge: 10m\n    accessTokenInactivityTimeout: 0s\n";

fn ctx() -> RequestContext {
    RequestContext {
        ip: "192.0.2.7".into(),
        user_agent: "test".into(),
    }
}

async fn add(engine: &Engine, name: &str) {
    engine
        .add_user(NewUser {
            name: name.into(),
            password: Some("Passw0rd-long".into()),
            ..Default::default()
        })
        .await
        .unwrap();
}

fn login<'a>(name: &'a str, password: &'a str) -> PasswordLogin<'a> {
    PasswordLogin {
        login: name,
        password,
        client_id: "",
        login_type: "Token",
    }
}

#[tokio::test]
async fn access_tokens_expire_with_the_clock() {
    let (engine, clock, _store, _dir) = engine(YAML).await;
    add(&engine, "ann").await;
    let t = engine
        .password_login(&login("ann", "Passw0rd-long"), &ctx())
        .await
        .unwrap();
    assert_eq!(t.expires_in, Some(600));
    assert!(
        engine
            .verify(&t.access_token, TokenType::AccessToken)
            .await
            .is_ok()
    );
    clock.advance_ms(599_000);
    assert!(
        engine
            .verify(&t.access_token, TokenType::AccessToken)
            .await
            .is_ok()
    );
    clock.advance_ms(1_000);
    assert_eq!(
        engine.verify(&t.access_token, TokenType::AccessToken).await,
        Err(TokenError::Expired)
    );
    // With no inactivity timeout the refresh token lives exactly as long as the access token.
    assert!(matches!(
        engine.refresh(&t.refresh_token, None).await,
        Err(AuthError::InvalidGrant(_))
    ));
}

#[tokio::test]
async fn lockout_window_and_unknown_names() {
    let (engine, clock, _store, _dir) = engine(YAML).await;
    add(&engine, "bea").await;
    for _ in 0..2 {
        assert_eq!(
            engine
                .password_login(&login("bea", "nope"), &ctx())
                .await
                .unwrap_err(),
            AuthError::InvalidCredentials
        );
    }
    let locked = engine
        .password_login(&login("bea", "Passw0rd-long"), &ctx())
        .await
        .unwrap_err();
    assert_eq!(locked, AuthError::Locked { retry_after_s: 60 });
    clock.advance_ms(30_000);
    assert_eq!(
        engine
            .password_login(&login("bea", "Passw0rd-long"), &ctx())
            .await
            .unwrap_err(),
        AuthError::Locked { retry_after_s: 30 }
    );
    clock.advance_ms(30_000);
    assert!(
        engine
            .password_login(&login("bea", "Passw0rd-long"), &ctx())
            .await
            .is_ok()
    );
    // Unknown names behave the same.
    for _ in 0..2 {
        assert_eq!(
            engine
                .password_login(&login("ghost", "x"), &ctx())
                .await
                .unwrap_err(),
            AuthError::InvalidCredentials
        );
    }
    assert!(matches!(
        engine
            .password_login(&login("ghost", "x"), &ctx())
            .await
            .unwrap_err(),
        AuthError::Locked { .. }
    ));
}

#[tokio::test]
async fn retention_prunes_by_age_and_by_count() {
    let (engine, clock, store, _dir) = engine(YAML).await;
    add(&engine, "cal").await;
    for i in 0..8 {
        store
            .add_login_record(&LoginRecord {
                id: format!("r{i}"),
                user: "cal".into(),
                at: T0 - 2 * 3_600_000 + i * 1_800_000, // from 2 h ago, every 30 min
                login_type: "Token".into(),
                provider: String::new(),
                source_ip: "192.0.2.1".into(),
                user_agent: String::new(),
                success: true,
                reason: "authenticated successfully".into(),
            })
            .await
            .unwrap();
    }
    clock.set_ms(T0 + 30 * 60_000);
    // Records at T0-2h .. T0+1.5h; now = T0+0.5h, so the cut-off is T0-0.5h: the three
    // older ones go by age, then the oldest two of the remaining five go by count (max 3).
    let deleted = engine.run_retention().await.unwrap();
    let (kept, total) = store.list_login_records("cal", 0, 10).await.unwrap();
    assert_eq!(total, 3, "{kept:?}");
    assert_eq!(deleted, 5);
    assert_eq!(
        kept.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["r7", "r6", "r5"]
    );
}

#[tokio::test]
async fn revocations_made_elsewhere_arrive_by_polling() {
    let (a, _clock, store, _dir) = engine(YAML).await;
    add(&a, "dee").await;
    let t = a
        .password_login(&login("dee", "Passw0rd-long"), &ctx())
        .await
        .unwrap();
    // A second engine on the same store (another replica, or the CLI).
    let config =
        portcullis_config::defaults(Secret::new("s3cret"), &LoadOptions::default()).unwrap();
    let b = Engine::new(&config, store.clone(), Arc::new(ManualClock::new(T0)))
        .await
        .unwrap();
    b.revoke_user("dee").await.unwrap();
    assert!(
        a.verify(&t.access_token, TokenType::AccessToken)
            .await
            .is_ok(),
        "not yet polled"
    );
    assert_eq!(a.poll_revocations().await.unwrap(), 1);
    assert_eq!(
        a.verify(&t.access_token, TokenType::AccessToken).await,
        Err(TokenError::Revoked)
    );
}

/// Introspection and userinfo read a session's client and grant from the store once per
/// session and process: both never change after the first token. Revocation is still checked on
/// every request.
#[tokio::test]
async fn grant_facts_are_read_once_and_revocation_still_counts() {
    // A client whose tokens never expire (`accessTokenMaxAge: 0s`) gets a session row.
    let yaml = format!(
        "{YAML}    clients:\n    - name: svc\n      secret: svc-secret\n      grantMethod: auto\n      accessTokenMaxAge: 0s\n"
    );
    let (engine, _clock, store, _dir) = engine(&yaml).await;
    let client = engine.settings().client("svc").unwrap().clone();
    let issued = engine
        .client_credentials(&client, Some("jobs"), &ctx())
        .await
        .unwrap();
    let token = issued.tokens.access_token.clone();
    let first = engine.introspect(&token, None).await.unwrap().0;
    assert_eq!(first["active"], true, "{first}");
    assert_eq!(first["client_id"], "svc");
    assert_eq!(first["aud"], "svc");
    assert_eq!(first["scope"], "jobs");

    // The rows go away behind the engine's back (here: a prune far in the future). The facts
    // read the first time still answer, so the second introspection read nothing.
    assert!(store.prune_sessions(T0 + 365 * 86_400_000).await.unwrap() > 0);
    assert!(
        store
            .get_session(&issued.tokens.session_id)
            .await
            .unwrap()
            .is_none()
    );
    let second = engine.introspect(&token, None).await.unwrap().0;
    assert_eq!(second, first);

    // Revocation is not remembered away: it is checked on every request.
    engine
        .revoke_session(&issued.tokens.session_id)
        .await
        .unwrap();
    let revoked = engine.introspect(&token, None).await.unwrap().0;
    assert_eq!(revoked, serde_json::json!({ "active": false }));
}

/// A userinfo answer is reused for the same session for up to a second (the bound on how stale
/// a profile change can look); revocation cuts it off at once.
#[tokio::test]
async fn userinfo_answers_are_reused_for_a_second_and_revocation_still_counts() {
    let (engine, clock, _store, _dir) = engine(YAML).await;
    add(&engine, "ada").await;
    let tokens = engine
        .password_login(&login("ada", "Passw0rd-long"), &ctx())
        .await
        .unwrap();
    let before = engine.userinfo(&tokens.access_token).await.unwrap();
    assert_eq!(before["sub"], "ada");
    assert_eq!(before["name"], "ada");
    let update = portcullis_store::UserUpdate {
        display_name: Some(Some("Ada Lovelace".into())),
        ..Default::default()
    };
    engine.update_user("ada", update).await.unwrap();

    clock.advance_ms(999);
    let reused = engine.userinfo(&tokens.access_token).await.unwrap();
    assert_eq!(reused, before, "within the second the answer is reused");
    clock.advance_ms(1);
    let fresh = engine.userinfo(&tokens.access_token).await.unwrap();
    assert_eq!(
        fresh["name"], "Ada Lovelace",
        "after a second it is read again"
    );

    engine.revoke_session(&tokens.session_id).await.unwrap();
    assert!(engine.userinfo(&tokens.access_token).await.is_err());
}

const CLIENTS: &str = "    clients:\n    - name: svc\n      secret: svc-secret\n      grantMethod: auto\n    - name: other\n      secret: other-secret\n      grantMethod: auto\n";

/// Client-credentials tokens that expire are not stored: nothing is written for them, they
/// verify and introspect from what they carry, a token minted with `jwtSecret` alone is refused,
/// and a revocation goes through the log to every replica until the token would have expired.
#[tokio::test]
async fn client_credentials_tokens_are_not_stored_and_revoke_through_the_log() {
    let yaml = format!("{YAML}{CLIENTS}");
    let (engine, clock, store, _dir) = engine(&yaml).await;
    let config = portcullis_config::load_str(&yaml, None, &LoadOptions::default()).unwrap();
    let replica = Engine::new(&config, store.clone(), Arc::new(clock.clone()))
        .await
        .unwrap();
    let svc = engine.settings().client("svc").unwrap().clone();
    let other = engine.settings().client("other").unwrap().clone();

    let head = store.revocation_head().await.unwrap();
    let issued = engine
        .client_credentials(&svc, Some("jobs"), &ctx())
        .await
        .unwrap();
    let token = issued.tokens.access_token.clone();
    assert_eq!(issued.tokens.expires_in, Some(600));
    assert!(issued.tokens.refresh_token.is_empty());
    let sid = issued.tokens.session_id.clone();
    assert!(sid.starts_with("cc."), "{sid}");
    assert!(store.get_session(&sid).await.unwrap().is_none());
    assert!(
        store
            .list_active_sessions("client:svc", 0)
            .await
            .unwrap()
            .is_empty()
    );

    for e in [&engine, &replica] {
        let who = e.authenticate_bearer(&token).await.unwrap();
        assert_eq!(who.username, "client:svc");
    }
    let facts = engine.introspect(&token, None).await.unwrap().0;
    assert_eq!(facts["active"], true, "{facts}");
    assert_eq!(facts["client_id"], "svc");
    assert_eq!(facts["scope"], "jobs");
    assert_eq!(facts["sub"], "client:svc");
    assert_eq!(facts["exp"], T0 / 1000 + 600);

    // Whoever holds jwtSecret (a KubeSphere member cluster) cannot mint or alter one.
    let codec = TokenCodec::new(b"s3cret").unwrap();
    let claims = engine.inspect(&token).unwrap();
    let forgeries = [
        portcullis_core::Claims {
            username: "client:other".into(),
            sub: "client:other".into(),
            ..claims.clone()
        },
        portcullis_core::Claims {
            scope: "jobs admin".into(),
            ..claims.clone()
        },
        portcullis_core::Claims {
            groups: vec!["system:masters".into()],
            ..claims.clone()
        },
        portcullis_core::Claims {
            sid: format!("cc.{}.AAAA.BBBB", T0 / 1000 + 600),
            ..claims.clone()
        },
    ];
    for forged in forgeries {
        let forged = codec.sign(&forged).unwrap();
        assert_eq!(
            engine.verify(&forged, TokenType::AccessToken).await,
            Err(TokenError::NoSession)
        );
        assert_eq!(
            engine.introspect(&forged, None).await.unwrap().0,
            serde_json::json!({ "active": false })
        );
    }
    assert_eq!(
        codec.sign(&claims).unwrap(),
        token,
        "the same claims re-signed are the same token"
    );

    // Another client cannot revoke it; its own client can, once.
    assert!(!engine.revoke_token(&token, &other).await.unwrap());
    assert!(engine.verify(&token, TokenType::AccessToken).await.is_ok());
    assert!(engine.revoke_token(&token, &svc).await.unwrap());
    assert!(!engine.revoke_token(&token, &svc).await.unwrap());
    assert_eq!(
        engine.verify(&token, TokenType::AccessToken).await,
        Err(TokenError::Revoked)
    );
    let log = store.revocations_since(head, 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].session_id.as_str(), log[0].expires_at),
        (sid.as_str(), Some((T0 / 1000 + 600) * 1000))
    );
    assert_eq!(replica.poll_revocations().await.unwrap(), 1);
    assert_eq!(
        replica.verify(&token, TokenType::AccessToken).await,
        Err(TokenError::Revoked)
    );

    // Logout with the token does the same.
    let second = engine.client_credentials(&svc, None, &ctx()).await.unwrap();
    let second = second.tokens.access_token;
    assert!(
        replica
            .verify(&second, TokenType::AccessToken)
            .await
            .is_ok()
    );
    assert!(engine.logout(&second).await.unwrap());
    assert_eq!(replica.poll_revocations().await.unwrap(), 1);
    assert_eq!(
        replica.verify(&second, TokenType::AccessToken).await,
        Err(TokenError::Revoked)
    );

    // The account page's sign-out (any caller that names the session) does the same.
    let fourth = engine.client_credentials(&svc, None, &ctx()).await.unwrap();
    assert!(
        engine
            .revoke_session(&fourth.tokens.session_id)
            .await
            .unwrap()
    );
    assert!(
        !engine
            .revoke_session(&fourth.tokens.session_id)
            .await
            .unwrap(),
        "logged once"
    );
    assert_eq!(replica.poll_revocations().await.unwrap(), 1);
    assert_eq!(
        replica
            .verify(&fourth.tokens.access_token, TokenType::AccessToken)
            .await,
        Err(TokenError::Revoked)
    );

    // Removing the client from the configuration ends its tokens at once.
    let third = engine.client_credentials(&svc, None, &ctx()).await.unwrap();
    let third = third.tokens.access_token;
    let without = yaml.replace(
        "    - name: svc\n      secret: svc-secret\n      grantMethod: auto\n",
        "",
    );
    assert_ne!(without, yaml);
    engine
        .apply_config(
            &portcullis_config::load_str(&without, None, &LoadOptions::default()).unwrap(),
        )
        .unwrap();
    assert_eq!(
        engine.verify(&third, TokenType::AccessToken).await,
        Err(TokenError::Revoked)
    );
    assert!(replica.verify(&third, TokenType::AccessToken).await.is_ok());

    // The token expires with its lifetime; the log entries go with the next prune after that.
    clock.advance_ms(600_000);
    assert_eq!(
        replica.verify(&third, TokenType::AccessToken).await,
        Err(TokenError::Expired)
    );
    assert_eq!(store.prune_sessions(T0 + 600_001).await.unwrap(), 3);
    assert!(store.revocations_since(head, 10).await.unwrap().is_empty());

    // A new jwtSecret makes a new client-token key (the old one no longer opens); tokens of
    // the old secret are refused, new ones verify.
    let rotated = yaml.replace("jwtSecret: s3cret", "jwtSecret: n3w-secret");
    let rotated = portcullis_config::load_str(&rotated, None, &LoadOptions::default()).unwrap();
    replica.apply_config(&rotated).unwrap();
    assert!(
        replica
            .verify(&token, TokenType::AccessToken)
            .await
            .is_err()
    );
    let fresh = replica
        .client_credentials(&svc, None, &ctx())
        .await
        .unwrap();
    assert!(
        replica
            .verify(&fresh.tokens.access_token, TokenType::AccessToken)
            .await
            .is_ok()
    );
    let macs = store.list_signing_keys().await.unwrap();
    let macs: Vec<_> = macs.iter().filter(|k| k.alg.starts_with("HMAC")).collect();
    assert_eq!(macs.len(), 2, "{macs:?}");
}

/// An unstored client token never outlives the inactivity timeout (nothing tracks its use) nor
/// the session's absolute lifetime.
#[tokio::test]
async fn client_credentials_tokens_live_no_longer_than_an_idle_session() {
    let yaml = format!("{YAML}{CLIENTS}").replace(
        "accessTokenInactivityTimeout: 0s",
        "accessTokenInactivityTimeout: 4m",
    );
    let (first, _clock, _store, _dir) = engine(&yaml).await;
    let svc = first.settings().client("svc").unwrap().clone();
    let issued = first.client_credentials(&svc, None, &ctx()).await.unwrap();
    assert_eq!(issued.tokens.expires_in, Some(240));
    let claims = first.inspect(&issued.tokens.access_token).unwrap();
    assert_eq!(claims.exp, Some(T0 / 1000 + 240));

    let yaml = format!("{YAML}{CLIENTS}portcullis:\n  sessionMaxLifetime: 3m\n");
    let (capped, _clock, store, _dir) = engine(&yaml).await;
    let svc = capped.settings().client("svc").unwrap().clone();
    let issued = capped.client_credentials(&svc, None, &ctx()).await.unwrap();
    assert_eq!(issued.tokens.expires_in, Some(180));
    assert!(
        store
            .get_session(&issued.tokens.session_id)
            .await
            .unwrap()
            .is_none()
    );

    // Under a second of lifetime, the token gets a session row instead.
    let yaml = format!("{YAML}{CLIENTS}portcullis:\n  sessionMaxLifetime: 500ms\n");
    let (short, _clock, store, _dir) = engine(&yaml).await;
    let svc = short.settings().client("svc").unwrap().clone();
    let issued = short.client_credentials(&svc, None, &ctx()).await.unwrap();
    assert!(!issued.tokens.session_id.starts_with("cc."));
    assert!(
        store
            .get_session(&issued.tokens.session_id)
            .await
            .unwrap()
            .is_some()
    );
}

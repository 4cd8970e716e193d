//! Conformance cases for the OpenID Connect provider's storage: signing keys (race-safe
//! generation), authorization codes (taken once, replays detected), grants and consents.

use std::sync::Arc;

use super::{conflict, race, sample_user, session};
use crate::{AuthCode, CodeTake, Consent, OidcGrant, SigningKey, Store};

fn key(kid: &str, alg: &str, generation: i64) -> SigningKey {
    SigningKey {
        kid: kid.to_owned(),
        alg: alg.to_owned(),
        generation,
        private_key: format!("sealed-{kid}"),
        public_jwk: format!("{{\"kid\":\"{kid}\"}}"),
        created_at: 1_000 * generation,
        activates_at: 2_000 * generation,
    }
}

fn code(hash: &str, session_id: &str) -> AuthCode {
    AuthCode {
        code_hash: hash.to_owned(),
        client_id: "app".to_owned(),
        redirect_uri: "https://app.example.com/cb".to_owned(),
        redirect_uri_given: true,
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned()),
        nonce: None,
        scopes: "openid profile".to_owned(),
        user: "alice".to_owned(),
        auth_session: "browser-1".to_owned(),
        auth_time: 900,
        session_id: session_id.to_owned(),
        created_at: 1_000,
        expires_at: 61_000,
    }
}

/// Keys read back in (alg, generation) order; a second key for the same (alg, generation) is
/// not inserted, also when several callers race; deletion works once.
pub async fn oidc_signing_keys_generate_once(store: Arc<dyn Store>) {
    assert!(store.list_signing_keys().await.unwrap().is_empty());
    assert!(
        store
            .insert_signing_key(&key("r2", "RS256", 2))
            .await
            .unwrap()
    );
    assert!(
        store
            .insert_signing_key(&key("e1", "ES256", 1))
            .await
            .unwrap()
    );
    assert!(
        store
            .insert_signing_key(&key("r1", "RS256", 1))
            .await
            .unwrap()
    );
    assert!(
        !store
            .insert_signing_key(&key("r1-again", "RS256", 1))
            .await
            .unwrap()
    );
    assert!(
        !store
            .insert_signing_key(&key("r1", "ES256", 9))
            .await
            .unwrap()
    );
    let all = store.list_signing_keys().await.unwrap();
    let kids: Vec<&str> = all.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(kids, ["e1", "r1", "r2"]);
    assert_eq!(all[1], key("r1", "RS256", 1));

    let won = race(&store, 6, |store, i| async move {
        store
            .insert_signing_key(&key(&format!("race-{i}"), "RS256", 3))
            .await
            .unwrap()
    })
    .await;
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    assert_eq!(store.list_signing_keys().await.unwrap().len(), 4);

    assert!(store.delete_signing_key("r1").await.unwrap());
    assert!(!store.delete_signing_key("r1").await.unwrap());
}

/// A code is taken once; later presentations are replays that return the reserved session and
/// are remembered; unknown codes are unknown; concurrent takers get it once between them.
pub async fn oidc_code_taken_once_and_replay_detected(store: Arc<dyn Store>) {
    let c = code("hash-1", "sess-1");
    store.create_auth_code(&c).await.unwrap();
    conflict(store.create_auth_code(&c).await);
    assert!(!store.auth_code_replayed("hash-1").await.unwrap());
    assert_eq!(
        store.take_auth_code("hash-1", 2_000).await.unwrap(),
        CodeTake::Taken(Box::new(c.clone()))
    );
    assert!(!store.auth_code_replayed("hash-1").await.unwrap());
    assert_eq!(
        store.take_auth_code("hash-1", 3_000).await.unwrap(),
        CodeTake::Replayed {
            session_id: "sess-1".into()
        }
    );
    assert!(store.auth_code_replayed("hash-1").await.unwrap());
    assert_eq!(
        store.take_auth_code("nope", 3_000).await.unwrap(),
        CodeTake::Unknown
    );

    // Optional fields round-trip as None.
    let bare = AuthCode {
        code_challenge: None,
        nonce: Some("n-0S6_WzA2Mj".into()),
        redirect_uri_given: false,
        ..code("hash-bare", "sess-bare")
    };
    store.create_auth_code(&bare).await.unwrap();
    assert_eq!(
        store.take_auth_code("hash-bare", 2_000).await.unwrap(),
        CodeTake::Taken(Box::new(bare))
    );

    store
        .create_auth_code(&code("hash-race", "sess-race"))
        .await
        .unwrap();
    let got = race(&store, 8, |store, _| async move {
        store.take_auth_code("hash-race", 2_000).await.unwrap()
    })
    .await;
    let taken = got
        .iter()
        .filter(|g| matches!(g, CodeTake::Taken(_)))
        .count();
    assert_eq!(taken, 1, "{got:?}");
    assert!(
        got.iter()
            .all(|g| matches!(g, CodeTake::Taken(_) | CodeTake::Replayed { .. }))
    );
}

/// A session and its grant are created together or not at all.
pub async fn granted_session_is_all_or_nothing(store: Arc<dyn Store>) {
    let grant = |sid: &str| OidcGrant {
        session_id: sid.into(),
        client_id: "app".into(),
        user: "client:app".into(),
        scopes: "openid".into(),
        auth_time: 900,
        auth_session: String::new(),
        created_at: 1_000,
    };
    let first = session("gs-1", "client:app", 1_000, None);
    store
        .create_granted_session(&first, &grant("gs-1"))
        .await
        .unwrap();
    assert_eq!(store.get_session("gs-1").await.unwrap(), Some(first));
    assert_eq!(
        store.get_oidc_grant("gs-1").await.unwrap(),
        Some(grant("gs-1"))
    );

    // The same session again: refused, and its grant is the first one still.
    let other = OidcGrant {
        scopes: "openid email".into(),
        ..grant("gs-1")
    };
    let again = store
        .create_granted_session(&session("gs-1", "client:app", 2_000, None), &other)
        .await;
    let message = conflict(again);
    assert!(message.contains("gs-1"), "{message}");
    assert_eq!(
        store.get_oidc_grant("gs-1").await.unwrap(),
        Some(grant("gs-1"))
    );

    // A grant already stored under the new session's id: refused, and no session is left behind.
    store.put_oidc_grant(&grant("gs-2")).await.unwrap();
    let refused = store
        .create_granted_session(&session("gs-2", "client:app", 3_000, None), &grant("gs-2"))
        .await;
    let message = conflict(refused);
    assert!(message.contains("gs-2"), "{message}");
    assert_eq!(store.get_session("gs-2").await.unwrap(), None);

    // A grant of another session: refused before anything is written.
    let mismatched = store
        .create_granted_session(&session("gs-3", "client:app", 4_000, None), &grant("gs-4"))
        .await;
    let message = conflict(mismatched);
    assert!(message.contains("gs-4"), "{message}");
    assert_eq!(store.get_session("gs-3").await.unwrap(), None);
    assert_eq!(store.get_oidc_grant("gs-4").await.unwrap(), None);
}

/// Grants and consents read back as written and are replaced by a later write.
pub async fn oidc_grants_and_consents(store: Arc<dyn Store>) {
    let g = OidcGrant {
        session_id: "sess-1".into(),
        client_id: "app".into(),
        user: "alice".into(),
        scopes: "openid email".into(),
        auth_time: 900,
        auth_session: "browser-1".into(),
        created_at: 1_000,
    };
    assert_eq!(store.get_oidc_grant("sess-1").await.unwrap(), None);
    store.put_oidc_grant(&g).await.unwrap();
    assert_eq!(
        store.get_oidc_grant("sess-1").await.unwrap(),
        Some(g.clone())
    );
    let g2 = OidcGrant {
        scopes: "openid".into(),
        ..g.clone()
    };
    store.put_oidc_grant(&g2).await.unwrap();
    assert_eq!(store.get_oidc_grant("sess-1").await.unwrap(), Some(g2));

    let c = Consent {
        user: "alice".into(),
        client_id: "app".into(),
        scopes: "openid profile".into(),
        granted_at: 1_000,
    };
    assert_eq!(store.get_consent("alice", "app").await.unwrap(), None);
    store.put_consent(&c).await.unwrap();
    assert_eq!(
        store.get_consent("alice", "app").await.unwrap(),
        Some(c.clone())
    );
    assert_eq!(store.get_consent("alice", "other").await.unwrap(), None);
    let wider = Consent {
        scopes: "email openid profile".into(),
        granted_at: 2_000,
        ..c
    };
    store.put_consent(&wider).await.unwrap();
    assert_eq!(
        store.get_consent("alice", "app").await.unwrap(),
        Some(wider)
    );
}

/// Pruning removes expired codes, grants whose session is gone and consents of deleted users,
/// and keeps the rest.
pub async fn oidc_prune(store: Arc<dyn Store>) {
    store.create_user(&sample_user("alice")).await.unwrap();
    store
        .create_session(&session("live", "alice", 1_000, None))
        .await
        .unwrap();
    let old = AuthCode {
        expires_at: 5_000,
        ..code("old", "s-old")
    };
    store.create_auth_code(&old).await.unwrap();
    store
        .create_auth_code(&code("fresh", "s-fresh"))
        .await
        .unwrap();
    for (sid, user) in [("live", "alice"), ("gone", "alice")] {
        store
            .put_oidc_grant(&OidcGrant {
                session_id: sid.into(),
                client_id: "app".into(),
                user: user.into(),
                scopes: "openid".into(),
                auth_time: 1,
                auth_session: "b".into(),
                created_at: 1,
            })
            .await
            .unwrap();
    }
    for user in ["alice", "bob"] {
        store
            .put_consent(&Consent {
                user: user.into(),
                client_id: "app".into(),
                scopes: "openid".into(),
                granted_at: 1,
            })
            .await
            .unwrap();
    }
    assert_eq!(store.prune_oidc(10_000).await.unwrap(), 3);
    assert_eq!(
        store.take_auth_code("old", 20_000).await.unwrap(),
        CodeTake::Unknown
    );
    assert!(matches!(
        store.take_auth_code("fresh", 20_000).await.unwrap(),
        CodeTake::Taken(_)
    ));
    assert!(store.get_oidc_grant("live").await.unwrap().is_some());
    assert!(store.get_oidc_grant("gone").await.unwrap().is_none());
    assert!(store.get_consent("alice", "app").await.unwrap().is_some());
    assert!(store.get_consent("bob", "app").await.unwrap().is_none());
    assert_eq!(store.prune_oidc(10_000).await.unwrap(), 0);
}

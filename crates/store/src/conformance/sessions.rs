//! Conformance cases for sessions and the revocation log.

use std::sync::Arc;

use super::{conflict, ids, race, session};
use crate::{Session, Store};

/// Sessions read back exactly; active ones list newest first, without revoked or expired ones.
pub async fn session_create_get_list(store: Arc<dyn Store>) {
    let s1 = session("s1", "alice", 100, Some(10_000));
    let s2 = Session {
        provider: "github".into(),
        refresh_generation: 4,
        upstream_groups: vec!["github:acme".into(), "github:acme/platform".into()],
        ..session("s2", "alice", 200, None)
    };
    let s3 = session("s3", "alice", 300, Some(500));
    let s4 = Session {
        revoked_at: Some(450),
        ..session("s4", "alice", 400, Some(10_000))
    };
    let b1 = session("b1", "bob", 50, None);
    for s in [&s1, &s2, &s3, &s4, &b1] {
        store.create_session(s).await.unwrap();
    }
    assert_eq!(store.get_session("s2").await.unwrap(), Some(s2.clone()));
    assert_eq!(store.get_session("s4").await.unwrap(), Some(s4));
    assert_eq!(store.get_session("nope").await.unwrap(), None);
    assert_eq!(
        conflict(store.create_session(&session("s1", "bob", 1, None)).await),
        r#"session "s1" already exists"#
    );

    assert_eq!(
        store.list_active_sessions("alice", 1_000).await.unwrap(),
        [s2.clone(), s1.clone()]
    );
    assert_eq!(
        store.list_active_sessions("alice", 499).await.unwrap(),
        [s3, s2.clone(), s1.clone()]
    );
    assert_eq!(
        store.list_active_sessions("alice", 500).await.unwrap(),
        [s2, s1],
        "expired at its expiry time"
    );
    assert!(
        store
            .list_active_sessions("nobody", 0)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A session and its user in one read: the user when one of that name exists, `None` when not;
/// nothing for an unknown session.
pub async fn session_with_user(store: Arc<dyn Store>) {
    let alice = super::sample_user("alice");
    store.create_user(&alice).await.unwrap();
    let s1 = Session {
        upstream_groups: vec!["github:acme".into()],
        ..session("s1", "alice", 100, Some(10_000))
    };
    let orphan = session("s2", "nobody", 200, None);
    for s in [&s1, &orphan] {
        store.create_session(s).await.unwrap();
    }
    let stored_alice = store.get_user("alice").await.unwrap();
    assert!(stored_alice.is_some());
    assert_eq!(
        store.get_session_with_user("s1").await.unwrap(),
        Some((s1, stored_alice))
    );
    assert_eq!(
        store.get_session_with_user("s2").await.unwrap(),
        Some((orphan, None))
    );
    assert_eq!(store.get_session_with_user("nope").await.unwrap(), None);
}

/// `advance_refresh` is a compare-and-set on the generation that refuses stale, revoked, expired
/// and missing sessions.
pub async fn session_advance_refresh_cas(store: Arc<dyn Store>) {
    store
        .create_session(&session("s", "alice", 100, Some(10_000)))
        .await
        .unwrap();

    assert!(
        store
            .advance_refresh("s", 0, Some(20_000), 500)
            .await
            .unwrap()
    );
    let s = store.get_session("s").await.unwrap().unwrap();
    assert_eq!(
        (s.refresh_generation, s.expires_at, s.last_seen_at),
        (1, Some(20_000), 500)
    );

    assert!(
        !store
            .advance_refresh("s", 0, Some(30_000), 600)
            .await
            .unwrap(),
        "a reused refresh token is refused"
    );
    let s = store.get_session("s").await.unwrap().unwrap();
    assert_eq!(
        (s.refresh_generation, s.expires_at, s.last_seen_at),
        (1, Some(20_000), 500)
    );

    assert!(store.advance_refresh("s", 1, None, 400).await.unwrap());
    let s = store.get_session("s").await.unwrap().unwrap();
    assert_eq!(
        (s.refresh_generation, s.expires_at, s.last_seen_at),
        (2, None, 500),
        "last_seen_at never goes back"
    );

    assert!(!store.advance_refresh("nope", 0, None, 1).await.unwrap());

    store
        .create_session(&session("old", "alice", 100, Some(1_000)))
        .await
        .unwrap();
    assert!(
        !store
            .advance_refresh("old", 0, Some(5_000), 1_000)
            .await
            .unwrap(),
        "an expired session stays dead"
    );
    assert!(
        store
            .advance_refresh("old", 0, Some(5_000), 999)
            .await
            .unwrap()
    );

    assert!(store.revoke_session("s", 700).await.unwrap());
    assert!(
        !store.advance_refresh("s", 2, None, 800).await.unwrap(),
        "a revoked session cannot refresh"
    );
    assert_eq!(
        store
            .get_session("s")
            .await
            .unwrap()
            .unwrap()
            .refresh_generation,
        2
    );
}

/// Of many concurrent refreshes with the same generation, exactly one wins.
pub async fn session_advance_refresh_race(store: Arc<dyn Store>) {
    store
        .create_session(&session("s", "alice", 100, None))
        .await
        .unwrap();
    let outcomes = race(&store, 20, |store, i| async move {
        store
            .advance_refresh("s", 0, Some(100_000 + i as i64), 200)
            .await
            .unwrap()
    })
    .await;
    let winners = outcomes.into_iter().filter(|won| *won).count();
    assert_eq!(winners, 1);
    assert_eq!(
        store
            .get_session("s")
            .await
            .unwrap()
            .unwrap()
            .refresh_generation,
        1
    );
}

/// Revocations mark sessions and append to the log, which reads back in order, by cursor, and by
/// liveness.
pub async fn session_revoke_and_log(store: Arc<dyn Store>) {
    assert_eq!(store.revocation_head().await.unwrap(), 0);
    assert!(store.revocations_since(0, 100).await.unwrap().is_empty());
    for s in [
        session("a1", "alice", 1, Some(5_000)),
        session("a2", "alice", 2, None),
        session("a3", "alice", 3, Some(8_000)),
        session("b1", "bob", 4, Some(6_000)),
    ] {
        store.create_session(&s).await.unwrap();
    }

    assert!(store.revoke_session("a1", 100).await.unwrap());
    assert!(
        !store.revoke_session("a1", 150).await.unwrap(),
        "already revoked"
    );
    assert!(!store.revoke_session("nope", 150).await.unwrap());
    assert_eq!(
        store.get_session("a1").await.unwrap().unwrap().revoked_at,
        Some(100),
        "the first revocation time stays"
    );
    let first = store.revocations_since(0, 100).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(
        (first[0].session_id.as_str(), first[0].expires_at),
        ("a1", Some(5_000))
    );
    assert!(first[0].seq > 0);
    assert_eq!(store.revocation_head().await.unwrap(), first[0].seq);

    assert_eq!(
        store
            .revoke_user_sessions("alice", Some("a3"), 200)
            .await
            .unwrap(),
        ["a2"]
    );
    assert_eq!(
        store
            .revoke_user_sessions("alice", None, 300)
            .await
            .unwrap(),
        ["a3"]
    );
    assert!(
        store
            .revoke_user_sessions("alice", None, 400)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .revoke_user_sessions("nobody", None, 400)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.get_session("a2").await.unwrap().unwrap().revoked_at,
        Some(200)
    );
    assert_eq!(
        store.get_session("b1").await.unwrap().unwrap().revoked_at,
        None,
        "other users are untouched"
    );
    assert!(
        store
            .list_active_sessions("alice", 0)
            .await
            .unwrap()
            .is_empty()
    );

    let log = store.revocations_since(0, 100).await.unwrap();
    assert_eq!(ids(&log), ["a1", "a2", "a3"]);
    assert!(
        log.windows(2).all(|w| w[0].seq < w[1].seq),
        "sequence numbers increase: {log:?}"
    );
    assert_eq!(log[1].expires_at, None);
    assert_eq!(
        ids(&store.revocations_since(log[0].seq, 100).await.unwrap()),
        ["a2", "a3"]
    );
    assert_eq!(
        ids(&store.revocations_since(0, 2).await.unwrap()),
        ["a1", "a2"]
    );
    assert!(
        store
            .revocations_since(log[2].seq, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.revocation_head().await.unwrap(), log[2].seq);

    assert_eq!(
        ids(&store.live_revocations(0).await.unwrap()),
        ["a1", "a2", "a3"]
    );
    assert_eq!(
        ids(&store.live_revocations(5_000).await.unwrap()),
        ["a2", "a3"],
        "a1 expired at 5000"
    );
    assert_eq!(
        ids(&store.live_revocations(8_000).await.unwrap()),
        ["a2"],
        "a never-expiring entry stays live"
    );

    let mut revoked = store.revoke_user_sessions("bob", None, 500).await.unwrap();
    revoked.sort();
    assert_eq!(revoked, ["b1"]);
    assert_eq!(
        ids(&store.revocations_since(log[2].seq, 100).await.unwrap()),
        ["b1"]
    );
}

/// A token without a session row is logged with its expiry, in sequence with the sessions'
/// revocations, and pruned like them; no session row appears.
pub async fn session_revoke_unstored(store: Arc<dyn Store>) {
    store
        .create_session(&session("s1", "alice", 1, Some(9_000)))
        .await
        .unwrap();
    store.revoke_unstored("cc.x", 4_000).await.unwrap();
    assert!(store.revoke_session("s1", 100).await.unwrap());
    store.revoke_unstored("cc.y", 6_000).await.unwrap();
    let log = store.revocations_since(0, 100).await.unwrap();
    assert_eq!(ids(&log), ["cc.x", "s1", "cc.y"]);
    assert_eq!(log[0].expires_at, Some(4_000));
    assert_eq!(store.revocation_head().await.unwrap(), log[2].seq);
    assert!(store.get_session("cc.x").await.unwrap().is_none());
    assert_eq!(
        ids(&store.live_revocations(5_000).await.unwrap()),
        ["s1", "cc.y"]
    );
    store.prune_sessions(5_000).await.unwrap();
    assert_eq!(
        ids(&store.revocations_since(0, 100).await.unwrap()),
        ["s1", "cc.y"],
        "the expired entry is pruned"
    );
}

/// `touch_sessions` only ever moves `last_seen_at` forward, merges duplicates, ignores unknown ids.
pub async fn session_touch_keeps_latest(store: Arc<dyn Store>) {
    store
        .create_session(&session("s1", "alice", 1_000, None))
        .await
        .unwrap();
    store
        .create_session(&session("s2", "alice", 1_000, None))
        .await
        .unwrap();
    store.touch_sessions(&[]).await.unwrap();
    store
        .touch_sessions(&[
            ("s1".into(), 2_000),
            ("s2".into(), 500),
            ("nope".into(), 9_000),
            ("s1".into(), 1_500),
        ])
        .await
        .unwrap();
    assert_eq!(
        store.get_session("s1").await.unwrap().unwrap().last_seen_at,
        2_000
    );
    assert_eq!(
        store.get_session("s2").await.unwrap().unwrap().last_seen_at,
        1_000
    );
    store
        .touch_sessions(&[("s1".into(), 1_800), ("s2".into(), 3_000)])
        .await
        .unwrap();
    assert_eq!(
        store.get_session("s1").await.unwrap().unwrap().last_seen_at,
        2_000
    );
    assert_eq!(
        store.get_session("s2").await.unwrap().unwrap().last_seen_at,
        3_000
    );
    assert_eq!(
        store.get_session("nope").await.unwrap(),
        None,
        "touch never creates sessions"
    );
}

/// Pruning deletes what expired before the cut-off, keeps everything without an expiry (a revoked
/// never-expiring session stays revoked), and never reuses a sequence number.
pub async fn session_prune(store: Arc<dyn Store>) {
    for s in [
        session("expired", "alice", 1, Some(100)),
        session("expired-revoked", "alice", 2, Some(100)),
        session("forever", "alice", 3, None),
        session("forever-revoked", "alice", 4, None),
        session("live", "alice", 5, Some(10_000)),
    ] {
        store.create_session(&s).await.unwrap();
    }
    for id in ["expired-revoked", "forever-revoked", "live"] {
        assert!(store.revoke_session(id, 50).await.unwrap());
    }
    let head = store.revocation_head().await.unwrap();

    assert_eq!(
        store.prune_sessions(100).await.unwrap(),
        0,
        "expiry at the cut-off is not before it"
    );
    assert_eq!(
        store.prune_sessions(1_000).await.unwrap(),
        3,
        "2 sessions + 1 log entry"
    );
    assert_eq!(store.get_session("expired").await.unwrap(), None);
    assert_eq!(store.get_session("expired-revoked").await.unwrap(), None);
    assert!(store.get_session("forever").await.unwrap().is_some());
    assert_eq!(
        store
            .get_session("forever-revoked")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(50)
    );
    assert_eq!(
        ids(&store.live_revocations(1_000).await.unwrap()),
        ["forever-revoked", "live"]
    );

    assert_eq!(
        store.prune_sessions(10_001).await.unwrap(),
        2,
        "live's session and its log entry"
    );
    assert_eq!(
        ids(&store.revocations_since(0, 100).await.unwrap()),
        ["forever-revoked"]
    );
    assert_eq!(
        ids(&store.live_revocations(i64::MAX).await.unwrap()),
        ["forever-revoked"]
    );

    // The newest entry was pruned; a new one must still get a higher number than it had.
    store
        .create_session(&session("next", "alice", 6, None))
        .await
        .unwrap();
    assert!(store.revoke_session("next", 60).await.unwrap());
    let next = store.revocations_since(head, 100).await.unwrap();
    assert_eq!(ids(&next), ["next"]);
    assert!(next[0].seq > head);

    // Many expired rows (more than one batch).
    for i in 0..10 {
        store
            .create_session(&session(&format!("bulk{i}"), "bob", 7, Some(200)))
            .await
            .unwrap();
    }
    assert_eq!(store.prune_sessions(1_000).await.unwrap(), 10);
    assert_eq!(store.prune_sessions(i64::MAX).await.unwrap(), 0);
    assert!(store.get_session("forever").await.unwrap().is_some());
    assert!(
        store
            .get_session("forever-revoked")
            .await
            .unwrap()
            .is_some()
    );
}

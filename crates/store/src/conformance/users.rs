//! Conformance cases for users and identity links.

use std::sync::Arc;

use super::{bare_user, conflict, link, names, not_found, record, sample_user, session};
use crate::{IdentityLink, LoginRecord, Store, User, UserState, UserUpdate};

/// `ping` works and `backend` names a known backend.
pub async fn ping_and_backend(store: Arc<dyn Store>) {
    store.ping().await.unwrap();
    assert!(
        matches!(store.backend(), "sqlite" | "postgres"),
        "unexpected backend {:?}",
        store.backend()
    );
}

/// A user reads back exactly as written, by name and by email in any case.
pub async fn user_create_and_get(store: Arc<dyn Store>) {
    let alice = User {
        state: UserState::AuthLimitExceeded,
        uninitialized: true,
        last_login_at: Some(5_000),
        password_changed_at: Some(4_000),
        ..sample_user("alice")
    };
    store.create_user(&alice).await.unwrap();
    let bare = bare_user("bare");
    store.create_user(&bare).await.unwrap();

    assert_eq!(store.get_user("alice").await.unwrap(), Some(alice.clone()));
    assert_eq!(store.get_user("bare").await.unwrap(), Some(bare));
    assert_eq!(
        store.get_user("Alice").await.unwrap(),
        None,
        "names are exact"
    );
    assert_eq!(store.get_user("nobody").await.unwrap(), None);
    assert_eq!(
        store.get_user_by_email("alice@example.org").await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        store.get_user_by_email("ALICE@Example.ORG").await.unwrap(),
        Some(alice)
    );
    assert_eq!(
        store.get_user_by_email("nobody@example.org").await.unwrap(),
        None
    );
}

/// Name, email (case-insensitively) and uid are unique, with messages naming the field;
/// any number of users may have no email.
pub async fn user_conflicts(store: Arc<dyn Store>) {
    store.create_user(&sample_user("alice")).await.unwrap();

    let again = User {
        uid: "other".into(),
        email: None,
        ..sample_user("alice")
    };
    assert_eq!(
        conflict(store.create_user(&again).await),
        r#"user name "alice" is taken"#
    );

    let same_email = User {
        email: Some("ALICE@example.org".into()),
        ..sample_user("bob")
    };
    assert_eq!(
        conflict(store.create_user(&same_email).await),
        r#"email "ALICE@example.org" is already used by another user"#
    );

    let same_uid = User {
        uid: "uid-alice".into(),
        ..sample_user("carol")
    };
    assert_eq!(
        conflict(store.create_user(&same_uid).await),
        r#"user uid "uid-alice" is already used by another user"#
    );

    store.create_user(&bare_user("dave")).await.unwrap();
    store.create_user(&bare_user("erin")).await.unwrap();
    assert_eq!(store.count_users().await.unwrap(), 3);
    assert_eq!(
        store.get_user("bob").await.unwrap(),
        None,
        "a refused user is not half-written"
    );
}

/// Email case folding is Unicode-aware and identical on every backend.
pub async fn user_email_is_case_insensitive_unicode(store: Arc<dyn Store>) {
    let emile = User {
        email: Some("Émile@Exemple.fr".into()),
        ..sample_user("emile")
    };
    store.create_user(&emile).await.unwrap();
    assert_eq!(
        store.get_user_by_email("émile@exemple.FR").await.unwrap(),
        Some(emile)
    );
    let clash = User {
        email: Some("ÉMILE@EXEMPLE.FR".into()),
        ..sample_user("other")
    };
    assert_eq!(
        conflict(store.create_user(&clash).await),
        r#"email "ÉMILE@EXEMPLE.FR" is already used by another user"#
    );
}

/// Users list by name with offset and limit; `count_users` counts them.
pub async fn user_list_and_count(store: Arc<dyn Store>) {
    assert_eq!(store.count_users().await.unwrap(), 0);
    assert!(names(&*store, 0, 10).await.is_empty());
    for name in ["carol", "alice", "dave", "bob"] {
        store.create_user(&bare_user(name)).await.unwrap();
    }
    assert_eq!(
        names(&*store, 0, 10).await,
        ["alice", "bob", "carol", "dave"]
    );
    assert_eq!(names(&*store, 1, 2).await, ["bob", "carol"]);
    assert_eq!(names(&*store, 3, 10).await, ["dave"]);
    assert!(names(&*store, 10, 10).await.is_empty());
    assert!(names(&*store, 0, 0).await.is_empty());
    assert_eq!(
        names(&*store, -5, 2).await,
        ["alice", "bob"],
        "a negative offset counts as 0"
    );
    assert_eq!(store.count_users().await.unwrap(), 4);
}

/// `update_user` changes only the given fields, keeps email unique, and reports a missing user.
pub async fn user_update(store: Arc<dyn Store>) {
    let alice = sample_user("alice");
    store.create_user(&alice).await.unwrap();
    store.create_user(&sample_user("bob")).await.unwrap();

    let nothing = store
        .update_user("alice", &UserUpdate::default())
        .await
        .unwrap();
    assert_eq!(nothing, alice);

    let update = UserUpdate {
        email: Some(Some("Alice@New.io".into())),
        display_name: Some(None),
        groups: Some(vec!["ops".into()]),
        state: Some(UserState::Disabled),
        uninitialized: Some(true),
    };
    let updated = store.update_user("alice", &update).await.unwrap();
    let expected = User {
        email: Some("Alice@New.io".into()),
        display_name: None,
        groups: vec!["ops".into()],
        state: UserState::Disabled,
        uninitialized: true,
        ..alice.clone()
    };
    assert_eq!(updated, expected);
    assert_eq!(
        store.get_user("alice").await.unwrap(),
        Some(expected.clone())
    );
    assert_eq!(
        store.get_user_by_email("alice@new.io").await.unwrap(),
        Some(expected.clone())
    );
    assert_eq!(
        store.get_user_by_email("alice@example.org").await.unwrap(),
        None,
        "the old email is free"
    );

    let steal = UserUpdate {
        email: Some(Some("BOB@EXAMPLE.ORG".into())),
        ..UserUpdate::default()
    };
    assert_eq!(
        conflict(store.update_user("alice", &steal).await),
        r#"email "BOB@EXAMPLE.ORG" is already used by another user"#
    );
    assert_eq!(
        store.get_user("alice").await.unwrap(),
        Some(expected.clone()),
        "a refused update changes nothing"
    );

    let recase = UserUpdate {
        email: Some(Some("ALICE@NEW.IO".into())),
        ..UserUpdate::default()
    };
    assert_eq!(
        store
            .update_user("alice", &recase)
            .await
            .unwrap()
            .email
            .as_deref(),
        Some("ALICE@NEW.IO")
    );

    let clear = UserUpdate {
        email: Some(None),
        ..UserUpdate::default()
    };
    assert_eq!(
        store.update_user("alice", &clear).await.unwrap().email,
        None
    );
    assert_eq!(store.get_user_by_email("alice@new.io").await.unwrap(), None);

    let message = not_found(store.update_user("nobody", &UserUpdate::default()).await);
    assert!(message.contains("nobody"), "{message}");
}

/// `set_password` sets the hash and time and clears `uninitialized`; a successful login record
/// sets the last login time (a failed one does not); `upgrade_password_hash` replaces only the
/// hash it was given.
pub async fn user_password_and_last_login(store: Arc<dyn Store>) {
    let new = User {
        uninitialized: true,
        ..bare_user("alice")
    };
    store.create_user(&new).await.unwrap();
    store
        .set_password(
            "alice",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
            7_000,
        )
        .await
        .unwrap();
    store
        .add_login_record(&record("ok", "alice", 8_000))
        .await
        .unwrap();
    let failed = LoginRecord {
        success: false,
        ..record("failed", "alice", 9_000)
    };
    store.add_login_record(&failed).await.unwrap();
    let alice = store.get_user("alice").await.unwrap().unwrap();
    assert_eq!(
        alice.password_hash.as_deref(),
        Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA")
    );
    assert_eq!(alice.password_changed_at, Some(7_000));
    assert!(!alice.uninitialized);
    assert_eq!(alice.last_login_at, Some(8_000));
    assert_eq!(
        User {
            password_hash: None,
            password_changed_at: None,
            last_login_at: None,
            uninitialized: true,
            ..alice
        },
        new
    );

    not_found(store.set_password("nobody", "x", 1).await);
    // A successful record of a name without an account is kept, and creates no user.
    store
        .add_login_record(&record("nobody", "nobody", 1))
        .await
        .unwrap();
    assert!(store.get_user("nobody").await.unwrap().is_none());

    // An upgrade replaces only the hash it was computed from, and nothing else.
    let argon = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
    let upgraded = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdDI$aGFzaDI";
    assert!(
        !store
            .upgrade_password_hash("alice", "$2a$10$stale", upgraded)
            .await
            .unwrap()
    );
    assert!(
        store
            .upgrade_password_hash("alice", argon, upgraded)
            .await
            .unwrap()
    );
    let after = store.get_user("alice").await.unwrap().unwrap();
    assert_eq!(after.password_hash.as_deref(), Some(upgraded));
    assert_eq!(after.password_changed_at, Some(7_000));
    assert!(
        !store
            .upgrade_password_hash("nobody", argon, upgraded)
            .await
            .unwrap()
    );
}

/// Deleting a user takes its links and login records with it, leaves other users' data and all
/// sessions alone, and frees the name and the identities.
pub async fn user_delete_cascades(store: Arc<dyn Store>) {
    for name in ["alice", "bob"] {
        store.create_user(&sample_user(name)).await.unwrap();
        store
            .link_identity(&link("github", &format!("{name}-gh"), name))
            .await
            .unwrap();
        store
            .add_login_record(&record(&format!("{name}-r1"), name, 10))
            .await
            .unwrap();
        store
            .add_login_record(&record(&format!("{name}-r2"), name, 20))
            .await
            .unwrap();
    }
    store
        .create_session(&session("alice-s", "alice", 100, None))
        .await
        .unwrap();

    assert!(store.delete_user("alice").await.unwrap());
    assert_eq!(store.get_user("alice").await.unwrap(), None);
    assert_eq!(
        store.find_identity("github", "alice-gh").await.unwrap(),
        None
    );
    assert!(store.list_identities("alice").await.unwrap().is_empty());
    assert_eq!(
        store.list_login_records("alice", 0, 10).await.unwrap(),
        (Vec::new(), 0)
    );
    assert!(
        store.get_session("alice-s").await.unwrap().is_some(),
        "sessions are revoked, not deleted, with the user"
    );

    assert!(store.get_user("bob").await.unwrap().is_some());
    assert_eq!(
        store
            .find_identity("github", "bob-gh")
            .await
            .unwrap()
            .map(|l| l.user)
            .as_deref(),
        Some("bob")
    );
    assert_eq!(store.list_login_records("bob", 0, 10).await.unwrap().1, 2);

    assert!(!store.delete_user("alice").await.unwrap(), "already gone");
    store.create_user(&sample_user("alice")).await.unwrap();
    store
        .link_identity(&link("github", "alice-gh", "alice"))
        .await
        .unwrap();
}

/// Links are found by `(provider, upstream_uid)`, listed per user by provider, and removable.
pub async fn identity_link_find_list_unlink(store: Arc<dyn Store>) {
    store.create_user(&sample_user("alice")).await.unwrap();
    store.create_user(&sample_user("bob")).await.unwrap();
    let github = IdentityLink {
        upstream_email: Some("alice@users.noreply.github.com".into()),
        upstream_email_verified: true,
        ..link("github", "123", "alice")
    };
    for l in [
        link("oidc", "sub-1", "alice"),
        github.clone(),
        link("ldap", "uid=alice", "alice"),
        link("oidc", "123", "bob"),
    ] {
        store.link_identity(&l).await.unwrap();
    }

    assert_eq!(
        store.find_identity("github", "123").await.unwrap(),
        Some(github)
    );
    assert_eq!(
        store
            .find_identity("oidc", "123")
            .await
            .unwrap()
            .unwrap()
            .user,
        "bob",
        "the uid is scoped by provider"
    );
    assert_eq!(store.find_identity("github", "999").await.unwrap(), None);
    let providers: Vec<String> = store
        .list_identities("alice")
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.provider)
        .collect();
    assert_eq!(providers, ["github", "ldap", "oidc"]);
    assert!(store.list_identities("nobody").await.unwrap().is_empty());

    assert!(store.unlink_identity("github", "123").await.unwrap());
    assert!(!store.unlink_identity("github", "123").await.unwrap());
    assert_eq!(store.find_identity("github", "123").await.unwrap(), None);
    assert_eq!(store.list_identities("alice").await.unwrap().len(), 2);
}

/// An upstream identity links to one user only; linking to a missing user is `NotFound`.
pub async fn identity_conflicts_and_missing_user(store: Arc<dyn Store>) {
    store.create_user(&sample_user("alice")).await.unwrap();
    store.create_user(&sample_user("bob")).await.unwrap();
    store
        .link_identity(&link("github", "123", "bob"))
        .await
        .unwrap();
    assert_eq!(
        conflict(store.link_identity(&link("github", "123", "alice")).await),
        r#"identity github/123 is already linked to user "bob""#
    );
    assert_eq!(
        conflict(store.link_identity(&link("github", "123", "bob")).await),
        r#"identity github/123 is already linked to user "bob""#
    );
    let message = not_found(store.link_identity(&link("github", "456", "nobody")).await);
    assert!(message.contains("nobody"), "{message}");
    assert_eq!(store.find_identity("github", "456").await.unwrap(), None);
}

//! Conformance cases for federated login: login states, pending registrations, the atomic
//! user-plus-link creation and link re-keying.

use std::sync::Arc;

use super::{bare_user, conflict, link, not_found, race, sample_user};
use crate::{IdentityLink, LoginState, PendingRegistration, Store};

fn login_state(id: &str, expires_at: i64) -> LoginState {
    LoginState {
        id: id.to_owned(),
        provider: "github".to_owned(),
        pkce_verifier: Some("verifier-0123456789".to_owned()),
        nonce: None,
        return_to: Some("/account".to_owned()),
        created_at: 1_000,
        expires_at,
    }
}

fn registration(id: &str, uid: &str, expires_at: i64) -> PendingRegistration {
    PendingRegistration {
        id: id.to_owned(),
        provider: "github".to_owned(),
        upstream_uid: uid.to_owned(),
        upstream_username: Some("octocat".to_owned()),
        upstream_email: Some("octo@example.org".to_owned()),
        upstream_email_verified: true,
        proposed_name: "octocat".to_owned(),
        proposed_email: Some("octo@example.org".to_owned()),
        csrf_token: "csrf-token".to_owned(),
        return_to: None,
        created_at: 1_000,
        expires_at,
        upstream_groups: vec!["dev".to_owned()],
    }
}

/// A login state reads back as written, is taken exactly once (also when expired: the caller
/// decides), and concurrent takers get it at most once between them.
pub async fn login_state_taken_once(store: Arc<dyn Store>) {
    let s = login_state("st-1", 5_000);
    store.create_login_state(&s).await.unwrap();
    conflict(store.create_login_state(&s).await);
    assert_eq!(store.take_login_state("st-1").await.unwrap(), Some(s));
    assert_eq!(store.take_login_state("st-1").await.unwrap(), None);
    assert_eq!(store.take_login_state("nope").await.unwrap(), None);

    let old = login_state("st-old", 10);
    store.create_login_state(&old).await.unwrap();
    assert_eq!(store.take_login_state("st-old").await.unwrap(), Some(old));

    store
        .create_login_state(&login_state("st-race", 5_000))
        .await
        .unwrap();
    let got = race(&store, 8, |store, _| async move {
        store.take_login_state("st-race").await.unwrap().is_some()
    })
    .await;
    assert_eq!(got.iter().filter(|g| **g).count(), 1, "{got:?}");
}

/// A registration is readable until it expires; creating the user consumes it in the same
/// transaction, so it works once; an expired one creates nothing.
pub async fn registration_creates_one_user(store: Arc<dyn Store>) {
    let reg = registration("reg-1", "42", 5_000);
    store.create_registration(&reg).await.unwrap();
    assert_eq!(
        store.get_registration("reg-1", 4_999).await.unwrap(),
        Some(reg.clone())
    );
    assert_eq!(store.get_registration("reg-1", 5_000).await.unwrap(), None);

    let octo = bare_user("octo");
    let l = link("github", "42", "octo");
    store
        .create_linked_user(&octo, &l, Some("reg-1"), 2_000)
        .await
        .unwrap();
    assert_eq!(store.get_user("octo").await.unwrap(), Some(octo));
    assert_eq!(store.find_identity("github", "42").await.unwrap(), Some(l));
    assert_eq!(store.get_registration("reg-1", 2_000).await.unwrap(), None);

    let again = bare_user("octo2");
    let msg = not_found(
        store
            .create_linked_user(&again, &link("github", "42", "octo2"), Some("reg-1"), 2_000)
            .await,
    );
    assert_eq!(msg, "the registration has expired or was already used");
    assert_eq!(store.get_user("octo2").await.unwrap(), None);

    store
        .create_registration(&registration("reg-late", "43", 3_000))
        .await
        .unwrap();
    not_found(
        store
            .create_linked_user(
                &again,
                &link("github", "43", "octo2"),
                Some("reg-late"),
                3_000,
            )
            .await,
    );
    assert_eq!(store.get_user("octo2").await.unwrap(), None);

    store
        .create_registration(&registration("reg-other", "44", 9_000))
        .await
        .unwrap();
    let msg = conflict(
        store
            .create_linked_user(
                &again,
                &link("github", "45", "octo2"),
                Some("reg-other"),
                3_000,
            )
            .await,
    );
    assert_eq!(msg, "the registration belongs to another identity");
    assert!(
        store
            .get_registration("reg-other", 3_000)
            .await
            .unwrap()
            .is_some(),
        "a refused attempt leaves the registration in place"
    );
}

/// User and link are created together or not at all: a taken name leaves no link (and the
/// registration usable), a taken identity leaves no user.
pub async fn linked_user_is_all_or_nothing(store: Arc<dyn Store>) {
    store.create_user(&sample_user("alice")).await.unwrap();
    store
        .create_registration(&registration("reg-1", "7", 9_000))
        .await
        .unwrap();
    let other_alice = crate::User {
        uid: "another-uid".into(),
        ..bare_user("alice")
    };
    let msg = conflict(
        store
            .create_linked_user(
                &other_alice,
                &link("github", "7", "alice"),
                Some("reg-1"),
                2_000,
            )
            .await,
    );
    assert_eq!(msg, r#"user name "alice" is taken"#);
    assert_eq!(store.find_identity("github", "7").await.unwrap(), None);
    assert!(
        store
            .get_registration("reg-1", 2_000)
            .await
            .unwrap()
            .is_some()
    );

    store
        .link_identity(&link("github", "8", "alice"))
        .await
        .unwrap();
    let msg = conflict(
        store
            .create_linked_user(&bare_user("bob"), &link("github", "8", "bob"), None, 2_000)
            .await,
    );
    assert_eq!(
        msg,
        r#"identity github/8 is already linked to user "alice""#
    );
    assert_eq!(store.get_user("bob").await.unwrap(), None);

    let with_email = crate::User {
        email: Some("ALICE@example.org".into()),
        ..bare_user("carol")
    };
    conflict(
        store
            .create_linked_user(&with_email, &link("github", "9", "carol"), None, 2_000)
            .await,
    );
    assert_eq!(store.get_user("carol").await.unwrap(), None);
    assert_eq!(store.find_identity("github", "9").await.unwrap(), None);

    // Many first logins of one identity at once: exactly one user.
    let made = race(&store, 6, |store, i| async move {
        let name = format!("racer{i}");
        store
            .create_linked_user(&bare_user(&name), &link("github", "99", &name), None, 2_000)
            .await
            .is_ok()
    })
    .await;
    assert_eq!(made.iter().filter(|m| **m).count(), 1, "{made:?}");
    assert_eq!(store.count_users().await.unwrap(), 2);
}

/// A link moves to a new upstream id only for its own user and only when the new id is free.
pub async fn identity_rekey(store: Arc<dyn Store>) {
    store.create_user(&sample_user("alice")).await.unwrap();
    store.create_user(&sample_user("bob")).await.unwrap();
    store
        .link_identity(&link("github", "octocat", "alice"))
        .await
        .unwrap();
    store
        .link_identity(&link("github", "55", "bob"))
        .await
        .unwrap();

    let moved = IdentityLink {
        upstream_uid: "101".into(),
        upstream_username: Some("octocat".into()),
        upstream_email: Some("o@example.org".into()),
        upstream_email_verified: true,
        ..link("github", "101", "alice")
    };
    let wrong_user = IdentityLink {
        user: "bob".into(),
        ..moved.clone()
    };
    assert!(!store.rekey_identity("octocat", &wrong_user).await.unwrap());
    assert!(!store.rekey_identity("missing", &moved).await.unwrap());
    assert!(store.rekey_identity("octocat", &moved).await.unwrap());
    assert_eq!(
        store.find_identity("github", "octocat").await.unwrap(),
        None
    );
    let got = store.find_identity("github", "101").await.unwrap().unwrap();
    assert_eq!(got.user, "alice");
    assert_eq!(got.upstream_username.as_deref(), Some("octocat"));
    assert_eq!(got.upstream_email.as_deref(), Some("o@example.org"));
    assert!(
        got.upstream_email_verified,
        "the verified flag moves with the link"
    );

    let onto_bob = IdentityLink {
        upstream_uid: "55".into(),
        ..moved.clone()
    };
    let msg = conflict(store.rekey_identity("101", &onto_bob).await);
    assert_eq!(msg, r#"identity github/55 is already linked to user "bob""#);
}

/// Pruning removes expired login states and registrations only.
pub async fn federation_prune(store: Arc<dyn Store>) {
    store
        .create_login_state(&login_state("old", 100))
        .await
        .unwrap();
    store
        .create_login_state(&login_state("new", 900))
        .await
        .unwrap();
    store
        .create_registration(&registration("r-old", "1", 100))
        .await
        .unwrap();
    store
        .create_registration(&registration("r-new", "2", 900))
        .await
        .unwrap();
    assert_eq!(store.prune_federation(500).await.unwrap(), 2);
    assert_eq!(store.take_login_state("old").await.unwrap(), None);
    assert!(store.take_login_state("new").await.unwrap().is_some());
    assert!(
        store
            .get_registration("r-new", 500)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.prune_federation(500).await.unwrap(), 0);
}

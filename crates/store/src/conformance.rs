//! The conformance suite every [`Store`] backend must pass, in the manner of Dex's
//! `storage/conformance`: each case is a public async function taking a fresh, empty store, and
//! [`conformance_tests!`](crate::conformance_tests) turns the whole list into one `#[tokio::test]`
//! per case in a backend's test file:
//!
//! ```ignore
//! async fn harness<F, Fut>(name: &str, case: F)
//! where
//!     F: FnOnce(std::sync::Arc<dyn Store>) -> Fut,
//!     Fut: std::future::Future<Output = ()> + Send + 'static,
//! {
//!     let store = /* a fresh, empty store */;
//!     case(store).await;
//! }
//! portcullis_store::conformance_tests!(harness);
//! ```
//!
//! Time is always passed in, so lock expiry, session expiry and pruning are tested without sleeping.

use std::sync::Arc;

use crate::{
    IdentityLink, LockoutDecision, LockoutPolicy, LoginRecord, Revocation, Session, Store, StoreError, StoreResult, User, UserState,
    UserUpdate,
};

/// Expands to one `#[tokio::test]` per conformance case, each calling
/// `$harness(case_name, |store| case(store))`. See the [module docs](crate::conformance).
#[macro_export]
macro_rules! conformance_tests {
    ($harness:path) => {
        $crate::conformance_tests!(@cases $harness;
            ping_and_backend,
            user_create_and_get,
            user_conflicts,
            user_email_is_case_insensitive_unicode,
            user_list_and_count,
            user_update,
            user_password_and_last_login,
            user_delete_cascades,
            identity_link_find_list_unlink,
            identity_conflicts_and_missing_user,
            login_records_order_and_total,
            login_records_prune_by_age,
            login_records_prune_by_count,
            login_records_prune_many_users,
            session_create_get_list,
            session_advance_refresh_cas,
            session_advance_refresh_race,
            session_revoke_and_log,
            session_touch_keeps_latest,
            session_prune,
            lockout_locks_after_max_failures,
            lockout_lock_expires_after_window,
            lockout_window_rolls_over,
            lockout_release_gives_slot_back,
            lockout_clear,
            lockout_concurrent_reservations,
            lockout_prune,
        );
    };
    (@cases $harness:path; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $harness(stringify!($case), |store| async move { $crate::conformance::$case(store).await }).await;
            }
        )+
    };
}

// ---------------------------------------------------------------------------------------------
// Fixtures and checks
// ---------------------------------------------------------------------------------------------

/// A fully populated user named `name`.
pub fn sample_user(name: &str) -> User {
    User {
        name: name.to_owned(),
        uid: format!("uid-{name}"),
        email: Some(format!("{name}@example.org")),
        display_name: Some(format!("{name} (display)")),
        groups: vec!["zeta".to_owned(), "alpha".to_owned()],
        state: UserState::Active,
        password_hash: Some("$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy".to_owned()),
        uninitialized: false,
        created_at: 1_000,
        last_login_at: None,
        password_changed_at: None,
    }
}

/// A user with every optional field empty.
fn bare_user(name: &str) -> User {
    User {
        email: None,
        display_name: None,
        groups: Vec::new(),
        password_hash: None,
        ..sample_user(name)
    }
}

fn link(provider: &str, upstream_uid: &str, user: &str) -> IdentityLink {
    IdentityLink {
        provider: provider.to_owned(),
        upstream_uid: upstream_uid.to_owned(),
        user: user.to_owned(),
        upstream_username: Some(format!("{user}-upstream")),
        upstream_email: None,
        created_at: 2_000,
    }
}

fn record(id: &str, user: &str, at: i64) -> LoginRecord {
    LoginRecord {
        id: id.to_owned(),
        user: user.to_owned(),
        at,
        login_type: "Token".to_owned(),
        provider: String::new(),
        source_ip: "10.0.0.1".to_owned(),
        user_agent: "kubectl/v1.30".to_owned(),
        success: true,
        reason: "authenticated successfully".to_owned(),
    }
}

fn session(id: &str, user: &str, created_at: i64, expires_at: Option<i64>) -> Session {
    Session {
        id: id.to_owned(),
        user: user.to_owned(),
        client_id: "kubesphere".to_owned(),
        provider: String::new(),
        created_at,
        expires_at,
        last_seen_at: created_at,
        refresh_generation: 0,
        revoked_at: None,
        source_ip: "10.0.0.2".to_owned(),
        user_agent: "Mozilla/5.0".to_owned(),
    }
}

#[track_caller]
fn conflict<T: std::fmt::Debug>(result: StoreResult<T>) -> String {
    match result {
        Err(StoreError::Conflict(message)) => message,
        other => panic!("expected StoreError::Conflict, got {other:?}"),
    }
}

#[track_caller]
fn not_found<T: std::fmt::Debug>(result: StoreResult<T>) -> String {
    match result {
        Err(StoreError::NotFound(message)) => message,
        other => panic!("expected StoreError::NotFound, got {other:?}"),
    }
}

async fn names(store: &dyn Store, offset: i64, limit: i64) -> Vec<String> {
    store.list_users(offset, limit).await.unwrap().into_iter().map(|u| u.name).collect()
}

async fn record_ids(store: &dyn Store, user: &str) -> Vec<String> {
    store.list_login_records(user, 0, 1_000).await.unwrap().0.into_iter().map(|r| r.id).collect()
}

/// Runs `task(store, i)` for `i in 0..n` at the same moment. Connection pools open connections
/// lazily, so a burst of pings first makes sure the tasks really run in parallel on the database.
async fn race<T, F, Fut>(store: &Arc<dyn Store>, n: usize, task: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Arc<dyn Store>, usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let mut warm = tokio::task::JoinSet::new();
    for _ in 0..n {
        let store = store.clone();
        warm.spawn(async move { store.ping().await.unwrap() });
    }
    warm.join_all().await;
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let (barrier, run) = (barrier.clone(), task(store.clone(), i));
        tasks.spawn(async move {
            barrier.wait().await;
            run.await
        });
    }
    tasks.join_all().await
}

fn ids(revocations: &[Revocation]) -> Vec<&str> {
    revocations.iter().map(|r| r.session_id.as_str()).collect()
}

// ---------------------------------------------------------------------------------------------
// Basics and users
// ---------------------------------------------------------------------------------------------

/// `ping` works and `backend` names a known backend.
pub async fn ping_and_backend(store: Arc<dyn Store>) {
    store.ping().await.unwrap();
    assert!(matches!(store.backend(), "sqlite" | "postgres"), "unexpected backend {:?}", store.backend());
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
    assert_eq!(store.get_user("Alice").await.unwrap(), None, "names are exact");
    assert_eq!(store.get_user("nobody").await.unwrap(), None);
    assert_eq!(store.get_user_by_email("alice@example.org").await.unwrap(), Some(alice.clone()));
    assert_eq!(store.get_user_by_email("ALICE@Example.ORG").await.unwrap(), Some(alice));
    assert_eq!(store.get_user_by_email("nobody@example.org").await.unwrap(), None);
}

/// Name, email (case-insensitively) and uid are unique, with messages naming the field;
/// any number of users may have no email.
pub async fn user_conflicts(store: Arc<dyn Store>) {
    store.create_user(&sample_user("alice")).await.unwrap();

    let again = User { uid: "other".into(), email: None, ..sample_user("alice") };
    assert_eq!(conflict(store.create_user(&again).await), r#"user name "alice" is taken"#);

    let same_email = User { email: Some("ALICE@example.org".into()), ..sample_user("bob") };
    assert_eq!(
        conflict(store.create_user(&same_email).await),
        r#"email "ALICE@example.org" is already used by another user"#
    );

    let same_uid = User { uid: "uid-alice".into(), ..sample_user("carol") };
    assert_eq!(conflict(store.create_user(&same_uid).await), r#"user uid "uid-alice" is already used by another user"#);

    store.create_user(&bare_user("dave")).await.unwrap();
    store.create_user(&bare_user("erin")).await.unwrap();
    assert_eq!(store.count_users().await.unwrap(), 3);
    assert_eq!(store.get_user("bob").await.unwrap(), None, "a refused user is not half-written");
}

/// Email case folding is Unicode-aware and identical on every backend.
pub async fn user_email_is_case_insensitive_unicode(store: Arc<dyn Store>) {
    let emile = User { email: Some("Émile@Exemple.fr".into()), ..sample_user("emile") };
    store.create_user(&emile).await.unwrap();
    assert_eq!(store.get_user_by_email("émile@exemple.FR").await.unwrap(), Some(emile));
    let clash = User { email: Some("ÉMILE@EXEMPLE.FR".into()), ..sample_user("other") };
    assert_eq!(conflict(store.create_user(&clash).await), r#"email "ÉMILE@EXEMPLE.FR" is already used by another user"#);
}

/// Users list by name with offset and limit; `count_users` counts them.
pub async fn user_list_and_count(store: Arc<dyn Store>) {
    assert_eq!(store.count_users().await.unwrap(), 0);
    assert!(names(&*store, 0, 10).await.is_empty());
    for name in ["carol", "alice", "dave", "bob"] {
        store.create_user(&bare_user(name)).await.unwrap();
    }
    assert_eq!(names(&*store, 0, 10).await, ["alice", "bob", "carol", "dave"]);
    assert_eq!(names(&*store, 1, 2).await, ["bob", "carol"]);
    assert_eq!(names(&*store, 3, 10).await, ["dave"]);
    assert!(names(&*store, 10, 10).await.is_empty());
    assert!(names(&*store, 0, 0).await.is_empty());
    assert_eq!(names(&*store, -5, 2).await, ["alice", "bob"], "a negative offset counts as 0");
    assert_eq!(store.count_users().await.unwrap(), 4);
}

/// `update_user` changes only the given fields, keeps email unique, and reports a missing user.
pub async fn user_update(store: Arc<dyn Store>) {
    let alice = sample_user("alice");
    store.create_user(&alice).await.unwrap();
    store.create_user(&sample_user("bob")).await.unwrap();

    let nothing = store.update_user("alice", &UserUpdate::default()).await.unwrap();
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
    assert_eq!(store.get_user("alice").await.unwrap(), Some(expected.clone()));
    assert_eq!(store.get_user_by_email("alice@new.io").await.unwrap(), Some(expected.clone()));
    assert_eq!(store.get_user_by_email("alice@example.org").await.unwrap(), None, "the old email is free");

    let steal = UserUpdate { email: Some(Some("BOB@EXAMPLE.ORG".into())), ..UserUpdate::default() };
    assert_eq!(
        conflict(store.update_user("alice", &steal).await),
        r#"email "BOB@EXAMPLE.ORG" is already used by another user"#
    );
    assert_eq!(store.get_user("alice").await.unwrap(), Some(expected.clone()), "a refused update changes nothing");

    let recase = UserUpdate { email: Some(Some("ALICE@NEW.IO".into())), ..UserUpdate::default() };
    assert_eq!(store.update_user("alice", &recase).await.unwrap().email.as_deref(), Some("ALICE@NEW.IO"));

    let clear = UserUpdate { email: Some(None), ..UserUpdate::default() };
    assert_eq!(store.update_user("alice", &clear).await.unwrap().email, None);
    assert_eq!(store.get_user_by_email("alice@new.io").await.unwrap(), None);

    let message = not_found(store.update_user("nobody", &UserUpdate::default()).await);
    assert!(message.contains("nobody"), "{message}");
}

/// `set_password` sets the hash and time and clears `uninitialized`; `set_last_login` sets the time.
pub async fn user_password_and_last_login(store: Arc<dyn Store>) {
    let new = User { uninitialized: true, ..bare_user("alice") };
    store.create_user(&new).await.unwrap();
    store.set_password("alice", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA", 7_000).await.unwrap();
    store.set_last_login("alice", 8_000).await.unwrap();
    let alice = store.get_user("alice").await.unwrap().unwrap();
    assert_eq!(alice.password_hash.as_deref(), Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"));
    assert_eq!(alice.password_changed_at, Some(7_000));
    assert!(!alice.uninitialized);
    assert_eq!(alice.last_login_at, Some(8_000));
    assert_eq!(User { password_hash: None, password_changed_at: None, last_login_at: None, uninitialized: true, ..alice }, new);

    not_found(store.set_password("nobody", "x", 1).await);
    not_found(store.set_last_login("nobody", 1).await);
}

/// Deleting a user takes its links and login records with it, leaves other users' data and all
/// sessions alone, and frees the name and the identities.
pub async fn user_delete_cascades(store: Arc<dyn Store>) {
    for name in ["alice", "bob"] {
        store.create_user(&sample_user(name)).await.unwrap();
        store.link_identity(&link("github", &format!("{name}-gh"), name)).await.unwrap();
        store.add_login_record(&record(&format!("{name}-r1"), name, 10)).await.unwrap();
        store.add_login_record(&record(&format!("{name}-r2"), name, 20)).await.unwrap();
    }
    store.create_session(&session("alice-s", "alice", 100, None)).await.unwrap();

    assert!(store.delete_user("alice").await.unwrap());
    assert_eq!(store.get_user("alice").await.unwrap(), None);
    assert_eq!(store.find_identity("github", "alice-gh").await.unwrap(), None);
    assert!(store.list_identities("alice").await.unwrap().is_empty());
    assert_eq!(store.list_login_records("alice", 0, 10).await.unwrap(), (Vec::new(), 0));
    assert!(store.get_session("alice-s").await.unwrap().is_some(), "sessions are revoked, not deleted, with the user");

    assert!(store.get_user("bob").await.unwrap().is_some());
    assert_eq!(store.find_identity("github", "bob-gh").await.unwrap().map(|l| l.user).as_deref(), Some("bob"));
    assert_eq!(store.list_login_records("bob", 0, 10).await.unwrap().1, 2);

    assert!(!store.delete_user("alice").await.unwrap(), "already gone");
    store.create_user(&sample_user("alice")).await.unwrap();
    store.link_identity(&link("github", "alice-gh", "alice")).await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Identity links
// ---------------------------------------------------------------------------------------------

/// Links are found by `(provider, upstream_uid)`, listed per user by provider, and removable.
pub async fn identity_link_find_list_unlink(store: Arc<dyn Store>) {
    store.create_user(&sample_user("alice")).await.unwrap();
    store.create_user(&sample_user("bob")).await.unwrap();
    let github = IdentityLink { upstream_email: Some("alice@users.noreply.github.com".into()), ..link("github", "123", "alice") };
    for l in [link("oidc", "sub-1", "alice"), github.clone(), link("ldap", "uid=alice", "alice"), link("oidc", "123", "bob")] {
        store.link_identity(&l).await.unwrap();
    }

    assert_eq!(store.find_identity("github", "123").await.unwrap(), Some(github));
    assert_eq!(store.find_identity("oidc", "123").await.unwrap().unwrap().user, "bob", "the uid is scoped by provider");
    assert_eq!(store.find_identity("github", "999").await.unwrap(), None);
    let providers: Vec<String> = store.list_identities("alice").await.unwrap().into_iter().map(|l| l.provider).collect();
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
    store.link_identity(&link("github", "123", "bob")).await.unwrap();
    assert_eq!(
        conflict(store.link_identity(&link("github", "123", "alice")).await),
        r#"identity github/123 is already linked to user "bob""#
    );
    assert_eq!(conflict(store.link_identity(&link("github", "123", "bob")).await), r#"identity github/123 is already linked to user "bob""#);
    let message = not_found(store.link_identity(&link("github", "456", "nobody")).await);
    assert!(message.contains("nobody"), "{message}");
    assert_eq!(store.find_identity("github", "456").await.unwrap(), None);
}

// ---------------------------------------------------------------------------------------------
// Login records
// ---------------------------------------------------------------------------------------------

/// Records list newest first (ties by id, newest id first) with the user's total.
pub async fn login_records_order_and_total(store: Arc<dyn Store>) {
    let failed = LoginRecord {
        success: false,
        reason: "invalid credentials".into(),
        provider: "ldap".into(),
        login_type: "Basic".into(),
        ..record("r3", "alice", 200)
    };
    for r in [record("r1", "alice", 100), record("r2", "alice", 300), failed.clone(), record("r4", "alice", 300), record("b1", "bob", 150)] {
        store.add_login_record(&r).await.unwrap();
    }
    assert_eq!(record_ids(&*store, "alice").await, ["r4", "r2", "r3", "r1"]);
    let (page, total) = store.list_login_records("alice", 1, 2).await.unwrap();
    assert_eq!(page.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["r2", "r3"]);
    assert_eq!(page[1], failed);
    assert_eq!(total, 4);
    assert_eq!(store.list_login_records("alice", 10, 10).await.unwrap(), (Vec::new(), 4));
    assert_eq!(store.list_login_records("nobody", 0, 10).await.unwrap(), (Vec::new(), 0));
    assert_eq!(store.list_login_records("bob", 0, 10).await.unwrap().1, 1);
    conflict(store.add_login_record(&record("r1", "alice", 999)).await);
}

/// Pruning by age deletes records strictly older than the cut-off, for every user.
pub async fn login_records_prune_by_age(store: Arc<dyn Store>) {
    for at in (100..=1_000).step_by(100) {
        store.add_login_record(&record(&format!("a{at:05}"), "alice", at)).await.unwrap();
    }
    store.add_login_record(&record("b1", "bob", 50)).await.unwrap();
    store.add_login_record(&record("b2", "bob", 150)).await.unwrap();

    assert_eq!(store.prune_login_records(500, 0).await.unwrap(), 6);
    assert_eq!(record_ids(&*store, "alice").await, ["a01000", "a00900", "a00800", "a00700", "a00600", "a00500"]);
    assert!(record_ids(&*store, "bob").await.is_empty());
    assert_eq!(store.prune_login_records(500, 0).await.unwrap(), 0);
    assert_eq!(store.prune_login_records(i64::MIN, 0).await.unwrap(), 0, "no limits, nothing to do");
}

/// Pruning by count keeps each user's newest records (ties broken by id), together with the age rule.
pub async fn login_records_prune_by_count(store: Arc<dyn Store>) {
    // alice: a01..a10 at 1..=9, with a09 and a10 both at 9 (a10 is the newer by id).
    for i in 1..=10 {
        store.add_login_record(&record(&format!("a{i:02}"), "alice", i.min(9))).await.unwrap();
    }
    for i in 1..=3 {
        store.add_login_record(&record(&format!("b{i}"), "bob", 100 + i)).await.unwrap();
    }
    store.add_login_record(&record("c1", "carol", 1)).await.unwrap();

    assert_eq!(store.prune_login_records(i64::MIN, 3).await.unwrap(), 7);
    assert_eq!(record_ids(&*store, "alice").await, ["a10", "a09", "a08"]);
    assert_eq!(record_ids(&*store, "bob").await, ["b3", "b2", "b1"]);
    assert_eq!(record_ids(&*store, "carol").await, ["c1"]);

    assert_eq!(store.prune_login_records(i64::MIN, 1).await.unwrap(), 4);
    assert_eq!(record_ids(&*store, "alice").await, ["a10"]);
    assert_eq!(record_ids(&*store, "bob").await, ["b3"]);

    // Both rules: age first (carol's c1 at 1 goes), then the count.
    store.add_login_record(&record("b4", "bob", 104)).await.unwrap();
    assert_eq!(store.prune_login_records(5, 1).await.unwrap(), 2);
    assert_eq!(record_ids(&*store, "alice").await, ["a10"]);
    assert_eq!(record_ids(&*store, "bob").await, ["b4"]);
    assert!(record_ids(&*store, "carol").await.is_empty());
}

/// Pruning by count works across many users (more than one page of users and one batch of rows).
pub async fn login_records_prune_many_users(store: Arc<dyn Store>) {
    for u in 0..12 {
        for i in 0..4 {
            store.add_login_record(&record(&format!("u{u:02}-{i}"), &format!("user{u:02}"), i)).await.unwrap();
        }
    }
    store.add_login_record(&record("empty-name", "", 1)).await.unwrap();
    store.add_login_record(&record("empty-name-2", "", 2)).await.unwrap();
    assert_eq!(store.prune_login_records(i64::MIN, 1).await.unwrap(), 12 * 3 + 1);
    for u in 0..12 {
        assert_eq!(record_ids(&*store, &format!("user{u:02}")).await, [format!("u{u:02}-3")]);
    }
    assert_eq!(record_ids(&*store, "").await, ["empty-name-2"]);
}

// ---------------------------------------------------------------------------------------------
// Sessions and the revocation log
// ---------------------------------------------------------------------------------------------

/// Sessions read back exactly; active ones list newest first, without revoked or expired ones.
pub async fn session_create_get_list(store: Arc<dyn Store>) {
    let s1 = session("s1", "alice", 100, Some(10_000));
    let s2 = Session { provider: "github".into(), refresh_generation: 4, ..session("s2", "alice", 200, None) };
    let s3 = session("s3", "alice", 300, Some(500));
    let s4 = Session { revoked_at: Some(450), ..session("s4", "alice", 400, Some(10_000)) };
    let b1 = session("b1", "bob", 50, None);
    for s in [&s1, &s2, &s3, &s4, &b1] {
        store.create_session(s).await.unwrap();
    }
    assert_eq!(store.get_session("s2").await.unwrap(), Some(s2.clone()));
    assert_eq!(store.get_session("s4").await.unwrap(), Some(s4));
    assert_eq!(store.get_session("nope").await.unwrap(), None);
    assert_eq!(conflict(store.create_session(&session("s1", "bob", 1, None)).await), r#"session "s1" already exists"#);

    assert_eq!(store.list_active_sessions("alice", 1_000).await.unwrap(), [s2.clone(), s1.clone()]);
    assert_eq!(store.list_active_sessions("alice", 499).await.unwrap(), [s3, s2.clone(), s1.clone()]);
    assert_eq!(store.list_active_sessions("alice", 500).await.unwrap(), [s2, s1], "expired at its expiry time");
    assert!(store.list_active_sessions("nobody", 0).await.unwrap().is_empty());
}

/// `advance_refresh` is a compare-and-set on the generation that refuses stale, revoked, expired
/// and missing sessions.
pub async fn session_advance_refresh_cas(store: Arc<dyn Store>) {
    store.create_session(&session("s", "alice", 100, Some(10_000))).await.unwrap();

    assert!(store.advance_refresh("s", 0, Some(20_000), 500).await.unwrap());
    let s = store.get_session("s").await.unwrap().unwrap();
    assert_eq!((s.refresh_generation, s.expires_at, s.last_seen_at), (1, Some(20_000), 500));

    assert!(!store.advance_refresh("s", 0, Some(30_000), 600).await.unwrap(), "a reused refresh token is refused");
    let s = store.get_session("s").await.unwrap().unwrap();
    assert_eq!((s.refresh_generation, s.expires_at, s.last_seen_at), (1, Some(20_000), 500));

    assert!(store.advance_refresh("s", 1, None, 400).await.unwrap());
    let s = store.get_session("s").await.unwrap().unwrap();
    assert_eq!((s.refresh_generation, s.expires_at, s.last_seen_at), (2, None, 500), "last_seen_at never goes back");

    assert!(!store.advance_refresh("nope", 0, None, 1).await.unwrap());

    store.create_session(&session("old", "alice", 100, Some(1_000))).await.unwrap();
    assert!(!store.advance_refresh("old", 0, Some(5_000), 1_000).await.unwrap(), "an expired session stays dead");
    assert!(store.advance_refresh("old", 0, Some(5_000), 999).await.unwrap());

    assert!(store.revoke_session("s", 700).await.unwrap());
    assert!(!store.advance_refresh("s", 2, None, 800).await.unwrap(), "a revoked session cannot refresh");
    assert_eq!(store.get_session("s").await.unwrap().unwrap().refresh_generation, 2);
}

/// Of many concurrent refreshes with the same generation, exactly one wins.
pub async fn session_advance_refresh_race(store: Arc<dyn Store>) {
    store.create_session(&session("s", "alice", 100, None)).await.unwrap();
    let outcomes = race(&store, 20, |store, i| async move {
        store.advance_refresh("s", 0, Some(100_000 + i as i64), 200).await.unwrap()
    })
    .await;
    let winners = outcomes.into_iter().filter(|won| *won).count();
    assert_eq!(winners, 1);
    assert_eq!(store.get_session("s").await.unwrap().unwrap().refresh_generation, 1);
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
    assert!(!store.revoke_session("a1", 150).await.unwrap(), "already revoked");
    assert!(!store.revoke_session("nope", 150).await.unwrap());
    assert_eq!(store.get_session("a1").await.unwrap().unwrap().revoked_at, Some(100), "the first revocation time stays");
    let first = store.revocations_since(0, 100).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!((first[0].session_id.as_str(), first[0].expires_at), ("a1", Some(5_000)));
    assert!(first[0].seq > 0);
    assert_eq!(store.revocation_head().await.unwrap(), first[0].seq);

    assert_eq!(store.revoke_user_sessions("alice", Some("a3"), 200).await.unwrap(), ["a2"]);
    assert_eq!(store.revoke_user_sessions("alice", None, 300).await.unwrap(), ["a3"]);
    assert!(store.revoke_user_sessions("alice", None, 400).await.unwrap().is_empty());
    assert!(store.revoke_user_sessions("nobody", None, 400).await.unwrap().is_empty());
    assert_eq!(store.get_session("a2").await.unwrap().unwrap().revoked_at, Some(200));
    assert_eq!(store.get_session("b1").await.unwrap().unwrap().revoked_at, None, "other users are untouched");
    assert!(store.list_active_sessions("alice", 0).await.unwrap().is_empty());

    let log = store.revocations_since(0, 100).await.unwrap();
    assert_eq!(ids(&log), ["a1", "a2", "a3"]);
    assert!(log.windows(2).all(|w| w[0].seq < w[1].seq), "sequence numbers increase: {log:?}");
    assert_eq!(log[1].expires_at, None);
    assert_eq!(ids(&store.revocations_since(log[0].seq, 100).await.unwrap()), ["a2", "a3"]);
    assert_eq!(ids(&store.revocations_since(0, 2).await.unwrap()), ["a1", "a2"]);
    assert!(store.revocations_since(log[2].seq, 100).await.unwrap().is_empty());
    assert_eq!(store.revocation_head().await.unwrap(), log[2].seq);

    assert_eq!(ids(&store.live_revocations(0).await.unwrap()), ["a1", "a2", "a3"]);
    assert_eq!(ids(&store.live_revocations(5_000).await.unwrap()), ["a2", "a3"], "a1 expired at 5000");
    assert_eq!(ids(&store.live_revocations(8_000).await.unwrap()), ["a2"], "a never-expiring entry stays live");

    let mut revoked = store.revoke_user_sessions("bob", None, 500).await.unwrap();
    revoked.sort();
    assert_eq!(revoked, ["b1"]);
    assert_eq!(ids(&store.revocations_since(log[2].seq, 100).await.unwrap()), ["b1"]);
}

/// `touch_sessions` only ever moves `last_seen_at` forward, merges duplicates, ignores unknown ids.
pub async fn session_touch_keeps_latest(store: Arc<dyn Store>) {
    store.create_session(&session("s1", "alice", 1_000, None)).await.unwrap();
    store.create_session(&session("s2", "alice", 1_000, None)).await.unwrap();
    store.touch_sessions(&[]).await.unwrap();
    store
        .touch_sessions(&[("s1".into(), 2_000), ("s2".into(), 500), ("nope".into(), 9_000), ("s1".into(), 1_500)])
        .await
        .unwrap();
    assert_eq!(store.get_session("s1").await.unwrap().unwrap().last_seen_at, 2_000);
    assert_eq!(store.get_session("s2").await.unwrap().unwrap().last_seen_at, 1_000);
    store.touch_sessions(&[("s1".into(), 1_800), ("s2".into(), 3_000)]).await.unwrap();
    assert_eq!(store.get_session("s1").await.unwrap().unwrap().last_seen_at, 2_000);
    assert_eq!(store.get_session("s2").await.unwrap().unwrap().last_seen_at, 3_000);
    assert_eq!(store.get_session("nope").await.unwrap(), None, "touch never creates sessions");
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

    assert_eq!(store.prune_sessions(100).await.unwrap(), 0, "expiry at the cut-off is not before it");
    assert_eq!(store.prune_sessions(1_000).await.unwrap(), 3, "2 sessions + 1 log entry");
    assert_eq!(store.get_session("expired").await.unwrap(), None);
    assert_eq!(store.get_session("expired-revoked").await.unwrap(), None);
    assert!(store.get_session("forever").await.unwrap().is_some());
    assert_eq!(store.get_session("forever-revoked").await.unwrap().unwrap().revoked_at, Some(50));
    assert_eq!(ids(&store.live_revocations(1_000).await.unwrap()), ["forever-revoked", "live"]);

    assert_eq!(store.prune_sessions(10_001).await.unwrap(), 2, "live's session and its log entry");
    assert_eq!(ids(&store.revocations_since(0, 100).await.unwrap()), ["forever-revoked"]);
    assert_eq!(ids(&store.live_revocations(i64::MAX).await.unwrap()), ["forever-revoked"]);

    // The newest entry was pruned; a new one must still get a higher number than it had.
    store.create_session(&session("next", "alice", 6, None)).await.unwrap();
    assert!(store.revoke_session("next", 60).await.unwrap());
    let next = store.revocations_since(head, 100).await.unwrap();
    assert_eq!(ids(&next), ["next"]);
    assert!(next[0].seq > head);

    // Many expired rows (more than one batch).
    for i in 0..10 {
        store.create_session(&session(&format!("bulk{i}"), "bob", 7, Some(200))).await.unwrap();
    }
    assert_eq!(store.prune_sessions(1_000).await.unwrap(), 10);
    assert_eq!(store.prune_sessions(i64::MAX).await.unwrap(), 0);
    assert!(store.get_session("forever").await.unwrap().is_some());
    assert!(store.get_session("forever-revoked").await.unwrap().is_some());
}

// ---------------------------------------------------------------------------------------------
// Lockout
// ---------------------------------------------------------------------------------------------

const MINUTE: i64 = 60_000;

async fn reserve_and_fail(store: &dyn Store, key: &str, policy: LockoutPolicy, now: i64) -> Option<i64> {
    assert_eq!(store.lockout_reserve(key, policy, now).await.unwrap(), LockoutDecision::Allowed, "{key} at {now}");
    store.lockout_fail(key, policy, now).await.unwrap()
}

/// The `max_failures`-th failure in a window locks the key for a window from that failure.
pub async fn lockout_locks_after_max_failures(store: Arc<dyn Store>) {
    let policy = LockoutPolicy { max_failures: 3, window_ms: MINUTE };
    assert_eq!(store.lockout_status("user:alice", 0).await.unwrap(), None);
    assert_eq!(reserve_and_fail(&*store, "user:alice", policy, 1_000).await, None);
    assert_eq!(reserve_and_fail(&*store, "user:alice", policy, 2_000).await, None);
    assert_eq!(store.lockout_status("user:alice", 2_000).await.unwrap(), None);
    assert_eq!(reserve_and_fail(&*store, "user:alice", policy, 3_000).await, Some(3_000 + MINUTE));
    assert_eq!(store.lockout_status("user:alice", 3_001).await.unwrap(), Some(3_000 + MINUTE));
    assert_eq!(
        store.lockout_reserve("user:alice", policy, 3_001).await.unwrap(),
        LockoutDecision::Locked { until: 3_000 + MINUTE }
    );
    assert_eq!(store.lockout_reserve("user:bob", policy, 3_001).await.unwrap(), LockoutDecision::Allowed, "keys are independent");
    assert_eq!(store.lockout_status("ip:10.0.0.1", 3_001).await.unwrap(), None);
}

/// A lock ends at its time (judged by the `now` passed in) and a fresh window starts.
pub async fn lockout_lock_expires_after_window(store: Arc<dyn Store>) {
    let policy = LockoutPolicy { max_failures: 2, window_ms: 1_000 };
    assert_eq!(reserve_and_fail(&*store, "k", policy, 10_000).await, None);
    assert_eq!(reserve_and_fail(&*store, "k", policy, 10_400).await, Some(11_400));
    assert_eq!(store.lockout_reserve("k", policy, 11_399).await.unwrap(), LockoutDecision::Locked { until: 11_400 });
    assert_eq!(store.lockout_status("k", 11_399).await.unwrap(), Some(11_400));
    assert_eq!(store.lockout_status("k", 11_400).await.unwrap(), None);
    assert_eq!(reserve_and_fail(&*store, "k", policy, 11_400).await, None, "the old failures are forgotten");
    assert_eq!(reserve_and_fail(&*store, "k", policy, 11_500).await, Some(12_500));
}

/// Failures older than the window no longer count.
pub async fn lockout_window_rolls_over(store: Arc<dyn Store>) {
    let policy = LockoutPolicy { max_failures: 3, window_ms: 1_000 };
    for key in ["inside", "after"] {
        assert_eq!(reserve_and_fail(&*store, key, policy, 0).await, None);
        assert_eq!(reserve_and_fail(&*store, key, policy, 500).await, None);
    }
    assert_eq!(reserve_and_fail(&*store, "inside", policy, 999).await, Some(1_999));
    assert_eq!(reserve_and_fail(&*store, "after", policy, 1_000).await, None, "a new window started at 1000");
    assert_eq!(reserve_and_fail(&*store, "after", policy, 1_100).await, None);
    assert_eq!(reserve_and_fail(&*store, "after", policy, 1_999).await, Some(2_999));
}

/// Released reservations give their slot back; reservations in flight hold theirs.
pub async fn lockout_release_gives_slot_back(store: Arc<dyn Store>) {
    let policy = LockoutPolicy { max_failures: 2, window_ms: 1_000 };
    for _ in 0..5 {
        assert_eq!(store.lockout_reserve("k", policy, 0).await.unwrap(), LockoutDecision::Allowed);
        store.lockout_release("k").await.unwrap();
    }
    assert_eq!(store.lockout_status("k", 0).await.unwrap(), None);

    // Two attempts in flight fill the window without locking it.
    assert_eq!(store.lockout_reserve("k", policy, 10).await.unwrap(), LockoutDecision::Allowed);
    assert_eq!(store.lockout_reserve("k", policy, 20).await.unwrap(), LockoutDecision::Allowed);
    assert_eq!(store.lockout_reserve("k", policy, 30).await.unwrap(), LockoutDecision::Locked { until: 1_000 });
    assert_eq!(store.lockout_status("k", 30).await.unwrap(), None, "full, but not locked");
    store.lockout_release("k").await.unwrap();
    assert_eq!(store.lockout_reserve("k", policy, 40).await.unwrap(), LockoutDecision::Allowed);
    // One of the two in flight succeeds, the other fails: one failure, no lock.
    store.lockout_release("k").await.unwrap();
    assert_eq!(store.lockout_fail("k", policy, 50).await.unwrap(), None);
    assert_eq!(store.lockout_status("k", 50).await.unwrap(), None);
    assert_eq!(reserve_and_fail(&*store, "k", policy, 60).await, Some(1_060));
    // A failure while another attempt is still in flight: the reserved slot counts, so the
    // window is full and the failure locks.
    let policy3 = LockoutPolicy { max_failures: 3, window_ms: 1_000 };
    assert_eq!(reserve_and_fail(&*store, "w", policy3, 0).await, None);
    assert_eq!(store.lockout_reserve("w", policy3, 1).await.unwrap(), LockoutDecision::Allowed);
    assert_eq!(store.lockout_reserve("w", policy3, 2).await.unwrap(), LockoutDecision::Allowed);
    assert_eq!(store.lockout_fail("w", policy3, 3).await.unwrap(), Some(1_003));

    // Releasing never goes below zero, and releasing an unknown key is fine.
    store.lockout_release("unknown").await.unwrap();
    assert_eq!(store.lockout_reserve("z", policy, 0).await.unwrap(), LockoutDecision::Allowed);
    for _ in 0..3 {
        store.lockout_release("z").await.unwrap();
    }
    assert_eq!(store.lockout_reserve("z", policy, 1).await.unwrap(), LockoutDecision::Allowed);
    assert_eq!(store.lockout_reserve("z", policy, 2).await.unwrap(), LockoutDecision::Allowed);
    assert_eq!(store.lockout_reserve("z", policy, 3).await.unwrap(), LockoutDecision::Locked { until: 1_000 });
}

/// Clearing a key unlocks it at once.
pub async fn lockout_clear(store: Arc<dyn Store>) {
    let policy = LockoutPolicy { max_failures: 1, window_ms: MINUTE };
    assert_eq!(reserve_and_fail(&*store, "user:alice", policy, 0).await, Some(MINUTE));
    assert_eq!(store.lockout_status("user:alice", 1).await.unwrap(), Some(MINUTE));
    store.lockout_clear("user:alice").await.unwrap();
    assert_eq!(store.lockout_status("user:alice", 1).await.unwrap(), None);
    assert_eq!(store.lockout_reserve("user:alice", policy, 1).await.unwrap(), LockoutDecision::Allowed);
    store.lockout_clear("unknown").await.unwrap();
}

/// 50 simultaneous reservations against `max_failures = 5` give exactly 5 `Allowed`.
pub async fn lockout_concurrent_reservations(store: Arc<dyn Store>) {
    let policy = LockoutPolicy { max_failures: 5, window_ms: MINUTE };
    let now = 1_000;
    let decisions = race(&store, 50, |store, _| async move { store.lockout_reserve("user:alice", policy, now).await.unwrap() }).await;
    let allowed = decisions.iter().filter(|d| **d == LockoutDecision::Allowed).count();
    assert_eq!(allowed, 5, "{decisions:?}");
    assert!(decisions.iter().all(|d| matches!(d, LockoutDecision::Allowed | LockoutDecision::Locked { until: 61_000 })));

    // The five attempts fail at once: the key ends up locked.
    let locks = race(&store, 5, |store, i| async move { store.lockout_fail("user:alice", policy, now + i as i64).await.unwrap() }).await;
    assert!(locks.iter().any(Option::is_some), "{locks:?}");
    assert!(store.lockout_status("user:alice", now + 5).await.unwrap().is_some());
}

/// Pruning drops counters whose window is over and that are not locked.
pub async fn lockout_prune(store: Arc<dyn Store>) {
    let policy = LockoutPolicy { max_failures: 2, window_ms: 1_000 };
    assert_eq!(reserve_and_fail(&*store, "a", policy, 0).await, None);
    assert_eq!(reserve_and_fail(&*store, "b", policy, 0).await, None);
    assert_eq!(reserve_and_fail(&*store, "b", policy, 500).await, Some(1_500));
    assert_eq!(store.lockout_reserve("c", policy, 900).await.unwrap(), LockoutDecision::Allowed);

    assert_eq!(store.prune_lockouts(999).await.unwrap(), 0);
    assert_eq!(store.prune_lockouts(1_000).await.unwrap(), 1);
    assert_eq!(store.lockout_status("b", 1_000).await.unwrap(), Some(1_500), "a locked key is kept");
    assert_eq!(store.prune_lockouts(1_500).await.unwrap(), 1);
    assert_eq!(store.lockout_status("b", 1_000).await.unwrap(), None);
    assert_eq!(store.prune_lockouts(1_900).await.unwrap(), 1);
    assert_eq!(store.prune_lockouts(i64::MAX).await.unwrap(), 0);
    assert_eq!(reserve_and_fail(&*store, "a", policy, 2_000).await, None, "a pruned key starts afresh");
}

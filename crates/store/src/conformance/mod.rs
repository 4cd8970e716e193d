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
    IdentityLink, LoginRecord, Revocation, Session, Store, StoreError, StoreResult, User, UserState,
};

mod federation;
mod lockout;
mod oidc;
mod records;
mod sessions;
mod users;

pub use federation::*;
pub use lockout::*;
pub use oidc::*;
pub use records::*;
pub use sessions::*;
pub use users::*;

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
            session_with_user,
            session_advance_refresh_cas,
            session_advance_refresh_race,
            session_revoke_and_log,
            session_revoke_unstored,
            session_touch_keeps_latest,
            session_prune,
            cancelled_calls_leave_no_connection_in_a_transaction,
            concurrent_calls_share_the_connections,
            lockout_locks_after_max_failures,
            lockout_lock_expires_after_window,
            lockout_window_rolls_over,
            lockout_release_gives_slot_back,
            finish_login_is_all_or_nothing,
            lockout_rows_of_a_login_rush_never_deadlock,
            lockout_keys_all_or_none,
            lockout_clear,
            lockout_concurrent_reservations,
            lockout_prune,
            job_lease_is_exclusive_until_expiry,
            login_state_taken_once,
            registration_creates_one_user,
            linked_user_is_all_or_nothing,
            identity_rekey,
            federation_prune,
            oidc_signing_keys_generate_once,
            oidc_code_taken_once_and_replay_detected,
            granted_session_is_all_or_nothing,
            oidc_grants_and_consents,
            oidc_prune,
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

// Fixtures and checks shared by the cases.

/// A fully populated user named `name`.
pub fn sample_user(name: &str) -> User {
    User {
        name: name.to_owned(),
        uid: format!("uid-{name}"),
        email: Some(format!("{name}@example.org")),
        display_name: Some(format!("{name} (display)")),
        groups: vec!["zeta".to_owned(), "alpha".to_owned()],
        state: UserState::Active,
        password_hash: Some(
            "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy".to_owned(),
        ),
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
        upstream_email_verified: false,
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
        upstream_groups: Vec::new(),
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
    store
        .list_users(offset, limit)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect()
}

async fn record_ids(store: &dyn Store, user: &str) -> Vec<String> {
    store
        .list_login_records(user, 0, 1_000)
        .await
        .unwrap()
        .0
        .into_iter()
        .map(|r| r.id)
        .collect()
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

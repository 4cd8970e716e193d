//! Storage for federated login: browser login states, pending registrations, and the two writes
//! that must be atomic (a user created together with its identity link, and a link re-keyed to a
//! new upstream id).
//!
//! Design: both kinds of short-lived row are *taken* with one `DELETE ... RETURNING`, so each is
//! used at most once even when several replicas race for it; expired rows read as absent and are
//! removed by [`FederationStore::prune_federation`].

mod postgres;
mod sqlite;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::common::{self, RowExt};
use crate::{IdentityLink, StoreError, StoreResult, UnixMillis, User};

/// A browser login in flight at an identity provider (between `/login/{provider}` and the callback).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginState {
    /// Random 128-bit id: the OAuth `state` parameter and the login-state cookie's value.
    pub id: String,
    /// Identity provider `name`.
    pub provider: String,
    /// The PKCE verifier whose challenge was sent upstream, if the provider supports PKCE.
    pub pkce_verifier: Option<String>,
    /// The OpenID Connect nonce sent upstream, if any.
    pub nonce: Option<String>,
    /// Where to send the browser after the login (already checked to be local).
    pub return_to: Option<String>,
    /// Creation time.
    pub created_at: UnixMillis,
    /// After this the state is refused.
    pub expires_at: UnixMillis,
}

impl std::fmt::Debug for LoginState {
    // The id is a bearer value and the verifier a secret: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginState")
            .field("provider", &self.provider)
            .field("return_to", &self.return_to)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A first login under `mappingMethod: manual`, waiting for the user to confirm a name.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRegistration {
    /// Random id: the registration cookie's value (browser) or the pre-registration session id
    /// (ks-console).
    pub id: String,
    /// Identity provider `name`.
    pub provider: String,
    /// The upstream's stable user id the new user will be linked to.
    pub upstream_uid: String,
    /// Upstream user name.
    pub upstream_username: Option<String>,
    /// Upstream email.
    pub upstream_email: Option<String>,
    /// Whether the provider reported `upstream_email` as verified.
    pub upstream_email_verified: bool,
    /// User name proposed on the confirm page.
    pub proposed_name: String,
    /// Email proposed on the confirm page.
    pub proposed_email: Option<String>,
    /// Random token the confirm form must echo (CSRF protection).
    pub csrf_token: String,
    /// Where to send the browser after the registration.
    pub return_to: Option<String>,
    /// Creation time.
    pub created_at: UnixMillis,
    /// After this the registration is refused.
    pub expires_at: UnixMillis,
    /// Groups the provider reported (after `allowedGroups` and `groupsPrefix`), for the first
    /// session of the confirmed user.
    pub upstream_groups: Vec<String>,
}

impl std::fmt::Debug for PendingRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingRegistration")
            .field("provider", &self.provider)
            .field("upstream_uid", &self.upstream_uid)
            .field("proposed_name", &self.proposed_name)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Login states, pending registrations and the atomic writes of federated login.
#[async_trait]
pub trait FederationStore: Send + Sync {
    /// Stores a new login state. [`StoreError::Conflict`] if the id exists.
    async fn create_login_state(&self, state: &LoginState) -> StoreResult<()>;
    /// Atomically deletes and returns the login state `id`, expired or not (the caller checks
    /// `expires_at`, so it can say "expired" rather than "unknown"). `None` when absent or
    /// already taken: of concurrent callers exactly one gets the row.
    async fn take_login_state(&self, id: &str) -> StoreResult<Option<LoginState>>;
    /// Stores a pending registration. [`StoreError::Conflict`] if the id exists.
    async fn create_registration(&self, registration: &PendingRegistration) -> StoreResult<()>;
    /// The pending registration `id` if it exists and has not expired at `now`.
    async fn get_registration(
        &self,
        id: &str,
        now: UnixMillis,
    ) -> StoreResult<Option<PendingRegistration>>;
    /// In ONE transaction: consumes the pending registration `registration` (when given; it must
    /// exist, be unexpired at `now` and be for `link`'s identity), creates `user`, and links
    /// `link` to it. Either everything happens or nothing does.
    ///
    /// Errors: [`StoreError::NotFound`] when the registration is absent, used or expired;
    /// [`StoreError::Conflict`] when the registration is for another identity, the user name or
    /// email is taken, or the identity is already linked (the message says which).
    async fn create_linked_user(
        &self,
        user: &User,
        link: &IdentityLink,
        registration: Option<&str>,
        now: UnixMillis,
    ) -> StoreResult<()>;
    /// Moves the link `(provider, old_uid)` of `user` to `new.upstream_uid`, storing `new`'s
    /// upstream user name and email. Returns false when no such link of that user exists;
    /// [`StoreError::Conflict`] when `(provider, new uid)` is already linked.
    async fn rekey_identity(&self, old_uid: &str, new: &IdentityLink) -> StoreResult<bool>;
    /// Deletes login states and pending registrations that expired before `now`; returns how many.
    async fn prune_federation(&self, now: UnixMillis) -> StoreResult<u64>;
}

const INSERT_USER: &str = "INSERT INTO users (name, uid, email, email_key, display_name, groups, state, password_hash, \
     uninitialized, created_at, last_login_at, password_changed_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

const INSERT_LINK: &str = "INSERT INTO identity_links (provider, upstream_uid, user_name, upstream_username, \
     upstream_email, created_at, upstream_email_verified) VALUES ($1, $2, $3, $4, $5, $6, $7)";

const INSERT_LOGIN_STATE: &str = "INSERT INTO login_states (id, provider, pkce_verifier, nonce, return_to, created_at, \
     expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";

const TAKE_LOGIN_STATE: &str = "DELETE FROM login_states WHERE id = $1 \
     RETURNING id, provider, pkce_verifier, nonce, return_to, created_at, expires_at";

const INSERT_REGISTRATION: &str = "INSERT INTO pending_registrations (id, provider, upstream_uid, upstream_username, \
     upstream_email, proposed_name, proposed_email, csrf_token, return_to, created_at, expires_at, upstream_groups, \
     upstream_email_verified) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";

const SELECT_REGISTRATION: &str = "SELECT id, provider, upstream_uid, upstream_username, upstream_email, proposed_name, \
     proposed_email, csrf_token, return_to, created_at, expires_at, upstream_groups, upstream_email_verified \
     FROM pending_registrations \
     WHERE id = $1 AND expires_at > $2";

const CONSUME_REGISTRATION: &str = "DELETE FROM pending_registrations WHERE id = $1 AND expires_at > $2 \
     RETURNING provider, upstream_uid";

const REKEY: &str = "UPDATE identity_links SET upstream_uid = $3, upstream_username = $5, upstream_email = $6, \
     upstream_email_verified = $7 \
     WHERE provider = $1 AND upstream_uid = $2 AND user_name = $4";

fn login_state_from_row(r: &impl RowExt) -> StoreResult<LoginState> {
    Ok(LoginState {
        id: r.text("id")?,
        provider: r.text("provider")?,
        pkce_verifier: r.opt_text("pkce_verifier")?,
        nonce: r.opt_text("nonce")?,
        return_to: r.opt_text("return_to")?,
        created_at: r.int("created_at")?,
        expires_at: r.int("expires_at")?,
    })
}

fn registration_from_row(r: &impl RowExt) -> StoreResult<PendingRegistration> {
    Ok(PendingRegistration {
        id: r.text("id")?,
        provider: r.text("provider")?,
        upstream_uid: r.text("upstream_uid")?,
        upstream_username: r.opt_text("upstream_username")?,
        upstream_email: r.opt_text("upstream_email")?,
        upstream_email_verified: r.flag("upstream_email_verified")?,
        proposed_name: r.text("proposed_name")?,
        proposed_email: r.opt_text("proposed_email")?,
        csrf_token: r.text("csrf_token")?,
        return_to: r.opt_text("return_to")?,
        created_at: r.int("created_at")?,
        expires_at: r.int("expires_at")?,
        upstream_groups: crate::common::groups_from_json(
            &r.text("upstream_groups")?,
            "pending registration",
        )?,
    })
}

/// Checks what [`CONSUME_REGISTRATION`] returned against the link about to be created.
fn check_consumed(consumed: Option<(String, String)>, link: &IdentityLink) -> StoreResult<()> {
    match consumed {
        None => Err(StoreError::NotFound(
            "the registration has expired or was already used".into(),
        )),
        Some((provider, uid)) if provider == link.provider && uid == link.upstream_uid => Ok(()),
        Some(_) => Err(StoreError::Conflict(
            "the registration belongs to another identity".into(),
        )),
    }
}

/// Maps a failed link insert inside [`FederationStore::create_linked_user`].
fn link_conflict(err: sqlx::Error, link: &IdentityLink, user: &User) -> StoreError {
    match common::unique_violation(&err) {
        Some(common::Unique::Identity) => common::identity_conflict(link, None),
        Some(_) => common::user_conflict(err, user),
        None => err.into(),
    }
}

fn unique_or(err: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match common::unique_violation(&err) {
        Some(_) => StoreError::Conflict(what()),
        None => err.into(),
    }
}

//! What a signed-in person may do to their own account (the `/account` page): see it, end their
//! own sessions, unlink their own identities and change their own password.
//!
//! Every operation takes the user name of the caller's verified session and acts only on that
//! user's data: a session or identity id that belongs to someone else reads as absent.

use portcullis_store::{IdentityLink, LoginRecord, Session, User};

use crate::engine::{Engine, RequestContext};
use crate::error::CoreError;
use crate::lockout::Reserved;
use crate::password::{PasswordProblem, check_new_password, hash_password, verify_password};

/// A user's account as the account page shows it.
#[derive(Debug, Clone)]
pub struct AccountOverview {
    /// The user.
    pub user: User,
    /// Linked identities, in link order.
    pub identities: Vec<IdentityLink>,
    /// Live sessions, newest first.
    pub sessions: Vec<Session>,
    /// The newest login records, newest first.
    pub logins: Vec<LoginRecord>,
}

/// Why revoking a session or unlinking an identity from the account page was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The session id is not a live session of this user (someone else's reads the same).
    #[error("no such active session of this account")]
    NoSuchSession,
    /// The identity is not linked to this user.
    #[error("no such identity is linked to this account")]
    NoSuchIdentity,
    /// Unlinking would leave the account without a way to sign in.
    #[error("this identity is the only way to sign in to this account")]
    OnlyWayIn,
    /// The server failed, or the user went away meanwhile.
    #[error(transparent)]
    Core(#[from] CoreError),
}

impl From<portcullis_store::StoreError> for AccountError {
    fn from(e: portcullis_store::StoreError) -> Self {
        AccountError::Core(e.into())
    }
}

/// Why a password change was refused.
#[derive(Debug, thiserror::Error)]
pub enum PasswordChangeError {
    /// The account has no local password (it signs in through identity providers only).
    #[error("this account has no password; it signs in through an identity provider")]
    NoPassword,
    /// The current password is wrong (counted like a failed login).
    #[error("the current password is incorrect")]
    WrongPassword,
    /// Too many failures: locked for this many seconds.
    #[error("too many failed attempts; try again in {0} seconds")]
    Locked(i64),
    /// The new password breaks the password rules.
    #[error(transparent)]
    Invalid(PasswordProblem),
    /// The server failed.
    #[error(transparent)]
    Core(#[from] CoreError),
}

impl From<portcullis_store::StoreError> for PasswordChangeError {
    fn from(e: portcullis_store::StoreError) -> Self {
        PasswordChangeError::Core(e.into())
    }
}

impl Engine {
    /// The account page's data: the user, links, live sessions and the `history` newest logins.
    pub async fn account_overview(
        &self,
        user: &str,
        history: i64,
    ) -> Result<AccountOverview, CoreError> {
        let u = self.get_user(user).await?;
        let identities = self.store.list_identities(user).await?;
        let mut sessions = self.store.list_active_sessions(user, self.now_ms()).await?;
        sessions.retain(|s| !self.revocations.is_revoked(&s.id));
        sessions.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        let (logins, _) = self.store.list_login_records(user, 0, history).await?;
        Ok(AccountOverview {
            user: u,
            identities,
            sessions,
            logins,
        })
    }

    /// Revokes the session `session_id` of `user`. [`AccountError::NoSuchSession`] when it is
    /// not a live session of that user (another user's session id is never revoked here).
    pub async fn revoke_own_session(
        &self,
        user: &str,
        session_id: &str,
    ) -> Result<(), AccountError> {
        match self.store.get_session(session_id).await? {
            Some(s) if s.user == user && s.revoked_at.is_none() => {
                self.revoke_session(session_id).await?;
                Ok(())
            }
            _ => Err(AccountError::NoSuchSession),
        }
    }

    /// Unlinks the identity `(provider, uid)` of `user`, unless it is the account's only way to
    /// sign in (no password and no other link): that would lock the person out for good.
    pub async fn unlink_own_identity(
        &self,
        user: &str,
        provider: &str,
        uid: &str,
    ) -> Result<(), AccountError> {
        let u = self.get_user(user).await?;
        let links = self.store.list_identities(user).await?;
        if !links
            .iter()
            .any(|l| l.provider == provider && l.upstream_uid == uid)
        {
            return Err(AccountError::NoSuchIdentity);
        }
        if u.password_hash.is_none() && links.len() <= 1 {
            return Err(AccountError::OnlyWayIn);
        }
        Ok(self.unlink_identity(user, provider, uid).await?)
    }

    /// Changes the password of a local account after checking the current one (under the same
    /// per-account lockout as logins), then revokes every session of the user: the caller signs
    /// in again with the new password. Returns the number of sessions revoked.
    pub async fn change_own_password(
        &self,
        user: &str,
        current: &str,
        new: &str,
        ctx: &RequestContext,
    ) -> Result<usize, PasswordChangeError> {
        let u = self.get_user(user).await?;
        let Some(hash) = u.password_hash.as_deref() else {
            return Err(PasswordChangeError::NoPassword);
        };
        let policy = self.settings().user_lockout;
        let key = format!("user:{user}");
        let now = self.now_ms();
        let slot = match self.reserve_slot(&[(&key, policy)], now).await? {
            Reserved::Slot(slot) => slot,
            Reserved::Locked { until, .. } => {
                return Err(PasswordChangeError::Locked(((until - now) + 999) / 1000));
            }
        };
        if !verify_password(current, Some(hash)).await {
            slot.fail(self.now_ms()).await?;
            self.record(
                user,
                "Token",
                "",
                ctx,
                false,
                "incorrect password (password change)",
            )
            .await;
            return Err(PasswordChangeError::WrongPassword);
        }
        slot.release().await?;
        check_new_password(new).map_err(PasswordChangeError::Invalid)?;
        let hash = hash_password(new).await?;
        self.store.set_password(user, &hash, self.now_ms()).await?;
        Ok(self.revoke_user(user).await?)
    }
}

#[cfg(test)]
#[path = "account_tests.rs"]
mod tests;

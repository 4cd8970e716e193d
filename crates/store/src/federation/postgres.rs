//! [`FederationStore`] for PostgreSQL: one pool; the statements that must succeed together
//! share one transaction, and `DELETE ... RETURNING` takes a row exactly once across replicas.

use async_trait::async_trait;

use super::{
    CONSUME_REGISTRATION, FederationStore, INSERT_LINK, INSERT_LOGIN_STATE, INSERT_REGISTRATION,
    INSERT_USER, LoginState, PendingRegistration, REKEY, SELECT_REGISTRATION, TAKE_LOGIN_STATE,
    check_consumed, link_conflict, login_state_from_row, registration_from_row, unique_or,
};
use crate::common;
use crate::postgres::PostgresStore;
use crate::{IdentityLink, IdentityStore, StoreResult, UnixMillis, User};

#[async_trait]
impl FederationStore for PostgresStore {
    async fn create_login_state(&self, s: &LoginState) -> StoreResult<()> {
        sqlx::query(INSERT_LOGIN_STATE)
            .bind(&s.id)
            .bind(&s.provider)
            .bind(&s.pkce_verifier)
            .bind(&s.nonce)
            .bind(&s.return_to)
            .bind(s.created_at)
            .bind(s.expires_at)
            .execute(&self.pool)
            .await
            .map_err(|e| unique_or(e, || "login state already exists".into()))?;
        Ok(())
    }

    async fn take_login_state(&self, id: &str) -> StoreResult<Option<LoginState>> {
        let row = sqlx::query(TAKE_LOGIN_STATE)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(login_state_from_row).transpose()
    }

    async fn create_registration(&self, r: &PendingRegistration) -> StoreResult<()> {
        sqlx::query(INSERT_REGISTRATION)
            .bind(&r.id)
            .bind(&r.provider)
            .bind(&r.upstream_uid)
            .bind(&r.upstream_username)
            .bind(&r.upstream_email)
            .bind(&r.proposed_name)
            .bind(&r.proposed_email)
            .bind(&r.csrf_token)
            .bind(&r.return_to)
            .bind(r.created_at)
            .bind(r.expires_at)
            .bind(crate::common::groups_json(&r.upstream_groups))
            .bind(r.upstream_email_verified)
            .execute(&self.pool)
            .await
            .map_err(|e| unique_or(e, || "registration already exists".into()))?;
        Ok(())
    }

    async fn get_registration(
        &self,
        id: &str,
        now: UnixMillis,
    ) -> StoreResult<Option<PendingRegistration>> {
        let row = sqlx::query(SELECT_REGISTRATION)
            .bind(id)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(registration_from_row).transpose()
    }

    async fn create_linked_user(
        &self,
        user: &User,
        link: &IdentityLink,
        registration: Option<&str>,
        now: UnixMillis,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin(None).await?;
        if let Some(id) = registration {
            let consumed: Option<(String, String)> = sqlx::query_as(CONSUME_REGISTRATION)
                .bind(id)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
            check_consumed(consumed, link)?;
        }
        sqlx::query(INSERT_USER)
            .bind(&user.name)
            .bind(&user.uid)
            .bind(&user.email)
            .bind(common::email_key(user.email.as_deref()))
            .bind(&user.display_name)
            .bind(common::groups_json(&user.groups))
            .bind(user.state.as_str())
            .bind(&user.password_hash)
            .bind(user.uninitialized)
            .bind(user.created_at)
            .bind(user.last_login_at)
            .bind(user.password_changed_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| common::user_conflict(e, user))?;
        let inserted = sqlx::query(INSERT_LINK)
            .bind(&link.provider)
            .bind(&link.upstream_uid)
            .bind(&user.name)
            .bind(&link.upstream_username)
            .bind(&link.upstream_email)
            .bind(link.created_at)
            .bind(link.upstream_email_verified)
            .execute(&mut *tx)
            .await;
        if let Err(e) = inserted {
            let err = link_conflict(e, link, user);
            tx.rollback().await?;
            return Err(match err {
                crate::StoreError::Conflict(_) => {
                    let owner = self
                        .find_identity(&link.provider, &link.upstream_uid)
                        .await?
                        .map(|l| l.user);
                    common::identity_conflict(link, owner)
                }
                other => other,
            });
        }
        tx.commit().await?;
        Ok(())
    }

    async fn rekey_identity(&self, old_uid: &str, new: &IdentityLink) -> StoreResult<bool> {
        let done = sqlx::query(REKEY)
            .bind(&new.provider)
            .bind(old_uid)
            .bind(&new.upstream_uid)
            .bind(&new.user)
            .bind(&new.upstream_username)
            .bind(&new.upstream_email)
            .bind(new.upstream_email_verified)
            .execute(&self.pool)
            .await;
        match done {
            Ok(done) => Ok(done.rows_affected() == 1),
            Err(e) if common::unique_violation(&e).is_some() => {
                let owner = self
                    .find_identity(&new.provider, &new.upstream_uid)
                    .await?
                    .map(|l| l.user);
                Err(common::identity_conflict(new, owner))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn prune_federation(&self, now: UnixMillis) -> StoreResult<u64> {
        let states = sqlx::query("DELETE FROM login_states WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected();
        let registrations = sqlx::query("DELETE FROM pending_registrations WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(states + registrations)
    }
}

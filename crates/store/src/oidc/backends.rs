//! [`OidcStore`] for both backends. The SQL in the parent module is valid for SQLite and
//! PostgreSQL alike, so one macro writes both implementations: SQLite writes on its single writer
//! connection and reads from the reader pool, PostgreSQL uses its one pool.

use async_trait::async_trait;

use super::*;
use crate::{StoreResult, UnixMillis};

/// Implements [`OidcStore`] for a backend, given how it reaches its write and read pools. The
/// SQL above is valid for both dialects, so both backends share one implementation.
macro_rules! impl_oidc_store {
    ($store:ty, $w:ident, $r:ident) => {
        #[async_trait]
        impl OidcStore for $store {
            async fn insert_signing_key(&self, k: &SigningKey) -> StoreResult<bool> {
                let done = sqlx::query(INSERT_KEY)
                    .bind(&k.kid)
                    .bind(&k.alg)
                    .bind(k.generation)
                    .bind(&k.private_key)
                    .bind(&k.public_jwk)
                    .bind(k.created_at)
                    .bind(k.activates_at)
                    .execute(&self.$w)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
                let rows = sqlx::query(LIST_KEYS).fetch_all(&self.$r).await?;
                rows.iter().map(key_from_row).collect()
            }

            async fn delete_signing_key(&self, kid: &str) -> StoreResult<bool> {
                let done = sqlx::query(DELETE_KEY).bind(kid).execute(&self.$w).await?;
                Ok(done.rows_affected() == 1)
            }

            async fn create_auth_code(&self, c: &AuthCode) -> StoreResult<()> {
                sqlx::query(INSERT_CODE)
                    .bind(&c.code_hash)
                    .bind(&c.client_id)
                    .bind(&c.redirect_uri)
                    .bind(c.redirect_uri_given)
                    .bind(&c.code_challenge)
                    .bind(&c.nonce)
                    .bind(&c.scopes)
                    .bind(&c.user)
                    .bind(&c.auth_session)
                    .bind(c.auth_time)
                    .bind(&c.session_id)
                    .bind(c.created_at)
                    .bind(c.expires_at)
                    .execute(&self.$w)
                    .await
                    .map_err(code_conflict)?;
                Ok(())
            }

            async fn take_auth_code(&self, hash: &str, now: UnixMillis) -> StoreResult<CodeTake> {
                let row = sqlx::query(TAKE_CODE)
                    .bind(hash)
                    .bind(now)
                    .fetch_optional(&self.$w)
                    .await?;
                if let Some(row) = row {
                    return Ok(CodeTake::Taken(Box::new(code_from_row(&row)?)));
                }
                let replayed: Option<(String,)> = sqlx::query_as(MARK_REPLAYED)
                    .bind(hash)
                    .bind(now)
                    .fetch_optional(&self.$w)
                    .await?;
                Ok(match replayed {
                    Some((session_id,)) => CodeTake::Replayed { session_id },
                    None => CodeTake::Unknown,
                })
            }

            async fn auth_code_replayed(&self, hash: &str) -> StoreResult<bool> {
                // The writer: the answer must see a replay marked an instant ago.
                let row: Option<(i64,)> = sqlx::query_as(IS_REPLAYED)
                    .bind(hash)
                    .fetch_optional(&self.$w)
                    .await?;
                Ok(row.is_some())
            }

            async fn put_oidc_grant(&self, g: &OidcGrant) -> StoreResult<()> {
                bind_grant!(sqlx::query(PUT_GRANT), g)
                    .execute(&self.$w)
                    .await?;
                Ok(())
            }

            async fn get_oidc_grant(&self, session_id: &str) -> StoreResult<Option<OidcGrant>> {
                let row = sqlx::query(GET_GRANT)
                    .bind(session_id)
                    .fetch_optional(&self.$r)
                    .await?;
                row.as_ref().map(grant_from_row).transpose()
            }

            async fn get_consent(&self, user: &str, client: &str) -> StoreResult<Option<Consent>> {
                let row = sqlx::query(GET_CONSENT)
                    .bind(user)
                    .bind(client)
                    .fetch_optional(&self.$r)
                    .await?;
                row.as_ref().map(consent_from_row).transpose()
            }

            async fn put_consent(&self, c: &Consent) -> StoreResult<()> {
                sqlx::query(PUT_CONSENT)
                    .bind(&c.user)
                    .bind(&c.client_id)
                    .bind(&c.scopes)
                    .bind(c.granted_at)
                    .execute(&self.$w)
                    .await?;
                Ok(())
            }

            async fn prune_oidc(&self, codes_before: UnixMillis) -> StoreResult<u64> {
                let mut n = 0;
                for (sql, bind) in [
                    (PRUNE_CODES, true),
                    (PRUNE_GRANTS, false),
                    (PRUNE_CONSENTS, false),
                ] {
                    let q = sqlx::query(sql);
                    let q = if bind { q.bind(codes_before) } else { q };
                    n += q.execute(&self.$w).await?.rows_affected();
                }
                Ok(n)
            }
        }
    };
}

impl_oidc_store!(crate::sqlite::SqliteStore, writer, reader);
impl_oidc_store!(crate::postgres::PostgresStore, pool, pool);

//! KubeSphere's Redis token keys, for a Portcullis running next to ks-apiservers that share one
//! Redis (spec §6.4): ks-apiserver accepts a token only while the key
//! `kubesphere:user:<name>:token:<jwt>` exists. So when KubeSphere's top-level `redis:` block is
//! configured, every access and refresh token Portcullis issues is also written there (value the
//! JWT, TTL the token's lifetime), and revoking a session deletes its keys.
//!
//! Design decision: Portcullis revokes sessions, KubeSphere revokes keys. A small Redis set per
//! session (`portcullis:kubesphere-keys:<session id>`, same TTL as the longest token in it)
//! remembers which KubeSphere keys belong to the session, so a revocation deletes exactly those
//! keys without the `KEYS` scan KubeSphere itself uses. Tokens that never expire
//! (`accessTokenMaxAge: 0`, member clusters) are not written, as in KubeSphere.
//!
//! Failures are best effort: a token is still valid for Portcullis when the write fails (the
//! ks-apiservers then refuse it until the next login); every failure is logged and counted in
//! `portcullis_redis_errors_total{op="kubesphere_*"}`.

use crate::engine::{Engine, IssuedTokens};
use crate::redis_link::RedisLink;

/// Prefix of the per-session index sets.
pub const INDEX_PREFIX: &str = "portcullis:kubesphere-keys:";

/// KubeSphere's token key for `user` and `token` (spec §6.4).
pub fn token_key(user: &str, token: &str) -> String {
    format!("kubesphere:user:{user}:token:{token}")
}

/// Writes and deletes KubeSphere token keys.
#[derive(Clone, Debug)]
pub struct KubeSphereTokens {
    link: RedisLink,
}

impl KubeSphereTokens {
    /// Keys written through the shared connection to KubeSphere's Redis.
    pub fn new(link: RedisLink) -> Self {
        KubeSphereTokens { link }
    }

    /// Registers a freshly issued pair. `access_ttl_s` / `refresh_ttl_s` are the tokens'
    /// lifetimes; nothing is written when they are zero (tokens that never expire).
    /// With `replace`, the session's previous keys are deleted first (refresh rotation).
    pub async fn register(
        &self,
        tokens: &IssuedTokens,
        access_ttl_s: u64,
        refresh_ttl_s: u64,
        replace: bool,
    ) {
        if access_ttl_s == 0 {
            return;
        }
        let index = format!("{INDEX_PREFIX}{}", tokens.session_id);
        let access_key = token_key(&tokens.username, &tokens.access_token);
        let refresh_key = token_key(&tokens.username, &tokens.refresh_token);
        let refresh_ttl_s = refresh_ttl_s.max(access_ttl_s);
        let result = async {
            let mut conn = self.link.connection().await?;
            if replace {
                delete_indexed(&mut conn, &index).await?;
            }
            redis::pipe()
                .atomic()
                .set_ex(&access_key, &tokens.access_token, access_ttl_s)
                .ignore()
                .set_ex(&refresh_key, &tokens.refresh_token, refresh_ttl_s)
                .ignore()
                .sadd(&index, &[&access_key, &refresh_key])
                .ignore()
                .expire(&index, i64::try_from(refresh_ttl_s).unwrap_or(i64::MAX))
                .ignore()
                .query_async::<()>(&mut conn)
                .await
        }
        .await;
        if let Err(e) = result {
            self.link.failed("kubesphere_register", &e).await;
        }
    }

    /// Deletes the KubeSphere keys of these sessions.
    pub async fn revoke_sessions(&self, session_ids: &[String]) {
        if session_ids.is_empty() {
            return;
        }
        let result = async {
            let mut conn = self.link.connection().await?;
            for id in session_ids {
                delete_indexed(&mut conn, &format!("{INDEX_PREFIX}{id}")).await?;
            }
            Ok::<(), redis::RedisError>(())
        }
        .await;
        if let Err(e) = result {
            self.link.failed("kubesphere_revoke", &e).await;
        }
    }
}

/// Deletes every key listed in the index set, and the set.
async fn delete_indexed(
    conn: &mut redis::aio::ConnectionManager,
    index: &str,
) -> Result<(), redis::RedisError> {
    let keys: Vec<String> = redis::cmd("SMEMBERS").arg(index).query_async(conn).await?;
    let mut pipe = redis::pipe();
    pipe.atomic();
    for k in &keys {
        pipe.del(k).ignore();
    }
    pipe.del(index).ignore();
    pipe.query_async::<()>(conn).await
}

impl Engine {
    /// Registers issued tokens under KubeSphere's key scheme, when configured.
    pub(crate) async fn register_kubesphere_keys(
        &self,
        tokens: &IssuedTokens,
        max_age_ms: i64,
        inactivity_ms: i64,
        replace: bool,
    ) {
        if let Some(ks) = self.kubesphere_tokens() {
            let secs = |ms: i64| u64::try_from(ms / 1000).unwrap_or(0);
            ks.register(
                tokens,
                secs(max_age_ms),
                secs(max_age_ms + inactivity_ms),
                replace,
            )
            .await;
        }
    }
}

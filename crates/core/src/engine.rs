//! The engine: owns the store, the clock, the token codec and the in-memory session state, and
//! runs the background jobs (revocation polling, activity flushing, retention).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use portcullis_config::Config;
use portcullis_store::{LoginRecord, OidcGrant, Session, Store, User};

use crate::activity::{Activity, ActivityTracker, Holder, SessionFacts};
use crate::clock::Clock;
use crate::error::{AuthError, CoreError};
use crate::lockout::Slot;
use crate::revocation::RevocationIndex;
use crate::settings::Settings;
use crate::tokens::{Claims, TokenCodec, TokenError, TokenType};

/// Where a request came from, for login records and per-address limits.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    /// Client address, as determined by the HTTP layer (trusted proxies only).
    pub ip: String,
    /// `User-Agent`.
    pub user_agent: String,
}

/// Tokens handed out by a grant, with what the response needs.
#[derive(Debug, Clone)]
pub struct IssuedTokens {
    /// The access token.
    pub access_token: String,
    /// The refresh token.
    pub refresh_token: String,
    /// Access-token lifetime in seconds; `None` when it never expires.
    pub expires_in: Option<i64>,
    /// The session the tokens belong to.
    pub session_id: String,
    /// User name.
    pub username: String,
}

/// What the refresh grant hands back: the new tokens, and what the grant read that the OpenID
/// Connect answer needs again ([`Engine::oidc_refreshed`]), so that it is not read twice.
#[derive(Debug, Clone)]
pub struct Refreshed {
    /// The new tokens.
    pub tokens: IssuedTokens,
    /// The user the tokens were issued to, as the grant read them; `None` after the refresh of
    /// a pre-registration, which starts a new session.
    pub user: Option<User>,
    /// The refreshed session's client (empty for none); `None` after the refresh of a
    /// pre-registration.
    pub client_id: Option<String>,
}

/// An authenticated caller, from a verified access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// User name.
    pub username: String,
    /// Stable user id (empty for tokens from before Portcullis).
    pub uid: String,
    /// Groups.
    pub groups: Vec<String>,
    /// KubeSphere `extra`.
    pub extra: BTreeMap<String, Vec<String>>,
    /// Session id (empty for session-less tokens on member-cluster settings).
    pub session_id: String,
}

/// The token codec and the settings in force, swapped together on a configuration change.
pub(crate) struct Keys {
    pub(crate) codec: TokenCodec,
    pub(crate) settings: Settings,
}

/// The Portcullis engine.
pub struct Engine {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) keys: ArcSwap<Keys>,
    pub(crate) revocations: Arc<RevocationIndex>,
    pub(crate) activity: ActivityTracker,
    bus: std::sync::OnceLock<crate::redis_bus::RevocationBus>,
    kubesphere: std::sync::OnceLock<crate::kubesphere_redis::KubeSphereTokens>,
    providers: ArcSwap<crate::federation::ProviderSet>,
    pub(crate) oidc: crate::oidc::Oidc,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("backend", &self.store.backend())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Builds an engine and loads the revocation index.
    pub async fn new(
        config: &Config,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, CoreError> {
        let keys = Keys {
            codec: TokenCodec::new(config.authentication.jwt_secret.expose().as_bytes())?,
            settings: Settings::from_config(config),
        };
        let revocations = RevocationIndex::load(store.as_ref(), clock.now_ms()).await?;
        Ok(Arc::new(Engine {
            store,
            clock,
            keys: ArcSwap::from_pointee(keys),
            revocations,
            activity: ActivityTracker::default(),
            bus: std::sync::OnceLock::new(),
            kubesphere: std::sync::OnceLock::new(),
            providers: ArcSwap::from_pointee(crate::federation::ProviderSet::empty()),
            oidc: crate::oidc::Oidc::new(config)?,
        }))
    }

    /// Swaps in a new configuration (live reload): later requests use it, requests in flight
    /// finish on the old one.
    pub fn apply_config(&self, config: &Config) -> Result<(), CoreError> {
        let keys = Keys {
            codec: TokenCodec::new(config.authentication.jwt_secret.expose().as_bytes())?,
            settings: Settings::from_config(config),
        };
        self.oidc.apply_config(config)?;
        self.keys.store(Arc::new(keys));
        Ok(())
    }

    /// Swaps in the identity providers (built by the binary from its provider registry).
    pub fn set_providers(&self, providers: crate::federation::ProviderSet) {
        self.providers.store(Arc::new(providers));
    }

    /// The identity providers in force.
    pub fn providers(&self) -> Arc<crate::federation::ProviderSet> {
        self.providers.load_full()
    }

    /// Signs claims with the current `jwtSecret` (federated pre-registration tokens).
    pub(crate) fn sign_claims(&self, claims: &Claims) -> Result<String, CoreError> {
        self.keys.load().codec.sign(claims)
    }

    /// Uses Redis to tell other replicas about revocations at once (they poll the store anyway).
    pub fn set_revocation_bus(&self, bus: crate::redis_bus::RevocationBus) {
        let _ = self.bus.set(bus);
    }

    /// The Redis revocation bus, when configured.
    pub fn revocation_bus(&self) -> Option<&crate::redis_bus::RevocationBus> {
        self.bus.get()
    }

    /// Also writes every issued token under KubeSphere's Redis key scheme (spec §6.4).
    pub fn set_kubesphere_tokens(&self, keys: crate::kubesphere_redis::KubeSphereTokens) {
        let _ = self.kubesphere.set(keys);
    }

    pub(crate) fn kubesphere_tokens(&self) -> Option<&crate::kubesphere_redis::KubeSphereTokens> {
        self.kubesphere.get()
    }

    /// After sessions were revoked here: tells the other replicas, and deletes the sessions'
    /// KubeSphere token keys.
    pub(crate) async fn announce_revocation(&self, session_ids: &[String]) {
        if let Some(bus) = self.bus.get() {
            bus.publish().await;
        }
        if let Some(ks) = self.kubesphere.get() {
            ks.revoke_sessions(session_ids).await;
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> Settings {
        self.keys.load().settings.clone()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Now, from the injected clock.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Starts the background jobs; they stop when the returned handle is dropped or aborted.
    pub fn spawn_background(self: &Arc<Self>) -> BackgroundJobs {
        let mut handles = Vec::new();
        let engine = Arc::clone(self);
        handles.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = engine.revocations.poll(engine.store.as_ref()).await {
                    tracing::warn!(error = %e, "polling the revocation log failed; will retry");
                    metrics::counter!("portcullis_store_errors_total", "op" => "revocation_poll")
                        .increment(1);
                }
            }
        }));
        let engine = Arc::clone(self);
        handles.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                engine.flush_activity().await;
            }
        }));
        handles.push(tokio::spawn(async move {
            // Password hashing memory unused for as long as the runtime keeps an idle blocking
            // thread (10 s) is freed, as it was when each thread held its own.
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            loop {
                tick.tick().await;
                crate::password::release_idle_memory(Duration::from_secs(10));
            }
        }));
        let engine = Arc::clone(self);
        handles.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(600));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                // One replica at a time; the lease outlives the interval so its holder keeps it.
                if !engine.take_job_lease("retention", 900_000).await {
                    // The in-memory revocation index is per process: pruned everywhere.
                    engine.revocations.prune(engine.now_ms());
                    continue;
                }
                if let Err(e) = engine.run_retention().await {
                    tracing::warn!(error = %e, "login-record retention failed; will retry");
                }
            }
        }));
        BackgroundJobs(handles)
    }

    /// Flushes session last-use times to the store.
    pub async fn flush_activity(&self) {
        let s = self.settings();
        let forget = s.inactivity_ms.max(60_000) * 2;
        if let Err(e) = self
            .activity
            .flush(self.store.as_ref(), self.now_ms(), forget)
            .await
        {
            tracing::warn!(error = %e, "flushing session activity failed; will retry");
            metrics::counter!("portcullis_store_errors_total", "op" => "activity_flush")
                .increment(1);
        }
    }

    /// Applies `loginHistoryRetentionPeriod` and `loginHistoryMaximumEntries`, prunes expired
    /// sessions and revocations. Returns the number of login records deleted.
    pub async fn run_retention(&self) -> Result<u64, CoreError> {
        let s = self.settings();
        let now = self.now_ms();
        let deleted = self
            .store
            .prune_login_records(now.saturating_sub(s.retention_ms), s.max_records_per_user)
            .await?;
        self.store.prune_sessions(now).await?;
        self.store.prune_lockouts(now).await?;
        self.store.prune_federation(now).await?;
        self.revocations.prune(now);
        if deleted > 0 {
            tracing::info!(deleted, "login records pruned by retention");
        }
        Ok(deleted)
    }

    /// Polls the revocation log now (tests and the Redis notification path).
    pub async fn poll_revocations(&self) -> Result<usize, CoreError> {
        Ok(self.revocations.poll(self.store.as_ref()).await?)
    }

    /// Creates a session for `user` and issues its first token pair. Applies `multipleLogin`.
    pub async fn issue_session(
        &self,
        user: &User,
        provider: &str,
        client_id: &str,
        ctx: &RequestContext,
    ) -> Result<IssuedTokens, AuthError> {
        self.issue_session_with(
            user,
            provider,
            client_id,
            ctx,
            SessionSpec::login(Vec::new()),
        )
        .await
    }

    /// [`Engine::issue_session`] with the session's id, kind and upstream groups chosen by the
    /// caller (see [`SessionSpec`]).
    pub(crate) async fn issue_session_with(
        &self,
        user: &User,
        provider: &str,
        client_id: &str,
        ctx: &RequestContext,
        spec: SessionSpec,
    ) -> Result<IssuedTokens, AuthError> {
        let keys = self.keys.load();
        let now = self.now_ms();
        let (max_age, inactivity) = keys.settings.lifetimes(keys.settings.client(client_id));
        let SessionSpec {
            id,
            is_login,
            upstream_groups,
            with,
        } = spec;
        let session = Session {
            id,
            user: user.name.clone(),
            client_id: client_id.to_owned(),
            provider: provider.to_owned(),
            created_at: now,
            expires_at: keys.settings.session_expiry(now, now, max_age, inactivity),
            last_seen_at: now,
            refresh_generation: 0,
            revoked_at: None,
            source_ip: ctx.ip.clone(),
            user_agent: ctx.user_agent.clone(),
            upstream_groups,
        };
        match with {
            WrittenWith::Nothing => self.store.create_session(&session).await?,
            WrittenWith::LoginRecord(record, Some(slot)) => {
                slot.finish_login(Some(session.clone()), record).await?
            }
            WrittenWith::LoginRecord(record, None) => {
                self.store
                    .finish_login(Some(&session), &[], &record)
                    .await?;
            }
            WrittenWith::Grant(grant) => {
                self.store.create_granted_session(&session, &grant).await?
            }
        }
        if !keys.settings.multiple_login && is_login {
            let revoked = self
                .store
                .revoke_user_sessions(&user.name, Some(&session.id), now)
                .await?;
            for id in &revoked {
                self.revocations.insert(id, None);
            }
            if !revoked.is_empty() {
                self.announce_revocation(&revoked).await;
            }
        }
        self.activity
            .mark(&session.id, SessionFacts::of(&session), now);
        let tokens = self.sign_pair(&keys, user, &session, 0, max_age, inactivity, now)?;
        self.register_kubesphere_keys(&tokens, max_age, inactivity, false)
            .await;
        Ok(tokens)
    }

    #[allow(clippy::too_many_arguments)] // one call site each; a struct would only rename them
    fn sign_pair(
        &self,
        keys: &Keys,
        user: &User,
        session: &Session,
        generation: i64,
        max_age: i64,
        inactivity: i64,
        now: i64,
    ) -> Result<IssuedTokens, AuthError> {
        let iat = now.div_euclid(1000);
        let mut extra = BTreeMap::new();
        if user.uninitialized {
            extra.insert("uninitialized".to_string(), vec!["true".to_string()]);
        }
        if let Some(email) = &user.email {
            extra.insert("email".to_string(), vec![email.clone()]);
        }
        // No token outlives the session's absolute lifetime (`sessionMaxLifetime`).
        let end_s = keys
            .settings
            .session_end(session.created_at)
            .map(|e| e.div_euclid(1000));
        let capped = |exp: Option<i64>| match (exp, end_s) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let base = Claims {
            username: user.name.clone(),
            sub: user.name.clone(),
            token_type: TokenType::AccessToken,
            iss: keys.settings.issuer.clone(),
            iat,
            exp: capped((max_age > 0).then(|| iat + max_age / 1000)),
            extra,
            groups: token_groups(&user.groups, &session.upstream_groups),
            sid: session.id.clone(),
            jti: random_id(),
            uid: user.uid.clone(),
            r#gen: None,
            scope: String::new(),
        };
        let refresh = Claims {
            token_type: TokenType::RefreshToken,
            exp: capped((max_age > 0).then(|| iat + (max_age + inactivity) / 1000)),
            jti: random_id(),
            r#gen: Some(generation),
            ..base.clone()
        };
        Ok(IssuedTokens {
            access_token: keys.codec.sign(&base)?,
            refresh_token: keys.codec.sign(&refresh)?,
            expires_in: base.exp.map(|e| (e - iat).max(0)),
            session_id: session.id.clone(),
            username: user.name.clone(),
        })
    }

    /// Verifies a presented token of the given kind: signature, time, type, revocation and
    /// inactivity. Costs no database access in the common case.
    pub async fn verify(&self, token: &str, want: TokenType) -> Result<Claims, TokenError> {
        self.verify_shared(token, want)
            .await
            .map(Arc::unwrap_or_clone)
    }

    /// [`Engine::verify`] without copying the claims: they are shared with the codec's cache of
    /// verified tokens (the TokenReview path).
    pub async fn verify_shared(
        &self,
        token: &str,
        want: TokenType,
    ) -> Result<Arc<Claims>, TokenError> {
        let keys = self.keys.load();
        let now = self.now_ms();
        let claims = keys
            .codec
            .verify_cached(token, want, now, keys.settings.clock_skew_s)?;
        if claims.sid.is_empty() {
            // KubeSphere member-cluster semantics: with accessTokenMaxAge 0 there is no
            // server-side state at all. Otherwise a token without a session cannot be revoked,
            // so it is not accepted.
            return if keys.settings.access_max_age_ms == 0 {
                Ok(claims)
            } else {
                Err(TokenError::NoSession)
            };
        }
        if self.revocations.is_revoked(&claims.sid) {
            return Err(TokenError::Revoked);
        }
        if crate::oidc::client_tokens::is_unstored(&claims.sid) {
            self.check_unstored(&claims, now).await?;
            return Ok(claims);
        }
        // The session must exist and belong to the token's user, and a session with an expiry
        // accepts only tokens with `exp` (a token minted with `jwtSecret` could claim any `sid`).
        // The store is read only the first time this replica sees the session.
        let holder = Holder {
            user: &claims.username,
            has_exp: claims.exp.is_some(),
        };
        match self
            .activity
            .touch(
                self.store.as_ref(),
                &claims.sid,
                holder,
                now,
                keys.settings.inactivity_ms,
            )
            .await
        {
            Ok(Activity::Live) => {}
            Ok(Activity::Idle) => return Err(TokenError::Inactive),
            Ok(Activity::Unknown) => return Err(TokenError::Revoked),
            Ok(Activity::Foreign) => return Err(TokenError::NoSession),
            Ok(Activity::Unbounded) => return Err(TokenError::NoExpiry),
            Err(e) => {
                // Fail closed: without the store we cannot tell an idle session from a live one.
                tracing::error!(error = %e, "session lookup failed during token verification");
                return Err(TokenError::Inactive);
            }
        }
        Ok(claims)
    }

    /// Verifies an access token and returns the caller.
    pub async fn authenticate_bearer(&self, token: &str) -> Result<Principal, TokenError> {
        let c = self.verify(token, TokenType::AccessToken).await?;
        Ok(Principal {
            username: c.username,
            uid: c.uid,
            groups: c.groups,
            extra: c.extra,
            session_id: c.sid,
        })
    }

    /// Revokes the session of a presented access or refresh token (logout). Returns whether a
    /// session was revoked; an invalid token revokes nothing.
    pub async fn logout(&self, token: &str) -> Result<bool, CoreError> {
        let claims = match self.verify(token, TokenType::AccessToken).await {
            Ok(c) => c,
            Err(TokenError::WrongType { .. }) => {
                match self.verify(token, TokenType::RefreshToken).await {
                    Ok(c) => c,
                    Err(_) => return Ok(false),
                }
            }
            Err(_) => return Ok(false),
        };
        self.revoke_session(&claims.sid).await
    }

    /// Revokes one session everywhere.
    pub async fn revoke_session(&self, session_id: &str) -> Result<bool, CoreError> {
        if session_id.is_empty() {
            return Ok(false);
        }
        if crate::oidc::client_tokens::is_unstored(session_id) {
            return self.revoke_unstored(session_id).await;
        }
        let revoked = self.store.revoke_session(session_id, self.now_ms()).await?;
        self.revocations.insert(session_id, None);
        self.announce_revocation(&[session_id.to_owned()]).await;
        Ok(revoked)
    }

    /// Revokes an unstored client token (no session row): appended to the revocation log until
    /// the expiry its id carries. Callers pass the id of a verified token; one already revoked
    /// here is not logged again.
    async fn revoke_unstored(&self, session_id: &str) -> Result<bool, CoreError> {
        let Some(expires_at) = crate::oidc::client_tokens::expiry_ms(session_id) else {
            return Ok(false);
        };
        if self.revocations.is_revoked(session_id) {
            return Ok(false);
        }
        self.store.revoke_unstored(session_id, expires_at).await?;
        self.revocations.insert(session_id, Some(expires_at));
        self.announce_revocation(&[session_id.to_owned()]).await;
        Ok(true)
    }

    /// Revokes every session of a user everywhere (disable, delete, password change).
    pub async fn revoke_user(&self, user: &str) -> Result<usize, CoreError> {
        let ids = self
            .store
            .revoke_user_sessions(user, None, self.now_ms())
            .await?;
        for id in &ids {
            self.revocations.insert(id, None);
        }
        self.announce_revocation(&ids).await;
        Ok(ids.len())
    }

    pub(crate) fn codec_verify_refresh(
        &self,
        token: &str,
    ) -> Result<(Claims, Settings), TokenError> {
        let keys = self.keys.load();
        let claims = keys.codec.verify(
            token,
            TokenType::RefreshToken,
            self.now_ms(),
            keys.settings.clock_skew_s,
        )?;
        Ok((claims, keys.settings.clone()))
    }

    pub(crate) async fn sign_refreshed(
        &self,
        user: &User,
        session: &Session,
        generation: i64,
        now: i64,
    ) -> Result<IssuedTokens, AuthError> {
        let keys = self.keys.load();
        let (max_age, inactivity) = keys
            .settings
            .lifetimes(keys.settings.client(&session.client_id));
        self.activity
            .mark(&session.id, SessionFacts::of(session), now);
        let tokens = self.sign_pair(&keys, user, session, generation, max_age, inactivity, now)?;
        self.register_kubesphere_keys(&tokens, max_age, inactivity, true)
            .await;
        Ok(tokens)
    }

    /// Decodes a token with the configured secret, checking the signature only.
    pub fn inspect(&self, token: &str) -> Result<Claims, TokenError> {
        self.keys.load().codec.decode_unchecked_time(token)
    }
}

/// What distinguishes one new session from another beyond its user and client.
#[derive(Debug)]
pub(crate) struct SessionSpec {
    /// Its id: random for a login; chosen up front when an authorization code reserves the id
    /// of the session its exchange creates.
    pub id: String,
    /// A login applies `multipleLogin`; a session derived from one (the OpenID Connect code
    /// flow, client credentials) does not.
    pub is_login: bool,
    /// Groups the identity provider reported at login.
    pub upstream_groups: Vec<String>,
    /// What is written with the session, all or nothing.
    pub with: WrittenWith,
}

/// What is written together with a new session, in the same store call.
#[derive(Debug)]
pub(crate) enum WrittenWith {
    /// Nothing else.
    Nothing,
    /// The login's record, and the lockout slots of a password login, given back with them.
    LoginRecord(LoginRecord, Option<Slot>),
    /// The session's OpenID Connect grant (the code exchange, client credentials).
    Grant(OidcGrant),
}

impl SessionSpec {
    /// A new login with a random id.
    pub(crate) fn login(upstream_groups: Vec<String>) -> Self {
        SessionSpec {
            id: random_id(),
            is_login: true,
            upstream_groups,
            with: WrittenWith::Nothing,
        }
    }

    /// Writes `record` with the session and gives `slot` back with them.
    pub(crate) fn recording(mut self, record: LoginRecord, slot: Option<Slot>) -> Self {
        self.with = WrittenWith::LoginRecord(record, slot);
        self
    }
}

/// The `groups` of a session's tokens: the user's own groups, then the groups the identity
/// provider reported at login, without duplicates.
fn token_groups(own: &[String], upstream: &[String]) -> Vec<String> {
    let mut groups = own.to_vec();
    for g in upstream {
        if !groups.contains(g) {
            groups.push(g.clone());
        }
    }
    groups
}

/// Handles of the background jobs; aborts them on drop.
pub struct BackgroundJobs(pub(crate) Vec<tokio::task::JoinHandle<()>>);

impl Drop for BackgroundJobs {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

/// A random URL-safe id with 128 bits of entropy.
pub fn random_id() -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;

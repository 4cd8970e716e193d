//! Password logins and the refresh grant.
//!
//! Password login order: per-address lockout slot, per-account lockout slot (both reserved
//! atomically before the password is checked, so concurrent guesses cannot exceed the limit),
//! then the hash check (a dummy hash for unknown users, so unknown names cost the same time and
//! get the same answers, lockout included), then the account state, then a session.

use portcullis_store::{LoginRecord, User, UserState};
use tracing::Instrument;

use crate::engine::{Engine, IssuedTokens, Refreshed, RequestContext, SessionSpec};
use crate::error::AuthError;
use crate::lockout::{Reserved, Slot};
use crate::names::looks_like_email;
use crate::password::verify_password;
use crate::tokens::TokenError;

/// A password login attempt.
#[derive(Debug, Clone)]
pub struct PasswordLogin<'a> {
    /// User name or email, as typed.
    pub login: &'a str,
    /// Password.
    pub password: &'a str,
    /// Authenticated client, empty when none.
    pub client_id: &'a str,
    /// `Token` for grants and the legacy login, `Basic` for Basic auth (KubeSphere's record types).
    pub login_type: &'a str,
}

/// Who checked the password.
pub(crate) enum PasswordOutcome {
    /// A local account, and its lockout slots, still reserved: the caller issues the session and
    /// then gives them back with the login record ([`Slot::finish_login`]).
    Local(User, Slot),
    /// A password-style provider (LDAP); the mapping already issued the tokens.
    Provider(IssuedTokens),
}

const REASON_OK: &str = "authenticated successfully";

impl Engine {
    /// Resolves a login name to a user: by email when it contains `@`, else by name.
    pub async fn find_login_user(&self, login: &str) -> Result<Option<User>, AuthError> {
        if looks_like_email(login) {
            Ok(self.store.get_user_by_email(login).await?)
        } else {
            Ok(self.store.get_user(login).await?)
        }
    }

    /// Checks a password login and, when it succeeds, creates a session and issues tokens.
    /// Password-style identity providers (LDAP) are tried first, in configuration order, as in
    /// KubeSphere 3.x (except for `admin`); see [`Engine::authenticate_password`].
    pub async fn password_login(
        &self,
        req: &PasswordLogin<'_>,
        ctx: &RequestContext,
    ) -> Result<IssuedTokens, AuthError> {
        let (user, slot) = match self.authenticate_password(req, ctx).await? {
            PasswordOutcome::Local(user, slot) => (user, slot),
            PasswordOutcome::Provider(tokens) => return Ok(tokens),
        };
        // The session, the record and the slots' release are one store call; on an error before
        // it the slot is dropped, which gives it back.
        let record = self.login_record(&user.name, req.login_type, "", ctx, true, REASON_OK);
        let spec = SessionSpec::login(Vec::new()).recording(record, Some(slot));
        let issued = self
            .issue_session_with(&user, "", req.client_id, ctx, spec)
            .await?;
        metrics::counter!("portcullis_logins_total", "provider" => "local", "result" => "success")
            .increment(1);
        Ok(issued)
    }

    /// Tries the enabled password-style providers (LDAP) in configuration order. `Ok(Some)`
    /// when one of them authenticated the person and the mapping logged them in; `Ok(None)` when
    /// none did (bad credentials, unknown there, no linked account under `lookup`, or the
    /// provider is down: an outage is logged and counted, and never blocks local accounts).
    async fn try_password_providers(
        &self,
        req: &PasswordLogin<'_>,
        ctx: &RequestContext,
    ) -> Result<Option<IssuedTokens>, AuthError> {
        use crate::federation::mapping::LoginPath;
        use crate::federation::{FederatedLogin, FederationError};
        let providers = self.providers();
        for entry in providers.entries() {
            if entry.config.disabled {
                continue;
            }
            let Ok(portcullis_idp::Provider::Password(provider)) = &entry.provider else {
                continue;
            };
            let started = std::time::Instant::now();
            let outcome = provider
                .authenticate(req.login.trim(), req.password)
                .instrument(crate::observe::upstream_span(entry.name(), "authenticate"))
                .await;
            // A wrong password is a normal answer from a working upstream.
            let answered = outcome
                .as_ref()
                .map_or_else(|e| e.is_bad_credentials(), |_| true);
            crate::observe::upstream_latency(entry.name(), "authenticate", started, answered);
            let identity = match outcome {
                Ok(identity) => identity,
                Err(e) if e.is_bad_credentials() => continue,
                Err(e) => {
                    tracing::warn!(provider = entry.name(), error = %e, "password provider unavailable; trying the next source");
                    metrics::counter!("portcullis_upstream_errors_total", "provider" => entry.name().to_owned())
                        .increment(1);
                    continue;
                }
            };
            let path = LoginPath::Console {
                client_id: req.client_id,
            };
            match self.map_identity(entry, &identity, path, ctx).await {
                Ok(FederatedLogin::LoggedIn { tokens, .. })
                | Ok(FederatedLogin::PreRegistered(tokens)) => {
                    return Ok(Some(tokens));
                }
                Ok(_) => continue,
                // `lookup` without a link: the next source may know the person (KubeSphere 3.x).
                Err(FederationError::Denied(_)) => continue,
                Err(FederationError::AccountDisabled(_)) => return Err(AuthError::AccountDisabled),
                Err(e) => return Err(AuthError::Internal(e.to_string())),
            }
        }
        Ok(None)
    }

    /// Checks a password: lockout slots first (account and address, reserved atomically), then
    /// the password-style providers, then the local hash and state. Records failures. The
    /// lockout covers provider logins too.
    pub(crate) async fn authenticate_password(
        &self,
        req: &PasswordLogin<'_>,
        ctx: &RequestContext,
    ) -> Result<PasswordOutcome, AuthError> {
        let settings = self.settings();
        let login = req.login.trim();
        if login.chars().any(char::is_control) {
            // No account name or email holds a control character, and PostgreSQL cannot even
            // store a NUL: refused as a wrong login, before any lookup or record.
            return Err(AuthError::InvalidCredentials);
        }
        if login.is_empty() || req.password.is_empty() {
            self.record(
                login,
                req.login_type,
                "",
                ctx,
                false,
                "empty user name or password",
            )
            .await;
            return Err(AuthError::InvalidCredentials);
        }
        let now = self.now_ms();
        let user = self.find_login_user(login).await?;
        // The account key is the resolved name, so "alice" and "alice@example.com" share a
        // counter; unknown names get their own counter, so they behave exactly like real ones.
        let record_name = user
            .as_ref()
            .map(|u| u.name.clone())
            .unwrap_or_else(|| login.to_lowercase());
        let user_key = format!("user:{record_name}");
        let ip_key = format!("ip:{}", ctx.ip);

        // The address's and the account's slots, reserved together (one store round trip).
        let keys = [
            (ip_key.as_str(), settings.ip_lockout),
            (user_key.as_str(), settings.user_lockout),
        ];
        let slot = match self.reserve_slot(&keys, now).await? {
            Reserved::Slot(slot) => slot,
            Reserved::Locked { index, until } => {
                let (scope, reason) = if index == 0 {
                    ("address", "too many failed logins from this address")
                } else {
                    ("account", "account locked after too many failed logins")
                };
                self.record(&record_name, req.login_type, "", ctx, false, reason)
                    .await;
                metrics::counter!("portcullis_lockouts_total", "scope" => scope).increment(1);
                return Err(AuthError::Locked {
                    retry_after_s: ((until - now) + 999) / 1000,
                });
            }
        };

        if !login.eq_ignore_ascii_case("admin") {
            // A provider's answer or error settles the attempt: the person proved the
            // password to a provider, or nothing was proved (an unreachable provider); either
            // way the slots are given back (also when this returns early on an error).
            match self.try_password_providers(req, ctx).await {
                Ok(None) => {}
                Ok(Some(tokens)) => {
                    slot.release().await?;
                    return Ok(PasswordOutcome::Provider(tokens));
                }
                Err(e) => {
                    slot.release().await?;
                    return Err(e);
                }
            }
        }
        let hash = user.as_ref().and_then(|u| u.password_hash.as_deref());
        if !verify_password(req.password, hash).await {
            let now = self.now_ms();
            let locks = slot.fail(now).await?;
            if locks.get(1).is_some_and(Option::is_some) {
                tracing::warn!(user = %record_name, "account locked after too many failed logins");
            }
            self.record(
                &record_name,
                req.login_type,
                "",
                ctx,
                false,
                "incorrect password",
            )
            .await;
            metrics::counter!("portcullis_logins_total", "provider" => "local", "result" => "failure").increment(1);
            return Err(AuthError::InvalidCredentials);
        }
        // The password was right: the slots are given back with the login record.
        if let Some(old) = hash.filter(|h| crate::password::is_bcrypt(h)) {
            self.upgrade_bcrypt(&record_name, old, req.password).await;
        }
        let user = user.ok_or(AuthError::InvalidCredentials)?;
        if user.state == UserState::Disabled {
            let record = self.login_record(
                &user.name,
                req.login_type,
                "",
                ctx,
                false,
                "account is disabled",
            );
            slot.finish_login(None, record).await?;
            return Err(AuthError::AccountDisabled);
        }
        Ok(PasswordOutcome::Local(user, slot))
    }

    /// Replaces an imported bcrypt hash by an argon2id hash of the password just proved, so
    /// every later attempt on the account costs what an unknown name's does (a wrong password
    /// against bcrypt took longer, telling that the account exists). A failure is logged and
    /// changes nothing; a password changed meanwhile is left alone.
    async fn upgrade_bcrypt(&self, name: &str, old: &str, password: &str) {
        let result = match crate::password::hash_password(password).await {
            Ok(new) => self
                .store
                .upgrade_password_hash(name, old, &new)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(true) => {
                tracing::info!(user = %name, "password hash upgraded from bcrypt to argon2id")
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(user = %name, error = %e, "could not upgrade the bcrypt password hash")
            }
        }
    }

    /// The refresh grant: a refresh token is good once. Presenting one that was already used
    /// revokes the whole session (reuse detection, RFC 6819 §5.2.2.3).
    pub async fn refresh(
        &self,
        refresh_token: &str,
        client_id: Option<&str>,
    ) -> Result<Refreshed, AuthError> {
        let invalid = |m: &str| AuthError::InvalidGrant(m.to_string());
        let (claims, settings) = self
            .codec_verify_refresh(refresh_token)
            .map_err(|e| match e {
                TokenError::WrongType { .. } => {
                    invalid("the presented token is not a refresh token")
                }
                TokenError::Expired => invalid("the refresh token has expired"),
                _ => invalid("the refresh token is invalid"),
            })?;
        if claims.sid.is_empty() {
            return Err(invalid("the refresh token was not issued by this server"));
        }
        if self.revocations.is_revoked(&claims.sid) {
            return Err(invalid("the refresh token has been revoked"));
        }
        let now = self.now_ms();
        // The session and its user in one read: the user is needed below unless this is a
        // pre-registration.
        let (session, user) = self
            .store
            .get_session_with_user(&claims.sid)
            .await?
            .ok_or_else(|| invalid("the refresh token has been revoked"))?;
        if session.revoked_at.is_some() {
            self.revocations.insert(&session.id, session.expires_at);
            return Err(invalid("the refresh token has been revoked"));
        }
        if let Some(cid) = client_id
            && !session.client_id.is_empty()
            && session.client_id != cid
        {
            return Err(invalid("the refresh token was issued to another client"));
        }
        // A token minted with `jwtSecret` may name another user's session, or leave out `exp`.
        if claims.username != session.user || (claims.exp.is_none() && session.expires_at.is_some())
        {
            return Err(invalid("the refresh token was not issued by this server"));
        }
        if settings
            .session_end(session.created_at)
            .is_some_and(|end| now >= end)
        {
            // The absolute lifetime (`sessionMaxLifetime`): refreshing cannot extend it.
            self.revoke_session(&session.id).await?;
            return Err(invalid(
                "the session reached its maximum lifetime; sign in again",
            ));
        }
        if settings.inactivity_ms > 0 {
            // Idle sessions end, also for the refresh grant: that is what the timeout promises.
            let holder = crate::activity::Holder {
                user: &claims.username,
                has_exp: claims.exp.is_some(),
            };
            let idle = self
                .activity
                .touch(
                    self.store.as_ref(),
                    &session.id,
                    holder,
                    now,
                    settings.inactivity_ms,
                )
                .await?;
            if idle != crate::activity::Activity::Live {
                return Err(invalid("the session expired after inactivity"));
            }
        }
        if session.user == crate::federation::PRE_REGISTRATION_USER {
            let tokens = self.refresh_pre_registration(&claims, &session).await?;
            return Ok(Refreshed {
                tokens,
                user: None,
                client_id: None,
            });
        }
        let user = match user {
            Some(u) if u.state != UserState::Disabled => u,
            _ => {
                self.revoke_session(&session.id).await?;
                return Err(invalid("the user no longer exists or is disabled"));
            }
        };
        let presented = claims.r#gen.unwrap_or(0);
        let (max_age, inactivity) = settings.lifetimes(settings.client(&session.client_id));
        let expires = settings.session_expiry(session.created_at, now, max_age, inactivity);
        if !self
            .store
            .advance_refresh(&session.id, presented, expires, now)
            .await?
        {
            tracing::warn!(user = %session.user, "refresh token reused; revoking the session");
            self.revoke_session(&session.id).await?;
            metrics::counter!("portcullis_refresh_reuse_total").increment(1);
            return Err(invalid(
                "the refresh token was already used; the session has been revoked",
            ));
        }
        let tokens = self
            .sign_refreshed(&user, &session, presented + 1, now)
            .await?;
        Ok(Refreshed {
            tokens,
            user: Some(user),
            client_id: Some(session.client_id),
        })
    }

    /// Writes a login record; failures to write are logged, never fatal to the login.
    pub async fn record(
        &self,
        user: &str,
        login_type: &str,
        provider: &str,
        ctx: &RequestContext,
        success: bool,
        reason: &str,
    ) {
        let record = self.login_record(user, login_type, provider, ctx, success, reason);
        if let Err(e) = self.store.add_login_record(&record).await {
            tracing::error!(error = %e, "writing a login record failed");
            metrics::counter!("portcullis_store_errors_total", "op" => "login_record").increment(1);
        }
    }

    /// The login record of an attempt made now.
    pub(crate) fn login_record(
        &self,
        user: &str,
        login_type: &str,
        provider: &str,
        ctx: &RequestContext,
        success: bool,
        reason: &str,
    ) -> LoginRecord {
        LoginRecord {
            id: uuid::Uuid::now_v7().to_string(),
            user: user.chars().take(256).collect(),
            at: self.now_ms(),
            login_type: login_type.to_owned(),
            provider: provider.to_owned(),
            source_ip: ctx.ip.clone(),
            user_agent: ctx.user_agent.chars().take(512).collect(),
            success,
            reason: reason.to_owned(),
        }
    }
}

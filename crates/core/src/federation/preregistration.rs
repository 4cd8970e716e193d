//! `mappingMethod: manual`: the confirm step of a first login, in its two shapes.
//!
//! * Browser: a pending registration row, confirmed on `/login/confirm` with a per-row CSRF
//!   token ([`Engine::confirm_registration`]).
//! * ks-console (KubeSphere's contract, spec §5.4): tokens for the user `system:pre-registration`
//!   with `extra {idp, uid, username, email}`; ks-console creates the user with
//!   `POST /kapis/iam.kubesphere.io/v1alpha2/users` ([`Engine::register_from_pre_registration`])
//!   and then upgrades with the refresh grant (`Engine::refresh` hands pre-registration sessions
//!   to `refresh_pre_registration` here).
//!
//! Unlike KubeSphere, a pre-registration creates exactly ONE user, linked to exactly its own
//! identity, with only a name and an email (no groups, no password): the pending row is consumed
//! in the transaction that creates the user.

use std::collections::BTreeMap;

use portcullis_idp::Identity;
use portcullis_store::{IdentityLink, Session, StoreError, User, UserState};

use super::mapping::FederatedLogin;
use super::{FederationError, LOGIN_TYPE, Reason};
use crate::engine::{Engine, IssuedTokens, Principal, RequestContext, random_id};
use crate::error::AuthError;
use crate::names::{check_email, check_user_name};
use crate::tokens::{Claims, TokenType};

/// The user name of pre-registration tokens (KubeSphere's).
pub const PRE_REGISTRATION_USER: &str = "system:pre-registration";

/// A completed browser registration: the new user is logged in.
#[derive(Debug, Clone)]
pub struct ConfirmedRegistration {
    /// The login (always [`FederatedLogin::LoggedIn`]).
    pub login: FederatedLogin,
    /// Where the browser asked to go when the login started.
    pub return_to: Option<String>,
}

fn single<'a>(extra: &'a BTreeMap<String, Vec<String>>, key: &str) -> Option<&'a str> {
    match extra.get(key).map(Vec::as_slice) {
        Some([one]) if !one.is_empty() => Some(one),
        _ => None,
    }
}

impl Engine {
    /// Issues `system:pre-registration` tokens for `identity` and opens the matching pending
    /// registration (its id is the tokens' session id). `multipleLogin` is not applied: it
    /// would end other people's onboarding.
    pub(crate) async fn issue_pre_registration(
        &self,
        provider: &str,
        identity: &Identity,
        client_id: &str,
        ctx: &RequestContext,
    ) -> Result<IssuedTokens, FederationError> {
        let sid = random_id();
        self.open_registration(provider, identity, sid.clone(), None)
            .await?;
        let settings = self.settings();
        let (max_age, inactivity) = settings.lifetimes(settings.client(client_id));
        let now = self.now_ms();
        let session = Session {
            id: sid.clone(),
            user: PRE_REGISTRATION_USER.to_owned(),
            client_id: client_id.to_owned(),
            provider: provider.to_owned(),
            created_at: now,
            expires_at: (max_age > 0).then(|| now + max_age + inactivity),
            last_seen_at: now,
            refresh_generation: 0,
            revoked_at: None,
            source_ip: ctx.ip.clone(),
            user_agent: ctx.user_agent.clone(),
            upstream_groups: identity.groups.clone(),
        };
        self.store.create_session(&session).await?;
        self.activity
            .mark(&sid, crate::activity::SessionFacts::of(&session), now);
        let mut extra = BTreeMap::new();
        extra.insert("idp".to_owned(), vec![provider.to_owned()]);
        extra.insert("uid".to_owned(), vec![identity.user_id().to_owned()]);
        let username = identity.username.as_deref().unwrap_or(identity.user_id());
        extra.insert("username".to_owned(), vec![username.to_owned()]);
        if let Some(email) = &identity.email {
            extra.insert("email".to_owned(), vec![email.clone()]);
        }
        let iat = now.div_euclid(1000);
        let access = Claims {
            username: PRE_REGISTRATION_USER.to_owned(),
            sub: PRE_REGISTRATION_USER.to_owned(),
            token_type: TokenType::AccessToken,
            iss: settings.issuer.clone(),
            iat,
            exp: (max_age > 0).then(|| iat + max_age / 1000),
            extra,
            groups: Vec::new(),
            sid: sid.clone(),
            jti: random_id(),
            uid: String::new(),
            r#gen: None,
            scope: String::new(),
        };
        let refresh = Claims {
            token_type: TokenType::RefreshToken,
            exp: (max_age > 0).then(|| iat + (max_age + inactivity) / 1000),
            jti: random_id(),
            r#gen: Some(0),
            ..access.clone()
        };
        Ok(IssuedTokens {
            access_token: self.sign_claims(&access)?,
            refresh_token: self.sign_claims(&refresh)?,
            expires_in: (max_age > 0).then_some(max_age / 1000),
            session_id: sid,
            username: PRE_REGISTRATION_USER.to_owned(),
        })
    }

    /// Creates the user of pending registration `id` for identity `(provider, uid)`, named
    /// `name` with `email`, linked, and consumes the registration, all in one transaction.
    async fn complete_registration(
        &self,
        id: &str,
        provider: &str,
        uid: &str,
        upstream_username: Option<String>,
        name: &str,
        email: Option<&str>,
    ) -> Result<User, FederationError> {
        check_user_name(name).map_err(|p| FederationError::InvalidInput(Reason::InvalidName(p)))?;
        if let Some(e) = email
            && check_email(e).is_err()
        {
            return Err(FederationError::InvalidInput(Reason::InvalidEmail {
                email: e.to_owned(),
            }));
        }
        let now = self.now_ms();
        // The link keeps what the provider reported, never the address typed here: only a
        // provider-verified address makes `email_verified` true.
        let (upstream_email, upstream_email_verified) = self
            .store
            .get_registration(id, now)
            .await?
            .filter(|r| r.provider == provider && r.upstream_uid == uid)
            .map(|r| (r.upstream_email, r.upstream_email_verified))
            .unwrap_or((None, false));
        let user = User {
            name: name.to_owned(),
            uid: uuid::Uuid::new_v4().to_string(),
            email: email.map(str::to_owned),
            display_name: None,
            groups: Vec::new(),
            state: UserState::Active,
            password_hash: None,
            uninitialized: false,
            created_at: now,
            last_login_at: None,
            password_changed_at: None,
        };
        let link = IdentityLink {
            provider: provider.to_owned(),
            upstream_uid: uid.to_owned(),
            user: name.to_owned(),
            upstream_username,
            upstream_email,
            upstream_email_verified,
            created_at: now,
        };
        match self
            .store
            .create_linked_user(&user, &link, Some(id), now)
            .await
        {
            Ok(()) => {
                tracing::info!(provider, user = %name, "created a user from a confirmed registration");
                Ok(user)
            }
            Err(StoreError::NotFound(_)) => {
                Err(FederationError::InvalidRequest(Reason::RegistrationGone))
            }
            Err(StoreError::Conflict(m)) => Err(FederationError::Conflict(
                self.registration_conflict(name, email, m).await?,
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Which rule a refused registration broke: the name taken, else the email taken, else
    /// the store's own words (the identity linked meanwhile, another registration's identity).
    async fn registration_conflict(
        &self,
        name: &str,
        email: Option<&str>,
        store_message: String,
    ) -> Result<Reason, FederationError> {
        if self.store.get_user(name).await?.is_some() {
            return Ok(Reason::NameTaken {
                name: name.to_owned(),
            });
        }
        if let Some(e) = email
            && self.store.get_user_by_email(e).await?.is_some()
        {
            return Ok(Reason::EmailTaken {
                email: e.to_owned(),
            });
        }
        Ok(Reason::Conflict(store_message))
    }

    /// The browser's confirm step: the pending registration `id` (from its cookie) must be live
    /// and `csrf` must equal its token; then the user is created and logged in.
    pub async fn confirm_registration(
        &self,
        id: &str,
        csrf: &str,
        name: &str,
        email: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<ConfirmedRegistration, FederationError> {
        let reg = self
            .store
            .get_registration(id, self.now_ms())
            .await?
            .ok_or(FederationError::InvalidRequest(Reason::RegistrationGone))?;
        if !crate::constant_time_eq(csrf, &reg.csrf_token) {
            return Err(FederationError::InvalidRequest(Reason::RegistrationCsrf));
        }
        let user = self
            .complete_registration(
                id,
                &reg.provider,
                &reg.upstream_uid,
                reg.upstream_username.clone(),
                name.trim(),
                email.map(str::trim).filter(|e| !e.is_empty()),
            )
            .await?;
        let login = self
            .login_user(&reg.provider, user, &reg.upstream_groups, "", true, ctx)
            .await?;
        Ok(ConfirmedRegistration {
            login,
            return_to: reg.return_to,
        })
    }

    /// The pending registration `id` if it is live (for rendering the confirm page).
    pub async fn pending_registration(
        &self,
        id: &str,
    ) -> Result<Option<portcullis_store::PendingRegistration>, FederationError> {
        Ok(self.store.get_registration(id, self.now_ms()).await?)
    }

    /// `POST /kapis/iam.kubesphere.io/v1alpha2/users` by a `system:pre-registration` caller:
    /// creates the one user of its pre-registration, named `name` with `email`, linked to the
    /// identity in its token. Groups, passwords and other fields are not accepted at all.
    pub async fn register_from_pre_registration(
        &self,
        caller: &Principal,
        name: &str,
        email: Option<&str>,
    ) -> Result<User, FederationError> {
        let (Some(idp), Some(uid)) = (single(&caller.extra, "idp"), single(&caller.extra, "uid"))
        else {
            return Err(FederationError::InvalidRequest(
                Reason::BadRegistrationToken,
            ));
        };
        if caller.username != PRE_REGISTRATION_USER || caller.session_id.is_empty() {
            return Err(FederationError::InvalidRequest(
                Reason::BadRegistrationToken,
            ));
        }
        let username = single(&caller.extra, "username").map(str::to_owned);
        self.complete_registration(&caller.session_id, idp, uid, username, name, email)
            .await
            .map_err(|e| match e {
                FederationError::InvalidRequest(_) => {
                    FederationError::Conflict(Reason::PreRegistrationUsed)
                }
                other => other,
            })
    }

    /// The refresh grant for a pre-registration session: once its user exists (and is not
    /// disabled), ends the pre-registration session and starts one for the user. Called by
    /// [`Engine::refresh`] after the usual refresh-token checks.
    pub(crate) async fn refresh_pre_registration(
        &self,
        claims: &Claims,
        session: &Session,
    ) -> Result<IssuedTokens, AuthError> {
        let invalid = |m: &str| AuthError::InvalidGrant(m.to_owned());
        let (Some(idp), Some(uid)) = (single(&claims.extra, "idp"), single(&claims.extra, "uid"))
        else {
            return Err(invalid("invalid pre-registration token"));
        };
        let link = self.store.find_identity(idp, uid).await?.ok_or_else(|| {
            invalid(
                "no user has been created for this pre-registration yet; create it with \
                 POST /kapis/iam.kubesphere.io/v1alpha2/users first",
            )
        })?;
        let ctx = RequestContext {
            ip: session.source_ip.clone(),
            user_agent: session.user_agent.clone(),
        };
        let user = match self.store.get_user(&link.user).await? {
            Some(u) if u.state != UserState::Disabled => u,
            _ => {
                self.record(
                    &link.user,
                    LOGIN_TYPE,
                    idp,
                    &ctx,
                    false,
                    "account is disabled",
                )
                .await;
                return Err(invalid("the user no longer exists or is disabled"));
            }
        };
        if !self.revoke_session(&session.id).await? {
            return Err(invalid("the refresh token has been revoked"));
        }
        let tokens = self
            .issue_session_with(
                &user,
                idp,
                &session.client_id,
                &ctx,
                crate::engine::SessionSpec::login(session.upstream_groups.clone()),
            )
            .await?;
        self.record(
            &user.name,
            LOGIN_TYPE,
            idp,
            &ctx,
            true,
            "authenticated successfully",
        )
        .await;
        Ok(tokens)
    }
}

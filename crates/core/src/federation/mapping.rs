//! From an upstream [`Identity`] to a local user: link lookup (with the migration of links
//! KubeSphere keyed by a mutable user name) and the `mappingMethod`s.

use portcullis_config::MappingMethod;
use portcullis_idp::{CallbackRequest, Identity, OAuthProvider};
use portcullis_store::{IdentityLink, PendingRegistration, StoreError, User, UserState};

use super::{FederationError, LOGIN_TYPE, ProviderEntry, REGISTRATION_TTL_MS, provider_failure};
use crate::engine::{Engine, IssuedTokens, RequestContext, random_id};
use crate::names::check_email;

/// Suffixes tried after a derived user name is taken (`name-2` ... `name-100`).
const MAX_SUFFIX: u32 = 100;

/// How a federated login ended well.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum FederatedLogin {
    /// Logged in as a linked user (`created` when `auto` mapping made it just now).
    LoggedIn {
        /// The user.
        user: User,
        /// Its new session's tokens.
        tokens: IssuedTokens,
        /// Whether the user was created by this login.
        created: bool,
    },
    /// `manual` mapping on the browser path: the person must confirm a name first.
    NeedsConfirmation(PendingRegistration),
    /// `manual` mapping on the ks-console path: tokens for `system:pre-registration`.
    PreRegistered(IssuedTokens),
}

/// Which path a login takes, with what that path needs.
#[derive(Debug, Clone)]
pub(crate) enum LoginPath<'a> {
    /// The browser path; the return address is kept for a pending registration.
    Browser { return_to: Option<String> },
    /// The ks-console path, for the client that asked (empty when none).
    Console { client_id: &'a str },
}

impl LoginPath<'_> {
    fn client_id(&self) -> &str {
        match self {
            LoginPath::Browser { .. } => "",
            LoginPath::Console { client_id } => client_id,
        }
    }
}

/// A valid user name derived from an upstream name: lower-cased, every character outside
/// `a-z 0-9 - _ .` replaced by `-`, leading and trailing separators trimmed, at most 63
/// characters; `user` when nothing is left.
pub fn derive_user_name(upstream: &str) -> String {
    let mapped: String = upstream
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let cut: String = trim_separators(&mapped).chars().take(63).collect();
    let name = trim_separators(&cut);
    if name.is_empty() {
        "user".to_owned()
    } else {
        name.to_owned()
    }
}

fn trim_separators(s: &str) -> &str {
    s.trim_matches(|c: char| !c.is_ascii_alphanumeric())
}

/// `base` for `n == 1`, else `base-n`, shortening `base` so the result stays within 63 characters.
fn with_suffix(base: &str, n: u32) -> String {
    if n == 1 {
        return base.to_owned();
    }
    let suffix = format!("-{n}");
    let keep: String = base.chars().take(63 - suffix.len()).collect();
    format!("{}{suffix}", trim_separators(&keep))
}

impl Engine {
    /// Records a failed federated login (type `Token`, provider = the IdP's name) and returns the
    /// error. `reason` defaults to the error's message.
    pub(crate) async fn federation_failure(
        &self,
        provider: &str,
        subject: &str,
        ctx: &RequestContext,
        err: FederationError,
        reason: Option<&str>,
    ) -> FederationError {
        let text = err.to_string();
        self.record(
            subject,
            LOGIN_TYPE,
            provider,
            ctx,
            false,
            reason.unwrap_or(&text),
        )
        .await;
        metrics::counter!("portcullis_logins_total", "provider" => provider.to_owned(), "result" => "failure")
            .increment(1);
        err
    }

    /// Exchanges the callback at the provider and maps the identity.
    pub(crate) async fn exchange_and_map(
        &self,
        entry: &ProviderEntry,
        provider: &dyn OAuthProvider,
        callback: &CallbackRequest,
        path: LoginPath<'_>,
        ctx: &RequestContext,
    ) -> Result<FederatedLogin, FederationError> {
        let name = entry.name();
        let identity = match provider.exchange(callback).await {
            Ok(identity) => identity,
            Err(e) => {
                let (err, detail) = provider_failure(name, &e);
                let subject = format!("{name}:unknown");
                return Err(self
                    .federation_failure(name, &subject, ctx, err, Some(&detail))
                    .await);
            }
        };
        self.map_identity(entry, &identity, path, ctx).await
    }

    /// Applies the link lookup and the provider's `mappingMethod` to `identity`.
    pub(crate) async fn map_identity(
        &self,
        entry: &ProviderEntry,
        identity: &Identity,
        path: LoginPath<'_>,
        ctx: &RequestContext,
    ) -> Result<FederatedLogin, FederationError> {
        let name = entry.name();
        let subject = format!("{name}:{}", identity.user_id());
        let link = match self.find_link(name, identity).await {
            Ok(link) => link,
            Err(e) => {
                return Err(self
                    .federation_failure(name, &subject, ctx, e.into(), None)
                    .await);
            }
        };
        if let Some(link) = link {
            return self
                .login_linked(name, &link.user, path.client_id(), ctx)
                .await;
        }
        match entry.config.mapping_method {
            MappingMethod::Lookup => {
                let e = FederationError::Denied(format!(
                    "no account is linked to this {} identity; ask an administrator to link it",
                    entry.label()
                ));
                Err(self.federation_failure(name, &subject, ctx, e, None).await)
            }
            MappingMethod::Auto => {
                self.auto_create(name, identity, path.client_id(), ctx)
                    .await
            }
            MappingMethod::Manual => match path {
                LoginPath::Browser { return_to } => {
                    let reg = self
                        .open_registration(name, identity, random_id(), return_to)
                        .await;
                    match reg {
                        Ok(reg) => Ok(FederatedLogin::NeedsConfirmation(reg)),
                        Err(e) => Err(self.federation_failure(name, &subject, ctx, e, None).await),
                    }
                }
                LoginPath::Console { client_id } => {
                    match self
                        .issue_pre_registration(name, identity, client_id, ctx)
                        .await
                    {
                        Ok(tokens) => Ok(FederatedLogin::PreRegistered(tokens)),
                        Err(e) => Err(self.federation_failure(name, &subject, ctx, e, None).await),
                    }
                }
            },
        }
    }

    /// The link of `identity` at `provider`: by its stable id, else by a legacy id, in which
    /// case the link is re-keyed to the stable id. A legacy link is re-keyed only when it was
    /// stored under the name it is found by (KubeSphere's shape) and its user has no other link
    /// at this provider; otherwise it is left alone and not used.
    async fn find_link(
        &self,
        provider: &str,
        identity: &Identity,
    ) -> Result<Option<IdentityLink>, StoreError> {
        if let Some(link) = self
            .store
            .find_identity(provider, identity.user_id())
            .await?
        {
            return Ok(Some(link));
        }
        for legacy in &identity.legacy_user_ids {
            let Some(old) = self.store.find_identity(provider, legacy).await? else {
                continue;
            };
            let named_after_it = old
                .upstream_username
                .as_deref()
                .is_none_or(|u| u.eq_ignore_ascii_case(legacy));
            let has_other = self
                .store
                .list_identities(&old.user)
                .await?
                .iter()
                .any(|l| l.provider == provider && l.upstream_uid != old.upstream_uid);
            if !named_after_it || has_other {
                tracing::warn!(
                    provider,
                    user = %old.user,
                    "a legacy identity link matches this login's former name but looks stale; not used"
                );
                continue;
            }
            let new = IdentityLink {
                provider: provider.to_owned(),
                upstream_uid: identity.user_id().to_owned(),
                user: old.user.clone(),
                upstream_username: identity.username.clone(),
                upstream_email: identity.email.clone(),
                created_at: old.created_at,
            };
            match self.store.rekey_identity(legacy, &new).await {
                Ok(true) => {
                    tracing::info!(provider, user = %new.user, "legacy identity link moved to the stable upstream id");
                    return Ok(Some(new));
                }
                Ok(false) => continue,
                Err(StoreError::Conflict(_)) => {
                    return self.store.find_identity(provider, identity.user_id()).await;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Logs in the linked user `user_name`: refused when disabled; else a session, a success
    /// record and the last-login time.
    pub(crate) async fn login_linked(
        &self,
        provider: &str,
        user_name: &str,
        client_id: &str,
        ctx: &RequestContext,
    ) -> Result<FederatedLogin, FederationError> {
        let user = match self.store.get_user(user_name).await {
            Ok(Some(u)) => u,
            Ok(None) => {
                let e = FederationError::Denied(format!(
                    "the linked account \"{user_name}\" no longer exists"
                ));
                return Err(self
                    .federation_failure(provider, user_name, ctx, e, None)
                    .await);
            }
            Err(e) => {
                return Err(self
                    .federation_failure(provider, user_name, ctx, e.into(), None)
                    .await);
            }
        };
        self.login_user(provider, user, client_id, false, ctx).await
    }

    pub(crate) async fn login_user(
        &self,
        provider: &str,
        user: User,
        client_id: &str,
        created: bool,
        ctx: &RequestContext,
    ) -> Result<FederatedLogin, FederationError> {
        if user.state == UserState::Disabled {
            let e = FederationError::AccountDisabled(format!(
                "the account \"{}\" is disabled",
                user.name
            ));
            return Err(self
                .federation_failure(provider, &user.name, ctx, e, Some("account is disabled"))
                .await);
        }
        let tokens = match self.issue_session(&user, provider, client_id, ctx).await {
            Ok(t) => t,
            Err(e) => {
                return Err(self
                    .federation_failure(provider, &user.name, ctx, e.into(), None)
                    .await);
            }
        };
        self.record(
            &user.name,
            LOGIN_TYPE,
            provider,
            ctx,
            true,
            "authenticated successfully",
        )
        .await;
        let _ = self.store.set_last_login(&user.name, self.now_ms()).await;
        metrics::counter!("portcullis_logins_total", "provider" => provider.to_owned(), "result" => "success")
            .increment(1);
        Ok(FederatedLogin::LoggedIn {
            user,
            tokens,
            created,
        })
    }

    /// `auto`: creates a user named after the upstream user name (first free of `name`,
    /// `name-2`, `name-3`, ...) together with its link, in one transaction. An existing user is
    /// never adopted. The upstream email is kept unless another user already has it.
    async fn auto_create(
        &self,
        provider: &str,
        identity: &Identity,
        client_id: &str,
        ctx: &RequestContext,
    ) -> Result<FederatedLogin, FederationError> {
        let subject = format!("{provider}:{}", identity.user_id());
        match self.create_auto_user(provider, identity).await {
            Ok(Ok(user)) => self.login_user(provider, user, client_id, true, ctx).await,
            Ok(Err(linked_to)) => {
                self.login_linked(provider, &linked_to, client_id, ctx)
                    .await
            }
            Err(e) => Err(self
                .federation_failure(provider, &subject, ctx, e, None)
                .await),
        }
    }

    /// The user created for `identity`, or (`Err` inside) the user someone linked it to
    /// concurrently.
    async fn create_auto_user(
        &self,
        provider: &str,
        identity: &Identity,
    ) -> Result<Result<User, String>, FederationError> {
        let base = derive_user_name(identity.username.as_deref().unwrap_or(identity.user_id()));
        let mut email = identity.email.clone().filter(|e| check_email(e).is_ok());
        let mut n = 1;
        while n <= MAX_SUFFIX {
            let name = with_suffix(&base, n);
            if self.store.get_user(&name).await?.is_some() {
                n += 1;
                continue;
            }
            let now = self.now_ms();
            let user = User {
                name: name.clone(),
                uid: uuid::Uuid::new_v4().to_string(),
                email: email.clone(),
                display_name: identity.display_name.clone(),
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
                upstream_uid: identity.user_id().to_owned(),
                user: name.clone(),
                upstream_username: identity.username.clone(),
                upstream_email: identity.email.clone(),
                created_at: now,
            };
            match self.store.create_linked_user(&user, &link, None, now).await {
                Ok(()) => {
                    tracing::info!(provider, user = %name, "created a user on first login (mappingMethod auto)");
                    return Ok(Ok(user));
                }
                Err(StoreError::Conflict(_)) => {
                    // Which rule broke? A concurrent first login of the same identity, the email,
                    // or the name (taken since the check).
                    if let Some(l) = self
                        .store
                        .find_identity(provider, identity.user_id())
                        .await?
                    {
                        return Ok(Err(l.user));
                    }
                    if let Some(e) = &email
                        && self.store.get_user_by_email(e).await?.is_some()
                    {
                        tracing::info!(provider, user = %name, "the upstream email is used by another user; creating the user without it");
                        email = None;
                        continue;
                    }
                    n += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(FederationError::Conflict(format!(
            "no free user name derived from \"{base}\" ({base} to {base}-{MAX_SUFFIX} are taken); ask an administrator to create and link the account"
        )))
    }

    /// Stores a pending registration for `identity` (30 minutes) with a proposed free name.
    pub(crate) async fn open_registration(
        &self,
        provider: &str,
        identity: &Identity,
        id: String,
        return_to: Option<String>,
    ) -> Result<PendingRegistration, FederationError> {
        let base = derive_user_name(identity.username.as_deref().unwrap_or(identity.user_id()));
        let mut proposed = base.clone();
        for n in 1..=MAX_SUFFIX {
            proposed = with_suffix(&base, n);
            if self.store.get_user(&proposed).await?.is_none() {
                break;
            }
        }
        let now = self.now_ms();
        let reg = PendingRegistration {
            id,
            provider: provider.to_owned(),
            upstream_uid: identity.user_id().to_owned(),
            upstream_username: identity.username.clone(),
            upstream_email: identity.email.clone(),
            proposed_name: proposed,
            proposed_email: identity.email.clone().filter(|e| check_email(e).is_ok()),
            csrf_token: random_id(),
            return_to,
            created_at: now,
            expires_at: now + REGISTRATION_TTL_MS,
        };
        self.store.create_registration(&reg).await?;
        Ok(reg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_are_derived_safely() {
        assert_eq!(derive_user_name("OctoCat"), "octocat");
        assert_eq!(derive_user_name("john_doe.smith"), "john_doe.smith");
        assert_eq!(derive_user_name("Jöhn Doe"), "j-hn-doe");
        assert_eq!(derive_user_name("system:admin"), "system-admin");
        assert_eq!(derive_user_name("__x__"), "x");
        assert_eq!(
            derive_user_name("auth0|abc@example.com"),
            "auth0-abc-example.com"
        );
        assert_eq!(derive_user_name(""), "user");
        assert_eq!(derive_user_name("ééé"), "user");
        assert_eq!(derive_user_name(&"a".repeat(100)).len(), 63);
        assert_eq!(
            derive_user_name(&format!("{}-b", "a".repeat(62))),
            "a".repeat(62)
        );
        for name in ["OctoCat", "x", &"b".repeat(80)] {
            assert!(crate::names::check_user_name(&derive_user_name(name)).is_ok());
        }
    }

    #[test]
    fn suffixes_keep_names_valid() {
        assert_eq!(with_suffix("octocat", 1), "octocat");
        assert_eq!(with_suffix("octocat", 2), "octocat-2");
        let long = with_suffix(&"a".repeat(63), 100);
        assert_eq!(long.len(), 63);
        assert!(long.ends_with("-100"));
        assert_eq!(
            with_suffix(&format!("{}-b", "a".repeat(59)), 12),
            format!("{}-12", "a".repeat(59))
        );
        assert!(crate::names::check_user_name(&with_suffix("a.b", 3)).is_ok());
    }
}

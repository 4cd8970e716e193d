//! Creating users for first logins: names derived from the upstream user name, `auto` mapping
//! (user and link in one transaction, never adopting an existing user) and the pending
//! registrations of `manual` mapping.

use portcullis_idp::Identity;
use portcullis_store::{IdentityLink, PendingRegistration, StoreError, User, UserState};

use super::mapping::FederatedLogin;
use super::{FederationError, REGISTRATION_TTL_MS, Reason};
use crate::engine::{Engine, RequestContext, random_id};
use crate::names::check_email;

/// Suffixes tried after a derived user name is taken (`name-2` ... `name-100`).
const MAX_SUFFIX: u32 = 100;

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
    /// `auto`: creates a user named after the upstream user name (first free of `name`,
    /// `name-2`, `name-3`, ...) together with its link, in one transaction. An existing user is
    /// never adopted. The upstream email is kept unless another user already has it.
    pub(crate) async fn auto_create(
        &self,
        provider: &str,
        identity: &Identity,
        client_id: &str,
        ctx: &RequestContext,
    ) -> Result<FederatedLogin, FederationError> {
        let subject = format!("{provider}:{}", identity.user_id());
        match self.create_auto_user(provider, identity).await {
            Ok(Ok(user)) => {
                self.login_user(provider, user, &identity.groups, client_id, true, ctx)
                    .await
            }
            Ok(Err(linked_to)) => {
                self.login_linked(provider, &linked_to, &identity.groups, client_id, ctx)
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
                upstream_email_verified: identity.email_verified == Some(true),
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
        Err(FederationError::Conflict(Reason::NoFreeName {
            base,
            max: MAX_SUFFIX,
        }))
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
            upstream_email_verified: identity.email_verified == Some(true),
            proposed_name: proposed,
            proposed_email: identity.email.clone().filter(|e| check_email(e).is_ok()),
            csrf_token: random_id(),
            return_to,
            created_at: now,
            expires_at: now + REGISTRATION_TTL_MS,
            upstream_groups: identity.groups.clone(),
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

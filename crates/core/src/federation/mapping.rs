//! From an upstream [`Identity`] to a local user: link lookup (with the migration of links
//! KubeSphere keyed by a mutable user name) and the `mappingMethod`s.

use portcullis_config::MappingMethod;
use portcullis_idp::{CallbackRequest, Identity, OAuthProvider};
use portcullis_store::{IdentityLink, PendingRegistration, StoreError, User, UserState};
use tracing::Instrument;

use super::{FederationError, LOGIN_TYPE, ProviderEntry, Reason, provider_failure};
use crate::engine::{Engine, IssuedTokens, RequestContext, random_id};

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

impl Engine {
    /// Records a failed federated login (type `Token`, provider = the IdP's name) and returns the
    /// error. `reason` defaults to the error's message. A name that is not a configured provider
    /// (a 404 for a made-up path) writes no record and counts under `provider="unknown"`, so
    /// request paths cannot grow the metrics or the records with names of their choosing.
    pub(crate) async fn federation_failure(
        &self,
        provider: &str,
        subject: &str,
        ctx: &RequestContext,
        err: FederationError,
        reason: Option<&str>,
    ) -> FederationError {
        let configured = self.providers().get(provider).is_some();
        if configured {
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
        }
        let label = if configured { provider } else { "unknown" };
        metrics::counter!("portcullis_logins_total", "provider" => label.to_owned(), "result" => "failure")
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
        let started = std::time::Instant::now();
        let exchanged = provider
            .exchange(callback)
            .instrument(crate::observe::upstream_span(name, "exchange"))
            .await;
        crate::observe::upstream_latency(name, "exchange", started, exchanged.is_ok());
        let identity = match exchanged {
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
        // Groups first: a person outside `allowedGroups` gets no user, link or registration.
        let identity = &match super::groups::apply_group_policy(entry, identity) {
            Ok(mapped) => mapped,
            Err(e) => return Err(self.federation_failure(name, &subject, ctx, e, None).await),
        };
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
                .login_linked(name, &link.user, &identity.groups, path.client_id(), ctx)
                .await;
        }
        match entry.config.mapping_method {
            MappingMethod::Lookup => {
                let e = FederationError::Denied(Reason::NotLinked {
                    provider: entry.label().to_owned(),
                });
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
    pub(crate) async fn find_link(
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
                upstream_email_verified: identity.email_verified == Some(true),
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
        upstream_groups: &[String],
        client_id: &str,
        ctx: &RequestContext,
    ) -> Result<FederatedLogin, FederationError> {
        let user = match self.store.get_user(user_name).await {
            Ok(Some(u)) => u,
            Ok(None) => {
                let e = FederationError::Denied(Reason::LinkedUserGone {
                    user: user_name.to_owned(),
                });
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
        self.login_user(provider, user, upstream_groups, client_id, false, ctx)
            .await
    }

    pub(crate) async fn login_user(
        &self,
        provider: &str,
        user: User,
        upstream_groups: &[String],
        client_id: &str,
        created: bool,
        ctx: &RequestContext,
    ) -> Result<FederatedLogin, FederationError> {
        if user.state == UserState::Disabled {
            let e = FederationError::AccountDisabled(Reason::AccountDisabled {
                user: user.name.clone(),
            });
            return Err(self
                .federation_failure(provider, &user.name, ctx, e, Some("account is disabled"))
                .await);
        }
        // The session and its login record are written together.
        let record = self.login_record(
            &user.name,
            LOGIN_TYPE,
            provider,
            ctx,
            true,
            "authenticated successfully",
        );
        let issued = self
            .issue_session_with(
                &user,
                provider,
                client_id,
                ctx,
                crate::engine::SessionSpec::login(upstream_groups.to_vec()).recording(record, None),
            )
            .await;
        let tokens = match issued {
            Ok(t) => t,
            Err(e) => {
                return Err(self
                    .federation_failure(provider, &user.name, ctx, e.into(), None)
                    .await);
            }
        };
        metrics::counter!("portcullis_logins_total", "provider" => provider.to_owned(), "result" => "success")
            .increment(1);
        Ok(FederatedLogin::LoggedIn {
            user,
            tokens,
            created,
        })
    }
}

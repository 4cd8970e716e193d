//! Linking another identity provider to the signed-in account (the account page's "link"
//! button): the browser login of [`super::login_state`], but the identity it proves is linked
//! to the session's user instead of logging anyone in.

use std::collections::BTreeMap;

use portcullis_store::IdentityLink;
use tracing::Instrument;

use super::{FederationError, Reason, provider_failure};
use crate::engine::{Engine, RequestContext};

impl Engine {
    /// Finishes a link started with [`Engine::start_federated_login`] by the signed-in `user`:
    /// the same state checks as a login, then the code is exchanged and the identity linked to
    /// `user`. Linking an identity that is already `user`'s succeeds; one linked to another user
    /// is refused with [`FederationError::Conflict`]. Failures are recorded in the login history.
    pub async fn finish_browser_link(
        &self,
        name: &str,
        cookie_state: &str,
        params: BTreeMap<String, String>,
        user: &str,
        ctx: &RequestContext,
    ) -> Result<(IdentityLink, Option<String>), FederationError> {
        let checked = self
            .take_browser_state(name, cookie_state, params, ctx)
            .await?;
        let exchanged = checked
            .provider
            .exchange(&checked.callback)
            .instrument(crate::observe::upstream_span(name, "exchange"))
            .await;
        let identity = match exchanged {
            Ok(identity) => identity,
            Err(e) => {
                let (err, detail) = provider_failure(name, &e);
                return Err(self
                    .federation_failure(name, user, ctx, err, Some(&detail))
                    .await);
            }
        };
        let elsewhere = || Reason::IdentityLinkedElsewhere {
            provider: checked.entry.label().to_owned(),
        };
        let existing = self.find_link(name, &identity).await?;
        let link = match existing {
            Some(l) if l.user == user => l,
            Some(_) => {
                let e = FederationError::Conflict(elsewhere());
                return Err(self.federation_failure(name, user, ctx, e, None).await);
            }
            None => self
                .link_identity(user, name, identity.user_id(), identity.username.as_deref())
                .await
                .map_err(|e| match e {
                    // Linked to someone else since the lookup above.
                    crate::CoreError::Conflict(_) => FederationError::Conflict(elsewhere()),
                    other => other.into(),
                })?,
        };
        Ok((link, checked.row.return_to))
    }
}

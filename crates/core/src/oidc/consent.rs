//! Consent (`grantMethod`): `auto` never asks, `prompt` asks once per client and scope set and
//! remembers the answer in the store (a wider scope set, or `prompt=consent`, asks again),
//! `deny` is refused before any page (see [`super::authorize`]).

use portcullis_config::GrantMethod;
use portcullis_store::{Consent, StoreError};

use super::authorize::AuthRequest;
use super::claims::Scopes;
use crate::engine::Engine;

impl Engine {
    /// Whether `user` must see the consent page for this request.
    pub(crate) async fn needs_consent(
        &self,
        req: &AuthRequest,
        user: &str,
    ) -> Result<bool, StoreError> {
        if req.client.grant_method != GrantMethod::Prompt {
            return Ok(false);
        }
        if req.prompt.consent {
            return Ok(true);
        }
        let remembered = self.store.get_consent(user, &req.client.name).await?;
        Ok(!remembered.is_some_and(|c| req.scopes.is_subset(&Scopes::parse(&c.scopes))))
    }

    /// Remembers that the user allowed the request's scopes for its client (added to what was
    /// allowed before).
    pub async fn remember_consent(&self, req: &AuthRequest, user: &str) -> Result<(), StoreError> {
        let before = self.store.get_consent(user, &req.client.name).await?;
        let scopes = before
            .map(|c| Scopes::parse(&c.scopes))
            .unwrap_or_default()
            .union(&req.scopes);
        self.store
            .put_consent(&Consent {
                user: user.to_owned(),
                client_id: req.client.name.clone(),
                scopes: scopes.to_string(),
                granted_at: self.now_ms(),
            })
            .await
    }
}

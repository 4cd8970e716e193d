//! Linking and unlinking identities by hand (`portcullis user link|unlink`).

use portcullis_store::IdentityLink;

use crate::engine::Engine;
use crate::error::CoreError;

fn check_part(what: &str, value: &str) -> Result<(), CoreError> {
    if value.trim().is_empty() || value.len() > 512 || value.chars().any(char::is_control) {
        return Err(CoreError::Invalid(format!(
            "{what} must be non-empty printable text of at most 512 bytes"
        )));
    }
    Ok(())
}

impl Engine {
    /// Links the upstream identity `(provider, uid)` to `user`. The provider need not be in the
    /// configuration (links can be prepared, or imported, before it is). Errors name the user
    /// that already holds the identity.
    pub async fn link_identity(
        &self,
        user: &str,
        provider: &str,
        uid: &str,
        upstream_username: Option<&str>,
    ) -> Result<IdentityLink, CoreError> {
        check_part("the provider name", provider)?;
        check_part("the upstream user id", uid)?;
        self.get_user(user).await?;
        let link = IdentityLink {
            provider: provider.to_owned(),
            upstream_uid: uid.to_owned(),
            user: user.to_owned(),
            upstream_username: upstream_username.map(str::to_owned),
            upstream_email: None,
            upstream_email_verified: false,
            created_at: self.now_ms(),
        };
        self.store.link_identity(&link).await?;
        Ok(link)
    }

    /// Removes the link `(provider, uid)` of `user`. Refused when the identity is not linked,
    /// or linked to another user.
    pub async fn unlink_identity(
        &self,
        user: &str,
        provider: &str,
        uid: &str,
    ) -> Result<(), CoreError> {
        self.get_user(user).await?;
        match self.store.find_identity(provider, uid).await? {
            None => Err(CoreError::NotFound(format!(
                "identity {provider}/{uid} is not linked to any user"
            ))),
            Some(l) if l.user != user => Err(CoreError::Conflict(format!(
                "identity {provider}/{uid} is linked to user {:?}, not {user:?}",
                l.user
            ))),
            Some(_) => {
                self.store.unlink_identity(provider, uid).await?;
                Ok(())
            }
        }
    }
}

//! OAuth client authentication at the token endpoint.

use portcullis_config::OAuthClient;
use subtle::ConstantTimeEq;

use crate::engine::Engine;
use crate::error::AuthError;

/// Constant-time string equality (no early exit on the first differing byte).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl Engine {
    /// Authenticates the client of a token request. With no `oauthOptions.clients` configured,
    /// no client is required (KubeSphere 3.1) and `Ok(None)` is returned. Otherwise `client_id`
    /// must name a configured client and, for a confidential client, `client_secret` must match.
    pub fn authenticate_client(
        &self,
        client_id: Option<&str>,
        secret: Option<&str>,
    ) -> Result<Option<OAuthClient>, AuthError> {
        let settings = self.settings();
        if settings.clients.is_empty() {
            return Ok(None);
        }
        let Some(id) = client_id.filter(|s| !s.is_empty()) else {
            return Err(AuthError::InvalidClient(
                "client authentication is required: send client_id and client_secret".into(),
            ));
        };
        let Some(client) = settings.client(id) else {
            return Err(AuthError::InvalidClient(
                "the OAuth client was not found".into(),
            ));
        };
        match (&client.secret, secret) {
            (Some(expected), Some(given)) if constant_time_eq(expected.expose(), given) => {
                Ok(Some(client.clone()))
            }
            (Some(_), _) => Err(AuthError::InvalidClient(
                "invalid client credentials".into(),
            )),
            (None, Some(given)) if !given.is_empty() => Err(AuthError::InvalidClient(
                "this is a public client; it has no secret".into(),
            )),
            (None, _) => Ok(Some(client.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn ct_eq() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
        assert!(constant_time_eq("", ""));
    }
}

//! ID tokens: issued at the code exchange and on refresh (OpenID Connect Core §2, §3.1.3.6,
//! §12.2), and verified when a relying party presents one back as `id_token_hint`.
//!
//! Claims: `iss`, `sub` (user name), `aud` (the client), `azp`, `exp`, `iat`, `auth_time`, `nonce`
//! (code flow only, never on refresh), `at_hash`, `sid` (the session the tokens belong to), and
//! the user claims the scopes release. Lifetime: the client's access-token lifetime (one hour when
//! access tokens never expire).

use portcullis_config::OAuthClient;
use portcullis_store::User;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::claims::Scopes;
use super::{OidcError, jws};
use crate::engine::Engine;

/// What an ID token is made from.
pub(crate) struct IdTokenInput<'a> {
    pub(crate) user: &'a User,
    pub(crate) client: &'a OAuthClient,
    pub(crate) scopes: &'a Scopes,
    pub(crate) auth_time_ms: i64,
    pub(crate) nonce: Option<&'a str>,
    pub(crate) access_token: &'a str,
    pub(crate) sid: &'a str,
}

/// A verified `id_token_hint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdTokenHint {
    /// `sub`: the user name.
    pub sub: String,
    /// The client the token was issued to (`aud`).
    pub client_id: String,
    /// `sid`: the session the token belongs to.
    pub sid: Option<String>,
}

/// `at_hash`: base64url of the left half of SHA-256 of the access token (both RS256 and ES256
/// use SHA-256).
pub(crate) fn at_hash(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    jws::b64(&digest[..16])
}

fn refused() -> OidcError {
    OidcError::InvalidRequest("id_token_hint is not a valid ID token issued by this server".into())
}

impl Engine {
    /// Signs an ID token with the client's algorithm.
    pub(crate) async fn sign_id_token(&self, i: IdTokenInput<'_>) -> Result<String, OidcError> {
        let now = self.now_ms();
        let iat = now.div_euclid(1000);
        let settings = self.settings();
        let (max_age, _) = settings.lifetimes(Some(i.client));
        let lifetime_s = if max_age > 0 { max_age / 1000 } else { 3600 };
        let mut claims = json!({
            "iss": self.oidc_issuer(),
            "sub": i.user.name,
            "aud": i.client.name,
            "azp": i.client.name,
            "exp": iat + lifetime_s.max(1),
            "iat": iat,
            "auth_time": i.auth_time_ms.div_euclid(1000),
            "at_hash": at_hash(i.access_token),
            "sid": i.sid,
        });
        if let Some(n) = i.nonce {
            claims["nonce"] = json!(n);
        }
        for (k, v) in self.claims_for(i.user, i.scopes).await? {
            claims[k] = v;
        }
        let alg = i.client.id_token_signing_alg;
        let ring = self.oidc.keys.ring(self.store.as_ref(), now).await?;
        let (kid, signer) = ring.signer(alg, now).ok_or_else(|| {
            tracing::error!(alg = alg.as_str(), "no usable ID-token signing key");
            OidcError::Internal("the server has no usable signing key; try again later".into())
        })?;
        jws::sign(signer, kid, &claims).map_err(|e| {
            tracing::error!(error = %e, "signing an ID token failed");
            OidcError::Internal("signing the ID token failed".into())
        })
    }

    /// Verifies an ID token this server issued (signature with a published key whose algorithm
    /// the header must name, issuer, audience). An expired token is accepted, as OpenID Connect
    /// RP-Initiated Logout asks: it only identifies the session to end.
    pub async fn verify_id_token_hint(&self, token: &str) -> Result<IdTokenHint, OidcError> {
        let parsed = jws::parse(token).ok_or_else(refused)?;
        if !matches!(parsed.alg.as_str(), "RS256" | "ES256") {
            return Err(refused());
        }
        let kid = parsed.kid.clone().ok_or_else(refused)?;
        let now = self.now_ms();
        let mut ring = self.oidc.keys.ring(self.store.as_ref(), now).await?;
        if ring.get(&kid).is_none() {
            // Maybe a key another replica generated a moment ago.
            ring = self
                .oidc
                .keys
                .reload(self.store.as_ref(), now, true)
                .await?;
        }
        let key = ring.get(&kid).ok_or_else(refused)?;
        let payload = parsed.verify(&key.verifier).ok_or_else(refused)?;
        let claims: Value = serde_json::from_slice(&payload).map_err(|_| refused())?;
        if claims.get("iss").and_then(Value::as_str) != Some(self.oidc_issuer().as_str()) {
            return Err(refused());
        }
        let aud = match claims.get("aud") {
            Some(Value::String(a)) => vec![a.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        let settings = self.settings();
        let client_id = aud
            .into_iter()
            .find(|a| settings.client(a).is_some())
            .ok_or_else(refused)?;
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or_else(refused)?
            .to_owned();
        Ok(IdTokenHint {
            sub,
            client_id,
            sid: claims.get("sid").and_then(Value::as_str).map(str::to_owned),
        })
    }
}

impl Engine {
    /// RP-initiated logout with a verified hint: revokes the session the ID token belongs to and
    /// the browser session the user logged in with. Returns how many sessions were revoked.
    pub async fn end_session_of(&self, hint: &IdTokenHint) -> Result<usize, crate::CoreError> {
        let Some(sid) = hint.sid.as_deref().filter(|s| !s.is_empty()) else {
            return Ok(0);
        };
        let mut n = 0;
        if let Some(grant) = self.store.get_oidc_grant(sid).await?
            && grant.user == hint.sub
            && !grant.auth_session.is_empty()
        {
            n += usize::from(self.revoke_session(&grant.auth_session).await?);
        }
        n += usize::from(self.revoke_session(sid).await?);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn at_hash_matches_the_spec_example() {
        // OpenID Connect Core, Appendix A.3/A.4 (access token "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y").
        assert_eq!(
            super::at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}

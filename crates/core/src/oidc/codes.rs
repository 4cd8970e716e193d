//! Authorization codes: issued by the authorization endpoint, exchanged once at the token
//! endpoint (`grant_type=authorization_code`, or KubeSphere 3.2's `code`).
//!
//! A code is 256 random bits, stored only as its SHA-256, valid for [`CODE_TTL_MS`], and bound to
//! the client, the redirect URI, the PKCE challenge, the nonce, the scopes and the browser session
//! the user logged in with. Its exchange creates a session whose id was reserved when the code was
//! issued, so a replay revokes that session whenever it comes: before the exchange finished (the
//! exchange sees the replay mark after creating the session and revokes it) or after (the replay
//! revokes it directly). RFC 6749 §4.1.2, RFC 7636 §4.6, RFC 9700 §4.2.
//!
//! Refresh tokens: returned when the client was granted `offline_access`, or when the client is
//! `trusted` (KubeSphere's first-party clients, which always received one). They rotate on use with
//! reuse detection ([`Engine::refresh`]); refreshing also issues a new ID token.

use std::sync::Arc;

use portcullis_config::OAuthClient;
use portcullis_store::{AuthCode, CodeTake, OidcGrant, UserState};
use sha2::{Digest, Sha256};

use super::authorize::{AuthRequest, BrowserSession};
use super::claims::Scopes;
use super::id_token::IdTokenInput;
use super::{CODE_TTL_MS, OidcError, jws};
use crate::activity::GrantFacts;
use crate::clients::constant_time_eq;
use crate::engine::{Engine, IssuedTokens, Refreshed, RequestContext, random_id};

/// A code presented at the token endpoint by an authenticated (or, for a public client,
/// identified) client.
#[derive(Debug)]
pub struct CodeExchange<'a> {
    /// The code.
    pub code: &'a str,
    /// `redirect_uri` of the token request.
    pub redirect_uri: Option<&'a str>,
    /// `code_verifier` (PKCE).
    pub code_verifier: Option<&'a str>,
    /// The client.
    pub client: &'a OAuthClient,
}

/// What a successful code or refresh grant answers.
#[derive(Debug, Clone)]
pub struct OidcTokens {
    /// The session's tokens.
    pub tokens: IssuedTokens,
    /// The ID token, when `openid` was granted.
    pub id_token: Option<String>,
    /// Granted scopes.
    pub scope: String,
    /// Whether the refresh token goes to the client.
    pub refresh: bool,
}

fn hash(code: &str) -> String {
    jws::b64(&Sha256::digest(code.as_bytes()))
}

fn invalid(m: &str) -> OidcError {
    OidcError::InvalidGrant(m.to_owned())
}

/// Whether a session of `client` with `scopes` hands out its refresh token.
pub(crate) fn gives_refresh(client: &OAuthClient, scopes: &Scopes) -> bool {
    scopes.has("offline_access") || client.trusted
}

impl Engine {
    /// Issues a code for a request the user is logged in (and has consented) for.
    pub(crate) async fn issue_code(
        &self,
        req: &AuthRequest,
        browser: &BrowserSession,
    ) -> Result<String, portcullis_store::StoreError> {
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes);
        let code = jws::b64(&bytes);
        let now = self.now_ms();
        self.store
            .create_auth_code(&AuthCode {
                code_hash: hash(&code),
                client_id: req.client.name.clone(),
                redirect_uri: req.redirect_uri.clone(),
                redirect_uri_given: req.redirect_uri_given,
                code_challenge: req.code_challenge.clone(),
                nonce: req.nonce.clone(),
                scopes: req.scopes.to_string(),
                user: browser.user.name.clone(),
                auth_session: browser.session.id.clone(),
                auth_time: browser.session.created_at,
                session_id: random_id(),
                created_at: now,
                expires_at: now + CODE_TTL_MS,
            })
            .await?;
        metrics::counter!("portcullis_oidc_codes_issued_total").increment(1);
        Ok(code)
    }

    /// The authorization-code grant.
    pub async fn exchange_code(
        &self,
        x: &CodeExchange<'_>,
        ctx: &RequestContext,
    ) -> Result<OidcTokens, OidcError> {
        let code_hash = hash(x.code);
        let now = self.now_ms();
        let code = match self.store.take_auth_code(&code_hash, now).await? {
            CodeTake::Taken(c) => *c,
            CodeTake::Unknown => {
                return Err(invalid("the authorization code is invalid or expired"));
            }
            CodeTake::Replayed { session_id } => {
                tracing::warn!(
                    client = x.client.name,
                    "authorization code replayed; revoking the tokens issued with it"
                );
                metrics::counter!("portcullis_oidc_code_replays_total").increment(1);
                self.revoke_session(&session_id).await?;
                return Err(invalid(
                    "the authorization code was already used; the tokens issued with it have been revoked",
                ));
            }
        };
        if code.expires_at <= now {
            return Err(invalid("the authorization code is invalid or expired"));
        }
        if code.client_id != x.client.name {
            return Err(invalid(
                "the authorization code was issued to another client",
            ));
        }
        if (code.redirect_uri_given || x.redirect_uri.is_some())
            && x.redirect_uri != Some(code.redirect_uri.as_str())
        {
            return Err(invalid(
                "redirect_uri does not match the one of the authorization request",
            ));
        }
        check_pkce(&code, x)?;
        let user = match self.store.get_user(&code.user).await? {
            Some(u) if u.state != UserState::Disabled => u,
            _ => return Err(invalid("the user no longer exists or is disabled")),
        };
        let login = self.store.get_session(&code.auth_session).await?;
        let (provider, upstream_groups) = match login {
            Some(s)
                if s.revoked_at.is_none()
                    && s.expires_at.is_none_or(|e| e > now)
                    && !self.revocations.is_revoked(&s.id) =>
            {
                (s.provider, s.upstream_groups)
            }
            _ => return Err(invalid("the login session behind this code has ended")),
        };
        let grant = OidcGrant {
            session_id: code.session_id.clone(),
            client_id: x.client.name.clone(),
            user: user.name.clone(),
            scopes: code.scopes.clone(),
            auth_time: code.auth_time,
            auth_session: code.auth_session.clone(),
            created_at: now,
        };
        let tokens = self
            .issue_session_with(
                &user,
                &provider,
                &x.client.name,
                ctx,
                crate::engine::SessionSpec {
                    id: code.session_id.clone(),
                    is_login: false,
                    upstream_groups,
                    with: crate::engine::WrittenWith::Grant(grant),
                },
            )
            .await?;
        let scopes = Scopes::parse(&code.scopes);
        if self.store.auth_code_replayed(&code_hash).await? {
            self.revoke_session(&tokens.session_id).await?;
            return Err(invalid(
                "the authorization code was already used; the tokens issued with it have been revoked",
            ));
        }
        let id_token = if scopes.has("openid") {
            let input = IdTokenInput {
                user: &user,
                client: x.client,
                scopes: &scopes,
                auth_time_ms: code.auth_time,
                nonce: code.nonce.as_deref(),
                access_token: &tokens.access_token,
                sid: &tokens.session_id,
            };
            Some(self.sign_id_token(input).await?)
        } else {
            None
        };
        metrics::counter!("portcullis_oidc_codes_exchanged_total").increment(1);
        Ok(OidcTokens {
            refresh: gives_refresh(x.client, &scopes),
            tokens,
            id_token,
            scope: code.scopes,
        })
    }

    /// Completes a refresh grant for a session created by the code flow: the granted scopes
    /// and, with `openid`, a new ID token (same `auth_time`, no `nonce`). `None` for sessions
    /// that did not come from the code flow (ks-console's password logins).
    ///
    /// The grant never changes, so it is read once per session and process
    /// ([`crate::activity::GrantFacts`]); the user is the one the refresh grant just read.
    pub async fn oidc_refreshed(
        &self,
        refreshed: &Refreshed,
        client: Option<&OAuthClient>,
    ) -> Result<Option<OidcTokens>, OidcError> {
        let tokens = &refreshed.tokens;
        let Some(facts) = self.refreshed_grant_facts(refreshed).await? else {
            return Ok(None);
        };
        let (Some(granted), Some(auth_time)) = (&facts.scopes, facts.auth_time) else {
            return Ok(None);
        };
        let settings = self.settings();
        let Some(client) = client.or_else(|| settings.client(&facts.client_id)) else {
            return Ok(None);
        };
        let scopes = Scopes::parse(granted);
        let id_token = if scopes.has("openid") {
            let read;
            let user = match &refreshed.user {
                Some(user) => Some(user),
                None => {
                    read = self.store.get_user(&tokens.username).await?;
                    read.as_ref()
                }
            };
            match user {
                Some(user) if user.state != UserState::Disabled => {
                    let input = IdTokenInput {
                        user,
                        client,
                        scopes: &scopes,
                        auth_time_ms: auth_time,
                        nonce: None,
                        access_token: &tokens.access_token,
                        sid: &tokens.session_id,
                    };
                    Some(self.sign_id_token(input).await?)
                }
                _ => None,
            }
        } else {
            None
        };
        Ok(Some(OidcTokens {
            tokens: tokens.clone(),
            id_token,
            refresh: gives_refresh(client, &scopes),
            scope: granted.clone(),
        }))
    }

    /// The grant facts of a refreshed session: remembered, or read from the store and then
    /// remembered. `None` when there is no grant and the session's client is not known (the
    /// session a pre-registration's refresh started).
    async fn refreshed_grant_facts(
        &self,
        refreshed: &Refreshed,
    ) -> Result<Option<Arc<GrantFacts>>, OidcError> {
        let session_id = &refreshed.tokens.session_id;
        if let Some(facts) = self.activity.grant_facts(session_id) {
            return Ok(Some(facts));
        }
        let grant = self.store.get_oidc_grant(session_id).await?;
        let Some(client_id) = grant
            .as_ref()
            .map(|g| g.client_id.clone())
            .or_else(|| refreshed.client_id.clone())
        else {
            return Ok(None);
        };
        Ok(Some(self.remember_grant(session_id, client_id, grant)))
    }
}

/// A PKCE verifier or S256 challenge: 43 to 128 unreserved characters (RFC 7636 §4.1).
pub(crate) fn pkce_shape_ok(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// RFC 7636 §4.6: the verifier must hash to the challenge; a verifier without a challenge (a
/// downgrade attempt, RFC 9700 §4.8.2) and a public client's code without one are refused.
fn check_pkce(code: &AuthCode, x: &CodeExchange<'_>) -> Result<(), OidcError> {
    match (&code.code_challenge, x.code_verifier) {
        (Some(challenge), Some(verifier)) => {
            let shape = pkce_shape_ok(verifier);
            let computed = jws::b64(&Sha256::digest(verifier.as_bytes()));
            if shape && constant_time_eq(&computed, challenge) {
                Ok(())
            } else {
                Err(invalid(
                    "PKCE verification failed: code_verifier does not match code_challenge",
                ))
            }
        }
        (Some(_), None) => Err(invalid("code_verifier is required (PKCE)")),
        (None, Some(_)) => Err(invalid(
            "code_verifier sent, but the authorization request had no code_challenge",
        )),
        (None, None) if x.client.secret.is_none() => Err(invalid("a public client must use PKCE")),
        (None, None) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pkce_shapes() {
        assert!(super::pkce_shape_ok(&"a".repeat(43)));
        assert!(!super::pkce_shape_ok(&"a".repeat(42)));
        assert!(!super::pkce_shape_ok(&format!("{}+", "a".repeat(43))));
    }

    #[test]
    fn pkce_s256_matches_rfc7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = super::jws::b64(&<sha2::Sha256 as sha2::Digest>::digest(verifier));
        assert_eq!(challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }
}

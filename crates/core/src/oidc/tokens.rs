//! The token-management side of the provider: the client-credentials grant, introspection
//! (RFC 7662), revocation (RFC 7009) and userinfo (OpenID Connect Core §5.3). All of them work on
//! the ordinary sessions and tokens of the engine; nothing here mints a new kind of token.
//!
//! Client credentials: a confidential client gets an access token for the subject
//! `client:<name>` (a user name can never contain `:`, so it cannot collide with a user, and
//! Kubernetes RBAC can bind it like any user name through TokenReview) and no refresh token.
//! When tokens expire (`accessTokenMaxAge` > 0, the default) nothing is stored: the token's
//! session id certifies itself ([`super::client_tokens`]); otherwise the token belongs to a
//! session row bound to the client, like every other token.

use portcullis_config::{GrantMethod, OAuthClient};
use std::sync::Arc;

use portcullis_store::{OidcGrant, StoreError, User, UserState};
use serde_json::{Value, json};

use super::OidcError;
use super::claims::Scopes;
use super::client_tokens;
use super::codes::OidcTokens;
use crate::activity::GrantFacts;
use crate::engine::{Engine, IssuedTokens, RequestContext, random_id};
use crate::tokens::{Claims, TokenError, TokenType};

/// Prefix of the subject of client-credentials tokens.
pub const CLIENT_SUBJECT_PREFIX: &str = "client:";

/// An RFC 7662 introspection answer (`{"active": false}` for anything not currently valid).
#[derive(Debug, Clone, PartialEq)]
pub struct Introspection(pub Value);

/// Scopes assumed for sessions that did not come from the code flow (ks-console logins): what
/// KubeSphere 3.2's userinfo returned.
const CONSOLE_SCOPES: &str = "openid profile email";

impl Engine {
    /// The client-credentials grant (RFC 6749 §4.4).
    pub async fn client_credentials(
        &self,
        client: &OAuthClient,
        scope: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<OidcTokens, OidcError> {
        if client.secret.is_none() {
            return Err(OidcError::UnauthorizedClient(
                "client_credentials is only for confidential clients".into(),
            ));
        }
        if client.grant_method == GrantMethod::Deny {
            return Err(OidcError::UnauthorizedClient(
                "this client may not obtain tokens".into(),
            ));
        }
        let scopes = Scopes::parse(scope.unwrap_or(""));
        if !client.scope_restrictions.is_empty()
            && let Some(s) = scopes
                .iter()
                .find(|s| !client.scope_restrictions.iter().any(|r| r == s))
        {
            return Err(OidcError::InvalidScope(format!(
                "scope {s:?} is not allowed for this client"
            )));
        }
        let now = self.now_ms();
        let lifetime = unstored_lifetime(&self.keys.load().settings, client, now);
        if lifetime >= 1000 {
            return self
                .unstored_client_token(client, &scopes, lifetime, now)
                .await;
        }
        let subject = User {
            name: format!("{CLIENT_SUBJECT_PREFIX}{}", client.name),
            uid: String::new(),
            email: None,
            display_name: None,
            groups: Vec::new(),
            state: UserState::Active,
            password_hash: None,
            uninitialized: false,
            created_at: now,
            last_login_at: None,
            password_changed_at: None,
        };
        let id = random_id();
        let grant = OidcGrant {
            session_id: id.clone(),
            client_id: client.name.clone(),
            user: subject.name.clone(),
            scopes: scopes.to_string(),
            auth_time: now,
            auth_session: String::new(),
            created_at: now,
        };
        let tokens = self
            .issue_session_with(
                &subject,
                "",
                &client.name,
                ctx,
                crate::engine::SessionSpec {
                    id,
                    is_login: false,
                    upstream_groups: Vec::new(),
                    with: crate::engine::WrittenWith::Grant(grant),
                },
            )
            .await?;
        Ok(OidcTokens {
            tokens,
            id_token: None,
            scope: scopes.to_string(),
            refresh: false,
        })
    }

    /// A client-credentials access token with a self-certifying session id and nothing stored,
    /// living `lifetime` ms ([`unstored_lifetime`]).
    async fn unstored_client_token(
        &self,
        client: &OAuthClient,
        scopes: &Scopes,
        lifetime: i64,
        now: i64,
    ) -> Result<OidcTokens, OidcError> {
        let key = self
            .oidc
            .keys
            .client_token_key(self.store.as_ref(), now)
            .await?;
        let keys = self.keys.load();
        let iat = now.div_euclid(1000);
        let name = format!("{CLIENT_SUBJECT_PREFIX}{}", client.name);
        let mut claims = Claims {
            username: name.clone(),
            sub: name.clone(),
            token_type: TokenType::AccessToken,
            iss: keys.settings.issuer.clone(),
            iat,
            exp: Some(iat + lifetime / 1000),
            extra: Default::default(),
            groups: Vec::new(),
            sid: String::new(),
            jti: random_id(),
            uid: String::new(),
            r#gen: None,
            scope: scopes.to_string(),
        };
        client_tokens::seal_sid(&key, &mut claims);
        let access_token = keys.codec.sign(&claims)?;
        let tokens = IssuedTokens {
            refresh_token: String::new(),
            expires_in: Some(lifetime / 1000),
            session_id: claims.sid,
            username: name,
            access_token,
        };
        // KubeSphere's Redis keys (when configured) for the access token alone: the refresh key
        // is the same key, with the same lifetime.
        let registered = IssuedTokens {
            refresh_token: tokens.access_token.clone(),
            ..tokens.clone()
        };
        self.register_kubesphere_keys(&registered, lifetime, 0, false)
            .await;
        Ok(OidcTokens {
            tokens,
            id_token: None,
            scope: scopes.to_string(),
            refresh: false,
        })
    }

    /// The checks of an unstored client token that take the place of its session's: the tag
    /// (see [`client_tokens`]), and the client still configured and allowed to obtain tokens
    /// (removing a client from the configuration ends its tokens at once).
    pub(crate) async fn check_unstored(&self, claims: &Claims, now: i64) -> Result<(), TokenError> {
        if !self.genuine_unstored(claims, now).await {
            return Err(TokenError::NoSession);
        }
        let keys = self.keys.load();
        match keys.settings.client(client_tokens::client_of(claims)) {
            Some(c) if c.secret.is_some() && c.grant_method != GrantMethod::Deny => Ok(()),
            _ => Err(TokenError::Revoked),
        }
    }

    /// Whether the claims of an unstored client token carry this server's tag. Without the key
    /// (a database that cannot be read at the first use), nothing is genuine: fail closed.
    async fn genuine_unstored(&self, claims: &Claims, now: i64) -> bool {
        match self
            .oidc
            .keys
            .client_token_key(self.store.as_ref(), now)
            .await
        {
            Ok(key) => client_tokens::verify(&key, claims),
            Err(e) => {
                tracing::error!(error = %e, "the key of client-credentials tokens could not be loaded");
                false
            }
        }
    }

    /// Verifies an access or refresh token (`hint` says which to try first) and checks a
    /// refresh token is the current one of its session.
    async fn live_token(&self, token: &str, hint: Option<&str>) -> Option<Claims> {
        let order = if hint == Some("refresh_token") {
            [TokenType::RefreshToken, TokenType::AccessToken]
        } else {
            [TokenType::AccessToken, TokenType::RefreshToken]
        };
        for kind in order {
            match self.verify(token, kind).await {
                Ok(c) if kind == TokenType::AccessToken => return Some(c),
                Ok(c) => {
                    let session = self.store.get_session(&c.sid).await.ok()??;
                    let current =
                        session.revoked_at.is_none() && c.r#gen == Some(session.refresh_generation);
                    return current.then_some(c);
                }
                Err(TokenError::WrongType { .. }) => continue,
                Err(_) => return None,
            }
        }
        None
    }

    /// Token introspection (RFC 7662).
    pub async fn introspect(
        &self,
        token: &str,
        hint: Option<&str>,
    ) -> Result<Introspection, OidcError> {
        let Some(c) = self.live_token(token, hint).await else {
            return Ok(Introspection(json!({ "active": false })));
        };
        let mut out = json!({
            "active": true,
            "sub": c.sub,
            "username": c.username,
            "iat": c.iat,
        });
        if !c.iss.is_empty() {
            out["iss"] = json!(c.iss);
        }
        if let Some(exp) = c.exp {
            out["exp"] = json!(exp);
        }
        if !c.jti.is_empty() {
            out["jti"] = json!(c.jti);
        }
        if c.token_type == TokenType::AccessToken {
            out["token_type"] = json!("Bearer");
        }
        if !c.sid.is_empty() {
            let grant = self.grant_facts(&c).await?;
            if !grant.client_id.is_empty() {
                out["client_id"] = json!(grant.client_id);
                out["aud"] = json!(grant.client_id);
            }
            if let Some(scopes) = &grant.scopes {
                out["scope"] = json!(scopes);
            }
        }
        Ok(Introspection(out))
    }

    /// A session's client and granted scopes: remembered after the first read (they never
    /// change; see [`GrantFacts`]), so introspection and userinfo read the store once per
    /// session and replica, not on every request.
    /// An unstored client token carries its own.
    async fn grant_facts(&self, claims: &Claims) -> Result<Arc<GrantFacts>, StoreError> {
        if client_tokens::is_unstored(&claims.sid) {
            return Ok(Arc::new(GrantFacts {
                client_id: client_tokens::client_of(claims).to_owned(),
                scopes: Some(claims.scope.clone()),
                auth_time: None,
            }));
        }
        let session_id = claims.sid.as_str();
        if let Some(facts) = self.activity.grant_facts(session_id) {
            return Ok(facts);
        }
        let client_id = self
            .store
            .get_session(session_id)
            .await?
            .map(|s| s.client_id)
            .unwrap_or_default();
        let grant = self.store.get_oidc_grant(session_id).await?;
        Ok(self.remember_grant(session_id, client_id, grant))
    }

    /// Remembers the grant facts of a session read from the store (its client, and its OIDC
    /// grant if it has one) and returns them.
    pub(crate) fn remember_grant(
        &self,
        session_id: &str,
        client_id: String,
        grant: Option<OidcGrant>,
    ) -> Arc<GrantFacts> {
        let facts = Arc::new(GrantFacts {
            client_id,
            auth_time: grant.as_ref().map(|g| g.auth_time),
            scopes: grant.map(|g| g.scopes),
        });
        self.activity
            .remember_grant_facts(session_id, facts.clone());
        facts
    }

    /// Token revocation (RFC 7009): revokes the session of an access or refresh token issued to
    /// `client`. Tokens that are invalid, unknown, already expired or of another client are left
    /// alone; the answer does not say which (`Ok(false)`).
    pub async fn revoke_token(&self, token: &str, client: &OAuthClient) -> Result<bool, OidcError> {
        let Ok(claims) = self.inspect(token) else {
            return Ok(false);
        };
        if !matches!(
            claims.token_type,
            TokenType::AccessToken | TokenType::RefreshToken
        ) || claims.sid.is_empty()
        {
            return Ok(false);
        }
        if client_tokens::is_unstored(&claims.sid) {
            let genuine = self.genuine_unstored(&claims, self.now_ms()).await;
            if !genuine || client_tokens::client_of(&claims) != client.name {
                tracing::info!(
                    client = client.name,
                    "revocation of a token issued to another client ignored"
                );
                return Ok(false);
            }
            return Ok(self.revoke_session(&claims.sid).await?);
        }
        let Some(session) = self.store.get_session(&claims.sid).await? else {
            return Ok(false);
        };
        if session.client_id != client.name {
            tracing::info!(
                client = client.name,
                "revocation of a token issued to another client ignored"
            );
            return Ok(false);
        }
        Ok(self.revoke_session(&session.id).await?)
    }

    /// The userinfo answer for an access token. The token is verified (revocation included) on
    /// every request; the answer itself is reused for further requests of the same session
    /// for up to [`crate::activity::USERINFO_FRESH_MS`], so a client polling userinfo costs no
    /// store read per request.
    pub async fn userinfo(&self, access_token: &str) -> Result<Value, OidcError> {
        let claims = self
            .verify(access_token, TokenType::AccessToken)
            .await
            .map_err(|e| OidcError::InvalidToken(format!("the access token is not valid: {e}")))?;
        let scopes = match &self.grant_facts(&claims).await?.scopes {
            Some(scopes) => Scopes::parse(scopes),
            None => Scopes::parse(CONSOLE_SCOPES),
        };
        if !scopes.has("openid") {
            return Err(OidcError::InsufficientScope(
                "the access token was not granted the openid scope".into(),
            ));
        }
        let now = self.now_ms();
        if let Some(answer) = self.activity.fresh_userinfo(&claims.sid, now) {
            return Ok(Value::clone(&answer));
        }
        let user = match self.store.get_user(&claims.username).await? {
            Some(u) if u.state != UserState::Disabled => u,
            _ => {
                return Err(OidcError::InvalidToken(
                    "the access token does not belong to an active user".into(),
                ));
            }
        };
        let mut out = json!({ "sub": user.name });
        for (k, v) in self.claims_for(&user, &scopes).await? {
            out[k] = v;
        }
        self.activity
            .remember_userinfo(&claims.sid, now, Arc::new(out.clone()));
        Ok(out)
    }
}

/// How long an unstored client token lives, in ms: `accessTokenMaxAge`, cut at the inactivity
/// timeout (nothing tracks its use, so it must not outlive an idle session) and at
/// `sessionMaxLifetime`. Under a second (or `accessTokenMaxAge: 0s`, tokens that never expire),
/// the token gets a session row instead.
fn unstored_lifetime(settings: &crate::Settings, client: &OAuthClient, now: i64) -> i64 {
    let (max_age, _) = settings.lifetimes(Some(client));
    let mut lifetime = max_age;
    if settings.inactivity_ms > 0 {
        lifetime = lifetime.min(settings.inactivity_ms);
    }
    if let Some(end) = settings.session_end(now) {
        lifetime = lifetime.min(end - now);
    }
    lifetime
}

//! Scopes and the user claims they release (OpenID Connect Core §5.4).
//!
//! | scope | claims |
//! |---|---|
//! | `openid` | `sub` (the user name, as in KubeSphere's tokens) |
//! | `profile` | `name` (display name, else user name), `preferred_username` |
//! | `email` | `email`, `email_verified` |
//! | `groups` | `groups` |
//! | `offline_access` | a refresh token (see [`super::codes`]) |
//!
//! `email_verified` is true only when an identity provider linked to the user reported that same
//! address *as verified* (`upstream_email_verified` of the link: OIDC `email_verified: true`,
//! GitHub's primary verified address, an LDAP directory, a generic provider's `emailVerified`
//! mapping): Portcullis does not verify addresses itself, and neither an administrator-entered
//! address nor one typed on the confirm page is proof of ownership.

use std::collections::BTreeSet;

use portcullis_store::{IdentityLink, User};
use serde_json::{Map, Value, json};

/// The scopes Portcullis knows; others are ignored (never granted).
pub const SUPPORTED_SCOPES: [&str; 5] = ["openid", "profile", "email", "groups", "offline_access"];

/// The claims Portcullis can put in ID tokens and userinfo answers.
pub const SUPPORTED_CLAIMS: [&str; 15] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "azp",
    "at_hash",
    "sid",
    "name",
    "preferred_username",
    "email",
    "email_verified",
    "groups",
];

/// A set of scopes, kept sorted so equal sets compare and store equally.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(BTreeSet<String>);

impl Scopes {
    /// Parses a space-separated `scope` parameter (RFC 6749 §3.3).
    pub fn parse(text: &str) -> Scopes {
        Scopes(
            text.split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }

    /// Whether the set holds `scope`.
    pub fn has(&self, scope: &str) -> bool {
        self.0.contains(scope)
    }

    /// Whether every scope of `self` is in `other`.
    pub fn is_subset(&self, other: &Scopes) -> bool {
        self.0.is_subset(&other.0)
    }

    /// Both sets together.
    pub fn union(&self, other: &Scopes) -> Scopes {
        Scopes(self.0.union(&other.0).cloned().collect())
    }

    /// Only the scopes Portcullis supports.
    pub fn supported(&self) -> Scopes {
        Scopes(
            self.0
                .iter()
                .filter(|s| SUPPORTED_SCOPES.contains(&s.as_str()))
                .cloned()
                .collect(),
        )
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scopes, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl std::fmt::Display for Scopes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v: Vec<&str> = self.iter().collect();
        f.write_str(&v.join(" "))
    }
}

/// The claims about `user` that `scopes` release (without `sub`).
pub fn user_claims(user: &User, links: &[IdentityLink], scopes: &Scopes) -> Map<String, Value> {
    let mut c = Map::new();
    if scopes.has("profile") {
        let name = user
            .display_name
            .clone()
            .unwrap_or_else(|| user.name.clone());
        c.insert("name".into(), json!(name));
        c.insert("preferred_username".into(), json!(user.name));
    }
    if scopes.has("email")
        && let Some(email) = &user.email
    {
        let verified = links.iter().any(|l| {
            l.upstream_email_verified
                && l.upstream_email
                    .as_deref()
                    .is_some_and(|u| u.eq_ignore_ascii_case(email))
        });
        c.insert("email".into(), json!(email));
        c.insert("email_verified".into(), json!(verified));
    }
    if scopes.has("groups") {
        c.insert("groups".into(), json!(user.groups));
    }
    c
}

impl crate::Engine {
    /// The released claims of a user, reading its identity links when `email` is asked for.
    pub(crate) async fn claims_for(
        &self,
        user: &User,
        scopes: &Scopes,
    ) -> Result<Map<String, Value>, portcullis_store::StoreError> {
        let links = if scopes.has("email") && user.email.is_some() {
            self.store.list_identities(&user.name).await?
        } else {
            Vec::new()
        };
        Ok(user_claims(user, &links, scopes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_release_claims() {
        let s = Scopes::parse("openid  email profile unknown");
        assert_eq!(s.to_string(), "email openid profile unknown");
        assert_eq!(s.supported().to_string(), "email openid profile");
        assert!(Scopes::parse("openid").is_subset(&s));
        assert!(!Scopes::parse("groups").is_subset(&s));
        let user = User {
            name: "alice".into(),
            uid: "u".into(),
            email: Some("alice@example.org".into()),
            display_name: None,
            groups: vec!["dev".into()],
            state: portcullis_store::UserState::Active,
            password_hash: None,
            uninitialized: false,
            created_at: 0,
            last_login_at: None,
            password_changed_at: None,
        };
        let c = user_claims(&user, &[], &Scopes::parse("openid profile email"));
        assert_eq!(c["name"], "alice");
        assert_eq!(c["preferred_username"], "alice");
        assert_eq!(c["email_verified"], false);
        assert!(!c.contains_key("groups"));
        let link = IdentityLink {
            provider: "github".into(),
            upstream_uid: "1".into(),
            user: "alice".into(),
            upstream_username: None,
            upstream_email: Some("Alice@Example.org".into()),
            upstream_email_verified: false,
            created_at: 0,
        };
        // The same address, but the provider did not say it verified it (or a person typed it).
        let c = user_claims(&user, std::slice::from_ref(&link), &Scopes::parse("email"));
        assert_eq!(c["email_verified"], false);
        let link = IdentityLink {
            upstream_email_verified: true,
            ..link
        };
        let c = user_claims(&user, &[link], &Scopes::parse("email groups"));
        assert_eq!(c["email_verified"], true);
        assert_eq!(c["groups"], json!(["dev"]));
        assert!(!c.contains_key("name"));
    }
}

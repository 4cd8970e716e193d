//! [`Identity`]: who the upstream identity provider says the user is.

use serde::Serialize;

use crate::ProviderError;

/// The result of a successful login at an identity provider.
///
/// Only [`user_id`](Identity::user_id) is required: it is the upstream's *stable* identifier of the account (GitHub's
/// numeric `id`, an OIDC `sub`, an IDaaS `sub`, an LDAP login attribute). The server links local users to it, so it
/// must never be a value the user can change or reuse. The constructor refuses an empty or blank id, so an error
/// page decoded as an empty user record can never become a login (KubeSphere had that bug, spec §4.1).
///
/// The other fields are hints the server may use to provision or update a user. Builder methods ignore empty
/// strings, so a provider can pass upstream values through without checking each one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    user_id: String,
    /// Preferred user name (GitHub `login`, OIDC `preferred_username`). Not unique over time.
    pub username: Option<String>,
    /// E-mail address, if the upstream disclosed one.
    pub email: Option<String>,
    /// Whether the upstream says it verified [`email`](Self::email); `None` when it does not say.
    pub email_verified: Option<bool>,
    /// Human-readable name.
    pub display_name: Option<String>,
    /// Group names asserted by the upstream. Empty unless the provider is configured to read groups.
    pub groups: Vec<String>,
    /// Other identifiers this same account was linked under before, for example the GitHub `login` that
    /// KubeSphere used as the user id. The server may look links up by these after [`user_id`](Self::user_id) and
    /// migrate them; they are never used to create new links.
    pub legacy_user_ids: Vec<String>,
}

impl Identity {
    /// An identity with the given stable user id and nothing else.
    ///
    /// Fails with [`ProviderError::Upstream`] if `user_id` is empty or only whitespace: the upstream returned a user
    /// record without an identifier, which is a broken provider, not a login.
    pub fn new(user_id: impl Into<String>) -> Result<Self, ProviderError> {
        let user_id = user_id.into();
        if user_id.trim().is_empty() {
            return Err(ProviderError::upstream(
                "the identity provider returned a user without an identifier",
            ));
        }
        Ok(Identity {
            user_id,
            username: None,
            email: None,
            email_verified: None,
            display_name: None,
            groups: Vec::new(),
            legacy_user_ids: Vec::new(),
        })
    }

    /// The stable upstream identifier of the account (never empty).
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// [`user_id`](Self::user_id) followed by the [`legacy_user_ids`](Self::legacy_user_ids): every id a link to
    /// this account may have been stored under, most authoritative first.
    pub fn all_user_ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.user_id.as_str())
            .chain(self.legacy_user_ids.iter().map(String::as_str))
    }

    /// Sets [`username`](Self::username); an empty string leaves it unset.
    pub fn with_username(mut self, username: impl Into<String>) -> Self {
        self.username = non_empty(username.into());
        self
    }

    /// Sets [`email`](Self::email); an empty string leaves it unset.
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = non_empty(email.into());
        self
    }

    /// Sets [`email_verified`](Self::email_verified).
    pub fn with_email_verified(mut self, verified: bool) -> Self {
        self.email_verified = Some(verified);
        self
    }

    /// Sets [`display_name`](Self::display_name); an empty string leaves it unset.
    pub fn with_display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = non_empty(name.into());
        self
    }

    /// Adds a group; empty names and duplicates are ignored.
    pub fn with_group(mut self, group: impl Into<String>) -> Self {
        let group = group.into();
        if !group.is_empty() && !self.groups.contains(&group) {
            self.groups.push(group);
        }
        self
    }

    /// Adds a legacy user id; empty values, duplicates and the current [`user_id`](Self::user_id) are ignored.
    pub fn with_legacy_user_id(mut self, id: impl Into<String>) -> Self {
        let id = id.into();
        if !id.is_empty() && id != self.user_id && !self.legacy_user_ids.contains(&id) {
            self.legacy_user_ids.push(id);
        }
        self
    }
}

fn non_empty(s: String) -> Option<String> {
    if s.trim().is_empty() { None } else { Some(s) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_user_id_is_refused() {
        assert!(Identity::new("").unwrap_err().is_upstream());
        assert!(Identity::new("  ").is_err());
    }

    #[test]
    fn builders_skip_empty_values() {
        let id = Identity::new("42")
            .unwrap()
            .with_username("octocat")
            .with_email("")
            .with_legacy_user_id("octocat")
            .with_legacy_user_id("42")
            .with_legacy_user_id("octocat")
            .with_group("dev")
            .with_group("dev");
        assert_eq!(id.user_id(), "42");
        assert_eq!(id.username.as_deref(), Some("octocat"));
        assert_eq!(id.email, None);
        assert_eq!(id.legacy_user_ids, vec!["octocat"]);
        assert_eq!(id.groups, vec!["dev"]);
        assert_eq!(id.all_user_ids().collect::<Vec<_>>(), vec!["42", "octocat"]);
    }
}

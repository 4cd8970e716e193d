//! Why a federated login failed, as data: [`Reason`] names the failure with its parameters (the
//! provider, the taken name, ...). Its `Display` is the English message the API answers carry
//! (unchanged, KubeSphere clients read them); the pages map each reason to a message-catalog
//! key instead, so they can say it in the page's language.
//!
//! The enum is deliberately not `#[non_exhaustive]`: the HTTP layer matches it exhaustively, so
//! a new reason cannot be added without its catalog entry.

use std::fmt;

use crate::names::NameProblem;

/// The machine-readable reason of a [`FederationError`](super::FederationError).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// No identity provider of this name is configured.
    NoSuchProvider {
        /// The name asked for.
        provider: String,
    },
    /// The provider is configured with `disabled: true`.
    ProviderDisabled {
        /// The provider's name.
        provider: String,
    },
    /// The provider could not be created at start or reload (the log says why).
    ProviderNotCreated {
        /// The provider's name.
        provider: String,
    },
    /// The provider's authorization URL could not be built from its configuration.
    ProviderMisconfigured {
        /// The provider's name.
        provider: String,
    },
    /// The provider checks passwords (LDAP): it has no browser login.
    PasswordProvider {
        /// The provider's name.
        provider: String,
    },
    /// The provider's `redirectURL` is ks-console's, so only ks-console can use it.
    ConsoleOnly {
        /// The provider's name.
        provider: String,
        /// Its configured `redirectURL`.
        redirect: String,
        /// The callback URL the login page would need.
        callback: String,
    },
    /// The callback has no `state`.
    StateMissing,
    /// The callback's `state` is not the one of this browser's login.
    StateMismatch,
    /// The login state was used already, or never existed.
    StateUsed,
    /// The login state belongs to another provider.
    StateOtherProvider,
    /// The login state is older than its 10 minutes.
    StateExpired,
    /// A callback without the login cookie for a provider that returns browsers here.
    ConsoleOwnCallback {
        /// The provider's name.
        provider: String,
    },
    /// A callback without the login cookie whose `state` is not the provider's name.
    ConsoleForeignState {
        /// The provider's name.
        provider: String,
    },
    /// The callback has neither `code` nor `ticket`.
    NoCode,
    /// The provider did not confirm the identity (consent denied, a bad or reused code).
    ProviderRefused {
        /// The provider's name.
        provider: String,
        /// The provider's own words (not translated).
        detail: String,
    },
    /// The provider refused this server's configuration (client id or secret).
    ProviderRejectedConfig {
        /// The provider's name.
        provider: String,
    },
    /// The provider was unreachable, too slow, or answered garbage.
    ProviderFailed {
        /// The provider's name.
        provider: String,
    },
    /// `allowedGroups` is set and the person is in none of them.
    NotInAllowedGroup {
        /// The provider's label.
        provider: String,
    },
    /// `mappingMethod: lookup` and no account is linked to the identity.
    NotLinked {
        /// The provider's label.
        provider: String,
    },
    /// The identity is linked to a user that no longer exists.
    LinkedUserGone {
        /// The user name of the link.
        user: String,
    },
    /// The local account is disabled.
    AccountDisabled {
        /// The user.
        user: String,
    },
    /// `mappingMethod: auto` found no free name derived from the upstream one.
    NoFreeName {
        /// The derived name.
        base: String,
        /// The highest suffix tried.
        max: u32,
    },
    /// Linking: the identity belongs to another account.
    IdentityLinkedElsewhere {
        /// The provider's label.
        provider: String,
    },
    /// Registration: the user name breaks the naming rules.
    InvalidName(NameProblem),
    /// Registration: the email address is not valid.
    InvalidEmail {
        /// The address given.
        email: String,
    },
    /// Registration: another user has this name.
    NameTaken {
        /// The name.
        name: String,
    },
    /// Registration: another user has this email address.
    EmailTaken {
        /// The address.
        email: String,
    },
    /// Registration: another uniqueness rule broke (the store's words).
    Conflict(String),
    /// The pending registration expired or was completed.
    RegistrationGone,
    /// The confirm form's token is not the registration's.
    RegistrationCsrf,
    /// The browser has no registration in progress.
    NoRegistration,
    /// A `system:pre-registration` token without its identity.
    BadRegistrationToken,
    /// The pre-registration already created its user, or expired.
    PreRegistrationUsed,
    /// The submitted form could not be read.
    FormUnreadable,
    /// An identity link finished after the browser's session ended.
    LinkNeedsSession,
    /// Something on this server failed; details were logged.
    Internal(String),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const AGAIN: &str = "; start the login again";
        match self {
            Reason::NoSuchProvider { provider } => {
                write!(f, "no identity provider named \"{provider}\" is configured")
            }
            Reason::ProviderDisabled { provider } => {
                write!(f, "the identity provider \"{provider}\" is disabled")
            }
            Reason::ProviderNotCreated { provider } => write!(
                f,
                "the identity provider \"{provider}\" is not available; see the server log"
            ),
            Reason::ProviderMisconfigured { provider } => write!(
                f,
                "the identity provider \"{provider}\" is misconfigured; see the server log"
            ),
            Reason::PasswordProvider { provider } => write!(
                f,
                "the identity provider \"{provider}\" checks passwords; log in with the password form"
            ),
            Reason::ConsoleOnly {
                provider,
                redirect,
                callback,
            } => write!(
                f,
                "the identity provider \"{provider}\" sends users back to {redirect:?} (ks-console), not to \
                 this server, so it can only be used from ks-console; for the login page set its \
                 redirectURL to {callback}"
            ),
            Reason::StateMissing => write!(f, "the callback has no state parameter{AGAIN}"),
            Reason::StateMismatch => write!(
                f,
                "the callback's state does not match the login started in this browser{AGAIN}"
            ),
            Reason::StateUsed => {
                write!(f, "this login was already completed or is unknown{AGAIN}")
            }
            Reason::StateOtherProvider => write!(
                f,
                "this login was started at another identity provider{AGAIN}"
            ),
            Reason::StateExpired => write!(
                f,
                "this login expired (it must be completed within 10 minutes){AGAIN}"
            ),
            Reason::ConsoleOwnCallback { provider } => write!(
                f,
                "the identity provider \"{provider}\" returns browsers to this server's own callback, so a \
                 callback without this browser's login cookie is refused; start the login again at \
                 /login/{provider}"
            ),
            Reason::ConsoleForeignState { provider } => write!(
                f,
                "the callback's state does not belong to a login started here (no login cookie was \
                 sent); start the login again at /login/{provider}"
            ),
            Reason::NoCode => write!(f, "the callback has neither a code nor a ticket parameter"),
            Reason::ProviderRefused { provider, detail } => write!(
                f,
                "the identity provider \"{provider}\" did not confirm your identity: {detail}"
            ),
            Reason::ProviderRejectedConfig { provider } => write!(
                f,
                "the identity provider \"{provider}\" refused this server's configuration; an administrator must fix it"
            ),
            Reason::ProviderFailed { provider } => write!(
                f,
                "the identity provider \"{provider}\" did not answer correctly (unreachable, too slow, or an invalid answer); try again later"
            ),
            Reason::NotInAllowedGroup { provider } => write!(
                f,
                "your {provider} account is not in a group that may log in here; ask an administrator \
                 to add you to one of the allowed groups"
            ),
            Reason::NotLinked { provider } => write!(
                f,
                "no account is linked to this {provider} identity; ask an administrator to link it"
            ),
            Reason::LinkedUserGone { user } => {
                write!(f, "the linked account \"{user}\" no longer exists")
            }
            Reason::AccountDisabled { user } => write!(f, "the account \"{user}\" is disabled"),
            Reason::NoFreeName { base, max } => write!(
                f,
                "no free user name derived from \"{base}\" ({base} to {base}-{max} are taken); ask an administrator to create and link the account"
            ),
            Reason::IdentityLinkedElsewhere { provider } => write!(
                f,
                "this {provider} identity is already linked to another account; unlink it there first"
            ),
            Reason::InvalidName(problem) => fmt::Display::fmt(problem, f),
            Reason::InvalidEmail { email } => write!(f, "{email:?} is not a valid email address"),
            Reason::NameTaken { name } => write!(f, "user name {name:?} is taken"),
            Reason::EmailTaken { email } => {
                write!(f, "email {email:?} is already used by another user")
            }
            Reason::RegistrationGone => write!(
                f,
                "this registration has expired or was already completed; log in again"
            ),
            Reason::RegistrationCsrf => write!(
                f,
                "the form's security token does not match this registration; reload the page"
            ),
            Reason::NoRegistration => write!(
                f,
                "there is no registration in progress in this browser (it expired or was completed); log in again"
            ),
            Reason::BadRegistrationToken => write!(f, "invalid registration token"),
            Reason::PreRegistrationUsed => write!(
                f,
                "this pre-registration has already created a user, or has expired; log in again"
            ),
            Reason::FormUnreadable => write!(f, "the form could not be read"),
            Reason::LinkNeedsSession => write!(
                f,
                "you are no longer signed in, so the identity cannot be linked; sign in and start again from your account page"
            ),
            Reason::Conflict(m) | Reason::Internal(m) => f.write_str(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_messages_are_the_api_texts() {
        let cases = [
            (
                Reason::NameTaken { name: "bob".into() },
                "user name \"bob\" is taken",
            ),
            (
                Reason::StateExpired,
                "this login expired (it must be completed within 10 minutes); start the login again",
            ),
            (
                Reason::ConsoleOnly {
                    provider: "gh".into(),
                    redirect: "https://ks/cb".into(),
                    callback: "https://p/oauth/callback/gh".into(),
                },
                "the identity provider \"gh\" sends users back to \"https://ks/cb\" (ks-console), not to this \
                 server, so it can only be used from ks-console; for the login page set its redirectURL to \
                 https://p/oauth/callback/gh",
            ),
            (
                Reason::InvalidName(NameProblem::Characters("Bob".into())),
                "user name \"Bob\" may only contain lower-case letters, digits, '-', '_' and '.'",
            ),
            (
                Reason::NoFreeName {
                    base: "x".into(),
                    max: 100,
                },
                "no free user name derived from \"x\" (x to x-100 are taken); ask an administrator to create and link the account",
            ),
        ];
        for (reason, text) in cases {
            assert_eq!(reason.to_string(), text);
        }
    }
}

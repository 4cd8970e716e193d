//! The engine's machine-readable failure reasons as catalog texts, so a page says them in its
//! own language. The API answers keep the engine's English (`Display`) instead.
//!
//! Each match is exhaustive: a new reason in the engine does not compile until it has a key
//! here, and the catalog test checks the keys exist in every language.

use portcullis_core::federation::Reason;
use portcullis_core::names::NameProblem;
use portcullis_core::oidc::Untrusted;
use portcullis_core::password::{MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS, PasswordProblem};

use super::i18n::Locale;

/// A catalog key with its parameters.
type Message = (&'static str, Vec<(&'static str, String)>);

fn name_problem(p: &NameProblem) -> Message {
    match p {
        NameProblem::Empty => ("reason_name_empty", vec![]),
        NameProblem::TooLong(n) => ("reason_name_too_long", vec![("name", n.clone())]),
        NameProblem::Characters(n) => ("reason_name_characters", vec![("name", n.clone())]),
        NameProblem::Ends(n) => ("reason_name_ends", vec![("name", n.clone())]),
    }
}

fn reason_message(r: &Reason) -> Message {
    let p = |v: &String| vec![("provider", v.clone())];
    match r {
        Reason::NoSuchProvider { provider } => ("reason_no_such_provider", p(provider)),
        Reason::ProviderDisabled { provider } => ("reason_provider_disabled", p(provider)),
        Reason::ProviderNotCreated { provider } => ("reason_provider_not_created", p(provider)),
        Reason::ProviderMisconfigured { provider } => {
            ("reason_provider_misconfigured", p(provider))
        }
        Reason::PasswordProvider { provider } => ("reason_password_provider", p(provider)),
        Reason::ConsoleOnly {
            provider, callback, ..
        } => (
            "reason_console_only",
            vec![
                ("provider", provider.clone()),
                ("callback", callback.clone()),
            ],
        ),
        Reason::StateMissing => ("reason_state_missing", vec![]),
        Reason::StateMismatch => ("reason_state_mismatch", vec![]),
        Reason::StateUsed => ("reason_state_used", vec![]),
        Reason::StateOtherProvider => ("reason_state_other_provider", vec![]),
        Reason::StateExpired => ("reason_state_expired", vec![]),
        Reason::ConsoleOwnCallback { provider } => ("reason_console_own_callback", p(provider)),
        Reason::ConsoleForeignState { provider } => ("reason_console_foreign_state", p(provider)),
        Reason::NoCode => ("reason_no_code", vec![]),
        Reason::ProviderRefused { provider, detail } => (
            "reason_provider_refused",
            vec![("provider", provider.clone()), ("detail", detail.clone())],
        ),
        Reason::ProviderRejectedConfig { provider } => {
            ("reason_provider_rejected_config", p(provider))
        }
        Reason::ProviderFailed { provider } => ("reason_provider_failed", p(provider)),
        Reason::NotInAllowedGroup { provider } => ("reason_not_in_allowed_group", p(provider)),
        Reason::NotLinked { provider } => ("reason_not_linked", p(provider)),
        Reason::LinkedUserGone { user } => {
            ("reason_linked_user_gone", vec![("user", user.clone())])
        }
        Reason::AccountDisabled { user } => {
            ("reason_account_disabled", vec![("user", user.clone())])
        }
        Reason::NoFreeName { base, max } => (
            "reason_no_free_name",
            vec![("base", base.clone()), ("max", max.to_string())],
        ),
        Reason::IdentityLinkedElsewhere { provider } => {
            ("reason_identity_linked_elsewhere", p(provider))
        }
        Reason::InvalidName(problem) => name_problem(problem),
        Reason::InvalidEmail { email } => ("reason_invalid_email", vec![("email", email.clone())]),
        Reason::NameTaken { name } => ("reason_name_taken", vec![("name", name.clone())]),
        Reason::EmailTaken { email } => ("reason_email_taken", vec![("email", email.clone())]),
        Reason::Conflict(_) => ("reason_conflict", vec![]),
        Reason::RegistrationGone => ("reason_registration_gone", vec![]),
        Reason::RegistrationCsrf => ("reason_registration_csrf", vec![]),
        Reason::NoRegistration => ("reason_no_registration", vec![]),
        Reason::BadRegistrationToken => ("reason_bad_registration_token", vec![]),
        Reason::PreRegistrationUsed => ("reason_pre_registration_used", vec![]),
        Reason::FormUnreadable => ("err_form", vec![]),
        Reason::LinkNeedsSession => ("reason_link_needs_session", vec![]),
        // Server-side details are in the log, never on the page.
        Reason::Internal(_) => ("err_internal", vec![]),
    }
}

/// The catalog key of an authorization request refused on a page.
pub fn untrusted_key(u: Untrusted) -> &'static str {
    match u {
        Untrusted::NoClientId => "refused_no_client_id",
        Untrusted::UnknownClient => "refused_unknown_client",
        Untrusted::RedirectUriNotRegistered => "refused_redirect_not_registered",
        Untrusted::NoRedirectUri => "refused_no_redirect_uri",
    }
}

fn password_message(p: &PasswordProblem) -> Message {
    match p {
        PasswordProblem::TooShort => (
            "reason_password_too_short",
            vec![("min", MIN_PASSWORD_CHARS.to_string())],
        ),
        PasswordProblem::TooLong => (
            "reason_password_too_long",
            vec![("max", MAX_PASSWORD_BYTES.to_string())],
        ),
        PasswordProblem::Blank => ("reason_password_blank", vec![]),
    }
}

fn say(locale: Locale, (key, args): Message) -> String {
    let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
    locale.text(key, &args)
}

/// Why a federated login failed, in `locale`.
pub fn reason_text(locale: Locale, r: &Reason) -> String {
    say(locale, reason_message(r))
}

/// Why a new password was refused, in `locale`.
pub fn password_problem_text(locale: Locale, p: &PasswordProblem) -> String {
    say(locale, password_message(p))
}

#[cfg(test)]
mod tests {
    use super::super::i18n::LOCALES;
    use super::*;

    /// One reason of every kind, with every parameter set.
    fn samples() -> Vec<Message> {
        let s = || "x".to_owned();
        let reasons = [
            Reason::NoSuchProvider { provider: s() },
            Reason::ProviderDisabled { provider: s() },
            Reason::ProviderNotCreated { provider: s() },
            Reason::ProviderMisconfigured { provider: s() },
            Reason::PasswordProvider { provider: s() },
            Reason::ConsoleOnly {
                provider: s(),
                redirect: s(),
                callback: s(),
            },
            Reason::StateMissing,
            Reason::StateMismatch,
            Reason::StateUsed,
            Reason::StateOtherProvider,
            Reason::StateExpired,
            Reason::ConsoleOwnCallback { provider: s() },
            Reason::ConsoleForeignState { provider: s() },
            Reason::NoCode,
            Reason::ProviderRefused {
                provider: s(),
                detail: s(),
            },
            Reason::ProviderRejectedConfig { provider: s() },
            Reason::ProviderFailed { provider: s() },
            Reason::NotInAllowedGroup { provider: s() },
            Reason::NotLinked { provider: s() },
            Reason::LinkedUserGone { user: s() },
            Reason::AccountDisabled { user: s() },
            Reason::NoFreeName { base: s(), max: 9 },
            Reason::IdentityLinkedElsewhere { provider: s() },
            Reason::InvalidName(NameProblem::Empty),
            Reason::InvalidName(NameProblem::TooLong(s())),
            Reason::InvalidName(NameProblem::Characters(s())),
            Reason::InvalidName(NameProblem::Ends(s())),
            Reason::InvalidEmail { email: s() },
            Reason::NameTaken { name: s() },
            Reason::EmailTaken { email: s() },
            Reason::Conflict(s()),
            Reason::RegistrationGone,
            Reason::RegistrationCsrf,
            Reason::NoRegistration,
            Reason::BadRegistrationToken,
            Reason::PreRegistrationUsed,
            Reason::FormUnreadable,
            Reason::LinkNeedsSession,
            Reason::Internal(s()),
        ];
        let mut all: Vec<Message> = reasons.iter().map(reason_message).collect();
        for p in [
            PasswordProblem::TooShort,
            PasswordProblem::TooLong,
            PasswordProblem::Blank,
        ] {
            all.push(password_message(&p));
        }
        for u in [
            Untrusted::NoClientId,
            Untrusted::UnknownClient,
            Untrusted::RedirectUriNotRegistered,
            Untrusted::NoRedirectUri,
        ] {
            all.push((untrusted_key(u), vec![]));
        }
        all.push(("refused_duplicate_param", vec![("name", s())]));
        all
    }

    #[test]
    fn every_reason_has_a_complete_text_in_every_language() {
        for (key, args) in samples() {
            for locale in LOCALES {
                let raw = locale
                    .catalog()
                    .get(key)
                    .unwrap_or_else(|| panic!("{key} is missing in {}", locale.code()));
                let mut filled = raw.clone();
                for (name, value) in &args {
                    assert!(
                        raw.contains(&format!("{{{name}}}")),
                        "{key} ({}) does not show {{{name}}}",
                        locale.code()
                    );
                    filled = filled.replace(&format!("{{{name}}}"), value);
                }
                assert!(
                    !filled.contains('{'),
                    "{key} ({}) has a parameter the reason does not fill",
                    locale.code()
                );
            }
        }
    }

    #[test]
    fn texts_follow_the_language() {
        let taken = Reason::NameTaken { name: "bob".into() };
        assert_eq!(
            reason_text(Locale::En, &taken),
            "The user name \u{201c}bob\u{201d} is already taken; choose another."
        );
        assert_eq!(
            reason_text(Locale::ZhCn, &taken),
            "用户名\u{201c}bob\u{201d}已被占用，请另选一个。"
        );
        assert_eq!(
            password_problem_text(Locale::ZhCn, &PasswordProblem::TooShort),
            "新密码至少需要 8 个字符。"
        );
    }
}

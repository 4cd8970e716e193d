//! User-name rules and login-name resolution.

/// Why a user name is not valid. `Display` is the English message (the name quoted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameProblem {
    /// The name is empty.
    #[error("user name must not be empty")]
    Empty,
    /// The name is longer than 63 characters.
    #[error("user name {0:?} is longer than 63 characters")]
    TooLong(String),
    /// A character outside `a-z 0-9 - _ .`.
    #[error("user name {0:?} may only contain lower-case letters, digits, '-', '_' and '.'")]
    Characters(String),
    /// It starts or ends with `-`, `_` or `.`.
    #[error("user name {0:?} must start and end with a letter or digit")]
    Ends(String),
}

/// Checks a new user name: 1 to 63 characters of lower-case letters, digits, `-`, `_` and `.`,
/// starting and ending with a letter or digit (a valid Kubernetes label value, so names can go
/// back to KubeSphere), and not in the reserved `system:` space.
pub fn check_user_name(name: &str) -> Result<(), NameProblem> {
    if name.is_empty() {
        return Err(NameProblem::Empty);
    }
    if name.len() > 63 {
        return Err(NameProblem::TooLong(name.to_owned()));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
    {
        return Err(NameProblem::Characters(name.to_owned()));
    }
    let first = name.chars().next().unwrap_or('-');
    let last = name.chars().last().unwrap_or('-');
    if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
        return Err(NameProblem::Ends(name.to_owned()));
    }
    Ok(())
}

/// Checks an email address enough to catch mistakes (one `@`, something on both sides, no spaces).
pub fn check_email(email: &str) -> Result<(), String> {
    let ok = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(email.split_once('@'), Some((l, d)) if !l.is_empty() && d.contains('.') && !d.contains('@') && !d.starts_with('.') && !d.ends_with('.'));
    if ok {
        Ok(())
    } else {
        Err(format!("{email:?} is not a valid email address"))
    }
}

/// Checks a group name: non-empty printable text without commas, at most 128 characters.
pub fn check_group(group: &str) -> Result<(), String> {
    if group.is_empty()
        || group.len() > 128
        || group.contains(',')
        || group.chars().any(|c| c.is_control())
    {
        return Err(format!("{group:?} is not a valid group name"));
    }
    Ok(())
}

/// Whether a login name should be looked up as an email (KubeSphere: RFC 5322 addresses are
/// matched against `spec.email`; user names cannot contain `@`).
pub fn looks_like_email(login: &str) -> bool {
    login.contains('@')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["admin", "a", "alice.smith", "bob_2", "x-y"] {
            assert!(check_user_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Alice",
            "-a",
            "a-",
            "system:x",
            "a b",
            "é",
            &"a".repeat(64),
        ] {
            assert!(check_user_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails() {
        assert!(check_email("a@example.com").is_ok());
        for bad in ["a", "@x.io", "a@b", "a b@c.io", "a@@b.io", "a@.io"] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
    }
}

//! Helpers shared by the tests.

use portcullis_config::{Config, ConfigError, LoadOptions, Overrides, Problem, load_str};

/// The provider types a full build knows.
pub const TYPES: &[&str] = &[
    "GitHubIdentityProvider",
    "AliyunIDaaSProvider",
    "OIDCIdentityProvider",
    "CASIdentityProvider",
    "LDAPIdentityProvider",
];

pub fn opts() -> LoadOptions<'static> {
    LoadOptions {
        known_provider_types: TYPES,
        overrides: Overrides::default(),
    }
}

/// Removes the first newline and the indentation common to all non-blank lines, so test
/// documents can be indented with the code. Line 1 is the line after `r#"`.
pub fn dedent(text: &str) -> String {
    let text = text.strip_prefix('\n').unwrap_or(text);
    let indent = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    text.lines()
        .map(|l| l.get(indent..).unwrap_or("").trim_end())
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

pub fn load(text: &str) -> Result<Config, ConfigError> {
    load_str(&dedent(text), None, &opts())
}

pub fn ok(text: &str) -> Config {
    load(text).unwrap_or_else(|e| panic!("expected success, got:\n{e}"))
}

pub fn errors(text: &str) -> Vec<Problem> {
    match load(text) {
        Ok(c) => panic!(
            "expected errors, got a config with warnings {:?}",
            c.warnings
        ),
        Err(e) => e.problems,
    }
}

/// The only error of `text`; fails when there are more.
pub fn one_error(text: &str) -> Problem {
    let problems = errors(text);
    assert_eq!(problems.len(), 1, "expected one problem, got {problems:#?}");
    problems
        .into_iter()
        .next()
        .unwrap_or_else(|| unreachable!())
}

/// Asserts a problem's path, line and a part of its message.
#[track_caller]
pub fn assert_problem(p: &Problem, path: &str, line: usize, message_part: &str) {
    assert_eq!(p.path, path, "path of {p}");
    assert_eq!(p.line, Some(line), "line of {p}");
    assert!(
        p.message.contains(message_part),
        "message of {p:?} should contain {message_part:?}"
    );
}

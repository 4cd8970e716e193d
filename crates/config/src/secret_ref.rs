//! Secret values taken from a file or an environment variable instead of the configuration text.
//!
//! A secret-bearing key (see the list in `docs/configuration.md#secrets-from-files-or-the-environment`)
//! may hold, as its whole value, `${file:/path}` (the file's content, one trailing newline
//! removed: how Kubernetes mounts a Secret) or `${env:NAME}` (the variable's value). Any other
//! value is the secret itself, so every existing `kubesphere.yaml` reads as before. Problems name
//! the key path and the file or variable, never a value: a missing, unreadable, empty or too large
//! file, an unset or empty variable. A value that looks like a reference with another prefix
//! (`${FOO}`) is used literally, with a warning.

use std::path::{Path, PathBuf};

use crate::error::Report;

/// Largest secret file read (a PEM private key is a few kilobytes).
pub(crate) const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// Resolves `value` of the secret at `path`: the referenced content, or `value` itself when it
/// is not a reference. `None` when a reference cannot be resolved (the error is recorded).
pub(crate) fn resolve(
    report: &mut Report,
    line: Option<usize>,
    path: &str,
    value: String,
) -> Option<String> {
    let Some(inner) = value
        .strip_prefix("${")
        .and_then(|rest| rest.strip_suffix('}'))
    else {
        return Some(value);
    };
    if let Some(name) = inner.strip_prefix("env:") {
        return from_env(report, line, path, name.trim());
    }
    if let Some(file) = inner.strip_prefix("file:") {
        return from_file(report, line, path, file.trim());
    }
    report.warn(
        line,
        path,
        "the value looks like a reference but is used literally: only ${env:NAME} and \
         ${file:/path} are expanded",
    );
    Some(value)
}

fn from_env(report: &mut Report, line: Option<usize>, path: &str, name: &str) -> Option<String> {
    if name.is_empty() {
        report.error(line, path, "${env:} needs a variable name: ${env:NAME}");
        return None;
    }
    match std::env::var(name) {
        Ok(v) if v.is_empty() => {
            report.error(line, path, format!("environment variable {name} is empty"));
            None
        }
        Ok(v) => Some(v),
        Err(std::env::VarError::NotPresent) => {
            report.error(
                line,
                path,
                format!("environment variable {name} is not set"),
            );
            None
        }
        Err(std::env::VarError::NotUnicode(_)) => {
            report.error(
                line,
                path,
                format!("environment variable {name} is not valid UTF-8"),
            );
            None
        }
    }
}

fn from_file(report: &mut Report, line: Option<usize>, path: &str, file: &str) -> Option<String> {
    if file.is_empty() {
        report.error(line, path, "${file:} needs a path: ${file:/path/to/secret}");
        return None;
    }
    let file = absolute(report.base_dir(), Path::new(file));
    report.secret_files.push(file.clone());
    let shown = file.display();
    let bytes = match read_limited(&file) {
        Ok(bytes) => bytes,
        Err(e) => {
            report.error(line, path, format!("cannot read secret file {shown}: {e}"));
            return None;
        }
    };
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_SECRET_FILE_BYTES {
        report.error(
            line,
            path,
            format!("secret file {shown} is larger than {MAX_SECRET_FILE_BYTES} bytes"),
        );
        return None;
    }
    let Ok(mut text) = String::from_utf8(bytes) else {
        report.error(line, path, format!("secret file {shown} is not UTF-8 text"));
        return None;
    };
    // One trailing newline, as `echo secret > file` and most editors leave it.
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() {
        report.error(line, path, format!("secret file {shown} is empty"));
        return None;
    }
    Some(text)
}

/// A relative path is taken from the configuration file's directory.
fn absolute(base: Option<&Path>, file: &Path) -> PathBuf {
    match base {
        Some(dir) if file.is_relative() => dir.join(file),
        _ => file.to_path_buf(),
    }
}

/// Reads at most one byte more than accepted, so `/dev/zero` cannot exhaust memory.
fn read_limited(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_SECRET_FILE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(value: &str, base: Option<&Path>) -> (Option<String>, Report<'static>) {
        let mut report = Report::new(None, "");
        report.set_base_dir(base.map(Path::to_path_buf));
        let out = resolve(&mut report, Some(3), "a.b", value.to_owned());
        (out, report)
    }

    #[test]
    fn literals_stay_literal() {
        for v in ["plain", "", "${", "$env:X}", "{env:X}", "x${env:X}"] {
            let (out, report) = run(v, None);
            assert_eq!(out.as_deref(), Some(v));
            assert!(
                report.problems.is_empty() && report.warnings.is_empty(),
                "{v}"
            );
        }
        let (out, report) = run("${FOO}", None);
        assert_eq!(out.as_deref(), Some("${FOO}"));
        assert_eq!(report.warnings.len(), 1);
    }

    #[test]
    fn files_lose_one_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        for (content, expected) in [
            ("s3cret\n", "s3cret"),
            ("s3cret\r\n", "s3cret"),
            ("s3cret\n\n", "s3cret\n"),
            ("s3cret", "s3cret"),
            (" spaced ", " spaced "),
        ] {
            std::fs::write(dir.path().join("f"), content).unwrap();
            let (out, report) = run("${file:f}", Some(dir.path()));
            assert_eq!(out.as_deref(), Some(expected), "{content:?}");
            assert_eq!(report.secret_files, vec![dir.path().join("f")]);
        }
    }

    #[test]
    fn problems_name_the_key_and_source_never_a_value() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("empty"), "\n").unwrap();
        std::fs::write(
            dir.path().join("big"),
            vec![b'x'; usize::try_from(MAX_SECRET_FILE_BYTES).unwrap() + 1],
        )
        .unwrap();
        std::fs::write(dir.path().join("binary"), [0xff, 0xfe]).unwrap();
        let missing = dir.path().join("missing");
        for (value, expected) in [
            (
                format!("${{file:{}}}", missing.display()),
                "cannot read secret file",
            ),
            ("${file:empty}".to_owned(), "is empty"),
            ("${file:big}".to_owned(), "is larger than"),
            ("${file:binary}".to_owned(), "is not UTF-8"),
            ("${file:}".to_owned(), "needs a path"),
            (
                "${env:PORTCULLIS_TEST_SURELY_UNSET_VAR}".to_owned(),
                "PORTCULLIS_TEST_SURELY_UNSET_VAR is not set",
            ),
            ("${env:}".to_owned(), "needs a variable name"),
        ] {
            let (out, report) = run(&value, Some(dir.path()));
            assert_eq!(out, None, "{value}");
            let p = &report.problems[0];
            assert_eq!((p.line, p.path.as_str()), (Some(3), "a.b"));
            assert!(p.message.contains(expected), "{value}: {}", p.message);
        }
    }

    #[test]
    fn environment_variables() {
        // PATH is set in every test environment.
        let path = std::env::var("PATH").unwrap();
        let (out, report) = run("${env:PATH}", None);
        assert_eq!(out, Some(path));
        assert!(report.problems.is_empty());
    }
}

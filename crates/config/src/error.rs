//! Problems found while loading, and the error that carries all of them.

use std::fmt;
use std::path::{Path, PathBuf};

/// One finding: where it is and what is wrong. Messages never contain secret values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file, when the configuration came from one.
    pub file: Option<PathBuf>,
    /// 1-based line in that file, when known.
    pub line: Option<usize>,
    /// Key path such as `authentication.oauthOptions.identityProviders[1].type`, or the flag and
    /// environment variable (`--listen / PORTCULLIS_LISTEN`) for a bad override. May be empty.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    /// `FILE:LINE: KEY.PATH: message`, leaving out the parts that are unknown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{}:{line}: ", file.display())?,
            (Some(file), None) => write!(f, "{}: ", file.display())?,
            (None, Some(line)) => write!(f, "line {line}: ")?,
            (None, None) => {}
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Loading failed. Carries every problem found, not only the first, plus the warnings seen on
/// the way (an unknown key with a "did you mean" hint often explains an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The errors in file order (those without a line, such as bad flags, last). Never empty.
    pub problems: Vec<Problem>,
    /// Non-fatal findings (unknown keys and the like).
    pub warnings: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    /// One line per problem, then one line per warning prefixed with `warning: `.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for problem in &self.problems {
            if !first {
                writeln!(f)?;
            }
            first = false;
            write!(f, "{problem}")?;
        }
        for warning in &self.warnings {
            if !first {
                writeln!(f)?;
            }
            first = false;
            write!(f, "warning: {warning}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Collects problems and warnings while the raw tree is turned into a [`crate::Config`].
pub(crate) struct Report<'a> {
    file: Option<&'a Path>,
    /// The source text, to recover scalars as written.
    pub text: &'a str,
    pub problems: Vec<Problem>,
    pub warnings: Vec<Problem>,
    /// Files that secret values were read from (`${file:...}`), for the reload watcher.
    pub secret_files: Vec<PathBuf>,
    /// Where relative `${file:...}` paths start: the configuration file's directory.
    base_dir: Option<PathBuf>,
}

impl<'a> Report<'a> {
    pub fn new(file: Option<&'a Path>, text: &'a str) -> Self {
        Report {
            file,
            text,
            problems: Vec::new(),
            warnings: Vec::new(),
            secret_files: Vec::new(),
            base_dir: file.and_then(Path::parent).map(Path::to_path_buf),
        }
    }

    /// The directory relative `${file:...}` paths are taken from.
    pub fn base_dir(&self) -> Option<&Path> {
        self.base_dir.as_deref()
    }

    #[cfg(test)]
    pub fn set_base_dir(&mut self, dir: Option<PathBuf>) {
        self.base_dir = dir;
    }

    fn problem(&self, line: Option<usize>, path: &str, message: String) -> Problem {
        Problem {
            file: self.file.map(Path::to_path_buf),
            line: line.filter(|&l| l > 0),
            path: path.to_owned(),
            message,
        }
    }

    /// Records an error.
    pub fn error(&mut self, line: Option<usize>, path: &str, message: impl Into<String>) {
        let problem = self.problem(line, path, message.into());
        self.problems.push(problem);
    }

    /// Records an error about an override (flag or environment variable): no file, no line.
    pub fn override_error(&mut self, source: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            file: None,
            line: None,
            path: source.to_owned(),
            message: message.into(),
        });
    }

    /// Records a warning.
    pub fn warn(&mut self, line: Option<usize>, path: &str, message: impl Into<String>) {
        let problem = self.problem(line, path, message.into());
        self.warnings.push(problem);
    }

    /// Everything recorded, as an error.
    pub fn into_error(mut self) -> ConfigError {
        self.sort();
        ConfigError {
            problems: self.problems,
            warnings: self.warnings,
        }
    }

    /// File order; problems without a line (flags, environment) last. The sort is stable, so
    /// findings on one line keep the order they were found in.
    fn sort(&mut self) {
        let key = |p: &Problem| p.line.unwrap_or(usize::MAX);
        self.problems.sort_by_key(key);
        self.warnings.sort_by_key(key);
    }

    /// The error, when any problem was recorded.
    pub fn into_result<T>(mut self, value: T) -> Result<(T, Vec<Problem>), ConfigError> {
        if self.problems.is_empty() {
            self.sort();
            Ok((value, self.warnings))
        } else {
            Err(self.into_error())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_leaves_out_unknown_parts() {
        let mut p = Problem {
            file: Some("/etc/kubesphere/kubesphere.yaml".into()),
            line: Some(23),
            path: "authentication.jwtSecret".into(),
            message: "JWT secret MUST not be empty".into(),
        };
        assert_eq!(
            p.to_string(),
            "/etc/kubesphere/kubesphere.yaml:23: authentication.jwtSecret: JWT secret MUST not be empty"
        );
        p.line = None;
        assert_eq!(
            p.to_string(),
            "/etc/kubesphere/kubesphere.yaml: authentication.jwtSecret: JWT secret MUST not be empty"
        );
        p.file = None;
        assert_eq!(
            p.to_string(),
            "authentication.jwtSecret: JWT secret MUST not be empty"
        );
        p.path.clear();
        assert_eq!(p.to_string(), "JWT secret MUST not be empty");
    }

    #[test]
    fn error_has_one_line_per_problem() {
        let p = |m: &str| Problem {
            file: None,
            line: Some(1),
            path: "a".into(),
            message: m.into(),
        };
        let e = ConfigError {
            problems: vec![p("x"), p("y")],
            warnings: vec![p("z")],
        };
        assert_eq!(
            e.to_string(),
            "line 1: a: x\nline 1: a: y\nwarning: line 1: a: z"
        );
    }
}

//! Reading a YAML map the way viper and mapstructure do: keys match case-insensitively.
//!
//! [`Fields`] splits a map node into the known keys (looked up by their canonical spelling) and
//! unknown ones (a warning each, with a "did you mean" hint). [`Field`] converts one value to a
//! Rust type, recording an error (never the value itself, which may be a secret) on a mismatch.

use std::time::Duration;

use crate::duration::parse_go_duration;
use crate::error::Report;
use crate::raw::{Kind, Node};

/// The known keys of one map, found case-insensitively.
pub(crate) struct Fields<'n> {
    /// Key path of the map (`authentication.oauthOptions`).
    pub path: String,
    /// Line of the map's own key or list item.
    pub line: Option<usize>,
    keys: &'static [&'static str],
    /// The node was there but not a map (already reported).
    pub invalid: bool,
    /// For each known key: line of the key and the value (null values are left out).
    found: Vec<Option<(Option<usize>, &'n Node)>>,
}

/// One value, with what is needed to report a problem about it.
pub(crate) struct Field<'n> {
    pub node: &'n Node,
    /// Line of the key.
    pub line: Option<usize>,
    pub path: String,
}

impl<'n> Fields<'n> {
    /// Reads `node` (absent or null: an empty map). Records an error when it is not a map, a
    /// warning for each unknown key, and an error for each key given twice.
    /// `elsewhere` may give a better hint than "did you mean" for an unknown key.
    pub fn read(
        report: &mut Report,
        node: Option<&'n Node>,
        path: &str,
        line: Option<usize>,
        keys: &'static [&'static str],
        elsewhere: &dyn Fn(&str) -> Option<String>,
    ) -> Self {
        let mut fields = Fields {
            path: path.to_owned(),
            line,
            keys,
            invalid: false,
            found: vec![None; keys.len()],
        };
        let entries = match node.map(|n| &n.kind) {
            None | Some(Kind::Null) => return fields,
            Some(Kind::Map(entries)) => entries,
            Some(_) => {
                let found = node.map_or("nothing", Node::type_name);
                report.error(line, path, format!("expected a map, found {found}"));
                fields.invalid = true;
                return fields;
            }
        };
        // Lowercased key, key as written, line.
        let mut seen: Vec<(String, String, Option<usize>)> = Vec::new();
        for (key, value) in entries {
            let Some(name) = key.scalar_text(report.text) else {
                report.error(
                    key.line(),
                    path,
                    format!("keys must be strings, found {}", key.type_name()),
                );
                continue;
            };
            let lower = name.to_lowercase();
            let key_path = join(path, &name);
            if let Some((_, first, first_line)) = seen.iter().find(|(l, _, _)| *l == lower) {
                let at = first_line.map_or(String::new(), |l| format!(" on line {l}"));
                report.error(
                    key.line(),
                    &key_path,
                    format!(
                        "duplicate key: `{first}` is already set{at} (keys are case-insensitive)"
                    ),
                );
                continue;
            }
            seen.push((lower.clone(), name.clone(), key.line()));
            match keys.iter().position(|k| k.to_lowercase() == lower) {
                Some(i) if !matches!(value.kind, Kind::Null) => {
                    fields.found[i] = Some((key.line(), value))
                }
                Some(_) => {}
                None => {
                    let hint = elsewhere(&name)
                        .or_else(|| suggest(&name, keys).map(|s| format!("did you mean `{s}`?")));
                    let message = match hint {
                        Some(hint) => format!("unknown key, ignored; {hint}"),
                        None => format!("unknown key, ignored (known keys: {})", keys.join(", ")),
                    };
                    report.warn(key.line(), &key_path, message);
                }
            }
        }
        fields
    }

    /// The value of `key` (a canonical key given to [`Fields::read`]), unless absent or null.
    pub fn get(&self, key: &str) -> Option<Field<'n>> {
        let i = self.keys.iter().position(|k| *k == key);
        debug_assert!(i.is_some(), "{key} is not a declared key of {}", self.path);
        let (line, node) = (*self.found.get(i?)?)?;
        Some(Field {
            node,
            line,
            path: self.key_path(key),
        })
    }

    /// Path of `key` inside this map.
    pub fn key_path(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// Line of `key` when present, else the line of this map.
    pub fn line_of(&self, key: &str) -> Option<usize> {
        self.get(key).and_then(|f| f.line).or(self.line)
    }
}

/// `parent.key`, or `key` at the top.
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

impl<'n> Field<'n> {
    fn mismatch(&self, report: &mut Report, expected: &str) {
        let found = self.node.type_name();
        report.error(
            self.line,
            &self.path,
            format!("expected {expected}, found {found}"),
        );
    }

    /// A string. Numbers and booleans are taken as written (viper's weak typing does the same).
    pub fn string(&self, report: &mut Report) -> Option<String> {
        match &self.node.kind {
            Kind::Seq(_) | Kind::Map(_) => {
                self.mismatch(report, "a string");
                None
            }
            _ => self.node.scalar_text(report.text),
        }
    }

    /// A secret string: [`Field::string`], then a `${file:...}` or `${env:...}` reference
    /// resolved (see `secret_ref`). `None` when absent in type or unresolvable (reported).
    pub fn secret(&self, report: &mut Report) -> Option<String> {
        let value = self.string(report)?;
        crate::secret_ref::resolve(report, self.line, &self.path, value)
    }

    /// An integer in `T`'s range; a quoted integer is accepted too.
    pub fn int<T: TryFrom<i128>>(&self, report: &mut Report) -> Option<T> {
        let value = match &self.node.kind {
            Kind::Int(i) => Some(*i),
            Kind::Str(s) => s.trim().parse::<i128>().ok(),
            _ => None,
        };
        let Some(value) = value else {
            self.mismatch(report, "an integer");
            return None;
        };
        match T::try_from(value) {
            Ok(v) => Some(v),
            Err(_) => {
                report.error(self.line, &self.path, format!("{value} is out of range"));
                None
            }
        }
    }

    /// A boolean; the strings `true` and `false` are accepted too.
    pub fn bool(&self, report: &mut Report) -> Option<bool> {
        match &self.node.kind {
            Kind::Bool(b) => Some(*b),
            Kind::Str(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Kind::Str(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => {
                self.mismatch(report, "true or false");
                None
            }
        }
    }

    /// A Go duration (`2h`, `10m0s`).
    ///
    /// A bare integer other than 0 is an ERROR, although KubeSphere accepts it: mapstructure
    /// turns it into that many nanoseconds, so `accessTokenMaxAge: 7200` makes tokens that
    /// expire after 7.2 µs. Nobody means that, and refusing to start is kinder than issuing
    /// dead tokens; the message says what to write instead.
    pub fn duration(&self, report: &mut Report) -> Option<Duration> {
        let bare = |n: &dyn std::fmt::Display| {
            format!(
                "bare number {n} is {n} nanoseconds in KubeSphere; write e.g. `2h` \
                 (a Go duration with a unit: ns, us, ms, s, m, h; {n} seconds is `{n}s`)"
            )
        };
        match &self.node.kind {
            Kind::Int(0) => Some(Duration::ZERO),
            Kind::Int(n) => {
                report.error(self.line, &self.path, bare(n));
                None
            }
            Kind::Float(_) => {
                let text = self.node.scalar_text(report.text).unwrap_or_default();
                report.error(self.line, &self.path, bare(&text));
                None
            }
            Kind::Str(s) => match parse_go_duration(s) {
                Ok(d) => Some(d),
                Err(e) if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() => {
                    report.error(self.line, &self.path, format!("{e}; write e.g. `2h`"));
                    None
                }
                Err(e) => {
                    report.error(self.line, &self.path, e);
                    None
                }
            },
            _ => {
                self.mismatch(report, "a Go duration such as `2h`");
                None
            }
        }
    }

    /// The items of a list (null items left out). Absent and null are the empty list elsewhere.
    pub fn list(&self, report: &mut Report) -> Option<&'n [Node]> {
        match &self.node.kind {
            Kind::Seq(items) => Some(items),
            _ => {
                self.mismatch(report, "a list");
                None
            }
        }
    }

    /// A list of strings, each with its path and line. A single string is split on commas, as
    /// viper's string-to-slice hook does.
    pub fn strings(&self, report: &mut Report) -> Option<Vec<(String, String, Option<usize>)>> {
        match &self.node.kind {
            Kind::Str(s) if s.is_empty() => Some(Vec::new()),
            Kind::Str(s) => Some(
                s.split(',')
                    .enumerate()
                    .map(|(i, item)| (item.to_owned(), format!("{}[{i}]", self.path), self.line))
                    .collect(),
            ),
            Kind::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let field = Field {
                        node: item,
                        line: item.line().or(self.line),
                        path: format!("{}[{i}]", self.path),
                    };
                    if matches!(item.kind, Kind::Null) {
                        report.error(field.line, &field.path, "expected a string, found null");
                    } else if let Some(s) = field.string(report) {
                        out.push((s, field.path, field.line));
                    }
                }
                Some(out)
            }
            _ => {
                self.mismatch(report, "a list of strings");
                None
            }
        }
    }
}

/// The candidate closest to `key` (case-insensitively), when close enough to be a typo.
pub(crate) fn suggest<'k>(key: &str, candidates: &[&'k str]) -> Option<&'k str> {
    let key = key.to_lowercase();
    let limit = (key.chars().count() / 3).max(2);
    candidates
        .iter()
        .map(|c| (edit_distance(&key, &c.to_lowercase()), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over chars. Inputs are short keys; long ones are cut off, so a hostile
/// key costs little.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(64).collect();
    let b: Vec<char> = b.chars().take(64).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_keys_only() {
        let keys = ["jwtSecret", "multipleLogin", "oauthOptions"];
        assert_eq!(suggest("jwtSecrt", &keys), Some("jwtSecret"));
        assert_eq!(suggest("JWT_SECRET", &keys), Some("jwtSecret"));
        assert_eq!(suggest("multiLogin", &keys), Some("multipleLogin"));
        assert_eq!(suggest("somethingElse", &keys), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}

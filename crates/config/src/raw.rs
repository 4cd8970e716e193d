//! Stage one of loading: YAML text to a small span-aware tree.
//!
//! serde-saphyr does the parsing (and enforces its budgets against alias bombs and deep nesting);
//! every node is read through [`serde_saphyr::Spanned`], so each key and value keeps its line.
//! Only the top-level sections Portcullis reads are turned into a tree; every other section is
//! skipped with `IgnoredAny`, so `monitoring:`, `devops:` and the like cost nothing and are never
//! checked beyond YAML syntax.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{MessageFormatter, Spanned};

/// Top-level sections that are read; everything else in `kubesphere.yaml` is skipped.
pub(crate) const SECTIONS: [&str; 3] = ["authentication", "redis", "portcullis"];

/// Largest accepted input. A real `kubesphere.yaml` is a few kilobytes.
pub(crate) const MAX_INPUT_BYTES: usize = 8 * 1024 * 1024;

/// A YAML node with its location.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub kind: Kind,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// Byte range of the node in the source, when serde-saphyr knows it.
    pub bytes: Option<(usize, usize)>,
}

/// What a node holds.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in file order; keys are nodes because YAML allows any node as a key.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// A short name of the node's type, for "expected X, found Y" messages.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a number",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a map",
        }
    }

    /// The line as an `Option`.
    pub fn line(&self) -> Option<usize> {
        (self.line > 0).then_some(self.line)
    }

    /// The text of a scalar as written (for plain scalars, which is what non-strings are);
    /// falls back to a canonical rendering. `None` for collections and null.
    pub fn scalar_text(&self, source: &str) -> Option<String> {
        match &self.kind {
            Kind::Str(s) => Some(s.clone()),
            Kind::Null | Kind::Seq(_) | Kind::Map(_) => None,
            Kind::Bool(_) | Kind::Int(_) | Kind::Float(_) => {
                let written = self
                    .bytes
                    .and_then(|(start, len)| source.get(start..start.checked_add(len)?))
                    .map(str::trim)
                    .filter(|t| !t.is_empty() && !t.contains(['\n', '#', ':', '!', '&', '*']));
                Some(match (written, &self.kind) {
                    (Some(t), _) => t.to_owned(),
                    (None, Kind::Bool(b)) => b.to_string(),
                    (None, Kind::Int(i)) => i.to_string(),
                    (None, Kind::Float(f)) => f.to_string(),
                    (None, _) => return None,
                })
            }
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Kind>::deserialize(deserializer)?;
        let span = spanned.referenced.span();
        let bytes = match (span.byte_offset(), span.byte_len()) {
            (Some(o), Some(l)) => usize::try_from(o).ok().zip(usize::try_from(l).ok()),
            _ => None,
        };
        Ok(Node {
            kind: spanned.value,
            line: usize::try_from(spanned.referenced.line()).unwrap_or(0),
            bytes,
        })
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(KindVisitor)
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = Kind;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Kind, E> {
        Ok(Kind::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Kind, E> {
        Ok(Kind::Int(i128::from(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Kind, E> {
        Ok(Kind::Int(i128::from(v)))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Kind, E> {
        Ok(Kind::Int(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Kind, E> {
        Ok(i128::try_from(v).map_or_else(|_| Kind::Str(v.to_string()), Kind::Int))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Kind, E> {
        Ok(Kind::Float(v))
    }
    fn visit_char<E: de::Error>(self, v: char) -> Result<Kind, E> {
        Ok(Kind::Str(v.to_string()))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Kind, E> {
        Ok(Kind::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Kind, E> {
        Ok(Kind::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Kind, E> {
        Ok(Kind::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Kind::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(Kind::Map(entries))
    }
}

/// The document root: the sections that are read, each with its key.
#[derive(Debug, Default)]
pub(crate) struct Root {
    /// `(key node, value node)` for each read section, in file order.
    pub sections: Vec<(Node, Node)>,
    /// Other top-level keys (name and line), skipped; kept only to spot misspelled sections.
    pub skipped: Vec<(String, usize)>,
    /// When the document is not a map: the type found.
    pub not_a_map: Option<&'static str>,
}

impl<'de> Deserialize<'de> for Root {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RootVisitor)
    }
}

struct RootVisitor;

impl RootVisitor {
    fn other<E>(found: &'static str) -> Result<Root, E> {
        Ok(Root {
            not_a_map: Some(found),
            ..Root::default()
        })
    }
}

impl<'de> Visitor<'de> for RootVisitor {
    type Value = Root;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of configuration sections")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Root, E> {
        Ok(Root::default())
    }
    fn visit_none<E: de::Error>(self) -> Result<Root, E> {
        Ok(Root::default())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Root, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Root, E> {
        Self::other("a boolean")
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Root, E> {
        Self::other("an integer")
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Root, E> {
        Self::other("an integer")
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<Root, E> {
        Self::other("an integer")
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Root, E> {
        Self::other("an integer")
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Root, E> {
        Self::other("a number")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Root, E> {
        if v.trim().is_empty() {
            Ok(Root::default())
        } else {
            Self::other("a string")
        }
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Root, E> {
        Self::other("binary data")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Root, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Self::other("a list")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Root, A::Error> {
        let mut root = Root::default();
        while let Some(key) = map.next_key::<Node>()? {
            let read = matches!(&key.kind, Kind::Str(k)
                if SECTIONS.iter().any(|s| s.eq_ignore_ascii_case(k)));
            if read {
                let value = map.next_value::<Node>()?;
                root.sections.push((key, value));
            } else {
                if let Kind::Str(name) = key.kind {
                    root.skipped.push((name, key.line));
                }
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(root)
    }
}

/// A YAML syntax or budget error: message and 1-based line.
#[derive(Debug)]
pub(crate) struct SyntaxError {
    pub message: String,
    pub line: Option<usize>,
}

/// Parses a whole document. Never panics; budgets bound memory and depth.
pub(crate) fn parse(text: &str) -> Result<Root, SyntaxError> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(SyntaxError {
            message: format!(
                "file is {} bytes; the limit is {MAX_INPUT_BYTES} bytes",
                text.len()
            ),
            line: None,
        });
    }
    let mut options = serde_saphyr::Options::default();
    if let Some(budget) = options.budget.as_mut() {
        budget.max_nodes = 100_000;
        budget.max_events = 400_000;
        budget.max_depth = 64;
    }
    options.alias_limits.max_total_replayed_events = 100_000;
    // Messages are rendered as one plain line, without a source snippet.
    options.with_snippet = false;
    serde_saphyr::from_str_with_options::<Root>(text, options).map_err(|err| {
        let inner = err.without_snippet();
        let message = serde_saphyr::UserMessageFormatter.format_message(inner);
        let message: String = message
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        SyntaxError {
            message: format!("invalid YAML: {message}"),
            line: inner
                .location()
                .and_then(|l| usize::try_from(l.line()).ok())
                .filter(|&l| l > 0),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_of(node: &Node) -> &[(Node, Node)] {
        match &node.kind {
            Kind::Map(m) => m,
            other => panic!("not a map: {other:?}"),
        }
    }

    #[test]
    fn keeps_lines_of_keys_and_values() {
        let text = "monitoring:\n  endpoint: x\nauthentication:\n  jwtSecret: abc\n  oauthOptions:\n    identityProviders:\n    - name: a\n      type: T\n    - name: b\n      type: U\n";
        let root = parse(text).unwrap();
        assert_eq!(root.sections.len(), 1);
        let (key, auth) = &root.sections[0];
        assert_eq!(key.line, 3);
        let entries = map_of(auth);
        assert_eq!(entries[0].0.line, 4);
        assert_eq!(entries[1].0.line, 5);
        let oauth = map_of(&entries[1].1);
        let Kind::Seq(items) = &oauth[0].1.kind else {
            panic!()
        };
        assert_eq!(items[1].line, 9);
        let second = map_of(&items[1]);
        assert_eq!(second[1].0.line, 10);
        assert_eq!(second[1].1.line, 10);
    }

    #[test]
    fn scalar_text_is_as_written() {
        let text = "portcullis:\n  a: 0x1F\n  b: 1.50\n  c: yes\n";
        let root = parse(text).unwrap();
        let entries = map_of(&root.sections[0].1);
        let texts: Vec<_> = entries
            .iter()
            .map(|(_, v)| v.scalar_text(text).unwrap())
            .collect();
        assert_eq!(texts, ["0x1F", "1.50", "yes"]);
    }
}

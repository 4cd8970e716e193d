//! The claim-mapping expressions of the generic OAuth 2.0 provider.
//!
//! An expression is written in YAML as:
//! * a **JSON pointer** (RFC 6901) into the userinfo JSON: `/id`, `/data/user/login`, `/emails/0/address`. A `*`
//!   segment stands for every element of a list (or every value of a map): `/organizations/*/name`;
//! * a **bare name** without a leading `/`: a top-level key (`login` is `/login`);
//! * a **list** of the above: the first one that yields a value (`[/preferred_username, /login]`).
//!
//! Values are turned into what each field needs: for text fields, strings as they are (empty ones count as
//! missing) and numbers as decimal strings (`12345`, so numeric ids work); for `emailVerified`, booleans or the
//! strings `true`/`false`; for `groups`, every string or number found (lists are flattened one level).

use portcullis_idp::ProviderError;
use serde_json::Value;

/// A parsed expression: alternatives, each a list of pointer segments (`None` = `*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expr {
    source: String,
    alternatives: Vec<Vec<Option<String>>>,
}

impl Expr {
    /// Parses the option value at `key` (a string or a list of strings).
    pub fn parse(key: &str, value: &Value) -> Result<Expr, ProviderError> {
        let bad = || {
            ProviderError::misconfigured(format!(
                "option `{key}` must be a JSON pointer such as `/id`, a top-level key, or a list of them"
            ))
        };
        let raw: Vec<&str> = match value {
            Value::String(s) => vec![s.as_str()],
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().ok_or_else(bad))
                .collect::<Result<_, _>>()?,
            _ => return Err(bad()),
        };
        let alternatives: Vec<Vec<Option<String>>> = raw
            .iter()
            .map(|r| r.trim())
            .filter(|r| !r.is_empty())
            .map(|r| match r.strip_prefix('/') {
                Some(pointer) => pointer
                    .split('/')
                    .map(|seg| (seg != "*").then(|| seg.replace("~1", "/").replace("~0", "~")))
                    .collect(),
                None => vec![Some(r.to_owned())],
            })
            .collect();
        if alternatives.is_empty() {
            return Err(bad());
        }
        Ok(Expr {
            source: raw.join(", "),
            alternatives,
        })
    }

    /// A default expression (known valid).
    pub fn default_of(pointers: &[&str]) -> Expr {
        let list = Value::Array(
            pointers
                .iter()
                .map(|p| Value::String((*p).to_owned()))
                .collect(),
        );
        Expr::parse("default", &list).unwrap_or(Expr {
            source: String::new(),
            alternatives: Vec::new(),
        })
    }

    /// The expression as written, for messages.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Every value the first matching alternative reaches.
    fn values<'v>(&self, doc: &'v Value) -> Vec<&'v Value> {
        for alt in &self.alternatives {
            let mut found = Vec::new();
            walk(doc, alt, &mut found);
            found.retain(|v| !is_empty(v));
            if !found.is_empty() {
                return found;
            }
        }
        Vec::new()
    }

    /// The first value as text (strings and numbers).
    pub fn text(&self, doc: &Value) -> Option<String> {
        self.values(doc).into_iter().find_map(scalar_text)
    }

    /// The first value as a boolean (`true`/`false` or their strings).
    pub fn boolean(&self, doc: &Value) -> Option<bool> {
        self.values(doc).into_iter().find_map(|v| match v {
            Value::Bool(b) => Some(*b),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
    }

    /// Every string or number reached, lists flattened one level.
    pub fn list(&self, doc: &Value) -> Vec<String> {
        let mut out = Vec::new();
        for v in self.values(doc) {
            match v {
                Value::Array(items) => out.extend(items.iter().filter_map(scalar_text)),
                other => out.extend(scalar_text(other)),
            }
        }
        out
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn walk<'v>(v: &'v Value, segments: &[Option<String>], out: &mut Vec<&'v Value>) {
    let Some((first, rest)) = segments.split_first() else {
        out.push(v);
        return;
    };
    match (first, v) {
        (None, Value::Array(items)) => items.iter().for_each(|i| walk(i, rest, out)),
        (None, Value::Object(map)) => map.values().for_each(|i| walk(i, rest, out)),
        (Some(key), Value::Object(map)) => {
            if let Some(next) = map.get(key) {
                walk(next, rest, out);
            }
        }
        (Some(index), Value::Array(items)) => {
            if let Some(next) = index.parse::<usize>().ok().and_then(|i| items.get(i)) {
                walk(next, rest, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn e(v: Value) -> Expr {
        Expr::parse("claims.x", &v).unwrap()
    }

    #[test]
    fn pointers_names_lists_and_wildcards() {
        let doc = json!({"id": 12345, "login": "", "data": {"user": {"login": "octo"}}, "a/b": "slash",
                         "orgs": [{"name": "dev"}, {"name": "ops"}, {"x": 1}], "roles": ["r1", 2],
                         "verified": "true", "nothing": null});
        assert_eq!(e(json!("/id")).text(&doc).as_deref(), Some("12345"));
        assert_eq!(e(json!("id")).text(&doc).as_deref(), Some("12345"));
        assert_eq!(
            e(json!(["/login", "/data/user/login"]))
                .text(&doc)
                .as_deref(),
            Some("octo")
        );
        assert_eq!(e(json!("/a~1b")).text(&doc).as_deref(), Some("slash"));
        assert_eq!(e(json!("/orgs/1/name")).text(&doc).as_deref(), Some("ops"));
        assert_eq!(e(json!("/orgs/*/name")).list(&doc), vec!["dev", "ops"]);
        assert_eq!(e(json!("/roles")).list(&doc), vec!["r1", "2"]);
        assert_eq!(e(json!("/verified")).boolean(&doc), Some(true));
        assert_eq!(e(json!(["/nothing", "/missing"])).text(&doc), None);
        assert_eq!(e(json!("/orgs")).text(&doc), None, "a list is not text");
    }

    #[test]
    fn malformed_expressions_name_the_key() {
        for bad in [
            json!(5),
            json!([]),
            json!([""]),
            json!({"a": 1}),
            json!(["/a", 3]),
        ] {
            let err = Expr::parse("claims.userID", &bad).unwrap_err();
            assert!(
                err.is_misconfigured() && err.to_string().contains("`claims.userID`"),
                "{err}"
            );
        }
    }
}

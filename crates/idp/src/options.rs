//! [`ProviderOptions`]: the free-form `provider:` map of an `identityProviders[]` entry, read case-insensitively.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use url::Url;

use crate::{ProviderError, Secret};

/// The `provider:` options of one identity provider, as written in the configuration file.
///
/// KubeSphere decodes this map with `mapstructure`, which matches keys case-insensitively (an exact match first),
/// and publishes the map with the keys in their original case. `ProviderOptions` does the same:
///
/// * typed getters ([`get_str`](Self::get_str), [`get_bool`](Self::get_bool), [`get_str_list`](Self::get_str_list),
///   [`get_url`](Self::get_url), [`get_secret`](Self::get_secret), ...) take a key as documented (`"clientID"`) or a
///   dotted path into nested maps (`"endpoint.authURL"`), and fail with [`ProviderError::Misconfigured`] naming
///   the key when the value has the wrong type;
/// * [`deserialize`](Self::deserialize) reads the whole map into a serde struct, matching field names
///   case-insensitively at every level;
/// * every key a provider reads is recorded, so after `create` the server can report the keys nobody read as
///   warnings ([`unknown_keys`](Self::unknown_keys), [`warnings`](Self::warnings)) instead of errors, as KubeSphere
///   does;
/// * [`public_map`](Self::public_map) is the map minus secrets, for `/configs/oauth`.
///
/// Getters take `&self` (the record of read keys sits behind a mutex), so a factory receives `&ProviderOptions`.
#[derive(Debug, Default)]
pub struct ProviderOptions {
    map: Map<String, Value>,
    track: Mutex<Tracking>,
}

/// What the getters recorded; shared with the case-insensitive deserializer.
#[derive(Debug, Default, Clone)]
pub(crate) struct Tracking {
    /// Lower-cased dotted paths a provider has read (the whole subtree counts as read).
    pub(crate) used: BTreeSet<String>,
    /// Lower-cased path -> the path as the provider spelt it, present or not (for "did you mean").
    pub(crate) asked: BTreeMap<String, String>,
    /// Lower-cased dotted paths marked secret.
    pub(crate) secret: BTreeSet<String>,
}

impl Clone for ProviderOptions {
    fn clone(&self) -> Self {
        ProviderOptions {
            map: self.map.clone(),
            track: Mutex::new(self.tracking().clone()),
        }
    }
}

impl From<Map<String, Value>> for ProviderOptions {
    fn from(map: Map<String, Value>) -> Self {
        ProviderOptions::new(map)
    }
}

impl ProviderOptions {
    /// Wraps an options map.
    pub fn new(map: Map<String, Value>) -> Self {
        ProviderOptions {
            map,
            track: Mutex::new(Tracking::default()),
        }
    }

    /// Wraps a JSON value that must be an object; `null` is an empty map.
    pub fn from_value(value: Value) -> Result<Self, ProviderError> {
        match value {
            Value::Object(map) => Ok(ProviderOptions::new(map)),
            Value::Null => Ok(ProviderOptions::default()),
            other => Err(ProviderError::misconfigured(format!(
                "`provider` must be a map of options, found {}",
                kind(&other)
            ))),
        }
    }

    /// The map as written, keys in their original case. Reading it directly does not mark keys as used.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.map
    }

    /// Whether `key` (or dotted path) is present, compared case-insensitively. Marks it as read.
    pub fn contains(&self, key: &str) -> bool {
        self.lookup(key).is_some()
    }

    /// The raw value at `key` (or dotted path), compared case-insensitively; the whole subtree counts as read.
    pub fn get_value(&self, key: &str) -> Option<&Value> {
        self.lookup(key).map(|(_, v)| v)
    }

    /// A string option. Numbers and booleans are accepted and converted (YAML turns `clientID: 12345` into a
    /// number); `null` is absent; maps and lists are an error.
    pub fn get_str(&self, key: &str) -> Result<Option<String>, ProviderError> {
        match self.lookup(key) {
            None | Some((_, Value::Null)) => Ok(None),
            Some((_, Value::String(s))) => Ok(Some(s.clone())),
            Some((_, Value::Number(n))) => Ok(Some(n.to_string())),
            Some((_, Value::Bool(b))) => Ok(Some(b.to_string())),
            Some((path, other)) => Err(wrong_type(&path, "a string", other)),
        }
    }

    /// A string option that must be present and non-empty: `missing required option `clientID`` otherwise.
    pub fn require_str(&self, key: &str) -> Result<String, ProviderError> {
        match self.get_str(key)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(ProviderError::misconfigured(format!(
                "missing required option `{key}`"
            ))),
        }
    }

    /// A boolean option. The strings `true` and `false` (any case) are accepted too.
    pub fn get_bool(&self, key: &str) -> Result<Option<bool>, ProviderError> {
        match self.lookup(key) {
            None | Some((_, Value::Null)) => Ok(None),
            Some((_, Value::Bool(b))) => Ok(Some(*b)),
            Some((path, Value::String(s))) => match s.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                _ => Err(wrong_type(
                    &path,
                    "true or false",
                    &Value::String(s.clone()),
                )),
            },
            Some((path, other)) => Err(wrong_type(&path, "true or false", other)),
        }
    }

    /// A list of strings (`scopes: [user, "read:org"]`). A single string is split at commas and whitespace, so
    /// `scopes: "user read:org"` works too. Empty entries are dropped.
    pub fn get_str_list(&self, key: &str) -> Result<Option<Vec<String>>, ProviderError> {
        match self.lookup(key) {
            None | Some((_, Value::Null)) => Ok(None),
            Some((_, Value::String(s))) => Ok(Some(
                s.split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect(),
            )),
            Some((path, Value::Array(items))) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) if s.trim().is_empty() => {}
                        Value::String(s) => out.push(s.clone()),
                        other => {
                            return Err(wrong_type(&format!("{path}[{i}]"), "a string", other));
                        }
                    }
                }
                Ok(Some(out))
            }
            Some((path, other)) => Err(wrong_type(&path, "a list of strings", other)),
        }
    }

    /// An absolute `http` or `https` URL. An empty string is absent.
    pub fn get_url(&self, key: &str) -> Result<Option<Url>, ProviderError> {
        let Some(raw) = self.get_str(key)? else {
            return Ok(None);
        };
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        let path = self.actual_path(key);
        let url = Url::parse(raw).map_err(|e| {
            ProviderError::misconfigured(format!(
                "option `{path}` is not a valid URL ({raw:?}: {e})"
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return Err(ProviderError::misconfigured(format!(
                "option `{path}` must be an http or https URL with a host, found {raw:?}"
            )));
        }
        Ok(Some(url))
    }

    /// An URL that must be present: `missing required option `endpoint.tokenURL`` otherwise.
    pub fn require_url(&self, key: &str) -> Result<Url, ProviderError> {
        self.get_url(key)?
            .ok_or_else(|| ProviderError::misconfigured(format!("missing required option `{key}`")))
    }

    /// A secret string option (client secret, bind password). The key is [marked secret](Self::mark_secret) even
    /// when absent, so it is never published.
    pub fn get_secret(&self, key: &str) -> Result<Option<Secret>, ProviderError> {
        self.mark_secret(key);
        Ok(self.get_str(key)?.map(Secret::new))
    }

    /// Marks `key` (or dotted path) as secret: [`public_map`](Self::public_map) leaves it out. Keys whose name
    /// contains `password` or `secret` are left out without marking.
    pub fn mark_secret(&self, key: &str) {
        self.tracking().secret.insert(key.to_lowercase());
    }

    /// Marks `key` (or dotted path) as read without reading it, for options a provider accepts and ignores.
    pub fn mark_used(&self, key: &str) {
        self.lookup(key);
    }

    /// Deserializes the whole map into `T`, matching field names case-insensitively (an exact match wins) at every
    /// nested struct level, and marks the matched keys as read. Errors are
    /// [`Misconfigured`](ProviderError::Misconfigured) and name the key.
    ///
    /// Limitation: fields of a `#[serde(flatten)]` struct are matched case-sensitively (serde reads them as a map).
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, ProviderError> {
        let de = crate::ci_de::CiDe::new(Value::Object(self.map.clone()), &self.track);
        T::deserialize(de)
            .map_err(|e| ProviderError::misconfigured(format!("invalid options: {e}")))
    }

    /// The keys (dotted paths, original case) that no getter read: the "unknown option" list.
    pub fn unknown_keys(&self) -> Vec<String> {
        let t = self.tracking();
        let mut out = Vec::new();
        collect_unknown(&self.map, "", &t.used, &mut out);
        out
    }

    /// Human-readable warnings about the options: unknown keys (with a "did you mean" hint taken from the keys the
    /// provider asked for) and keys that differ only in case. Call after the factory's `create`.
    pub fn warnings(&self) -> Vec<String> {
        let asked: Vec<String> = self.tracking().asked.values().cloned().collect();
        let mut out: Vec<String> = self
            .unknown_keys()
            .into_iter()
            .map(|key| match suggest(&key, &asked) {
                Some(s) => format!("unknown option `{key}` is ignored (did you mean `{s}`?)"),
                None => format!("unknown option `{key}` is ignored"),
            })
            .collect();
        collect_case_duplicates(&self.map, "", &mut out);
        out
    }

    /// The map to publish on `/configs/oauth`: the options the provider has read, minus every key
    /// [marked secret](Self::mark_secret) and every key, at any depth, whose lower-cased name contains `password`
    /// or `secret` (KubeSphere's rule, here applied to all nested maps and lists).
    ///
    /// Deliberate deviation from KubeSphere, which publishes unknown keys too: keys nobody read are left out, so a
    /// misspelt secret (`clientSecert: ...`) is never published. Call it at the end of `create`, after reading
    /// the options.
    pub fn public_map(&self) -> Map<String, Value> {
        let t = self.tracking().clone();
        strip_secrets(&self.map, "", &t, false)
    }

    fn tracking(&self) -> std::sync::MutexGuard<'_, Tracking> {
        // A panic while holding this lock cannot leave the sets inconsistent; keep going.
        self.track.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Finds a dotted path case-insensitively, records it, and returns the path as written with its value.
    fn lookup(&self, key: &str) -> Option<(String, &Value)> {
        {
            let mut t = self.tracking();
            t.asked.insert(key.to_lowercase(), key.to_owned());
            t.used.insert(key.to_lowercase());
        }
        let mut map = &self.map;
        let mut path = String::new();
        let mut parts = key.split('.').peekable();
        while let Some(part) = parts.next() {
            let (actual, value) = find_ci(map, part)?;
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(actual);
            if parts.peek().is_none() {
                return Some((path, value));
            }
            map = value.as_object()?;
        }
        None
    }

    fn actual_path(&self, key: &str) -> String {
        let mut map = &self.map;
        let mut out = Vec::new();
        for part in key.split('.') {
            match find_ci(map, part) {
                Some((actual, value)) => {
                    out.push(actual.to_owned());
                    match value.as_object() {
                        Some(m) => map = m,
                        None => break,
                    }
                }
                None => return key.to_owned(),
            }
        }
        out.join(".")
    }
}

/// Exact key first, then the first case-insensitive match (mapstructure's rule).
pub(crate) fn find_ci<'m>(map: &'m Map<String, Value>, key: &str) -> Option<(&'m str, &'m Value)> {
    if let Some((k, v)) = map.get_key_value(key) {
        return Some((k.as_str(), v));
    }
    let lower = key.to_lowercase();
    map.iter()
        .find(|(k, _)| k.to_lowercase() == lower)
        .map(|(k, v)| (k.as_str(), v))
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn collect_unknown(
    map: &Map<String, Value>,
    prefix: &str,
    used: &BTreeSet<String>,
    out: &mut Vec<String>,
) {
    for (k, v) in map {
        let path = join(prefix, k);
        let lower = path.to_lowercase();
        if used.contains(&lower) {
            continue;
        }
        let child_prefix = format!("{lower}.");
        match v {
            Value::Object(child) if used.iter().any(|u| u.starts_with(&child_prefix)) => {
                collect_unknown(child, &path, used, out)
            }
            _ => out.push(path),
        }
    }
}

fn collect_case_duplicates(map: &Map<String, Value>, prefix: &str, out: &mut Vec<String>) {
    let mut groups: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (k, v) in map {
        groups.entry(k.to_lowercase()).or_default().push(k);
        if let Value::Object(child) = v {
            collect_case_duplicates(child, &join(prefix, k), out);
        }
    }
    for keys in groups.values().filter(|keys| keys.len() > 1) {
        let listed: Vec<String> = keys
            .iter()
            .map(|k| format!("`{}`", join(prefix, k)))
            .collect();
        out.push(format!(
            "options {} differ only in case; keys match case-insensitively, so only one of them is used",
            listed.join(", ")
        ));
    }
}

fn strip_secrets(
    map: &Map<String, Value>,
    prefix: &str,
    t: &Tracking,
    whole_subtree_read: bool,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in map {
        let path = join(prefix, k);
        let lower_path = path.to_lowercase();
        let lower_key = k.to_lowercase();
        if lower_key.contains("password")
            || lower_key.contains("secret")
            || t.secret.contains(&lower_path)
        {
            continue;
        }
        let read = whole_subtree_read || t.used.contains(&lower_path);
        match v {
            Value::Object(child) => {
                let child_prefix = format!("{lower_path}.");
                if read || t.used.iter().any(|u| u.starts_with(&child_prefix)) {
                    out.insert(
                        k.clone(),
                        Value::Object(strip_secrets(child, &path, t, read)),
                    );
                }
            }
            _ if read => {
                out.insert(k.clone(), strip_value(v, &path, t));
            }
            _ => {}
        }
    }
    out
}

fn strip_value(v: &Value, path: &str, t: &Tracking) -> Value {
    match v {
        Value::Object(m) => Value::Object(strip_secrets(m, path, t, true)),
        Value::Array(items) => {
            Value::Array(items.iter().map(|i| strip_value(i, path, t)).collect())
        }
        other => other.clone(),
    }
}

fn suggest(unknown: &str, asked: &[String]) -> Option<String> {
    let u = unknown.to_lowercase();
    asked
        .iter()
        .map(|a| (levenshtein(&u, &a.to_lowercase()), a))
        .filter(|(d, a)| *d > 0 && *d <= 2.max(a.len() / 5))
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a.clone())
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

fn wrong_type(path: &str, expected: &str, found: &Value) -> ProviderError {
    ProviderError::misconfigured(format!(
        "option `{path}` must be {expected}, found {}",
        kind(found)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    fn opts(v: Value) -> ProviderOptions {
        ProviderOptions::from_value(v).unwrap()
    }

    #[test]
    fn getters_are_case_insensitive_and_exact_wins() {
        let o = opts(
            json!({"clientid": "a", "CLIENTSECRET": "s", "Endpoint": {"AuthUrl": "https://h/x"},
                            "scopes": ["user", "read:org"], "insecureSkipVerify": "TRUE"}),
        );
        assert_eq!(o.get_str("clientID").unwrap().as_deref(), Some("a"));
        assert_eq!(o.get_secret("clientSecret").unwrap().unwrap().expose(), "s");
        assert_eq!(
            o.get_url("endpoint.authURL").unwrap().unwrap().as_str(),
            "https://h/x"
        );
        assert_eq!(
            o.get_str_list("scopes").unwrap().unwrap(),
            vec!["user", "read:org"]
        );
        assert_eq!(o.get_bool("insecureSkipVerify").unwrap(), Some(true));
        assert!(o.unknown_keys().is_empty(), "{:?}", o.unknown_keys());

        let both = opts(json!({"clientID": "exact", "clientid": "other"}));
        assert_eq!(both.require_str("clientID").unwrap(), "exact");
        assert!(
            both.warnings()
                .iter()
                .any(|w| w.contains("differ only in case"))
        );
    }

    #[test]
    fn errors_name_the_key() {
        let o = opts(
            json!({"scopes": 3, "endpoint": {"tokenURL": "not a url", "authURL": "ftp://x/"}}),
        );
        let e = o.get_str_list("scopes").unwrap_err();
        assert!(
            e.is_misconfigured() && e.to_string().contains("`scopes`"),
            "{e}"
        );
        let e = o.get_url("endpoint.tokenURL").unwrap_err();
        assert!(e.to_string().contains("`endpoint.tokenURL`"), "{e}");
        assert!(o.get_url("endpoint.authURL").is_err());
        let e = o.require_str("clientID").unwrap_err();
        assert!(
            e.to_string().contains("missing required option `clientID`"),
            "{e}"
        );
        assert_eq!(
            opts(json!({"s": "a, b c"}))
                .get_str_list("s")
                .unwrap()
                .unwrap(),
            vec!["a", "b", "c"]
        );
        assert_eq!(
            opts(json!({"n": 12345})).get_str("n").unwrap().as_deref(),
            Some("12345")
        );
        assert!(ProviderOptions::from_value(json!([1])).is_err());
    }

    #[test]
    fn unknown_keys_and_suggestions() {
        let o = opts(
            json!({"clientID": "a", "clientSecert": "s", "endpoint": {"authURL": "https://x/", "tokenUrl2": 1},
                            "extra": {"a": 1}}),
        );
        o.get_str("clientID").unwrap();
        o.get_secret("clientSecret").unwrap();
        o.get_str("endpoint.authURL").unwrap();
        o.get_str("endpoint.tokenURL").unwrap();
        assert_eq!(
            o.unknown_keys(),
            vec!["clientSecert", "endpoint.tokenUrl2", "extra"]
        );
        let w = o.warnings();
        assert!(w[0].contains("did you mean `clientSecret`"), "{w:?}");
        assert!(w[1].contains("did you mean `endpoint.tokenURL`"), "{w:?}");
        assert_eq!(w[2], "unknown option `extra` is ignored");
        // A misspelt secret is still not published: its name contains "secret".
        assert!(!o.public_map().contains_key("clientSecert"));
    }

    #[test]
    fn public_map_strips_secrets_everywhere() {
        let o = opts(
            json!({"clientID": "a", "clientSecret": "s", "token": "t", "bindPassword": "p", "unread": 1,
                            "nested": {"PASSWORD": "p", "keep": 1, "list": [{"apiSecret": 1, "ok": 2}]},
                            "endpoint": {"authURL": "u", "other": 2}}),
        );
        for key in [
            "clientID",
            "clientSecret",
            "token",
            "bindPassword",
            "endpoint.authURL",
        ] {
            o.get_value(key);
        }
        o.mark_secret("token");
        o.get_value("nested");
        let p = o.public_map();
        let expected = json!({"clientID": "a", "nested": {"keep": 1, "list": [{"ok": 2}]}, "endpoint": {"authURL": "u"}});
        assert_eq!(Value::Object(p), expected);
    }

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Endpoint {
        #[serde(rename = "authURL")]
        auth_url: String,
        #[serde(rename = "tokenURL", default)]
        token_url: Option<String>,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Typed {
        #[serde(rename = "clientID")]
        client_id: String,
        #[serde(default)]
        scopes: Vec<String>,
        endpoint: Endpoint,
        #[serde(default)]
        read_timeout: Option<u32>,
    }

    #[test]
    fn deserialize_matches_case_insensitively() {
        let o = opts(
            json!({"CLIENTID": "a", "Scopes": ["x"], "ENDPOINT": {"authurl": "https://a/"},
                            "readTimeout": 15000, "bogus": true}),
        );
        let t: Typed = o.deserialize().unwrap();
        assert_eq!(t.client_id, "a");
        assert_eq!(t.scopes, vec!["x"]);
        assert_eq!(
            t.endpoint,
            Endpoint {
                auth_url: "https://a/".into(),
                token_url: None
            }
        );
        assert_eq!(t.read_timeout, Some(15000));
        assert_eq!(o.unknown_keys(), vec!["bogus"]);

        let bad = opts(json!({"clientID": "a", "endpoint": {"authURL": 5}}));
        let e = bad.deserialize::<Typed>().unwrap_err();
        assert!(
            e.is_misconfigured() && e.to_string().contains("`endpoint.authURL`"),
            "{e}"
        );
        let missing = opts(json!({"endpoint": {"authURL": "x"}}));
        let e = missing.deserialize::<Typed>().unwrap_err();
        assert!(e.to_string().contains("missing field `clientID`"), "{e}");
    }
}

//! A serde `Deserializer` over a JSON value that matches struct field names case-insensitively, as KubeSphere's
//! `mapstructure` does, and records which keys were read. Used by [`ProviderOptions::deserialize`].
//!
//! [`ProviderOptions::deserialize`]: crate::ProviderOptions::deserialize

use std::collections::BTreeSet;
use std::sync::Mutex;

use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{self, Deserializer, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;
use serde_json::{Map, Value};

use crate::options::kind;

type Error = serde_json::Error;

/// Marker that an error message already names its key, so outer levels do not prefix it again.
const NAMED: &str = "option `";

pub(crate) struct CiDe<'t> {
    value: Value,
    path: String,
    track: &'t Mutex<crate::options::Tracking>,
}

impl<'t> CiDe<'t> {
    pub(crate) fn new(value: Value, track: &'t Mutex<crate::options::Tracking>) -> Self {
        CiDe {
            value,
            path: String::new(),
            track,
        }
    }

    fn child(&self, value: Value, key: &str) -> CiDe<'t> {
        let path = if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        };
        CiDe {
            value,
            path,
            track: self.track,
        }
    }

    fn record(&self, path: &str, asked: Option<&str>) {
        let mut t = self.track.lock().unwrap_or_else(|e| e.into_inner());
        t.used.insert(path.to_lowercase());
        if let Some(asked) = asked {
            t.asked.insert(asked.to_lowercase(), asked.to_owned());
        }
    }

    /// Prefixes a leaf error with the key path once.
    fn name(&self, e: Error) -> Error {
        let msg = e.to_string();
        if self.path.is_empty() || msg.starts_with(NAMED) {
            e
        } else {
            de::Error::custom(format!("{NAMED}{}`: {msg}", self.path))
        }
    }
}

impl<'de> IntoDeserializer<'de, Error> for CiDe<'_> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> Deserializer<'de> for CiDe<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Object(ref map) => {
                // Read as a whole map (a `HashMap`, a `Value`): the whole subtree counts as read.
                self.record(&self.path, None);
                let entries: Vec<(String, CiDe<'_>)> = map
                    .iter()
                    .map(|(k, v)| (k.clone(), self.child(v.clone(), k)))
                    .collect();
                let mut de = MapDeserializer::new(entries.into_iter());
                let out = visitor.visit_map(&mut de).map_err(|e| self.name(e))?;
                de.end()?;
                Ok(out)
            }
            Value::Array(ref items) => {
                let elems: Vec<CiDe<'_>> = items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.child(v.clone(), &i.to_string()))
                    .collect();
                let mut de = SeqDeserializer::new(elems.into_iter());
                let out = visitor.visit_seq(&mut de).map_err(|e| self.name(e))?;
                de.end()?;
                Ok(out)
            }
            ref other => {
                let r = other.clone().deserialize_any(visitor);
                r.map_err(|e| self.name(e))
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.value.is_null() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let r = self.value.clone().deserialize_enum(name, variants, visitor);
        r.map_err(|e| self.name(e))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let Value::Object(ref map) = self.value else {
            let msg = format!("expected a map, found {}", kind(&self.value));
            return Err(self.name(de::Error::custom(msg)));
        };
        let entries = self.rename(map, fields);
        let mut de = MapDeserializer::new(entries.into_iter());
        let out = visitor.visit_map(&mut de).map_err(|e| self.name(e))?;
        de.end()?;
        Ok(out)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

impl<'t> CiDe<'t> {
    /// Renames keys to the struct's field names: an exact match wins, then a case-insensitive one; a field is
    /// claimed once, so `clientID` and `clientid` side by side do not become a duplicate field.
    fn rename(&self, map: &Map<String, Value>, fields: &[&'static str]) -> Vec<(String, CiDe<'t>)> {
        for f in fields {
            let asked = if self.path.is_empty() {
                (*f).to_owned()
            } else {
                format!("{}.{f}", self.path)
            };
            let mut t = self.track.lock().unwrap_or_else(|e| e.into_inner());
            t.asked.insert(asked.to_lowercase(), asked);
        }
        let mut claimed: BTreeSet<&str> = fields
            .iter()
            .copied()
            .filter(|f| map.contains_key(*f))
            .collect();
        let mut out = Vec::with_capacity(map.len());
        for (k, v) in map {
            let field = if fields.contains(&k.as_str()) {
                Some(k.as_str())
            } else {
                let lower = k.to_lowercase();
                let found = fields
                    .iter()
                    .copied()
                    .find(|f| !claimed.contains(f) && f.to_lowercase() == lower);
                if let Some(f) = found {
                    claimed.insert(f);
                }
                found
            };
            match field {
                Some(f) => {
                    let child = self.child(v.clone(), k);
                    self.record(&child.path, None);
                    out.push((f.to_owned(), child));
                }
                None => out.push((k.clone(), self.child(v.clone(), k))),
            }
        }
        out
    }
}

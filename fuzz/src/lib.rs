//! Shared pieces of Portcullis' fuzz targets: structured JSON input that [`arbitrary`] can build from the
//! fuzzer's bytes, biased towards the claim names the parsers look for, so the fuzzer reaches the code behind
//! the JSON parser instead of spending its time on syntax.

use arbitrary::{Arbitrary, Result, Unstructured};
use serde_json::{Map, Number, Value};

/// Claim and field names the targets' parsers read (JWT claims, OIDC, GitHub, IDaaS, generic mapping).
pub const KEYS: &[&str] = &[
    "username",
    "sub",
    "token_type",
    "iss",
    "iat",
    "exp",
    "nbf",
    "extra",
    "groups",
    "sid",
    "jti",
    "uid",
    "gen",
    "aud",
    "azp",
    "nonce",
    "email",
    "email_verified",
    "preferred_username",
    "name",
    "id",
    "login",
    "success",
    "data",
    "code",
    "message",
    "nickname",
    "alg",
    "typ",
];

/// String values worth trying: token types, algorithms, numbers as strings, empties.
const STRINGS: &[&str] = &[
    "access_token",
    "refresh_token",
    "static_token",
    "code",
    "id_token",
    "HS256",
    "none",
    "RS256",
    "true",
    "false",
    "",
    " ",
    "12345",
    "alice",
    "system:masters",
    "/sub",
    "client",
];

/// A JSON value built from fuzzer bytes (depth-limited).
#[derive(Debug, Clone)]
pub struct ArbJson(pub Value);

impl<'a> Arbitrary<'a> for ArbJson {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(ArbJson(value(u, 4)?))
    }
}

/// A JSON object with keys mostly from [`KEYS`] (depth-limited).
#[derive(Debug, Clone)]
pub struct ArbObject(pub Map<String, Value>);

impl<'a> Arbitrary<'a> for ArbObject {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(ArbObject(object(u, 4)?))
    }
}

fn key(u: &mut Unstructured<'_>) -> Result<String> {
    if u.ratio(7, 8)? {
        Ok((*u.choose(KEYS)?).to_owned())
    } else {
        String::arbitrary(u)
    }
}

fn object(u: &mut Unstructured<'_>, depth: u32) -> Result<Map<String, Value>> {
    let mut map = Map::new();
    let n = u.int_in_range(0..=12)?;
    for _ in 0..n {
        map.insert(key(u)?, value(u, depth.saturating_sub(1))?);
    }
    Ok(map)
}

fn number(u: &mut Unstructured<'_>) -> Result<Value> {
    Ok(match u.int_in_range(0..=3)? {
        0 => Value::from(i64::arbitrary(u)?),
        1 => Value::from(u64::arbitrary(u)?),
        2 => Number::from_f64(f64::arbitrary(u)?).map_or(Value::Null, Value::Number),
        // Plausible Unix times, around now.
        _ => Value::from(1_700_000_000 + i64::from(i32::arbitrary(u)?)),
    })
}

fn value(u: &mut Unstructured<'_>, depth: u32) -> Result<Value> {
    let pick = u.int_in_range(0..=if depth == 0 { 4 } else { 6 })?;
    Ok(match pick {
        0 => Value::Null,
        1 => Value::Bool(bool::arbitrary(u)?),
        2 => number(u)?,
        3 => Value::String((*u.choose(STRINGS)?).to_owned()),
        4 => Value::String(String::arbitrary(u)?),
        5 => {
            let n = u.int_in_range(0..=6)?;
            Value::Array((0..n).map(|_| value(u, depth - 1)).collect::<Result<_>>()?)
        }
        _ => Value::Object(object(u, depth - 1)?),
    })
}

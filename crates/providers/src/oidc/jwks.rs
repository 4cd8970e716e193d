//! The upstream's signing keys: a JWKS fetched from `jwks_uri`, cached, and refetched when an ID token names a key
//! id (`kid`) the cache does not know (key rotation), at most once per [`MIN_REFETCH_INTERVAL`].
//!
//! Only asymmetric keys are kept (RSA, EC, OKP): `oct` keys and HS* algorithms are never accepted, so a token signed
//! with the client secret or with `alg: none` cannot pass, and the algorithm a token names must match the family of
//! the key that verifies it.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use portcullis_idp::ProviderError;
use reqwest::Client;
use serde_json::{Map, Value};
use url::Url;

use crate::http::{self, excerpt};

/// The least time between two JWKS fetches. A token with an unknown `kid` arriving sooner waits for the rest of the
/// interval (single-flight, bounded) instead of failing, so a rotation is picked up by the first login after it.
pub(crate) const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(1);

/// The asymmetric algorithms an ID token may use.
pub(crate) const ASYMMETRIC: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

struct Key {
    kid: Option<String>,
    /// The `alg` the JWK pins, if any.
    alg: Option<Algorithm>,
    key: DecodingKey,
}

#[derive(Default)]
struct KeySet {
    keys: Vec<Arc<Key>>,
    fetched: Option<Instant>,
}

/// A cached JWKS.
pub(crate) struct Jwks {
    url: Url,
    http: Client,
    cache: RwLock<KeySet>,
    /// Serialises fetches (single-flight).
    fetch: tokio::sync::Mutex<()>,
}

impl Jwks {
    pub fn new(url: Url, http: Client) -> Self {
        Jwks {
            url,
            http,
            cache: RwLock::new(KeySet::default()),
            fetch: tokio::sync::Mutex::new(()),
        }
    }

    /// The `jwks_uri`.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Verifies the signature of `token` (and nothing else) with a key of this set, refetching the set once if no
    /// key matches. `allowed` are the algorithms the token may use. Returns the claims.
    pub async fn verify(
        &self,
        token: &str,
        allowed: &[Algorithm],
    ) -> Result<Map<String, Value>, ProviderError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| {
            ProviderError::upstream(format!("the ID token is not a signed JWT ({e})"))
        })?;
        if !allowed.contains(&header.alg) {
            return Err(ProviderError::upstream(format!(
                "the ID token is signed with {:?}, which is not accepted (accepted: {allowed:?})",
                header.alg
            )));
        }
        let first = self.candidates(&header);
        let candidates = if first.is_empty() {
            self.refetch(&header).await?
        } else {
            first
        };
        if candidates.is_empty() {
            return Err(ProviderError::upstream(format!(
                "no key in the JWKS at {} matches the ID token (kid {:?}, alg {:?})",
                http::without_query(&self.url),
                header.kid.as_deref().map(|k| excerpt(k, 64)),
                header.alg
            )));
        }
        let mut validation = Validation::new(header.alg);
        // Signature only: the claims are checked by the caller with its own clock and messages.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let mut last = None;
        for key in candidates {
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) => last = Some(e),
            }
        }
        Err(ProviderError::upstream(format!(
            "the ID token signature is invalid ({})",
            last.map(|e| e.to_string()).unwrap_or_default()
        )))
    }

    /// The cached keys that may have signed a token with this header.
    fn candidates(&self, header: &Header) -> Vec<Arc<Key>> {
        let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
        cache
            .keys
            .iter()
            .filter(|k| match (&header.kid, &k.kid) {
                (Some(want), Some(have)) => want == have,
                (Some(_), None) => false,
                (None, _) => true,
            })
            .filter(|k| k.alg.is_none_or(|a| a == header.alg))
            .filter(|k| header.alg.family() == k.key.family())
            .cloned()
            .collect()
    }

    /// Fetches the set again (waiting out [`MIN_REFETCH_INTERVAL`] since the last fetch, single-flight) and returns
    /// the candidates for `header`.
    async fn refetch(&self, header: &Header) -> Result<Vec<Arc<Key>>, ProviderError> {
        let _guard = self.fetch.lock().await;
        // Another task may have fetched while this one waited for the lock.
        let fresh = self.candidates(header);
        if !fresh.is_empty() {
            return Ok(fresh);
        }
        let last = self.cache.read().unwrap_or_else(|e| e.into_inner()).fetched;
        if let Some(wait) = last.and_then(|t| MIN_REFETCH_INTERVAL.checked_sub(t.elapsed())) {
            tokio::time::sleep(wait).await;
        }
        let keys = self.fetch_keys().await?;
        {
            let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
            cache.keys = keys;
            cache.fetched = Some(Instant::now());
        }
        Ok(self.candidates(header))
    }

    async fn fetch_keys(&self) -> Result<Vec<Arc<Key>>, ProviderError> {
        let what = "OIDC JWKS endpoint";
        let request = self
            .http
            .get(self.url.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        let answer = http::send(request, what).await?;
        if !answer.status.is_success() {
            return Err(ProviderError::upstream(format!(
                "{what} ({}) answered HTTP {}: {}",
                http::without_query(&self.url),
                answer.status.as_u16(),
                answer.excerpt()
            )));
        }
        let value = answer.json(what)?;
        let Some(list) = value.get("keys").and_then(Value::as_array) else {
            return Err(ProviderError::upstream(format!(
                "{what} answered JSON without a `keys` list"
            )));
        };
        // Parse key by key: one key of an unknown type must not hide the others.
        let mut keys = Vec::new();
        for raw in list {
            let Ok(set) = serde_json::from_value::<JwkSet>(serde_json::json!({ "keys": [raw] }))
            else {
                tracing::debug!("skipping a JWKS key that cannot be parsed");
                continue;
            };
            keys.extend(set.keys.iter().filter_map(usable_key).map(Arc::new));
        }
        if keys.is_empty() {
            return Err(ProviderError::upstream(format!(
                "{what} published no usable signing key (RSA, EC or OKP)"
            )));
        }
        Ok(keys)
    }
}

/// A JWK as a verification key, or `None` for symmetric, encryption-only and unsupported keys.
fn usable_key(jwk: &Jwk) -> Option<Key> {
    if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
        return None;
    }
    if let Some(use_) = &jwk.common.public_key_use
        && *use_ != jsonwebtoken::jwk::PublicKeyUse::Signature
    {
        return None;
    }
    let alg = match jwk.common.key_algorithm {
        None => None,
        Some(a) => Some(signing_alg(a)?),
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(Key {
        kid: jwk.common.key_id.clone(),
        alg,
        key,
    })
}

fn signing_alg(a: KeyAlgorithm) -> Option<Algorithm> {
    Some(match a {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

/// The asymmetric algorithms named in a discovery document's `id_token_signing_alg_values_supported`; all of
/// [`ASYMMETRIC`] when it names none.
pub(crate) fn allowed_algorithms(advertised: &[String]) -> Vec<Algorithm> {
    let named: Vec<Algorithm> = ASYMMETRIC
        .into_iter()
        .filter(|a| {
            advertised
                .iter()
                .any(|s| s == &format!("{a:?}") || (s == "Ed25519" && *a == Algorithm::EdDSA))
        })
        .collect();
    if named.is_empty() {
        ASYMMETRIC.to_vec()
    } else {
        named
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_asymmetric_algorithms_are_allowed() {
        let a = allowed_algorithms(&["HS256".into(), "RS256".into(), "none".into()]);
        assert_eq!(a, vec![Algorithm::RS256]);
        assert_eq!(allowed_algorithms(&["HS256".into()]), ASYMMETRIC.to_vec());
        assert!(allowed_algorithms(&["Ed25519".into()]).contains(&Algorithm::EdDSA));
    }

    #[test]
    fn symmetric_jwks_keys_are_skipped() {
        let set: JwkSet = serde_json::from_value(serde_json::json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "h"},
            {"kty": "EC", "crv": "P-256", "kid": "e", "use": "sig", "alg": "ES256",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
        ]}))
        .unwrap();
        let keys: Vec<Key> = set.keys.iter().filter_map(usable_key).collect();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("e"));
        assert_eq!(keys[0].alg, Some(Algorithm::ES256));
    }
}

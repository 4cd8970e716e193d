//! ID-token signing keys: generated once per database and shared by every replica, rotated on a
//! schedule, published as a JWKS, and used to verify Portcullis' own ID tokens.
//!
//! Lifecycle, per algorithm (RS256, ES256): keys have a generation (1, 2, ...) and an activation
//! time. The signing key is the newest generation already active. A rotation is prepared `lead`
//! before it is due (a quarter of the period, at most a day): the next generation is inserted with
//! its future activation time, so every replica (they reload the key table at least every minute)
//! and every relying party's JWKS cache sees it before it signs anything. A replaced key stays
//! published and verifying for [`GRACE_MS`], then is deleted. Two replicas rotating at the same
//! moment both try to insert the same `(alg, generation)`; the database keeps one.
//!
//! KubeSphere's `signKey` / `signKeyData` (an RSA key in PEM, PKCS#1 or PKCS#8) replaces the
//! generated RS256 keys: it signs every RS256 ID token, is never rotated, and has KubeSphere's
//! `kid` (decimal FNV-32a of the PEM text) so relying parties that pinned it keep working.
//!
//! The same table holds the key of unstored client-credentials tokens (one row, algorithm
//! `client_tokens::MAC_ALG`, never published): generated with the first keys, replaced only
//! when it no longer opens.

use std::sync::Arc;

use arc_swap::ArcSwap;
use portcullis_config::{Config, IdTokenAlg};
use portcullis_store::{SigningKey, Store};
use serde_json::Value;

use super::client_tokens::{self, ClientTokenKey};
use super::jws::{self, Signer, Verifier};
use super::seal::SealKey;
use crate::error::CoreError;

/// How long a replaced key stays published and verifying.
pub const GRACE_MS: i64 = 7 * 24 * 3600 * 1000;
/// The longest a replica serves its in-memory view of the key table without reloading it.
const RELOAD_MS: i64 = 60_000;
/// Pre-publication of a rotation that is already overdue (the server was down): two reloads.
const CATCH_UP_LEAD_MS: i64 = 2 * RELOAD_MS;
const ALGS: [IdTokenAlg; 2] = [IdTokenAlg::Rs256, IdTokenAlg::Es256];

/// One published key.
pub(crate) struct LoadedKey {
    pub(crate) kid: String,
    pub(crate) alg: IdTokenAlg,
    generation: i64,
    activates_at: i64,
    signer: Option<Arc<Signer>>,
    pub(crate) verifier: Verifier,
    jwk: Value,
}

/// The keys in force, as one replica sees them.
pub(crate) struct Ring {
    pub(crate) keys: Vec<LoadedKey>,
    /// The key of unstored client-credentials tokens ([`client_tokens`]).
    pub(crate) client_tokens: Option<Arc<ClientTokenKey>>,
    next_check: i64,
}

impl Ring {
    /// The signing key for `alg` at `now`: the newest active generation that can sign.
    pub(crate) fn signer(&self, alg: IdTokenAlg, now: i64) -> Option<(&str, &Arc<Signer>)> {
        self.keys
            .iter()
            .filter(|k| k.alg == alg && k.activates_at <= now)
            .filter_map(|k| k.signer.as_ref().map(|s| (k, s)))
            .max_by_key(|(k, _)| k.generation)
            .map(|(k, s)| (k.kid.as_str(), s))
    }

    /// The key with this `kid`.
    pub(crate) fn get(&self, kid: &str) -> Option<&LoadedKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// The JWKS document.
    pub(crate) fn jwks(&self) -> Value {
        let keys: Vec<Value> = self.keys.iter().map(|k| k.jwk.clone()).collect();
        serde_json::json!({ "keys": keys })
    }
}

/// Settings of the key manager that come from the configuration.
struct KeyConfig {
    rotation_ms: i64,
    seal: SealKey,
    configured: Option<Arc<(String, Arc<Signer>)>>,
}

/// Loads, generates and rotates the signing keys.
pub(crate) struct KeyManager {
    config: ArcSwap<KeyConfig>,
    ring: ArcSwap<Ring>,
    reload: tokio::sync::Mutex<()>,
}

fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn key_config(config: &Config) -> Result<KeyConfig, CoreError> {
    Ok(KeyConfig {
        rotation_ms: ms(config.portcullis.signing_key_rotation_period),
        seal: SealKey::derive(config.authentication.jwt_secret.expose().as_bytes()),
        configured: super::sign_key::load(config)?.map(Arc::new),
    })
}

fn parse_alg(s: &str) -> Option<IdTokenAlg> {
    ALGS.into_iter().find(|a| a.as_str() == s)
}

impl KeyManager {
    /// A manager for this configuration; keys are loaded on first use.
    pub(crate) fn new(config: &Config) -> Result<KeyManager, CoreError> {
        Ok(KeyManager {
            config: ArcSwap::from_pointee(key_config(config)?),
            ring: ArcSwap::from_pointee(Ring {
                keys: Vec::new(),
                client_tokens: None,
                next_check: i64::MIN,
            }),
            reload: tokio::sync::Mutex::new(()),
        })
    }

    /// Takes a new configuration (live reload); the key table is re-read on next use.
    pub(crate) fn apply_config(&self, config: &Config) -> Result<(), CoreError> {
        self.config.store(Arc::new(key_config(config)?));
        self.ring.store(Arc::new(Ring {
            keys: Vec::new(),
            client_tokens: None,
            next_check: i64::MIN,
        }));
        Ok(())
    }

    /// The keys at `now`, reloading (and generating or rotating) first when due.
    pub(crate) async fn ring(&self, store: &dyn Store, now: i64) -> Result<Arc<Ring>, CoreError> {
        let ring = self.ring.load_full();
        if now < ring.next_check {
            return Ok(ring);
        }
        self.reload(store, now, false).await
    }

    /// The key of unstored client-credentials tokens: the one in memory, loaded from the key
    /// table on first use (or after a configuration change). Verification must not wait for a
    /// due reload or fail with the database: the key only changes with `jwtSecret`, and
    /// [`KeyManager::apply_config`] clears it then.
    pub(crate) async fn client_token_key(
        &self,
        store: &dyn Store,
        now: i64,
    ) -> Result<Arc<ClientTokenKey>, CoreError> {
        if let Some(key) = &self.ring.load().client_tokens {
            return Ok(key.clone());
        }
        // Not forced: when many requests wait here at the first use, one reload serves all.
        self.reload(store, now, false)
            .await?
            .client_tokens
            .clone()
            .ok_or_else(|| {
                CoreError::Internal("the key of client-credentials tokens is missing".into())
            })
    }

    /// Reloads the key table now (also when `force`d before it is due: an unknown `kid`).
    pub(crate) async fn reload(
        &self,
        store: &dyn Store,
        now: i64,
        force: bool,
    ) -> Result<Arc<Ring>, CoreError> {
        let _guard = self.reload.lock().await;
        let current = self.ring.load_full();
        // Another task may have reloaded while this one waited.
        if now < current.next_check && !force {
            return Ok(current);
        }
        let config = self.config.load_full();
        let mut rows = store.list_signing_keys().await?;
        // Re-read the table after any attempt, won or lost: a replica that lost the race to
        // another one must serve the winner's key, not the empty view it started from.
        let mut attempted = false;
        for alg in ALGS {
            if alg == IdTokenAlg::Rs256 && config.configured.is_some() {
                continue;
            }
            if let Some(activates_at) =
                due_generation(&rows, alg, now, config.rotation_ms, &config.seal)
            {
                generate(store, &rows, alg, now, activates_at, &config.seal).await?;
                attempted = true;
            }
        }
        if client_tokens::load(&rows, &config.seal).is_none() {
            let row = client_tokens::new_row(&rows, now, &config.seal);
            if store.insert_signing_key(&row).await? {
                tracing::info!(kid = %row.kid, generation = row.generation, "generated the key of client-credentials tokens");
            }
            attempted = true;
        }
        if attempted {
            rows = store.list_signing_keys().await?;
        }
        let mut stale = expired(&rows, now);
        stale.extend(client_tokens::expired(&rows, now, &config.seal));
        for kid in &stale {
            store.delete_signing_key(kid).await?;
        }
        rows.retain(|r| !stale.contains(&r.kid));
        let ring = Arc::new(build_ring(&rows, now, &config));
        self.ring.store(ring.clone());
        Ok(ring)
    }
}

/// Whether `alg` needs a new generation at `now`, and when it should activate.
fn due_generation(
    rows: &[SigningKey],
    alg: IdTokenAlg,
    now: i64,
    rotation_ms: i64,
    seal: &SealKey,
) -> Option<i64> {
    let Some(newest) = rows
        .iter()
        .filter(|k| k.alg == alg.as_str())
        .max_by_key(|k| k.generation)
    else {
        // The first key of this database.
        return Some(now);
    };
    let usable = |k: &SigningKey| seal.open(&k.kid, &k.private_key).is_some();
    if newest.activates_at > now {
        // The next key is already published and waiting.
        return None;
    }
    if !usable(newest) {
        tracing::warn!(alg = alg.as_str(), kid = %newest.kid, "the current ID-token signing key cannot be opened (jwtSecret changed?); generating a new one");
        return Some(now);
    }
    if rotation_ms <= 0 {
        return None;
    }
    let due = newest.activates_at.saturating_add(rotation_ms);
    let lead = (rotation_ms / 4).min(24 * 3600 * 1000);
    (now >= due - lead).then(|| due.max(now + CATCH_UP_LEAD_MS.min(lead)))
}

/// Generates and inserts the next generation of `alg`; false when another replica won the race.
/// Either way the caller re-reads the table.
async fn generate(
    store: &dyn Store,
    rows: &[SigningKey],
    alg: IdTokenAlg,
    now: i64,
    activates_at: i64,
    seal: &SealKey,
) -> Result<bool, CoreError> {
    let generation = rows
        .iter()
        .filter(|k| k.alg == alg.as_str())
        .map(|k| k.generation)
        .max()
        .unwrap_or(0)
        + 1;
    let (signer, der) = tokio::task::spawn_blocking(move || jws::generate(alg))
        .await
        .map_err(|e| CoreError::Internal(format!("key generation task failed: {e}")))?
        .map_err(CoreError::Internal)?;
    let kid = format!("{}-{}", alg.as_str().to_lowercase(), crate::random_id());
    let (_, mut jwk) = signer.public();
    jwk["kid"] = kid.clone().into();
    jwk["alg"] = alg.as_str().into();
    jwk["use"] = "sig".into();
    let row = SigningKey {
        private_key: seal.seal(&kid, &der),
        kid,
        alg: alg.as_str().to_owned(),
        generation,
        public_jwk: jwk.to_string(),
        created_at: now,
        activates_at,
    };
    let inserted = store.insert_signing_key(&row).await?;
    if inserted {
        tracing::info!(alg = alg.as_str(), kid = %row.kid, generation, activates_at = row.activates_at, "generated an ID-token signing key");
    }
    Ok(inserted)
}

/// When each key stops signing: the activation of the next generation of its algorithm.
fn retires_at(rows: &[SigningKey], k: &SigningKey) -> Option<i64> {
    rows.iter()
        .filter(|o| o.alg == k.alg && o.generation > k.generation)
        .map(|o| o.activates_at)
        .min()
}

/// Keys replaced more than [`GRACE_MS`] ago.
fn expired(rows: &[SigningKey], now: i64) -> Vec<String> {
    rows.iter()
        .filter(|k| k.alg != client_tokens::MAC_ALG)
        .filter(|k| retires_at(rows, k).is_some_and(|r| r.saturating_add(GRACE_MS) <= now))
        .map(|k| k.kid.clone())
        .collect()
}

fn build_ring(rows: &[SigningKey], now: i64, config: &KeyConfig) -> Ring {
    let mut keys = Vec::new();
    let mut next_check = now + RELOAD_MS;
    if let Some(c) = &config.configured {
        let (kid, signer) = (&c.0, &c.1);
        let (verifier, mut jwk) = signer.public();
        jwk["kid"] = kid.clone().into();
        jwk["alg"] = "RS256".into();
        jwk["use"] = "sig".into();
        keys.push(LoadedKey {
            kid: kid.clone(),
            alg: IdTokenAlg::Rs256,
            generation: i64::MAX,
            activates_at: i64::MIN,
            signer: Some(signer.clone()),
            verifier,
            jwk,
        });
    }
    for row in rows {
        let Some(alg) = parse_alg(&row.alg) else {
            continue;
        };
        if alg == IdTokenAlg::Rs256 && config.configured.is_some() {
            continue;
        }
        let retire = retires_at(rows, row);
        if retire.is_some_and(|r| r.saturating_add(GRACE_MS) <= now) {
            continue;
        }
        let Some(jwk) = serde_json::from_str::<Value>(&row.public_jwk).ok() else {
            tracing::error!(kid = %row.kid, "stored public key is unreadable; skipped");
            continue;
        };
        let Some(verifier) = Verifier::from_jwk(&jwk).filter(|v| v.alg == alg) else {
            tracing::error!(kid = %row.kid, "stored public key is unusable; skipped");
            continue;
        };
        let signer = config
            .seal
            .open(&row.kid, &row.private_key)
            .and_then(|der| Signer::from_pkcs8(alg, &der).ok())
            .map(Arc::new);
        // Wake up for the next activation, the next rotation and the next expiry.
        for t in [
            Some(row.activates_at),
            retire.map(|r| r.saturating_add(GRACE_MS)),
            (config.rotation_ms > 0).then(|| {
                row.activates_at + config.rotation_ms
                    - (config.rotation_ms / 4).min(24 * 3600 * 1000)
            }),
        ]
        .into_iter()
        .flatten()
        {
            if t > now {
                next_check = next_check.min(t);
            }
        }
        keys.push(LoadedKey {
            kid: row.kid.clone(),
            alg,
            generation: row.generation,
            activates_at: row.activates_at,
            signer,
            verifier,
            jwk,
        });
    }
    Ring {
        keys,
        client_tokens: client_tokens::load(rows, &config.seal).map(Arc::new),
        next_check,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(alg: &str, generation: i64, activates_at: i64, seal: &SealKey) -> SigningKey {
        let kid = format!("{alg}-{generation}");
        SigningKey {
            private_key: seal.seal(&kid, b"k"),
            kid,
            alg: alg.into(),
            generation,
            public_jwk: "{}".into(),
            created_at: 0,
            activates_at,
        }
    }

    #[test]
    fn rotation_schedule() {
        let seal = SealKey::derive(b"s");
        let day = 24 * 3600 * 1000;
        let period = 90 * day;
        let rows = vec![row("RS256", 1, 0, &seal)];
        assert_eq!(
            due_generation(&[], IdTokenAlg::Rs256, 5, period, &seal),
            Some(5)
        );
        assert_eq!(
            due_generation(&rows, IdTokenAlg::Rs256, day, period, &seal),
            None
        );
        // One day ahead of the due date, the next key is prepared to activate on the date.
        assert_eq!(
            due_generation(&rows, IdTokenAlg::Rs256, 89 * day, period, &seal),
            Some(90 * day)
        );
        // Overdue: activates after the catch-up lead.
        assert_eq!(
            due_generation(&rows, IdTokenAlg::Rs256, 200 * day, period, &seal),
            Some(200 * day + CATCH_UP_LEAD_MS)
        );
        assert_eq!(
            due_generation(&rows, IdTokenAlg::Rs256, 200 * day, 0, &seal),
            None
        );
        // A key that does not open (another jwtSecret) is replaced at once.
        let other = SealKey::derive(b"other");
        assert_eq!(
            due_generation(&rows, IdTokenAlg::Rs256, day, period, &other),
            Some(day)
        );
        // A waiting next generation stops further generation.
        let both = vec![row("RS256", 1, 0, &seal), row("RS256", 2, 90 * day, &seal)];
        assert_eq!(
            due_generation(&both, IdTokenAlg::Rs256, 89 * day, period, &seal),
            None
        );
        assert_eq!(
            expired(&both, 90 * day + GRACE_MS - 1),
            Vec::<String>::new()
        );
        assert_eq!(
            expired(&both, 90 * day + GRACE_MS),
            vec!["RS256-1".to_string()]
        );
    }

    fn kids(ring: &Ring) -> Vec<(&'static str, String)> {
        let mut k: Vec<_> = ring
            .keys
            .iter()
            .map(|k| (k.alg.as_str(), k.kid.clone()))
            .collect();
        k.sort();
        k
    }

    /// Two replicas starting together on one database both see an empty key table and race to
    /// insert the first keys; the one that loses every race must still serve the winner's keys.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replicas_racing_for_the_first_keys_serve_the_same_ones() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/k.db", dir.path().display());
        let store = portcullis_store::open(&url).await.unwrap();
        let yaml = "authentication:\n  jwtSecret: s3cret\n";
        let config =
            portcullis_config::load_str(yaml, None, &portcullis_config::LoadOptions::default())
                .unwrap();
        let now = 1_800_000_000_000;
        for round in 0..3 {
            let (a, b) = (
                KeyManager::new(&config).unwrap(),
                KeyManager::new(&config).unwrap(),
            );
            let (ra, rb) = tokio::join!(
                a.reload(store.as_ref(), now, true),
                b.reload(store.as_ref(), now, true)
            );
            let (ra, rb) = (ra.unwrap(), rb.unwrap());
            assert_eq!(kids(&ra), kids(&rb), "round {round}");
            let algs: Vec<_> = kids(&ra).into_iter().map(|(alg, _)| alg).collect();
            assert_eq!(algs, ["ES256", "RS256"], "round {round}");
            let macs = store.list_signing_keys().await.unwrap();
            let macs = macs.iter().filter(|k| k.alg == client_tokens::MAC_ALG);
            assert_eq!(macs.count(), 1, "round {round}");
            // One client-token key too: what one replica tags, the other accepts.
            let mut claims = crate::tokens::Claims {
                username: "client:c".into(),
                sub: "client:c".into(),
                token_type: crate::tokens::TokenType::AccessToken,
                iss: String::new(),
                iat: 1,
                exp: Some(2),
                extra: Default::default(),
                groups: Vec::new(),
                sid: String::new(),
                jti: "j".into(),
                uid: String::new(),
                r#gen: None,
                scope: String::new(),
            };
            client_tokens::seal_sid(ra.client_tokens.as_ref().unwrap(), &mut claims);
            assert!(
                client_tokens::verify(rb.client_tokens.as_ref().unwrap(), &claims),
                "round {round}"
            );
            for kid in store.list_signing_keys().await.unwrap() {
                store.delete_signing_key(&kid.kid).await.unwrap();
            }
        }
    }
}

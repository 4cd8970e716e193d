//! Entropy of the random identifiers (ASVS 4.0.3 3.2.2): [`random_id`], which names sessions,
//! `jti`s, login states, nonces, CSRF tokens and pending registrations, and the authorization
//! codes of the OpenID Connect provider, taken from the real authorization endpoint.
//!
//! What a test can check about a CSPRNG's output: the length (the entropy cannot exceed it), that
//! many samples never collide, and that no bit position is stuck or biased. The balance window is
//! computed, not guessed: by Hoeffding's inequality a fair bit set in `k` of `n` samples has
//! `P(|k/n - 1/2| >= eps) <= 2 exp(-2 n eps^2)`, so with a union bound over the `B` bit positions
//! the whole check fails for a correct generator with probability at most
//! `2 B exp(-2 n eps^2)`. [`balance_window`] solves that for a false-failure probability of 1e-9.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_config::LoadOptions;

use super::*;
use crate::oidc::Decision;
use crate::{ManualClock, NewUser, PasswordLogin, TokenType};

/// The probability that [`assert_bits_balanced`] fails for a correct CSPRNG, at most.
const FALSE_FAILURE: f64 = 1e-9;

/// The half-width `eps` of the window `[1/2 - eps, 1/2 + eps]` in which the share of samples with
/// a given bit set must fall, for `samples` samples of `bits` bits: the smallest `eps` with
/// `2 * bits * exp(-2 * samples * eps^2) <= FALSE_FAILURE` (Hoeffding plus a union bound).
fn balance_window(samples: usize, bits: usize) -> f64 {
    ((2.0 * bits as f64 / FALSE_FAILURE).ln() / (2.0 * samples as f64)).sqrt()
}

/// Every bit position of `samples` (each `bytes` long) is set in a share of them inside the
/// window of [`balance_window`]; a stuck, biased or constant bit (a counter, a timestamp, a
/// truncated or zero-padded value) falls outside it.
fn assert_bits_balanced(samples: &[Vec<u8>], bytes: usize) {
    let n = samples.len();
    let bits = bytes * 8;
    let eps = balance_window(n, bits);
    // The brief's bound is 45-55 %: the computed window must be at least that strict. For 20 000
    // samples of 128 bits eps is about 0.0256 (47.4-52.6 %); the 45-55 % window itself would
    // fail a correct generator with probability 2 * 128 * exp(-100), about 1e-41.
    assert!(eps <= 0.05, "{n} samples are too few for a 45-55 % window");
    let mut set = vec![0usize; bits];
    for s in samples {
        assert_eq!(s.len(), bytes);
        for (i, count) in set.iter_mut().enumerate() {
            *count += usize::from((s[i / 8] >> (i % 8)) & 1);
        }
    }
    for (i, count) in set.iter().enumerate() {
        let share = *count as f64 / n as f64;
        assert!(
            (share - 0.5).abs() < eps,
            "bit {i} is set in {count} of {n} samples ({:.2} %), outside 50 ± {:.2} %",
            share * 100.0,
            eps * 100.0
        );
    }
}

/// Decodes an id as the unpadded URL-safe base64 it must be.
fn decoded(id: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(id)
        .unwrap_or_else(|e| panic!("{id:?} is not unpadded URL-safe base64: {e}"))
}

#[test]
fn balance_window_is_the_hoeffding_bound() {
    let eps = balance_window(20_000, 128);
    let false_failure = 2.0 * 128.0 * (-2.0 * 20_000.0 * eps * eps).exp();
    assert!(
        (false_failure - FALSE_FAILURE).abs() < 1e-12,
        "{false_failure}"
    );
    assert!(eps > 0.025 && eps < 0.026, "{eps}");
}

/// ASVS 3.2.2: 128 random bits, no collision in 100 000 ids, every bit balanced.
#[test]
fn random_ids_have_128_bits_and_are_unique_and_balanced() {
    const IDS: usize = 100_000;
    const BALANCE_SAMPLES: usize = 20_000;
    let ids: Vec<String> = (0..IDS).map(|_| random_id()).collect();
    let distinct: HashSet<&str> = ids.iter().map(String::as_str).collect();
    assert_eq!(distinct.len(), IDS, "random_id repeated itself");
    let bytes: Vec<Vec<u8>> = ids.iter().map(|id| decoded(id)).collect();
    for (id, b) in ids.iter().zip(&bytes) {
        assert_eq!(b.len(), 16, "{id:?} does not carry 128 bits");
        assert_eq!(id.len(), 22, "{id:?}");
    }
    assert_bits_balanced(&bytes[..BALANCE_SAMPLES], 16);
}

const T0: i64 = 1_800_000_000_000;
const REDIRECT: &str = "http://127.0.0.1:5555/cb";
const YAML: &str = "authentication:\n  jwtSecret: s3cret\n  multipleLogin: true\n  oauthOptions:\n    clients:\n    - name: app\n      secret: app-secret\n      redirectURIs: [\"http://127.0.0.1:5555/cb\"]\n      trusted: false\n";

/// ASVS 3.2.2 for the OpenID Connect provider's authorization codes (256 bits), taken from the
/// redirect the real authorization endpoint answers; and the session id and `jti` of a real
/// login are 128-bit ids too.
#[tokio::test]
async fn authorization_codes_have_256_bits_and_are_unique_and_balanced() {
    const CODES: usize = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let store = portcullis_store::open(&format!("sqlite://{}/p.db", dir.path().display()))
        .await
        .unwrap();
    let config = portcullis_config::load_str(YAML, None, &LoadOptions::default()).unwrap();
    let engine: Arc<Engine> = Engine::new(&config, store, Arc::new(ManualClock::new(T0)))
        .await
        .unwrap();
    engine
        .add_user(NewUser {
            name: "alice".into(),
            password: Some("Passw0rd-long".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let ctx = RequestContext {
        ip: "192.0.2.7".into(),
        user_agent: "unit".into(),
    };
    let login = PasswordLogin {
        login: "alice",
        password: "Passw0rd-long",
        client_id: "",
        login_type: "Token",
    };
    let tokens = engine.password_login(&login, &ctx).await.unwrap();
    assert_eq!(decoded(&tokens.session_id).len(), 16, "session id");
    let claims = engine
        .verify(&tokens.access_token, TokenType::AccessToken)
        .await
        .unwrap();
    assert_eq!(claims.sid, tokens.session_id);
    assert_eq!(decoded(&claims.jti).len(), 16, "jti");

    let browser = engine
        .browser_session(&tokens.access_token)
        .await
        .expect("a browser session");
    let params: BTreeMap<String, String> = [
        ("response_type", "code"),
        ("client_id", "app"),
        ("redirect_uri", REDIRECT),
        ("scope", "openid"),
        ("state", "st"),
        (
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        ),
        ("code_challenge_method", "S256"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let req = engine.check_authorization_request(params).unwrap();
    let mut codes = Vec::with_capacity(CODES);
    for _ in 0..CODES {
        let Decision::Redirect(location) =
            engine.authorize(&req, Some(&browser), true).await.unwrap()
        else {
            panic!("the authorization endpoint did not redirect with a code");
        };
        let url = url::Url::parse(&location).unwrap();
        assert!(location.starts_with(REDIRECT), "{location}");
        let code = url
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| panic!("no code in {location}"));
        codes.push(code);
    }
    let distinct: HashSet<&str> = codes.iter().map(String::as_str).collect();
    assert_eq!(
        distinct.len(),
        CODES,
        "an authorization code repeated itself"
    );
    let bytes: Vec<Vec<u8>> = codes.iter().map(|c| decoded(c)).collect();
    for (code, b) in codes.iter().zip(&bytes) {
        assert_eq!(b.len(), 32, "{code:?} does not carry 256 bits");
    }
    assert_bits_balanced(&bytes, 32);
}

//! Signing keys: generated once per database and shared by replicas, rotated on schedule (the
//! next key published a day before it signs, the old one verifying for a week after), and
//! KubeSphere's `signKeyData` used as the RS256 key with KubeSphere's `kid`.

use std::time::Duration;

use base64::Engine as _;
use portcullis_test_support::{Backend, Server, ServerOptions};

use super::*;

const DAY: u64 = 24 * 3600;

async fn jwks(server: &Server) -> Value {
    http()
        .get(server.url("/oauth/keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn kids(jwks: &Value, alg: &str) -> Vec<String> {
    let mut k: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["alg"] == alg)
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    k.sort();
    k
}

fn kid_of(id_token: &str) -> String {
    jwt_parts(id_token).0["kid"].as_str().unwrap().to_owned()
}

async fn hint_status(server: &Server, id_token: &str) -> u16 {
    let url = format!("{}?id_token_hint={id_token}", server.url("/oauth/logout"));
    http().get(url).send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_share_one_key_set() {
    let pg = portcullis_test_support::PgDatabase::create().await.unwrap();
    // Replicas serve one public URL (behind a load balancer): one issuer.
    let public = "https://ks.example.com";
    let yaml = format!("{}portcullis:\n  publicURL: {public}\n", oidc_config(""));
    let start_replica = || {
        let mut opts = ServerOptions::new(bin(), Some(yaml.clone()));
        opts.backend = Backend::Postgres(pg.url.clone());
        opts.env
            .push(("PORTCULLIS_ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into()));
        Server::start(opts).expect("replica starts")
    };
    let (a, b) = (start_replica(), start_replica());
    add_user(&a, &["alice", "--password", ALICE_PASSWORD]);
    let (ka, kb) = tokio::join!(jwks(&a), jwks(&b));
    assert_eq!(kids(&ka, "RS256"), kids(&kb, "RS256"));
    assert_eq!(kids(&ka, "ES256"), kids(&kb, "ES256"));
    assert_eq!(
        kids(&ka, "RS256").len(),
        1,
        "one RS256 key per database: {ka}"
    );
    assert_eq!(kids(&ka, "ES256").len(), 1);

    // An ID token from A is Portcullis' own on B too.
    let mut browser = Browser::behind(&a, public);
    let body = code_flow(&a, &mut browser, "app", "app-secret", "openid").await;
    let id_token = body["id_token"].as_str().unwrap();
    assert_eq!(hint_status(&b, id_token).await, 200);
    // B's logout reaches A through the revocation log (polled every second).
    let access = body["access_token"].as_str().unwrap();
    portcullis_test_support::eventually(Duration::from_secs(10), "A to see B's logout", || async {
        (!is_authenticated(&a, access).await).then_some(())
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_rotate_on_schedule_and_old_ones_verify_for_a_grace_period() {
    let (mut server, _b) = oidc_server(false, "").await;
    let start = now_s();
    let mut browser = Browser::new(&server);
    let first = code_flow(&server, &mut browser, "app", "app-secret", "openid").await;
    let old_token = first["id_token"].as_str().unwrap().to_owned();
    let old_kid = kid_of(&old_token);
    assert_eq!(kids(&jwks(&server).await, "RS256"), vec![old_kid.clone()]);

    // A day before the 90-day rotation the next key is published, but does not sign yet.
    server
        .advance_clock(Duration::from_secs(89 * DAY + 60))
        .unwrap();
    wait_for_clock(&server, start + (89 * DAY) as i64).await;
    let published = kids(&jwks(&server).await, "RS256");
    assert_eq!(published.len(), 2, "{published:?}");
    assert_eq!(kids(&jwks(&server).await, "ES256").len(), 2);
    let body = code_flow(&server, &mut browser, "app", "app-secret", "openid").await;
    assert_eq!(kid_of(body["id_token"].as_str().unwrap()), old_kid);

    // After the rotation the new key signs; the old one still verifies.
    server
        .advance_clock(Duration::from_secs(DAY + 600))
        .unwrap();
    wait_for_clock(&server, start + (90 * DAY + 300) as i64).await;
    let body = code_flow(&server, &mut browser, "app", "app-secret", "openid").await;
    let new_kid = kid_of(body["id_token"].as_str().unwrap());
    assert_ne!(new_kid, old_kid);
    assert!(
        published.contains(&new_kid),
        "the signing key was published a day ahead"
    );
    super::flow::verify_with_jwks(&server, body["id_token"].as_str().unwrap(), "app").await;
    assert_eq!(
        hint_status(&server, &old_token).await,
        200,
        "old key verifies in the grace period"
    );

    // A week later the old key is gone from the JWKS and no longer verifies.
    server.advance_clock(Duration::from_secs(8 * DAY)).unwrap();
    wait_for_clock(&server, start + (98 * DAY) as i64).await;
    assert_eq!(kids(&jwks(&server).await, "RS256"), vec![new_kid]);
    assert_eq!(hint_status(&server, &old_token).await, 400);
}

/// FNV-1a 32, KubeSphere's `kid` of a configured key.
fn fnv32a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn kubesphere_sign_key_data_signs_rs256_id_tokens() {
    let pem = include_str!("testdata/sign-key-pkcs1.pem");
    let data = base64::engine::general_purpose::STANDARD.encode(pem);
    let (server, _b) = oidc_server(false, &format!("    signKeyData: {data}\n")).await;
    let kid = fnv32a(pem.as_bytes()).to_string();
    let keys = jwks(&server).await;
    assert_eq!(kids(&keys, "RS256"), vec![kid.clone()], "{keys}");
    assert_eq!(
        kids(&keys, "ES256").len(),
        1,
        "ES256 keys are still generated"
    );
    let mut browser = Browser::new(&server);
    let body = code_flow(&server, &mut browser, "app", "app-secret", "openid").await;
    let id_token = body["id_token"].as_str().unwrap();
    assert_eq!(kid_of(id_token), kid);
    // Verified with the PEM's own public key, independently of the JWKS.
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    let public =
        jsonwebtoken::jwk::Jwk::from_encoding_key(&key, jsonwebtoken::Algorithm::RS256).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_audience(&["app"]);
    let decoding = jsonwebtoken::DecodingKey::from_jwk(&public).unwrap();
    assert_eq!(
        jsonwebtoken::decode::<Value>(id_token, &decoding, &v)
            .unwrap()
            .claims["sub"],
        "alice"
    );
    // The key never shows up in the public configuration.
    let public_config = http()
        .get(server.url("/kapis/config.kubesphere.io/v1alpha2/configs/oauth"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!public_config.contains(&data[..40]), "{public_config}");
}

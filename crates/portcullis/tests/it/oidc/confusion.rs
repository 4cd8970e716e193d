//! Algorithm and token-type confusion: `alg: none`, HMAC signed with the RSA public key, a
//! header naming another algorithm than the key's, and tokens of one kind presented as another
//! (an ID token or a refresh token as a Bearer credential, a KubeSphere access token as an
//! `id_token_hint`). Every one is refused.

use serde_json::json;

use super::*;

fn compact(header: &Value, claims: &Value, sig: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes()),
        b64(sig)
    )
}

fn hs256(header: &Value, claims: &Value, secret: &[u8]) -> String {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let mut h = Header::new(Algorithm::HS256);
    h.kid = header["kid"].as_str().map(str::to_owned);
    jsonwebtoken::encode(&h, claims, &EncodingKey::from_secret(secret).unwrap()).unwrap()
}

async fn logout_status(server: &Server, hint: &str) -> u16 {
    http()
        .get(format!(
            "{}?id_token_hint={hint}",
            server.url("/oauth/logout")
        ))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_and_confused_tokens_are_refused() {
    let (server, _b) = oidc_server(false, "").await;
    let mut browser = Browser::new(&server);
    let body = code_flow(
        &server,
        &mut browser,
        "app",
        "app-secret",
        "openid offline_access",
    )
    .await;
    let id_token = body["id_token"].as_str().unwrap().to_owned();
    let access = body["access_token"].as_str().unwrap().to_owned();
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let (header, claims) = jwt_parts(&id_token);
    let kid = header["kid"].as_str().unwrap().to_owned();
    let jwks: Value = http()
        .get(server.url("/oauth/keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rsa = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap()
        .clone();

    // The genuine hint is accepted (checked last, since it ends the session).
    let forged_claims = json!({"iss": claims["iss"], "sub": "admin", "aud": "app", "exp": claims["exp"], "iat": claims["iat"], "sid": claims["sid"]});
    let candidates = [
        (
            "alg none",
            compact(&json!({"alg": "none", "kid": kid}), &forged_claims, b""),
        ),
        (
            "alg none, no signature part",
            format!(
                "{}.{}.",
                b64(br#"{"alg":"none"}"#),
                b64(forged_claims.to_string().as_bytes())
            ),
        ),
        (
            "HS256 with the RSA JWK as secret",
            hs256(&header, &forged_claims, rsa.to_string().as_bytes()),
        ),
        (
            "HS256 with the modulus as secret",
            hs256(
                &header,
                &forged_claims,
                rsa["n"].as_str().unwrap().as_bytes(),
            ),
        ),
        (
            "HS256 with jwtSecret",
            hs256(&header, &forged_claims, SECRET.as_bytes()),
        ),
        ("ES256 header on the RSA key", {
            let sig = id_token.rsplit('.').next().unwrap();
            let real =
                base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, sig)
                    .unwrap();
            compact(
                &json!({"alg": "ES256", "kid": kid, "typ": "JWT"}),
                &claims,
                &real,
            )
        }),
        ("claims changed under the real signature", {
            let mut parts: Vec<String> = id_token.split('.').map(str::to_owned).collect();
            parts[1] = b64(forged_claims.to_string().as_bytes());
            parts.join(".")
        }),
        ("a KubeSphere access token", access.clone()),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    for (what, token) in &candidates {
        assert_eq!(
            logout_status(&server, token).await,
            400,
            "{what} accepted as id_token_hint"
        );
        // As Bearer credentials they are refused too.
        assert!(
            !is_authenticated(&server, token).await || token == &access,
            "{what} accepted by TokenReview"
        );
    }
    assert!(
        is_authenticated(&server, &access).await,
        "none of the forgeries logged anyone out"
    );

    // Tokens of the wrong kind as Bearer credentials.
    for (what, token) in [("ID token", &id_token), ("refresh token", &refresh)] {
        let (status, body) = userinfo(&server, token).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_token")),
            "{what}"
        );
        assert!(
            !is_authenticated(&server, token).await,
            "{what} accepted by TokenReview"
        );
    }
    // An alg-none token with KubeSphere's claims for admin.
    let none = compact(
        &json!({"alg": "none", "typ": "JWT"}),
        &json!({"username": "admin", "sub": "admin", "token_type": "access_token", "iat": claims["iat"]}),
        b"",
    );
    assert_eq!(userinfo(&server, &none).await.0, 401);
    assert!(!is_authenticated(&server, &none).await);
    // Introspection says inactive for all of them.
    for token in [&none, &id_token] {
        let (_, i) = client_post(
            &server,
            "/oauth/introspect",
            "app",
            "app-secret",
            &[("token", token)],
        )
        .await;
        assert_eq!(i, json!({"active": false}));
    }

    assert_eq!(logout_status(&server, &id_token).await, 200);
    assert!(!is_authenticated(&server, &access).await);
}

//! The code flow end to end with Portcullis' own pages, on SQLite and PostgreSQL: discovery, the
//! authorization response (`state`, `iss`), the token response, ID-token claims checked and the
//! signature verified against the JWKS by an independent JWT library, userinfo, refresh with a
//! new ID token, introspection, revocation, RP-initiated logout, client credentials.

use serde_json::Value;

use super::*;

on_both_backends!(code_flow_end_to_end, client_credentials_and_introspection);

/// Verifies an ID token's signature with the JWKS using jsonwebtoken (not Portcullis' code).
pub async fn verify_with_jwks(server: &Server, id_token: &str, audience: &str) -> Value {
    let jwks: jsonwebtoken::jwk::JwkSet = http()
        .get(server.url("/oauth/keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("kid published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_audience(&[audience]);
    v.set_issuer(&[server.base.as_str()]);
    jsonwebtoken::decode::<Value>(id_token, &key, &v)
        .unwrap()
        .claims
}

async fn code_flow_end_to_end(pg: bool) {
    let (server, _b) = oidc_server(pg, "").await;
    let disco: Value = http()
        .get(server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(disco["issuer"], server.base);
    assert_eq!(
        disco["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        disco["response_types_supported"],
        serde_json::json!(["code"])
    );
    assert_eq!(
        disco["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256", "ES256"])
    );
    assert_eq!(disco["end_session_endpoint"], server.url("/oauth/logout"));
    let legacy: Value = http()
        .get(server.url("/oauth/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        legacy, disco,
        "KubeSphere 3.2's discovery path serves the same document"
    );

    let mut browser = Browser::new(&server);
    let (verifier, challenge) = pkce();
    let out = browser
        .authorize(
            &code_request(
                "app",
                &challenge,
                "openid profile email groups offline_access",
            ),
            Some(("alice", ALICE_PASSWORD)),
        )
        .await;
    let p = out.params();
    assert_eq!(p["state"], "st-123");
    assert_eq!(
        p["iss"], server.base,
        "RFC 9207 iss in the authorization response"
    );
    let (status, body) = token_as(
        &server,
        "app",
        "app-secret",
        &[
            ("grant_type", "authorization_code"),
            ("code", &p["code"]),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "email groups offline_access openid profile");
    let access = body["access_token"].as_str().unwrap().to_owned();
    let refresh = body["refresh_token"]
        .as_str()
        .expect("offline_access gives a refresh token")
        .to_owned();
    let id_token = body["id_token"].as_str().unwrap().to_owned();

    let (header, _) = jwt_parts(&id_token);
    assert_eq!(header["alg"], "RS256");
    let claims = verify_with_jwks(&server, &id_token, "app").await;
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["nonce"], "n-456");
    assert_eq!(claims["azp"], "app");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(
        claims["email_verified"], false,
        "an administrator-entered address is not verified"
    );
    assert_eq!(claims["groups"], serde_json::json!(["devs", "ops"]));
    assert_eq!(claims["preferred_username"], "alice");
    assert!(claims["auth_time"].as_i64().unwrap() <= claims["iat"].as_i64().unwrap());
    // at_hash: left half of SHA-256 of the access token.
    use sha2::Digest;
    assert_eq!(
        claims["at_hash"],
        b64(&sha2::Sha256::digest(access.as_bytes())[..16])
    );

    // The access token is a KubeSphere HS256 token: TokenReview accepts it.
    assert!(is_authenticated(&server, &access).await);
    let (status, info) = userinfo(&server, &access).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["sub"], "alice");
    assert_eq!(info["email"], "alice@example.com");

    // Refresh: a new pair and a new ID token with the same auth_time and no nonce.
    let (status, r) = token_as(
        &server,
        "app",
        "app-secret",
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let c2 = verify_with_jwks(&server, r["id_token"].as_str().unwrap(), "app").await;
    assert_eq!(c2["auth_time"], claims["auth_time"]);
    assert!(c2.get("nonce").is_none());
    // The refresh token is bound to the client.
    let (status, e) = token_as(
        &server,
        "other",
        "other-secret",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", r["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(
        (status, e["error"].as_str()),
        (400, Some("invalid_grant")),
        "{e}"
    );
    // Its own client refreshes again: the grant is the one remembered from before (same
    // scopes, same auth_time), the user the one the refresh read.
    let (status, r3) = token_as(
        &server,
        "app",
        "app-secret",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", r["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{r3}");
    assert_eq!(r3["scope"], r["scope"]);
    let c3 = verify_with_jwks(&server, r3["id_token"].as_str().unwrap(), "app").await;
    assert_eq!(c3["auth_time"], claims["auth_time"]);
    assert_eq!(c3["email"], "alice@example.com", "{c3}");
    assert_ne!(r3["refresh_token"], r["refresh_token"]);

    // Without offline_access an untrusted client gets no refresh token; SSO: no login form.
    let body = code_flow(&server, &mut browser, "app", "app-secret", "openid").await;
    assert!(body.get("refresh_token").is_none(), "{body}");
    let second = body["access_token"].as_str().unwrap().to_owned();
    let (status, info) = userinfo(&server, &second).await;
    assert_eq!(status, 200);
    assert!(
        info.get("email").is_none(),
        "no email scope, no email claim: {info}"
    );

    // RP-initiated logout: hint + registered post-logout URI + state; ends the browser session.
    let logout = browser
        .get(&format!(
            "{}?id_token_hint={}&post_logout_redirect_uri={}&state=bye-1",
            server.url("/oauth/logout"),
            body["id_token"].as_str().unwrap(),
            url::form_urlencoded::byte_serialize(BYE.as_bytes()).collect::<String>()
        ))
        .await;
    assert_eq!(logout.status(), 303);
    assert_eq!(logout.headers()["location"], format!("{BYE}?state=bye-1"));
    assert!(
        !browser.cookies.contains_key("portcullis_session"),
        "session cookie cleared"
    );
    assert!(
        !is_authenticated(&server, &second).await,
        "the ID token's session is revoked"
    );
    // prompt=none now answers login_required.
    let (_, challenge) = pkce();
    let mut q = code_request("app", &challenge, "openid");
    q.push(("prompt", "none"));
    let out = browser.authorize(&q, None).await;
    assert_eq!(out.params()["error"], "login_required");
    assert_eq!(out.params()["state"], "st-123");
}

async fn client_credentials_and_introspection(pg: bool) {
    let (server, _b) = oidc_server(pg, "").await;
    let (status, body) = client_post(
        &server,
        "/oauth/token",
        "app",
        "app-secret",
        &[("grant_type", "client_credentials"), ("scope", "jobs")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.get("refresh_token").is_none() && body.get("id_token").is_none(),
        "{body}"
    );
    let token = body["access_token"].as_str().unwrap().to_owned();
    let review = review(&server, &token).await;
    assert_eq!(review["user"]["username"], "client:app", "{review}");
    // A public client cannot use client_credentials; a denied client neither.
    let (status, e) = token_as(&server, "spa", "", &[("grant_type", "client_credentials")]).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (400, Some("unauthorized_client")),
        "{e}"
    );
    let (status, e) = client_post(
        &server,
        "/oauth/token",
        "denied",
        "denied-secret",
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(
        (status, e["error"].as_str()),
        (400, Some("unauthorized_client")),
        "{e}"
    );
    let (status, e) = client_post(
        &server,
        "/oauth/token",
        "narrow",
        "narrow-secret",
        &[("grant_type", "client_credentials"), ("scope", "groups")],
    )
    .await;
    assert_eq!(
        (status, e["error"].as_str()),
        (400, Some("invalid_scope")),
        "{e}"
    );

    // Introspection: needs a confidential client; active with client_id and scope.
    let (status, i) = client_post(
        &server,
        "/oauth/introspect",
        "other",
        "other-secret",
        &[("token", &token)],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(i["active"], true);
    assert_eq!(i["client_id"], "app");
    assert_eq!(i["scope"], "jobs");
    assert_eq!(i["sub"], "client:app");
    let (status, i) = client_post(
        &server,
        "/oauth/introspect",
        "other",
        "other-secret",
        &[("token", "garbage")],
    )
    .await;
    assert_eq!((status, &i), (200, &serde_json::json!({"active": false})));
    let resp = http()
        .post(server.url("/oauth/introspect"))
        .form(&[("client_id", "spa"), ("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "a public client may not introspect");
    let resp = http()
        .post(server.url("/oauth/introspect"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "no client authentication");
    assert!(resp.headers().contains_key("www-authenticate"));

    // Revocation: another client's token is left alone (200 all the same); the owner revokes.
    let (status, _) = client_post(
        &server,
        "/oauth/revoke",
        "other",
        "other-secret",
        &[("token", &token)],
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        is_authenticated(&server, &token).await,
        "another client cannot revoke it"
    );
    let (status, _) = client_post(
        &server,
        "/oauth/revoke",
        "app",
        "app-secret",
        &[("token", "unknown-token")],
    )
    .await;
    assert_eq!(status, 200, "unknown tokens answer 200 (RFC 7009)");
    let (status, _) = client_post(
        &server,
        "/oauth/revoke",
        "app",
        "app-secret",
        &[("token", &token), ("token_type_hint", "access_token")],
    )
    .await;
    assert_eq!(status, 200);
    assert!(!is_authenticated(&server, &token).await);
    let (_, i) = client_post(
        &server,
        "/oauth/introspect",
        "app",
        "app-secret",
        &[("token", &token)],
    )
    .await;
    assert_eq!(i["active"], false);
    let (status, _) = client_post(
        &server,
        "/oauth/revoke",
        "app",
        "wrong",
        &[("token", &token)],
    )
    .await;
    assert_eq!(status, 401, "revocation needs client authentication");

    // The password grant still works for the trusted console client, and an untrusted client
    // may not use it.
    let (status, body) = client_post(
        &server,
        "/oauth/token",
        "kubesphere",
        "kubesphere",
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", ALICE_PASSWORD),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let console = body["access_token"].as_str().unwrap().to_owned();
    let (status, info) = userinfo(&server, &console).await;
    assert_eq!(
        (status, info["sub"].as_str()),
        (200, Some("alice")),
        "console tokens get KubeSphere's userinfo"
    );
    let (status, e) = client_post(
        &server,
        "/oauth/token",
        "app",
        "app-secret",
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", ALICE_PASSWORD),
        ],
    )
    .await;
    assert_eq!(
        (status, e["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
}

//! Forged cookies and headers: a session cookie with a changed signature or claims, another
//! key, another algorithm or a refresh token in it; a CSRF token that does not match its
//! cookie; a spoofed `Host` or `X-Forwarded-Host` on endpoints that redirect; duplicated
//! headers. None signs anyone in, changes anything, or moves a redirect off-site.

use base64::Engine as _;
use serde_json::Value;

use crate::common::*;
use crate::federation::{Browser, PUBLIC, claims, yaml};

const ALICE: &str = "alice-Passw0rd";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// `token` with its claims replaced by `claims` and the original signature kept.
fn with_claims(token: &str, claims: &Value) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = b64(claims.to_string().as_bytes());
    parts.join(".")
}

/// The same claims signed with `alg` and `key`.
fn resigned(claims: &Value, alg: jsonwebtoken::Algorithm, key: &[u8]) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(key).unwrap(),
    )
    .unwrap()
}

/// Signs alice in through the sign-in page; returns the browser and her session token.
async fn signed_in_browser(server: &portcullis_test_support::Server) -> (Browser, String) {
    let mut br = Browser::new(server);
    let login = format!("{PUBLIC}/login");
    br.get(&login).await;
    let csrf = br.cookie("portcullis_csrf").unwrap();
    let ok = br
        .post_form(
            &login,
            &[
                ("csrf_token", &csrf),
                ("username", "alice"),
                ("password", ALICE),
            ],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let token = br.cookie("portcullis_session").unwrap();
    (br, token)
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_session_cookies_sign_nobody_in() {
    let b = backend(false).await;
    let server = start(Some(yaml(&[])), &b);
    add_user(&server, &["alice", "--password", ALICE]);
    let (mut br, token) = signed_in_browser(&server).await;
    let account = format!("{PUBLIC}/account");
    assert_eq!(br.get(&account).await.status, 200);

    let real = claims(&token);
    let mut as_admin = real.clone();
    as_admin["username"] = "admin".into();
    as_admin["sub"] = "admin".into();
    let mut longer = real.clone();
    longer["exp"] = (real["exp"].as_i64().unwrap() + 86_400 * 365).into();
    // One character in the middle of the signature, and the last one (whose two low bits are
    // unused in base64url: a lenient decoder would accept the change).
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let flip_bit = |at: usize, bit: usize| {
        let mut t = token.clone().into_bytes();
        let i = ALPHABET.iter().position(|&c| c == t[at]).unwrap();
        t[at] = ALPHABET[i ^ bit];
        String::from_utf8(t).unwrap()
    };
    let flipped = flip_bit(token.rfind('.').unwrap() + 10, 8);
    let low_bits = flip_bit(token.len() - 1, 1);
    let (_, _, pair) = password_login(&server, "alice", ALICE).await;
    let refresh = pair["refresh_token"].as_str().unwrap().to_owned();
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        token.split('.').nth(1).unwrap()
    );
    let forgeries = [
        ("signature changed", flipped),
        ("unused signature bits changed", low_bits),
        ("claims changed to admin", with_claims(&token, &as_admin)),
        ("expiry extended", with_claims(&token, &longer)),
        (
            "signed with another key",
            resigned(&as_admin, jsonwebtoken::Algorithm::HS256, b"guessed-secret"),
        ),
        (
            "HS512 with the real key",
            resigned(&real, jsonwebtoken::Algorithm::HS512, SECRET.as_bytes()),
        ),
        ("alg none", none),
        ("a refresh token", refresh),
        ("an extra segment", format!("{token}.AAAA")),
        ("garbage", "x".repeat(5000)),
        ("empty", String::new()),
    ];
    for (what, forged) in &forgeries {
        let mut other = Browser::new(&server);
        other.set("portcullis_session", Some(forged), "/");
        let page = other.get(&account).await;
        assert_eq!(page.status, 303, "{what}: {}", page.body);
        assert!(
            page.location().unwrap().contains("/login?return_to="),
            "{what}"
        );
        // A form post with a valid CSRF pair but the forged session changes nothing.
        other.get(&format!("{PUBLIC}/login")).await;
        let csrf = other.cookie("portcullis_csrf").unwrap();
        let hop = other
            .post_form(
                &format!("{PUBLIC}/account/sessions/revoke-all"),
                &[("csrf_token", &csrf)],
            )
            .await;
        assert!(
            matches!(hop.status, 303 | 401 | 403),
            "{what}: {}",
            hop.status
        );
        assert!(
            is_authenticated(&server, &token).await,
            "{what}: alice's session survived"
        );
    }
    assert_eq!(
        br.get(&account).await.status,
        200,
        "the real cookie still works"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn csrf_tokens_that_do_not_match_their_cookie_change_nothing() {
    let b = backend(false).await;
    let server = start(Some(yaml(&[])), &b);
    add_user(&server, &["alice", "--password", ALICE]);
    let (mut br, token) = signed_in_browser(&server).await;
    let own = br.cookie("portcullis_csrf").unwrap();
    // Another browser's valid pair: its token with this browser's cookie.
    let mut stranger = Browser::new(&server);
    stranger.get(&format!("{PUBLIC}/login")).await;
    let theirs = stranger.cookie("portcullis_csrf").unwrap();
    let password_form = |csrf: &str| {
        vec![
            ("csrf_token".to_owned(), csrf.to_owned()),
            ("current".to_owned(), ALICE.to_owned()),
            ("new".to_owned(), "stolen-Passw0rd".to_owned()),
            ("repeat".to_owned(), "stolen-Passw0rd".to_owned()),
        ]
    };
    let mut flipped = own.clone();
    let last = flipped.pop().unwrap();
    flipped.push(if last == 'a' { 'b' } else { 'a' });
    for (what, csrf, cookie) in [
        ("another browser's token", theirs.clone(), Some(own.clone())),
        ("one character changed", flipped, Some(own.clone())),
        (
            "a prefix of the token",
            own[..own.len() / 2].to_owned(),
            Some(own.clone()),
        ),
        ("token without its cookie", own.clone(), None),
        (
            "both forged alike",
            "forged".to_owned(),
            Some("forged".to_owned()),
        ),
    ] {
        br.set("portcullis_csrf", cookie.as_deref(), "/");
        let form = password_form(&csrf);
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let hop = br
            .post_form(&format!("{PUBLIC}/account/password"), &pairs)
            .await;
        assert_eq!(hop.status, 403, "{what}: {}", hop.body);
        let hop = br
            .post_form(
                &format!("{PUBLIC}/account/sign-out"),
                &[("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(hop.status, 403, "{what}");
        assert!(is_authenticated(&server, &token).await, "{what}");
    }
    // Nothing changed: the old password still works, the new one does not.
    assert_eq!(password_login(&server, "alice", ALICE).await.0, 200);
    assert_eq!(
        password_login(&server, "alice", "stolen-Passw0rd").await.0,
        400
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn spoofed_host_headers_do_not_move_redirects() {
    let b = backend(false).await;
    let extra = "    clients:\n    - name: app\n      secret: app-secret\n      redirectURIs: [\"http://127.0.0.1:5555/cb\"]\n";
    let text = yaml(&[]).replace(
        "    identityProviders:\n",
        &format!("{extra}    identityProviders:\n"),
    );
    let server = start(Some(text), &b);
    add_user(&server, &["alice", "--password", ALICE]);
    let spoofs: [&[(&str, &str)]; 3] = [
        &[("host", "evil.example")],
        &[
            ("x-forwarded-host", "evil.example"),
            ("x-forwarded-proto", "https"),
        ],
        &[
            ("forwarded", "host=evil.example;proto=https"),
            ("x-original-url", "//evil.example/"),
        ],
    ];
    let authorize = "/oauth/authorize?response_type=code&client_id=app&redirect_uri=http%3A%2F%2F127.0.0.1%3A5555%2Fcb&scope=openid&state=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256";
    for spoof in spoofs {
        for path in [
            "/account",
            authorize,
            "/oauth/logout?post_logout_redirect_uri=http%3A%2F%2Fevil.example%2F",
            "/login/nosuch",
        ] {
            let mut req = http().get(server.url(path));
            for (k, v) in spoof {
                req = req.header(*k, *v);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            assert!(status < 500, "{path} {spoof:?}: {status}");
            if let Some(loc) = resp.headers().get("location") {
                let loc = url::Url::parse(PUBLIC)
                    .unwrap()
                    .join(loc.to_str().unwrap())
                    .unwrap();
                assert_eq!(
                    loc.host_str(),
                    Some("portcullis.test"),
                    "{path} {spoof:?}: {loc}"
                );
            }
        }
        // The discovery document names the configured issuer, whatever the request said.
        let mut req = http().get(server.url("/.well-known/openid-configuration"));
        for (k, v) in spoof {
            req = req.header(*k, *v);
        }
        let doc: Value = req.send().await.unwrap().json().await.unwrap();
        assert!(!doc.to_string().contains("evil.example"), "{doc}");
    }
    // A successful sign-in with a spoofed Host lands on this server too.
    let mut br = Browser::new(&server);
    br.get(&format!("{PUBLIC}/login")).await;
    let csrf = br.cookie("portcullis_csrf").unwrap();
    let resp = http()
        .post(server.url("/login"))
        .header("host", "evil.example")
        .header("x-forwarded-host", "evil.example")
        .header("cookie", format!("portcullis_csrf={csrf}"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("username", "alice"),
            ("password", ALICE),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let hop_location = resp.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(hop_location, format!("{PUBLIC}/account"));
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicated_headers_are_refused_or_harmless() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let b = backend(false).await;
    let server = start(Some(config(true)), &b);
    add_user(&server, &["alice", "--password", ALICE]);
    let (_, _, body) = password_login(&server, "alice", ALICE).await;
    let token = body["access_token"].as_str().unwrap().to_owned();
    let addr = server.base.trim_start_matches("http://").to_owned();
    let status_of = |request: String| {
        let addr = addr.clone();
        async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(request.as_bytes()).await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = s.read(&mut buf).await.unwrap_or(0);
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            text.get(9..12)
                .and_then(|s| s.parse::<u16>().ok())
                .unwrap_or(0)
        }
    };
    let form = "grant_type=password&username=alice&password=x";
    // Conflicting lengths and two Host headers: 400 from the HTTP layer (no smuggling).
    let two_lengths = format!(
        "POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nContent-Length: 5\r\nConnection: close\r\n\r\n{form}",
        form.len()
    );
    assert_eq!(status_of(two_lengths).await, 400);
    let two_hosts =
        "GET /oauth/logout HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n".to_owned();
    let st = status_of(two_hosts).await;
    assert!(st == 400 || st == 200, "two Host headers: {st}");
    // Two bearer tokens (a real one and a forged one), either order: never a 500, and
    // logging out with them never ends up revoking someone through the forged one.
    for pair in [[token.as_str(), "forged"], ["forged", token.as_str()]] {
        let req = format!(
            "GET /kapis/iam.kubesphere.io/v1alpha2/users/alice/loginrecords HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            pair[0], pair[1]
        );
        let st = status_of(req).await;
        assert!(
            matches!(st, 200 | 400 | 401),
            "two Authorization headers: {st}"
        );
    }
    // Duplicated form parameters are refused outright (RFC 6749 §3.2).
    let (status, body) = token_raw(
        &server,
        "grant_type=password&username=alice&username=admin&password=x",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(is_authenticated(&server, &token).await);
}

/// `POST /oauth/token` with a form body written by hand.
async fn token_raw(server: &portcullis_test_support::Server, body: &str) -> (u16, Value) {
    let resp = http()
        .post(server.url("/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

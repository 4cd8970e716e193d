//! The example build registers the Gitea plugin and completes a login with it, driven over HTTP
//! against a small fake Gitea: `/login/gitea` → Gitea's authorize page → Portcullis' callback
//! (state cookie checked, PKCE verified by the fake) → signed in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use portcullis_test_support::{Server, ServerOptions};
use serde_json::json;

const PUBLIC: &str = "http://portcullis.test";

/// code -> PKCE challenge; token -> user id.
#[derive(Default)]
struct Gitea {
    codes: HashMap<String, String>,
    tokens: HashMap<String, u64>,
}
type Shared = Arc<Mutex<Gitea>>;

async fn authorize(State(g): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    if q.get("client_id").map(String::as_str) != Some("gitea-client")
        || q.get("code_challenge_method").map(String::as_str) != Some("S256")
    {
        return (StatusCode::BAD_REQUEST, "bad authorize request").into_response();
    }
    let code = format!("code-{}", q["state"].len() + g.lock().unwrap().codes.len());
    g.lock()
        .unwrap()
        .codes
        .insert(code.clone(), q["code_challenge"].clone());
    let mut back = url::Url::parse(&q["redirect_uri"]).unwrap();
    back.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &q["state"]);
    Redirect::to(back.as_str()).into_response()
}

async fn access_token(State(g): State<Shared>, body: Bytes) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let mut g = g.lock().unwrap();
    let challenge = form.get("code").and_then(|c| g.codes.remove(c));
    // S256 by hand would need sha2 here; the fake only checks that a verifier came with a
    // code that was issued with a challenge, and that the client secret is right.
    let ok = challenge.is_some()
        && form.get("code_verifier").is_some_and(|v| v.len() >= 43)
        && form.get("client_secret").map(String::as_str) == Some("gitea-secret");
    if !ok {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    }
    g.tokens.insert("gta_token".into(), 42);
    axum::Json(json!({"access_token": "gta_token", "token_type": "bearer", "expires_in": 3600}))
        .into_response()
}

async fn user(State(g): State<Shared>, headers: HeaderMap) -> Response {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    match g.lock().unwrap().tokens.get(&token) {
        Some(id) => axum::Json(json!({"id": id, "login": "Tea.Drinker", "full_name": "Tea Drinker", "email": "tea@gitea.example"})).into_response(),
        None => (StatusCode::UNAUTHORIZED, axum::Json(json!({"message": "token is required"}))).into_response(),
    }
}

async fn fake_gitea() -> (String, tokio::task::JoinHandle<()>) {
    let router = Router::new()
        .route("/login/oauth/authorize", get(authorize))
        .route("/login/oauth/access_token", post(access_token))
        .route("/api/v1/user", get(user))
        .with_state(Shared::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (base, task)
}

/// GET with a cookie header, redirects off; the public URL is mapped to the server.
async fn fetch(server: &Server, url: &str, cookie: Option<&str>) -> reqwest::Response {
    let url = url.replace(PUBLIC, &server.base);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut req = client.get(url);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    req.send().await.unwrap()
}

fn location(resp: &reqwest::Response) -> String {
    resp.headers()["location"].to_str().unwrap().to_owned()
}

fn cookie_pair(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no {name} cookie"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_example_build_logs_in_with_gitea() {
    let (gitea, _task) = fake_gitea().await;
    let config = format!(
        r#"
authentication:
  jwtSecret: "example-secret-0123456789"
  oauthOptions:
    identityProviders:
    - name: gitea
      type: GiteaIdentityProvider
      mappingMethod: auto
      displayName: Gitea
      provider:
        baseURL: "{gitea}"
        clientID: gitea-client
        clientSecret: gitea-secret
        redirectURL: "{PUBLIC}/oauth/callback/gitea"
portcullis:
  publicURL: {PUBLIC}
"#
    );
    let mut opts = ServerOptions::new(env!("CARGO_BIN_EXE_portcullis-gitea"), Some(config));
    opts.env
        .push(("PORTCULLIS_ADMIN_PASSWORD".into(), "Admin-Passw0rd!".into()));
    let server = Server::start(opts).expect("the example build starts");

    let page = fetch(&server, &format!("{PUBLIC}/login"), None)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Log In with Gitea"), "{page}");

    let start = fetch(&server, &format!("{PUBLIC}/login/gitea"), None).await;
    assert_eq!(start.status(), 302);
    let state_cookie = cookie_pair(&start, "portcullis_login_state");
    let at_gitea = fetch(&server, &location(&start), None).await;
    assert!(
        at_gitea.status().is_redirection(),
        "{}",
        at_gitea.text().await.unwrap()
    );
    let callback = location(&at_gitea);
    assert!(
        callback.starts_with(&format!("{PUBLIC}/oauth/callback/gitea?code=")),
        "{callback}"
    );

    let done = fetch(&server, &callback, Some(&state_cookie)).await;
    assert_eq!(done.status(), 303);
    assert_eq!(location(&done), format!("{PUBLIC}/account"));
    let session = cookie_pair(&done, "portcullis_session");
    let account = fetch(&server, &format!("{PUBLIC}/account"), Some(&session)).await;
    let text = account.text().await.unwrap();
    assert!(text.contains("Signed in as tea.drinker</h2>"), "{text}");

    // ks-console can draw the button from the public listing.
    let listing: serde_json::Value = fetch(
        &server,
        &format!("{PUBLIC}/kapis/config.kubesphere.io/v1alpha2/configs/oauth"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    let entry = &listing["identityProviders"][0];
    assert_eq!(entry["type"], "GiteaIdentityProvider");
    assert_eq!(
        entry["provider"]["endpoint"]["authURL"],
        format!("{gitea}/login/oauth/authorize")
    );
    assert!(entry["provider"].get("clientSecret").is_none());
}

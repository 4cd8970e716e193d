//! Upstream identity providers that fail, through a [`FaultProxy`] in front of them: the real
//! node `oidc-provider` (its issuer is the proxy, so discovery, token and userinfo all pass
//! through it) and the fake GitLab of the generic OAuth 2.0 provider. Each fault (connection
//! refused, an answer held past the upstream timeout, HTML, garbage, truncated JSON, a wrong
//! content type, a 4 MiB body) on each endpoint ends the login on the error page with 502 and a
//! failed login record that names the cause; no user or link is created; and the next login
//! works as soon as the upstream is healthy again. The GitHub provider's own failures are in
//! `federation/failures.rs`.

use std::time::Duration;

use portcullis_test_support::{Server, eventually};
use portcullis_test_upstreams::peers::oidc::{OidcPeer, login};
use portcullis_test_upstreams::{FakeOAuth2, FakeUser, Fault, FaultProxy, Flavor};

use crate::common::*;
use crate::federation::{
    Browser, Hop, PUBLIC, callback_url, records, signed_in_as, user_names, yaml,
};

/// The upstream timeout the server runs with: every held answer costs this much.
const TIMEOUT: &str = "2s";

/// A fault to try: a [`Fault`] of the proxy, or the proxy not listening at all.
#[derive(Debug, Clone, Copy)]
enum Failure {
    Refused,
    Proxy(Fault),
}

/// Every failure, with the words the login record's reason must contain.
fn failures() -> Vec<(Failure, &'static str)> {
    let mut all = vec![(Failure::Refused, "could not be reached")];
    for fault in Fault::ALL {
        let reason = match fault {
            Fault::Hold => "timed out",
            Fault::Html | Fault::WrongContentType => "HTML page",
            Fault::Garbage | Fault::Truncated => "malformed JSON",
            Fault::Huge => "larger than",
            _ => unreachable!("a fault without an expected reason: {fault:?}"),
        };
        all.push((Failure::Proxy(fault), reason));
    }
    all
}

/// Makes requests under `path` fail. Held requests of an earlier fault stay held: releasing them
/// could let a late retry through.
async fn arm(proxy: &FaultProxy, path: &str, failure: Failure) {
    match failure {
        Failure::Refused => proxy.refuse().await,
        Failure::Proxy(fault) => {
            proxy.set(path, fault);
            proxy.accept().await;
        }
    }
}

async fn disarm(proxy: &FaultProxy) {
    proxy.clear();
    proxy.release();
    proxy.accept().await;
}

async fn server_with(providers: &[String]) -> Server {
    let mut opts = options(Some(yaml(providers)), &backend(false).await);
    opts.env
        .push(("PORTCULLIS_UPSTREAM_TIMEOUT".into(), TIMEOUT.into()));
    Server::start(opts).expect("server starts")
}

fn oidc_entry(issuer: &str) -> String {
    format!(
        r#"    - name: oidc
      type: OIDCIdentityProvider
      mappingMethod: auto
      provider:
        clientID: rs256
        clientSecret: rs256-secret
        issuer: "{issuer}"
        redirectURL: "{}"
        scopes: [openid, email, profile]
        getUserInfo: true
"#,
        callback_url("oidc")
    )
}

/// The callback URL of a login at the OIDC peer as `who` (the peer's login form filled in).
async fn oidc_callback(browser: &mut Browser, who: &str) -> String {
    let start = browser.get(&format!("{PUBLIC}/login/oidc")).await;
    assert_eq!(start.status, 302, "{}", start.body);
    let auth = url::Url::parse(&start.location().unwrap()).unwrap();
    login(&auth, who).await.unwrap().to_string()
}

/// The failed login's last hop: the error page, 502, with a request id.
fn upstream_error_page(last: &Hop, what: &str) {
    assert_eq!(last.status, 502, "{what}: {}", last.body);
    assert!(
        last.header("content-type").starts_with("text/html"),
        "{what}"
    );
    assert!(last.body.contains("Request id:"), "{what}: {}", last.body);
}

/// The newest failed login record of `provider` names `reason`.
async fn recorded(server: &Server, provider: &str, reason: &str, what: &str) {
    let recs = records(server, &format!("{provider}:unknown")).await;
    let newest = &recs[0]["spec"];
    assert_eq!(newest["success"], false, "{what}");
    let text = newest["reason"].as_str().unwrap_or_default();
    assert!(text.contains(reason), "{what}: the record says {text:?}");
}

fn no_panic_no_500(server: &Server) {
    let logs = server.logs();
    assert!(!logs.contains("panicked"), "{logs}");
    assert!(!logs.contains("\"status\":500"), "{logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn oidc_discovery_failures_then_recovery() {
    let proxy = FaultProxy::start("http://127.0.0.1:1").await;
    let _peer = OidcPeer::start_behind(&proxy, &callback_url("oidc")).unwrap();
    // Down from the start: the server starts anyway (discovery is lazy).
    proxy.refuse().await;
    let server = server_with(&[oidc_entry(&proxy.base_url())]).await;

    // One fault after the other, never a healthy moment in between: a discovery that succeeds
    // once is kept.
    for (failure, reason) in failures() {
        arm(&proxy, "/.well-known/", failure).await;
        let what = format!("discovery {failure:?}");
        // Each login start retries discovery (at most once a second) and answers 502 until the
        // document is read; the log says why each attempt failed.
        let seen = server.logs().matches(reason).count();
        eventually(Duration::from_secs(30), &what, || async {
            let hop = Browser::new(&server)
                .get(&format!("{PUBLIC}/login/oidc"))
                .await;
            upstream_error_page(&hop, &what);
            (server.logs().matches(reason).count() > seen).then_some(())
        })
        .await
        .unwrap();
        assert_eq!(user_names(&server), vec!["admin"], "{what}");
    }

    disarm(&proxy).await;
    let started = eventually(Duration::from_secs(30), "discovery recovers", || async {
        let hop = Browser::new(&server)
            .get(&format!("{PUBLIC}/login/oidc"))
            .await;
        (hop.status == 302).then_some(())
    })
    .await;
    started.unwrap();
    let mut browser = Browser::new(&server);
    let cb = oidc_callback(&mut browser, "ada").await;
    let hops = browser.follow(&cb).await;
    signed_in_as(&hops, "ada");
    no_panic_no_500(&server);
}

/// Tries every failure on every endpoint; `callback` runs a login up to Portcullis' callback URL.
async fn every_failure<F, Fut>(
    server: &Server,
    proxy: &FaultProxy,
    provider: &str,
    endpoints: &[&str],
    callback: F,
) where
    F: Fn(Browser) -> Fut,
    Fut: std::future::Future<Output = (Browser, String)>,
{
    for path in endpoints {
        for (failure, reason) in failures() {
            let what = format!("{provider} {path} {failure:?}");
            let (mut browser, cb) = callback(Browser::new(server)).await;
            arm(proxy, path, failure).await;
            let hops = browser.follow(&cb).await;
            disarm(proxy).await;
            let last = hops.last().unwrap();
            upstream_error_page(last, &what);
            assert!(last.set_cookie("portcullis_session").is_none(), "{what}");
            recorded(server, provider, reason, &what).await;
            assert_eq!(user_names(server), vec!["admin"], "{what}: no user");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn oidc_token_and_userinfo_failures_then_recovery() {
    let proxy = FaultProxy::start("http://127.0.0.1:1").await;
    let _peer = OidcPeer::start_behind(&proxy, &callback_url("oidc")).unwrap();
    let server = server_with(&[oidc_entry(&proxy.base_url())]).await;
    // The peer's token endpoint is /token, its userinfo /me.
    every_failure(
        &server,
        &proxy,
        "oidc",
        &["/token", "/me"],
        |mut b| async move {
            let cb = oidc_callback(&mut b, "grace").await;
            (b, cb)
        },
    )
    .await;

    let mut browser = Browser::new(&server);
    let cb = oidc_callback(&mut browser, "grace").await;
    signed_in_as(&browser.follow(&cb).await, "grace");
    let (ok, out, err) = crate::federation::cli(&server, &["user", "show", "grace", "-o", "json"]);
    assert!(ok, "{err}");
    assert!(out.contains("\"oidc\""), "the link was made once: {out}");
    no_panic_no_500(&server);
}

#[tokio::test(flavor = "multi_thread")]
async fn generic_oauth2_token_and_user_failures_then_recovery() {
    let gitlab = FakeOAuth2::start(Flavor::GitLab).await;
    gitlab.add_user(FakeUser {
        id: 4242,
        login: "linus".into(),
        name: "Linus".into(),
        email: "linus@example.org".into(),
        email_verified: true,
        extra: serde_json::Value::Null,
    });
    let proxy = FaultProxy::start(&gitlab.base_url()).await;
    let entry = format!(
        r#"    - name: gitlab
      type: OAuth2IdentityProvider
      mappingMethod: auto
      provider:
        clientID: "{}"
        clientSecret: "{}"
        redirectURL: "{}"
        authURL: "{}"
        tokenURL: "{}/oauth/token"
        userInfoURL: "{}/api/v4/user"
        scopes: [read_user]
        clientAuthStyle: body
        pkce: true
        claims:
          userID: /id
          username: /username
          email: /email
          displayName: /name
"#,
        gitlab.client_id(),
        gitlab.client_secret(),
        callback_url("gitlab"),
        gitlab.auth_url(),
        proxy.base_url(),
        proxy.base_url()
    );
    let server = server_with(&[entry]).await;
    every_failure(
        &server,
        &proxy,
        "gitlab",
        &["/oauth/token", "/api/v4/user"],
        |mut b| async move {
            let cb = b.until_callback("gitlab").await;
            (b, cb)
        },
    )
    .await;

    let hops = Browser::new(&server)
        .follow(&format!("{PUBLIC}/login/gitlab"))
        .await;
    signed_in_as(&hops, "linus");
    no_panic_no_500(&server);
}

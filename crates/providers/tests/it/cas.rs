//! `CASIdentityProvider` against a real CAS server (`django-cas-server`, started by the tests): CAS 3 and CAS 2
//! validation, released attributes, `state` carried in the service URL, bad and replayed tickets, an unreachable
//! server, and option errors.

use std::sync::Arc;

use portcullis_idp::{AuthorizationRequest, CallbackRequest, OAuthProvider};
use portcullis_test_upstreams::peers::cas::{self as peer, CasPeer};
use serde_json::{Value, json};

use crate::support;

const TYPE: &str = "CASIdentityProvider";
const SERVICE: &str = "http://127.0.0.1:1/oauth/redirect/cas";

async fn cas() -> &'static CasPeer {
    support::init();
    CasPeer::shared().await.unwrap_or_else(|e| panic!("{e}"))
}

fn provider(options: Value) -> Arc<dyn OAuthProvider> {
    support::create(TYPE, options, support::http()).unwrap_or_else(|e| panic!("{e}"))
}

/// Logs in at CAS through the provider's login URL and returns the callback (`ticket` and `state`).
async fn callback(
    p: &dyn OAuthProvider,
    user: &str,
    password: &str,
    state: &str,
) -> CallbackRequest {
    assert!(!p.supports_pkce());
    let url = p
        .authorization_url(&AuthorizationRequest::new(state))
        .unwrap();
    let back = peer::login(&url, user, password)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .expect("CAS accepted the password");
    assert!(back.as_str().starts_with(SERVICE), "{back}");
    CallbackRequest::from_query(back.query().unwrap_or(""))
}

#[tokio::test]
async fn cas3_login_with_attributes_then_replay() {
    let base = &cas().await.base_url;
    let p = provider(json!({"casServerURL": format!("{base}/"), "redirectURL": SERVICE}));
    let url = p
        .authorization_url(&AuthorizationRequest::new("st-1"))
        .unwrap();
    assert!(
        url.as_str().starts_with(&format!("{base}/login?service=")),
        "{url}"
    );
    let cb = callback(&*p, "alice", "alicepw", "st-1").await;
    assert_eq!(
        cb.param("state"),
        Some("st-1"),
        "state comes back inside the service URL"
    );
    assert!(cb.param("ticket").is_some_and(|t| t.starts_with("ST-")));
    let id = p.exchange(&cb).await.unwrap();
    assert_eq!(id.user_id(), "alice");
    assert_eq!(id.username.as_deref(), Some("alice"));
    assert_eq!(id.email.as_deref(), Some("alice@example.org"));
    assert_eq!(id.display_name.as_deref(), Some("Alice"));
    assert_eq!(id.groups, vec!["admins", "developers"]);
    let e = p.exchange(&cb).await.unwrap_err();
    assert!(
        e.is_bad_credentials() && e.to_string().contains("INVALID_TICKET"),
        "tickets are single-use: {e}"
    );
}

#[tokio::test]
async fn cas2_and_a_login_suffix_in_the_base_url() {
    let base = &cas().await.base_url;
    let p = provider(
        json!({"casServerURL": format!("{base}/login"), "redirectURL": SERVICE,
                            "protocolVersion": 2, "groupsAttribute": "memberOf", "emailAttribute": "email"}),
    );
    let id = p
        .exchange(&callback(&*p, "bob", "bobpw", "st-2").await)
        .await
        .unwrap();
    assert_eq!(id.user_id(), "bob");
    assert_eq!(p.public_options()["casServerURL"], json!(base));
}

#[tokio::test]
async fn bad_tickets_wrong_passwords_and_foreign_services() {
    let base = &cas().await.base_url;
    let p = provider(json!({"casServerURL": base, "redirectURL": SERVICE}));
    let e = p
        .exchange(&CallbackRequest::from_query("ticket=ST-made-up&state=s"))
        .await
        .unwrap_err();
    assert!(
        e.is_bad_credentials() && e.to_string().contains("INVALID_TICKET"),
        "{e}"
    );
    let e = p
        .exchange(&CallbackRequest::from_query("state=s"))
        .await
        .unwrap_err();
    assert!(
        e.is_bad_credentials() && e.to_string().contains("no CAS ticket"),
        "{e}"
    );
    let url = p
        .authorization_url(&AuthorizationRequest::new("s"))
        .unwrap();
    assert_eq!(
        peer::login(&url, "alice", "wrong").await.unwrap(),
        None,
        "CAS shows the form again"
    );
    // A ticket issued for the login with state A, presented with state B: another service, refused.
    let mut cb = callback(&*p, "alice", "alicepw", "A").await;
    cb.params.insert("state".into(), "B".into());
    let e = p.exchange(&cb).await.unwrap_err();
    assert!(e.is_bad_credentials(), "{e}");
}

#[tokio::test]
async fn unreachable_or_wrong_server() {
    let p = provider(
        json!({"casServerURL": format!("{}/cas", support::closed_port_url()), "redirectURL": SERVICE}),
    );
    let e = p
        .exchange(&CallbackRequest::from_query("ticket=ST-1"))
        .await
        .unwrap_err();
    assert!(
        e.is_upstream() && e.to_string().contains("could not be reached"),
        "{e}"
    );
    let base = &cas().await.base_url;
    let p = provider(json!({"casServerURL": format!("{base}/nope"), "redirectURL": SERVICE}));
    let e = p
        .exchange(&CallbackRequest::from_query("ticket=ST-1"))
        .await
        .unwrap_err();
    assert!(
        e.is_misconfigured() && e.to_string().contains("casServerURL"),
        "{e}"
    );
}

#[test]
fn option_errors_name_the_key() {
    let cases: Vec<(Value, &str)> = vec![
        (json!({"redirectURL": SERVICE}), "`casServerURL`"),
        (
            json!({"casServerURL": "cas.example.com/cas", "redirectURL": SERVICE}),
            "`casServerURL`",
        ),
        (
            json!({"casServerURL": "https://cas.example.com/cas"}),
            "`redirectURL`",
        ),
        (
            json!({"casServerURL": "https://cas.example.com/cas", "redirectURL": SERVICE, "protocolVersion": 4}),
            "`protocolVersion`",
        ),
    ];
    for (opts, needle) in cases {
        let e = support::create(TYPE, opts, support::http()).err().unwrap();
        assert!(
            e.is_misconfigured() && e.to_string().contains(needle),
            "{needle}: {e}"
        );
    }
}

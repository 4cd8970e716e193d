//! `CASIdentityProvider` against a real CAS server (`django-cas-server`, started by the tests): CAS 3 and CAS 2
//! validation, released attributes, `state` carried in the service URL, bad and replayed tickets, an unreachable
//! server, and option errors; and, against a [`ScriptedUpstream`], answers carrying DTDs and entities.

use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_idp::{AuthorizationRequest, CallbackRequest, OAuthProvider};
use portcullis_test_upstreams::peers::cas::{self as peer, CasPeer};
use portcullis_test_upstreams::{Scripted, ScriptedUpstream};
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

/// A CAS 3 success for `user` with an `email` attribute, after `prolog` (a document type
/// declaration).
fn success_after(prolog: &str, user: &str, email: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
{prolog}
<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas">
  <cas:authenticationSuccess>
    <cas:user>{user}</cas:user>
    <cas:attributes><cas:email>{email}</cas:email></cas:attributes>
  </cas:authenticationSuccess>
</cas:serviceResponse>"#
    )
}

/// The classic entity bomb: `&lol9;` expands to 10^9 `lol`s, about 3 GB.
fn billion_laughs() -> String {
    let mut dtd = String::from("<!DOCTYPE cas:serviceResponse [\n  <!ENTITY lol0 \"lol\">\n");
    for i in 1..=9 {
        let previous = format!("&lol{};", i - 1).repeat(10);
        dtd.push_str(&format!("  <!ENTITY lol{i} \"{previous}\">\n"));
    }
    dtd.push_str("]>");
    dtd
}

/// The process's peak resident set size in KiB (Linux `VmHWM`), `None` elsewhere.
fn peak_rss_kib() -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// ASVS 5.5.2: a `serviceValidate` answer with a DTD never makes Portcullis expand an entity,
/// read a file or fetch a URL. Entity references other than XML's five predefined ones (and
/// character references) are refused with an error naming the entity: external entities naming
/// `/etc/passwd` or a URL, in the user or in an attribute, an internal entity, a billion-laughs
/// bomb, and entities an external DTD or a parameter entity would define. A DTD nobody refers to
/// is skipped and the answer parses as without it. Each answer is handled in well under 5 s, the
/// process's peak memory grows by less than 64 MiB (the bomb alone would need gigabytes), and
/// the DTD and entity URLs are never requested.
#[tokio::test]
async fn dtds_and_entities_in_answers_are_never_expanded_or_fetched() {
    support::init();
    let cas = ScriptedUpstream::start().await;
    let base = cas.base_url();
    // What an attacker serves, should the parser ever fetch it.
    cas.set(
        "/evil.dtd",
        Scripted::with_type(
            "application/xml-dtd",
            r#"<!ENTITY xxe SYSTEM "file:///etc/passwd">"#,
        ),
    );
    cas.set("/xxe", Scripted::with_type("text/plain", "fetched-by-xxe"));
    let p = provider(json!({"casServerURL": base, "redirectURL": SERVICE}));
    let file_entity =
        r#"<!DOCTYPE cas:serviceResponse [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>"#;
    let url_entity =
        format!(r#"<!DOCTYPE cas:serviceResponse [<!ENTITY xxe SYSTEM "{base}/xxe">]>"#);
    let external_dtd = format!(r#"<!DOCTYPE cas:serviceResponse SYSTEM "{base}/evil.dtd">"#);
    let parameter_entity = format!(
        r#"<!DOCTYPE cas:serviceResponse [<!ENTITY % remote SYSTEM "{base}/evil.dtd"> %remote;]>"#
    );
    let internal = r#"<!DOCTYPE cas:serviceResponse [<!ENTITY who "admin">]>"#;
    let bomb = billion_laughs();
    let refused: [(&str, String, &str); 7] = [
        (
            "a file entity in the user",
            success_after(file_entity, "&xxe;", "a@example.org"),
            "&xxe;",
        ),
        (
            "a file entity in an attribute",
            success_after(file_entity, "alice", "&xxe;"),
            "&xxe;",
        ),
        (
            "a URL entity in the user",
            success_after(&url_entity, "&xxe;", "a@example.org"),
            "&xxe;",
        ),
        (
            "an internal entity",
            success_after(internal, "&who;", "a@example.org"),
            "&who;",
        ),
        (
            "a billion laughs",
            success_after(&bomb, "&lol9;", "a@example.org"),
            "&lol9;",
        ),
        (
            "an entity of an external DTD",
            success_after(&external_dtd, "&xxe;", "a@example.org"),
            "&xxe;",
        ),
        (
            "an entity of a parameter-entity DTD",
            success_after(&parameter_entity, "&xxe;", "a@example.org"),
            "&xxe;",
        ),
    ];
    let skipped: [(&str, String); 4] = [
        (
            "an unused file entity",
            success_after(file_entity, "alice", "alice@example.org"),
        ),
        (
            "an external DTD",
            success_after(&external_dtd, "alice", "alice@example.org"),
        ),
        (
            "a parameter entity naming a DTD",
            success_after(&parameter_entity, "alice", "alice@example.org"),
        ),
        (
            "an unused billion laughs",
            success_after(&bomb, "alice", "alice@example.org"),
        ),
    ];
    let rss_before = peak_rss_kib();
    let callback = CallbackRequest::from_query("ticket=ST-1&state=s");
    for (what, body, entity) in &refused {
        cas.set(
            "/p3/serviceValidate",
            Scripted::with_type("application/xml", body.as_str()),
        );
        let started = Instant::now();
        let e = p.exchange(&callback).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5), "{what}: slow");
        let m = e.to_string();
        assert!(
            e.is_upstream() && m.contains(&format!("unknown XML entity {entity}")),
            "{what}: {e}"
        );
        assert!(
            !m.contains("root:") && !m.contains("fetched-by-xxe"),
            "{what}: {e}"
        );
    }
    for (what, body) in &skipped {
        cas.set(
            "/p3/serviceValidate",
            Scripted::with_type("application/xml", body.as_str()),
        );
        let started = Instant::now();
        let id = p
            .exchange(&callback)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(started.elapsed() < Duration::from_secs(5), "{what}: slow");
        assert_eq!(id.user_id(), "alice", "{what}");
        assert_eq!(id.email.as_deref(), Some("alice@example.org"), "{what}");
    }
    if let (Some(before), Some(after)) = (rss_before, peak_rss_kib()) {
        assert!(
            after.saturating_sub(before) < 64 * 1024,
            "peak memory grew by {} KiB",
            after - before
        );
    }
    assert_eq!(
        cas.requests("/p3/serviceValidate"),
        refused.len() + skipped.len()
    );
    assert_eq!(cas.requests("/evil.dtd"), 0, "the DTD was fetched");
    assert_eq!(cas.requests("/xxe"), 0, "the entity URL was fetched");
}

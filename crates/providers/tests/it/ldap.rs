//! `LDAPIdentityProvider` against Debian's OpenLDAP `slapd` (started by the tests): plain, StartTLS and LDAPS with a
//! test CA, manager and anonymous search, groups, wrong passwords, unknown users, filter injection, empty
//! passwords, outages, and option errors.

use std::sync::Arc;

use base64::Engine as _;
use portcullis_idp::{PasswordProvider, ProviderError, ProviderOptions};
use portcullis_test_upstreams::peers::ldap::{ADMIN_DN, ADMIN_PASSWORD, Slapd};
use serde_json::{Value, json};

use crate::support;

const TYPE: &str = "LDAPIdentityProvider";

async fn slapd() -> &'static Slapd {
    support::init();
    Slapd::shared().await.unwrap_or_else(|e| panic!("{e}"))
}

fn options(host: &str) -> Value {
    json!({"host": host, "managerDN": ADMIN_DN, "managerPassword": ADMIN_PASSWORD,
           "userSearchBase": "ou=Users,dc=example,dc=org", "loginAttribute": "uid", "mailAttribute": "mail",
           "displayNameAttribute": "cn", "memberOfAttribute": "memberOf",
           "groupSearchBase": "ou=Groups,dc=example,dc=org", "groupSearchFilter": "(objectClass=posixGroup)",
           "groupMemberAttribute": "memberUid", "userMemberAttribute": "uid", "readTimeout": 5000})
}

fn create(options: Value) -> Result<Arc<dyn PasswordProvider>, ProviderError> {
    support::init();
    let options = ProviderOptions::from_value(options)?;
    let registry = portcullis_providers::builtin_registry(support::http());
    let provider = registry.create(TYPE, "ldap", &options)?;
    assert!(options.warnings().is_empty(), "{:?}", options.warnings());
    Ok(provider.as_password().expect("a password provider").clone())
}

fn provider(options: Value) -> Arc<dyn PasswordProvider> {
    create(options).unwrap_or_else(|e| panic!("{e}"))
}

#[track_caller]
fn assert_bad_credentials(result: Result<portcullis_idp::Identity, ProviderError>, needle: &str) {
    match result {
        Err(e) => assert!(
            e.is_bad_credentials() && e.to_string().contains(needle),
            "expected {needle:?}: {e}"
        ),
        Ok(id) => panic!("expected bad credentials, got {id:?}"),
    }
}

#[tokio::test]
async fn manager_search_maps_the_entry_and_groups() {
    let s = slapd().await;
    let p = provider(options(&s.host_port()));
    let alice = p.authenticate("alice", "alicepw").await.unwrap();
    assert_eq!(alice.user_id(), "alice");
    assert_eq!(alice.username.as_deref(), Some("alice"));
    assert_eq!(alice.email.as_deref(), Some("alice@example.org"));
    assert_eq!(
        alice.email_verified,
        Some(true),
        "the operator's directory counts as verified"
    );
    assert_eq!(alice.display_name.as_deref(), Some("Alice Liddell"));
    let mut groups = alice.groups.clone();
    groups.sort();
    assert_eq!(groups, vec!["admins", "developers"], "from memberOf");
    let bob = p.authenticate("BOB", "bobpw").await.unwrap();
    assert_eq!(
        bob.user_id(),
        "bob",
        "the entry's spelling, not the typed one"
    );
    let mut groups = bob.groups.clone();
    groups.sort();
    assert_eq!(
        groups,
        vec!["developers", "ops"],
        "memberOf plus the posixGroup search"
    );
    let public = p.public_options();
    assert!(
        !public.contains_key("managerPassword") && public.contains_key("managerDN"),
        "{public:?}"
    );
}

#[tokio::test]
async fn anonymous_search_and_group_search_by_dn() {
    let s = slapd().await;
    let p = provider(
        json!({"host": s.ldap_url, "userSearchBase": "dc=example,dc=org", "loginAttribute": "uid",
                            "userSearchFilter": "objectClass=inetOrgPerson",
                            "groupSearchBase": "ou=Groups,dc=example,dc=org"}),
    );
    let alice = p.authenticate("alice", "alicepw").await.unwrap();
    assert_eq!(
        alice.email.as_deref(),
        Some("alice@example.org"),
        "mailAttribute defaults to mail"
    );
    assert_eq!(alice.display_name, None);
    let mut groups = alice.groups;
    groups.sort();
    assert_eq!(
        groups,
        vec!["admins", "developers"],
        "groupOfNames whose member is the DN"
    );
}

#[tokio::test]
async fn wrong_password_unknown_user_injection_and_ambiguity() {
    let s = slapd().await;
    let p = provider(options(&s.host_port()));
    assert_bad_credentials(p.authenticate("alice", "wrong").await, "incorrect password");
    assert_bad_credentials(p.authenticate("nobody", "alicepw").await, "no user matches");
    for injection in ["*)(uid=*", "*", "alice)(|(uid=*", "alice*"] {
        assert_bad_credentials(
            p.authenticate(injection, "alicepw").await,
            "no user matches",
        );
    }
    let mut by_mail = options(&s.host_port());
    by_mail["loginAttribute"] = json!("mail");
    let p = provider(by_mail);
    assert_bad_credentials(
        p.authenticate("twins@example.org", "twinpw").await,
        "several entries",
    );
    assert_eq!(
        p.authenticate("bob@example.org", "bobpw")
            .await
            .unwrap()
            .user_id(),
        "bob@example.org"
    );
}

#[tokio::test]
async fn empty_password_is_refused_before_any_bind() {
    // Nothing listens there: a network attempt would be an upstream error, not bad credentials.
    let p = provider(options(&support::closed_port_url().replace("http://", "")));
    assert_bad_credentials(p.authenticate("alice", "").await, "empty password");
    assert_bad_credentials(p.authenticate("", "x").await, "empty user name");
    let e = p.authenticate("alice", "alicepw").await.unwrap_err();
    assert!(
        e.is_upstream() && e.to_string().contains("could not be reached"),
        "{e}"
    );
}

#[tokio::test]
async fn starttls_and_ldaps_with_the_test_ca() {
    let s = slapd().await;
    let ca_data = base64::engine::general_purpose::STANDARD.encode(&s.ca_pem);
    let mut starttls = options(&s.ldap_url);
    starttls["startTLS"] = json!(true);
    starttls["rootCAData"] = json!(ca_data);
    assert_eq!(
        provider(starttls.clone())
            .authenticate("alice", "alicepw")
            .await
            .unwrap()
            .user_id(),
        "alice"
    );
    let mut ldaps = options(&s.ldaps_url);
    ldaps["rootCA"] = json!(s.ca_path.to_str().unwrap());
    assert_eq!(
        provider(ldaps.clone())
            .authenticate("bob", "bobpw")
            .await
            .unwrap()
            .user_id(),
        "bob"
    );
    // Without the CA the system roots do not trust the server: an upstream (TLS) error, for both.
    for mut untrusted in [starttls, ldaps] {
        let obj = untrusted.as_object_mut().unwrap();
        obj.remove("rootCAData");
        obj.remove("rootCA");
        let e = provider(untrusted.clone())
            .authenticate("alice", "alicepw")
            .await
            .unwrap_err();
        assert!(e.is_upstream(), "{e}");
        untrusted["insecureSkipVerify"] = json!(true);
        assert!(
            provider(untrusted)
                .authenticate("alice", "alicepw")
                .await
                .is_ok()
        );
    }
}

#[tokio::test]
async fn misconfigured_directory_access() {
    let s = slapd().await;
    let mut wrong_manager = options(&s.host_port());
    wrong_manager["managerPassword"] = json!("not-it");
    let e = provider(wrong_manager)
        .authenticate("alice", "alicepw")
        .await
        .unwrap_err();
    assert!(
        e.is_misconfigured() && e.to_string().contains("managerPassword"),
        "{e}"
    );
    let mut wrong_base = options(&s.host_port());
    wrong_base["userSearchBase"] = json!("ou=Nope,dc=example,dc=org");
    let e = provider(wrong_base)
        .authenticate("alice", "alicepw")
        .await
        .unwrap_err();
    assert!(
        e.is_misconfigured() && e.to_string().contains("userSearchBase"),
        "{e}"
    );
}

#[tokio::test]
async fn pooled_connections_survive_concurrency_and_a_restart() {
    support::init();
    let mut own = Slapd::start().await.unwrap_or_else(|e| panic!("{e}"));
    let mut opts = options(&own.host_port());
    opts["maxConnections"] = json!(2);
    let p = provider(opts);
    let logins = (0..12).map(|i| {
        let p = p.clone();
        tokio::spawn(async move {
            let (user, pw) = if i % 2 == 0 {
                ("alice", "alicepw")
            } else {
                ("bob", "bobpw")
            };
            p.authenticate(user, pw)
                .await
                .map(|id| id.user_id().to_owned())
        })
    });
    for login in logins.collect::<Vec<_>>() {
        assert!(login.await.unwrap().is_ok());
    }
    own.stop();
    let e = p.authenticate("alice", "alicepw").await.unwrap_err();
    assert!(e.is_upstream(), "server down: {e}");
    own.restart().unwrap_or_else(|e| panic!("{e}"));
    // The pooled connections died with the old process; fresh ones are opened.
    assert_eq!(
        p.authenticate("alice", "alicepw").await.unwrap().user_id(),
        "alice"
    );
}

#[tokio::test]
async fn read_timeout_is_an_upstream_error() {
    // A socket that accepts connections (the kernel's backlog) but never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut opts = options(&silent.local_addr().unwrap().to_string());
    opts["readTimeout"] = json!(300);
    let e = provider(opts)
        .authenticate("alice", "alicepw")
        .await
        .unwrap_err();
    assert!(
        e.is_upstream() && e.to_string().contains("readTimeout"),
        "{e}"
    );
}

#[test]
fn option_errors_name_the_key() {
    let base = options("ldap.example.com");
    let cases: Vec<(Value, &str)> = vec![
        (json!({"host": null}), "`host`"),
        (json!({"host": "http://ldap.example.com"}), "`host`"),
        (
            json!({"host": "ldaps://ldap.example.com", "startTLS": true}),
            "`startTLS: true`",
        ),
        (json!({"userSearchBase": null}), "`userSearchBase`"),
        (json!({"loginAttribute": null}), "`loginAttribute`"),
        (json!({"userSearchFilter": "(&(a=b)"}), "`userSearchFilter`"),
        (json!({"groupSearchFilter": "(("}), "`groupSearchFilter`"),
        (json!({"managerPassword": null}), "`managerPassword`"),
        (
            json!({"rootCA": "/nonexistent/ca.pem", "startTLS": true}),
            "`rootCA`",
        ),
        (
            json!({"rootCAData": "!!not base64!!", "startTLS": true}),
            "`rootCAData`",
        ),
        (json!({"readTimeout": "soon"}), "`readTimeout`"),
        (json!({"maxConnections": 0}), "`maxConnections`"),
    ];
    for (patch, needle) in cases {
        let mut opts = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                opts.as_object_mut().unwrap().remove(k);
            } else {
                opts[k] = v.clone();
            }
        }
        let e = create(opts).err().unwrap();
        assert!(
            e.is_misconfigured() && e.to_string().contains(needle),
            "{needle}: {e}"
        );
    }
}

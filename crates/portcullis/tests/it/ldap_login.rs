//! Password logins through a real LDAP server (Debian's slapd, started by the test): LDAP users
//! log in with the password grant (auto mapping creates them once), wrong LDAP passwords count
//! towards the lockout, and an LDAP outage never blocks local accounts.

use portcullis_test_upstreams::peers::ldap::{ADMIN_DN, ADMIN_PASSWORD as LDAP_ADMIN_PW, Slapd};

use crate::common::*;

pub fn ldap_config(host: &str) -> String {
    format!(
        r#"{}    identityProviders:
    - name: corp-ldap
      type: LDAPIdentityProvider
      mappingMethod: auto
      allowedGroups: [developers]
      groupsPrefix: "ldap:"
      provider:
        host: {host}
        managerDN: "{ADMIN_DN}"
        managerPassword: "{LDAP_ADMIN_PW}"
        userSearchBase: ou=Users,dc=example,dc=org
        loginAttribute: uid
        mailAttribute: mail
        memberOfAttribute: memberOf
        readTimeout: 2000
"#,
        config(true)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn ldap_password_login_lockout_and_outage() {
    let mut slapd = Slapd::start()
        .await
        .expect("slapd starts (run crates/test-upstreams/peers/ci-install.sh)");
    let b = backend(false).await;
    let server = start(Some(ldap_config(&slapd.host_port())), &b);
    add_user(&server, &["local", "--password", "local-Passw0rd"]);

    // First LDAP login creates the user (auto mapping); the LDAP groups (memberOf) reach the
    // token and TokenReview with the provider's prefix.
    let (status, _, body) = password_login(&server, "alice", "alicepw").await;
    assert_eq!(status, 200, "{body}");
    let st = review(&server, body["access_token"].as_str().unwrap()).await;
    assert_eq!(st["user"]["username"], "alice");
    assert_eq!(st["user"]["extra"]["email"][0], "alice@example.org");
    let mut groups: Vec<String> = serde_json::from_value(st["user"]["groups"].clone()).unwrap();
    groups.sort();
    assert_eq!(groups, ["ldap:admins", "ldap:developers"], "{st}");
    // twin1 has the right password but is in no allowed group: refused like a wrong password,
    // and no user is created.
    let (status, _, body) = password_login(&server, "twin1", "twinpw").await;
    assert_eq!(status, 400, "{body}");
    let out = server.cli(&["user", "show", "twin1"]).unwrap();
    assert!(!out.status.success(), "no user was created for twin1");
    // Repeat login finds the link; no second user.
    assert_eq!(password_login(&server, "alice", "alicepw").await.0, 200);
    let out = server
        .cli(&["user", "show", "alice", "-o", "json"])
        .unwrap();
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["identities"][0]["provider"], "corp-ldap");

    // Wrong LDAP passwords count towards the lockout (limit 3 in the test config).
    for _ in 0..3 {
        assert_eq!(password_login(&server, "bob", "wrong").await.0, 400);
    }
    assert_eq!(password_login(&server, "bob", "bobpw").await.0, 429);

    // An LDAP outage: LDAP logins fail cleanly, local accounts keep working.
    slapd.stop();
    assert_eq!(
        password_login(&server, "local", "local-Passw0rd").await.0,
        200
    );
    let (status, _, body) = password_login(&server, "alice", "alicepw").await;
    assert_eq!(status, 400, "{body}");
    // It comes back by itself.
    slapd.restart().unwrap();
    portcullis_test_support::eventually(
        std::time::Duration::from_secs(15),
        "LDAP login after restart",
        || async { (password_login(&server, "alice", "alicepw").await.0 == 200).then_some(()) },
    )
    .await
    .unwrap();
}

/// `mappingMethod: manual` through the password grant (the console's only path for LDAP): an
/// unlinked LDAP user gets KubeSphere's pre-registration tokens, the console creates the user,
/// and the refresh grant then yields that user's tokens, with the LDAP groups of the login.
#[tokio::test(flavor = "multi_thread")]
async fn ldap_manual_mapping_goes_through_pre_registration() {
    let slapd = Slapd::start()
        .await
        .expect("slapd starts (run crates/test-upstreams/peers/ci-install.sh)");
    let b = backend(false).await;
    let cfg =
        ldap_config(&slapd.host_port()).replace("mappingMethod: auto", "mappingMethod: manual");
    let server = start(Some(cfg), &b);

    let (status, _, body) = password_login(&server, "alice", "alicepw").await;
    assert_eq!(status, 200, "{body}");
    let pre_access = body["access_token"].as_str().unwrap().to_owned();
    let pre_refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let st = review(&server, &pre_access).await;
    assert_eq!(st["user"]["username"], "system:pre-registration", "{st}");
    assert_eq!(st["user"]["extra"]["idp"][0], "corp-ldap");
    assert_eq!(st["user"]["extra"]["username"][0], "alice");

    let resp = http()
        .post(server.url("/kapis/iam.kubesphere.io/v1alpha2/users"))
        .bearer_auth(&pre_access)
        .json(&serde_json::json!({
            "apiVersion": "iam.kubesphere.io/v1alpha2", "kind": "User",
            "metadata": {"name": "alice-l"}, "spec": {"email": "alice@example.org"}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());

    let (status, _, body) = token(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &pre_refresh),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let st = review(&server, body["access_token"].as_str().unwrap()).await;
    assert_eq!(st["user"]["username"], "alice-l", "{st}");
    let mut groups: Vec<String> = serde_json::from_value(st["user"]["groups"].clone()).unwrap();
    groups.sort();
    assert_eq!(groups, ["ldap:admins", "ldap:developers"], "{st}");

    // The next password login finds the link and logs in directly.
    let (status, _, body) = password_login(&server, "alice", "alicepw").await;
    assert_eq!(status, 200, "{body}");
    let st = review(&server, body["access_token"].as_str().unwrap()).await;
    assert_eq!(st["user"]["username"], "alice-l", "{st}");
}

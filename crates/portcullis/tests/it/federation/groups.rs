//! Upstream groups (issue 5): what a provider reports reaches the tokens and TokenReview, survives
//! a refresh, is filtered by `allowedGroups`, prefixed by `groupsPrefix`, and never carries a
//! `system:` group. Driven through the generic OAuth 2.0 provider (YAML only) against the fake
//! Gitea, on ks-console's path so the refresh token is visible.

use portcullis_test_upstreams::{FakeGitHub, FakeOAuth2, FakeUser, Flavor};
use serde_json::json;

use super::*;

fn gitea_entry(fake: &FakeOAuth2, name: &str, mapping_extra: &str) -> String {
    format!(
        r#"    - name: {name}
      type: OAuth2IdentityProvider
      mappingMethod: auto
{mapping_extra}      provider:
        clientID: "{}"
        clientSecret: "{}"
        redirectURL: "{CONSOLE}/oauth/redirect/{name}"
        authURL: "{}"
        tokenURL: "{}"
        userInfoURL: "{}"
        clientAuthStyle: basic
        pkce: false
        claims:
          userID: /id
          username: /login
          email: /email
          groups: /groups
"#,
        fake.client_id(),
        fake.client_secret(),
        fake.auth_url(),
        fake.token_url(),
        fake.user_info_url()
    )
}

fn user(id: u64, login: &str, groups: &[&str]) -> FakeUser {
    FakeUser {
        id,
        login: login.into(),
        name: login.into(),
        email: format!("{login}@gitea.example"),
        email_verified: true,
        extra: json!({ "groups": groups }),
    }
}

/// ks-console's path: authorize at the fake as `login_as`, then the cookie-less callback.
async fn console_login(server: &Server, fake: &FakeOAuth2, name: &str, login_as: u64) -> Hop {
    console_login_at(server, &fake.auth_url(), &fake.client_id(), name, login_as).await
}

async fn console_login_at(
    server: &Server,
    auth_url: &str,
    client_id: &str,
    name: &str,
    login_as: u64,
) -> Hop {
    let redirect = format!("{CONSOLE}/oauth/redirect/{name}");
    let resp = http()
        .get(auth_url)
        .query(&[
            ("state", name),
            ("client_id", client_id),
            ("response_type", "code"),
            ("redirect_uri", &redirect),
            ("scope", "user:email read:org"),
            ("login_as", &login_as.to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let location = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("a code");
    super::console::console_callback(server, name, &format!("code={code}&state={name}")).await
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_groups_reach_tokens_review_and_refresh() {
    let fake = FakeOAuth2::start(Flavor::Gitea).await;
    fake.add_user(user(7, "dana", &["dev", "ops", "dev"]));
    let b = backend(false).await;
    let extra = "      allowedGroups: [dev, admins]\n      groupsPrefix: \"gitea:\"\n";
    let server = start(Some(yaml(&[gitea_entry(&fake, "gitea", extra)])), &b);

    let hop = console_login(&server, &fake, "gitea", 7).await;
    assert_eq!(hop.status, 200, "{}", hop.body);
    let body = hop.json();
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(claims(access)["groups"], json!(["gitea:dev", "gitea:ops"]));
    let status = review(&server, access).await;
    assert_eq!(status["authenticated"], true, "{status}");
    assert_eq!(status["user"]["username"], "dana");
    assert_eq!(status["user"]["groups"], json!(["gitea:dev", "gitea:ops"]));

    // A refreshed pair carries the login's groups too.
    let (code, _, refreshed) = token(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", body["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(code, 200, "{refreshed}");
    let access2 = refreshed["access_token"].as_str().unwrap();
    assert_eq!(claims(access2)["groups"], json!(["gitea:dev", "gitea:ops"]));

    // Upstream groups are not written into the user's own groups: an admin's change there
    // and the provider's groups are kept apart.
    let shown = show_user(&server, "dana").unwrap();
    assert_eq!(shown["groups"], json!([]), "{shown}");
}

#[tokio::test(flavor = "multi_thread")]
async fn allowed_groups_refuse_outsiders_before_creating_anything() {
    let fake = FakeOAuth2::start(Flavor::Gitea).await;
    fake.add_user(user(8, "eve", &["guests"]));
    fake.add_user(user(9, "nogroups", &[]));
    let b = backend(false).await;
    let extra = "      allowedGroups: [dev]\n";
    let server = start(Some(yaml(&[gitea_entry(&fake, "gitea", extra)])), &b);

    for (id, login) in [(8, "eve"), (9, "nogroups")] {
        let hop = console_login(&server, &fake, "gitea", id).await;
        assert_eq!(hop.status, 401, "{}", hop.body);
        assert_eq!(hop.json()["error"], "access_denied", "{}", hop.body);
        assert!(
            hop.body.contains("not in a group that may log in"),
            "{}",
            hop.body
        );
        assert!(!user_names(&server).contains(&login.to_owned()));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn system_groups_from_upstream_are_dropped() {
    let fake = FakeOAuth2::start(Flavor::Gitea).await;
    fake.add_user(user(10, "mallory", &["system:masters", "dev"]));
    let b = backend(false).await;
    let server = start(Some(yaml(&[gitea_entry(&fake, "gitea", "")])), &b);
    let hop = console_login(&server, &fake, "gitea", 10).await;
    assert_eq!(hop.status, 200, "{}", hop.body);
    let access = hop.json()["access_token"].as_str().unwrap().to_owned();
    let status = review(&server, &access).await;
    assert_eq!(status["user"]["groups"], json!(["dev"]), "{status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_system_prefix_is_refused_at_start() {
    let fake = FakeOAuth2::start(Flavor::Gitea).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kubesphere.yaml");
    let extra = "      groupsPrefix: \"system:\"\n";
    std::fs::write(&file, yaml(&[gitea_entry(&fake, "gitea", extra)])).unwrap();
    let out = std::process::Command::new(bin())
        .args(["check-config", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("identityProviders[0].groupsPrefix") && err.contains("reserved"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn github_teams_become_groups_and_gate_the_login() {
    let gh = FakeGitHub::start().await;
    gh.add_user(201, "octocat", Some("octo@github.example"), vec![]);
    gh.set_orgs(201, &["acme"]);
    gh.set_teams(201, &[("acme", "platform"), ("acme", "web")]);
    gh.add_user(202, "outsider", Some("out@github.example"), vec![]);
    gh.set_teams(202, &[("other", "platform")]);
    let b = backend(false).await;
    let redirect = format!("{CONSOLE}/oauth/redirect/github");
    let extra = "      allowedGroups: [acme/platform]\n      groupsPrefix: \"github:\"\n";
    let entry = github(&gh, "github", "auto", Some(&redirect), extra).replace(
        "        scopes: [user:email]\n",
        "        scopes: [user:email, read:org]\n        groups: orgsAndTeams\n",
    );
    let server = start(Some(yaml(&[entry])), &b);

    let hop = console_login_at(&server, &gh.auth_url(), &gh.client_id(), "github", 201).await;
    assert_eq!(hop.status, 200, "{}", hop.body);
    let access = hop.json()["access_token"].as_str().unwrap().to_owned();
    let status = review(&server, &access).await;
    assert_eq!(
        status["user"]["groups"],
        json!(["github:acme", "github:acme/platform", "github:acme/web"]),
        "{status}"
    );

    let hop = console_login_at(&server, &gh.auth_url(), &gh.client_id(), "github", 202).await;
    assert_eq!(hop.status, 401, "{}", hop.body);
    assert!(!user_names(&server).contains(&"outsider".to_owned()));
}

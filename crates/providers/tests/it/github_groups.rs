//! GitHub organisations and teams as groups (option `groups`): what each value reads, GitHub's pagination, and
//! that any failure to read a configured list fails the login (fail closed), against the fake GitHub.

use portcullis_idp::{Identity, ProviderError, ProviderOptions};
use portcullis_providers::github::{MAX_PAGES, PER_PAGE};
use portcullis_test_upstreams::{FakeGitHub, Mode, RecordedRequest};
use serde_json::{Value, json};

use crate::support;

fn options(f: &FakeGitHub, scopes: &[&str], groups: Option<&str>) -> Value {
    let mut o = json!({"clientID": f.client_id(), "clientSecret": f.client_secret(),
           "redirectURL": "https://console.example/oauth/redirect/github", "scopes": scopes,
           "endpoint": {"authURL": f.auth_url(), "tokenURL": f.token_url(), "userInfoURL": f.user_info_url()}});
    if let Some(g) = groups {
        o["groups"] = json!(g);
    }
    o
}

async fn login(opts: Value, user: u64) -> Result<Identity, ProviderError> {
    let p = support::create("GitHubIdentityProvider", opts, support::http()).unwrap();
    support::login(&*p, &[("login_as", &user.to_string())]).await
}

/// A user in two organisations and three teams.
async fn fake_with_member() -> FakeGitHub {
    let f = FakeGitHub::start().await;
    f.add_user(1, "octocat", None, vec![]);
    f.set_orgs(1, &["acme", "Widgets-Inc"]);
    f.set_teams(
        1,
        &[("acme", "dev"), ("Widgets-Inc", "ops"), ("acme", "admins")],
    );
    f
}

fn group_requests(f: &FakeGitHub) -> Vec<RecordedRequest> {
    f.requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/orgs") || r.path.ends_with("/teams"))
        .collect()
}

#[tokio::test]
async fn orgs_only() {
    let f = fake_with_member().await;
    let id = login(options(&f, &["read:org"], Some("orgs")), 1)
        .await
        .unwrap();
    assert_eq!(
        id.groups,
        vec!["acme", "Widgets-Inc"],
        "GitHub's order and case"
    );
    let paths: Vec<String> = group_requests(&f).into_iter().map(|r| r.path).collect();
    assert_eq!(paths, vec!["/user/orgs"], "teams are not read");
}

#[tokio::test]
async fn teams_only() {
    let f = fake_with_member().await;
    let id = login(options(&f, &["read:org"], Some("teams")), 1)
        .await
        .unwrap();
    assert_eq!(
        id.groups,
        vec!["acme/dev", "Widgets-Inc/ops", "acme/admins"]
    );
    let paths: Vec<String> = group_requests(&f).into_iter().map(|r| r.path).collect();
    assert_eq!(paths, vec!["/user/teams"], "organisations are not read");
}

#[tokio::test]
async fn orgs_and_teams_in_order_without_duplicates() {
    let f = fake_with_member().await;
    f.set_orgs(1, &["acme", "Widgets-Inc", "acme"]);
    // Option key and value are case-insensitive.
    let mut opts = options(&f, &["read:org"], None);
    opts["GROUPS"] = json!("ORGSANDTEAMS");
    let id = login(opts, 1).await.unwrap();
    assert_eq!(
        id.groups,
        vec![
            "acme",
            "Widgets-Inc",
            "acme/dev",
            "Widgets-Inc/ops",
            "acme/admins"
        ]
    );
    // The rest of the identity is unchanged.
    assert_eq!(
        (id.user_id(), id.username.as_deref()),
        ("1", Some("octocat"))
    );

    // A member of nothing logs in with no groups.
    f.add_user(2, "loner", None, vec![]);
    let id = login(options(&f, &["read:org"], Some("orgsAndTeams")), 2)
        .await
        .unwrap();
    assert!(id.groups.is_empty(), "{:?}", id.groups);
}

#[tokio::test]
async fn none_makes_no_extra_request() {
    let f = fake_with_member().await;
    for groups in [None, Some("none"), Some("")] {
        let id = login(options(&f, &["read:org"], groups), 1).await.unwrap();
        assert!(id.groups.is_empty(), "{groups:?}: {:?}", id.groups);
    }
    assert!(group_requests(&f).is_empty(), "{:?}", group_requests(&f));
    assert_eq!(
        f.requests().iter().filter(|r| r.path == "/user").count(),
        3,
        "three logins happened"
    );
}

#[tokio::test]
async fn pagination_follows_the_link_header() {
    let f = fake_with_member().await;
    let orgs: Vec<String> = (0..150).map(|i| format!("org-{i:03}")).collect();
    let teams: Vec<(String, String)> = (0..250).map(|i| ("acme".into(), format!("t{i}"))).collect();
    f.set_orgs(1, &orgs.iter().map(String::as_str).collect::<Vec<_>>());
    let team_refs: Vec<(&str, &str)> = teams
        .iter()
        .map(|(o, t)| (o.as_str(), t.as_str()))
        .collect();
    f.set_teams(1, &team_refs);
    let id = login(options(&f, &["read:org"], Some("orgsAndTeams")), 1)
        .await
        .unwrap();
    let mut expected = orgs.clone();
    expected.extend(teams.iter().map(|(o, t)| format!("{o}/{t}")));
    assert_eq!(id.groups, expected);

    let requests = group_requests(&f);
    let pages: Vec<(&str, Option<&str>, Option<&str>)> = requests
        .iter()
        .map(|r| {
            let p = |k: &str| r.params.get(k).map(String::as_str);
            (r.path.as_str(), p("per_page"), p("page"))
        })
        .collect();
    assert_eq!(
        pages,
        vec![
            ("/user/orgs", Some("100"), None),
            ("/user/orgs", Some("100"), Some("2")),
            ("/user/teams", Some("100"), None),
            ("/user/teams", Some("100"), Some("2")),
            ("/user/teams", Some("100"), Some("3")),
        ]
    );
    assert_eq!(PER_PAGE, 100);
    for r in &requests {
        assert!(r.headers["authorization"].starts_with("Bearer "), "{r:?}");
        assert!(r.headers["user-agent"].starts_with("Portcullis"), "{r:?}");
        assert_eq!(r.headers["accept"], "application/vnd.github+json");
        assert_eq!(r.headers["x-github-api-version"], "2022-11-28");
    }
}

#[tokio::test]
async fn enterprise_lists_sit_beside_user_info() {
    let f = fake_with_member().await;
    let orgs: Vec<String> = (0..101).map(|i| format!("o{i}")).collect();
    f.set_orgs(1, &orgs.iter().map(String::as_str).collect::<Vec<_>>());
    let mut opts = options(&f, &["read:org"], Some("orgsAndTeams"));
    opts["endpoint"]["userInfoURL"] = json!(f.enterprise_user_info_url());
    let id = login(opts, 1).await.unwrap();
    assert_eq!(id.groups.len(), 101 + 3);
    let paths: Vec<String> = group_requests(&f).into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        vec![
            "/api/v3/user/orgs",
            "/api/v3/user/orgs",
            "/api/v3/user/teams"
        ]
    );
}

#[tokio::test]
async fn more_pages_than_the_bound_fail_the_login() {
    let f = fake_with_member().await;
    let orgs: Vec<String> = (0..MAX_PAGES * 100 + 1).map(|i| format!("o{i}")).collect();
    f.set_orgs(1, &orgs.iter().map(String::as_str).collect::<Vec<_>>());
    let r = login(options(&f, &["read:org"], Some("orgs")), 1).await;
    support::assert_upstream(r, "GitHub /user/orgs has more than 20 pages of 100 entries");
    assert_eq!(group_requests(&f).len(), MAX_PAGES, "stops at the bound");

    // Exactly at the bound is fine.
    f.set_orgs(
        1,
        &orgs[..MAX_PAGES * 100]
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let id = login(options(&f, &["read:org"], Some("orgs")), 1)
        .await
        .unwrap();
    assert_eq!(id.groups.len(), MAX_PAGES * 100);
}

#[tokio::test]
async fn missing_scope_fails_the_login_with_a_hint() {
    let f = fake_with_member().await;
    let r = login(options(&f, &["user:email"], Some("orgs")), 1).await;
    support::assert_upstream(
        r,
        "GitHub /user/orgs answered HTTP 403: You need at least read:org scope",
    );
    let r = login(options(&f, &[], Some("teams")), 1).await;
    support::assert_upstream(
        r,
        "needs the OAuth scope `read:org`: add it to the provider's `scopes`",
    );
    let e = login(options(&f, &[], Some("orgsAndTeams")), 1)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("/user/orgs answered HTTP 403"),
        "{e}"
    );

    // GitHub also lists them for the broader `user` scope.
    let id = login(options(&f, &["user"], Some("orgsAndTeams")), 1)
        .await
        .unwrap();
    assert_eq!(id.groups.len(), 5);
}

#[tokio::test]
async fn api_failures_fail_the_login_with_clear_errors() {
    let f = fake_with_member().await;
    let cases = [
        (Mode::Error500, "GitHub /user/orgs answered HTTP 500"),
        (Mode::Html, "GitHub /user/orgs answered an HTML page"),
        (Mode::Garbage, "GitHub /user/orgs answered malformed JSON"),
    ];
    for (mode, needle) in cases {
        f.set_groups_mode(mode);
        let r = login(options(&f, &["read:org"], Some("orgs")), 1).await;
        let e = r.as_ref().map(|_| ()).unwrap_err().to_string();
        support::assert_upstream(r, needle);
        assert!(e.contains("`read:org`"), "{mode:?}: {e}");
    }
    f.set_groups_mode(Mode::Error500);
    let r = login(options(&f, &["read:org"], Some("teams")), 1).await;
    support::assert_upstream(r, "GitHub /user/teams answered HTTP 500");

    // An expired or revoked token on the list (the fake knows no other token) is a 401.
    f.set_groups_mode(Mode::Normal);
    let raw = support::http()
        .get(format!("{}/user/orgs", f.base_url()))
        .bearer_auth("gho_revoked")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 401);

    // Without `groups`, a broken list endpoint does not matter.
    f.set_groups_mode(Mode::Error500);
    assert!(login(options(&f, &["read:org"], None), 1).await.is_ok());
}

#[tokio::test]
async fn bad_option_values_are_misconfigured() {
    let f = FakeGitHub::start().await;
    for bad in [json!("members"), json!(["orgs"]), json!({"orgs": true})] {
        let mut opts = options(&f, &["read:org"], None);
        opts["groups"] = bad.clone();
        let e = support::create("GitHubIdentityProvider", opts, support::http())
            .err()
            .expect("refused");
        assert!(
            e.is_misconfigured() && e.to_string().contains("`groups`"),
            "{bad}: {e}"
        );
    }
    let mut opts = options(&f, &[], None);
    opts["groups"] = json!("members");
    let e = support::create("GitHubIdentityProvider", opts, support::http())
        .err()
        .expect("refused");
    assert_eq!(
        e.to_string(),
        "misconfigured: option `groups` must be one of `none`, `orgs`, `teams`, `orgsAndTeams`, found \"members\""
    );

    // A valid value is a known key: no "unknown option" warning.
    let options = ProviderOptions::from_value(options(&f, &["read:org"], Some("teams"))).unwrap();
    portcullis_providers::builtin_registry(support::http())
        .create("GitHubIdentityProvider", "gh", &options)
        .unwrap();
    assert!(
        options.unknown_keys().is_empty(),
        "{:?}",
        options.unknown_keys()
    );
}

#[tokio::test]
async fn the_fake_answers_as_github_documents() {
    let f = fake_with_member().await;
    let orgs: Vec<String> = (0..65).map(|i| format!("o{i}")).collect();
    f.set_orgs(1, &orgs.iter().map(String::as_str).collect::<Vec<_>>());
    let token = |scope: &str| {
        let code = f.issue_code(1, None, scope, None);
        let f = f.clone();
        async move {
            let answer: Value = support::http()
                .post(f.token_url())
                .header("accept", "application/json")
                .form(&[
                    ("client_id", f.client_id()),
                    ("client_secret", f.client_secret()),
                    ("code", code),
                ])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            answer["access_token"].as_str().unwrap().to_owned()
        }
    };
    let get = |path: String, token: String| async move {
        support::http()
            .get(path)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    };
    let good = token("read:org").await;

    // Default page size 30: page 2 of 3 links to prev, next, last and first.
    let resp = get(format!("{}/user/orgs?page=2", f.base_url()), good.clone()).await;
    let base = f.base_url();
    assert_eq!(
        resp.headers()["link"].to_str().unwrap(),
        format!(
            "<{base}/user/orgs?per_page=30&page=1>; rel=\"prev\", <{base}/user/orgs?per_page=30&page=3>; rel=\"next\", \
             <{base}/user/orgs?per_page=30&page=3>; rel=\"last\", <{base}/user/orgs?per_page=30&page=1>; rel=\"first\""
        )
    );
    let page: Value = resp.json().await.unwrap();
    assert_eq!(page.as_array().unwrap().len(), 30);
    assert_eq!(page[0]["login"], "o30");
    assert!(page[0]["id"].is_u64() && page[0]["url"] == format!("{base}/orgs/o30"));

    // per_page above 100 is capped; the last page has no `next`.
    let resp = get(
        format!("{}/user/orgs?per_page=500", f.base_url()),
        good.clone(),
    )
    .await;
    assert!(resp.headers().get("link").is_none());
    assert_eq!(
        resp.json::<Value>()
            .await
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        65
    );

    let teams: Value = get(format!("{}/api/v3/user/teams", f.base_url()), good.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            &teams[0]["slug"],
            &teams[0]["name"],
            &teams[0]["organization"]["login"]
        ),
        (&json!("dev"), &json!("dev"), &json!("acme"))
    );
    assert!(teams[0]["id"].is_u64() && teams[0]["organization"]["id"].is_u64());

    // Without the scope: 403 with GitHub's JSON message.
    let resp = get(
        format!("{}/user/orgs", f.base_url()),
        token("user:email").await,
    )
    .await;
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["message"],
        "You need at least read:org scope or user scope to list your organizations."
    );
    assert!(
        body["documentation_url"]
            .as_str()
            .unwrap()
            .starts_with("https://docs.github.com/")
    );
}

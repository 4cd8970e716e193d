//! The pages of the browser path: the confirm step of `manual` mapping, the login page with
//! hidden and disabled providers, and the public provider listing.

use portcullis_test_upstreams::{FakeGitHub, FakeIdaas, Mode};

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn manual_registration_through_the_confirm_page() {
    let gh = FakeGitHub::start().await;
    gh.add_user(55, "MonaLisa", Some("mona@github.example"), vec![]);
    gh.login_as(55);
    let b = backend(false).await;
    let server = start(
        Some(yaml(&[github(
            &gh,
            "github",
            "manual",
            Some(&callback_url("github")),
            "",
        )])),
        &b,
    );
    let mut browser = Browser::new(&server);

    let hops = browser.follow(&format!("{PUBLIC}/login/github")).await;
    assert_eq!(hops[2].status, 303);
    assert_eq!(
        hops[2].location().as_deref(),
        Some("http://portcullis.test/login/confirm")
    );
    let reg_cookie = hops[2].set_cookie("portcullis_registration").unwrap();
    assert!(
        reg_cookie.contains("Path=/login/confirm; HttpOnly; SameSite=Lax"),
        "{reg_cookie}"
    );
    let form = hops.last().unwrap();
    assert_eq!(form.status, 200);
    assert_eq!(
        form.header("content-security-policy"),
        "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'"
    );
    assert!(form.body.contains("value=\"monalisa\""), "{}", form.body);
    assert!(
        form.body.contains("value=\"mona@github.example\""),
        "{}",
        form.body
    );
    let csrf = Browser::form_csrf(form);
    assert_eq!(
        user_names(&server),
        vec!["admin"],
        "nothing is created before the confirmation"
    );

    let url = format!("{PUBLIC}/login/confirm");
    let bad_csrf = browser
        .post_form(&url, &[("csrf_token", "forged"), ("name", "mona")])
        .await;
    assert_eq!(bad_csrf.status, 400);
    assert!(
        bad_csrf.body.contains("security token does not match"),
        "{}",
        bad_csrf.body
    );
    let bad_name = browser
        .post_form(&url, &[("csrf_token", &csrf), ("name", "Mona Lisa")])
        .await;
    assert_eq!(bad_name.status, 400);
    assert!(
        bad_name
            .body
            .contains("may only contain lower-case letters"),
        "{}",
        bad_name.body
    );
    assert!(
        bad_name.body.contains("value=\"Mona Lisa\""),
        "the form keeps the input"
    );
    let taken = browser
        .post_form(&url, &[("csrf_token", &csrf), ("name", "admin")])
        .await;
    assert_eq!(taken.status, 409);
    assert!(
        taken
            .body
            .contains("The user name “admin” is already taken"),
        "{}",
        taken.body
    );
    let bad_email = browser
        .post_form(
            &url,
            &[
                ("csrf_token", &csrf),
                ("name", "mona"),
                ("email", "not-an-email"),
            ],
        )
        .await;
    assert_eq!(bad_email.status, 400);
    assert_eq!(user_names(&server), vec!["admin"]);

    let done = browser
        .post_form(
            &url,
            &[
                ("csrf_token", &csrf),
                ("name", "mona"),
                ("email", "mona@example.org"),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let hops = browser.follow_from(done).await;
    signed_in_as(&hops, "mona");
    let user = show_user(&server, "mona").unwrap();
    assert_eq!(user["email"], "mona@example.org");
    assert_eq!(user["identities"][0]["uid"], "55");

    // The registration was used up.
    let replay = browser
        .post_form(&url, &[("csrf_token", &csrf), ("name", "mona2")])
        .await;
    assert_eq!(replay.status, 400);
    assert!(
        replay.body.contains("no registration in progress"),
        "{}",
        replay.body
    );
    assert_eq!(user_names(&server), vec!["admin", "mona"]);

    // Next time: straight in.
    let hops = Browser::new(&server)
        .follow(&format!("{PUBLIC}/login/github"))
        .await;
    signed_in_as(&hops, "mona");
}

/// Posts `name` on the confirm page of a fresh `manual` login in `browser`; returns the answer.
async fn confirm_as(browser: &mut Browser, name: &str) -> Hop {
    let hops = browser.follow(&format!("{PUBLIC}/login/github")).await;
    let form = hops.last().unwrap();
    assert_eq!(form.status, 200, "{}", form.body);
    let csrf = Browser::form_csrf(form);
    browser
        .post_form(
            &format!("{PUBLIC}/login/confirm"),
            &[("csrf_token", &csrf), ("name", name)],
        )
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn engine_messages_follow_the_page_language() {
    let gh = FakeGitHub::start().await;
    gh.add_user(77, "Zhang", None, vec![]);
    gh.login_as(77);
    let b = backend(false).await;
    let server = start(
        Some(yaml(&[github(
            &gh,
            "github",
            "manual",
            Some(&callback_url("github")),
            "",
        )])),
        &b,
    );
    let mut zh = Browser::with_language(&server, "zh-CN,zh;q=0.9,en;q=0.5");
    let mut en = Browser::with_language(&server, "en-US,en;q=0.9");

    // The confirm page: a taken name and an invalid one, in each language.
    let taken = confirm_as(&mut zh, "admin").await;
    assert_eq!(taken.status, 409);
    assert!(
        taken.body.contains("<html lang=\"zh-CN\">"),
        "{}",
        taken.body
    );
    assert!(
        taken.body.contains("用户名“admin”已被占用，请另选一个。"),
        "{}",
        taken.body
    );
    assert!(!taken.body.contains("is taken"), "{}", taken.body);
    let invalid = confirm_as(&mut zh, "Zhang San").await;
    assert_eq!(invalid.status, 400);
    assert!(
        invalid
            .body
            .contains("用户名“Zhang San”只能包含小写字母、数字、“-”、“_”和“.”。"),
        "{}",
        invalid.body
    );
    let taken = confirm_as(&mut en, "admin").await;
    assert_eq!(taken.status, 409);
    assert!(
        taken
            .body
            .contains("The user name “admin” is already taken; choose another."),
        "{}",
        taken.body
    );
    let invalid = confirm_as(&mut en, "Zhang San").await;
    assert!(
        invalid.body.contains(
            "The user name “Zhang San” may only contain lower-case letters, digits, “-”, “_” and “.”."
        ),
        "{}",
        invalid.body
    );
    assert_eq!(user_names(&server), vec!["admin"]);

    // The error page of a failed provider.
    gh.set_token_mode(Mode::Error500);
    let zh_page = zh.follow(&format!("{PUBLIC}/login/github")).await;
    let zh_page = zh_page.last().unwrap();
    assert_eq!(zh_page.status, 502);
    for text in [
        "身份提供方未正确响应",
        "身份提供方“github”未正确响应（无法连接、响应过慢或应答无效）。",
        "请求 ID",
    ] {
        assert!(zh_page.body.contains(text), "{text}: {}", zh_page.body);
    }
    assert!(!zh_page.body.contains("did not answer"), "{}", zh_page.body);
    let en_page = en.follow(&format!("{PUBLIC}/login/github")).await;
    let en_page = en_page.last().unwrap();
    assert_eq!(en_page.status, 502);
    assert!(
        en_page.body.contains(
            "The identity provider “github” did not answer correctly (unreachable, too slow, or an invalid answer)."
        ),
        "{}",
        en_page.body
    );
    // The login records keep the engine's English, whatever the page's language.
    let recs = records(&server, "github:unknown").await;
    assert_eq!(recs.len(), 2, "{recs:#?}");
    assert!(
        recs.iter()
            .all(|r| r["spec"]["reason"].as_str().unwrap().contains("HTTP 500"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn login_page_hidden_and_disabled_providers_and_public_config() {
    let gh = FakeGitHub::start().await;
    gh.add_user(1, "ann", None, vec![]);
    gh.login_as(1);
    let fake = FakeIdaas::start().await;
    fake.add_user("s", "sam", None, None);
    fake.login_as("s");
    let b = backend(false).await;
    let providers = [
        github(
            &gh,
            "github",
            "auto",
            Some(&callback_url("github")),
            "      displayName: \"GitHub <Corp>\"\n",
        ),
        idaas(
            &fake,
            "secret-idaas",
            "auto",
            &callback_url("secret-idaas"),
            "      hidden: true\n",
        ),
        github(&gh, "old", "auto", None, "      disabled: true\n"),
        github(
            &gh,
            "console-gh",
            "auto",
            Some(&format!("{CONSOLE}/oauth/redirect/console-gh")),
            "",
        ),
    ];
    let server = start(Some(yaml(&providers)), &b);
    let mut browser = Browser::new(&server);

    let page = browser.get(&format!("{PUBLIC}/login")).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-security-policy"),
        "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'"
    );
    assert_eq!(page.header("x-frame-options"), "DENY");
    assert!(!page.body.contains("<script"), "no script");
    assert!(
        page.body.contains(
            "<a href=\"http://portcullis.test/login/github\">Log In with GitHub &lt;Corp&gt;</a>"
        ),
        "{}",
        page.body
    );
    assert_eq!(
        page.body.matches("Log In with").count(),
        1,
        "hidden, disabled and console-only providers have no button: {}",
        page.body
    );

    // Hidden still works; disabled and unknown are refused clearly.
    let hops = browser
        .follow(&format!("{PUBLIC}/login/secret-idaas"))
        .await;
    signed_in_as(&hops, "sam");
    let disabled = browser.get(&format!("{PUBLIC}/login/old")).await;
    assert_eq!(disabled.status, 403);
    assert!(
        disabled
            .body
            .contains("The identity provider “old” is disabled"),
        "{}",
        disabled.body
    );
    let unknown = browser.get(&format!("{PUBLIC}/login/nope")).await;
    assert_eq!(unknown.status, 404);
    assert!(
        unknown
            .body
            .contains("There is no identity provider named “nope”")
    );
    let console_only = browser.get(&format!("{PUBLIC}/login/console-gh")).await;
    assert_eq!(console_only.status, 400);
    assert!(
        console_only
            .body
            .contains("can only be used from ks-console"),
        "{}",
        console_only.body
    );
    let cb = browser
        .get(&format!("{PUBLIC}/oauth/callback/old?code=x&state=old"))
        .await;
    assert_eq!(
        cb.status, 403,
        "a disabled provider's callback is refused too"
    );

    // The public listing: endpoints filled in, no secrets, disabled providers left out.
    let resp = http()
        .get(server.url("/kapis/config.kubesphere.io/v1alpha2/configs/oauth"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(
        !text.contains("fake-github-secret") && !text.contains("fake-idaas-secret"),
        "{text}"
    );
    assert!(!text.to_lowercase().contains("clientsecret"), "{text}");
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    let names: Vec<&str> = body["identityProviders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["github", "secret-idaas", "console-gh"]);
    let gh_entry = &body["identityProviders"][0];
    assert_eq!(gh_entry["type"], "GitHubIdentityProvider");
    assert_eq!(gh_entry["displayName"], "GitHub <Corp>");
    assert_eq!(gh_entry["provider"]["clientID"], "fake-github-client");
    assert_eq!(gh_entry["provider"]["endpoint"]["authURL"], gh.auth_url());
    assert_eq!(
        gh_entry["provider"]["endpoint"]["userInfoURL"],
        gh.user_info_url()
    );
    assert_eq!(body["identityProviders"][1]["hidden"], true);
}

/// Walks the confirm step of `manual` mapping for the fake GitHub's current user, confirming
/// `name` with `email`; returns the new session's access token (its cookie).
async fn confirm_and_take_token(server: &Server, name: &str, email: &str) -> String {
    let mut browser = Browser::new(server);
    let hops = browser.follow(&format!("{PUBLIC}/login/github")).await;
    let form = hops.last().unwrap();
    assert_eq!(form.status, 200, "{}", form.body);
    let csrf = form
        .body
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let done = browser
        .post_form(
            &format!("{PUBLIC}/login/confirm"),
            &[("csrf_token", &csrf), ("name", name), ("email", email)],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    browser.cookie("portcullis_session").unwrap()
}

async fn userinfo(server: &Server, token: &str) -> Value {
    let resp = http()
        .get(server.url("/oauth/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// `email_verified` (docs/oidc.md): true only for the address the provider reported as
/// verified, never for one typed on the confirm page.
#[tokio::test(flavor = "multi_thread")]
async fn a_typed_address_is_never_verified() {
    let gh = FakeGitHub::start().await;
    gh.add_user(55, "MonaLisa", Some("mona@github.example"), vec![]);
    gh.add_user(56, "Leo", Some("leo@github.example"), vec![]);
    let b = backend(false).await;
    let server = start(
        Some(yaml(&[github(
            &gh,
            "github",
            "manual",
            Some(&callback_url("github")),
            "",
        )])),
        &b,
    );
    gh.login_as(55);
    let mona = confirm_and_take_token(&server, "mona", "mona@example.org").await;
    let info = userinfo(&server, &mona).await;
    assert_eq!(info["email"], "mona@example.org", "{info}");
    assert_eq!(
        info["email_verified"], false,
        "typed on the confirm page: {info}"
    );

    gh.login_as(56);
    let leo = confirm_and_take_token(&server, "leo", "leo@github.example").await;
    let info = userinfo(&server, &leo).await;
    assert_eq!(info["email"], "leo@github.example");
    assert_eq!(
        info["email_verified"], true,
        "the address GitHub reported (a public address is a verified one): {info}"
    );
}

//! The ks-console path (spec §3.4, §9.3): `GET /oauth/callback/{name}?code=C&state={name}` from
//! ks-console's server, answered with token JSON; KubeSphere's pre-registration contract.

use portcullis_test_upstreams::{FakeGitHub, FakeIdaas};
use serde_json::json;

use super::*;

/// What ks-console does for a button: the provider's authorize URL with `state=<name>` and the
/// console's redirect URL; the provider answers with a redirect to the console carrying `code`.
pub(super) async fn console_code(
    auth_url: &str,
    client_id: &str,
    name: &str,
    login_as: &str,
) -> String {
    let redirect = format!("{CONSOLE}/oauth/redirect/{name}");
    let resp = http()
        .get(auth_url)
        .query(&[
            ("state", name),
            ("client_id", client_id),
            ("response_type", "code"),
            ("redirect_uri", &redirect),
            ("login_as", login_as),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&redirect), "{location}");
    url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("a code")
}

pub(super) async fn console_callback(server: &Server, name: &str, query: &str) -> Hop {
    let url = server.url(&format!("/oauth/callback/{name}?{query}"));
    let resp = http().get(&url).send().await.unwrap();
    Hop {
        url,
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.text().await.unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn console_path_answers_token_json_without_cookies() {
    let gh = FakeGitHub::start().await;
    gh.add_user(101, "octocat", Some("octo@github.example"), vec![]);
    let b = backend(false).await;
    let redirect = format!("{CONSOLE}/oauth/redirect/github");
    let server = start(
        Some(yaml(&[github(&gh, "github", "auto", Some(&redirect), "")])),
        &b,
    );

    let code = console_code(&gh.auth_url(), &gh.client_id(), "github", "101").await;
    let hop = console_callback(&server, "github", &format!("code={code}&state=github")).await;
    assert_eq!(hop.status, 200, "{}", hop.body);
    assert!(
        hop.set_cookies().is_empty(),
        "the console path never sets a cookie"
    );
    assert!(hop.location().is_none());
    assert_eq!(hop.header("cache-control"), "no-store");
    let body = hop.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(claims(access)["username"], "octocat");
    assert_eq!(review(&server, access).await["user"]["username"], "octocat");
    let recs = records(&server, "octocat").await;
    assert_eq!(recs[0]["spec"]["provider"], "github");
    assert_eq!(recs[0]["spec"]["success"], true);

    // A state that is not the provider's name, or no code, is refused with an OAuth error.
    let code = console_code(&gh.auth_url(), &gh.client_id(), "github", "101").await;
    let hop = console_callback(&server, "github", &format!("code={code}&state=x1")).await;
    assert_eq!(hop.status, 400);
    assert_eq!(hop.json()["error"], "invalid_request");
    assert!(
        hop.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("state"),
        "{}",
        hop.body
    );
    let hop = console_callback(&server, "github", "state=github").await;
    assert_eq!(hop.status, 400);
    assert_eq!(
        hop.json()["error_description"],
        "the callback has neither a code nor a ticket parameter"
    );
    // `state` may be absent (KubeSphere ignores it); an upstream error is passed on.
    let code = console_code(&gh.auth_url(), &gh.client_id(), "github", "101").await;
    let hop = console_callback(&server, "github", &format!("code={code}")).await;
    assert_eq!(hop.status, 200, "{}", hop.body);
    let hop = console_callback(&server, "github", "error=access_denied&state=github").await;
    assert_eq!(hop.status, 401);
    assert_eq!(hop.json()["error"], "access_denied");
}

#[tokio::test(flavor = "multi_thread")]
async fn console_path_is_refused_when_redirect_url_is_portcullis() {
    let gh = FakeGitHub::start().await;
    gh.add_user(101, "octocat", None, vec![]);
    let b = backend(false).await;
    let server = start(
        Some(yaml(&[github(
            &gh,
            "github",
            "auto",
            Some(&callback_url("github")),
            "",
        )])),
        &b,
    );
    let code = gh.issue_code(101, Some(&callback_url("github")), "", None);
    let hop = console_callback(&server, "github", &format!("code={code}&state=github")).await;
    assert_eq!(hop.status, 400, "{}", hop.body);
    assert!(hop.header("content-type").starts_with("text/html"));
    assert!(
        hop.body
            .contains("without this browser&#39;s login cookie is refused"),
        "{}",
        hop.body
    );
    assert!(hop.set_cookie("portcullis_session").is_none());
    assert!(
        !gh.requests()
            .iter()
            .any(|r| r.path == "/login/oauth/access_token"),
        "the code was never exchanged"
    );
    assert_eq!(user_names(&server), vec!["admin"]);
    let recs = records(&server, "github:unknown").await;
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["spec"]["success"], false);
}

on_both_backends!(pre_registration_contract);

async fn pre_registration_contract(pg: bool) {
    let fake = FakeIdaas::start().await;
    fake.add_user("sub-9", "Jane.Doe", Some("jane@idaas.example"), None);
    let b = backend(pg).await;
    let redirect = format!("{CONSOLE}/oauth/redirect/idaas");
    let server = start(
        Some(yaml(&[idaas(&fake, "idaas", "manual", &redirect, "")])),
        &b,
    );

    let code = console_code(&fake.auth_url(), &fake.client_id(), "idaas", "sub-9").await;
    let hop = console_callback(&server, "idaas", &format!("code={code}&state=idaas")).await;
    assert_eq!(hop.status, 200, "{}", hop.body);
    assert!(hop.set_cookies().is_empty());
    let pre_access = hop.json()["access_token"].as_str().unwrap().to_owned();
    let pre_refresh = hop.json()["refresh_token"].as_str().unwrap().to_owned();
    let c = claims(&pre_access);
    assert_eq!(c["username"], "system:pre-registration");
    assert_eq!(
        c["extra"],
        json!({"idp": ["idaas"], "uid": ["sub-9"], "username": ["Jane.Doe"], "email": ["jane@idaas.example"]})
    );
    assert_eq!(
        review(&server, &pre_access).await["user"]["username"],
        "system:pre-registration"
    );
    assert_eq!(user_names(&server), vec!["admin"]);

    // Refreshing before the user exists says so and keeps the pre-registration usable.
    let (status, _, body) = token(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &pre_refresh),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("no user has been created"),
        "{body}"
    );

    let users_url = server.url("/kapis/iam.kubesphere.io/v1alpha2/users");
    let create = |bearer: String, body: serde_json::Value| {
        let url = users_url.clone();
        async move {
            let resp = http()
                .post(url)
                .bearer_auth(bearer)
                .json(&body)
                .send()
                .await
                .unwrap();
            (
                resp.status().as_u16(),
                resp.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    let user_object = |name: &str| {
        json!({
            "apiVersion": "iam.kubesphere.io/v1alpha2", "kind": "User",
            "metadata": {"name": name, "labels": {"iam.kubesphere.io/identify-provider": "github"},
                         "annotations": {"iam.kubesphere.io/globalrole": "platform-admin"}},
            "spec": {"email": "jane@example.org", "password": "Sneaky-Passw0rd", "groups": ["platform-admins"]}
        })
    };
    let (status, body) = create(pre_access.clone(), user_object("Jane Doe")).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["reason"], "BadRequest");
    let (status, body) = create(pre_access.clone(), user_object("admin")).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["message"], "user name \"admin\" is taken");
    let (status, body) = create(pre_access.clone(), user_object("jane")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["metadata"]["name"], "jane");
    assert_eq!(
        body["metadata"]["labels"]["iam.kubesphere.io/identify-provider"],
        "idaas"
    );
    assert_eq!(
        body["metadata"]["labels"]["iam.kubesphere.io/origin-uid"],
        "sub-9"
    );
    assert!(body["spec"].get("password").is_none());
    // Exactly one user per pre-registration; groups and password were ignored.
    let (status, body) = create(pre_access.clone(), user_object("jane2")).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("already created a user"),
        "{body}"
    );
    let jane = show_user(&server, "jane").unwrap();
    assert_eq!(jane["groups"], json!([]));
    assert_eq!(jane["hasPassword"], false);
    assert_eq!(jane["email"], "jane@example.org");
    assert_eq!(jane["identities"][0]["uid"], "sub-9");
    assert_eq!(user_names(&server), vec!["admin", "jane"]);
    // Other callers cannot create users here.
    let (status, body) = create(admin_token(&server).await, user_object("eve")).await;
    assert_eq!(status, 403, "{body}");

    // The refresh grant upgrades to the real user, once.
    let (status, _, body) = token(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &pre_refresh),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(claims(access)["username"], "jane");
    assert_eq!(review(&server, access).await["user"]["username"], "jane");
    let (status, _, _) = token(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &pre_refresh),
        ],
    )
    .await;
    assert_eq!(
        status, 400,
        "a pre-registration refresh token upgrades once"
    );
    let refreshed = body["refresh_token"].as_str().unwrap();
    let (status, _, body) = token(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refreshed),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let recs = records(&server, "jane").await;
    assert_eq!(recs[0]["spec"]["provider"], "idaas");
    assert_eq!(recs[0]["spec"]["success"], true);

    // Next console login goes straight to jane.
    let code = console_code(&fake.auth_url(), &fake.client_id(), "idaas", "sub-9").await;
    let hop = console_callback(&server, "idaas", &format!("code={code}&state=idaas")).await;
    assert_eq!(
        claims(hop.json()["access_token"].as_str().unwrap())["username"],
        "jane"
    );
}

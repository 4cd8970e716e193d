//! Links imported from KubeSphere were keyed by the GitHub `login`; Portcullis keys them by the
//! numeric id. A renamed account keeps its link; a new account that takes an old login does not
//! inherit it.

use portcullis_test_upstreams::FakeGitHub;

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn renamed_github_login_keeps_its_link_and_an_old_login_is_not_inherited() {
    let gh = FakeGitHub::start().await;
    gh.add_user(101, "octocat", None, vec![]);
    let b = backend(false).await;
    let server = start(
        Some(yaml(&[github(
            &gh,
            "github",
            "lookup",
            Some(&callback_url("github")),
            "",
        )])),
        &b,
    );
    // As imported from KubeSphere: `iam.kubesphere.io/origin-uid: octocat`.
    add_user(&server, &["octo", "--no-password"]);
    let (ok, _, err) = cli(
        &server,
        &[
            "user",
            "link",
            "octo",
            "--provider",
            "github",
            "--uid",
            "octocat",
        ],
    );
    assert!(ok, "{err}");

    gh.login_as(101);
    let hops = Browser::new(&server)
        .follow(&format!("{PUBLIC}/login/github"))
        .await;
    signed_in_as(&hops, "octo");
    let ids = &show_user(&server, "octo").unwrap()["identities"];
    assert_eq!(ids.as_array().unwrap().len(), 1);
    assert_eq!(
        ids[0]["uid"], "101",
        "the legacy link moved to the numeric id"
    );

    // The account renames itself: still octo.
    gh.rename_user(101, "octocat-renamed");
    let hops = Browser::new(&server)
        .follow(&format!("{PUBLIC}/login/github"))
        .await;
    signed_in_as(&hops, "octo");

    // Someone else takes the old login: no link for them.
    gh.add_user(202, "octocat", None, vec![]);
    gh.login_as(202);
    let hops = Browser::new(&server)
        .follow(&format!("{PUBLIC}/login/github"))
        .await;
    let last = hops.last().unwrap();
    assert_eq!(last.status, 401, "{}", last.body);
    assert!(last.body.contains("No account is linked"), "{}", last.body);

    // A stale legacy link (its user already has a link by numeric id at this provider) is not
    // used either, and stays as it was.
    add_user(&server, &["stale", "--no-password"]);
    for uid in ["55", "ghost"] {
        let (ok, _, err) = cli(
            &server,
            &[
                "user",
                "link",
                "stale",
                "--provider",
                "github",
                "--uid",
                uid,
            ],
        );
        assert!(ok, "{err}");
    }
    gh.add_user(303, "ghost", None, vec![]);
    gh.login_as(303);
    let hops = Browser::new(&server)
        .follow(&format!("{PUBLIC}/login/github"))
        .await;
    assert_eq!(hops.last().unwrap().status, 401);
    let uids: Vec<String> = show_user(&server, "stale").unwrap()["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["uid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(uids, vec!["55", "ghost"]);
}

//! The fake GitHub's `/user/orgs` and `/user/teams`: scope checks and GitHub's `page`/`per_page`/`Link`
//! pagination.

use std::collections::BTreeMap;

use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::endpoints::{ModeOf, St, api_user, query};
use crate::common;

/// GitHub's default page size.
const DEFAULT_PER_PAGE: usize = 30;
/// GitHub's largest page size.
const MAX_PER_PAGE: usize = 100;

/// A stable, made-up numeric id for a name (GitHub's ids are numbers).
fn id_of(name: &str) -> u64 {
    name.bytes().fold(1_000_003u64, |h, b| {
        h.wrapping_mul(31).wrapping_add(u64::from(b))
    }) % 100_000_000
}

fn org_json(base: &str, login: &str) -> Value {
    let id = id_of(login);
    let url = format!("{base}/orgs/{login}");
    json!({
        "login": login, "id": id, "node_id": format!("O_{id}"), "url": url,
        "repos_url": format!("{url}/repos"), "events_url": format!("{url}/events"),
        "hooks_url": format!("{url}/hooks"), "issues_url": format!("{url}/issues"),
        "members_url": format!("{url}/members{{/member}}"),
        "public_members_url": format!("{url}/public_members{{/member}}"),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"), "description": null,
    })
}

fn team_json(base: &str, org: &str, slug: &str) -> Value {
    let id = id_of(&format!("{org}/{slug}"));
    let url = format!("{base}/organizations/{}/team/{id}", id_of(org));
    let mut organization = org_json(base, org);
    if let Some(o) = organization.as_object_mut() {
        o.insert("name".into(), json!(org));
        o.insert(
            "html_url".into(),
            json!(format!("https://github.com/{org}")),
        );
        o.insert("type".into(), json!("Organization"));
    }
    json!({
        "id": id, "node_id": format!("T_{id}"), "url": url,
        "html_url": format!("https://github.com/orgs/{org}/teams/{slug}"), "name": slug, "slug": slug,
        "description": null, "privacy": "closed", "notification_setting": "notifications_enabled",
        "permission": "pull", "members_url": format!("{url}/members{{/member}}"),
        "repositories_url": format!("{url}/repos"), "parent": null, "members_count": 1, "repos_count": 0,
        "created_at": "2017-07-14T16:53:42Z", "updated_at": "2017-08-17T12:37:15Z", "organization": organization,
    })
}

pub(super) async fn orgs(
    State(state): St,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let q = query(&uri);
    let (user, scopes, _) =
        match api_user(&state, uri.path(), q.clone(), &headers, ModeOf::Groups).await {
            Ok(found) => found,
            Err(resp) => return resp,
        };
    if !has_any(&scopes, &["read:org", "write:org", "admin:org", "user"]) {
        let doc =
            "https://docs.github.com/rest/orgs/orgs#list-organizations-for-the-authenticated-user";
        return forbidden(
            "You need at least read:org scope or user scope to list your organizations.",
            doc,
        );
    }
    let base = api_base(&headers, uri.path(), "/user/orgs");
    let all: Vec<Value> = user.orgs.iter().map(|o| org_json(&base, o)).collect();
    paginate(&headers, uri.path(), &q, all)
}

pub(super) async fn teams(
    State(state): St,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let q = query(&uri);
    let (user, scopes, _) =
        match api_user(&state, uri.path(), q.clone(), &headers, ModeOf::Groups).await {
            Ok(found) => found,
            Err(resp) => return resp,
        };
    if !has_any(
        &scopes,
        &["read:org", "write:org", "admin:org", "user", "repo"],
    ) {
        let doc = "https://docs.github.com/rest/teams/teams#list-teams-for-the-authenticated-user";
        return forbidden(
            "You need at least read:org scope, repo scope or user scope to list your teams.",
            doc,
        );
    }
    let base = api_base(&headers, uri.path(), "/user/teams");
    let all: Vec<Value> = user
        .teams
        .iter()
        .map(|(org, slug)| team_json(&base, org, slug))
        .collect();
    paginate(&headers, uri.path(), &q, all)
}

fn has_any(scopes: &[String], accepted: &[&str]) -> bool {
    scopes.iter().any(|s| accepted.contains(&s.as_str()))
}

fn forbidden(message: &str, doc: &str) -> Response {
    common::json(
        StatusCode::FORBIDDEN,
        json!({"message": message, "documentation_url": doc, "status": "403"}),
    )
}

/// `http://HOST` plus the `/api/v3` prefix when the request came through it: the API root for `url` fields.
fn api_base(headers: &HeaderMap, path: &str, endpoint: &str) -> String {
    let prefix = path.strip_suffix(endpoint).unwrap_or("");
    format!("{}{prefix}", origin(headers))
}

fn origin(headers: &HeaderMap) -> String {
    let host = common::header_str(headers, header::HOST.as_str()).unwrap_or("localhost");
    format!("http://{host}")
}

/// One page of `all` as GitHub serves it: `page` and `per_page` from the query (non-numbers and zero mean the
/// defaults, `per_page` capped at 100), an empty list past the end, and a `Link` header with the relations that
/// exist (`prev`, `next`, `last`, `first`, in GitHub's order).
fn paginate(
    headers: &HeaderMap,
    path: &str,
    q: &BTreeMap<String, String>,
    all: Vec<Value>,
) -> Response {
    let number = |key: &str| {
        q.get(key)
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
    };
    let per_page = number("per_page")
        .unwrap_or(DEFAULT_PER_PAGE)
        .min(MAX_PER_PAGE);
    let page = number("page").unwrap_or(1);
    let last = all.len().div_ceil(per_page).max(1);
    let items: Vec<Value> = all
        .into_iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .collect();
    let link_to = |n: usize, rel: &str| {
        format!(
            "<{}{path}?per_page={per_page}&page={n}>; rel=\"{rel}\"",
            origin(headers)
        )
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(link_to((page - 1).min(last), "prev"));
    }
    if page < last {
        links.push(link_to(page + 1, "next"));
        links.push(link_to(last, "last"));
    }
    if page > 1 {
        links.push(link_to(1, "first"));
    }
    let mut response = common::json(StatusCode::OK, Value::Array(items));
    if !links.is_empty()
        && let Ok(value) = HeaderValue::from_str(&links.join(", "))
    {
        response.headers_mut().insert(header::LINK, value);
    }
    response
}

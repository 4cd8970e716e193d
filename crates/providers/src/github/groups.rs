//! GitHub organisations and teams as [`Identity::groups`](portcullis_idp::Identity::groups) (option `groups`).
//!
//! Organisations come from `GET /user/orgs` (each `login`), teams from `GET /user/teams` (each as
//! `<organization.login>/<slug>`), both beside the configured `endpoint.userInfoURL` as `/user/emails` is. Lists are
//! read with `per_page=100` and followed through GitHub's `Link: <...>; rel="next"` header, at most [`MAX_PAGES`]
//! pages each. The token needs the `read:org` scope (GitHub also accepts `user`, `write:org`, `admin:org`; `repo`
//! for teams). Reading groups fails closed: an unreadable or malformed list fails the login, since an allow-list
//! may depend on it. GitHub's order is kept; duplicates are dropped by the identity.

use portcullis_idp::{ProviderError, ProviderOptions};
use reqwest::header::{HeaderMap, LINK};
use serde_json::Value;
use url::Url;

use super::{GitHubIdentityProvider, url_beside};
use crate::http::{self, excerpt};

/// Entries per page asked of GitHub (its maximum).
pub const PER_PAGE: u32 = 100;
/// Pages read per list at most (2000 entries); past it the login fails rather than use a partial membership.
pub const MAX_PAGES: usize = 20;

/// Scopes with which GitHub lists a user's organisations (`read:org` is the least privileged).
const ORG_SCOPES: [&str; 4] = ["read:org", "write:org", "admin:org", "user"];

/// Which memberships become groups: the `groups` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GroupSource {
    None,
    Orgs,
    Teams,
    OrgsAndTeams,
}

impl GroupSource {
    const VALUES: [(&'static str, GroupSource); 4] = [
        ("none", GroupSource::None),
        ("orgs", GroupSource::Orgs),
        ("teams", GroupSource::Teams),
        ("orgsAndTeams", GroupSource::OrgsAndTeams),
    ];

    /// Reads option `groups` (value compared case-insensitively; absent or empty means `none`).
    pub(super) fn from_options(options: &ProviderOptions) -> Result<Self, ProviderError> {
        let raw = options.get_str("groups")?.unwrap_or_default();
        let value = raw.trim();
        if value.is_empty() {
            return Ok(GroupSource::None);
        }
        Self::VALUES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(value))
            .map(|(_, source)| *source)
            .ok_or_else(|| {
                let valid: Vec<String> =
                    Self::VALUES.iter().map(|(n, _)| format!("`{n}`")).collect();
                ProviderError::misconfigured(format!(
                    "option `groups` must be one of {}, found {raw:?}",
                    valid.join(", ")
                ))
            })
    }

    fn name(self) -> &'static str {
        Self::VALUES
            .iter()
            .find(|(_, s)| *s == self)
            .map_or("none", |(n, _)| n)
    }
}

/// Where and what to read.
#[derive(Debug)]
pub(super) struct Groups {
    source: GroupSource,
    orgs_url: Url,
    teams_url: Url,
}

impl Groups {
    /// The group reader for `source`, with its endpoints beside `user_info`. Warns when `scopes` cannot grant the
    /// listing (the login would then fail).
    pub(super) fn new(source: GroupSource, user_info: &Url, scopes: &[String]) -> Self {
        let granted = scopes.iter().any(|s| ORG_SCOPES.contains(&s.as_str()));
        if source != GroupSource::None && !granted {
            tracing::warn!(
                groups = source.name(),
                "GitHub option `groups` is set but `scopes` has no `read:org`: GitHub will refuse to list the \
                 user's organisations and teams, and logins will fail"
            );
        }
        Groups {
            source,
            orgs_url: url_beside(user_info, "orgs"),
            teams_url: url_beside(user_info, "teams"),
        }
    }

    /// The user's groups: organisations, then teams, as configured; no request at all for `none`.
    pub(super) async fn fetch(
        &self,
        api: &GitHubIdentityProvider,
        token: &str,
    ) -> Result<Vec<String>, ProviderError> {
        let mut groups = Vec::new();
        if matches!(self.source, GroupSource::Orgs | GroupSource::OrgsAndTeams) {
            let what = "GitHub /user/orgs";
            for org in list(api, &self.orgs_url, token, what).await? {
                groups.push(org_login(&org, what, "an organisation")?);
            }
        }
        if matches!(self.source, GroupSource::Teams | GroupSource::OrgsAndTeams) {
            let what = "GitHub /user/teams";
            for team in list(api, &self.teams_url, token, what).await? {
                let org = team
                    .get("organization")
                    .ok_or_else(|| bad_entry(what, "a team without `organization`"))?;
                let org = org_login(org, what, "a team whose `organization`")?;
                let slug = match team.get("slug") {
                    Some(Value::String(s)) if !s.trim().is_empty() => s,
                    _ => return Err(bad_entry(what, "a team without `slug`")),
                };
                groups.push(format!("{org}/{slug}"));
            }
        }
        Ok(groups)
    }
}

fn org_login(entry: &Value, what: &str, subject: &str) -> Result<String, ProviderError> {
    match entry.get("login") {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        _ => Err(bad_entry(what, &format!("{subject} without `login`"))),
    }
}

fn bad_entry(what: &str, problem: &str) -> ProviderError {
    ProviderError::upstream(format!("{what} answered {problem}"))
}

/// Appended to every refusal or unreadable answer of a group list.
fn hint(what: &str) -> String {
    format!(
        "(hint: reading groups from {what} needs the OAuth scope `read:org`: add it to the provider's `scopes`; \
         users grant it at their next login)"
    )
}

fn with_hint(e: ProviderError, what: &str) -> ProviderError {
    match e {
        ProviderError::Upstream { message, source } => ProviderError::Upstream {
            message: format!("{message} {}", hint(what)),
            source,
        },
        other => other,
    }
}

/// Every entry of a paginated list, following `rel="next"` links on the same origin, at most [`MAX_PAGES`] pages.
async fn list(
    api: &GitHubIdentityProvider,
    first: &Url,
    token: &str,
    what: &str,
) -> Result<Vec<Value>, ProviderError> {
    let mut url = first.clone();
    url.query_pairs_mut()
        .append_pair("per_page", &PER_PAGE.to_string());
    let mut entries = Vec::new();
    for _ in 0..MAX_PAGES {
        let answer = api.api_get(&url, token, what).await?;
        if !answer.status.is_success() {
            let detail = answer
                .json(what)
                .ok()
                .and_then(|v| v.get("message")?.as_str().map(|m| excerpt(m, 200)))
                .unwrap_or_else(|| answer.excerpt());
            return Err(ProviderError::upstream(format!(
                "{what} answered HTTP {}: {detail} {}",
                answer.status.as_u16(),
                hint(what)
            )));
        }
        match answer.json(what).map_err(|e| with_hint(e, what))? {
            Value::Array(page) => entries.extend(page),
            _ => {
                return Err(ProviderError::upstream(format!(
                    "{what} answered JSON that is not a list {}",
                    hint(what)
                )));
            }
        }
        match next_link(&answer.headers) {
            None => return Ok(entries),
            Some(next) => url = same_origin_next(first, &url, next, what)?,
        }
    }
    Err(ProviderError::upstream(format!(
        "{what} has more than {MAX_PAGES} pages of {PER_PAGE} entries; refusing to use a partial list"
    )))
}

/// The target of the first `rel="next"` link of the `Link` headers (RFC 8288; relation types compared
/// case-insensitively, `rel` may list several).
fn next_link(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(next_in)
}

fn next_in(value: &str) -> Option<&str> {
    let mut rest = value;
    loop {
        let start = rest.find('<')?;
        let end = start + rest[start..].find('>')?;
        let target = &rest[start + 1..end];
        rest = &rest[end + 1..];
        let params = &rest[..rest.find('<').unwrap_or(rest.len())];
        let is_next = params.split(';').any(|param| {
            let Some((name, value)) = param.split_once('=') else {
                return false;
            };
            name.trim().eq_ignore_ascii_case("rel")
                && value
                    .trim()
                    .trim_matches(|c| c == '"' || c == ',')
                    .split_ascii_whitespace()
                    .any(|rel| rel.eq_ignore_ascii_case("next"))
        });
        if is_next {
            return Some(target.trim());
        }
    }
}

/// Resolves a `next` link against the current page and refuses one on another origin: the bearer token is sent
/// with it.
fn same_origin_next(
    first: &Url,
    current: &Url,
    next: &str,
    what: &str,
) -> Result<Url, ProviderError> {
    match current.join(next) {
        Ok(url) if url.origin() == first.origin() => Ok(url),
        Ok(url) => Err(ProviderError::upstream(format!(
            "{what} sent a next-page link to another origin ({}); not following it with the user's token",
            http::without_query(&url)
        ))),
        Err(e) => Err(ProviderError::upstream(format!(
            "{what} sent an invalid next-page link {:?}: {e}",
            excerpt(next, 200)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_next_link_among_others() {
        let github = "<https://api.github.com/user/orgs?per_page=100&page=1>; rel=\"prev\", \
                      <https://api.github.com/user/orgs?per_page=100&page=3>; rel=\"next\", \
                      <https://api.github.com/user/orgs?per_page=100&page=5>; rel=\"last\", \
                      <https://api.github.com/user/orgs?per_page=100&page=1>; rel=\"first\"";
        assert_eq!(
            next_in(github),
            Some("https://api.github.com/user/orgs?per_page=100&page=3")
        );
        assert_eq!(
            next_in("</p?a=1,2>; title=\"x\"; REL=\"last Next\""),
            Some("/p?a=1,2")
        );
        assert_eq!(next_in("</p2>; rel=next"), Some("/p2"));
        assert_eq!(next_in("</p1>; rel=\"prev\", </p9>; rel=\"last\""), None);
        assert_eq!(next_in("</p1>; rel=\"nextish\""), None);
        assert_eq!(next_in("garbage"), None);
        assert_eq!(next_in("<unterminated; rel=next"), None);
    }

    #[test]
    fn next_links_stay_on_the_same_origin() {
        let first = Url::parse("https://ghe.example/api/v3/user/teams?per_page=100").unwrap();
        let ok = same_origin_next(&first, &first, "/api/v3/user/teams?page=2", "w").unwrap();
        assert_eq!(ok.as_str(), "https://ghe.example/api/v3/user/teams?page=2");
        for foreign in [
            "https://evil.example/api/v3/user/teams?page=2",
            "http://ghe.example/api/v3/user/teams?page=2",
            "https://ghe.example:8443/x",
        ] {
            let e = same_origin_next(&first, &first, foreign, "w").unwrap_err();
            assert!(
                e.is_upstream() && e.to_string().contains("another origin"),
                "{e}"
            );
        }
    }

    #[test]
    fn option_values() {
        let opts = |v: serde_json::Value| {
            ProviderOptions::from_value(serde_json::json!({"Groups": v})).unwrap()
        };
        let read = |v| GroupSource::from_options(&opts(v));
        assert_eq!(
            read(serde_json::json!("ORGSANDTEAMS")).unwrap(),
            GroupSource::OrgsAndTeams
        );
        assert_eq!(
            read(serde_json::json!(" teams ")).unwrap(),
            GroupSource::Teams
        );
        assert_eq!(read(serde_json::json!("")).unwrap(), GroupSource::None);
        assert_eq!(read(serde_json::Value::Null).unwrap(), GroupSource::None);
        let e = read(serde_json::json!("members")).unwrap_err();
        assert!(
            e.is_misconfigured()
                && e.to_string()
                    .contains("`groups` must be one of `none`, `orgs`, `teams`, `orgsAndTeams`, found \"members\""),
            "{e}"
        );
    }
}

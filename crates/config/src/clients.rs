//! `authentication.oauthOptions.clients[]` (spec §1.5).

use crate::error::Report;
use crate::fields::{Field, Fields, suggest};
use crate::raw::{Kind, Node};
use crate::{GrantMethod, IdTokenAlg, OAuthClient, Secret};

const CLIENT_KEYS: &[&str] = &[
    "name",
    "secret",
    "respondWithChallenges",
    "redirectURIs",
    "postLogoutRedirectURIs",
    "grantMethod",
    "scopeRestrictions",
    "accessTokenMaxAge",
    "accessTokenInactivityTimeout",
    "trusted",
    "development",
    "idTokenSigningAlg",
];

/// Schemes that would run code in the browser if ever followed.
const FORBIDDEN_SCHEMES: &[&str] = &["javascript", "data", "vbscript", "file"];

pub(crate) fn read(report: &mut Report, field: &Field) -> Vec<OAuthClient> {
    let Some(items) = field.list(report) else {
        return Vec::new();
    };
    let mut clients: Vec<OAuthClient> = Vec::new();
    let mut names: Vec<(String, Option<usize>)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("{}[{i}]", field.path);
        let line = item.line().or(field.line);
        if !matches!(item.kind, Kind::Map(_)) {
            report.error(
                line,
                &path,
                format!("expected a client (a map), found {}", item.type_name()),
            );
            continue;
        }
        let Some(client) = read_one(report, item, &path, line) else {
            continue;
        };
        if let Some((_, first)) = names.iter().find(|(n, _)| *n == client.name) {
            let at = first.map_or(String::new(), |l| format!(" (line {l})"));
            report.error(
                line,
                &format!("{path}.name"),
                format!(
                    "duplicate client name {:?}: already used by an earlier client{at}",
                    client.name
                ),
            );
            continue;
        }
        names.push((client.name.clone(), line));
        clients.push(client);
    }
    clients
}

fn read_one(
    report: &mut Report,
    item: &Node,
    path: &str,
    line: Option<usize>,
) -> Option<OAuthClient> {
    let f = Fields::read(report, Some(item), path, line, CLIENT_KEYS, &|_| None);
    let name = f
        .get("name")
        .and_then(|v| v.string(report))
        .filter(|s| !s.is_empty());
    if name.is_none() {
        report.error(
            f.line_of("name"),
            &f.key_path("name"),
            "a client needs a `name` (its client_id)",
        );
    }
    let flag = |r: &mut Report, key: &str, default: bool| {
        f.get(key).and_then(|v| v.bool(r)).unwrap_or(default)
    };
    let development = flag(report, "development", false);
    let secret = f
        .get("secret")
        .and_then(|v| v.secret(report))
        .filter(|s| !s.is_empty())
        .map(Secret::new);
    let redirect_uris = uris(report, &f, "redirectURIs", development);
    let post_logout_redirect_uris = uris(report, &f, "postLogoutRedirectURIs", development);
    let grant_method = f
        .get("grantMethod")
        .and_then(|v| grant_method(report, &v))
        .unwrap_or(GrantMethod::Auto);
    let scope_restrictions = f
        .get("scopeRestrictions")
        .and_then(|v| v.strings(report))
        .map(|items| items.into_iter().map(|(s, _, _)| s).collect())
        .unwrap_or_default();
    let duration = |r: &mut Report, key: &str| f.get(key).and_then(|v| v.duration(r));
    let client = OAuthClient {
        name: name?,
        secret,
        respond_with_challenges: flag(report, "respondWithChallenges", false),
        redirect_uris,
        post_logout_redirect_uris,
        grant_method,
        scope_restrictions,
        access_token_max_age: duration(report, "accessTokenMaxAge"),
        access_token_inactivity_timeout: duration(report, "accessTokenInactivityTimeout"),
        // KubeSphere 3.2 treats a client without the key as trusted (password grant allowed).
        trusted: flag(report, "trusted", true),
        development,
        id_token_signing_alg: f
            .get("idTokenSigningAlg")
            .and_then(|v| id_token_alg(report, &v))
            .unwrap_or_default(),
    };
    if development && client.redirect_uris.iter().any(|u| u.contains('*')) {
        report.warn(
            f.line_of("development"),
            &f.key_path("development"),
            format!(
                "client {:?} accepts wildcard redirect URIs: any site can receive its authorization \
                 codes; never use a development client in production",
                client.name
            ),
        );
    }
    Some(client)
}

/// Reads and checks a list of redirect URIs.
fn uris(report: &mut Report, f: &Fields, key: &str, development: bool) -> Vec<String> {
    let Some(items) = f.get(key).and_then(|v| v.strings(report)) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(items.len());
    for (uri, path, line) in items {
        if uri.contains('*') && !development {
            // KubeSphere's own default client has `redirectURIs: ["*"]`; refusing it would stop
            // an existing kubesphere.yaml from loading. The entry is dropped (never matched) and
            // the operator is told: the client keeps its password and refresh grants (the
            // console's use), but cannot send codes anywhere until its URIs are listed.
            report.warn(
                line,
                &path,
                format!(
                    "wildcard redirect URI {uri:?} is ignored: redirect URIs are matched exactly \
                     (scheme, host, port and path) and a wildcard would let any site receive \
                     authorization codes; list each URI the client uses, or set \
                     `development: true` on a development client"
                ),
            );
            continue;
        }
        if let Err(message) = check_uri(&uri, development) {
            report.error(line, &path, message);
        } else {
            out.push(uri);
        }
    }
    out
}

/// A redirect URI is `*`, or an absolute URL without a fragment; wildcards only on
/// development clients.
fn check_uri(uri: &str, development: bool) -> Result<(), String> {
    if uri.contains('*') {
        if !development {
            return Err(format!(
                "wildcard redirect URI {uri:?} needs `development: true` on this client: redirect \
                 URIs are matched exactly (scheme, host, port and path), and a wildcard would let \
                 any site receive authorization codes; list each URI the client uses instead"
            ));
        }
        if uri.contains('#') {
            return Err(format!(
                "redirect URI {uri:?} must not have a fragment (#...)"
            ));
        }
        return Ok(());
    }
    let url = url::Url::parse(uri).map_err(|e| {
        format!("redirect URI {uri:?} is not an absolute URL ({e}); write e.g. https://console.example.com/oauth/redirect")
    })?;
    if FORBIDDEN_SCHEMES.contains(&url.scheme()) {
        return Err(format!(
            "redirect URI {uri:?}: the {:?} scheme is not allowed",
            url.scheme()
        ));
    }
    if url.fragment().is_some() {
        return Err(format!(
            "redirect URI {uri:?} must not have a fragment (#...)"
        ));
    }
    Ok(())
}

fn id_token_alg(report: &mut Report, field: &Field) -> Option<IdTokenAlg> {
    let value = field.string(report)?;
    match value.as_str() {
        "RS256" => Some(IdTokenAlg::Rs256),
        "ES256" => Some(IdTokenAlg::Es256),
        other => {
            report.error(
                field.line,
                &field.path,
                format!("unsupported ID-token signing algorithm {other:?}; valid: RS256, ES256"),
            );
            None
        }
    }
}

fn grant_method(report: &mut Report, field: &Field) -> Option<GrantMethod> {
    const VALID: [&str; 3] = ["auto", "prompt", "deny"];
    let value = field.string(report)?;
    match value.as_str() {
        "auto" => Some(GrantMethod::Auto),
        "prompt" => Some(GrantMethod::Prompt),
        "deny" => Some(GrantMethod::Deny),
        other => {
            let hint =
                suggest(other, &VALID).map_or(String::new(), |s| format!(" (did you mean `{s}`?)"));
            report.error(
                field.line,
                &field.path,
                format!("unknown grant method {other:?}; valid: auto, prompt, deny{hint}"),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check_uri;

    #[test]
    fn redirect_uris() {
        assert!(check_uri("https://ks.example.com/oauth/redirect", false).is_ok());
        assert!(check_uri("com.example.app:/callback", false).is_ok());
        assert!(check_uri("*", false).is_err());
        assert!(check_uri("*", true).is_ok());
        assert!(check_uri("http://localhost:*/cb", true).is_ok());
        assert!(check_uri("http://localhost:*/cb#x", true).is_err());
        assert!(check_uri("/relative/path", false).is_err());
        assert!(check_uri("https://a.example/cb#frag", false).is_err());
        assert!(check_uri("javascript:alert(1)", false).is_err());
    }
}

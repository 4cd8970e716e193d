//! Redirect URIs: exact matching of registered URIs (globs only on development clients), and
//! the query of the authorization response (code or error, `state`, `iss`).

use portcullis_config::OAuthClient;

/// Whether `uri` is registered for the client: exact match, or, on a development client only,
/// a `*` pattern (see [`wildcard_allowed`]).
pub fn redirect_allowed(client: &OAuthClient, uri: &str) -> bool {
    client.redirect_uris.iter().any(|r| {
        if r.contains('*') {
            client.development && wildcard_allowed(r, uri)
        } else {
            r == uri
        }
    })
}

/// A `*` pattern (`*` matches any run of characters) against an absolute URL without user
/// info, backslashes or control characters. The authority (`host:port`) and the rest are
/// matched separately, so a `*` cannot reach across them: `http://localhost:*/cb` does not
/// admit `http://localhost:1@evil.example/cb` nor `http://localhost:1.evil.example/cb`.
fn wildcard_allowed(pattern: &str, uri: &str) -> bool {
    let Ok(parsed) = url::Url::parse(uri) else {
        return false;
    };
    if !parsed.username().is_empty()
        || parsed.password().is_some()
        || uri.chars().any(|c| c == '\\' || c.is_control())
    {
        return false;
    }
    // `scheme://authority` and the rest (path, query, fragment).
    fn split(s: &str) -> Option<(&str, &str, &str)> {
        let (scheme, rest) = s.split_once("://")?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        Some((scheme, &rest[..end], &rest[end..]))
    }
    match (split(pattern), split(uri)) {
        (Some((ps, pa, pr)), Some((us, ua, ur))) => {
            ps.eq_ignore_ascii_case(us) && glob(pa, ua) && glob(pr, ur)
        }
        // A pattern without a scheme (`*` alone) matches the whole URL.
        (None, _) => glob(pattern, uri),
        (Some(_), None) => false,
    }
}

fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(tail) = text.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .filter(|i| tail.is_char_boundary(*i))
                .any(|i| glob(rest, &tail[i..]))
        }
    }
}

/// `uri` with an error, `state` and `iss` added to its query.
pub fn error_redirect(
    uri: &str,
    state: Option<&str>,
    error: &str,
    description: &str,
    iss: &str,
) -> String {
    let mut pairs = vec![("error", error), ("error_description", description)];
    if let Some(s) = state {
        pairs.push(("state", s));
    }
    pairs.push(("iss", iss));
    with_query(uri, &pairs)
}

/// `uri` with `pairs` appended to its query (keeping the query it has).
pub(crate) fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    match url::Url::parse(uri) {
        Ok(mut u) => {
            u.query_pairs_mut().extend_pairs(pairs);
            u.to_string()
        }
        Err(_) => uri.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_queries() {
        assert!(glob("*", "https://anything"));
        assert!(glob("http://localhost:*/cb", "http://localhost:8000/cb"));
        assert!(!glob("http://localhost:*/cb", "http://localhost:8000/cb2"));
        assert!(!glob("http://localhost:*/cb", "http://evil.example/cb"));
        let ok = |p: &str, u: &str| wildcard_allowed(p, u);
        assert!(ok("http://localhost:*/cb", "http://localhost:8000/cb"));
        assert!(ok("*", "https://anything.example/x"));
        assert!(ok(
            "https://*.app.example/cb",
            "https://pr-1.app.example/cb"
        ));
        for evil in [
            "http://localhost:1@evil.example/cb",
            "http://localhost:1.evil.example/cb",
            "http://localhost:1\\@evil.example/cb",
            "http://localhost:1/x/cb",
        ] {
            assert!(!ok("http://localhost:*/cb", evil), "{evil}");
        }
        for evil in [
            "https://evil.example/.app.example/cb",
            "https://evil.example?.app.example/cb",
            "https://evil.example#.app.example/cb",
            "https://u@pr-1.app.example/cb",
        ] {
            assert!(!ok("https://*.app.example/cb", evil), "{evil}");
        }
        assert!(!ok("*", "https://user:pw@anything.example/x"));
        assert_eq!(
            with_query("https://app.example/cb?x=1", &[("code", "c d")]),
            "https://app.example/cb?x=1&code=c+d"
        );
    }
}

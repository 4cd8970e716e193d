//! Redirect URIs: exact matching of registered URIs (globs only on development clients), and
//! the query of the authorization response (code or error, `state`, `iss`).

use portcullis_config::OAuthClient;

/// Whether `uri` is registered for the client: exact match, or, on a development client only,
/// a `*` pattern (`*` matches any run of characters).
pub fn redirect_allowed(client: &OAuthClient, uri: &str) -> bool {
    client.redirect_uris.iter().any(|r| {
        if r.contains('*') {
            client.development && glob(r, uri)
        } else {
            r == uri
        }
    })
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
        assert_eq!(
            with_query("https://app.example/cb?x=1", &[("code", "c d")]),
            "https://app.example/cb?x=1&code=c+d"
        );
    }
}

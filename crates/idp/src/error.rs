//! [`ProviderError`]: the one error type of the plugin API.

use std::error::Error as StdError;

/// The boxed source error kept by [`ProviderError::Upstream`].
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why a provider could not be created, could not build a URL, or could not produce an [`Identity`](crate::Identity).
///
/// The variants are the three classes the server must tell apart:
///
/// | Variant | Meaning | What the server does |
/// |---|---|---|
/// | [`BadCredentials`](Self::BadCredentials) | the *user's* attempt failed: wrong password, unknown user, bad or reused authorization code, user denied consent | refuse this login (a password login tries the next source); no alarm |
/// | [`Misconfigured`](Self::Misconfigured) | the *operator's* configuration is wrong: missing `clientID`, malformed URL, client secret rejected by the upstream, redirect URI not registered | refuse to start (at `create`) or log an error the operator must fix |
/// | [`Upstream`](Self::Upstream) | the *identity provider* is broken or unreachable: timeout, connection refused, HTTP 5xx, an HTML page where JSON was expected, malformed JSON, a user record without an id | fail the login with a "provider unavailable" error and log the source |
///
/// Messages are meant for operators' logs. They may quote short, sanitised excerpts of upstream responses, so a
/// server that shows them to end users must HTML-escape them like any other text.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The credentials, code or consent were refused: the "try the next source / refuse the login" class.
    #[error("bad credentials: {0}")]
    BadCredentials(String),
    /// The provider's options are invalid, or the upstream refused them (wrong client secret, unregistered redirect
    /// URI). The message names the option key where there is one.
    #[error("misconfigured: {0}")]
    Misconfigured(String),
    /// The upstream identity provider failed: unreachable, timed out, 5xx, HTML or malformed JSON.
    #[error("upstream error: {message}")]
    Upstream {
        /// What went wrong, in words an operator understands.
        message: String,
        /// The underlying error (an HTTP client error, a JSON error), if any.
        #[source]
        source: Option<BoxError>,
    },
}

impl ProviderError {
    /// A [`ProviderError::BadCredentials`].
    pub fn bad_credentials(message: impl Into<String>) -> Self {
        ProviderError::BadCredentials(message.into())
    }

    /// A [`ProviderError::Misconfigured`].
    pub fn misconfigured(message: impl Into<String>) -> Self {
        ProviderError::Misconfigured(message.into())
    }

    /// A [`ProviderError::Upstream`] without a source error.
    pub fn upstream(message: impl Into<String>) -> Self {
        ProviderError::Upstream {
            message: message.into(),
            source: None,
        }
    }

    /// A [`ProviderError::Upstream`] that keeps `source` (reachable through [`std::error::Error::source`]).
    pub fn upstream_with(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        ProviderError::Upstream {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// Whether this is the "bad credentials / user unknown / user denied" class: refuse this login (or try the next
    /// password source) without treating the provider as broken.
    pub fn is_bad_credentials(&self) -> bool {
        matches!(self, ProviderError::BadCredentials(_))
    }

    /// Whether the operator's configuration is at fault.
    pub fn is_misconfigured(&self) -> bool {
        matches!(self, ProviderError::Misconfigured(_))
    }

    /// Whether the upstream identity provider is broken or unreachable.
    pub fn is_upstream(&self) -> bool {
        matches!(self, ProviderError::Upstream { .. })
    }
}

/// Shortens upstream-controlled text for an error message: control characters become spaces and the result is cut
/// at `max` characters (with an ellipsis).
pub(crate) fn excerpt(text: &str, max: usize) -> String {
    let cleaned: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if cleaned.chars().count() <= max {
        cleaned
    } else {
        let mut cut: String = cleaned.chars().take(max).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_and_source() {
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out");
        let e = ProviderError::upstream_with("token endpoint timed out", io);
        assert!(e.is_upstream() && !e.is_bad_credentials());
        assert_eq!(e.to_string(), "upstream error: token endpoint timed out");
        assert_eq!(e.source().unwrap().to_string(), "timed out");
        assert!(ProviderError::bad_credentials("x").is_bad_credentials());
        assert!(ProviderError::misconfigured("x").is_misconfigured());
    }

    #[test]
    fn excerpt_cleans_and_cuts() {
        assert_eq!(excerpt(" a\nb ", 10), "a b");
        assert_eq!(excerpt("abcdef", 3), "abc…");
    }
}

//! OAuth client authentication at the token endpoint.

use portcullis_config::OAuthClient;

use crate::engine::Engine;
use crate::error::AuthError;

/// Constant-time string equality (no early exit on the first differing byte).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    constant_time_eq_bytes(a.as_bytes(), b.as_bytes())
}

/// Constant-time equality of byte strings: the time depends on the length only (which is not
/// secret for any value compared here). The differences are folded eight bytes at a time with no
/// branch on the data, and one optimisation barrier over the result keeps the compiler from
/// adding an early exit; `subtle`'s slice comparison puts a barrier on every byte, which made it
/// the largest single cost of a cached TokenReview.
pub fn constant_time_eq_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (a_words, a_rest) = a.as_chunks::<8>();
    let (b_words, b_rest) = b.as_chunks::<8>();
    let mut difference = 0u64;
    for (x, y) in a_words.iter().zip(b_words) {
        difference |= u64::from_ne_bytes(*x) ^ u64::from_ne_bytes(*y);
    }
    for (x, y) in a_rest.iter().zip(b_rest) {
        difference |= u64::from(x ^ y);
    }
    std::hint::black_box(difference) == 0
}

impl Engine {
    /// Authenticates the client of a token request. With no `oauthOptions.clients` configured,
    /// no client is required (KubeSphere 3.1) and `Ok(None)` is returned. Otherwise `client_id`
    /// must name a configured client and, for a confidential client, `client_secret` must match.
    pub fn authenticate_client(
        &self,
        client_id: Option<&str>,
        secret: Option<&str>,
    ) -> Result<Option<OAuthClient>, AuthError> {
        let settings = self.settings();
        if settings.clients.is_empty() {
            return Ok(None);
        }
        let Some(id) = client_id.filter(|s| !s.is_empty()) else {
            return Err(AuthError::InvalidClient(
                "client authentication is required: send client_id and client_secret".into(),
            ));
        };
        let Some(client) = settings.client(id) else {
            return Err(AuthError::InvalidClient(
                "the OAuth client was not found".into(),
            ));
        };
        match (&client.secret, secret) {
            (Some(expected), Some(given)) if constant_time_eq(expected.expose(), given) => {
                Ok(Some(client.clone()))
            }
            (Some(_), _) => Err(AuthError::InvalidClient(
                "invalid client credentials".into(),
            )),
            (None, Some(given)) if !given.is_empty() => Err(AuthError::InvalidClient(
                "this is a public client; it has no secret".into(),
            )),
            (None, _) => Ok(Some(client.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{constant_time_eq, constant_time_eq_bytes};

    #[test]
    fn ct_eq() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
        assert!(constant_time_eq("", ""));
    }

    /// Every length around the eight-byte words, and a difference in every position, whole
    /// words and the tail alike.
    #[test]
    fn ct_eq_finds_a_difference_in_any_byte_of_any_length() {
        for len in 0..40 {
            let a: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            assert!(constant_time_eq_bytes(&a, &a.clone()), "length {len}");
            for at in 0..len {
                for bit in [0x01, 0x80] {
                    let mut b = a.clone();
                    b[at] ^= bit;
                    assert!(!constant_time_eq_bytes(&a, &b), "length {len}, byte {at}");
                }
            }
            let mut longer = a.clone();
            longer.push(0);
            assert!(!constant_time_eq_bytes(&a, &longer), "length {len}");
        }
    }
}

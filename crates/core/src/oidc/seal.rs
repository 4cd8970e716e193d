//! Sealing of the private signing keys kept in the database: AES-256-GCM under a key derived
//! from `jwtSecret` with HKDF-SHA256, the key id as associated data (a sealed key copied to
//! another row does not open). Someone who can read the database but not the configuration
//! cannot sign ID tokens.
//!
//! If `jwtSecret` changes, the stored keys no longer open: they stay published (their public
//! halves are stored in clear) and a new key is generated for signing.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
use base64::Engine as _;

const PREFIX: &str = "v1.";

/// The key-wrapping key.
pub(crate) struct SealKey(LessSafeKey);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(***)")
    }
}

impl SealKey {
    /// Derives the key from `jwtSecret`.
    pub(crate) fn derive(secret: &[u8]) -> SealKey {
        let prk = Salt::new(HKDF_SHA256, b"portcullis oidc signing keys").extract(secret);
        let okm = prk
            .expand(&[b"aes-256-gcm v1"], &AES_256_GCM)
            .expect("32 bytes are within HKDF-SHA256's output limit");
        SealKey(LessSafeKey::new(UnboundKey::from(okm)))
    }

    /// Seals `plain` for the key `kid`.
    pub(crate) fn seal(&self, kid: &str, plain: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce);
        let mut buf = plain.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(kid.as_bytes()),
                &mut buf,
            )
            .expect("AES-GCM sealing of a short buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out)
        )
    }

    /// Opens what [`SealKey::seal`] produced for `kid`; `None` if it does not open.
    pub(crate) fn open(&self, kid: &str, sealed: &str) -> Option<Vec<u8>> {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sealed.strip_prefix(PREFIX)?)
            .ok()?;
        if raw.len() < NONCE_LEN {
            return None;
        }
        let (nonce, body) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = body.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buf)
            .ok()?;
        Some(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_only_with_the_same_secret_and_kid() {
        let k = SealKey::derive(b"secret-a");
        let sealed = k.seal("kid-1", b"private key bytes");
        assert!(sealed.starts_with("v1."));
        assert_eq!(
            k.open("kid-1", &sealed).as_deref(),
            Some(&b"private key bytes"[..])
        );
        assert_eq!(k.open("kid-2", &sealed), None);
        assert_eq!(SealKey::derive(b"secret-b").open("kid-1", &sealed), None);
        assert_eq!(k.open("kid-1", "v1.AAAA"), None);
        assert_eq!(k.open("kid-1", "garbage"), None);
        assert_ne!(k.seal("kid-1", b"x"), k.seal("kid-1", b"x"));
    }
}

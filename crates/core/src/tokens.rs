//! KubeSphere-compatible HS256 JWTs (spec §6): claims `username`, `sub`, `token_type`, `iss`,
//! `iat`, `exp`, `extra`, `groups`, plus Portcullis' `sid` (session id), `jti` and `gen` (refresh
//! generation). A token Portcullis issues verifies anywhere that shares `jwtSecret`, and the
//! extra claims are ignored there.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::sync::{Arc, RwLock};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

/// The kinds of token, with KubeSphere's `token_type` spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenType {
    /// `access_token`: a Bearer credential.
    AccessToken,
    /// `refresh_token`: only good at the token endpoint.
    RefreshToken,
    /// `static_token` (KubeSphere 4.x service accounts): recognised, never issued, never accepted.
    StaticToken,
    /// `code` (KubeSphere 3.2 authorization codes): recognised, never accepted as a credential.
    Code,
    /// `id_token`: recognised, never accepted as a credential.
    IdToken,
}

impl TokenType {
    /// KubeSphere's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::AccessToken => "access_token",
            TokenType::RefreshToken => "refresh_token",
            TokenType::StaticToken => "static_token",
            TokenType::Code => "code",
            TokenType::IdToken => "id_token",
        }
    }
}

/// The claims of a Portcullis token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// User name (KubeSphere's console reads this).
    pub username: String,
    /// User name again (KubeSphere 3.2+).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sub: String,
    /// Which kind of token this is; checked on every use.
    pub token_type: TokenType,
    /// Issuer.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub iss: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expiry, Unix seconds; absent when `accessTokenMaxAge` is 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// KubeSphere's extra map of string lists (`uninitialized`, `email`, `idp`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Vec<String>>,
    /// The user's groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Session id: revoking the session revokes the token.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sid: String,
    /// Unique token id.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jti: String,
    /// Stable user id (UUID), reported by TokenReview.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// Refresh generation (refresh tokens only): a refresh token is good once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#gen: Option<i64>,
    /// Granted scopes, space-separated (RFC 9068 §2.2.3): only in unstored client-credentials
    /// tokens, whose grant is nowhere else (see `oidc::client_tokens`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
}

/// Why a presented token was refused. The messages are safe to show to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT, bad signature, wrong algorithm, unreadable claims.
    #[error("token is malformed or its signature is invalid")]
    Invalid,
    /// Past `exp`.
    #[error("token has expired")]
    Expired,
    /// `iat` in the future beyond the allowed clock skew.
    #[error("token used before issued")]
    NotYetValid,
    /// A token of another kind (a refresh token presented as an access token, ...).
    #[error("wrong token type: got {got}, want {want}")]
    WrongType {
        /// The presented kind.
        got: &'static str,
        /// The kind this use needs.
        want: &'static str,
    },
    /// The session was revoked (logout, password change, disabled user, ...).
    #[error("token has been revoked")]
    Revoked,
    /// The session saw no use for longer than `accessTokenInactivityTimeout`.
    #[error("session expired after inactivity")]
    Inactive,
    /// Issued without a session by something else that shares the secret, while revocation is on.
    #[error("token was not issued by this server (no session)")]
    NoSession,
    /// No `exp` claim, while the session it names has an expiry (`accessTokenMaxAge` > 0).
    #[error("token has no expiry")]
    NoExpiry,
}

/// Signs and verifies HS256 tokens with `jwtSecret`.
///
/// Signing goes through `jsonwebtoken`. Verification is done here in one pass, because it runs
/// on every TokenReview and `jsonwebtoken` decodes and parses the claims twice: the header is
/// checked to name exactly `HS256` (RFC 8725 §3.1: no `none`, no RS/HS confusion), the MAC is
/// checked in constant time by aws-lc-rs over the exact signing input, and only then are the
/// claims decoded, once.
pub struct TokenCodec {
    encoding: EncodingKey,
    mac_key: aws_lc_rs::hmac::Key,
    verified: VerifiedTokens,
}

/// Most tokens remembered by [`VerifiedTokens`]; when full it starts over.
const VERIFIED_CACHE_ENTRIES: usize = 4096;

/// Tokens whose signature was checked and claims decoded, by exact token text, so a token
/// presented again (the Kubernetes API server reviews the same tokens over and over) costs a
/// hash lookup instead of an HMAC over the whole token and a JSON parse: the two were 40% of a
/// TokenReview's instructions. Time, type, revocation and inactivity are still checked on every
/// use. The cache belongs to the codec, so a new `jwtSecret` (reload) starts with an empty one.
///
/// Keyed by a 64-bit hash with a per-process random seed (foldhash: about five times cheaper than
/// std's SipHash over a 400-byte token, and not relied on for secrecy), and a hit is confirmed by
/// comparing the whole token in constant time: a forged token reaches a comparison with a cached
/// one only by a hash collision, and even then the comparison reveals nothing about it. Only
/// tokens that verified are ever inserted.
struct VerifiedTokens {
    hasher: foldhash::fast::RandomState,
    entries: RwLock<HashMap<u64, VerifiedToken, foldhash::fast::RandomState>>,
}

/// A cached token: its exact text and its decoded claims.
type VerifiedToken = (Box<str>, Arc<Claims>);

impl VerifiedTokens {
    fn new() -> Self {
        VerifiedTokens {
            hasher: foldhash::fast::RandomState::default(),
            entries: RwLock::new(HashMap::default()),
        }
    }

    fn get(&self, key: u64, token: &str) -> Option<Arc<Claims>> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let (cached, claims) = entries.get(&key)?;
        crate::constant_time_eq(cached, token).then(|| claims.clone())
    }

    fn insert(&self, key: u64, token: &str, claims: Arc<Claims>) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= VERIFIED_CACHE_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (token.into(), claims));
    }
}

/// The only JOSE header field verification reads.
#[derive(Deserialize)]
struct JoseHeader<'a> {
    #[serde(borrow)]
    alg: std::borrow::Cow<'a, str>,
}

impl std::fmt::Debug for TokenCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenCodec(***)")
    }
}

impl TokenCodec {
    /// A codec for this secret.
    pub fn new(secret: &[u8]) -> Result<Self, crate::CoreError> {
        let encoding = EncodingKey::from_secret(secret)
            .map_err(|e| crate::CoreError::Internal(format!("invalid jwtSecret: {e}")))?;
        // Only HS256: KubeSphere issues nothing else with the shared secret, and accepting RS/ES
        // or `none` here would open algorithm confusion. Time claims are checked by us with the
        // injected clock.
        let mac_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
        Ok(TokenCodec {
            encoding,
            mac_key,
            verified: VerifiedTokens::new(),
        })
    }

    /// Signs claims.
    pub fn sign(&self, claims: &Claims) -> Result<String, crate::CoreError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| crate::CoreError::Internal(format!("token signing failed: {e}")))
    }

    /// Checks signature, algorithm, time claims (`exp` with no leeway, `iat` with `skew_s`) and
    /// the token type.
    pub fn verify(
        &self,
        token: &str,
        want: TokenType,
        now_ms: i64,
        skew_s: i64,
    ) -> Result<Claims, TokenError> {
        let claims = self.decode_verified(token)?;
        Self::check(&claims, want, now_ms, skew_s)?;
        Ok(claims)
    }

    /// [`TokenCodec::verify`] through the cache of verified tokens: the signature and claims of
    /// a token seen before are not decoded again; the checks of time and type always run.
    pub fn verify_cached(
        &self,
        token: &str,
        want: TokenType,
        now_ms: i64,
        skew_s: i64,
    ) -> Result<Arc<Claims>, TokenError> {
        let key = self.verified.hasher.hash_one(token);
        let claims = match self.verified.get(key, token) {
            Some(claims) => claims,
            None => {
                let claims = Arc::new(self.decode_verified(token)?);
                self.verified.insert(key, token, claims.clone());
                claims
            }
        };
        Self::check(&claims, want, now_ms, skew_s)?;
        Ok(claims)
    }

    /// The checks of every use: expiry (no leeway), issue time (with `skew_s`), token type.
    fn check(claims: &Claims, want: TokenType, now_ms: i64, skew_s: i64) -> Result<(), TokenError> {
        let now_s = now_ms.div_euclid(1000);
        if let Some(exp) = claims.exp
            && now_s >= exp
        {
            return Err(TokenError::Expired);
        }
        if claims.iat > now_s + skew_s {
            return Err(TokenError::NotYetValid);
        }
        if claims.token_type != want {
            return Err(TokenError::WrongType {
                got: claims.token_type.as_str(),
                want: want.as_str(),
            });
        }
        Ok(())
    }

    /// Decodes and checks only the signature (for `portcullis token inspect`).
    pub fn decode_unchecked_time(&self, token: &str) -> Result<Claims, TokenError> {
        self.decode_verified(token)
    }

    /// Checks the compact JWS (`header.payload.signature`, base64url without padding) and
    /// returns its claims. Every failure is [`TokenError::Invalid`].
    fn decode_verified(&self, token: &str) -> Result<Claims, TokenError> {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (signing_input, signature) = token.rsplit_once('.').ok_or(TokenError::Invalid)?;
        let (header, payload) = signing_input.split_once('.').ok_or(TokenError::Invalid)?;
        if payload.contains('.') {
            return Err(TokenError::Invalid);
        }
        let header = b64.decode(header).map_err(|_| TokenError::Invalid)?;
        let header: JoseHeader<'_> =
            serde_json::from_slice(&header).map_err(|_| TokenError::Invalid)?;
        if header.alg != "HS256" {
            return Err(TokenError::Invalid);
        }
        let signature = b64.decode(signature).map_err(|_| TokenError::Invalid)?;
        aws_lc_rs::hmac::verify(&self.mac_key, signing_input.as_bytes(), &signature)
            .map_err(|_| TokenError::Invalid)?;
        let payload = b64.decode(payload).map_err(|_| TokenError::Invalid)?;
        serde_json::from_slice(&payload).map_err(|_| TokenError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(tt: TokenType, iat: i64, exp: Option<i64>) -> Claims {
        Claims {
            username: "alice".into(),
            sub: "alice".into(),
            token_type: tt,
            iss: "kubesphere".into(),
            iat,
            exp,
            extra: BTreeMap::new(),
            groups: vec![],
            sid: "s1".into(),
            jti: "j1".into(),
            uid: String::new(),
            r#gen: None,
            scope: String::new(),
        }
    }

    #[test]
    fn round_trip_and_type_check() {
        let c = TokenCodec::new(b"secret").unwrap();
        let t = c
            .sign(&claims(TokenType::AccessToken, 1000, Some(2000)))
            .unwrap();
        assert_eq!(
            c.verify(&t, TokenType::AccessToken, 1_500_000, 10)
                .unwrap()
                .username,
            "alice"
        );
        assert!(matches!(
            c.verify(&t, TokenType::RefreshToken, 1_500_000, 10),
            Err(TokenError::WrongType { .. })
        ));
        assert_eq!(
            c.verify(&t, TokenType::AccessToken, 2_000_000, 10),
            Err(TokenError::Expired)
        );
        assert_eq!(
            c.verify(&t, TokenType::AccessToken, 900_000, 10),
            Err(TokenError::NotYetValid)
        );
        assert_eq!(
            c.verify(&t, TokenType::AccessToken, 995_000, 10)
                .unwrap()
                .iat,
            1000
        );
    }

    #[test]
    fn cached_verification_still_checks_time_and_type_every_time() {
        let c = TokenCodec::new(b"secret").unwrap();
        let t = c
            .sign(&claims(TokenType::AccessToken, 1000, Some(2000)))
            .unwrap();
        let first = c
            .verify_cached(&t, TokenType::AccessToken, 1_500_000, 10)
            .unwrap();
        let again = c
            .verify_cached(&t, TokenType::AccessToken, 1_600_000, 10)
            .unwrap();
        assert!(Arc::ptr_eq(&first, &again), "the second use is a cache hit");
        assert_eq!(
            c.verify_cached(&t, TokenType::AccessToken, 2_000_000, 10),
            Err(TokenError::Expired)
        );
        assert_eq!(
            c.verify_cached(&t, TokenType::AccessToken, 900_000, 10),
            Err(TokenError::NotYetValid)
        );
        assert!(matches!(
            c.verify_cached(&t, TokenType::RefreshToken, 1_500_000, 10),
            Err(TokenError::WrongType { .. })
        ));
    }

    #[test]
    fn cache_never_accepts_what_the_codec_refuses() {
        let c = TokenCodec::new(b"secret").unwrap();
        let t = c.sign(&claims(TokenType::AccessToken, 1000, None)).unwrap();
        c.verify_cached(&t, TokenType::AccessToken, 1_000_000, 0)
            .unwrap();
        // One character of the signature changed, or the token cut or extended: a miss, then
        // the full check refuses it, however often it is tried.
        let mut tampered = t.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        for bad in [tampered.as_str(), &t[..t.len() - 1], &format!("{t}A")] {
            for _ in 0..2 {
                assert_eq!(
                    c.verify_cached(bad, TokenType::AccessToken, 1_000_000, 0),
                    Err(TokenError::Invalid),
                    "{bad}"
                );
            }
        }
        // Another secret's codec has its own cache.
        let other = TokenCodec::new(b"other").unwrap();
        assert_eq!(
            other.verify_cached(&t, TokenType::AccessToken, 1_000_000, 0),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn cache_stays_bounded() {
        let c = TokenCodec::new(b"secret").unwrap();
        for i in 0..(VERIFIED_CACHE_ENTRIES + 10) {
            let mut cl = claims(TokenType::AccessToken, 1000, None);
            cl.jti = format!("j{i}");
            let t = c.sign(&cl).unwrap();
            c.verify_cached(&t, TokenType::AccessToken, 1_000_000, 0)
                .unwrap();
        }
        let n = c.verified.entries.read().unwrap().len();
        assert!(n <= VERIFIED_CACHE_ENTRIES, "{n}");
    }

    #[test]
    fn other_secret_and_garbage_refused() {
        let a = TokenCodec::new(b"secret-a").unwrap();
        let b = TokenCodec::new(b"secret-b").unwrap();
        let t = a.sign(&claims(TokenType::AccessToken, 1000, None)).unwrap();
        assert_eq!(
            b.verify(&t, TokenType::AccessToken, 1_000_000, 0),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            a.verify("garbage", TokenType::AccessToken, 0, 0),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            a.verify("", TokenType::AccessToken, 0, 0),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn alg_none_refused() {
        use base64::Engine as _;
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let h = e.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let p = e.encode(br#"{"username":"admin","token_type":"access_token","iat":1}"#);
        let c = TokenCodec::new(b"secret").unwrap();
        assert_eq!(
            c.verify(&format!("{h}.{p}."), TokenType::AccessToken, 1000, 0),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn tampering_and_confusion_refused() {
        use base64::Engine as _;
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let c = TokenCodec::new(b"secret").unwrap();
        let t = c.sign(&claims(TokenType::AccessToken, 1000, None)).unwrap();
        let (h, rest) = t.split_once('.').unwrap();
        let (p, s) = rest.split_once('.').unwrap();
        // Payload swapped for another user's, signature kept.
        let forged = e.encode(br#"{"username":"admin","token_type":"access_token","iat":1000}"#);
        assert_eq!(
            c.verify(
                &format!("{h}.{forged}.{s}"),
                TokenType::AccessToken,
                1_000_000,
                0
            ),
            Err(TokenError::Invalid)
        );
        // HS512 and RS256 headers refused even with a matching MAC over the new input.
        for alg in ["HS512", "RS256", "hs256", "none"] {
            let h2 = e.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
            let input = format!("{h2}.{p}");
            let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, b"secret");
            let mac = e.encode(aws_lc_rs::hmac::sign(&key, input.as_bytes()).as_ref());
            assert_eq!(
                c.verify(
                    &format!("{input}.{mac}"),
                    TokenType::AccessToken,
                    1_000_000,
                    0
                ),
                Err(TokenError::Invalid),
                "{alg}"
            );
        }
        // Extra segments, padding, truncated signature.
        for bad in [
            format!("{t}.x"),
            format!("{h}.{p}.{s}="),
            format!("{h}.{p}.{}", &s[..s.len() - 2]),
            format!("{h}.{p}"),
            format!("{h}..{s}"),
        ] {
            assert_eq!(
                c.verify(&bad, TokenType::AccessToken, 1_000_000, 0),
                Err(TokenError::Invalid),
                "{bad}"
            );
        }
    }

    #[test]
    fn kubesphere_31_token_shape_is_read() {
        // A KubeSphere 3.1 payload (spec §6.1) carries nbf and no sub/sid.
        let c = TokenCodec::new(b"secret").unwrap();
        let enc = EncodingKey::from_secret(b"secret").unwrap();
        let raw = serde_json::json!({"username":"admin","extra":{"uninitialized":["true"]},"token_type":"access_token","exp":1700007190,"iat":1699999990,"iss":"kubesphere","nbf":1699999990});
        let t = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &raw, &enc).unwrap();
        let got = c
            .verify(&t, TokenType::AccessToken, 1_700_000_000_000, 10)
            .unwrap();
        assert_eq!(got.username, "admin");
        assert_eq!(got.extra["uninitialized"], vec!["true".to_string()]);
        assert!(got.sid.is_empty());
    }
}

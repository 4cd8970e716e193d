//! Structured tokens: an arbitrary JOSE header and claims object, correctly signed with the codec's secret, so the
//! fuzzer gets past the MAC and exercises the header check and the claims decoding and checks of
//! `TokenCodec::verify`. Invariants: whatever is accepted has the wanted `token_type`, is not expired and not
//! issued in the future beyond the skew; a header other than `"alg":"HS256"` is never accepted; changing one
//! byte of an accepted token makes it invalid.
#![no_main]

use std::sync::LazyLock;

use arbitrary::Arbitrary;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use portcullis_core::tokens::TokenCodec;
use portcullis_core::{TokenError, TokenType};
use portcullis_fuzz::{ArbJson, ArbObject};

const SECRET: &[u8] = b"fuzz-secret";
static CODEC: LazyLock<TokenCodec> =
    LazyLock::new(|| TokenCodec::new(SECRET).expect("a codec for a fixed secret"));

#[derive(Debug, Arbitrary)]
enum Header {
    /// `{"alg":"HS256","typ":"JWT"}`, what Portcullis and KubeSphere sign.
    Standard,
    /// Any JSON object (keys biased to `alg`/`typ`).
    Object(ArbObject),
    /// Any JSON value.
    Value(ArbJson),
    /// Raw header bytes.
    Raw(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
enum Payload {
    Object(ArbObject),
    Value(ArbJson),
    Raw(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
struct Input {
    header: Header,
    payload: Payload,
    /// Seconds around 2023-11-14 (the claims generator's plausible times).
    now_offset_s: i32,
    now_ms_part: u16,
    /// Configured clock skew in seconds (a config value: bounded like Go durations in practice).
    skew_s: u16,
    refresh: bool,
    flip: Option<(u16, u8)>,
}

fn json_bytes(v: &impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec(v).expect("JSON values serialise")
}

fuzz_target!(|input: Input| {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = match &input.header {
        Header::Standard => br#"{"alg":"HS256","typ":"JWT"}"#.to_vec(),
        Header::Object(o) => json_bytes(&o.0),
        Header::Value(v) => json_bytes(&v.0),
        Header::Raw(r) => r.clone(),
    };
    let payload = match &input.payload {
        Payload::Object(o) => json_bytes(&o.0),
        Payload::Value(v) => json_bytes(&v.0),
        Payload::Raw(r) => r.clone(),
    };
    let signing_input = format!("{}.{}", b64.encode(&header), b64.encode(&payload));
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, SECRET);
    let mac = aws_lc_rs::hmac::sign(&key, signing_input.as_bytes());
    let token = format!("{signing_input}.{}", b64.encode(mac.as_ref()));

    let now_ms = (1_700_000_000_i64 + i64::from(input.now_offset_s)) * 1000
        + i64::from(input.now_ms_part % 1000);
    let skew = i64::from(input.skew_s);
    let want = if input.refresh {
        TokenType::RefreshToken
    } else {
        TokenType::AccessToken
    };
    let result = CODEC.verify(&token, want, now_ms, skew);
    let alg_ok = serde_json::from_slice::<serde_json::Value>(&header)
        .ok()
        .and_then(|h| h.get("alg").and_then(|a| a.as_str().map(|a| a == "HS256")))
        .unwrap_or(false);
    match &result {
        Ok(claims) => {
            assert!(alg_ok, "accepted a header without alg HS256: {header:?}");
            assert_eq!(claims.token_type, want);
            if let Some(exp) = claims.exp {
                assert!(now_ms / 1000 < exp, "accepted an expired token");
            }
            assert!(
                claims.iat <= now_ms / 1000 + skew,
                "accepted a token from the future"
            );
            // Re-signing the decoded claims gives a token that verifies to the same claims.
            let again = CODEC.sign(claims).expect("signing decoded claims");
            assert_eq!(
                CODEC.verify(&again, want, now_ms, skew).as_ref(),
                Ok(claims)
            );
        }
        Err(TokenError::Invalid) => {}
        Err(_) => {
            // Expired / not yet valid / wrong type: the signature and claims were fine.
            assert!(alg_ok);
            assert!(CODEC.decode_unchecked_time(&token).is_ok());
        }
    }
    if let Some((at, xor)) = input.flip
        && xor != 0
    {
        let mut bytes = token.clone().into_bytes();
        let at = usize::from(at) % bytes.len();
        bytes[at] ^= xor;
        if let Ok(tampered) = String::from_utf8(bytes) {
            // Base64url decoders may ignore trailing bits of the last character, so a flip there can leave the
            // decoded bytes unchanged; anything else must break the token.
            let decoded_same = tampered
                .split('.')
                .map(|s| b64.decode(s).ok())
                .collect::<Vec<_>>()
                == token
                    .split('.')
                    .map(|s| b64.decode(s).ok())
                    .collect::<Vec<_>>();
            if !decoded_same {
                assert!(
                    CODEC.verify(&tampered, want, now_ms, skew).is_err() || result.is_err(),
                    "a tampered token verified: {tampered:?}"
                );
            }
        }
    }
});

//! Raw bytes as a presented token: `TokenCodec::verify` (the one-pass HS256 verifier every Bearer token,
//! TokenReview and refresh goes through) must refuse garbage with `TokenError::Invalid`, never panic, and never
//! accept anything (the fuzzer cannot forge the MAC; acceptance here would be a verifier bug).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use portcullis_core::tokens::TokenCodec;
use portcullis_core::{TokenError, TokenType};

static CODEC: LazyLock<TokenCodec> =
    LazyLock::new(|| TokenCodec::new(b"fuzz-secret").expect("a codec for a fixed secret"));

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    for want in [TokenType::AccessToken, TokenType::RefreshToken] {
        let got = CODEC.verify(token, want, 1_700_000_000_000, 10);
        assert_eq!(
            got,
            Err(TokenError::Invalid),
            "accepted an unsigned token: {token:?}"
        );
    }
    assert!(CODEC.decode_unchecked_time(token).is_err());
});

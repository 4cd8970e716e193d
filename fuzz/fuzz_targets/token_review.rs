//! A TokenReview request body → `portcullis_http::tokenreview::parse_review`, the typed, borrowing parse of the
//! hottest endpoint. Must answer a review or a 400, never panic; an accepted review has a supported `apiVersion`
//! and a non-empty token, the same a generic JSON parse of the body finds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_http::tokenreview::parse_review;

fuzz_target!(|data: &[u8]| {
    let Ok(review) = parse_review(data) else {
        return;
    };
    assert!(matches!(
        &*review.api_version,
        "authentication.k8s.io/v1" | "authentication.k8s.io/v1beta1"
    ));
    assert!(!review.token.is_empty());
    // Differential check against an untyped parse of the same body.
    let value: serde_json::Value =
        serde_json::from_slice(data).expect("a body the typed parser accepted is JSON");
    assert_eq!(
        value.pointer("/spec/token").and_then(|t| t.as_str()),
        Some(&*review.token)
    );
});

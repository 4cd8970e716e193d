//! A CAS `serviceValidate` answer → `portcullis_providers::cas::parse_service_response`. Must return a validation
//! or a message, never panic; a success always names a non-empty, trimmed user, and attribute values are
//! non-empty and trimmed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_providers::cas::{Validation, parse_service_response};

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    match parse_service_response(body) {
        Ok(Validation::Success { user, attributes }) => {
            assert!(!user.is_empty() && user == user.trim(), "user {user:?}");
            for values in attributes.values() {
                for v in values {
                    assert!(!v.is_empty() && v == v.trim(), "attribute value {v:?}");
                }
            }
        }
        Ok(Validation::Failure { code, message }) => {
            assert_eq!(code, code.trim());
            assert_eq!(message, message.trim());
        }
        Err(message) => assert!(!message.is_empty()),
    }
});

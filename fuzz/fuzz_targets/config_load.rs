//! A whole `kubesphere.yaml` → `portcullis_config::load_str` with the provider types of the real registry. Must
//! return a config or a report of problems, never panic; a loaded config has a JWT secret, and both the config's
//! `Debug` and the report render.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use portcullis_config::LoadOptions;

static TYPES: LazyLock<Vec<String>> = LazyLock::new(|| {
    let registry = portcullis_providers::builtin_registry(portcullis_providers::http_client(false));
    registry
        .accepted_types()
        .into_iter()
        .map(str::to_owned)
        .collect()
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let types: Vec<&str> = TYPES.iter().map(String::as_str).collect();
    let opts = LoadOptions {
        known_provider_types: &types,
        overrides: Default::default(),
    };
    match portcullis_config::load_str(text, None, &opts) {
        Ok(config) => {
            assert!(
                !config.authentication.jwt_secret.is_empty(),
                "loaded without a jwtSecret"
            );
            let _ = format!("{config:?}");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});

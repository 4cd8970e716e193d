//! Provider-level tests of the built-in providers against the fake upstreams of `portcullis-test-upstreams`.
//! One test binary: `support` holds the helpers, `checks` the suite every built-in provider passes, the other
//! modules the provider-specific behaviour.

mod checks;
mod github;
mod idaas;
mod registry;
mod support;

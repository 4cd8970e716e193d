//! Provider-level tests of the built-in providers: against the in-process fakes of `portcullis-test-upstreams`
//! (GitHub, IDaaS, generic OAuth 2.0) and against real servers the tests start themselves (oidc-provider, slapd,
//! django-cas-server; installed by `crates/test-upstreams/peers/ci-install.sh`). One test binary: `support` holds
//! the helpers, `checks` the suite every built-in OAuth provider with a fake passes, the other modules the
//! provider-specific behaviour.

mod body_cap;
mod cas;
mod checks;
mod generic;
mod github;
mod github_groups;
mod idaas;
mod ldap;
mod oidc;
mod registry;
mod support;

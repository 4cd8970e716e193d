//! Integration tests of the real `portcullis` binary over HTTP, on SQLite and on PostgreSQL.

/// `on_both_backends!(case, ...)`: one test per case and backend, `sqlite::case` and
/// `postgres::case`, each calling `case(postgres: bool)` of the calling module. Defined before
/// the modules, so every one of them can use it.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread")] async fn $name() { super::$name(false).await }) *
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread")] async fn $name() { super::$name(true).await }) *
        }
    };
}

mod abuse;
mod account_pages;
mod cli;
mod common;
mod core_flow;
mod defaults;
mod degradation;
mod deploy;
mod e2e;
mod faults;
mod federation;
mod import;
mod kubesphere_redis;
mod ldap_login;
mod lifetime;
mod logout;
mod logout_tokens;
mod methods;
mod minted;
mod oidc;
// Trace export runs with the `otel` feature (`cargo test --workspace --all-features`); without
// it, a configured endpoint only earns a warning.
#[cfg(feature = "otel")]
mod otel;
#[cfg(not(feature = "otel"))]
mod otel_off;
mod page_headers;
mod passwords;
mod redis_tls;
mod reload;
mod replicas;
mod soak;

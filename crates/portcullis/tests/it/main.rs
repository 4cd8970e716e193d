//! Integration tests of the real `portcullis` binary over HTTP, on SQLite and on PostgreSQL.

mod account_pages;
mod cli;
mod common;
mod core_flow;
mod defaults;
mod degradation;
mod deploy;
mod e2e;
mod federation;
mod hardening;
mod import;
mod kubesphere_redis;
mod ldap_login;
mod lifetime;
mod logout;
mod minted;
mod oidc;
mod redis_tls;
mod reload;
mod replicas;

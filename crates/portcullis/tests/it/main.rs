//! Integration tests of the real `portcullis` binary over HTTP, on SQLite and on PostgreSQL.

mod account_pages;
mod cli;
mod common;
mod core_flow;
mod defaults;
mod e2e;
mod federation;
mod ldap_login;
mod oidc;
mod replicas;

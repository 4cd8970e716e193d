//! In-process fake upstream identity providers for Portcullis' tests: [`FakeGitHub`] and [`FakeIdaas`].
//!
//! Each is an axum server on `127.0.0.1:0`, started with one call (`FakeGitHub::start().await`), controlled through
//! methods (add and rename users, choose who logs in, switch to a [`Mode`] that fails the way real upstreams fail)
//! and stopped when dropped. They follow the upstreams' documented behaviour, quirks included (GitHub's errors with
//! HTTP 200, its `User-Agent` requirement, private e-mail addresses), because a fake that is kinder than the real
//! service hides bugs. Provider tests and the binary's integration tests share them instead of copying mocks.
//!
//! Main design decision: the fakes keep all state behind a `std::sync::Mutex` never held across an `.await`, and
//! failure modes that need time ([`Mode::Slow`]) sleep on the *server* side only; tests never sleep to wait.

mod common;
mod github;
mod idaas;

pub use common::{Mode, RecordedRequest, pkce_challenge_s256};
pub use github::FakeGitHub;
pub use idaas::FakeIdaas;

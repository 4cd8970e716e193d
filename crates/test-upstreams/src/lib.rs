//! Test upstreams for Portcullis' provider tests.
//!
//! * In-process fakes: [`FakeGitHub`], [`FakeIdaas`] and [`FakeOAuth2`] (GitLab-, Gitea- and Google-shaped, for the
//!   generic OAuth 2.0 provider). Each is an axum server on `127.0.0.1:0`, started with one call
//!   (`FakeGitHub::start().await`), controlled through methods (add and rename users, choose who logs in, switch to
//!   a [`Mode`] that fails the way real upstreams fail) and stopped when dropped. They follow the upstreams'
//!   documented behaviour, quirks included (GitHub's errors with HTTP 200, its `User-Agent` requirement, private
//!   e-mail addresses), because a fake that is kinder than the real service hides bugs.
//! * [`FaultProxy`]: a reverse proxy in front of any of them (or of a real peer) that makes chosen paths fail:
//!   refused, held past the client's timeout, HTML, garbage, truncated JSON, a wrong content type, a huge body.
//! * [`ScriptedUpstream`]: answers each path with a body the test writes byte for byte (XML with DTDs, oversized
//!   or endless bodies framed with `Content-Length` or chunked) and records what was requested and how much of
//!   each answer was written before the client went away.
//! * Real third-party servers ([`peers`]): node `oidc-provider`, Debian's `slapd` and `django-cas-server`, started
//!   by the tests themselves on free loopback ports and stopped by pid (`peers/ci-install.sh` installs them).
//!
//! Main design decision: the fakes keep all state behind a `std::sync::Mutex` never held across an `.await`, and
//! failure modes that need time ([`Mode::Slow`]) sleep on the *server* side only; tests never sleep to wait: peers
//! are polled for readiness with a deadline.

mod common;
mod fault_proxy;
mod github;
mod idaas;
mod oauth2;
pub mod peers;
mod scripted;

pub use common::{Mode, RecordedRequest, pkce_challenge_s256};
pub use fault_proxy::{Fault, FaultProxy};
pub use github::FakeGitHub;
pub use idaas::FakeIdaas;
pub use oauth2::{FakeOAuth2, FakeUser, Flavor};
pub use scripted::{Answered, ENDLESS_LIMIT, Framing, Scripted, ScriptedUpstream};

//! Portcullis' engine: KubeSphere-compatible tokens, sessions and their revocation, password
//! authentication with lockout, login records, and user administration. No HTTP types here.
//!
//! Main design decision: token verification is stateless on the hot path. Every token belongs
//! to a session; revocations are appended to a log in the store and mirrored in memory by every
//! process ([`revocation`]); inactivity is tracked in memory and flushed in batches
//! ([`activity`]). So a TokenReview costs an HMAC and two hash-map lookups, and a revocation made
//! anywhere (another replica, the CLI) is honoured everywhere within a poll interval.

mod account;
pub mod activity;
mod clients;
pub mod clock;
mod engine;
mod error;
pub mod federation;
mod jobs;
pub mod kubesphere_redis;
mod lockout;
mod login;
pub mod names;
pub mod observe;
pub mod oidc;
pub mod password;
pub mod redis_bus;
pub mod redis_link;
pub mod revocation;
mod settings;
pub mod tokens;
mod users;

pub use account::{AccountError, AccountOverview, PasswordChangeError};
pub use clients::constant_time_eq;
pub use clock::{Clock, ManualClock, OffsetFileClock, SystemClock};
pub use engine::{
    BackgroundJobs, Engine, IssuedTokens, Principal, Refreshed, RequestContext, random_id,
};
pub use error::{AuthError, CoreError};
pub use federation::{FederatedLogin, FederationError, ProviderSet};
pub use login::PasswordLogin;
pub use oidc::OidcError;
pub use settings::Settings;
pub use tokens::{Claims, TokenError, TokenType};
pub use users::{NewUser, UserDetails};

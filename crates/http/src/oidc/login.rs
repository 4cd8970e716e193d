//! `GET|POST /oauth/login`: where the authorization endpoint sends a browser without a session.
//!
//! It is the same sign-in page as `/login` ([`crate::login_pages`]): the password form
//! (lockout, login records and `multipleLogin` apply, exactly as for the password grant) and the
//! identity-provider buttons, all returning the browser to `return_to` (the authorization
//! request) afterwards.

/// Where the authorization endpoint sends browsers to log in.
pub const LOGIN_PATH: &str = "/oauth/login";

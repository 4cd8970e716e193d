//! The checks every built-in OAuth provider passes against its fake upstream, generated per provider by
//! `provider_checks!`.

use std::sync::Arc;
use std::time::Duration;

use portcullis_idp::{CallbackRequest, OAuthProvider};
use portcullis_test_upstreams::{FakeGitHub, FakeIdaas, FakeOAuth2, FakeUser, Flavor, Mode};
use serde_json::{Value, json};

use crate::support::{self, assert_upstream};

/// A provider type with its fake upstream, one user ready to log in.
pub trait Fixture: Sized {
    const TYPE: &'static str;
    /// The user id the provider must report for the prepared user.
    const USER_ID: &'static str;
    async fn start() -> Self;
    fn options(&self) -> Value;
    fn set_token_mode(&self, mode: Mode);
    fn set_api_mode(&self, mode: Mode);
    fn deny_consent(&self);

    fn provider_with(&self, options: Value, http: reqwest::Client) -> Arc<dyn OAuthProvider> {
        support::create(Self::TYPE, options, http).unwrap()
    }
    fn provider(&self) -> Arc<dyn OAuthProvider> {
        self.provider_with(self.options(), support::http())
    }
}

pub struct GitHub(pub FakeGitHub);

impl Fixture for GitHub {
    const TYPE: &'static str = "GitHubIdentityProvider";
    const USER_ID: &'static str = "1001";
    async fn start() -> Self {
        let fake = FakeGitHub::start().await;
        fake.add_user(
            1001,
            "octocat",
            Some("octocat@example.com"),
            vec![("octocat@example.com", true, true)],
        );
        fake.login_as(1001);
        GitHub(fake)
    }
    fn options(&self) -> Value {
        let f = &self.0;
        json!({"clientID": f.client_id(), "clientSecret": f.client_secret(),
               "redirectURL": "https://console.example/oauth/redirect/github", "scopes": ["user:email"],
               "endpoint": {"authURL": f.auth_url(), "tokenURL": f.token_url(), "userInfoURL": f.user_info_url()}})
    }
    fn set_token_mode(&self, mode: Mode) {
        self.0.set_token_mode(mode)
    }
    fn set_api_mode(&self, mode: Mode) {
        self.0.set_api_mode(mode)
    }
    fn deny_consent(&self) {
        self.0.deny_consent()
    }
}

pub struct Idaas(pub FakeIdaas);

impl Fixture for Idaas {
    const TYPE: &'static str = "AliyunIDaaSProvider";
    const USER_ID: &'static str = "sub-0001";
    async fn start() -> Self {
        let fake = FakeIdaas::start().await;
        fake.add_user(
            "sub-0001",
            "alice",
            Some("alice@example.com"),
            Some("Alice"),
        );
        fake.login_as("sub-0001");
        Idaas(fake)
    }
    fn options(&self) -> Value {
        let f = &self.0;
        json!({"clientID": f.client_id(), "clientSecret": f.client_secret(),
               "redirectURL": "https://console.example/oauth/redirect/idaas", "pkce": true,
               "endpoint": {"authURL": f.auth_url(), "tokenURL": f.token_url(), "userInfoURL": f.user_info_url()}})
    }
    fn set_token_mode(&self, mode: Mode) {
        self.0.set_token_mode(mode)
    }
    fn set_api_mode(&self, mode: Mode) {
        self.0.set_api_mode(mode)
    }
    fn deny_consent(&self) {
        self.0.deny_consent()
    }
}

/// The generic OAuth 2.0 provider against a Gitea-shaped fake, configured with the `endpoint.*` spelling and the
/// default claim expressions only.
pub struct Generic(pub FakeOAuth2);

impl Fixture for Generic {
    const TYPE: &'static str = "OAuth2IdentityProvider";
    const USER_ID: &'static str = "7";
    async fn start() -> Self {
        let fake = FakeOAuth2::start(Flavor::Gitea).await;
        fake.add_user(FakeUser {
            id: 7,
            login: "alice".into(),
            name: "Alice".into(),
            email: "alice@example.org".into(),
            email_verified: true,
            extra: Value::Null,
        });
        Generic(fake)
    }
    fn options(&self) -> Value {
        let f = &self.0;
        json!({"clientID": f.client_id(), "clientSecret": f.client_secret(),
               "redirectURL": "https://console.example/oauth/redirect/gitea",
               "endpoint": {"authURL": f.auth_url(), "tokenURL": f.token_url(), "userInfoURL": f.user_info_url()}})
    }
    fn set_token_mode(&self, mode: Mode) {
        self.0.set_token_mode(mode)
    }
    fn set_api_mode(&self, mode: Mode) {
        self.0.set_api_mode(mode)
    }
    fn deny_consent(&self) {
        self.0.deny_consent()
    }
}

pub async fn login_succeeds<F: Fixture>() {
    let f = F::start().await;
    let id = support::login(&*f.provider(), &[]).await.unwrap();
    assert_eq!(id.user_id(), F::USER_ID);
    assert!(id.username.is_some() && id.email.is_some(), "{id:?}");
}

pub async fn code_is_single_use<F: Fixture>() {
    let f = F::start().await;
    let p = f.provider();
    let cb = support::authorize(&*p, &[]).await;
    p.exchange(&cb.request).await.unwrap();
    let e = p.exchange(&cb.request).await.unwrap_err();
    assert!(
        e.is_bad_credentials(),
        "a replayed code must be bad credentials: {e}"
    );
}

pub async fn made_up_code_is_bad_credentials<F: Fixture>() {
    let f = F::start().await;
    let p = f.provider();
    let cb = CallbackRequest::from_query("code=not-a-real-code&state=s")
        .with_pkce_verifier("v".repeat(43));
    let e = p.exchange(&cb).await.unwrap_err();
    assert!(e.is_bad_credentials(), "{e}");
}

pub async fn pkce_verifier_is_checked<F: Fixture>() {
    let f = F::start().await;
    let p = f.provider();
    assert!(p.supports_pkce());
    let cb = support::authorize(&*p, &[]).await;
    assert!(
        cb.url.as_str().contains("code_challenge_method=S256"),
        "{}",
        cb.url
    );
    let wrong = cb.request.clone().with_pkce_verifier("x".repeat(43));
    let e = p.exchange(&wrong).await.unwrap_err();
    assert!(
        e.is_bad_credentials(),
        "a wrong verifier must be refused: {e}"
    );
    // The code was spent by the failed attempt (single use); a fresh round trip with the right verifier works.
    let id = support::login(&*p, &[]).await.unwrap();
    assert_eq!(id.user_id(), F::USER_ID);
}

pub async fn user_denial_is_bad_credentials<F: Fixture>() {
    let f = F::start().await;
    f.deny_consent();
    let e = support::login(&*f.provider(), &[]).await.unwrap_err();
    assert!(
        e.is_bad_credentials() && e.to_string().contains("access_denied"),
        "{e}"
    );
}

pub async fn wrong_client_secret_is_misconfigured<F: Fixture>() {
    let f = F::start().await;
    let mut options = f.options();
    options["clientSecret"] = json!("not-the-secret");
    let p = f.provider_with(options, support::http());
    let e = support::login(&*p, &[]).await.unwrap_err();
    assert!(
        e.is_misconfigured() && e.to_string().contains("clientSecret"),
        "{e}"
    );
}

pub async fn token_endpoint_failures_are_upstream<F: Fixture>() {
    let f = F::start().await;
    let p = f.provider();
    f.set_token_mode(Mode::Error500);
    assert_upstream(support::login(&*p, &[]).await, "HTTP 500");
    f.set_token_mode(Mode::Html);
    assert_upstream(support::login(&*p, &[]).await, "HTML page");
    f.set_token_mode(Mode::Garbage);
    assert_upstream(support::login(&*p, &[]).await, "malformed JSON");
}

pub async fn user_endpoint_failures_are_upstream<F: Fixture>() {
    let f = F::start().await;
    let p = f.provider();
    f.set_api_mode(Mode::Error500);
    assert_upstream(support::login(&*p, &[]).await, "HTTP 500");
    f.set_api_mode(Mode::Html);
    assert_upstream(support::login(&*p, &[]).await, "HTML page");
    f.set_api_mode(Mode::Garbage);
    assert_upstream(support::login(&*p, &[]).await, "malformed JSON");
    f.set_api_mode(Mode::NoUserId);
    assert_upstream(support::login(&*p, &[]).await, "without");
}

pub async fn slow_upstream_times_out<F: Fixture>() {
    let f = F::start().await;
    let p = f.provider_with(
        f.options(),
        support::http_with_timeout(Duration::from_millis(300)),
    );
    f.set_token_mode(Mode::Slow(Duration::from_secs(10)));
    assert_upstream(support::login(&*p, &[]).await, "timed out");
    f.set_token_mode(Mode::Normal);
    f.set_api_mode(Mode::Slow(Duration::from_secs(10)));
    assert_upstream(support::login(&*p, &[]).await, "timed out");
}

pub async fn unreachable_upstream_is_upstream<F: Fixture>() {
    let f = F::start().await;
    let mut options = f.options();
    options["endpoint"]["tokenURL"] = json!(format!("{}/token", support::closed_port_url()));
    let p = f.provider_with(options, support::http());
    assert_upstream(support::login(&*p, &[]).await, "could not be reached");
}

pub async fn secrets_are_not_published<F: Fixture>() {
    let f = F::start().await;
    let public = f.provider().public_options();
    assert!(public.contains_key("clientID"), "{public:?}");
    assert!(
        !public.keys().any(|k| k.to_lowercase().contains("secret")),
        "{public:?}"
    );
    assert!(public["endpoint"]["authURL"].is_string(), "{public:?}");
}

/// Generates one `#[tokio::test]` per check for a fixture.
macro_rules! provider_checks {
    ($module:ident, $fixture:ty, [$($check:ident),* $(,)?]) => {
        mod $module {
            $(
                #[tokio::test]
                async fn $check() {
                    crate::checks::$check::<$fixture>().await
                }
            )*
        }
    };
}

provider_checks!(
    github_checks,
    crate::checks::GitHub,
    [
        login_succeeds,
        code_is_single_use,
        made_up_code_is_bad_credentials,
        pkce_verifier_is_checked,
        user_denial_is_bad_credentials,
        wrong_client_secret_is_misconfigured,
        token_endpoint_failures_are_upstream,
        user_endpoint_failures_are_upstream,
        slow_upstream_times_out,
        unreachable_upstream_is_upstream,
        secrets_are_not_published,
    ]
);

provider_checks!(
    idaas_checks,
    crate::checks::Idaas,
    [
        login_succeeds,
        code_is_single_use,
        made_up_code_is_bad_credentials,
        pkce_verifier_is_checked,
        user_denial_is_bad_credentials,
        wrong_client_secret_is_misconfigured,
        token_endpoint_failures_are_upstream,
        user_endpoint_failures_are_upstream,
        slow_upstream_times_out,
        unreachable_upstream_is_upstream,
        secrets_are_not_published,
    ]
);

provider_checks!(
    generic_checks,
    crate::checks::Generic,
    [
        login_succeeds,
        code_is_single_use,
        made_up_code_is_bad_credentials,
        pkce_verifier_is_checked,
        user_denial_is_bad_credentials,
        wrong_client_secret_is_misconfigured,
        token_endpoint_failures_are_upstream,
        user_endpoint_failures_are_upstream,
        slow_upstream_times_out,
        unreachable_upstream_is_upstream,
        secrets_are_not_published,
    ]
);

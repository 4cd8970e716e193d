//! Portcullis' HTTP API: axum routers for the OAuth endpoints, KubeSphere's `/kapis` endpoints,
//! the TokenReview webhook, health and metrics. One file per endpoint family; one error type
//! ([`error::ApiError`]) decides every status code and wire format.
//!
//! Design decision: handlers are thin. They parse and validate input, call the engine in
//! `portcullis-core`, and format the answer; no authentication logic lives here.

pub mod account;
pub mod error;
pub mod federated;
mod health;
mod http_metrics;
pub mod kapis;
mod kapis_users;
pub mod login_pages;
pub mod oauth;
pub mod oidc;
pub mod pages;
pub mod request;
mod request_observer;
pub mod tokenreview;

pub use request_observer::{RequestSpanHook, set_request_span_hook};
pub mod ui;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use portcullis_config::{Config, IpNet};
use portcullis_core::Engine;

/// Largest request body accepted, in bytes. Every endpoint takes small forms or JSON.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Publishes a provider's public options (secrets stripped, endpoints filled), by provider name.
pub type ProviderDirectory = dyn Fn(&str) -> Option<serde_json::Value> + Send + Sync;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Arc<Engine>,
    config: ArcSwap<Config>,
    metrics: Option<PrometheusHandle>,
    providers: ArcSwap<Option<Arc<ProviderDirectory>>>,
    http_metrics: http_metrics::HttpMetrics,
    token_review_metrics: http_metrics::TokenReviewMetrics,
    ui: ArcSwap<ui::Ui>,
}

impl AppState {
    /// State for a running server.
    pub fn new(engine: Arc<Engine>, config: Config, metrics: Option<PrometheusHandle>) -> Self {
        AppState {
            inner: Arc::new(Inner {
                engine,
                ui: ArcSwap::from_pointee(ui::Ui::new(&config.portcullis.ui)),
                config: ArcSwap::from_pointee(config),
                metrics,
                providers: ArcSwap::from_pointee(None),
                http_metrics: http_metrics::HttpMetrics::default(),
                token_review_metrics: http_metrics::TokenReviewMetrics::new(),
            }),
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.inner.engine
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<Config> {
        self.inner.config.load_full()
    }

    /// Swaps in a new configuration (the engine is updated separately by the caller).
    pub fn set_config(&self, config: Config) {
        // A templates directory is read again on every reload: the files may have changed.
        if config.portcullis.ui != self.inner.config.load().portcullis.ui
            || config.portcullis.ui.templates_dir.is_some()
        {
            self.inner
                .ui
                .store(Arc::new(ui::Ui::new(&config.portcullis.ui)));
        }
        self.inner.config.store(Arc::new(config));
    }

    /// The page templates and branding of the configuration in force.
    pub fn ui(&self) -> Arc<ui::Ui> {
        self.inner.ui.load_full()
    }

    /// Installs the provider directory used by the public config endpoint.
    pub fn set_provider_directory(&self, directory: Arc<ProviderDirectory>) {
        self.inner.providers.store(Arc::new(Some(directory)));
    }

    pub(crate) fn public_provider_options(&self, name: &str) -> Option<serde_json::Value> {
        self.inner
            .providers
            .load()
            .as_ref()
            .as_ref()
            .and_then(|d| d(name))
    }

    pub(crate) fn http_metrics(&self) -> &http_metrics::HttpMetrics {
        &self.inner.http_metrics
    }

    pub(crate) fn token_review_metrics(&self) -> &http_metrics::TokenReviewMetrics {
        &self.inner.token_review_metrics
    }

    pub(crate) fn trusted_proxies(&self) -> Vec<IpNet> {
        self.inner.config.load().portcullis.trusted_proxies.clone()
    }
}

/// The whole router. Serve it with `into_make_service_with_connect_info::<SocketAddr>()`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/oauth/token", post(oauth::token))
        .route("/oauth/logout", get(oauth::logout).post(oauth::logout))
        .route("/oauth/authenticate", post(tokenreview::token_review))
        .route(
            "/kapis/config.kubesphere.io/v1alpha2/configs/oauth",
            get(kapis::oauth_config),
        )
        .route(
            "/kapis/iam.kubesphere.io/v1alpha2/login",
            post(kapis::legacy_login),
        )
        .route(
            "/kapis/iam.kubesphere.io/v1alpha2/users/{user}/loginrecords",
            get(kapis::login_records),
        )
        .route(
            "/kapis/iam.kubesphere.io/v1alpha2/users",
            post(kapis_users::create_user),
        )
        .route(
            "/login",
            get(login_pages::sign_in_page).post(login_pages::sign_in_submit),
        )
        .route(
            "/login/confirm",
            get(login_pages::confirm_page).post(login_pages::confirm_submit),
        )
        .route("/login/{provider}", get(federated::start_login))
        .route("/oauth/callback/{provider}", get(federated::callback))
        .route("/account", get(account::account_page))
        .route("/account/sessions/revoke", post(account::revoke_session))
        .route("/account/sessions/revoke-all", post(account::revoke_all))
        .route("/account/identities/unlink", post(account::unlink))
        .route("/account/identities/link", get(account::link))
        .route("/account/password", post(account::change_password))
        .route("/account/sign-out", post(account::sign_out))
        .route("/assets/portcullis.css", get(ui::assets::stylesheet))
        .route("/assets/theme.css", get(ui::assets::theme))
        .merge(oidc::router())
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(request_observer::RequestObserverLayer::new(state.clone()))
        .with_state(state)
}

async fn not_found() -> Response {
    error::ApiError::status(StatusCode::NOT_FOUND, "NotFound", "no such endpoint").into_response()
}

/// Default timeout for a whole request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

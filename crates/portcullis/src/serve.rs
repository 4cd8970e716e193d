//! `portcullis serve`.

use std::sync::Arc;

use anyhow::{Context, Result};
use metrics_exporter_prometheus::PrometheusBuilder;
use portcullis_core::{Engine, NewUser};
use portcullis_http::AppState;

use crate::cli::ServeArgs;
use crate::providers::Wiring;
use crate::setup;

/// Runs the server until SIGINT or SIGTERM.
pub async fn run(args: ServeArgs, wiring: &Wiring) -> Result<()> {
    let registry = wiring.registry(&args.common)?;
    let mut config = setup::load_config(&args.common, Some(&args), &registry)?;
    let telemetry = crate::telemetry::init(
        config.portcullis.log_format,
        Some(&config.portcullis.tracing),
    );
    // Every identity provider is created before anything listens: a misconfigured one stops
    // the start with its key path in the message.
    let (providers, provider_warnings) = crate::providers::build(&config, &registry)?;
    let listener = tokio::net::TcpListener::bind(config.portcullis.listen)
        .await
        .with_context(|| format!("binding {}", config.portcullis.listen))?;
    let local = listener.local_addr()?;
    if config.portcullis.public_url.port() == Some(0) {
        // Listening on port 0 (tests): the default public URL names the port actually bound.
        let _ = config.portcullis.public_url.set_port(Some(local.port()));
    }
    for w in config
        .warnings
        .iter()
        .map(ToString::to_string)
        .chain(provider_warnings.iter().map(ToString::to_string))
    {
        tracing::warn!("{w}");
    }
    let metrics = PrometheusBuilder::new().install_recorder().ok();
    portcullis_core::observe::describe();
    let engine = setup::open_engine(&config).await?;
    engine.set_providers(providers);
    bootstrap_admin(&engine).await?;
    let jobs = engine.spawn_background();
    // ID-token signing keys: generated on first start, rotated on schedule, shared by replicas.
    let oidc_jobs = engine.spawn_oidc_jobs();
    let listener_job = engine
        .revocation_bus()
        .map(|bus| bus.spawn_listener(engine.clone()));
    let public_url = config.portcullis.public_url.clone();
    let read_timeout = config.portcullis.request_read_timeout;
    let state = AppState::new(engine.clone(), config, metrics);
    let directory = engine.clone();
    state.set_provider_directory(Arc::new(move |name: &str| {
        directory.providers().public_options(name)
    }));
    let reloader = Arc::new(crate::reload::Reloader::new(
        args.clone(),
        wiring.clone(),
        engine.clone(),
        state.clone(),
        local.port(),
    ));
    let reload_tasks = crate::reload::spawn(reloader)?;
    let app = portcullis_http::router(state);
    tracing::info!(listen = %local, public_url = %public_url, backend = engine.store().backend(), "portcullis is serving");
    crate::http_server::serve(listener, app, read_timeout, shutdown_signal())
        .await
        .context("serving")?;
    within_shutdown_grace("writing session activity", engine.flush_activity()).await;
    drop(reload_tasks);
    drop(jobs);
    drop(oidc_jobs);
    within_shutdown_grace("closing the database pool", engine.store().close()).await;
    if let Some(j) = listener_job {
        j.abort();
    }
    tracing::info!("portcullis stopped");
    telemetry.shutdown().await;
    Ok(())
}

/// How long each step of the shutdown after the HTTP server may take: a database that does not
/// answer (or a connection that never comes back to the pool) must not keep the process from
/// exiting on SIGTERM.
const SHUTDOWN_STEP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

async fn within_shutdown_grace(step: &str, work: impl std::future::Future<Output = ()>) {
    if tokio::time::timeout(SHUTDOWN_STEP_GRACE, work)
        .await
        .is_err()
    {
        tracing::warn!(
            step,
            "shutdown step did not finish within its grace period; exiting anyway"
        );
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

/// On first start (no users at all) creates `admin` in group `platform-admins`, with the
/// password from `PORTCULLIS_ADMIN_PASSWORD` or a random one printed once.
async fn bootstrap_admin(engine: &Engine) -> Result<()> {
    if engine.store().count_users().await? > 0 {
        return Ok(());
    }
    let (password, generated) = match std::env::var("PORTCULLIS_ADMIN_PASSWORD") {
        Ok(p) if !p.is_empty() => (p, false),
        _ => (portcullis_core::random_id(), true),
    };
    let new = NewUser {
        name: "admin".into(),
        groups: vec!["platform-admins".into()],
        password: Some(password.clone()),
        uninitialized: generated,
        ..Default::default()
    };
    match engine.add_user(new).await {
        Ok(_) if generated => {
            // Printed once, on standard output and not through the logger, so log shipping
            // does not collect it.
            println!("Created user \"admin\" with the one-time password: {password}");
            println!("Change it at first login, or with: portcullis user passwd admin");
        }
        Ok(_) => tracing::info!(
            "created user \"admin\" with the password from PORTCULLIS_ADMIN_PASSWORD"
        ),
        Err(portcullis_core::CoreError::Conflict(_)) => {} // another replica created it first
        Err(e) => return Err(anyhow::anyhow!("creating the admin user: {e}")),
    }
    // A one-off hash before any login: its 19 MiB working memory has nothing to be reused for.
    portcullis_core::password::release_idle_memory(std::time::Duration::ZERO);
    Ok(())
}

//! Portcullis as a library: the whole `portcullis` command (CLI, wiring of the store, the engine,
//! the identity providers and the HTTP server) behind one function, [`run`], so a custom build can
//! add its own identity-provider plugins in one line. Only this crate names concrete backends and
//! providers.
//!
//! The stock binary is `portcullis::run(|_| {})`. A build with a plugin (see
//! `examples/custom-provider`):
//!
//! ```no_run
//! # struct GiteaFactory;
//! # impl portcullis_idp::OAuthProviderFactory for GiteaFactory {
//! #     fn provider_type(&self) -> &str { "GiteaIdentityProvider" }
//! #     fn create(&self, _: &str, _: &portcullis_idp::ProviderOptions)
//! #         -> Result<std::sync::Arc<dyn portcullis_idp::OAuthProvider>, portcullis_idp::ProviderError> { Err(portcullis_idp::ProviderError::Misconfigured("example only".into())) }
//! # }
//! fn main() -> std::process::ExitCode {
//!     portcullis::run(|registry| {
//!         registry.register_oauth(GiteaFactory);
//!     })
//! }
//! ```

mod body_deadline;
mod cli;
mod http_server;
mod import;
mod providers;
mod reload;
mod serve;
mod setup;
mod telemetry;
mod token_cmd;
mod user_cmd;

use std::sync::Arc;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::providers::Wiring;

pub use portcullis_idp::ProviderRegistry;

/// Runs the `portcullis` command line (arguments from the process) with the built-in identity
/// providers plus whatever `register` adds to the registry (a factory registered under a built-in
/// `type` replaces it). Returns the process exit code.
pub fn run<F>(register: F) -> std::process::ExitCode
where
    F: Fn(&mut ProviderRegistry) + Send + Sync + 'static,
{
    // Exactly one rustls crypto provider, installed before anything builds a TLS client.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let wiring = Wiring::new(Arc::new(register));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(args, &wiring).await,
            Command::CheckConfig {
                file,
                upstream_timeout,
            } => check_config(&file, upstream_timeout, &wiring),
            Command::User(cmd) => user_cmd::run(cmd, &wiring).await,
            Command::Token(cmd) => token_cmd::run(cmd, &wiring).await,
            Command::Import(cmd) => import::run(cmd, &wiring).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `check-config`: the file, then every identity provider created from it, exactly as `serve`
/// does at start.
fn check_config(
    file: &std::path::Path,
    upstream_timeout: Option<std::time::Duration>,
    wiring: &Wiring,
) -> anyhow::Result<()> {
    // The environment overrides `serve` would apply are checked too (the file is named
    // explicitly, so PORTCULLIS_CONFIG is not read).
    let env = |name: &str| std::env::var(name).ok();
    let common = cli::CommonOpts {
        config: Some(file.to_path_buf()),
        database: env("PORTCULLIS_DATABASE"),
        data_dir: env("PORTCULLIS_DATA_DIR").map(std::path::PathBuf::from),
        redis: env("PORTCULLIS_REDIS"),
        log_format: env("PORTCULLIS_LOG_FORMAT"),
        otlp_endpoint: env("PORTCULLIS_OTLP_ENDPOINT"),
        upstream_timeout,
    };
    let registry = wiring.registry(&common)?;
    let config = setup::load_config(&common, None, &registry)?;
    let (_, provider_warnings) = providers::build(&config, &registry)?;
    for w in &config.warnings {
        eprintln!("warning: {w}");
    }
    for w in &provider_warnings {
        eprintln!("warning: {w}");
    }
    println!("{}: configuration is valid", file.display());
    Ok(())
}

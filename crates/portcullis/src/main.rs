//! The `portcullis` binary: the CLI, and the wiring of the store, the engine, the providers and
//! the HTTP server. Only this crate names concrete backends and providers.

mod cli;
mod serve;
mod setup;
mod token_cmd;
mod user_cmd;

use clap::Parser;

/// mimalloc: measurably faster than glibc's allocator for a server that allocates small
/// buffers on every request (see docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use crate::cli::{Cli, Command};

fn main() -> std::process::ExitCode {
    // Exactly one rustls crypto provider, installed before anything builds a TLS client.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
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
            Command::Serve(args) => serve::run(args).await,
            Command::CheckConfig { file } => check_config(&file),
            Command::User(cmd) => user_cmd::run(cmd).await,
            Command::Token(cmd) => token_cmd::run(cmd).await,
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

fn check_config(file: &std::path::Path) -> anyhow::Result<()> {
    let common = cli::CommonOpts {
        config: Some(file.to_path_buf()),
        database: None,
        data_dir: None,
        redis: None,
        log_format: None,
    };
    let config = setup::load_config(&common, None, None)?;
    for w in &config.warnings {
        eprintln!("warning: {w}");
    }
    println!("{}: configuration is valid", file.display());
    Ok(())
}

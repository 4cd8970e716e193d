//! Command-line interface definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Portcullis: a KubeSphere-compatible authentication server.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Settings shared by every command that reads the configuration or touches data.
/// Each flag can also be set by its environment variable; a flag beats the variable, which
/// beats the file, which beats the default.
#[derive(Debug, Clone, Args)]
pub struct CommonOpts {
    /// A kubesphere.yaml file (only `authentication`, `redis` and `portcullis` are read).
    #[arg(long, short = 'c', env = "PORTCULLIS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Database URL: sqlite://PATH, sqlite:PATH or postgres://USER@HOST/DB.
    #[arg(
        long,
        env = "PORTCULLIS_DATABASE",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database: Option<String>,
    /// Directory for the embedded database and generated secrets.
    #[arg(long, env = "PORTCULLIS_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Redis URL (redis://HOST:PORT/DB), for several replicas.
    #[arg(
        long,
        env = "PORTCULLIS_REDIS",
        value_name = "URL",
        hide_env_values = true
    )]
    pub redis: Option<String>,
    /// Log format: text or json.
    #[arg(long, env = "PORTCULLIS_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Validate a configuration file without serving; exits non-zero on any problem.
    CheckConfig {
        /// The kubesphere.yaml file to check.
        file: PathBuf,
    },
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Work with tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

/// `serve` options.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Shared options.
    #[command(flatten)]
    pub common: CommonOpts,
    /// Address to listen on, for example 0.0.0.0:9090.
    #[arg(long, env = "PORTCULLIS_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// External base URL, for example https://auth.example.com.
    #[arg(long, env = "PORTCULLIS_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
}

/// `user` subcommands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user. Without --password the password is asked for (or read from standard input).
    Add {
        /// Shared options.
        #[command(flatten)]
        common: CommonOpts,
        /// User name.
        name: String,
        /// Password (avoid on shared machines: it lands in shell history).
        #[arg(long)]
        password: Option<String>,
        /// Create the user without a password (it can only log in through a linked identity provider).
        #[arg(long, conflicts_with = "password")]
        no_password: bool,
        /// Email address.
        #[arg(long)]
        email: Option<String>,
        /// Display name.
        #[arg(long)]
        display_name: Option<String>,
        /// Comma-separated groups.
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
        /// Require a new password at first login.
        #[arg(long)]
        uninitialized: bool,
    },
    /// List users.
    List {
        /// Shared options.
        #[command(flatten)]
        common: CommonOpts,
        /// Output format: table or json.
        #[arg(long, short = 'o', default_value = "table")]
        output: String,
    },
    /// Show one user with its links, sessions and lock state.
    Show {
        /// Shared options.
        #[command(flatten)]
        common: CommonOpts,
        /// User name.
        name: String,
        /// Output format: table or json.
        #[arg(long, short = 'o', default_value = "table")]
        output: String,
    },
    /// Set a user's password; revokes all its sessions.
    Passwd {
        /// Shared options.
        #[command(flatten)]
        common: CommonOpts,
        /// User name.
        name: String,
        /// New password (asked for when absent).
        #[arg(long)]
        password: Option<String>,
    },
    /// Disable a user and revoke all its sessions.
    Disable {
        /// Shared options.
        #[command(flatten)]
        common: CommonOpts,
        /// User name.
        name: String,
    },
    /// Enable a user and clear any lockout.
    Enable {
        /// Shared options.
        #[command(flatten)]
        common: CommonOpts,
        /// User name.
        name: String,
    },
    /// Delete a user with its identity links and login records; revokes its sessions.
    Delete {
        /// Shared options.
        #[command(flatten)]
        common: CommonOpts,
        /// User name.
        name: String,
    },
}

/// `token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Decode a token and verify it against the configured jwtSecret and the session store.
    Inspect {
        /// Shared options.
        #[command(flatten)]
        common: CommonOpts,
        /// The token.
        token: String,
    },
}

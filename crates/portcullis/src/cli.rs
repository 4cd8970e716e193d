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
    /// Base URL of an OTLP/HTTP receiver for OpenTelemetry traces (`/v1/traces` is appended);
    /// used by a binary built with the `otel` feature.
    #[arg(long, env = "PORTCULLIS_OTLP_ENDPOINT", value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// Time allowed for each request to an identity provider (a Go duration such as 15s; the
    /// connect timeout is the smaller of this and 5s). Default 15s.
    #[arg(
        long,
        env = "PORTCULLIS_UPSTREAM_TIMEOUT",
        value_name = "DURATION",
        value_parser = crate::providers::parse_timeout
    )]
    pub upstream_timeout: Option<std::time::Duration>,
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
        /// As for `serve`; checked here, used when providers are created.
        #[arg(
            long,
            env = "PORTCULLIS_UPSTREAM_TIMEOUT",
            value_name = "DURATION",
            value_parser = crate::providers::parse_timeout
        )]
        upstream_timeout: Option<std::time::Duration>,
    },
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Work with tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Import users from another system.
    #[command(subcommand)]
    Import(ImportCommand),
}

/// `serve` options.
#[derive(Debug, Clone, Args)]
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
    /// Absolute session lifetime, however often it is refreshed (a Go duration such as 720h;
    /// 0 = unlimited, KubeSphere's behaviour). Default 720h (30 days).
    #[arg(long, env = "PORTCULLIS_SESSION_MAX_LIFETIME", value_name = "DURATION")]
    pub session_max_lifetime: Option<String>,
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
    /// Link an identity at an identity provider to a user, who can then log in with it.
    Link {
        /// Shared options.
        #[command(flatten)]
        common: CommonOpts,
        /// User name.
        name: String,
        /// Identity provider `name` (as in identityProviders[].name).
        #[arg(long)]
        provider: String,
        /// The upstream's stable user id (GitHub: the numeric id; OIDC: `sub`). A GitHub login
        /// name is accepted too and moved to the numeric id at the user's next login.
        #[arg(long)]
        uid: String,
        /// The upstream user name, for display.
        #[arg(long)]
        username: Option<String>,
    },
    /// Remove the link of an identity from a user.
    Unlink {
        /// Shared options.
        #[command(flatten)]
        common: CommonOpts,
        /// User name.
        name: String,
        /// Identity provider `name`.
        #[arg(long)]
        provider: String,
        /// The upstream user id of the link.
        #[arg(long)]
        uid: String,
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

/// `import` subcommands.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import KubeSphere users (`kubectl get users.iam.kubesphere.io -o yaml`) with their bcrypt
    /// hashes, emails, groups, states and identity links, and optionally their login records
    /// (`kubectl get loginrecords.iam.kubesphere.io -o yaml`). Safe to re-run: what is already
    /// in Portcullis is left alone and reported as unchanged.
    Kubesphere {
        /// Shared options.
        #[command(flatten)]
        common: CommonOpts,
        /// Export files (YAML or JSON: a List, single objects, or several documents).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Check everything and report what would change, without writing.
        #[arg(long)]
        dry_run: bool,
        /// Replace users that already exist in Portcullis and differ from the export (their
        /// password included). Without it they are skipped and reported.
        #[arg(long)]
        overwrite: bool,
    },
}

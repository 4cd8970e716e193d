//! Metrics recorded at their sources in the engine, with one description each (what
//! `/metrics` shows as `# HELP`). The names and labels are listed in docs/operations.md and
//! used by deploy/grafana/portcullis-dashboard.json.

use std::time::Instant;

/// Records one call to an identity provider: its latency by provider and operation, and whether
/// the upstream answered (`ok`) or failed (`error`: unreachable, timeout, bad response).
pub fn upstream_latency(provider: &str, op: &'static str, started: Instant, answered: bool) {
    let result = if answered { "ok" } else { "error" };
    metrics::histogram!(
        "portcullis_upstream_request_duration_seconds",
        "provider" => provider.to_owned(),
        "op" => op,
        "result" => result
    )
    .record(started.elapsed().as_secs_f64());
}

/// The span of one call to an identity provider (`upstream`, with the provider's name and the
/// operation; never a code, token or password). Exported as an OpenTelemetry client span by a
/// binary built with `otel`.
pub fn upstream_span(provider: &str, op: &'static str) -> tracing::Span {
    tracing::info_span!("upstream", provider, op, otel.kind = "client")
}

/// Describes every metric Portcullis records (call once, after installing the recorder).
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "portcullis_logins_total",
        "Logins by provider (local, or the identity provider's name) and result (success, failure)"
    );
    describe_counter!(
        "portcullis_token_verifications_total",
        "TokenReview verifications by result (valid, invalid)"
    );
    describe_counter!(
        "portcullis_lockouts_total",
        "Logins refused because the account or the client address is locked, by scope"
    );
    describe_histogram!(
        "portcullis_password_hash_cpu_seconds",
        metrics::Unit::Seconds,
        "CPU time of each password hash or verification (argon2id, or an imported bcrypt hash)"
    );
    describe_histogram!(
        "portcullis_upstream_request_duration_seconds",
        metrics::Unit::Seconds,
        "Latency of calls to identity providers, by provider, operation and result"
    );
    describe_counter!(
        "portcullis_upstream_errors_total",
        "Password providers (LDAP) that could not be asked, by provider"
    );
    describe_counter!(
        "portcullis_config_reload_total",
        "Configuration reloads by result (success, error)"
    );
    describe_gauge!(
        "portcullis_config_last_reload_success",
        "1 when the last configuration reload succeeded (or none happened yet), 0 when it was rejected"
    );
    describe_counter!(
        "portcullis_store_errors_total",
        "Database failures by operation (and for requests, kind: unavailable or error)"
    );
    describe_counter!(
        "portcullis_redis_errors_total",
        "Redis failures by operation (publish, subscribe, kubesphere_register, kubesphere_revoke)"
    );
    describe_counter!(
        "portcullis_refresh_reuse_total",
        "Refresh tokens presented twice (the session is revoked)"
    );
    describe_counter!(
        "portcullis_background_job_runs_total",
        "Background job runs by job and outcome (ran, skipped: another replica holds the lease, error)"
    );
}

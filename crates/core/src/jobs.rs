//! Background jobs that must run once across replicas (retention, pruning): before each run a
//! job takes a lease in the shared store (`try_lease`). The lease outlives the job's interval,
//! so the replica holding it keeps it by renewing, and another replica takes over only when the
//! holder has stopped renewing (it crashed or was scaled down). On SQLite there is one process
//! anyway and the lease always succeeds. Signing-key rotation needs no lease: concurrent
//! generations of the same key collide on a unique constraint and the database keeps one.

use std::sync::LazyLock;

use crate::engine::{Engine, random_id};

/// This process' name as a lease holder.
static HOLDER: LazyLock<String> = LazyLock::new(random_id);

impl Engine {
    /// Whether this replica should run `job` now: takes or renews its lease for `ttl_ms`.
    /// A store failure counts as "not now" (the job retries at its next tick).
    pub(crate) async fn take_job_lease(&self, job: &'static str, ttl_ms: i64) -> bool {
        match self
            .store
            .try_lease(job, HOLDER.as_str(), self.now_ms(), ttl_ms)
            .await
        {
            Ok(true) => {
                metrics::counter!("portcullis_background_job_runs_total", "job" => job, "outcome" => "ran")
                    .increment(1);
                true
            }
            Ok(false) => {
                tracing::debug!(
                    job,
                    "another replica holds the job lease; skipping this run"
                );
                metrics::counter!("portcullis_background_job_runs_total", "job" => job, "outcome" => "skipped")
                    .increment(1);
                false
            }
            Err(e) => {
                tracing::warn!(job, error = %e, "taking the job lease failed; will retry");
                metrics::counter!("portcullis_background_job_runs_total", "job" => job, "outcome" => "error")
                    .increment(1);
                metrics::counter!("portcullis_store_errors_total", "op" => "job_lease")
                    .increment(1);
                false
            }
        }
    }
}

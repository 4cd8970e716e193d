//! Start-up time to ready: spawn the server, poll its readiness URL (a new connection every
//! millisecond) until it answers 200, then kill it and wait for it to exit. Median of N runs.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::client::{Conn, Target};

/// How long one start may take before the measurement fails.
const READY_DEADLINE: Duration = Duration::from_secs(20);

pub async fn measure(runs: usize, ready_url: &str, command: &[String]) -> Result<Value> {
    let target = Target::parse(ready_url)?;
    let path = url::Url::parse(ready_url)?.path().to_string();
    let (program, args) = command.split_first().context("no command")?;
    let mut times_ms = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawn {program}"))?;
        let ready = loop {
            // A fresh connection per probe (no base path: the URL's path is the whole path).
            let mut conn = Conn::new(Target {
                base_path: String::new(),
                ..target.clone()
            });
            if let Ok(r) = conn.get(&path, &[]).await
                && r.status.as_u16() == 200
            {
                break Some(start.elapsed());
            }
            if start.elapsed() > READY_DEADLINE || child.try_wait()?.is_some() {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        child.kill().await.ok();
        let Some(t) = ready else {
            bail!("{program} was not ready at {ready_url} within {READY_DEADLINE:?} (or exited)");
        };
        times_ms.push(t.as_secs_f64() * 1000.0);
    }
    let mut sorted = times_ms.clone();
    sorted.sort_by(f64::total_cmp);
    Ok(json!({
        "runs": sorted.len(),
        "median_ms": sorted[sorted.len() / 2],
        "min_ms": sorted[0],
        "max_ms": sorted[sorted.len() - 1],
        "times_ms": times_ms,
    }))
}

//! Password verifications per second with Portcullis' own hasher (argon2id, default cost) on
//! `--threads N` threads for `--seconds S`, and the CPU time the process used for them (user +
//! system, from /proc/self/stat). Prints one JSON object.

use std::time::{Duration, Instant};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// User + system CPU seconds of this process so far (Linux), 0 when unreadable.
fn cpu_seconds() -> f64 {
    let ticks_per_second = 100.0; // USER_HZ, 100 on every Linux architecture the bench runs on
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) / ticks_per_second)
        })
        .unwrap_or(0.0)
}

#[tokio::main]
async fn main() {
    let threads = arg("--threads", 1);
    let seconds = arg("--seconds", 10);
    let hash = portcullis_core::password::hash_password("bench-Passw0rd")
        .await
        .expect("hash");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let cpu_start = cpu_seconds();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let hash = hash.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    assert!(portcullis_core::password::verify_password_blocking(
                        "bench-Passw0rd",
                        &hash
                    ));
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().unwrap_or(0)).sum();
    let per_second = total as f64 / start.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"threads": threads, "verifications": total, "per_second": per_second,
                           "cpu_seconds": cpu_seconds() - cpu_start})
    );
}

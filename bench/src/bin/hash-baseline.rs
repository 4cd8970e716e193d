//! Password verifications per second with Portcullis' own hasher (argon2id, default cost) on
//! `--threads N` threads for `--seconds S`. Prints one JSON object.

use std::time::{Duration, Instant};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
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
        serde_json::json!({"threads": threads, "verifications": total, "per_second": per_second})
    );
}

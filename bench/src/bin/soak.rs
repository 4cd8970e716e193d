//! `soak`: holds the mixed soak load of [`portcullis_bench::soak`] against a running server and
//! prints the JSON report; exits 1 when there was any unexpected error.
//!
//! ```text
//! soak --url http://127.0.0.1:PORT [--pid PID] [--seconds 600] [--workers 16]
//!      [--sample-every 2] --user NAME:PASSWORD [--user ...]
//! ```

use std::time::Duration;

use portcullis_bench::soak::{Mix, SoakConfig, run};

fn usage(why: &str) -> ! {
    eprintln!(
        "soak: {why}\nusage: soak --url URL [--pid PID] [--seconds N] [--workers N] [--sample-every S] --user NAME:PASSWORD..."
    );
    std::process::exit(2)
}

fn number<T: std::str::FromStr>(flag: &str, value: Option<String>) -> T {
    value
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| usage(&format!("{flag} needs a number")))
}

#[tokio::main]
async fn main() {
    let mut cfg = SoakConfig {
        base: String::new(),
        pid: None,
        duration: Duration::from_secs(600),
        workers: 16,
        users: Vec::new(),
        sample_every: Duration::from_secs(2),
        mix: Mix::default(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--url" => cfg.base = args.next().unwrap_or_else(|| usage("--url needs a value")),
            "--pid" => cfg.pid = Some(number("--pid", args.next())),
            "--seconds" => cfg.duration = Duration::from_secs(number("--seconds", args.next())),
            "--workers" => cfg.workers = number("--workers", args.next()),
            "--sample-every" => {
                cfg.sample_every = Duration::from_secs(number("--sample-every", args.next()))
            }
            "--user" => {
                let v = args.next().unwrap_or_default();
                let Some((name, password)) = v.split_once(':') else {
                    usage("--user needs NAME:PASSWORD")
                };
                cfg.users.push((name.to_owned(), password.to_owned()));
            }
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    if cfg.base.is_empty() {
        usage("--url is required");
    }
    match run(cfg).await {
        Ok(report) => {
            println!("{:#}", report.to_json());
            if report.unexpected > 0 {
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("soak: {e}");
            std::process::exit(2);
        }
    }
}

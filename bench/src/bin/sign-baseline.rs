//! RS256 signatures per second on one thread for `--seconds S`: RSA-2048 PKCS#1 v1.5 with
//! SHA-256 by aws-lc-rs, the operation (and library) that signs the ID token of every refresh
//! with `openid`, over a signing input of an ID token's size. The harness runs it on the
//! server's core in each round: it is the ceiling of the refresh grant on that core. Prints one
//! JSON object.

use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::RSA_PKCS1_SHA256;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let key = KeyPair::generate(KeySize::Rsa2048).expect("RSA-2048 key generation");
    let rng = SystemRandom::new();
    // About the size of the header and claims of an ID token with `openid offline_access`.
    let message = vec![b'e'; 420];
    let mut signature = vec![0u8; key.public_modulus_len()];
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let mut n = 0u64;
    while Instant::now() < deadline {
        key.sign(&RSA_PKCS1_SHA256, &rng, &message, &mut signature)
            .expect("RS256 signature");
        n += 1;
    }
    let per_second = n as f64 / start.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"alg": "RS256", "signatures": n, "per_second": per_second})
    );
}

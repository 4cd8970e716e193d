//! Baselines measured in the same run as Portcullis, so every published figure is a ratio:
//! `bare-axum` (a handler that returns a constant: the ceiling of this machine and HTTP stack)
//! and `hash-baseline` (password verifications per second with Portcullis' own hasher: the
//! ceiling of any password login). The driver is `bench/run.sh`.
//!
//! Also the soak load ([`soak`]), run by the `soak` binary from `bench/soak.sh`.

pub mod soak;

//! Injected time: every expiry, inactivity and lockout decision reads a [`Clock`], so tests drive
//! time instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// A source of the current time in Unix milliseconds.
pub trait Clock: Send + Sync + 'static {
    /// Now, in Unix milliseconds.
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
    }
}

/// A clock that only moves when told to (tests), or an offset from the system clock (the
/// `PORTCULLIS_TEST_CLOCK_FILE` hook used by black-box tests of the binary).
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// Starts at `start_ms`.
    pub fn new(start_ms: i64) -> Self {
        ManualClock(Arc::new(AtomicI64::new(start_ms)))
    }
    /// Moves the clock forward.
    pub fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
    /// Sets the clock.
    pub fn set_ms(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// System time plus an offset read from a file, read at every call.
/// Only enabled when the binary is started with `PORTCULLIS_TEST_CLOCK_FILE`: it lets black-box
/// tests move the running server's clock forward (lockout windows, token expiry, inactivity)
/// without sleeping. It costs a file read per call, which is why it is for tests only. (It
/// used to re-read only when the file's modification time changed, but two writes within one
/// tick of the kernel's coarse file clock keep the same time, and the second offset was never
/// seen.)
#[derive(Debug)]
pub struct OffsetFileClock {
    path: std::path::PathBuf,
}

impl OffsetFileClock {
    /// A clock whose offset comes from `path` (a decimal number of milliseconds; missing = 0).
    pub fn new(path: std::path::PathBuf) -> Self {
        OffsetFileClock { path }
    }
}

impl Clock for OffsetFileClock {
    fn now_ms(&self) -> i64 {
        let offset = std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .unwrap_or(0);
        SystemClock.now_ms() + offset
    }
}

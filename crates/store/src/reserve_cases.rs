//! The stored lockout states that the one-round-trip reservations (the SQLite statement and the
//! PostgreSQL function) are checked in against the Rust rules: every combination of these ten
//! states of two keys, under two policies.

use crate::LockoutPolicy;
use crate::common::Counter;

/// The time of every case.
pub(crate) const NOW: i64 = 1_000_000;

/// The policies of the second key (the first always has the first).
pub(crate) const POLICIES: [LockoutPolicy; 2] = [
    LockoutPolicy {
        max_failures: 3,
        window_ms: 1_000,
    },
    // Out of range: clamped to one failure and one millisecond, as the Rust rules do.
    LockoutPolicy {
        max_failures: 0,
        window_ms: 0,
    },
];

/// Stored states worth telling apart: none, a window under way with room or full, a window
/// over, an active lock, a lock that has just run out, and one that ends exactly now.
pub(crate) fn states() -> Vec<Option<Counter>> {
    let counter = |window_start, failures, locked_until| {
        Some(Counter {
            window_start,
            failures,
            locked_until,
        })
    };
    vec![
        None,
        counter(NOW - 500, 0, None),
        counter(NOW - 500, 2, None),
        counter(NOW - 500, 3, None),
        counter(NOW - 1_000, 3, None),
        counter(NOW, 0, None),
        counter(NOW - 500, 3, Some(NOW + 100)),
        counter(NOW - 5_000, 3, Some(NOW + 100)),
        counter(NOW - 500, 3, Some(NOW - 1)),
        counter(NOW - 500, 3, Some(NOW)),
    ]
}

/// Replaces the stored lockout rows, through the executor `$exec`, by the states `$before` of the
/// keys `$keys` (`None`: no row). A macro because the two stores' executors differ in type.
macro_rules! store_states {
    ($exec:expr, $keys:expr, $before:expr) => {{
        sqlx::query("DELETE FROM lockouts")
            .execute($exec)
            .await
            .unwrap();
        for ((key, policy), counter) in $keys.iter().zip($before) {
            if let Some(c) = counter {
                sqlx::query(
                    "INSERT INTO lockouts \
                     (lock_key, window_start, failures, locked_until, expires_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(key)
                .bind(c.window_start)
                .bind(c.failures)
                .bind(c.locked_until)
                .bind(c.expires_at(*policy))
                .execute($exec)
                .await
                .unwrap();
            }
        }
    }};
}
pub(crate) use store_states;

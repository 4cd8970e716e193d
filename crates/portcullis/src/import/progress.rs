//! Progress on standard error: a bar redrawn in place on a terminal, and plain lines (every
//! tenth of the way, and at least every five seconds) when standard error is a file or a pipe,
//! so CI logs and `kubectl`-style pipelines still show that a large import is moving.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const BAR_WIDTH: usize = 30;
const REDRAW_EVERY: Duration = Duration::from_millis(100);
const LINE_AT_LEAST_EVERY: Duration = Duration::from_secs(5);

struct Printed {
    at: Instant,
    tenth: usize,
}

/// Counts finished objects and shows it.
pub struct Progress {
    what: &'static str,
    total: usize,
    done: AtomicUsize,
    tty: bool,
    started: Instant,
    last: Mutex<Printed>,
}

impl Progress {
    /// Progress over `total` objects; `what` names the phase (`importing`, `checking`).
    pub fn new(what: &'static str, total: usize) -> Self {
        let now = Instant::now();
        Progress {
            what,
            total,
            done: AtomicUsize::new(0),
            tty: std::io::stderr().is_terminal(),
            started: now,
            last: Mutex::new(Printed { at: now, tenth: 0 }),
        }
    }

    /// One more object done.
    pub fn inc(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        let now = Instant::now();
        let tenth = (done * 10).checked_div(self.total).unwrap_or(10);
        let due = if self.tty {
            now.duration_since(last.at) >= REDRAW_EVERY || done == self.total
        } else {
            tenth > last.tenth || now.duration_since(last.at) >= LINE_AT_LEAST_EVERY
        };
        if due {
            last.at = now;
            last.tenth = tenth;
            self.draw(done);
        }
    }

    fn draw(&self, done: usize) {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = done as f64 / secs;
        let pct = (done * 100).checked_div(self.total).unwrap_or(100);
        let mut err = std::io::stderr().lock();
        if self.tty {
            let filled = (done * BAR_WIDTH)
                .checked_div(self.total)
                .unwrap_or(BAR_WIDTH);
            let _ = write!(
                err,
                "\r{} [{}{}] {done}/{} ({pct}%) {rate:.0}/s",
                self.what,
                "#".repeat(filled),
                " ".repeat(BAR_WIDTH - filled),
                self.total
            );
            if done == self.total {
                let _ = writeln!(err);
            }
        } else {
            let _ = writeln!(
                err,
                "{}: {done}/{} objects ({pct}%), {rate:.0}/s",
                self.what, self.total
            );
        }
        let _ = err.flush();
    }
}

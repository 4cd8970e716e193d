//! The stock `portcullis` binary: the library's command line with the built-in identity
//! providers. A custom build registers its own providers the same way (`examples/custom-provider`).

use std::time::Duration;

/// mimalloc: measurably faster than glibc's allocator for a server that allocates small
/// buffers on every request (see docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How often freed memory is handed back to the kernel (see [`trim_freed_memory`]).
const TRIM_EVERY: Duration = Duration::from_secs(2);

fn main() -> std::process::ExitCode {
    trim_freed_memory();
    portcullis::run(|_| {})
}

/// Hands memory the program freed back to the kernel, in two ways (measured in
/// docs/performance.md, "Memory"):
///
/// - During start-up (configuration, migrations, templates, the first start's password hash),
///   freed memory is returned at once: start-up frees much and keeps little, and memory kept
///   for reuse there only stays resident. After the first [`TRIM_EVERY`] the allocator's own
///   purge delay (1 s) is back, so memory freed under load is reused rather than returned and
///   faulted in again.
/// - Then every [`TRIM_EVERY`], the purges that are due are carried out. mimalloc carries them
///   out only when the program calls into it again, so a server that goes idle right after
///   freeing memory (a password hash's 19 MiB working memory, a load that just ended) would
///   keep it resident for as long as it idles. Go's runtime scavenger does the same job.
fn trim_freed_memory() {
    let delay = purge_delay(None);
    purge_delay(Some(0));
    let started = std::thread::Builder::new()
        .name("memory-trim".into())
        .spawn(move || {
            std::thread::sleep(TRIM_EVERY);
            purge_delay(Some(delay));
            loop {
                collect();
                std::thread::sleep(TRIM_EVERY);
            }
        });
    if let Err(e) = started {
        purge_delay(Some(delay));
        // Not fatal: freed memory is still reused by the allocator, only not returned when idle.
        eprintln!("portcullis: could not start the memory-trim thread: {e}");
    }
}

/// `mi_option_purge_delay` of mimalloc 3's `mi_option_e` (include/mimalloc.h), which
/// libmimalloc-sys 0.1.49 does not name.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// mimalloc's purge delay in ms, set to `to` when given; returns the value before.
#[allow(unsafe_code)]
fn purge_delay(to: Option<std::os::raw::c_long>) -> std::os::raw::c_long {
    // SAFETY: the option calls take plain integers and may be called at any time; the purge
    // delay is read by the allocator at each purge decision.
    unsafe {
        let before = libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY);
        if let Some(ms) = to {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, ms);
        }
        before
    }
}

#[allow(unsafe_code)]
fn collect() {
    // SAFETY: `mi_collect` takes no pointers and may be called from any thread at any time;
    // with `force = false` it only carries out purges that are due and frees this thread's
    // empty pages.
    unsafe { libmimalloc_sys::mi_collect(false) }
}

#[cfg(test)]
mod tests {
    use super::purge_delay;

    /// The option number is mimalloc's purge delay: its documented default is 1000 ms (unless
    /// MIMALLOC_PURGE_DELAY says otherwise), and a value set is read back and can be restored.
    #[test]
    fn the_purge_delay_option_is_the_one_set_and_restored() {
        let before = purge_delay(None);
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(before, 1000, "mimalloc's default purge delay");
        }
        assert_eq!(purge_delay(Some(0)), before);
        assert_eq!(purge_delay(None), 0);
        purge_delay(Some(before));
        assert_eq!(purge_delay(None), before);
    }
}

//! The stock `portcullis` binary: the library's command line with the built-in identity
//! providers. A custom build registers its own providers the same way (`examples/custom-provider`).

/// mimalloc: measurably faster than glibc's allocator for a server that allocates small
/// buffers on every request (see docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    portcullis::run(|_| {})
}

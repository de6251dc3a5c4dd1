//! The `wadash` binary: everything lives in the library; see `wadash --help`.

/// mimalloc: webhook handling allocates many short-lived strings on one thread and frees
/// some on another (the commit task); glibc's allocator spent a visible share of the hot
/// path consolidating and unlinking chunks (measured with perf in bench/ingest).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    wadash::cli::main()
}

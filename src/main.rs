//! The `bcgate` binary; everything lives in the library (see `bcgate::cli`).

#![forbid(unsafe_code)]

// Every request allocates (header maps, futures, buffers); jemalloc's
// thread caches cost less CPU per request than glibc malloc here (~8 % in
// ../shared/perf's job) while keeping idle connections under 30 KiB each.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    bcgate::cli::main()
}

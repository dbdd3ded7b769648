//! The `bcgate` binary; everything lives in the library (see `bcgate::cli`).

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    bcgate::cli::main()
}

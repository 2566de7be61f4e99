//! The `cardhub` binary: parses the command line and hands over to [`cardhub::cli`].
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    cardhub::cli::main()
}

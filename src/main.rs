//! The `cardhub` binary: parses the command line and runs the command
//! ([`cli`]). The hub itself is the `cardhub-core` library; the reference
//! account system, simulator, bench and demo are `cardhub-lab`.
#![forbid(unsafe_code)]

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}

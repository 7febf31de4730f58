//! `relay store|ls|rm|handoff|claim|checkpoint|mailbox|baton|quote|pricing|completions`: an
//! agent's (or a person's) client of the HTTP API.
//!
//! - [`args`]: the subcommands and the connection flags (`--url`, `--key`, a profile file).
//! - [`http`]: one request with its retries (the same `Idempotency-Key` on an unknown outcome),
//!   and what an error answer means as an exit code ([`CliError::exit_code`]).
//! - [`transfer`]: uploads and downloads streamed from and to files, with [`progress`] bars.
//! - [`commands`]: what each subcommand sends; [`output`]: tables for people, `--json` for
//!   scripts, and the size and duration parsers.

pub mod args;
pub mod commands;
pub mod http;
pub mod output;
pub mod progress;
pub mod transfer;

use std::process::ExitCode;

pub use args::{ClientCommand, ClientConn};
pub use http::CliError;

/// Runs one client subcommand on its own small runtime; its exit code.
pub fn run(command: ClientCommand) -> ExitCode {
    if let ClientCommand::Completions(args) = &command {
        return args::completions(args.shell);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("relay: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("relay: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

//! The `relay` binary: parse flags, hand over to [`relay_node::run`].

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = relay_node::config::Cli::parse();
    relay_node::run(cli)
}

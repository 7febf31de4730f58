//! The `relay` binary: parse flags (and `--config FILE`), hand over to [`relay_node::run`].

fn main() -> std::process::ExitCode {
    match relay_node::config::parse(std::env::args_os().collect()) {
        Ok(cli) => relay_node::run(cli),
        Err(code) => code,
    }
}

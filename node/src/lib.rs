//! The `relay` node: it wires the ledger ([`relay_raft`]) and the HTTP API ([`relay_api`]).
//!
//! - [`config`]: flags and `RELAY_*` environment, validated before anything starts;
//!   [`config_file`]: the same settings from `--config FILE` (TOML).
//! - [`server`]: startup step by step, and the SIGTERM shutdown.
//! - [`client`]: `relay store|ls|rm|handoff|claim|checkpoint|mailbox|baton|quote|pricing`, an
//!   agent's client of the API with progress bars, tables, `--json` and telling exit codes.
//! - [`admin`]: `relay cluster …`, a client of the `/cluster/…` admin API; [`backup`]:
//!   `relay backup` and `relay restore`.
//! - [`bootstrap`]: the admin key, and the first account with its agents' API key.
//! - [`cluster`]: the cluster secret, joining a cluster.
//! - [`net_args`]: how the node is reached: HTTPS, mutual TLS between nodes, advertised
//!   addresses, region; [`cert`]: `relay cert`, a private CA and node certificates.
//! - [`workers`]: the leader's sweeper (expiry, then object deletion) and [`orphans`] (blobs no
//!   lease references): the schedules; what they delete is [`relay_api::blobs`].
//!   [`webhooks`]: delivers mailbox webhooks, fairly between hosts.
//! - [`fds`]: the open-file limit and the share of it client connections may take. (The object
//!   store named by `--objects` is opened by [`relay_api::blobs::store`].)

pub mod admin;
pub mod backup;
pub mod baton_args;
pub mod bootstrap;
pub mod cert;
pub mod client;
pub mod cluster;
pub mod config;
pub mod config_file;
pub mod dev_facilitator;
pub mod fds;
pub mod net_args;
pub mod orphans;
pub mod server;
pub mod upload_args;
pub mod verify;
pub mod webhooks;
pub mod witness_args;
pub mod workers;
pub mod x402_args;

use std::process::ExitCode;

use config::{Cli, Commands};

pub fn run(cli: Cli) -> ExitCode {
    // Offline tools: no logging, no runtime.
    match &cli.command {
        Commands::Verify(args) => return verify::run(args),
        Commands::Witness(args) => return verify::witness(args),
        Commands::Cert(args) => return cert::run(args),
        Commands::Version => {
            println!("{}", relay_api::cluster::versions());
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    // The API client prints its own answers and errors; its runtime is its own.
    let cli = match cli.command {
        Commands::Client(command) => return client::run(command),
        command => Cli { command },
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match &cli.command {
        Commands::Serve(args) if args.log_format == config::LogFormat::Json => {
            logs.json().flatten_event(true).with_current_span(false).init()
        }
        _ => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
    // Both of rustls's providers are linked (reqwest's ring, object_store's aws-lc-rs): name the
    // process default, which tonic's TLS builds on, rather than leave rustls to refuse to choose.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("relay: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Commands::Serve(args) => runtime.block_on(server::serve(args)),
        Commands::Cluster(args) => runtime.block_on(admin::run(args)),
        Commands::Account(args) => runtime.block_on(admin::account(args)),
        Commands::Backup(args) => runtime.block_on(backup::backup(args)),
        Commands::Restore(args) => runtime.block_on(backup::restore(args)),
        Commands::Verify(_) | Commands::Witness(_) | Commands::Cert(_) | Commands::Version | Commands::Client(_) => {
            unreachable!("handled above")
        }
        Commands::DevFacilitator(args) => {
            return match runtime.block_on(dev_facilitator::run(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("relay dev-facilitator: {e}");
                    ExitCode::FAILURE
                }
            };
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "relay stopped with an error");
            eprintln!("relay: {e}");
            // A setting that cannot work is a usage error, like a bad flag.
            match e {
                server::NodeError::Config(_) => ExitCode::from(2),
                server::NodeError::Client(code, _) => ExitCode::from(code),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

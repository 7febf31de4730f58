//! `relay-loadtest`: closed-loop load against Relay, with latency histograms, and a `bench`
//! command that starts a local cluster and measures each scenario on it.

mod bench;
mod etcd;
mod expiry;
mod fill;
mod local;
mod local_etcd;
mod plot;
mod receiver;
mod report;
mod runner;
mod scale;
mod scenario;
mod uploads;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::scenario::Scenario;

#[derive(Parser, Debug)]
#[command(
    name = "relay-loadtest",
    version,
    about = "Measure Relay's throughput and tail latency"
)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand, Debug)]
enum Commands {
    /// Run one scenario against running nodes.
    Run(RunArgs),
    /// Start a local cluster and run scenarios against it, printing a table.
    Bench(BenchArgs),
    /// One large object four ways against a node on S3: direct, through the node, presigned, tus.
    Uploads(UploadsArgs),
    /// Start a local cluster and grow it through lease counts, measuring its footprint at each.
    Scale(ScaleArgs),
    /// Start a local cluster, make many leases end in one second, and watch them go.
    Expiry(ExpiryArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ScaleArgs {
    /// The `relay` binary; default: next to this one.
    #[arg(long)]
    pub relay_bin: Option<PathBuf>,
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=5))]
    pub nodes: u64,
    /// Live lease counts to measure at, comma-separated, ascending.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    pub sizes: Vec<u64>,
    /// Clients creating leases at once.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub concurrency: u64,
    /// Percent of leases that are Storage leases (the rest are small checkpoints).
    #[arg(long, default_value_t = 10)]
    pub storage_percent: u64,
    /// Where the SVG goes (default scale.svg).
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct ExpiryArgs {
    /// The `relay` binary; default: next to this one.
    #[arg(long)]
    pub relay_bin: Option<PathBuf>,
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=5))]
    pub nodes: u64,
    /// Storage leases that end in the same second.
    #[arg(long, default_value_t = 100_000)]
    pub leases: u64,
    /// Clients creating leases at once.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub concurrency: u64,
    /// Seconds from the start of the fill to the second every lease ends in.
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u64).range(5..=3600))]
    pub fill_seconds: u64,
    /// Clients reading random expiring leases throughout, spread over every node.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub probes: u64,
    /// Seconds to watch after the last expiry for the bytes to go.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub watch_seconds: u64,
    /// Where the SVG goes (default expiry.svg).
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct UploadsArgs {
    /// The node's HTTP base URL (it must run on the S3 store below).
    #[arg(long)]
    pub relay: String,
    /// API key of an account with enough balance.
    #[arg(long, env = "RELAY_API_KEY", hide_env_values = true)]
    pub key: String,
    /// The node's process id, for its CPU time and peak RSS.
    #[arg(long)]
    pub node_pid: u32,
    /// The S3 endpoint and bucket the node stores in (credentials: AWS_ACCESS_KEY_ID and
    /// AWS_SECRET_ACCESS_KEY).
    #[arg(long)]
    pub endpoint: String,
    #[arg(long)]
    pub bucket: String,
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=(64 << 10)))]
    pub size_mib: u64,
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=20))]
    pub rounds: u64,
    /// tus PATCH size.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub tus_chunk_mib: u64,
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// HTTP base URLs of Relay nodes, comma-separated; clients are spread over them.
    #[arg(
        long,
        value_delimiter = ',',
        required_unless_present = "etcd",
        conflicts_with = "etcd"
    )]
    pub targets: Vec<String>,
    /// API key (`rs_live_…`) of an account with enough balance (Relay only).
    #[arg(long, env = "RELAY_API_KEY", hide_env_values = true, default_value = "")]
    pub api_key: String,
    /// Run the equivalent operations against etcd instead: its client endpoints, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub etcd: Vec<String>,
    #[arg(long, value_enum)]
    pub scenario: Scenario,
    /// Clients, each with one request in flight (closed loop).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub concurrency: u64,
    /// Open loop instead: start this many operations per second (the clients are the pool that
    /// makes them), latency measured from each operation's due time.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub rate: Option<u64>,
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub duration_seconds: u64,
    /// Requests in this first period are made but not measured.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(0..=600))]
    pub warmup_seconds: u64,
    /// Body size (store: object bytes; checkpoint: JSON state bytes).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=(64 << 20)))]
    pub size_bytes: Option<u64>,
    /// Print one JSON object on stdout instead of a summary.
    #[arg(long)]
    pub json: bool,
    /// mailbox-drop: run a webhook receiver on this address (e.g. 127.0.0.1:0), give every
    /// mailbox its URL, and report delivery latency. The nodes must allow it
    /// (`--webhook-allow-cidr 127.0.0.0/8`).
    #[arg(long)]
    pub webhook_listen: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// The `relay` binary; default: next to this one.
    #[arg(long)]
    pub relay_bin: Option<PathBuf>,
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=5))]
    pub nodes: u64,
    /// A short run (a few seconds per cell) that only checks everything works.
    #[arg(long)]
    pub quick: bool,
    /// Scenarios to run, comma-separated (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub scenarios: Vec<Scenario>,
    /// Client counts, comma-separated (default 1,16,64, or 16 with --quick).
    #[arg(long, value_delimiter = ',')]
    pub concurrency: Vec<u64>,
    /// Measured seconds per cell (default 10, or 2 with --quick).
    #[arg(long)]
    pub duration_seconds: Option<u64>,
    /// A B rounds per cell, each on freshly started clusters (default 2, or 1 with --quick); the
    /// table reports the worst.
    #[arg(long)]
    pub rounds: Option<u64>,
    /// The `etcd` binary; default: from PATH, installed with apt-get when missing.
    #[arg(long)]
    pub etcd_bin: Option<PathBuf>,
    /// Measure Relay only (no etcd column).
    #[arg(long)]
    pub no_etcd: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("relay-loadtest: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Commands::Run(args) => runner::run_command(args).await,
            Commands::Bench(args) => bench::run(args).await,
            Commands::Uploads(args) => uploads::run(args).await,
            Commands::Scale(args) => scale::run(args).await,
            Commands::Expiry(args) => expiry::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("relay-loadtest: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Why a load test could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("invalid arguments: {0}")]
    Args(String),
    #[error("setup against {target} failed: {reason}")]
    Setup { target: String, reason: String },
    #[error("every request failed ({0} errors): is the cluster up?")]
    AllFailed(u64),
    #[error("local cluster: {0}")]
    Local(String),
}

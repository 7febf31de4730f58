//! `relay-chaos`: runs a real Relay cluster under faults while clients record every operation,
//! then checks the history against Relay's promises (see `CHAOS.md`).

mod checker;
mod cluster;
mod history;
mod nemesis;
mod proxy;
mod regions;
mod run;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::nemesis::Nemesis;
use crate::workload::Workload;

#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    #[error("{0}")]
    Usage(String),
    #[error("cluster: {0}")]
    Cluster(String),
    #[error("workload setup or final read: {0}")]
    Workload(String),
    #[error("history file {path}: {message}")]
    HistoryFile { path: String, message: String },
}

#[derive(Parser, Debug)]
#[command(
    name = "relay-chaos",
    version,
    about = "Fault injection against a local Relay cluster, with a checked history"
)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand, Debug)]
enum Commands {
    /// Start a cluster, run workloads under faults, check the history.
    Run(RunArgs),
    /// Check a history written by `run --history`.
    Check(CheckArgs),
    /// Measure a cluster laid out as regions (delays on the Raft links): write and read latency
    /// at the leader and at a far learner, and failover when the leader's region dies.
    Regions(regions::RegionsArgs),
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// The `relay` binary (default: the one next to this executable).
    #[arg(long)]
    pub relay_bin: Option<PathBuf>,
    /// Cluster size.
    #[arg(long, default_value_t = 3, value_parser = parse_nodes)]
    pub nodes: usize,
    /// How long the workloads run under faults (setup and the final restart come on top).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(5..=86_400))]
    pub duration_seconds: u64,
    /// Drives every random choice (fault, target, timing, operation); random when absent.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Comma-separated: kill, pause, partition, latency, skew; or `all` or `none`.
    #[arg(long, default_value = "all", value_parser = parse_nemeses)]
    pub nemesis: NemesisList,
    /// Comma-separated: claims, checkpoint, storage, mailbox, baton; or `all`.
    #[arg(long, default_value = "all", value_parser = parse_workloads)]
    pub workload: WorkloadList,
    /// Clients per workload.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub clients: u64,
    /// Faults last one to two of these, with half to one and a half of calm between.
    #[arg(long, default_value_t = 3.0, value_parser = parse_interval)]
    pub interval_seconds: f64,
    /// The largest clock offset the skew nemesis sets, milliseconds.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i64).range(0..=60_000))]
    pub max_skew_ms: i64,
    /// Write the whole history here (JSON lines), for `relay-chaos check`.
    #[arg(long)]
    pub history: Option<PathBuf>,
    /// Progress and nemesis events as JSON lines (the verdict is always the last line, JSON).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct CheckArgs {
    /// A history written by `run --history`.
    #[arg(long)]
    pub history: PathBuf,
    /// How far a lease may be served past (or refused before) its expiry, milliseconds.
    #[arg(long, default_value_t = 0)]
    pub skew_bound_ms: u64,
}

#[derive(Clone, Debug)]
pub struct NemesisList(pub Vec<Nemesis>);
#[derive(Clone, Debug)]
pub struct WorkloadList(pub Vec<Workload>);

fn parse_nodes(s: &str) -> Result<usize, String> {
    match s {
        "3" => Ok(3),
        "5" => Ok(5),
        _ => Err("must be 3 or 5".into()),
    }
}

fn parse_interval(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.2..=600.0).contains(&v) => Ok(v),
        _ => Err("must be a number of seconds from 0.2 to 600".into()),
    }
}

fn parse_list<T: clap::ValueEnum + Clone + PartialEq>(s: &str, none_ok: bool) -> Result<Vec<T>, String> {
    match s.trim() {
        "all" => return Ok(T::value_variants().to_vec()),
        "none" if none_ok => return Ok(Vec::new()),
        _ => {}
    }
    let mut out: Vec<T> = Vec::new();
    for part in s.split(',').map(str::trim) {
        let v = T::from_str(part, true).map_err(|_| {
            let names: Vec<String> = T::value_variants()
                .iter()
                .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_string()))
                .collect();
            format!("unknown {part:?}; choose from {} or all", names.join(", "))
        })?;
        if !out.contains(&v) {
            out.push(v);
        }
    }
    Ok(out)
}

fn parse_nemeses(s: &str) -> Result<NemesisList, String> {
    parse_list(s, true).map(NemesisList)
}

fn parse_workloads(s: &str) -> Result<WorkloadList, String> {
    match parse_list::<Workload>(s, false)? {
        v if v.is_empty() => Err("at least one workload".into()),
        v => Ok(WorkloadList(v)),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("relay-chaos: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Commands::Run(args) => runtime.block_on(run::run(args)),
        Commands::Check(args) => run::check_file(&args),
        Commands::Regions(args) => {
            return match runtime.block_on(regions::run(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("relay-chaos regions: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("relay-chaos: {e}");
            println!("{}", serde_json::json!({"valid": false, "error": e.to_string()}));
            ExitCode::from(2)
        }
    }
}

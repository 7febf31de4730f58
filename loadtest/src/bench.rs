//! `bench`: every scenario at every client count against a local Relay cluster and a local etcd
//! cluster of the same size; one table.
//!
//! Fairness: each round of each cell runs on clusters started fresh for it (empty data dirs), and
//! only one system runs at a time, so neither carries an earlier cell's keys nor shares the cores
//! with the other's idle heartbeats. Rounds alternate A B A B; the table reports the round with
//! the lowest Relay/etcd ratio and the range over all rounds.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::local;
use crate::local_etcd::{self, LocalEtcd};
use crate::receiver::Receiver;
use crate::report::{ms, Report};
use crate::runner::{run_with, Options};
use crate::scenario::Scenario;
use crate::{BenchArgs, LoadError};

pub async fn run(args: BenchArgs) -> Result<(), LoadError> {
    let relay_bin = local::relay_bin(args.relay_bin.as_deref())?;
    let concurrency = match (&args.concurrency[..], args.quick) {
        ([], true) => vec![16],
        ([], false) => vec![1, 16, 64],
        (given, _) => given.to_vec(),
    };
    if concurrency.iter().any(|&c| c == 0 || c > 4096) {
        return Err(LoadError::Args("--concurrency values must be 1 to 4096".into()));
    }
    let scenarios = if args.scenarios.is_empty() {
        Scenario::all()
    } else {
        args.scenarios.clone()
    };
    let seconds = args.duration_seconds.unwrap_or(if args.quick { 2 } else { 10 });
    if !(1..=3600).contains(&seconds) {
        return Err(LoadError::Args("--duration-seconds must be 1 to 3600".into()));
    }
    let rounds = args.rounds.unwrap_or(if args.quick { 1 } else { 2 });
    if !(1..=20).contains(&rounds) {
        return Err(LoadError::Args("--rounds must be 1 to 20".into()));
    }
    let etcd_bin = if args.no_etcd {
        None
    } else {
        Some(local_etcd::find_or_install(args.etcd_bin.clone())?)
    };
    // x402 creates pay through a local facilitator that really checks every signature.
    let facilitator = match scenarios.contains(&Scenario::StoreX402) {
        true => Some(local::LocalFacilitator::start(&relay_bin)?),
        false => None,
    };
    let extra = facilitator.as_ref().map(|f| f.relay_args()).unwrap_or_default();
    let receiver = Receiver::start("127.0.0.1:0").await?;
    let bench = Bench {
        relay_bin,
        etcd_bin,
        nodes: args.nodes,
        extra,
        receiver,
        warmup: Duration::from_secs(if args.quick { 0 } else { 1 }),
        duration: Duration::from_secs(seconds),
    };
    eprintln!(
        "{}-node clusters, fresh for every round of every cell; {rounds} round(s) of {seconds} s",
        args.nodes
    );
    println!(
        "| scenario | clients | Relay ops/s | etcd ops/s | Relay/etcd (worst round) | all rounds | Relay p50 ms | Relay p99 ms | etcd p50 ms | etcd p99 ms | errors Relay / etcd | Relay peak RSS MiB | webhook p50 / p99 ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for scenario in scenarios {
        for &concurrency in &concurrency {
            let mut rounds_run = Vec::new();
            for _ in 0..rounds {
                let relay = bench.relay_round(scenario, concurrency).await?;
                let etcd = match &bench.etcd_bin {
                    Some(bin) => Some(bench.etcd_round(bin, scenario, concurrency).await?),
                    None => None,
                };
                rounds_run.push((relay, etcd));
            }
            println!("{}", row(scenario, concurrency, &rounds_run));
        }
    }
    drop(facilitator);
    Ok(())
}

struct Bench {
    relay_bin: PathBuf,
    etcd_bin: Option<PathBuf>,
    nodes: u64,
    extra: Vec<String>,
    receiver: Receiver,
    warmup: Duration,
    duration: Duration,
}

/// One Relay round: its report and the highest peak RSS of any node, in bytes.
struct RelayRound {
    report: Report,
    peak_rss: Option<u64>,
}

impl Bench {
    fn options(
        &self,
        targets: Vec<String>,
        etcd: Vec<String>,
        api_key: String,
        scenario: Scenario,
        concurrency: u64,
    ) -> Options {
        Options {
            targets,
            etcd,
            api_key,
            scenario,
            concurrency,
            rate: None,
            warmup: self.warmup,
            duration: self.duration,
            size_bytes: scenario.default_size(),
        }
    }

    async fn relay_round(&self, scenario: Scenario, concurrency: u64) -> Result<RelayRound, LoadError> {
        let cluster = local::start(&self.relay_bin, self.nodes, &self.extra).await?;
        let hooks = (scenario == Scenario::MailboxDrop).then_some(&self.receiver);
        let options = self.options(
            cluster.urls(),
            Vec::new(),
            cluster.nodes[0].key(),
            scenario,
            concurrency,
        );
        let report = run_with(options, false, hooks).await?;
        let peak_rss = cluster.nodes.iter().filter_map(|n| n.pid()).filter_map(peak_rss).max();
        drop(cluster);
        if report.ops == 0 {
            return Err(LoadError::AllFailed(report.error_count()));
        }
        Ok(RelayRound { report, peak_rss })
    }

    async fn etcd_round(&self, bin: &Path, scenario: Scenario, concurrency: u64) -> Result<Report, LoadError> {
        let etcd = LocalEtcd::start(bin, self.nodes).await?;
        let options = self.options(Vec::new(), etcd.endpoints.clone(), String::new(), scenario, concurrency);
        let report = run_with(options, false, None).await?;
        drop(etcd);
        if report.ops == 0 {
            return Err(LoadError::AllFailed(report.error_count()));
        }
        Ok(report)
    }
}

/// A process's peak resident set (`VmHWM`), in bytes.
fn peak_rss(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The cell's table row: the worst round (lowest Relay/etcd, or lowest Relay throughput without
/// etcd) in full, and every round's ratio.
fn row(scenario: Scenario, concurrency: u64, rounds: &[(RelayRound, Option<Report>)]) -> String {
    let ratio = |(r, e): &(RelayRound, Option<Report>)| match e {
        Some(e) => r.report.throughput() / e.throughput(),
        None => r.report.throughput(),
    };
    let worst = rounds
        .iter()
        .min_by(|a, b| ratio(a).total_cmp(&ratio(b)))
        .expect("at least one round");
    let (relay, etcd) = (&worst.0.report, &worst.1);
    let all = match etcd {
        Some(_) => rounds
            .iter()
            .map(|r| format!("{:.2}", ratio(r)))
            .collect::<Vec<_>>()
            .join(", "),
        None => "-".into(),
    };
    let webhooks = match &relay.webhook_latency_us {
        Some(w) if !w.is_empty() => format!(
            "{:.2} / {:.2}",
            ms(w.value_at_quantile(0.5)),
            ms(w.value_at_quantile(0.99))
        ),
        _ => "-".into(),
    };
    let (etcd_ops, ratio_text, etcd_p50, etcd_p99, etcd_errors) = match etcd {
        Some(e) => (
            format!("{:.0}", e.throughput()),
            format!("{:.2}", relay.throughput() / e.throughput()),
            format!("{:.2}", ms(e.percentile_us(0.50))),
            format!("{:.2}", ms(e.percentile_us(0.99))),
            e.error_count().to_string(),
        ),
        None => ("-".into(), "-".into(), "-".into(), "-".into(), "-".into()),
    };
    let rss = match worst.0.peak_rss {
        Some(b) => format!("{:.0}", b as f64 / (1 << 20) as f64),
        None => "-".into(),
    };
    format!(
        "| {} | {} | {:.0} | {} | {} | {} | {:.2} | {:.2} | {} | {} | {} / {} | {} | {} |",
        scenario.name(),
        concurrency,
        relay.throughput(),
        etcd_ops,
        ratio_text,
        all,
        ms(relay.percentile_us(0.50)),
        ms(relay.percentile_us(0.99)),
        etcd_p50,
        etcd_p99,
        relay.error_count(),
        etcd_errors,
        rss,
        webhooks,
    )
}

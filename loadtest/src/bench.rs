//! `bench`: a local cluster, every scenario at every client count, one table.

use std::time::Duration;

use crate::local::{default_relay_bin, LocalCluster};
use crate::receiver::Receiver;
use crate::report::ms;
use crate::runner::{run_with, Options};
use crate::scenario::Scenario;
use crate::{BenchArgs, LoadError};

pub async fn run(args: BenchArgs) -> Result<(), LoadError> {
    let relay_bin = match args.relay_bin.clone().or_else(default_relay_bin) {
        Some(p) if p.is_file() => p,
        Some(p) => return Err(LoadError::Args(format!("{} is not a file", p.display()))),
        None => return Err(LoadError::Args("no relay binary found; pass --relay-bin".into())),
    };
    if args.concurrency.iter().any(|&c| c == 0 || c > 4096) {
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
    eprintln!(
        "starting a {}-node Relay cluster from {}",
        args.nodes,
        relay_bin.display()
    );
    let cluster = LocalCluster::start(&relay_bin, args.nodes).await?;
    let receiver = Receiver::start("127.0.0.1:0").await?;
    println!("| scenario | clients | Relay ops/s | Relay p50 ms | Relay p99 ms | errors | webhook p50 / p99 ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for scenario in scenarios {
        for &concurrency in &args.concurrency {
            let opts = Options {
                targets: cluster.urls.clone(),
                api_key: cluster.api_key.clone(),
                scenario,
                concurrency,
                warmup: Duration::from_secs(if args.quick { 0 } else { 1 }),
                duration: Duration::from_secs(seconds),
                size_bytes: scenario.default_size(),
            };
            let hooks = (scenario == Scenario::MailboxDrop).then_some(&receiver);
            let report = run_with(opts, false, hooks).await?;
            if report.ops == 0 {
                return Err(LoadError::AllFailed(report.error_count()));
            }
            let webhooks = match &report.webhook_latency_us {
                Some(w) => format!(
                    "{:.2} / {:.2}",
                    ms(w.value_at_quantile(0.5)),
                    ms(w.value_at_quantile(0.99))
                ),
                None => "-".into(),
            };
            println!(
                "| {} | {} | {:.0} | {:.2} | {:.2} | {} | {} |",
                report.scenario,
                concurrency,
                report.throughput(),
                ms(report.percentile_us(0.50)),
                ms(report.percentile_us(0.99)),
                report.error_count(),
                webhooks,
            );
        }
    }
    drop(cluster);
    Ok(())
}

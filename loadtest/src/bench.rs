//! `bench`: a local Relay cluster and a local etcd cluster of the same size, every scenario at
//! every client count against both, alternating A B A B so drift hits both; one table.

use std::time::Duration;

use crate::local::{self, default_relay_bin};
use crate::local_etcd::{self, LocalEtcd};
use crate::receiver::Receiver;
use crate::report::{ms, Report};
use crate::runner::{run_with, Options};
use crate::scenario::Scenario;
use crate::{BenchArgs, LoadError};

pub async fn run(args: BenchArgs) -> Result<(), LoadError> {
    let relay_bin = match args.relay_bin.clone().or_else(default_relay_bin) {
        Some(p) if p.is_file() => p,
        Some(p) => return Err(LoadError::Args(format!("{} is not a file", p.display()))),
        None => return Err(LoadError::Args("no relay binary found; pass --relay-bin".into())),
    };
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
    let etcd_bin = if args.no_etcd {
        None
    } else {
        Some(local_etcd::find_or_install(args.etcd_bin.clone())?)
    };
    eprintln!(
        "starting a {}-node Relay cluster from {}",
        args.nodes,
        relay_bin.display()
    );
    // x402 creates pay through a local facilitator that really checks every signature.
    let facilitator = match scenarios.contains(&Scenario::StoreX402) {
        true => Some(local::LocalFacilitator::start(&relay_bin)?),
        false => None,
    };
    let extra = facilitator.as_ref().map(|f| f.relay_args()).unwrap_or_default();
    let cluster = local::start(&relay_bin, args.nodes, &extra).await?;
    let (urls, api_key) = (cluster.urls(), cluster.nodes[0].key());
    let etcd = match &etcd_bin {
        Some(bin) => {
            eprintln!("starting a {}-member etcd cluster from {}", args.nodes, bin.display());
            Some(LocalEtcd::start(bin, args.nodes).await?)
        }
        None => None,
    };
    let receiver = Receiver::start("127.0.0.1:0").await?;
    let rounds = if args.quick { 1 } else { 2 };
    println!(
        "| scenario | clients | Relay ops/s | etcd ops/s | Relay/etcd | Relay p50 ms | Relay p99 ms | etcd p50 ms | etcd p99 ms | errors Relay / etcd | webhook p50 / p99 ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for scenario in scenarios {
        for &concurrency in &concurrency {
            let cell = |etcd_endpoints: Vec<String>| Options {
                targets: urls.clone(),
                etcd: etcd_endpoints,
                api_key: api_key.clone(),
                scenario,
                concurrency,
                rate: None,
                warmup: Duration::from_secs(if args.quick { 0 } else { 1 }),
                duration: Duration::from_secs(seconds),
                size_bytes: scenario.default_size(),
            };
            let mut relay: Option<Report> = None;
            let mut other: Option<Report> = None;
            for _ in 0..rounds {
                let hooks = (scenario == Scenario::MailboxDrop).then_some(&receiver);
                merge(&mut relay, run_with(cell(Vec::new()), false, hooks).await?)?;
                if let Some(e) = &etcd {
                    merge(&mut other, run_with(cell(e.endpoints.clone()), false, None).await?)?;
                }
            }
            let relay = relay.expect("at least one round");
            let webhooks = match &relay.webhook_latency_us {
                Some(w) if !w.is_empty() => {
                    format!(
                        "{:.2} / {:.2}",
                        ms(w.value_at_quantile(0.5)),
                        ms(w.value_at_quantile(0.99))
                    )
                }
                _ => "-".into(),
            };
            let (etcd_ops, ratio, etcd_p50, etcd_p99, etcd_errors) = match &other {
                Some(e) => (
                    format!("{:.0}", e.throughput()),
                    format!("{:.2}", relay.throughput() / e.throughput()),
                    format!("{:.2}", ms(e.percentile_us(0.50))),
                    format!("{:.2}", ms(e.percentile_us(0.99))),
                    e.error_count().to_string(),
                ),
                None => ("-".into(), "-".into(), "-".into(), "-".into(), "-".into()),
            };
            println!(
                "| {} | {} | {:.0} | {} | {} | {:.2} | {:.2} | {} | {} | {} / {} | {} |",
                relay.scenario,
                concurrency,
                relay.throughput(),
                etcd_ops,
                ratio,
                ms(relay.percentile_us(0.50)),
                ms(relay.percentile_us(0.99)),
                etcd_p50,
                etcd_p99,
                relay.error_count(),
                etcd_errors,
                webhooks,
            );
        }
    }
    drop(etcd);
    drop(cluster);
    drop(facilitator);
    Ok(())
}

/// Adds a round to the cell's total; a round with no successful operation fails the bench.
fn merge(total: &mut Option<Report>, round: Report) -> Result<(), LoadError> {
    if round.ops == 0 {
        return Err(LoadError::AllFailed(round.error_count()));
    }
    match total {
        None => *total = Some(round),
        Some(t) => {
            t.ops += round.ops;
            t.duration_s += round.duration_s;
            for (status, n) in round.errors {
                *t.errors.entry(status).or_default() += n;
            }
            t.latency_us
                .add(&round.latency_us)
                .map_err(|e| LoadError::Local(e.to_string()))?;
            match (&mut t.webhook_latency_us, round.webhook_latency_us) {
                (Some(a), Some(b)) => a.add(&b).map_err(|e| LoadError::Local(e.to_string()))?,
                (slot @ None, b) => *slot = b,
                _ => {}
            }
        }
    }
    Ok(())
}

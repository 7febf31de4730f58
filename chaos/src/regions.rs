//! `relay-chaos regions`: a cluster laid out as regions, the distances made by the fault proxies'
//! delays (every Raft connection between two nodes pays the round trip between their regions).
//! Three voters in three regions and one learner far away; measured from clients standing next
//! to each node (loopback): write latency at the leader and at the learner, read latency at the
//! leader and at the learner (a read index from the leader, then local data), and the time
//! writes stop when the leader's region dies (SIGKILL).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;

use crate::cluster::Cluster;
use crate::ChaosError;

#[derive(Args, Debug, Clone)]
pub struct RegionsArgs {
    /// The `relay` binary (default: the one next to this executable).
    #[arg(long)]
    pub relay_bin: Option<PathBuf>,
    /// Round trips between the three voters' regions, ms: 1–2, 1–3, 2–3.
    #[arg(long, default_value = "40,60,80", value_delimiter = ',', num_args = 3)]
    pub voter_rtt_ms: Vec<u64>,
    /// Round trip between the far learner's region and every voter, ms.
    #[arg(long, default_value_t = 150)]
    pub learner_rtt_ms: u64,
    /// The nodes' `--raft-heartbeat-ms`: it bounds each replication call, so it must exceed the
    /// longest round trip (the learner's).
    #[arg(long, default_value_t = 250)]
    pub heartbeat_ms: u64,
    /// The nodes' `--raft-election-timeout-ms`.
    #[arg(long, default_value_t = 1000)]
    pub election_timeout_ms: u64,
    /// Requests per measurement.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(10..=100_000))]
    pub requests: u64,
    /// Where the nodes' data and logs go (default: a temp dir, removed afterwards).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

const NAMES: [&str; 4] = ["eu-west", "us-east", "us-west", "ap-south (learner)"];

/// p50 and p99 of `samples` in milliseconds.
fn percentiles(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i].as_secs_f64() * 1e3
    };
    (at(0.50), at(0.99))
}

pub async fn run(args: RegionsArgs) -> Result<(), ChaosError> {
    let relay_bin = crate::run::relay_bin(args.relay_bin.clone())?;
    let temp = tempfile::Builder::new()
        .prefix("relay-regions-")
        .tempdir()
        .map_err(|e| ChaosError::Cluster(e.to_string()))?;
    let dir = args.dir.clone().unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir).map_err(|e| ChaosError::Cluster(e.to_string()))?;
    let timing = [
        "--raft-heartbeat-ms".to_string(),
        args.heartbeat_ms.to_string(),
        "--raft-election-timeout-ms".to_string(),
        args.election_timeout_ms.to_string(),
    ];
    let mut cluster = Cluster::start(&relay_bin, 4, 3, &dir, 7, &timing).await?;
    let rtt = |i: usize, j: usize| -> u64 {
        match (i.min(j), i.max(j)) {
            (0, 1) => args.voter_rtt_ms[0],
            (0, 2) => args.voter_rtt_ms[1],
            (1, 2) => args.voter_rtt_ms[2],
            _ => args.learner_rtt_ms,
        }
    };
    // Each direction of a connection pays half the round trip.
    for i in 0..4 {
        for j in 0..4 {
            if i != j {
                cluster.links[i][j]
                    .delay_us
                    .store(rtt(i, j) * 1000 / 2, std::sync::atomic::Ordering::SeqCst);
            }
        }
    }
    let leader = cluster
        .leader()
        .await
        .ok_or_else(|| ChaosError::Cluster("no leader".into()))?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| ChaosError::Cluster(e.to_string()))?;
    let key = cluster.api_key();
    println!(
        "regions: voters {} / {} / {} (round trips {:?} ms), learner {} ({} ms to each voter); leader: node {} ({}); \
         heartbeat {} ms, election timeout {}-{} ms",
        NAMES[0],
        NAMES[1],
        NAMES[2],
        args.voter_rtt_ms,
        NAMES[3],
        args.learner_rtt_ms,
        leader + 1,
        NAMES[leader],
        args.heartbeat_ms,
        args.election_timeout_ms,
        2 * args.election_timeout_ms
    );
    // Let the new delays settle into the heartbeats before measuring.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let write = |base: String| {
        let (http, key) = (http.clone(), key.clone());
        async move {
            let started = Instant::now();
            let r = http
                .post(format!("{base}/api/store"))
                .bearer_auth(&key)
                .header("x-file-name", "r.bin")
                .header("x-size-bytes", "16")
                .header("x-duration-seconds", "600")
                .body(vec![7u8; 16])
                .send()
                .await;
            match r {
                Ok(r) if r.status().as_u16() == 201 => Ok(started.elapsed()),
                Ok(r) => {
                    let status = r.status();
                    let body = r.text().await.unwrap_or_default();
                    Err(format!(
                        "write answered {status}: {}",
                        body.chars().take(300).collect::<String>()
                    ))
                }
                Err(e) => Err(e.to_string()),
            }
        }
    };
    let read = |base: String| {
        let (http, key) = (http.clone(), key.clone());
        async move {
            let started = Instant::now();
            let r = http
                .get(format!("{base}/api/leases?limit=1"))
                .bearer_auth(&key)
                .send()
                .await;
            match r {
                Ok(r) if r.status().is_success() => Ok(started.elapsed()),
                Ok(r) => {
                    let status = r.status();
                    let body = r.text().await.unwrap_or_default();
                    Err(format!(
                        "read answered {status}: {}",
                        body.chars().take(300).collect::<String>()
                    ))
                }
                Err(e) => Err(e.to_string()),
            }
        }
    };
    let learner = 3;
    let cases = [
        ("write at the leader", leader, true),
        ("write at the far learner", learner, true),
        ("read at the leader", leader, false),
        ("read at the far learner", learner, false),
    ];
    println!("| operation | node | p50 ms | p99 ms | failed |");
    println!("|---|---|---|---|---|");
    for (what, node, is_write) in cases {
        let base = cluster.url(node).to_string();
        let mut samples = Vec::new();
        let mut failed = 0;
        for _ in 0..args.requests {
            let outcome = match is_write {
                true => write(base.clone()).await,
                false => read(base.clone()).await,
            };
            match outcome {
                Ok(d) => samples.push(d),
                Err(e) => {
                    failed += 1;
                    eprintln!("{what}: {e}");
                }
            }
        }
        if samples.is_empty() {
            return Err(ChaosError::Workload(format!("{what}: every request failed")));
        }
        let (p50, p99) = percentiles(&mut samples);
        println!("| {what} | {} | {p50:.1} | {p99:.1} | {failed} |", NAMES[node]);
    }

    // The leader's region dies: how long until a write through the nearest survivor succeeds.
    let survivor = (0..3)
        .filter(|&i| i != leader)
        .min_by_key(|&i| rtt(leader, i))
        .unwrap_or(0);
    let base = cluster.url(survivor).to_string();
    cluster.kill(leader);
    let killed = Instant::now();
    let mut attempts = 0;
    let gap = loop {
        attempts += 1;
        if write(base.clone()).await.is_ok() {
            break killed.elapsed();
        }
        if killed.elapsed() > Duration::from_secs(60) {
            return Err(ChaosError::Workload(
                "no write succeeded within 60 s of the kill".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let new_leader = cluster.leader().await.map_or("?".to_string(), |l| NAMES[l].to_string());
    println!(
        "failover: {} killed (SIGKILL); first write through {} after {:.0} ms ({attempts} attempts); new leader {new_leader}",
        NAMES[leader],
        NAMES[survivor],
        gap.as_secs_f64() * 1e3
    );
    Ok(())
}

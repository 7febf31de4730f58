//! `scale`: how a local cluster behaves as its live leases grow (10^4, 10^5, 10^6 by default):
//! create throughput, each node's RSS, data-dir size, a full-state snapshot's build time and size,
//! a follower's restart, a new node's catch-up, and `GET /api/leases` page latency for the one
//! owner of every lease. A markdown table on stdout and an SVG of each curve.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use relay_testkit::{Client, Node};

use crate::fill::{self, dir_size, mib, Shape};
use crate::local;
use crate::plot::{self, Panel};
use crate::{LoadError, ScaleArgs};

struct Row {
    leases: u64,
    create_per_s: f64,
    rss_mib: Vec<f64>,
    data_mib: f64,
    objects: u64,
    snapshot_s: f64,
    snapshot_mib: f64,
    restart_s: f64,
    catch_up_s: f64,
    list_p50_ms: f64,
    list_p99_ms: f64,
}

pub async fn run(args: ScaleArgs) -> Result<(), LoadError> {
    let relay_bin = local::relay_bin(args.relay_bin.as_deref())?;
    let mut sizes = args.sizes.clone();
    sizes.sort_unstable();
    if sizes.is_empty() || sizes.iter().any(|&s| s == 0 || s > 10_000_000) {
        return Err(LoadError::Args("--sizes must be 1 to 10000000 each".into()));
    }
    if args.storage_percent > 100 {
        return Err(LoadError::Args("--storage-percent must be 0 to 100".into()));
    }
    eprintln!("starting a {}-node Relay cluster", args.nodes);
    let mut cluster = local::start(&relay_bin, args.nodes, &[]).await?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .pool_max_idle_per_host(args.concurrency as usize)
        .build()
        .map_err(|e| LoadError::Local(e.to_string()))?;
    let clients = local::clients(&cluster, &http);
    let objects_dir = cluster.objects_dir().unwrap_or_default();
    let run_id = format!("{:x}", fill::now_ms());
    let mut rows = Vec::new();
    let mut have = 0u64;
    for (step, &size) in sizes.iter().enumerate() {
        eprintln!("filling to {size} leases");
        let shape = Shape {
            storage_percent: args.storage_percent,
            duration_s: Some(7 * 86_400),
            at_ms: 0,
        };
        let (_, create_per_s) = fill::fill(
            &clients,
            args.concurrency as usize,
            size - have,
            shape,
            &format!("{run_id}-{step}"),
            false,
        )
        .await?;
        have = size;
        // Let replication and the apply queues settle before measuring the footprint.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let rss_mib = cluster
            .nodes
            .iter()
            .map(|n| n.pid().and_then(fill::rss).map(mib).unwrap_or(0.0))
            .collect();
        let data_mib = mib(cluster
            .nodes
            .iter()
            .map(|n| dir_size(&n.data_dir().join("ledger")).0)
            .max()
            .unwrap_or(0));
        let objects = dir_size(&objects_dir).1;
        let (snapshot_s, snapshot_mib) = snapshot(&cluster, &http).await?;
        let list = list_latency(&clients[0]).await?;
        let restart_s = restart(&mut cluster, &http).await?;
        let catch_up_s = catch_up(&cluster, &relay_bin, &http, 4 + step as u64).await?;
        let row = Row {
            leases: size,
            create_per_s,
            rss_mib,
            data_mib,
            objects,
            snapshot_s,
            snapshot_mib,
            restart_s,
            catch_up_s,
            list_p50_ms: list.value_at_quantile(0.5) as f64 / 1000.0,
            list_p99_ms: list.value_at_quantile(0.99) as f64 / 1000.0,
        };
        eprintln!("{}", line(&row));
        rows.push(row);
    }
    println!("| leases | creates/s | RSS MiB per node | ledger data MiB (largest node) | objects | snapshot s | snapshot MiB | snapshot MB/s | follower restart s | new node catch-up s | catch-up MB/s | list page p50 / p99 ms |");
    println!("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!("{}", line(r));
    }
    let points = |f: &dyn Fn(&Row) -> f64| rows.iter().map(|r| (r.leases as f64, f(r))).collect::<Vec<_>>();
    let panels = vec![
        panel(
            "max node RSS, MiB",
            points(&|r| r.rss_mib.iter().cloned().fold(0.0, f64::max)),
        ),
        panel("ledger data, MiB", points(&|r| r.data_mib)),
        panel("creates per second", points(&|r| r.create_per_s)),
        panel("snapshot build, s", points(&|r| r.snapshot_s)),
        panel("follower restart, s", points(&|r| r.restart_s)),
        panel("new node catch-up, s", points(&|r| r.catch_up_s)),
        panel("list page p99, ms", points(&|r| r.list_p99_ms)),
    ];
    let path = args.plot.clone().unwrap_or_else(|| PathBuf::from("scale.svg"));
    std::fs::write(&path, plot::svg("Relay scale curve (3 nodes, loopback)", &panels))
        .map_err(|e| LoadError::Local(format!("{}: {e}", path.display())))?;
    eprintln!("plot written to {}", path.display());
    Ok(())
}

fn panel(title: &str, points: Vec<(f64, f64)>) -> Panel {
    Panel {
        title: title.into(),
        x_label: "live leases".into(),
        points,
        log_x: true,
    }
}

fn line(r: &Row) -> String {
    let rss: Vec<String> = r.rss_mib.iter().map(|m| format!("{m:.0}")).collect();
    format!(
        "| {} | {:.0} | {} | {:.1} | {} | {:.2} | {:.1} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} / {:.2} |",
        r.leases,
        r.create_per_s,
        rss.join(" / "),
        r.data_mib,
        r.objects,
        r.snapshot_s,
        r.snapshot_mib,
        r.snapshot_mib * 1.048_576 / r.snapshot_s.max(1e-6),
        r.restart_s,
        r.catch_up_s,
        r.data_mib * 1.048_576 / r.catch_up_s.max(1e-6),
        r.list_p50_ms,
        r.list_p99_ms
    )
}

/// `GET /cluster/backup` from the leader: the same consistent capture a Raft snapshot is built
/// from. Seconds to the last byte, and its size.
async fn snapshot(cluster: &relay_testkit::Cluster, http: &reqwest::Client) -> Result<(f64, f64), LoadError> {
    let leader = cluster
        .leader()
        .await
        .ok_or_else(|| LoadError::Local("no leader".into()))?;
    let started = Instant::now();
    let reply = Client::new(http.clone(), cluster.nodes[leader].base())
        .secret(local::SECRET)
        .get("/cluster/backup")
        .send()
        .await
        .map_err(|e| LoadError::Local(format!("backup: {e}")))?;
    if reply.status != 200 {
        return Err(LoadError::Local(format!("backup answered {}", reply.status)));
    }
    Ok((started.elapsed().as_secs_f64(), mib(reply.body.len() as u64)))
}

/// 30 first pages and 30 pages walked by cursor, 100 leases each: their latencies (µs).
async fn list_latency(client: &Client) -> Result<Histogram<u64>, LoadError> {
    let mut h = Histogram::<u64>::new(3).map_err(|e| LoadError::Local(e.to_string()))?;
    let mut cursor: Option<String> = None;
    for i in 0..60 {
        let started = Instant::now();
        let from = if i < 30 { None } else { cursor.as_deref() };
        let reply = client
            .leases(Some(100), from)
            .send()
            .await
            .map_err(|e| LoadError::Local(format!("list: {e}")))?;
        if reply.status != 200 {
            return Err(LoadError::Local(format!("list answered {}", reply.status)));
        }
        let _ = h.record(started.elapsed().as_micros() as u64);
        if i >= 29 {
            cursor = reply.json()["next_cursor"].as_str().map(String::from);
        }
    }
    Ok(h)
}

/// SIGTERM the last node and start it again: seconds from relaunch until it has applied
/// everything the leader had when it stopped.
async fn restart(cluster: &mut relay_testkit::Cluster, http: &reqwest::Client) -> Result<f64, LoadError> {
    let target = last_log_index(cluster, http).await?;
    let node = cluster
        .nodes
        .last_mut()
        .ok_or_else(|| LoadError::Local("no node".into()))?;
    let started = tokio::task::block_in_place(|| {
        node.terminate().map_err(|e| LoadError::Local(format!("stop: {e}")))?;
        let started = Instant::now();
        node.restart().map_err(|e| LoadError::Local(format!("restart: {e}")))?;
        Ok::<_, LoadError>(started)
    })?;
    applied_up_to(http, node.base(), target).await?;
    Ok(started.elapsed().as_secs_f64())
}

/// The leader's last log index.
async fn last_log_index(cluster: &relay_testkit::Cluster, http: &reqwest::Client) -> Result<u64, LoadError> {
    let leader = cluster
        .leader()
        .await
        .ok_or_else(|| LoadError::Local("no leader".into()))?;
    let status = status(http, cluster.nodes[leader].base()).await?;
    status["last_log_index"]
        .as_u64()
        .ok_or_else(|| LoadError::Local(format!("no last_log_index in {status}")))
}

async fn status(http: &reqwest::Client, base: &str) -> Result<serde_json::Value, LoadError> {
    let reply = Client::new(http.clone(), base)
        .secret(local::SECRET)
        .cluster_status()
        .send()
        .await
        .map_err(|e| LoadError::Local(format!("status: {e}")))?;
    Ok(reply.json())
}

/// Waits (up to 30 minutes) until the node at `base` has applied `index`.
async fn applied_up_to(http: &reqwest::Client, base: &str, index: u64) -> Result<(), LoadError> {
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        if let Ok(s) = status(http, base).await {
            if s["last_applied"].as_u64().is_some_and(|a| a >= index) {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(LoadError::Local(format!("{base} never applied index {index}")));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A fresh node joins (as a learner beyond three voters) and catches up from a snapshot and the
/// log: seconds from its start until it has applied what the leader had; then it is stopped and
/// removed again.
async fn catch_up(
    cluster: &relay_testkit::Cluster,
    relay_bin: &std::path::Path,
    http: &reqwest::Client,
    node_id: u64,
) -> Result<f64, LoadError> {
    let dir = tempfile::tempdir().map_err(|e| LoadError::Local(e.to_string()))?;
    let objects = format!("file://{}", cluster.objects_dir().unwrap_or_default().display());
    let builder = Node::builder(relay_bin)
        .dir(dir.path().join("node"))
        .rust_log("warn")
        .args(["--node-id", &node_id.to_string(), "--cluster-secret", local::SECRET])
        .args(["--objects", &objects, "--join", cluster.nodes[0].base()]);
    let target = last_log_index(cluster, http).await?;
    let started = Instant::now();
    // A large state takes longer to arrive than the kit's usual readiness wait.
    let mut node = tokio::task::block_in_place(|| {
        let mut node = builder.launch()?;
        node.wait_ready(Duration::from_secs(1800))?;
        Ok::<_, relay_testkit::KitError>(node)
    })
    .map_err(|e| LoadError::Local(format!("join: {e}")))?;
    applied_up_to(http, node.base(), target).await?;
    let took = started.elapsed().as_secs_f64();
    tokio::task::block_in_place(|| node.terminate()).map_err(|e| LoadError::Local(format!("stop joiner: {e}")))?;
    let removed = Client::new(http.clone(), cluster.nodes[0].base())
        .secret(local::SECRET)
        .call(reqwest::Method::POST, "/cluster/remove")
        .body(bytes::Bytes::from(format!("{{\"node_id\":{node_id}}}")))
        .content_type("application/json")
        .send()
        .await
        .map_err(|e| LoadError::Local(format!("remove: {e}")))?;
    if removed.status != 200 {
        return Err(LoadError::Local(format!(
            "remove answered {}: {}",
            removed.status,
            removed.text()
        )));
    }
    Ok(took)
}

//! `expiry`: many Storage leases ending in the same second, on a local cluster. Measures
//! whether any read is served after its lease's `expires_at` on any node, how fast the bytes
//! go (the object files left, sampled every 250 ms), and foreground checkpoint-read latency
//! before and during the sweep. A markdown summary on stdout and an SVG of both curves.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;

use crate::fill::{self, count_files, now_ms, Made, Shape};
use crate::local;
use crate::plot::{self, Panel};
use crate::{ExpiryArgs, LoadError};

/// What the probes saw of reads that started after their lease's `expires_at`.
#[derive(Default)]
struct Probes {
    after_expiry: u64,
    gone: u64,
    served: u64,
    other: u64,
    before_expiry_ok: u64,
}

pub async fn run(args: ExpiryArgs) -> Result<(), LoadError> {
    let relay_bin = local::relay_bin(args.relay_bin.as_deref())?;
    if !(1_000..=10_000_000).contains(&args.leases) {
        return Err(LoadError::Args("--leases must be 1000 to 10000000".into()));
    }
    // Leases as short as the fill allows (the default minimum is a minute).
    let extra = ["--min-duration-seconds".to_string(), "1".to_string()];
    let cluster = local::start(&relay_bin, args.nodes, &extra).await?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(128)
        .build()
        .map_err(|e| LoadError::Local(e.to_string()))?;
    let clients = local::clients(&cluster, &http);
    let objects_dir = cluster.objects_dir().unwrap_or_default().join("blobs");
    let run_id = format!("{:x}", now_ms());

    // Foreground: checkpoints that live long, read throughout.
    let fg_ids: Vec<String> = (0..16).map(|i| format!("fg-{run_id}-{i}")).collect();
    for (i, id) in fg_ids.iter().enumerate() {
        let reply = clients[i % clients.len()]
            .checkpoint_create(id, 86_400, Some(256), Bytes::from_static(b"{\"fg\":true}"))
            .send()
            .await
            .map_err(|e| LoadError::Local(e.to_string()))?;
        if reply.status != 201 {
            return Err(LoadError::Local(format!("foreground checkpoint: {}", reply.status)));
        }
    }

    // Every lease ends in the second starting at `at_ms`, far enough ahead for the fill.
    let at_ms = (now_ms() + args.fill_seconds * 1000).div_ceil(1000) * 1000;
    eprintln!("creating {} Storage leases that all end in one second", args.leases);
    let shape = Shape {
        storage_percent: 100,
        duration_s: None,
        at_ms,
    };
    let (made, rate) = fill::fill(&clients, args.concurrency as usize, args.leases, shape, &run_id, true).await?;
    let first = made.iter().map(|m| m.expires_at_ms).min().unwrap_or(at_ms);
    let last = made.iter().map(|m| m.expires_at_ms).max().unwrap_or(at_ms);
    eprintln!(
        "created at {rate:.0}/s; expires_at spans {} ms from {}; {} s to go",
        last - first,
        first,
        first.saturating_sub(now_ms()) / 1000
    );
    let files_before = count_files(&objects_dir);

    let stop = Arc::new(AtomicBool::new(false));
    // Foreground readers: latency per 250 ms window, by completion time relative to `first`.
    let mut fg_tasks = Vec::new();
    for (i, id) in fg_ids.iter().enumerate() {
        let (client, id, stop) = (clients[i % clients.len()].clone(), id.clone(), stop.clone());
        fg_tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let ok = matches!(client.checkpoint_get(&id).send().await, Ok(r) if r.status == 200);
                samples.push((now_ms(), started.elapsed().as_micros() as u64, ok));
            }
            samples
        }));
    }
    // Probes: random expiring leases read on every node, round and round.
    let made = Arc::new(made);
    let mut probe_tasks = Vec::new();
    for p in 0..args.probes as usize {
        let (client, made, stop) = (clients[p % clients.len()].clone(), made.clone(), stop.clone());
        probe_tasks.push(tokio::spawn(async move {
            let mut seen = Probes::default();
            let mut k = p as u64 * 7919;
            while !stop.load(Ordering::Relaxed) {
                k = k.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let m: &Made = &made[(k >> 33) as usize % made.len()];
                let sent = now_ms();
                let status = client.download(&m.lease_id).send().await.map(|r| r.status).unwrap_or(0);
                // A read that began after the lease ended must not serve it (2 ms: timestamps are
                // rendered to the millisecond).
                if sent > m.expires_at_ms + 2 {
                    seen.after_expiry += 1;
                    match status {
                        410 | 404 => seen.gone += 1,
                        200 => seen.served += 1,
                        _ => seen.other += 1,
                    }
                } else if status == 200 {
                    seen.before_expiry_ok += 1;
                }
            }
            seen
        }));
    }
    // The bytes: object files left, every 250 ms until none are or the time is up.
    let mut curve = Vec::new();
    let deadline = last + args.watch_seconds * 1000;
    let mut gone_at = None;
    while now_ms() < deadline {
        let files = count_files(&objects_dir);
        let t = now_ms() as f64 - first as f64;
        curve.push((t / 1000.0, files as f64));
        if files == 0 && now_ms() > last && gone_at.is_none() {
            gone_at = Some(t / 1000.0);
            // A few more samples show it stays at zero.
            if curve.len() > 4 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut probes = Probes::default();
    for t in probe_tasks {
        let s = t.await.map_err(|e| LoadError::Local(e.to_string()))?;
        probes.after_expiry += s.after_expiry;
        probes.gone += s.gone;
        probes.served += s.served;
        probes.other += s.other;
        probes.before_expiry_ok += s.before_expiry_ok;
    }
    let mut samples = Vec::new();
    for t in fg_tasks {
        samples.extend(t.await.map_err(|e| LoadError::Local(e.to_string()))?);
    }
    let window = |from: u64, to: u64| -> Result<(Histogram<u64>, u64), LoadError> {
        let mut h = Histogram::<u64>::new(3).map_err(|e| LoadError::Local(e.to_string()))?;
        let mut failed = 0;
        for &(at, us, ok) in &samples {
            if at >= from && at < to {
                let _ = h.record(us);
                failed += u64::from(!ok);
            }
        }
        Ok((h, failed))
    };
    let sweep_end = gone_at
        .map(|g| first + (g * 1000.0) as u64)
        .unwrap_or(deadline)
        .max(first + 1000);
    let (before, failed_before) = window(0, first)?;
    let (during, failed_during) = window(first, sweep_end)?;
    let p99 = |h: &Histogram<u64>| h.value_at_quantile(0.99) as f64 / 1000.0;
    let mut fg_curve = Vec::new();
    let start = samples.iter().map(|s| s.0).min().unwrap_or(first);
    let end = samples.iter().map(|s| s.0).max().unwrap_or(first);
    let mut t = start;
    while t < end {
        let (h, _) = window(t, t + 500)?;
        if !h.is_empty() {
            fg_curve.push(((t as f64 - first as f64) / 1000.0, p99(&h)));
        }
        t += 500;
    }

    println!("| measure | value |");
    println!("|---|---:|");
    println!("| leases, all Storage, one owner | {} |", args.leases);
    println!("| created per second | {rate:.0} |");
    println!("| spread of their expires_at | {} ms |", last - first);
    println!("| object files before | {files_before} |");
    println!(
        "| all object bytes gone, s after the first expiry | {} |",
        gone_at.map_or("not within the watch".to_string(), |g| format!("{g:.2}"))
    );
    println!(
        "| probe reads begun after their lease's expires_at (all nodes) | {} |",
        probes.after_expiry
    );
    println!("| … answered 410/404 | {} |", probes.gone);
    println!("| … served (a violation) | {} |", probes.served);
    println!("| … other answers | {} |", probes.other);
    println!("| probe reads served before expiry | {} |", probes.before_expiry_ok);
    println!(
        "| foreground checkpoint GET p99 before / during the sweep, ms | {:.2} / {:.2} ({} / {} reads, {} / {} failed) |",
        p99(&before),
        p99(&during),
        before.len(),
        during.len(),
        failed_before,
        failed_during
    );
    let path = args.plot.clone().unwrap_or_else(|| PathBuf::from("expiry.svg"));
    let panels = [
        Panel {
            title: "object files left".into(),
            x_label: "s after the first expires_at".into(),
            points: curve,
            log_x: false,
        },
        Panel {
            title: "foreground GET p99 per 0.5 s, ms".into(),
            x_label: "s after the first expires_at".into(),
            points: fg_curve,
            log_x: false,
        },
    ];
    std::fs::write(
        &path,
        plot::svg(&format!("Mass expiry: {} leases in one second", args.leases), &panels),
    )
    .map_err(|e| LoadError::Local(format!("{}: {e}", path.display())))?;
    eprintln!("plot written to {}", path.display());
    if probes.served > 0 {
        return Err(LoadError::Local(format!(
            "{} reads served a lease after its expires_at",
            probes.served
        )));
    }
    Ok(())
}

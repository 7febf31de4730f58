//! One run: cluster up, workloads set up, faults and clients for the duration, every fault
//! lifted, a final kill -9 of the whole cluster and restart, final reads, then the verdict.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{json, Value};
use tokio::sync::Mutex as AsyncMutex;

use relay_testkit::Client;

use crate::checker::{self, Params, Violation};
use crate::cluster::Cluster;
use crate::history::{Clock, Entry, History, Outcome};
use crate::nemesis::{self, EventLog, Nemesis, Schedule};
use crate::workload::{self, baton, checkpoint, claims, mailbox, storage, Ctx, Workload};
use crate::{ChaosError, CheckArgs, RunArgs};

/// Linearizability search steps per register before the checker gives up.
const SEARCH_BUDGET: u64 = 20_000_000;
/// Rounding of millisecond timestamps, added to any skew bound.
const SLACK_MS: u64 = 2;
const HEAL_TIMEOUT: Duration = Duration::from_secs(90);

pub fn relay_bin(given: Option<PathBuf>) -> Result<PathBuf, ChaosError> {
    if let Some(p) = &given {
        return if p.is_file() {
            Ok(p.clone())
        } else {
            Err(ChaosError::Usage(format!("--relay-bin {}: no such file", p.display())))
        };
    }
    relay_testkit::default_relay_bin()
        .ok_or_else(|| ChaosError::Usage("no relay binary next to relay-chaos; pass --relay-bin".into()))
}

fn say(json_mode: bool, clock: &Clock, msg: &str) {
    if json_mode {
        eprintln!("{}", json!({"at_s": clock.elapsed_s(), "progress": msg}));
    } else {
        eprintln!("[{:>8.3}s] {msg}", clock.elapsed_s());
    }
}

pub async fn run(args: RunArgs) -> Result<bool, ChaosError> {
    let relay_bin = relay_bin(args.relay_bin.clone())?;
    let seed = args
        .seed
        .unwrap_or_else(|| Clock::new().now_us() ^ u64::from(std::process::id()));
    let clock = Clock::new();
    let nemeses = args.nemesis.0.clone();
    let workloads = args.workload.0.clone();
    say(
        args.json,
        &clock,
        &format!(
            "relay-chaos: seed {seed}, {} nodes, {} s, nemesis {:?}, workload {:?}",
            args.nodes, args.duration_seconds, nemeses, workloads
        ),
    );
    let mut rng = StdRng::seed_from_u64(seed);
    // Kept when anything goes wrong (the nodes' logs say why); removed after a valid run.
    let dir = tempfile::Builder::new()
        .prefix("relay-chaos-")
        .tempdir()
        .map_err(|e| ChaosError::Cluster(format!("temp dir: {e}")))?
        .keep();
    say(args.json, &clock, &format!("nodes' data and logs in {}", dir.display()));
    let cluster = Cluster::start(&relay_bin, args.nodes, args.nodes, &dir, seed, &[]).await?;
    say(args.json, &clock, &format!("cluster of {} up", args.nodes));

    let http = reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| ChaosError::Cluster(e.to_string()))?;
    let api_key = cluster.api_key();
    let ctx = Arc::new(Ctx {
        api: cluster
            .urls()
            .iter()
            .map(|url| {
                Client::new(http.clone(), url)
                    .bearer(&api_key)
                    .timeout(workload::OP_TIMEOUT)
            })
            .collect(),
        history: History::default(),
        clock,
        stop: Default::default(),
        start_us: Default::default(),
    });
    let d = args.duration_seconds;
    let regs = if workloads.contains(&Workload::Checkpoint) {
        Some(Arc::new(checkpoint::setup(&ctx, d, &mut rng).await?))
    } else {
        None
    };
    let tokens = if workloads.contains(&Workload::Claims) {
        Some(Arc::new(claims::setup(&ctx, d, &mut rng).await?))
    } else {
        None
    };
    let boxes = if workloads.contains(&Workload::Mailbox) {
        Some(Arc::new(mailbox::setup(&ctx, &mut rng).await?))
    } else {
        None
    };
    let batons = if workloads.contains(&Workload::Baton) {
        Some(Arc::new(baton::setup(&ctx, d, &mut rng).await?))
    } else {
        None
    };
    let leases = Arc::new(storage::Leases::default());
    // Epochs count from here: setup is done.
    ctx.start_us.store(clock.now_us(), Ordering::Relaxed);
    say(args.json, &clock, "workloads set up; faults begin");

    let cluster = Arc::new(AsyncMutex::new(cluster));
    let events = EventLog::new(clock, args.json);
    let until = tokio::time::Instant::now() + Duration::from_secs(d);
    let nemesis_task = tokio::spawn(nemesis::run(
        cluster.clone(),
        Schedule {
            nemeses: nemeses.clone(),
            interval: Duration::from_secs_f64(args.interval_seconds),
            max_skew_ms: args.max_skew_ms,
        },
        StdRng::seed_from_u64(seed.wrapping_add(1)),
        events.clone(),
        until,
    ));
    let n = args.clients as usize;
    let mut clients = Vec::new();
    if let Some(r) = &regs {
        clients.extend(workload::spawn_clients(
            &ctx,
            r,
            "checkpoint",
            n,
            seed,
            checkpoint::client,
        ));
    }
    if let Some(t) = &tokens {
        clients.extend(workload::spawn_clients(&ctx, t, "claims", n, seed, claims::client));
    }
    clients.extend(if workloads.contains(&Workload::Storage) {
        workload::spawn_clients(&ctx, &leases, "storage", n, seed, storage::client)
    } else {
        Vec::new()
    });
    if let Some(b) = &boxes {
        clients.extend(workload::spawn_clients(&ctx, b, "mailbox", n, seed, mailbox::client));
    }
    if let Some(b) = &batons {
        clients.extend(workload::spawn_clients(&ctx, b, "baton", n, seed, baton::client));
    }
    while tokio::time::Instant::now() < until {
        tokio::time::sleep_until((tokio::time::Instant::now() + Duration::from_secs(10)).min(until)).await;
        say(args.json, &clock, &format!("{} operations so far", ctx.history.len()));
    }
    ctx.stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.await;
    }
    match nemesis_task.await {
        Ok(r) => r?,
        Err(e) => return Err(ChaosError::Cluster(format!("nemesis task: {e}"))),
    }

    // Everything lifted, then the whole cluster killed at once and brought back.
    {
        let mut c = cluster.lock().await;
        c.heal_all()?;
        events.log("final", "start", "every fault lifted".into());
        c.wait_healthy(HEAL_TIMEOUT).await?;
        for i in 0..c.len() {
            c.kill(i);
        }
        events.log("final", "start", "SIGKILL every node at once".into());
        for i in 0..c.len() {
            c.restart(i)?;
        }
        c.wait_healthy(HEAL_TIMEOUT).await?;
        events.log("final", "stop", "every node restarted with its data".into());
    }
    let mut final_rng = StdRng::seed_from_u64(seed.wrapping_add(2));
    if let Some(r) = &regs {
        checkpoint::finish(&ctx, r, &mut final_rng).await?;
    }
    if let Some(t) = &tokens {
        claims::finish(&ctx, t, &mut final_rng).await?;
    }
    if workloads.contains(&Workload::Storage) {
        storage::finish(&ctx, &leases, &mut final_rng).await?;
    }
    if let Some(b) = &boxes {
        mailbox::finish(&ctx, b, &mut final_rng).await?;
    }
    if let Some(b) = &batons {
        baton::finish(&ctx, b, &mut final_rng).await?;
    }
    say(args.json, &clock, "final reads done; checking");

    let history = ctx.history.snapshot();
    if let Some(path) = &args.history {
        write_history(path, &history)?;
    }
    let skew_bound_ms = if nemeses.contains(&Nemesis::Skew) {
        args.max_skew_ms as u64
    } else {
        0
    } + SLACK_MS;
    let violations = checker::check_all(
        &history,
        Params {
            skew_bound_ms,
            search_budget: SEARCH_BUDGET,
        },
    );
    let valid = violations.is_empty();
    let mut verdict = verdict(seed, &history, &violations, clock.elapsed_s());
    verdict["nemesis_events"] = json!(events.events().len());
    verdict["nodes"] = json!(args.nodes);
    verdict["nemeses"] = json!(nemeses);
    verdict["workloads"] = json!(workloads);
    drop(cluster);
    if valid {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        say(args.json, &clock, &format!("node logs kept in {}", dir.display()));
    }
    report(&violations, args.json);
    println!("{verdict}");
    Ok(valid)
}

fn counts(history: &[Entry]) -> Value {
    let mut m = serde_json::Map::new();
    for e in history {
        let name = serde_json::to_value(&e.op)
            .ok()
            .and_then(|v| v["f"].as_str().map(String::from))
            .unwrap_or_default();
        let slot = m
            .entry(name)
            .or_insert_with(|| json!({"ok": 0, "fail": 0, "unknown": 0}));
        let k = match e.outcome {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Unknown => "unknown",
        };
        slot[k] = json!(slot[k].as_u64().unwrap_or(0) + 1);
    }
    Value::Object(m)
}

fn verdict(seed: u64, history: &[Entry], violations: &[Violation], duration_s: f64) -> Value {
    json!({
        "valid": violations.is_empty(),
        "seed": seed,
        "ops": history.len(),
        "violations": violations,
        "nemesis_events": 0,
        "duration_s": (duration_s * 10.0).round() / 10.0,
        "counts": counts(history),
    })
}

/// Each violation with the history slice that shows it, readable.
fn report(violations: &[Violation], json_mode: bool) {
    if json_mode {
        return;
    }
    for v in violations {
        eprintln!("VIOLATION [{}] {}: {}", v.checker, v.key, v.message);
        for e in &v.slice {
            eprintln!("    {}", serde_json::to_string(e).unwrap_or_default());
        }
    }
}

fn write_history(path: &PathBuf, history: &[Entry]) -> Result<(), ChaosError> {
    let err = |e: std::io::Error| ChaosError::HistoryFile {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(err)?);
    for e in history {
        writeln!(f, "{}", serde_json::to_string(e).unwrap_or_default()).map_err(err)?;
    }
    f.flush().map_err(err)
}

pub fn check_file(args: &CheckArgs) -> Result<bool, ChaosError> {
    let err = |message: String| ChaosError::HistoryFile {
        path: args.history.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(&args.history).map_err(|e| err(e.to_string()))?;
    let mut history = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let mut e: Entry = serde_json::from_str(line).map_err(|e| err(format!("line {}: {e}", i + 1)))?;
        e.index = history.len();
        history.push(e);
    }
    let violations = checker::check_all(
        &history,
        Params {
            skew_bound_ms: args.skew_bound_ms + SLACK_MS,
            search_budget: SEARCH_BUDGET,
        },
    );
    report(&violations, false);
    let mut v = verdict(0, &history, &violations, 0.0);
    v["seed"] = Value::Null;
    println!("{v}");
    Ok(violations.is_empty())
}

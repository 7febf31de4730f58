//! Closed loop: N clients, each with one request in flight, for a fixed time after a warmup.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::etcd::{EtcdClient, EtcdCtx};
use crate::receiver::Receiver;
use crate::report::{ms, Report};
use crate::scenario::{Client, Ctx, Scenario};
use crate::{LoadError, RunArgs};

/// Longest latency the histogram records exactly (slower requests count as this).
const LATENCY_MAX_US: u64 = 60_000_000;

pub async fn run_command(args: RunArgs) -> Result<(), LoadError> {
    let receiver = match &args.webhook_listen {
        Some(addr) => Some(Receiver::start(addr).await?),
        None => None,
    };
    let report = run(&args, !args.json, receiver.as_ref()).await?;
    if args.json {
        println!("{}", report.to_json());
    } else {
        println!("{}", report.summary());
    }
    if report.ops == 0 {
        return Err(LoadError::AllFailed(report.error_count()));
    }
    Ok(())
}

pub struct Options {
    /// Relay nodes (when `etcd` is empty).
    pub targets: Vec<String>,
    /// etcd client endpoints: run the etcd equivalent instead.
    pub etcd: Vec<String>,
    pub api_key: String,
    pub scenario: Scenario,
    pub concurrency: u64,
    /// Open loop: start this many operations per second, whatever the answers' pace, and time
    /// each from when it was due (so a stall shows in the latencies; no coordinated omission).
    pub rate: Option<u64>,
    pub warmup: Duration,
    pub duration: Duration,
    pub size_bytes: u64,
}

pub async fn run(args: &RunArgs, progress: bool, receiver: Option<&Receiver>) -> Result<Report, LoadError> {
    let targets: Vec<String> = args
        .targets
        .iter()
        .map(|t| t.trim_end_matches('/').to_string())
        .collect();
    if args.etcd.is_empty() && args.api_key.is_empty() {
        return Err(LoadError::Args(
            "--api-key (or RELAY_API_KEY) is required for Relay targets".into(),
        ));
    }
    for t in &targets {
        if !(t.starts_with("http://") || t.starts_with("https://")) {
            return Err(LoadError::Args(format!("target {t:?} is not an http:// URL")));
        }
    }
    let opts = Options {
        targets,
        etcd: args.etcd.clone(),
        api_key: args.api_key.clone(),
        scenario: args.scenario,
        concurrency: args.concurrency,
        rate: args.rate,
        warmup: Duration::from_secs(args.warmup_seconds),
        duration: Duration::from_secs(args.duration_seconds),
        size_bytes: args.size_bytes.unwrap_or(args.scenario.default_size()),
    };
    run_with(opts, progress, receiver).await
}

pub async fn run_with(opts: Options, progress: bool, receiver: Option<&Receiver>) -> Result<Report, LoadError> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(opts.concurrency as usize)
        .tcp_nodelay(true)
        .build()
        .map_err(|e| LoadError::Args(e.to_string()))?;
    let run_id = format!(
        "{:x}",
        std::process::id() as u64 * 1_000_003 + now_nanos() % 1_000_000_000
    );
    let mut clients = Vec::new();
    if opts.etcd.is_empty() {
        let ctx = Arc::new(Ctx {
            targets: opts
                .targets
                .iter()
                .map(|t| relay_testkit::Client::new(http.clone(), t).bearer(&opts.api_key))
                .collect(),
            scenario: opts.scenario,
            size_bytes: opts.size_bytes,
            run_id,
            webhook_url: receiver.map(|r| r.url.clone()),
        });
        if let Some(r) = receiver {
            r.reset();
        }
        for i in 0..opts.concurrency as usize {
            clients.push(Worker::Relay(Client::setup(ctx.clone(), i).await?));
        }
    } else {
        let ctx = Arc::new(EtcdCtx::connect(&opts.etcd, opts.scenario, opts.size_bytes, run_id).await?);
        for i in 0..opts.concurrency as usize {
            clients.push(Worker::Etcd(EtcdClient::setup(ctx.clone(), i).await?));
        }
    }

    let shared = Arc::new(Shared {
        histogram: Mutex::new(Histogram::new_with_bounds(1, LATENCY_MAX_US, 3).expect("valid bounds")),
        ops: AtomicU64::new(0),
        errors: Mutex::new(BTreeMap::new()),
    });
    let start = Instant::now();
    let measure_from = start + opts.warmup;
    let deadline = measure_from + opts.duration;
    // Open loop: a scheduler hands out due times; a free client takes the next one.
    let schedule = opts.rate.map(|rate| {
        let (tx, rx) = tokio::sync::mpsc::channel::<Instant>(1 << 16);
        let interval = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
        tokio::spawn(async move {
            let mut due = start;
            while due < deadline {
                tokio::time::sleep_until(due.into()).await;
                if tx.send(due).await.is_err() {
                    return;
                }
                due += interval;
            }
        });
        Arc::new(tokio::sync::Mutex::new(rx))
    });
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            let shared = shared.clone();
            let schedule = schedule.clone();
            tokio::spawn(async move {
                loop {
                    let t0 = match &schedule {
                        Some(rx) => match rx.lock().await.recv().await {
                            Some(due) => due,
                            None => break,
                        },
                        None if Instant::now() < deadline => Instant::now(),
                        None => break,
                    };
                    let result = client.op().await;
                    let done = Instant::now();
                    // Closed loop: operations that end after the deadline are not counted. Open
                    // loop: every operation due in the window counts, however late it ends.
                    if t0 < measure_from || t0 >= deadline || (schedule.is_none() && done > deadline) {
                        continue;
                    }
                    match result {
                        Ok(()) => {
                            let us = (done - t0).as_micros().clamp(1, LATENCY_MAX_US as u128) as u64;
                            shared.histogram.lock().expect("histogram").saturating_record(us);
                            shared.ops.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            *shared.errors.lock().expect("errors").entry(e.0).or_default() += 1;
                        }
                    }
                }
            })
        })
        .collect();
    let progress_task = progress.then(|| {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut last = 0;
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let ops = shared.ops.load(Ordering::Relaxed);
                let errors: u64 = shared.errors.lock().expect("errors").values().sum();
                let p99 = shared.histogram.lock().expect("histogram").value_at_quantile(0.99);
                eprintln!("  {:>8} ops/s  {errors} errors  p99 {:.2} ms", ops - last, ms(p99));
                last = ops;
            }
        })
    });
    for t in tasks {
        let _ = t.await;
    }
    if let Some(p) = progress_task {
        p.abort();
    }
    let webhook_latency_us = match receiver {
        Some(r) => Some(settle(r).await),
        None => None,
    };
    let histogram = shared.histogram.lock().expect("histogram").clone();
    let errors = shared.errors.lock().expect("errors").clone();
    let targets = if opts.etcd.is_empty() { opts.targets } else { opts.etcd };
    Ok(Report {
        scenario: opts.scenario.name(),
        targets,
        concurrency: opts.concurrency,
        rate: opts.rate,
        duration_s: opts.duration.as_secs_f64(),
        ops: shared.ops.load(Ordering::Relaxed),
        errors,
        latency_us: histogram,
        webhook_latency_us,
    })
}

/// Waits (up to 10 s) until webhooks stop arriving, then takes the receiver's histogram.
async fn settle(receiver: &Receiver) -> Histogram<u64> {
    let mut last = receiver.snapshot().len();
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = receiver.snapshot().len();
        if now == last {
            break;
        }
        last = now;
    }
    receiver.snapshot()
}

/// One client of either system.
enum Worker {
    Relay(Client),
    Etcd(EtcdClient),
}

impl Worker {
    async fn op(&mut self) -> Result<(), crate::scenario::OpError> {
        match self {
            Worker::Relay(c) => c.op().await,
            Worker::Etcd(c) => c.op().await,
        }
    }
}

struct Shared {
    histogram: Mutex<Histogram<u64>>,
    ops: AtomicU64,
    errors: Mutex<BTreeMap<u16, u64>>,
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

//! Closed-loop benchmark: N clients each create a Storage lease and download it back, for D
//! seconds, against a running node. Prints throughput and latency percentiles.
//!
//! `storebench --url http://127.0.0.1:8080 --key rs_live_… [--concurrency 16] [--seconds 20] [--size 1024]`
//!
//! A stopgap until `relay-loadtest` exists; `scripts/bench-store.sh` starts a node and runs it.

use std::time::{Duration, Instant};

struct Args {
    url: String,
    key: String,
    concurrency: usize,
    seconds: u64,
    size: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        url: String::new(),
        key: String::new(),
        concurrency: 16,
        seconds: 20,
        size: 1024,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag} {value:?} is not a number"))
        };
        match flag.as_str() {
            "--url" => args.url = value.trim_end_matches('/').to_string(),
            "--key" => args.key = value,
            "--concurrency" => args.concurrency = num()?.clamp(1, 1024) as usize,
            "--seconds" => args.seconds = num()?.clamp(1, 3600),
            "--size" => args.size = num()?.clamp(1, 64 << 20) as usize,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if args.url.is_empty() || args.key.is_empty() {
        return Err("--url and --key are required".into());
    }
    Ok(args)
}

#[derive(Default)]
struct Sample {
    pair_us: Vec<u64>,
    create_us: Vec<u64>,
    download_us: Vec<u64>,
    errors: u64,
}

async fn worker(args: std::sync::Arc<Args>, http: reqwest::Client, deadline: Instant, seed: u8) -> Sample {
    let body: Vec<u8> = (0..args.size).map(|i| (i as u8).wrapping_add(seed)).collect();
    let mut s = Sample::default();
    while Instant::now() < deadline {
        let t0 = Instant::now();
        let created = http
            .post(format!("{}/api/store", args.url))
            .header("authorization", format!("Bearer {}", args.key))
            .header("x-file-name", "bench.bin")
            .header("x-size-bytes", args.size.to_string())
            .header("x-duration-seconds", "3600")
            .body(body.clone())
            .send()
            .await;
        let lease_id = match created {
            Ok(r) if r.status() == 201 => match r.json::<serde_json::Value>().await {
                Ok(v) => v["lease_id"].as_str().unwrap_or_default().to_string(),
                Err(_) => String::new(),
            },
            _ => String::new(),
        };
        if lease_id.is_empty() {
            s.errors += 1;
            continue;
        }
        let t1 = Instant::now();
        let got = http
            .get(format!("{}/api/download/{lease_id}", args.url))
            .header("authorization", format!("Bearer {}", args.key))
            .send()
            .await;
        let ok = match got {
            Ok(r) if r.status() == 200 => r.bytes().await.map(|b| b.len() == args.size).unwrap_or(false),
            _ => false,
        };
        let t2 = Instant::now();
        if !ok {
            s.errors += 1;
            continue;
        }
        s.create_us.push((t1 - t0).as_micros() as u64);
        s.download_us.push((t2 - t1).as_micros() as u64);
        s.pair_us.push((t2 - t0).as_micros() as u64);
    }
    s
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx] as f64 / 1000.0
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(a) => std::sync::Arc::new(a),
        Err(e) => {
            eprintln!("storebench: {e}");
            std::process::exit(2);
        }
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let tasks: Vec<_> = (0..args.concurrency)
        .map(|i| tokio::spawn(worker(args.clone(), http.clone(), deadline, i as u8)))
        .collect();
    let mut all = Sample::default();
    for t in tasks {
        let s = t.await.expect("worker");
        all.pair_us.extend(s.pair_us);
        all.create_us.extend(s.create_us);
        all.download_us.extend(s.download_us);
        all.errors += s.errors;
    }
    let elapsed = started.elapsed().as_secs_f64();
    for v in [&mut all.pair_us, &mut all.create_us, &mut all.download_us] {
        v.sort_unstable();
    }
    let ops = all.pair_us.len();
    if ops == 0 {
        eprintln!("storebench: no successful operations ({} errors)", all.errors);
        std::process::exit(1);
    }
    println!(
        "size_bytes={} concurrency={} seconds={:.1}",
        args.size, args.concurrency, elapsed
    );
    println!(
        "create+download pairs: {ops} ok, {} errors, {:.0} pairs/s ({:.0} requests/s)",
        all.errors,
        ops as f64 / elapsed,
        2.0 * ops as f64 / elapsed
    );
    for (name, v) in [
        ("pair", &all.pair_us),
        ("create", &all.create_us),
        ("download", &all.download_us),
    ] {
        println!(
            "{name:>8} latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
            pct(v, 0.50),
            pct(v, 0.90),
            pct(v, 0.99),
            pct(v, 1.0)
        );
    }
}

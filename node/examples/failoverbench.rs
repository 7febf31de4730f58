//! Failover time: start three `relay` nodes on loopback, then repeatedly SIGKILL the leader and
//! time how long until a write through a survivor succeeds; restart the killed node and wait for
//! it to be ready before the next round. Prints each round, the median and the max.
//!
//! With `--rolling`: a rolling restart under steady load instead. Writers store small objects
//! through every node in turn (a failed attempt is retried on the next node with the same
//! Idempotency-Key, at most 4 attempts); each node in turn, followers first and the leader last,
//! gets SIGTERM, is started again and serves before the next. Prints the writes, the retries, the
//! writes that failed after every retry, the longest time without an acknowledged write, and
//! whether every acknowledged write reads back.
//!
//! `failoverbench --relay-bin PATH [--rounds 10] [--rolling]` (run by `scripts/bench-failover.sh`).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "failover-bench-secret-0000";
const KEY: &str = "rs_live_failoverbench000000000000";

struct Node {
    id: usize,
    dir: PathBuf,
    http: String,
    raft: String,
    child: Option<Child>,
}

impl Node {
    fn spawn(&mut self, bin: &str, objects: &str, join: Option<&str>) {
        let mut cmd = Command::new(bin);
        cmd.args([
            "serve",
            "--node-id",
            &self.id.to_string(),
            "--http",
            &self.http,
            "--raft",
            &self.raft,
        ])
        .arg("--data-dir")
        .arg(&self.dir)
        .args([
            "--cluster-secret",
            SECRET,
            "--bootstrap-api-key",
            KEY,
            "--objects",
            objects,
        ])
        .args(["--bootstrap-balance-usdc", "1000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
        if let Some(url) = join {
            cmd.args(["--join", url]);
        }
        let mut child = cmd.spawn().expect("spawn relay");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut lines = stdout.lines();
        loop {
            let line = lines
                .next()
                .expect("relay exited before listening")
                .expect("read stdout");
            if let Some(a) = line.strip_prefix("relay: raft transport on ") {
                self.raft = a.trim().to_string();
            }
            if let Some(a) = line.strip_prefix("relay: listening on http://") {
                self.http = a.trim().to_string();
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        self.child = Some(child);
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    /// SIGTERM, then wait for the exit (a drain, not a crash).
    fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signalling a child this process spawned and has not reaped.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn leader(http: &reqwest::Client, nodes: &[Node]) -> Option<usize> {
    for (i, n) in nodes.iter().enumerate() {
        if n.child.is_none() {
            continue;
        }
        let Ok(r) = http
            .get(n.url("/cluster/status"))
            .header("x-cluster-secret", SECRET)
            .send()
            .await
        else {
            continue;
        };
        let Ok(s) = r.json::<serde_json::Value>().await else {
            continue;
        };
        if s["state"] == "Leader" && s["voters"].as_array().map(|v| v.len()) == Some(3) {
            return Some(i);
        }
    }
    None
}

/// One keyed store through `node`: Some(lease id) when acknowledged.
async fn keyed_write(http: &reqwest::Client, node: &str, key: &str) -> Option<String> {
    let r = http
        .post(format!("http://{node}/api/store"))
        .header("authorization", format!("Bearer {KEY}"))
        .header("x-file-name", "r.bin")
        .header("x-size-bytes", "3")
        .header("x-duration-seconds", "3600")
        .header("idempotency-key", key)
        .body("abc")
        .send()
        .await
        .ok()?;
    if r.status() != 201 {
        return None;
    }
    let v: serde_json::Value = r.json().await.ok()?;
    v["lease_id"].as_str().map(String::from)
}

#[derive(Default)]
struct Tally {
    writes: u64,
    retries: u64,
    failed: u64,
    acked: Vec<String>,
    /// Times (since the start) of acknowledged writes.
    at: Vec<f64>,
}

/// The rolling restart under load; see the module doc.
async fn rolling(bin: &str, objects: &str, nodes: &mut [Node], http: &reqwest::Client) {
    use std::sync::{Arc, Mutex};
    let addrs: Arc<Vec<String>> = Arc::new(nodes.iter().map(|n| n.http.clone()).collect());
    let tally = Arc::new(Mutex::new(Tally::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let t0 = Instant::now();
    let mut writers = Vec::new();
    for w in 0..8usize {
        let (addrs, tally, stop, http) = (addrs.clone(), tally.clone(), stop.clone(), http.clone());
        writers.push(tokio::spawn(async move {
            let mut n = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let key = format!("w{w}-{n}");
                let mut lease = None;
                let mut attempts = 0;
                while attempts < 4 && lease.is_none() {
                    if attempts > 0 {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    lease = keyed_write(&http, &addrs[(w + n + attempts) % 3], &key).await;
                    attempts += 1;
                }
                let mut t = tally.lock().unwrap();
                t.writes += 1;
                t.retries += attempts as u64 - 1;
                match lease {
                    Some(id) => {
                        t.acked.push(id);
                        t.at.push(t0.elapsed().as_secs_f64());
                    }
                    None => t.failed += 1,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let leader = leader(http, nodes).await.expect("a leader");
    let order: Vec<usize> = (0..3).filter(|i| *i != leader).chain(std::iter::once(leader)).collect();
    for i in order {
        let began = t0.elapsed().as_secs_f64();
        nodes[i].terminate();
        let down = t0.elapsed().as_secs_f64();
        nodes[i].spawn(bin, objects, None);
        println!(
            "node {}{}: SIGTERM at {began:.2} s, exited after {:.2} s, serving again at {:.2} s",
            i + 1,
            if i == leader { " (leader)" } else { "" },
            down - began,
            t0.elapsed().as_secs_f64()
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        let _ = w.await;
    }
    let t = Arc::try_unwrap(tally).ok().expect("writers done").into_inner().unwrap();
    let mut at = t.at.clone();
    at.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let gap = at.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    let mut lost = 0;
    for id in &t.acked {
        let ok = http
            .get(nodes[0].url(&format!("/api/download/{id}")))
            .header("authorization", format!("Bearer {KEY}"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        lost += u64::from(!ok);
    }
    println!(
        "rolling restart: {} writes, {} acknowledged, {} retried attempts, {} failed after 4 attempts, longest time without an acknowledged write {:.3} s, {} acknowledged writes lost",
        t.writes,
        t.acked.len(),
        t.retries,
        t.failed,
        gap,
        lost
    );
}

async fn write(http: &reqwest::Client, node: &Node) -> bool {
    http.post(node.url("/api/store"))
        .header("authorization", format!("Bearer {KEY}"))
        .header("x-file-name", "f.bin")
        .header("x-size-bytes", "3")
        .header("x-duration-seconds", "600")
        .body("abc")
        .send()
        .await
        .is_ok_and(|r| r.status() == 201)
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (mut bin, mut rounds, mut rolling_mode) = (String::new(), 10usize, false);
    while let Some(flag) = args.next() {
        let value = if flag == "--rolling" {
            String::new()
        } else {
            args.next().unwrap_or_default()
        };
        match flag.as_str() {
            "--relay-bin" => bin = value,
            "--rounds" => rounds = value.parse().unwrap_or(10).clamp(1, 100),
            "--rolling" => {
                rolling_mode = true;
                if !value.is_empty() {
                    eprintln!("failoverbench: --rolling takes no value");
                    std::process::exit(2);
                }
            }
            other => {
                eprintln!("failoverbench: unknown flag {other}");
                std::process::exit(2);
            }
        }
    }
    if bin.is_empty() {
        eprintln!("failoverbench: --relay-bin is required");
        std::process::exit(2);
    }
    let base = std::env::temp_dir().join(format!("relay-failover-{}", std::process::id()));
    let objects = format!("file://{}", base.join("objects").display());
    let mut nodes: Vec<Node> = (1..=3)
        .map(|id| Node {
            id,
            dir: base.join(format!("n{id}")),
            http: "127.0.0.1:0".into(),
            raft: "127.0.0.1:0".into(),
            child: None,
        })
        .collect();
    nodes[0].spawn(&bin, &objects, None);
    let first = format!("http://{}", nodes[0].http);
    for n in nodes.iter_mut().skip(1) {
        n.spawn(&bin, &objects, Some(&first));
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    if rolling_mode {
        rolling(&bin, &objects, &mut nodes, &http).await;
        drop(nodes);
        let _ = std::fs::remove_dir_all(&base);
        return;
    }
    let mut times = Vec::new();
    for round in 1..=rounds {
        let started = Instant::now();
        let l = loop {
            if let Some(l) = leader(&http, &nodes).await {
                if write(&http, &nodes[l]).await {
                    break l;
                }
            }
            assert!(started.elapsed() < Duration::from_secs(60), "cluster not healthy");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let survivor = (l + 1) % 3;
        nodes[l].kill();
        let killed = Instant::now();
        while !write(&http, &nodes[survivor]).await {
            assert!(killed.elapsed() < Duration::from_secs(60), "no write within 60 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let took = killed.elapsed();
        println!(
            "round {round}: killed node {}, first write through node {} after {:.3} s",
            l + 1,
            survivor + 1,
            took.as_secs_f64()
        );
        times.push(took.as_secs_f64());
        nodes[l].spawn(&bin, &objects, None);
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = if times.len() % 2 == 1 {
        times[times.len() / 2]
    } else {
        (times[times.len() / 2 - 1] + times[times.len() / 2]) / 2.0
    };
    println!(
        "failover over {} kills: median {:.3} s, min {:.3} s, max {:.3} s",
        times.len(),
        median,
        times[0],
        times[times.len() - 1]
    );
    drop(nodes);
    let _ = std::fs::remove_dir_all(&base);
}

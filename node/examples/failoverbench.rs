//! Failover time: start three `relay` nodes on loopback, then repeatedly SIGKILL the leader and
//! time how long until a write through a survivor succeeds; restart the killed node and wait for
//! it to be ready before the next round. Prints each round, the median and the max.
//!
//! `failoverbench --relay-bin PATH [--rounds 10]` (run by `scripts/bench-failover.sh`).

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
    let (mut bin, mut rounds) = (String::new(), 10usize);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_default();
        match flag.as_str() {
            "--relay-bin" => bin = value,
            "--rounds" => rounds = value.parse().unwrap_or(10).clamp(1, 100),
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

//! The cluster under test: N `relay` processes on loopback, each with its own data directory,
//! fixed ports (so a restarted node comes back at the same address), a clock-offset file, and
//! its peers reached through the fault proxies.

use std::fs::OpenOptions;
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::proxy::{self, Link};
use crate::ChaosError;

pub const SECRET: &str = "relay-chaos-cluster-secret-0123456789";
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Node {
    pub id: usize,
    pub http: String,
    raft_addr: String,
    data_dir: PathBuf,
    clock_file: PathBuf,
    log: PathBuf,
    dial: Vec<String>,
    child: Option<Child>,
    pub paused: bool,
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    /// `links[i][j]`: node i+1 → node j+1 (the diagonal is unused).
    pub links: Vec<Vec<Arc<Link>>>,
    pub api_key: String,
    relay_bin: PathBuf,
    http: reqwest::Client,
    pub dir: PathBuf,
}

/// A free port below Linux's ephemeral range (32768 and up), so no socket bound to port 0 (a
/// proxy here, a test elsewhere) can take it between now and the node binding it, and a killed
/// node finds it again on restart. Randomised so concurrent runs rarely pick the same one.
fn free_port(taken: &mut Vec<u16>) -> Result<u16, ChaosError> {
    for _ in 0..1000 {
        let port = rand::random_range(20_000..32_000u16);
        if taken.contains(&port) {
            continue;
        }
        if StdListener::bind(("127.0.0.1", port)).is_ok() {
            taken.push(port);
            return Ok(port);
        }
    }
    Err(ChaosError::Cluster("no free port in 20000..32000".into()))
}

impl Cluster {
    /// Starts `n` nodes under `dir` (node 1 founds the cluster, the rest join as voters) and
    /// waits until all are voters under one leader.
    pub async fn start(relay_bin: &Path, n: usize, dir: &Path, seed: u64) -> Result<Cluster, ChaosError> {
        let api_key = format!("rs_live_chaos{seed:016x}");
        let mut raft_addrs = Vec::new();
        let mut https = Vec::new();
        let mut taken = Vec::new();
        for _ in 0..n {
            raft_addrs.push(format!("127.0.0.1:{}", free_port(&mut taken)?));
            https.push(format!("127.0.0.1:{}", free_port(&mut taken)?));
        }
        let mut links = Vec::new();
        let mut dials = vec![Vec::new(); n];
        for (i, dial) in dials.iter_mut().enumerate() {
            let mut row = Vec::new();
            for (j, upstream) in raft_addrs.iter().enumerate() {
                let link = Arc::new(Link::default());
                if i != j {
                    let via = proxy::start(upstream.clone(), link.clone())
                        .await
                        .map_err(|e| ChaosError::Cluster(format!("proxy: {e}")))?;
                    dial.push(format!("{upstream}={via}"));
                }
                row.push(link);
            }
            links.push(row);
        }
        let mut nodes = Vec::new();
        for (i, dial) in dials.into_iter().enumerate() {
            let id = i + 1;
            let clock_file = dir.join(format!("node{id}.clock"));
            std::fs::write(&clock_file, "0").map_err(|e| ChaosError::Cluster(e.to_string()))?;
            nodes.push(Node {
                id,
                http: format!("http://{}", https[i]),
                raft_addr: raft_addrs[i].clone(),
                data_dir: dir.join(format!("node{id}")),
                clock_file,
                log: dir.join(format!("node{id}.log")),
                dial,
                child: None,
                paused: false,
            });
        }
        let mut cluster = Cluster {
            nodes,
            links,
            api_key,
            relay_bin: relay_bin.to_path_buf(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .map_err(|e| ChaosError::Cluster(e.to_string()))?,
            dir: dir.to_path_buf(),
        };
        for i in 0..n {
            cluster.spawn(i)?;
            // Each joiner is added by the leader before the next one starts.
            cluster
                .wait_until(|s| s["voters"].as_array().map_or(0, |a| a.len()) > i)
                .await?;
        }
        cluster.wait_healthy(START_TIMEOUT).await?;
        Ok(cluster)
    }

    fn spawn(&mut self, i: usize) -> Result<(), ChaosError> {
        let n = self.nodes.len();
        let objects = self.dir.join("objects");
        let join = (i > 0).then(|| self.nodes[0].http.clone());
        let node = &mut self.nodes[i];
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .map_err(|e| ChaosError::Cluster(format!("{}: {e}", node.log.display())))?;
        let log2 = log.try_clone().map_err(|e| ChaosError::Cluster(e.to_string()))?;
        let mut cmd = Command::new(&self.relay_bin);
        cmd.arg("serve")
            .args(["--node-id", &node.id.to_string()])
            .args(["--http", node.http.trim_start_matches("http://")])
            .args(["--raft", &node.raft_addr])
            .arg("--data-dir")
            .arg(&node.data_dir)
            .arg("--objects")
            .arg(format!("file://{}", objects.display()))
            .args(["--voters", &n.to_string()])
            .args(["--cluster-secret", SECRET, "--bootstrap-api-key", &self.api_key])
            .args(["--bootstrap-balance-usdc", "1000000"])
            .args(["--min-duration-seconds", "1"])
            .args(["--handoff-max-claims", "100"])
            .args(["--shutdown-timeout-seconds", "2"])
            // Snapshots (and log purges) happen during the run, so they are under fault too.
            .args(["--snapshot-every-entries", "2000"])
            .arg("--chaos-clock-offset-file")
            .arg(&node.clock_file);
        for d in &node.dial {
            cmd.args(["--chaos-dial", d]);
        }
        if let Some(url) = join {
            cmd.args(["--join", &url]);
        }
        let child = cmd
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| ChaosError::Cluster(format!("cannot start {}: {e}", self.relay_bin.display())))?;
        node.child = Some(child);
        node.paused = false;
        Ok(())
    }

    pub fn is_up(&self, i: usize) -> bool {
        self.nodes[i].child.is_some()
    }

    pub fn pid(&self, i: usize) -> Option<i32> {
        self.nodes[i].child.as_ref().map(|c| c.id() as i32)
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.nodes[i].paused = false;
    }

    pub fn restart(&mut self, i: usize) -> Result<(), ChaosError> {
        if self.nodes[i].child.is_none() {
            self.spawn(i)?;
        }
        Ok(())
    }

    pub fn pause(&mut self, i: usize) {
        if let Some(pid) = self.pid(i) {
            unsafe { libc::kill(pid, libc::SIGSTOP) };
            self.nodes[i].paused = true;
        }
    }

    pub fn resume(&mut self, i: usize) {
        if let Some(pid) = self.pid(i) {
            unsafe { libc::kill(pid, libc::SIGCONT) };
        }
        self.nodes[i].paused = false;
    }

    pub fn set_clock_offset(&self, i: usize, offset_ms: i64) -> Result<(), ChaosError> {
        let tmp = self.nodes[i].clock_file.with_extension("tmp");
        std::fs::write(&tmp, offset_ms.to_string()).map_err(|e| ChaosError::Cluster(e.to_string()))?;
        std::fs::rename(&tmp, &self.nodes[i].clock_file).map_err(|e| ChaosError::Cluster(e.to_string()))
    }

    /// Every fault lifted: links open and prompt, clocks true, paused nodes resumed, dead ones
    /// restarted.
    pub fn heal_all(&mut self) -> Result<(), ChaosError> {
        for row in &self.links {
            for link in row {
                link.heal();
            }
        }
        for i in 0..self.nodes.len() {
            self.set_clock_offset(i, 0)?;
            if self.nodes[i].paused {
                self.resume(i);
            }
            self.restart(i)?;
        }
        Ok(())
    }

    async fn status(&self, i: usize) -> Option<Value> {
        let resp = self
            .http
            .get(format!("{}/cluster/status", self.nodes[i].http))
            .header("x-cluster-secret", SECRET)
            .send()
            .await
            .ok()?;
        resp.json().await.ok()
    }

    /// The leader (0-based) as some running, unpaused node sees it.
    pub async fn leader(&self) -> Option<usize> {
        for i in 0..self.nodes.len() {
            if !self.is_up(i) || self.nodes[i].paused {
                continue;
            }
            if let Some(id) = self.status(i).await.and_then(|s| s["leader_id"].as_u64()) {
                return Some(id as usize - 1);
            }
        }
        None
    }

    async fn wait_until(&self, ok: impl Fn(&Value) -> bool) -> Result<(), ChaosError> {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(s) = self.status(0).await {
                if ok(&s) {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(ChaosError::Cluster(format!(
            "cluster did not form in {START_TIMEOUT:?} (logs in {})",
            self.dir.display()
        )))
    }

    /// Every node up, agreeing on one leader, all voters, and applied up to the leader's commit.
    pub async fn wait_healthy(&self, timeout: Duration) -> Result<(), ChaosError> {
        let deadline = Instant::now() + timeout;
        let n = self.nodes.len();
        let mut last = String::new();
        while Instant::now() < deadline {
            let mut leaders = Vec::new();
            let mut applied = Vec::new();
            for i in 0..n {
                match self.status(i).await {
                    Some(s) if s["voters"].as_array().map_or(0, |a| a.len()) == n => {
                        leaders.push(s["leader_id"].as_u64());
                        applied.push(s["last_applied"].as_u64().unwrap_or(0));
                    }
                    other => last = format!("node {} status {other:?}", i + 1),
                }
            }
            if leaders.len() == n && leaders[0].is_some() && leaders.iter().all(|l| *l == leaders[0]) {
                // Wait until everyone has caught up to within a few entries of each other.
                let (lo, hi) = (applied.iter().min().copied(), applied.iter().max().copied());
                if let (Some(lo), Some(hi)) = (lo, hi) {
                    if hi - lo < 50 {
                        return Ok(());
                    }
                }
                last = format!("applied indexes {applied:?}");
            } else if leaders.len() == n {
                last = format!("leaders {leaders:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(ChaosError::Cluster(format!(
            "cluster not healthy after {timeout:?}: {last} (logs in {})",
            self.dir.display()
        )))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].paused {
                self.resume(i);
            }
            self.kill(i);
        }
    }
}

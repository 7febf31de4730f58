//! A throwaway local Relay cluster: real `relay` processes on loopback, data in a temp dir,
//! stopped (and the dir removed) on drop.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::LoadError;

const SECRET: &str = "loadtest-cluster-secret-0123456789";
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub struct LocalCluster {
    children: Vec<Child>,
    pub urls: Vec<String>,
    pub api_key: String,
    dir: tempfile::TempDir,
}

impl LocalCluster {
    /// Starts `nodes` members sharing one object directory; node 1 founds the cluster.
    pub async fn start(relay_bin: &Path, nodes: u64) -> Result<LocalCluster, LoadError> {
        let dir = tempfile::tempdir().map_err(|e| LoadError::Local(e.to_string()))?;
        let mut key_bytes = [0u8; 16];
        for (i, b) in key_bytes.iter_mut().enumerate() {
            *b = (std::process::id() as u8).wrapping_mul(31).wrapping_add(i as u8 * 17);
        }
        let api_key = format!("rs_live_loadtest{}", hex(&key_bytes));
        let mut cluster = LocalCluster {
            children: Vec::new(),
            urls: Vec::new(),
            api_key,
            dir,
        };
        let objects = cluster.dir.path().join("objects");
        std::fs::create_dir_all(&objects).map_err(|e| LoadError::Local(e.to_string()))?;
        for id in 1..=nodes {
            let data = cluster.dir.path().join(format!("node{id}"));
            let mut cmd = Command::new(relay_bin);
            cmd.arg("serve")
                .args([
                    "--node-id",
                    &id.to_string(),
                    "--http",
                    "127.0.0.1:0",
                    "--raft",
                    "127.0.0.1:0",
                ])
                .arg("--data-dir")
                .arg(&data)
                .arg("--objects")
                .arg(format!("file://{}", objects.display()))
                .args(["--cluster-secret", SECRET, "--bootstrap-api-key", &cluster.api_key])
                .args(["--bootstrap-balance-usdc", "1000000000"])
                // The benchmark's webhook receiver listens on loopback.
                .args(["--webhook-allow-cidr", "127.0.0.0/8"])
                .args(["--handoff-max-claims", "1000000"])
                // Every client of a benchmark comes from one address and one account: lift the
                // per-client caps to the node's own, so the run measures the node, not the caps.
                .args(["--max-requests-per-ip", "4096", "--max-requests-per-account", "4096"])
                .args(["--max-requests-in-flight", "4096"]);
            if let Some(first) = cluster.urls.first() {
                cmd.args(["--join", first]);
            }
            let log = std::fs::File::create(cluster.dir.path().join(format!("node{id}.log")))
                .map_err(|e| LoadError::Local(e.to_string()))?;
            let url = spawn(&mut cluster.children, cmd.env("RUST_LOG", "warn").stderr(log))?;
            cluster.urls.push(url);
        }
        cluster.wait_for_voters(nodes.min(3)).await?;
        Ok(cluster)
    }

    async fn wait_for_voters(&self, voters: u64) -> Result<(), LoadError> {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            let status = http
                .get(format!("{}/cluster/status", self.urls[0]))
                .header("x-cluster-secret", SECRET)
                .send()
                .await;
            if let Ok(resp) = status {
                if let Ok(v) = resp.json::<serde_json::Value>().await {
                    let n = v["voters"].as_array().map_or(0, |a| a.len() as u64);
                    if n == voters && v["leader_id"].is_u64() {
                        return Ok(());
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(LoadError::Local(format!(
            "cluster did not reach {voters} voters in time"
        )))
    }
}

/// Spawns one node and waits for the line that names its HTTP address.
fn spawn(children: &mut Vec<Child>, cmd: &mut Command) -> Result<String, LoadError> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| LoadError::Local(format!("cannot start relay: {e}")))?;
    let stdout = child.stdout.take().expect("piped stdout");
    children.push(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // Keep draining after the address is known so the node never blocks on the pipe.
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + START_TIMEOUT;
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if let Some(addr) = line.strip_prefix("relay: listening on ") {
            return Ok(addr.trim().to_string());
        }
    }
    Err(LoadError::Local("a relay node did not start (see its log)".into()))
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            // SIGTERM first so nodes shut down cleanly; then make sure.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
            }
        }
        for child in &mut self.children {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The `relay` binary next to this executable (cargo builds both into one directory).
pub fn default_relay_bin() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [dir.join("relay"), dir.parent()?.join("relay")]
        .into_iter()
        .find(|p| p.is_file())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

//! Starts real `relay` processes on loopback with temp dirs, and cleans them up.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const KEY: &str = "rs_live_testkey0123456789abcdef";

pub struct Relay {
    child: Option<Child>,
    dir: tempfile::TempDir,
    args: Vec<String>,
    /// Extra environment (object store credentials).
    env: Vec<(String, String)>,
    pub base: String,
    pub key: String,
    /// Addresses chosen on first start, reused on restart (members know each other by them).
    http_bind: String,
    raft_bind: String,
    /// Lines the process printed on stdout, in order.
    pub stdout: Vec<String>,
}

impl Relay {
    /// A node with a known API key and leases allowed down to one second.
    pub fn start(extra: &[&str]) -> Relay {
        let mut args = vec!["--bootstrap-api-key", KEY, "--min-duration-seconds", "1"];
        args.extend_from_slice(extra);
        Relay::start_raw(&args, KEY)
    }

    /// A node started with exactly `extra` (plus address and data dir).
    pub fn start_raw(extra: &[&str], key: &str) -> Relay {
        Relay::start_env(extra, key, &[])
    }

    /// A node with the test key and extra environment.
    pub fn start_with_env(extra: &[&str], env: &[(String, String)]) -> Relay {
        let mut args = vec!["--bootstrap-api-key", KEY, "--min-duration-seconds", "1"];
        args.extend_from_slice(extra);
        Relay::start_env(&args, KEY, env)
    }

    fn start_env(extra: &[&str], key: &str, env: &[(String, String)]) -> Relay {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut relay = Relay {
            child: None,
            dir,
            env: env.to_vec(),
            args: extra.iter().map(|s| s.to_string()).collect(),
            base: String::new(),
            key: key.to_string(),
            http_bind: "127.0.0.1:0".into(),
            raft_bind: "127.0.0.1:0".into(),
            stdout: Vec::new(),
        };
        relay.spawn();
        relay
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn objects_dir(&self) -> PathBuf {
        self.dir.path().join("objects")
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("relay.log"))
            .expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_relay"))
            .arg("serve")
            .args(["--http", &self.http_bind, "--raft", &self.raft_bind])
            .arg("--data-dir")
            .arg(self.dir.path())
            .args(&self.args)
            .env("RUST_LOG", "info,openraft=warn")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn relay");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        self.child = Some(child);
        loop {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    self.stdout.push(line.clone());
                    if let Some(addr) = line.strip_prefix("relay: raft transport on ") {
                        self.raft_bind = addr.trim().to_string();
                    }
                    if let Some(addr) = line.strip_prefix("relay: listening on ") {
                        self.base = addr.trim().to_string();
                        self.http_bind = self.base.trim_start_matches("http://").to_string();
                        break;
                    }
                }
                Err(_) => {
                    if let Some(mut child) = self.child.take() {
                        let _ = child.kill();
                        let _ = child.wait();
                    }
                    panic!("relay did not start; log:\n{}", self.logs())
                }
            }
        }
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || while rx.recv().is_ok() {});
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("relay.log")).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then wait (bounded) for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        for _ in 0..300 {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        panic!("relay did not exit within 15 s of SIGTERM; log:\n{}", self.logs());
    }

    /// Starts again as the README says a member restarts: the same command minus `--join`.
    pub fn restart_without_join(&mut self) {
        if let Some(i) = self.args.iter().position(|a| a == "--join") {
            self.args.drain(i..i + 2);
        }
        self.restart();
    }

    /// Starts again on the same data dir (a new HTTP port).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop it first");
        self.stdout.clear();
        self.spawn();
    }

    pub fn auth(&self) -> String {
        format!("Bearer {}", self.key)
    }

    /// The admin key the founding node made (`<data-dir>/admin-api-key`).
    pub fn admin_key(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("admin-api-key"))
            .expect("admin key file")
            .trim()
            .to_string()
    }

    /// `Authorization` with the admin key.
    pub fn admin_auth(&self) -> String {
        format!("Bearer {}", self.admin_key())
    }

    /// The inter-node (Raft) address this node listens on.
    pub fn raft_addr(&self) -> String {
        self.raft_bind.clone()
    }

    /// The HTTP address (`IP:port`) this node listens on.
    pub fn http_addr(&self) -> String {
        self.http_bind.clone()
    }

    /// GET /cluster/status with the admin key.
    pub async fn cluster_status(&self, client: &reqwest::Client) -> serde_json::Value {
        let resp = client
            .get(self.url("/cluster/status"))
            .header("authorization", self.admin_auth())
            .send()
            .await
            .expect("status");
        assert_eq!(resp.status(), 200, "cluster status");
        resp.json().await.expect("status json")
    }

    /// POST /api/store with the given bytes and duration; returns the receipt.
    pub async fn store(
        &self,
        client: &reqwest::Client,
        name: &str,
        body: Vec<u8>,
        duration_s: u64,
    ) -> serde_json::Value {
        let resp = client
            .post(self.url("/api/store"))
            .header("authorization", self.auth())
            .header("x-file-name", name)
            .header("x-size-bytes", body.len().to_string())
            .header("x-duration-seconds", duration_s.to_string())
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
            .await
            .expect("store request");
        let status = resp.status();
        let json: serde_json::Value = resp.json().await.expect("json receipt");
        assert_eq!(status, 201, "store failed: {json}");
        json
    }

    /// An unauthenticated GET that must answer 200 with JSON.
    pub async fn get_json(&self, client: &reqwest::Client, path: &str) -> serde_json::Value {
        let resp = client.get(self.url(path)).send().await.expect("request");
        assert_eq!(resp.status(), 200, "GET {path}");
        resp.json().await.expect("json body")
    }

    /// Every lease row, following `next_cursor` page by page (`limit` per page, at most 100 pages).
    pub async fn all_leases(&self, client: &reqwest::Client, limit: usize) -> Vec<serde_json::Value> {
        let mut rows = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..100 {
            let mut url = self.url(&format!("/api/leases?limit={limit}"));
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let resp = client
                .get(url)
                .header("authorization", self.auth())
                .send()
                .await
                .expect("list");
            assert_eq!(resp.status(), 200, "listing failed");
            let page: serde_json::Value = resp.json().await.expect("json listing");
            rows.extend(page["leases"].as_array().expect("leases").iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return rows,
            }
        }
        panic!("more than 100 pages");
    }

    /// GET /api/leases (first page) as JSON.
    pub async fn leases(&self, client: &reqwest::Client) -> serde_json::Value {
        let resp = client
            .get(self.url("/api/leases"))
            .header("authorization", self.auth())
            .send()
            .await
            .expect("list");
        assert_eq!(resp.status(), 200, "listing failed");
        resp.json().await.expect("json listing")
    }

    /// POST /api/mailbox reserving `capacity_bytes` for 600 s, with `extra` headers; the 201 body.
    pub async fn mailbox(
        &self,
        client: &reqwest::Client,
        capacity_bytes: u64,
        extra: &[(&str, &str)],
    ) -> serde_json::Value {
        let mut req = client
            .post(self.url("/api/mailbox"))
            .header("authorization", self.auth())
            .header("x-capacity-bytes", capacity_bytes.to_string())
            .header("x-duration-seconds", "600");
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("mailbox request");
        assert_eq!(resp.status(), 201, "mailbox create failed");
        resp.json().await.expect("mailbox json")
    }

    pub async fn download(&self, client: &reqwest::Client, lease_id: &str) -> reqwest::Response {
        client
            .get(self.url(&format!("/api/download/{lease_id}")))
            .header("authorization", self.auth())
            .send()
            .await
            .expect("download request")
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn client() -> reqwest::Client {
    // No idle pooling: nodes restart on the same port, and a pooled connection to the dead
    // process would fail the next request.
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
}

/// Deterministic test bytes.
pub fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Milliseconds since the epoch of an RFC 3339 timestamp like `2026-04-19T22:00:00.000Z`.
pub fn parse_ms(ts: &str) -> u64 {
    chrono_free_parse(ts)
}

// A tiny RFC 3339 parser (UTC, `Z`, milliseconds), so tests need no date crate.
fn chrono_free_parse(ts: &str) -> u64 {
    let n = |a: usize, b: usize| ts[a..b].parse::<i64>().expect("timestamp digits");
    let (y, m, d, hh, mm, ss, ms) = (n(0, 4), n(5, 7), n(8, 10), n(11, 13), n(14, 16), n(17, 19), n(20, 23));
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = if y2 >= 0 { y2 } else { y2 - 399 } / 400;
    let yoe = y2 - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1000 + ms) as u64
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The path (from `/api/`) of a URL the API handed out, to send it to any node or over a raw socket.
pub fn api_path(url: &str) -> String {
    let (_, rest) = url.split_once("/api/").expect("an API URL");
    format!("/api/{rest}")
}

/// Starts a node asking to join `url` with `extra` flags, expecting it to be refused: waits (up
/// to 60 s) for it to exit, and returns its exit status and what it wrote on stderr.
pub fn refused_join(url: &str, extra: &[&str]) -> (ExitStatus, String) {
    use std::io::Read;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_relay"))
        .args(["serve", "--http", "127.0.0.1:0", "--raft", "127.0.0.1:0", "--join", url])
        .arg("--data-dir")
        .arg(dir.path())
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn relay");
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("a node that should have been refused kept running");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    let _ = child.stderr.take().expect("stderr").read_to_string(&mut stderr);
    (status, stderr)
}

/// Total size of the files under a directory, recursively.
pub fn bytes_under(dir: &Path) -> u64 {
    files_under(dir)
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// Files under a directory, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

pub const SECRET: &str = "test-cluster-secret-0123456789";

/// `n` real nodes on loopback: node 1 founds the cluster, the others join it.
pub struct Cluster {
    pub nodes: Vec<Relay>,
    /// The object store every node shares (bytes never pass through the leader).
    pub objects: tempfile::TempDir,
}

impl Cluster {
    pub async fn start(n: usize, extra: &[&str]) -> Cluster {
        let objects = tempfile::tempdir().expect("tempdir");
        let objects_url = format!("file://{}", objects.path().display());
        Cluster::start_with_store(n, extra, objects, &objects_url, &[]).await
    }

    /// `n` nodes sharing the object store at `objects_url` (reached with `env`).
    pub async fn start_with_store(
        n: usize,
        extra: &[&str],
        objects: tempfile::TempDir,
        objects_url: &str,
        env: &[(String, String)],
    ) -> Cluster {
        Cluster::start_nodes(n, extra, objects, objects_url, env, &mut |_, _| Vec::new()).await
    }

    /// Like [`Cluster::start`], with more arguments for node `i` (0-based) chosen by `per_node`
    /// when it starts, from the nodes already running.
    pub async fn start_each(
        n: usize,
        extra: &[&str],
        per_node: &mut dyn FnMut(usize, &[Relay]) -> Vec<String>,
    ) -> Cluster {
        let objects = tempfile::tempdir().expect("tempdir");
        let objects_url = format!("file://{}", objects.path().display());
        Cluster::start_nodes(n, extra, objects, &objects_url, &[], per_node).await
    }

    async fn start_nodes(
        n: usize,
        extra: &[&str],
        objects: tempfile::TempDir,
        objects_url: &str,
        env: &[(String, String)],
        per_node: &mut dyn FnMut(usize, &[Relay]) -> Vec<String>,
    ) -> Cluster {
        let mut nodes = Vec::new();
        for id in 1..=n {
            let id_s = id.to_string();
            let own = per_node(id - 1, &nodes);
            let mut args = vec!["--node-id", &id_s, "--cluster-secret", SECRET, "--objects", objects_url];
            args.extend_from_slice(extra);
            args.extend(own.iter().map(String::as_str));
            let join;
            if id > 1 {
                join = nodes.first().map(|n: &Relay| n.base.clone()).unwrap();
                args.extend_from_slice(&["--join", &join]);
            }
            nodes.push(Relay::start_with_env(&args, env));
        }
        let cluster = Cluster { nodes, objects };
        cluster
            .wait_for(|s| s["voters"].as_array().map(|v| v.len()) == Some(n.min(3)))
            .await;
        cluster
    }

    /// GET /cluster/status of node `i` (0-based).
    pub async fn status(&self, i: usize) -> serde_json::Value {
        let resp = client()
            .get(self.nodes[i].url("/cluster/status"))
            .header("x-cluster-secret", SECRET)
            .send()
            .await
            .expect("status");
        resp.json().await.expect("status json")
    }

    /// Waits (up to 30 s) until node 0's status satisfies `pred`.
    pub async fn wait_for(&self, pred: impl Fn(&serde_json::Value) -> bool) {
        for _ in 0..300 {
            for i in 0..self.nodes.len() {
                if self.nodes[i].child.is_some() && pred(&self.status(i).await) {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("cluster never reached the expected state: {}", self.status(0).await);
    }

    /// Index of the node that is leader (as seen by a running node).
    pub async fn leader(&self) -> usize {
        for _ in 0..300 {
            for i in 0..self.nodes.len() {
                if self.nodes[i].child.is_none() {
                    continue;
                }
                let s = self.status(i).await;
                if s["state"] == "Leader" {
                    return i;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no leader");
    }
}

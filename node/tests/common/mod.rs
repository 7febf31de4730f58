//! The node tests' side of the test kit: `relay_testkit` starts the processes and speaks the API;
//! this adds the tests' defaults (a known agents' key, leases down to one second, one cluster
//! secret) and helpers that assert as they go.
#![allow(dead_code, async_fn_in_trait)]

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use relay_testkit::{Call, Client, Node};
use serde_json::Value;

pub use relay_testkit::Node as Relay;

pub const KEY: &str = "rs_live_testkey0123456789abcdef";
pub const SECRET: &str = "test-cluster-secret-0123456789";
const RELAY_BIN: &str = env!("CARGO_BIN_EXE_relay");
/// Longer than the tests' own waits ever were, so a slow machine is not a failure.
const WAIT: Duration = Duration::from_secs(60);

/// The tests' defaults and asserting helpers on a node.
pub trait RelayExt: Sized {
    /// A node with a known API key and leases allowed down to one second.
    fn start(extra: &[&str]) -> Self;
    /// A node started with exactly `extra` (plus address and data dir); `key` empty for the one
    /// it makes.
    fn start_raw(extra: &[&str], key: &str) -> Self;
    /// A node with the test key and extra environment.
    fn start_with_env(extra: &[&str], env: &[(String, String)]) -> Self;
    /// Starts again as the README says a member restarts: the same command minus `--join`.
    fn restart_without_join(&mut self);
    /// Where a node without `--objects` keeps the bytes.
    fn objects_dir(&self) -> PathBuf;
    /// `Authorization` with the admin key.
    fn admin_auth(&self) -> String;
    /// GET /cluster/status with the admin key.
    async fn cluster_status(&self, http: &reqwest::Client) -> Value;
    /// POST /api/store with the given bytes and duration; returns the receipt.
    async fn store(&self, http: &reqwest::Client, name: &str, body: Vec<u8>, duration_s: u64) -> Value;
    /// An unauthenticated GET that must answer 200 with JSON.
    async fn get_json(&self, http: &reqwest::Client, path: &str) -> Value;
    /// Every lease row, following `next_cursor` page by page (`limit` per page, at most 100 pages).
    async fn all_leases(&self, http: &reqwest::Client, limit: usize) -> Vec<Value>;
    /// GET /api/leases (first page) as JSON.
    async fn leases(&self, http: &reqwest::Client) -> Value;
    /// POST /api/mailbox reserving `capacity_bytes` for 600 s, with `extra` headers; the 201 body.
    async fn mailbox(&self, http: &reqwest::Client, capacity_bytes: u64, extra: &[(&str, &str)]) -> Value;
    async fn download(&self, http: &reqwest::Client, lease_id: &str) -> reqwest::Response;
    /// GET /metrics: the OpenMetrics text.
    async fn metrics(&self, http: &reqwest::Client) -> String;
}

fn start(extra: &[&str], env: &[(String, String)]) -> Relay {
    Node::builder(RELAY_BIN)
        .args(["--bootstrap-api-key", KEY, "--min-duration-seconds", "1"])
        .args(extra.iter().copied())
        .envs(env)
        .start()
        .unwrap_or_else(|e| panic!("relay did not start: {e}"))
}

impl RelayExt for Relay {
    fn start(extra: &[&str]) -> Relay {
        start(extra, &[])
    }

    fn start_raw(extra: &[&str], key: &str) -> Relay {
        let mut relay = Node::builder(RELAY_BIN)
            .args(extra.iter().copied())
            .start()
            .unwrap_or_else(|e| panic!("relay did not start: {e}"));
        if !key.is_empty() {
            relay.set_key(key);
        }
        relay
    }

    fn start_with_env(extra: &[&str], env: &[(String, String)]) -> Relay {
        start(extra, env)
    }

    fn restart_without_join(&mut self) {
        self.remove_flag("--join");
        self.restart().unwrap_or_else(|e| panic!("restart: {e}"));
    }

    fn objects_dir(&self) -> PathBuf {
        self.data_dir().join("objects")
    }

    fn admin_auth(&self) -> String {
        format!("Bearer {}", self.admin_key().expect("admin key file"))
    }

    async fn cluster_status(&self, http: &reqwest::Client) -> Value {
        let admin = self.admin_key().expect("admin key file");
        let call = Client::new(http.clone(), self.base()).bearer(&admin).cluster_status();
        ok_json(call, "cluster status").await
    }

    async fn store(&self, http: &reqwest::Client, name: &str, body: Vec<u8>, duration_s: u64) -> Value {
        let reply = self
            .client(http.clone())
            .store(name, duration_s, body)
            .content_type("application/octet-stream")
            .send()
            .await
            .expect("store request");
        let json: Value = serde_json::from_slice(&reply.body).expect("json receipt");
        assert_eq!(reply.status, 201, "store failed: {json}");
        json
    }

    async fn get_json(&self, http: &reqwest::Client, path: &str) -> Value {
        ok_json(Client::new(http.clone(), self.base()).get(path), &format!("GET {path}")).await
    }

    async fn all_leases(&self, http: &reqwest::Client, limit: usize) -> Vec<Value> {
        self.client(http.clone())
            .all_leases(limit)
            .await
            .expect("listing failed")
    }

    async fn leases(&self, http: &reqwest::Client) -> Value {
        ok_json(self.client(http.clone()).leases(None, None), "listing failed").await
    }

    async fn mailbox(&self, http: &reqwest::Client, capacity_bytes: u64, extra: &[(&str, &str)]) -> Value {
        let mut call = self.client(http.clone()).mailbox_create(capacity_bytes, 600);
        for (k, v) in extra {
            call = call.header(k, v);
        }
        let reply = call.send().await.expect("mailbox request");
        assert_eq!(reply.status, 201, "mailbox create failed");
        serde_json::from_slice(&reply.body).expect("mailbox json")
    }

    async fn download(&self, http: &reqwest::Client, lease_id: &str) -> reqwest::Response {
        self.client(http.clone())
            .download(lease_id)
            .request()
            .send()
            .await
            .expect("download request")
    }

    async fn metrics(&self, http: &reqwest::Client) -> String {
        let reply = http.get(self.url("/metrics")).send().await.expect("GET /metrics");
        assert_eq!(reply.status(), 200, "GET /metrics");
        reply.text().await.expect("metrics text")
    }
}

/// Sends `call`, asserts 200 (naming `what`) and returns the JSON body.
pub async fn ok_json(call: Call, what: &str) -> Value {
    let reply = call.send().await.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(reply.status, 200, "{what}");
    serde_json::from_slice(&reply.body).expect("json body")
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
    relay_testkit::api_path(url).expect("an API URL").to_string()
}

/// Starts a node asking to join `url` with `extra` flags, expecting it to be refused: waits (up
/// to 60 s) for it to exit, and returns its exit status and its log (stderr, then what it printed).
pub fn refused_join(url: &str, extra: &[&str]) -> (ExitStatus, String) {
    let mut node = Node::builder(RELAY_BIN)
        .args(["--join", url])
        .args(extra.iter().copied())
        .launch()
        .expect("spawn relay");
    let status = node
        .wait_exit(WAIT)
        .unwrap_or_else(|e| panic!("a node that should have been refused kept running: {e}"));
    (status, node.logs())
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

/// `n` real nodes on loopback: node 1 founds the cluster, the others join it. The kit's cluster,
/// with the tests' defaults and helpers that panic instead of returning errors.
pub struct Cluster {
    kit: relay_testkit::Cluster,
    /// An object store the caller made, kept as long as the cluster.
    _objects: Option<tempfile::TempDir>,
}

impl Deref for Cluster {
    type Target = relay_testkit::Cluster;
    fn deref(&self) -> &relay_testkit::Cluster {
        &self.kit
    }
}

impl DerefMut for Cluster {
    fn deref_mut(&mut self) -> &mut relay_testkit::Cluster {
        &mut self.kit
    }
}

impl Cluster {
    /// `n` nodes sharing an object store in the cluster's own temp dir.
    pub async fn start(n: usize, extra: &[&str]) -> Cluster {
        Cluster::start_nodes(n, extra, None, &[], &mut |_, _| Vec::new()).await
    }

    /// `n` nodes sharing the object store at `objects_url` (reached with `env`).
    pub async fn start_with_store(
        n: usize,
        extra: &[&str],
        objects: tempfile::TempDir,
        objects_url: &str,
        env: &[(String, String)],
    ) -> Cluster {
        let mut cluster = Cluster::start_nodes(n, extra, Some(objects_url), env, &mut |_, _| Vec::new()).await;
        cluster._objects = Some(objects);
        cluster
    }

    /// Like [`Cluster::start`], with more arguments for node `i` (0-based) chosen by `per_node`
    /// when it starts, from the nodes already running.
    pub async fn start_each(
        n: usize,
        extra: &[&str],
        per_node: &mut dyn FnMut(usize, &[Relay]) -> Vec<String>,
    ) -> Cluster {
        Cluster::start_nodes(n, extra, None, &[], per_node).await
    }

    /// Like [`Cluster::start_each`] for nodes serving HTTPS with certificates from `ca_pem`.
    pub async fn start_tls(
        n: usize,
        extra: &[&str],
        ca_pem: Vec<u8>,
        per_node: &mut dyn FnMut(usize, &[Relay]) -> Vec<String>,
    ) -> Cluster {
        Cluster::start_nodes_ca(n, extra, None, &[], Some(ca_pem), per_node).await
    }

    async fn start_nodes(
        n: usize,
        extra: &[&str],
        objects_url: Option<&str>,
        env: &[(String, String)],
        per_node: &mut dyn FnMut(usize, &[Relay]) -> Vec<String>,
    ) -> Cluster {
        Cluster::start_nodes_ca(n, extra, objects_url, env, None, per_node).await
    }

    async fn start_nodes_ca(
        n: usize,
        extra: &[&str],
        objects_url: Option<&str>,
        env: &[(String, String)],
        ca_pem: Option<Vec<u8>>,
        per_node: &mut dyn FnMut(usize, &[Relay]) -> Vec<String>,
    ) -> Cluster {
        let mut builder = relay_testkit::Cluster::builder(RELAY_BIN)
            .nodes(n)
            .secret(SECRET)
            .every_node(|n| {
                n.args(["--bootstrap-api-key", KEY, "--min-duration-seconds", "1"])
                    .args(extra.iter().copied())
                    .envs(env)
            })
            .per_node(|i, running| per_node(i, running));
        if let Some(url) = objects_url {
            builder = builder.objects(url);
        }
        if let Some(pem) = ca_pem {
            builder = builder.ca_pem(pem);
        }
        let kit = builder
            .start()
            .await
            .unwrap_or_else(|e| panic!("cluster did not start: {e}"));
        Cluster { kit, _objects: None }
    }

    /// GET /cluster/status of node `i` (0-based).
    pub async fn status(&self, i: usize) -> Value {
        self.kit.status(i).await.expect("status")
    }

    /// Waits (up to 60 s) until some running node's status satisfies `pred`.
    pub async fn wait_for(&self, pred: impl Fn(&Value) -> bool) {
        if let Err(e) = self.kit.wait_for(WAIT, pred).await {
            panic!("cluster never reached the expected state: {e}");
        }
    }

    /// Index of the node that is leader (as seen by a running node).
    pub async fn leader(&self) -> usize {
        self.kit.wait_for_leader(WAIT).await.expect("no leader")
    }
}

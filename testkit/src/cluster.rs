//! N `relay` processes on loopback sharing one object store: node 1 founds the cluster, the others
//! join it one at a time, and the start returns once every voter is in under one leader.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::client::Client;
use crate::node::{Node, NodeBuilder};
use crate::KitError;

/// The cluster secret when the caller names none.
pub const SECRET: &str = "relay-testkit-cluster-secret-0123456789";
/// How long a started cluster may take to show all its voters under one leader.
pub const FORM_TIMEOUT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(100);
/// Relay's own default for `--voters`: later joiners stay learners.
const DEFAULT_VOTERS: usize = 3;

type PerNode<'a> = Box<dyn FnMut(usize, &[Node]) -> Vec<String> + 'a>;

pub struct ClusterBuilder<'a> {
    /// What every node shares; the cluster adds its own flags, dir and ports to a copy.
    every_node: NodeBuilder,
    nodes: usize,
    secret: String,
    objects: Option<String>,
    dir: Option<PathBuf>,
    ports: Option<Vec<(u16, u16)>>,
    voters: Option<usize>,
    status_timeout: Duration,
    per_node: Option<PerNode<'a>>,
    ca_pem: Option<Vec<u8>>,
}

impl<'a> ClusterBuilder<'a> {
    pub fn nodes(mut self, n: usize) -> Self {
        self.nodes = n;
        self
    }

    pub fn secret(mut self, secret: &str) -> Self {
        self.secret = secret.to_string();
        self
    }

    /// Flags, environment and `RUST_LOG` for every node, set on the builder they all start from.
    pub fn every_node(mut self, f: impl FnOnce(NodeBuilder) -> NodeBuilder) -> Self {
        self.every_node = f(self.every_node);
        self
    }

    /// The shared `--objects` URL. Default: `file://<dir>/objects`.
    pub fn objects(mut self, url: &str) -> Self {
        self.objects = Some(url.to_string());
        self
    }

    /// Where the nodes' data dirs (`node<id>/`, each with its `relay.log`) go; kept afterwards.
    /// Default: a temp dir removed with the cluster.
    pub fn dir(mut self, dir: &Path) -> Self {
        self.dir = Some(dir.to_path_buf());
        self
    }

    /// Fixed (HTTP, Raft) ports for each node, e.g. from [`crate::free_ports`].
    pub fn ports(mut self, ports: Vec<(u16, u16)>) -> Self {
        self.ports = Some(ports);
        self
    }

    /// `--voters`: how many joiners become voters. Default: Relay's own, 3.
    pub fn voters(mut self, voters: usize) -> Self {
        self.voters = Some(voters);
        self
    }

    /// How long one status request may take (a paused node never answers). Default 10 s.
    pub fn status_timeout(mut self, timeout: Duration) -> Self {
        self.status_timeout = timeout;
        self
    }

    /// More flags for node `i` (0-based), chosen when it starts, from the nodes already running.
    pub fn per_node(mut self, f: impl FnMut(usize, &[Node]) -> Vec<String> + 'a) -> Self {
        self.per_node = Some(Box::new(f));
        self
    }

    /// The nodes serve HTTPS with certificates from this CA (PEM): the kit's own calls trust it.
    pub fn ca_pem(mut self, pem: Vec<u8>) -> Self {
        self.ca_pem = Some(pem);
        self
    }

    pub async fn start(mut self) -> Result<Cluster, KitError> {
        let (dir, temp) = match &self.dir {
            Some(dir) => (dir.clone(), None),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("relay-cluster-")
                    .tempdir()
                    .map_err(KitError::io("temp dir"))?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        let objects = match &self.objects {
            Some(url) => url.clone(),
            None => {
                let path = dir.join("objects");
                std::fs::create_dir_all(&path).map_err(KitError::io(format!("{}", path.display())))?;
                format!("file://{}", path.display())
            }
        };
        if self.ports.as_ref().is_some_and(|p| p.len() < self.nodes) {
            return Err(KitError::Cluster(format!("fewer ports than {} nodes", self.nodes)));
        }
        let mut nodes: Vec<Node> = Vec::with_capacity(self.nodes);
        for i in 0..self.nodes {
            let id = (i + 1).to_string();
            let voters = self.voters.map(|v| ["--voters".to_string(), v.to_string()]);
            let mut node = self
                .every_node
                .clone()
                .dir(dir.join(format!("node{id}")))
                .args([
                    "--node-id",
                    &id,
                    "--cluster-secret",
                    &self.secret,
                    "--objects",
                    &objects,
                ])
                .args(voters.into_iter().flatten());
            if let Some(per_node) = &mut self.per_node {
                node = node.args(per_node(i, &nodes));
            }
            // The founder, not whoever leads: a joiner's request is forwarded to the leader.
            if let Some(founder) = nodes.first() {
                node = node.args(["--join", founder.base()]);
            }
            if let Some(&(http, raft)) = self.ports.as_ref().and_then(|p| p.get(i)) {
                node = node.ports(http, raft);
            }
            // Waiting for readiness blocks; the runtime must stay free for whatever the nodes
            // talk through (a caller's proxies run on it).
            let started = tokio::task::spawn_blocking(move || node.start())
                .await
                .map_err(|e| KitError::Cluster(format!("starting node {id}: {e}")))??;
            nodes.push(started);
        }
        let mut status_http = reqwest::Client::builder();
        if let Some(pem) = &self.ca_pem {
            let ca = reqwest::Certificate::from_pem(pem).map_err(|e| KitError::Cluster(format!("CA: {e}")))?;
            status_http = status_http.add_root_certificate(ca);
        }
        let cluster = Cluster {
            status_http: status_http
                .timeout(self.status_timeout)
                // Nodes restart on the same port: a pooled connection to the dead process would
                // fail the next request.
                .pool_max_idle_per_host(0)
                .build()
                .map_err(|e| KitError::Cluster(e.to_string()))?,
            voters: self.nodes.min(self.voters.unwrap_or(DEFAULT_VOTERS)),
            secret: self.secret,
            objects,
            dir,
            nodes,
            _temp: temp,
        };
        let voters = cluster.voters;
        cluster
            .wait_for(FORM_TIMEOUT, |s| voter_count(s) == voters && s["leader_id"].is_u64())
            .await?;
        Ok(cluster)
    }
}

/// Running nodes; dropping it kills every process it started.
pub struct Cluster {
    pub nodes: Vec<Node>,
    secret: String,
    /// The `--objects` URL every node was given.
    objects: String,
    voters: usize,
    status_http: reqwest::Client,
    dir: PathBuf,
    // After `nodes`: the processes are gone before their directories are removed.
    _temp: Option<tempfile::TempDir>,
}

impl Cluster {
    pub fn builder<'a>(bin: impl Into<PathBuf>) -> ClusterBuilder<'a> {
        ClusterBuilder {
            every_node: Node::builder(bin),
            nodes: 3,
            secret: SECRET.to_string(),
            objects: None,
            dir: None,
            ports: None,
            voters: None,
            status_timeout: Duration::from_secs(10),
            per_node: None,
            ca_pem: None,
        }
    }

    /// The shared object store's directory, when it is one (`file://`).
    pub fn objects_dir(&self) -> Option<PathBuf> {
        self.objects.strip_prefix("file://").map(PathBuf::from)
    }

    /// The nodes' base URLs, in order.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.base().to_string()).collect()
    }

    /// `GET /cluster/status` of node `i` (0-based), with the cluster secret.
    pub async fn status(&self, i: usize) -> Result<Value, KitError> {
        let reply = Client::new(self.status_http.clone(), self.nodes[i].base())
            .secret(&self.secret)
            .cluster_status()
            .send()
            .await?;
        Ok(reply.expect_status("cluster status", 200)?.json())
    }

    /// The leader (0-based) as the first running, unpaused node that answers sees it.
    pub async fn leader(&self) -> Option<usize> {
        for i in self.answering() {
            if let Some(id) = self.status(i).await.ok().and_then(|s| s["leader_id"].as_u64()) {
                return Some(id as usize - 1);
            }
        }
        None
    }

    /// Waits until a running node says it is the leader; its index.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<usize, KitError> {
        let deadline = Instant::now() + timeout;
        loop {
            for i in self.answering() {
                if self.status(i).await.is_ok_and(|s| s["state"] == "Leader") {
                    return Ok(i);
                }
            }
            if Instant::now() >= deadline {
                return Err(KitError::Cluster(format!("no leader within {timeout:?}")));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until some running node's status satisfies `pred`.
    pub async fn wait_for(&self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Result<(), KitError> {
        let deadline = Instant::now() + timeout;
        let mut last = Value::Null;
        loop {
            for i in self.answering() {
                match self.status(i).await {
                    Ok(s) if pred(&s) => return Ok(()),
                    Ok(s) => last = s,
                    Err(_) => {}
                }
            }
            if Instant::now() >= deadline {
                return Err(KitError::Cluster(format!(
                    "never reached the expected state within {timeout:?}; last status: {last} (logs in {})",
                    self.dir.display()
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until every node is up, all are voters agreeing on one leader, and none has applied
    /// more than 50 entries beyond another.
    pub async fn wait_healthy(&self, timeout: Duration) -> Result<(), KitError> {
        let deadline = Instant::now() + timeout;
        let n = self.nodes.len();
        let mut last = String::new();
        while Instant::now() < deadline {
            let mut leaders = Vec::new();
            let mut applied = Vec::new();
            for i in 0..n {
                match self.status(i).await {
                    Ok(s) if voter_count(&s) == self.voters => {
                        leaders.push(s["leader_id"].as_u64());
                        applied.push(s["last_applied"].as_u64().unwrap_or(0));
                    }
                    other => last = format!("node {} status {other:?}", i + 1),
                }
            }
            if leaders.len() == n && leaders[0].is_some() && leaders.iter().all(|l| *l == leaders[0]) {
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
            tokio::time::sleep(POLL * 2).await;
        }
        Err(KitError::Cluster(format!(
            "not healthy after {timeout:?}: {last} (logs in {})",
            self.dir.display()
        )))
    }

    /// Nodes that can answer: running and not paused.
    fn answering(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].is_running() && !self.nodes[i].is_paused())
            .collect()
    }
}

fn voter_count(status: &Value) -> usize {
    status["voters"].as_array().map_or(0, Vec::len)
}

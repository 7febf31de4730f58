//! The cluster under test: the test kit's N `relay` processes on fixed loopback ports (so a
//! restarted node comes back at the same address), plus what only chaos needs: a clock-offset
//! file per node and every peer reached through a fault proxy.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use relay_testkit::{free_ports, Node};

use crate::proxy::{self, Link};
use crate::ChaosError;

pub const SECRET: &str = "relay-chaos-cluster-secret-0123456789";
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// A paused node never answers: status requests give up quickly.
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);

pub struct Cluster {
    kit: relay_testkit::Cluster,
    /// `links[i][j]`: node i+1 → node j+1 (the diagonal is unused).
    pub links: Vec<Vec<Arc<Link>>>,
    clock_files: Vec<PathBuf>,
}

fn kit_err(e: relay_testkit::KitError) -> ChaosError {
    ChaosError::Cluster(e.to_string())
}

impl Cluster {
    /// Starts `n` nodes under `dir` (node 1 founds the cluster, the rest join: the first `voters`
    /// as voters, later ones as learners) and waits until they agree on one leader.
    pub async fn start(
        relay_bin: &Path,
        n: usize,
        voters: usize,
        dir: &Path,
        seed: u64,
        extra: &[String],
    ) -> Result<Cluster, ChaosError> {
        let api_key = format!("rs_live_chaos{seed:016x}");
        let ports = free_ports(2 * n).map_err(kit_err)?;
        let ports: Vec<(u16, u16)> = ports.chunks(2).map(|p| (p[1], p[0])).collect();
        let raft_addrs: Vec<String> = ports.iter().map(|(_, raft)| format!("127.0.0.1:{raft}")).collect();
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
        let mut clock_files = Vec::new();
        for id in 1..=n {
            let clock_file = dir.join(format!("node{id}.clock"));
            std::fs::write(&clock_file, "0").map_err(|e| ChaosError::Cluster(e.to_string()))?;
            clock_files.push(clock_file);
        }
        let per_node = |i: usize, _: &[Node]| {
            let mut args = vec![
                "--chaos-clock-offset-file".to_string(),
                clock_files[i].display().to_string(),
            ];
            for d in &dials[i] {
                args.extend(["--chaos-dial".to_string(), d.clone()]);
            }
            args
        };
        let kit = relay_testkit::Cluster::builder(relay_bin)
            .nodes(n)
            .dir(dir)
            .ports(ports)
            .voters(voters)
            .secret(SECRET)
            .status_timeout(STATUS_TIMEOUT)
            .every_node(|n| {
                n.rust_log("info")
                    .args(["--bootstrap-api-key", &api_key])
                    .args(["--bootstrap-balance-usdc", "1000000"])
                    .args(["--min-duration-seconds", "1"])
                    .args(["--handoff-max-claims", "100"])
                    .args(["--shutdown-timeout-seconds", "2"])
                    // Snapshots (and log purges) happen during the run, so they are under fault too.
                    .args(["--snapshot-every-entries", "2000"])
                    .args(extra.iter().cloned())
            })
            .per_node(per_node)
            .start()
            .await
            .map_err(kit_err)?;
        let cluster = Cluster {
            kit,
            links,
            clock_files,
        };
        cluster.wait_healthy(START_TIMEOUT).await?;
        Ok(cluster)
    }

    pub fn len(&self) -> usize {
        self.kit.nodes.len()
    }

    /// The node's base URL.
    pub fn url(&self, i: usize) -> &str {
        self.kit.nodes[i].base()
    }

    pub fn api_key(&self) -> String {
        self.kit.nodes[0].key()
    }

    pub fn urls(&self) -> Vec<String> {
        self.kit.urls()
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self, i: usize) {
        self.kit.nodes[i].kill9();
    }

    /// Starts a stopped node again without waiting for it: it may not reach a leader until a
    /// fault is lifted.
    pub fn restart(&mut self, i: usize) -> Result<(), ChaosError> {
        match self.kit.nodes[i].is_running() {
            true => Ok(()),
            false => self.kit.nodes[i].relaunch().map_err(kit_err),
        }
    }

    pub fn pause(&mut self, i: usize) {
        self.kit.nodes[i].pause();
    }

    pub fn resume(&mut self, i: usize) {
        self.kit.nodes[i].resume();
    }

    pub fn set_clock_offset(&self, i: usize, offset_ms: i64) -> Result<(), ChaosError> {
        let tmp = self.clock_files[i].with_extension("tmp");
        std::fs::write(&tmp, offset_ms.to_string()).map_err(|e| ChaosError::Cluster(e.to_string()))?;
        std::fs::rename(&tmp, &self.clock_files[i]).map_err(|e| ChaosError::Cluster(e.to_string()))
    }

    /// Every fault lifted: links open and prompt, clocks true, paused nodes resumed, dead ones
    /// restarted.
    pub fn heal_all(&mut self) -> Result<(), ChaosError> {
        for row in &self.links {
            for link in row {
                link.heal();
            }
        }
        for i in 0..self.len() {
            self.set_clock_offset(i, 0)?;
            if self.kit.nodes[i].is_paused() {
                self.resume(i);
            }
            self.restart(i)?;
        }
        Ok(())
    }

    /// The leader (0-based) as some running, unpaused node sees it.
    pub async fn leader(&self) -> Option<usize> {
        self.kit.leader().await
    }

    /// Every node up, agreeing on one leader, all voters, and applied up to the leader's commit.
    pub async fn wait_healthy(&self, timeout: Duration) -> Result<(), ChaosError> {
        self.kit.wait_healthy(timeout).await.map_err(kit_err)
    }
}

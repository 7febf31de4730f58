//! The ledger handle: starts openraft on RocksDB and offers writes and linearizable reads.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::{ChangeMembers, Config, ServerState, SnapshotPolicy};
use tracing::info;

use crate::batcher::Batcher;
use crate::command::{Command, IdempotencyKey, Request, Response};
use crate::error::LedgerError;
use crate::grpc::client::{Method, Network, Peers};
use crate::reader::StateReader;
use crate::store::{open_db, LogStore, StateMachineStore};
use crate::{NodeId, Raft, RelayNode};

#[derive(Clone, Debug)]
pub struct LedgerConfig {
    pub node_id: NodeId,
    /// Directory for RocksDB (`<dir>/db`) and snapshots (`<dir>/snapshots`).
    pub dir: PathBuf,
    pub node: RelayNode,
    /// Build a snapshot (and purge the log behind it) every this many entries.
    pub snapshot_every_entries: u64,
    /// Upper bound on one write or linearizable read, retries against a new leader included,
    /// after which the caller gets `Unavailable`.
    pub request_timeout: Duration,
    /// Shared by every member; inter-node calls without it are refused.
    pub cluster_secret: String,
    /// Joining nodes become voters while there are fewer than this; the rest stay learners.
    pub max_voters: usize,
}

pub struct Ledger {
    raft: Raft,
    batcher: Batcher,
    node: RelayNode,
    peers: Peers,
    max_voters: usize,
    reader: StateReader,
    node_id: NodeId,
    request_timeout: Duration,
}

/// What an operator wants to know about this node's view of the cluster.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LedgerStatus {
    pub node_id: NodeId,
    pub state: String,
    pub leader_id: Option<NodeId>,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub last_applied: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
}

/// Scope of the idempotency ids a node makes for writes that carry none from the client.
pub const NODE_SCOPE: &str = "_node";

fn membership_error<E: std::fmt::Display>(e: E) -> LedgerError {
    LedgerError::Unavailable(format!("membership change: {e}"))
}

/// This node's clock in milliseconds since the epoch (moved only by `relay-chaos`'s skew hook).
pub fn wall_clock_ms() -> u64 {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    ms.saturating_add_signed(crate::chaos::clock_offset_ms())
}

impl Ledger {
    /// Opens the store and starts Raft. Does not initialize a cluster; see [`Ledger::bootstrap_single`].
    pub async fn start(cfg: LedgerConfig) -> Result<Ledger, LedgerError> {
        let db = open_db(&cfg.dir.join("db"))?;
        info!(path = %cfg.dir.join("db").display(), "ledger: rocksdb open");
        let log_store = LogStore::new(db.clone());
        let state_machine = StateMachineStore::new(db.clone(), &cfg.dir.join("snapshots"))?;
        let config = Config {
            cluster_name: "relay".into(),
            // Failover is bounded by the election timeout; these keep it near a second on loopback
            // and LAN while staying 6x above the heartbeat (scripts/bench-failover.sh).
            heartbeat_interval: 50,
            election_timeout_min: 300,
            election_timeout_max: 600,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(cfg.snapshot_every_entries),
            // Keep a tenth of an interval behind each snapshot so a briefly lagging follower can
            // still catch up from the log instead of a full snapshot.
            max_in_snapshot_log_to_keep: cfg.snapshot_every_entries / 10,
            ..Default::default()
        }
        .validate()
        .map_err(|e| LedgerError::Fatal(e.to_string()))?;
        let peers = Peers::new(&cfg.cluster_secret).map_err(LedgerError::Fatal)?;
        let raft = Raft::new(
            cfg.node_id,
            Arc::new(config),
            Network { peers: peers.clone() },
            log_store,
            state_machine,
        )
        .await
        .map_err(|e| LedgerError::Fatal(e.to_string()))?;
        info!(node_id = cfg.node_id, "ledger: raft started");
        Ok(Ledger {
            batcher: Batcher::start(raft.clone(), cfg.request_timeout),
            raft,
            node: cfg.node,
            peers,
            max_voters: cfg.max_voters.max(1),
            reader: StateReader::new(db),
            node_id: cfg.node_id,
            request_timeout: cfg.request_timeout,
        })
    }

    /// Whether this node already holds cluster state (a vote or log).
    pub async fn is_initialized(&self) -> Result<bool, LedgerError> {
        self.raft
            .is_initialized()
            .await
            .map_err(|e| LedgerError::Fatal(e.to_string()))
    }

    /// Makes a fresh store a one-node cluster; a store that already has a membership is left as is.
    pub async fn bootstrap_single(&self) -> Result<bool, LedgerError> {
        if self
            .raft
            .is_initialized()
            .await
            .map_err(|e| LedgerError::Fatal(e.to_string()))?
        {
            return Ok(false);
        }
        let members = BTreeMap::from([(self.node_id, self.node.clone())]);
        self.raft
            .initialize(members)
            .await
            .map_err(|e| LedgerError::Fatal(e.to_string()))?;
        Ok(true)
    }

    /// Waits until some node is leader and this node has applied what it knows is committed.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), LedgerError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.linearizable().await.is_ok() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(LedgerError::Unavailable("no leader elected in time".into()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Applies a command through the leader, wherever it is. A follower forwards it; on a leader
    /// change the command is retried against the new leader until `request_timeout`. Every
    /// command carries an idempotency id (the client's, or one made here), so a retry after an
    /// ambiguous failure never applies twice.
    pub async fn write(&self, idempotency: Option<IdempotencyKey>, command: Command) -> Result<Response, LedgerError> {
        let idempotency = idempotency.or_else(|| {
            Some(IdempotencyKey {
                scope: NODE_SCOPE.into(),
                key: ulid::Ulid::new().to_string(),
            })
        });
        let request = Request {
            now_ms: 0,
            idempotency,
            command,
        };
        let deadline = tokio::time::Instant::now() + self.request_timeout;
        let mut backoff = Duration::from_millis(20);
        loop {
            let err = match self.write_local(request.clone()).await {
                Err(LedgerError::NotLeader { leader: Some(leader) }) => match self.leader_addr(leader) {
                    Some(addr) => match self
                        .peers
                        .forward(&addr, Method::Forward, &request, self.remaining(deadline))
                        .await
                    {
                        Ok(response) => return Ok(response),
                        Err(e) => LedgerError::from(e),
                    },
                    None => LedgerError::Unavailable(format!("leader {leader} has no known address")),
                },
                Err(e @ (LedgerError::NotLeader { .. } | LedgerError::Unavailable(_))) => e,
                other => return other,
            };
            if tokio::time::Instant::now() + backoff >= deadline {
                return Err(err);
            }
            tracing::debug!(error = %err, "ledger write: retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(100));
        }
    }

    /// Proposes on this node, which must be the leader; stamps the leader's clock. Keyed
    /// requests (every one from [`Ledger::write`]) are group-committed with concurrent ones.
    pub async fn write_local(&self, mut request: Request) -> Result<Response, LedgerError> {
        if request.idempotency.is_some() && !matches!(request.command, Command::Batch(_)) {
            return self.batcher.write(request).await;
        }
        request.now_ms = wall_clock_ms();
        let result = tokio::time::timeout(self.request_timeout, self.raft.client_write(request))
            .await
            .map_err(|_| LedgerError::Unavailable("write timed out".into()))?;
        match result {
            Ok(resp) => Ok(resp.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(LedgerError::NotLeader { leader: f.leader_id })
            }
            Err(RaftError::APIError(e)) => Err(LedgerError::Unavailable(e.to_string())),
            Err(RaftError::Fatal(e)) => Err(LedgerError::Fatal(e.to_string())),
        }
    }

    /// On the leader: confirms leadership with a quorum and returns the index a reader must have
    /// applied for its read to be linearizable.
    pub async fn leader_read_index(&self) -> Result<u64, LedgerError> {
        let result = tokio::time::timeout(self.request_timeout, self.raft.get_read_log_id())
            .await
            .map_err(|_| LedgerError::Unavailable("read barrier timed out".into()))?;
        match result {
            Ok((read_log_id, _)) => Ok(read_log_id.map(|l| l.index).unwrap_or(0)),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                Err(LedgerError::NotLeader { leader: f.leader_id })
            }
            Err(RaftError::APIError(e)) => Err(LedgerError::Unavailable(e.to_string())),
            Err(RaftError::Fatal(e)) => Err(LedgerError::Fatal(e.to_string())),
        }
    }

    /// Makes reads from [`Ledger::reader`] linearizable: gets a read index from the leader (this
    /// node or, forwarded, another) and waits until this node has applied up to it.
    pub async fn linearizable(&self) -> Result<&StateReader, LedgerError> {
        let deadline = tokio::time::Instant::now() + self.request_timeout;
        let mut backoff = Duration::from_millis(20);
        loop {
            let index = match self.leader_read_index().await {
                Err(LedgerError::NotLeader { leader: Some(leader) }) => match self.leader_addr(leader) {
                    Some(addr) => self
                        .peers
                        .forward::<(), u64>(&addr, Method::ReadIndex, &(), self.remaining(deadline))
                        .await
                        .map_err(LedgerError::from),
                    None => Err(LedgerError::Unavailable(format!(
                        "leader {leader} has no known address"
                    ))),
                },
                other => other,
            };
            let err = match index {
                Ok(index) => {
                    let waited = self
                        .raft
                        .wait(Some(self.remaining(deadline)))
                        .applied_index_at_least(Some(index), "linearizable read")
                        .await;
                    return match waited {
                        Ok(_) => Ok(&self.reader),
                        Err(e) => Err(LedgerError::Unavailable(format!("catching up to the read index: {e}"))),
                    };
                }
                Err(e @ (LedgerError::NotLeader { .. } | LedgerError::Unavailable(_))) => e,
                Err(e) => return Err(e),
            };
            if tokio::time::Instant::now() + backoff >= deadline {
                return Err(err);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(100));
        }
    }

    /// Adds a node as a learner, waits for it to catch up, and promotes it to voter while the
    /// cluster has fewer than `max_voters`. Forwarded to the leader when this node is not it.
    pub async fn join(&self, node_id: NodeId, node: RelayNode) -> Result<(), LedgerError> {
        match self.join_local(node_id, node.clone()).await {
            Err(LedgerError::NotLeader { leader: Some(leader) }) => {
                let addr = self
                    .leader_addr(leader)
                    .ok_or_else(|| LedgerError::Unavailable(format!("leader {leader} has no known address")))?;
                let timeout = Duration::from_secs(60);
                Ok(self
                    .peers
                    .forward::<_, ()>(&addr, Method::Join, &(node_id, node), timeout)
                    .await?)
            }
            other => other,
        }
    }

    /// [`Ledger::join`] on the leader.
    pub async fn join_local(&self, node_id: NodeId, node: RelayNode) -> Result<(), LedgerError> {
        let membership = self.raft.metrics().borrow().membership_config.clone();
        let voters: Vec<NodeId> = membership.membership().voter_ids().collect();
        if voters.contains(&node_id) {
            return Ok(());
        }
        self.raft
            .add_learner(node_id, node, true)
            .await
            .map_err(membership_error)?;
        if voters.len() < self.max_voters {
            self.raft
                .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([node_id])), false)
                .await
                .map_err(membership_error)?;
            info!(node_id, "ledger: node joined as voter");
        } else {
            info!(node_id, "ledger: node joined as learner");
        }
        Ok(())
    }

    /// Promotes a learner to voter (leader only).
    pub async fn promote(&self, node_id: NodeId) -> Result<(), LedgerError> {
        self.raft
            .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([node_id])), false)
            .await
            .map_err(membership_error)?;
        Ok(())
    }

    /// Removes a node from voters and learners (leader only).
    pub async fn remove(&self, node_id: NodeId) -> Result<(), LedgerError> {
        let ids = BTreeSet::from([node_id]);
        let membership = self.raft.metrics().borrow().membership_config.clone();
        if membership.membership().voter_ids().any(|v| v == node_id) {
            self.raft
                .change_membership(ChangeMembers::RemoveVoters(ids.clone()), false)
                .await
                .map_err(membership_error)?;
        }
        self.raft
            .change_membership(ChangeMembers::RemoveNodes(ids), false)
            .await
            .map_err(membership_error)?;
        Ok(())
    }

    fn leader_addr(&self, leader: NodeId) -> Option<String> {
        self.member_addr(leader)
    }

    fn member_addr(&self, node_id: NodeId) -> Option<String> {
        let m = self.raft.metrics().borrow().membership_config.clone();
        m.membership().get_node(&node_id).map(|n| n.raft_addr.clone())
    }

    fn remaining(&self, deadline: tokio::time::Instant) -> Duration {
        deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .max(Duration::from_millis(50))
    }

    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// Members as (id, node, is_voter).
    pub fn members(&self) -> Vec<(NodeId, RelayNode, bool)> {
        let m = self.raft.metrics().borrow().membership_config.clone();
        let voters: BTreeSet<NodeId> = m.membership().voter_ids().collect();
        m.membership()
            .nodes()
            .map(|(id, n)| (*id, n.clone(), voters.contains(id)))
            .collect()
    }

    /// The local applied state, without a read barrier (may lag the leader).
    pub fn reader(&self) -> &StateReader {
        &self.reader
    }

    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().state == ServerState::Leader
    }

    /// The time reads are judged by: this node's clock, never behind the cluster clock.
    pub fn now_ms(&self) -> u64 {
        wall_clock_ms().max(self.reader.clock_ms().unwrap_or(0))
    }

    pub fn status(&self) -> LedgerStatus {
        let m = self.raft.metrics().borrow().clone();
        LedgerStatus {
            node_id: self.node_id,
            state: format!("{:?}", m.state),
            leader_id: m.current_leader,
            term: m.current_term,
            last_log_index: m.last_log_index,
            last_applied: m.last_applied.map(|l| l.index),
            snapshot_index: m.snapshot.map(|l| l.index),
            purged_index: m.purged.map(|l| l.index),
        }
    }

    /// Builds a snapshot now (tests and operators; normally driven by `snapshot_every_entries`).
    pub async fn trigger_snapshot(&self) -> Result<(), LedgerError> {
        self.raft
            .trigger()
            .snapshot()
            .await
            .map_err(|e| LedgerError::Fatal(e.to_string()))
    }

    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "ledger: raft shutdown");
        }
    }
}

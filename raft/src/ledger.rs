//! The ledger handle: starts openraft on RocksDB and offers writes and linearizable reads.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::{Config, ServerState, SnapshotPolicy};
use tracing::info;

use crate::command::{Command, IdempotencyKey, Request, Response};
use crate::error::LedgerError;
use crate::network::SingleNodeNetwork;
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
    /// Upper bound on one write or linearizable read, after which the caller gets `Unavailable`.
    pub request_timeout: Duration,
}

pub struct Ledger {
    raft: Raft,
    node: RelayNode,
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

pub fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
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
            heartbeat_interval: 100,
            election_timeout_min: 400,
            election_timeout_max: 800,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(cfg.snapshot_every_entries),
            // Keep a tenth of an interval behind each snapshot so a briefly lagging follower can
            // still catch up from the log instead of a full snapshot.
            max_in_snapshot_log_to_keep: cfg.snapshot_every_entries / 10,
            ..Default::default()
        }
        .validate()
        .map_err(|e| LedgerError::Fatal(e.to_string()))?;
        let raft = Raft::new(
            cfg.node_id,
            Arc::new(config),
            SingleNodeNetwork,
            log_store,
            state_machine,
        )
        .await
        .map_err(|e| LedgerError::Fatal(e.to_string()))?;
        info!(node_id = cfg.node_id, "ledger: raft started");
        Ok(Ledger {
            raft,
            node: cfg.node,
            reader: StateReader::new(db),
            node_id: cfg.node_id,
            request_timeout: cfg.request_timeout,
        })
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

    /// Proposes a command stamped with this node's clock and waits for its answer.
    pub async fn write(&self, idempotency: Option<IdempotencyKey>, command: Command) -> Result<Response, LedgerError> {
        let request = Request {
            now_ms: wall_clock_ms(),
            idempotency,
            command,
        };
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

    /// Confirms leadership with a quorum and waits until everything committed before this call is
    /// applied; reads from [`Ledger::reader`] afterwards are linearizable.
    pub async fn linearizable(&self) -> Result<&StateReader, LedgerError> {
        let result = tokio::time::timeout(self.request_timeout, self.raft.ensure_linearizable())
            .await
            .map_err(|_| LedgerError::Unavailable("read barrier timed out".into()))?;
        match result {
            Ok(_) => Ok(&self.reader),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                Err(LedgerError::NotLeader { leader: f.leader_id })
            }
            Err(RaftError::APIError(e)) => Err(LedgerError::Unavailable(e.to_string())),
            Err(RaftError::Fatal(e)) => Err(LedgerError::Fatal(e.to_string())),
        }
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

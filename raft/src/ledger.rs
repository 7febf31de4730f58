//! The ledger handle: starts openraft on RocksDB and offers writes and linearizable reads.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::{ChangeMembers, Config, ServerState, SnapshotPolicy};
use tracing::info;

use crate::batcher::Batcher;
use crate::command::{Command, IdempotencyKey, Rejection, Request, Response};
use crate::error::LedgerError;
use crate::grpc::client::{Method, Network, Peers};
use crate::grpc::ForwardError;
use crate::ops::{typed, Op};
use crate::reader::StateReader;
use crate::reads::{Coalescer, ReadPoint};
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
    /// Mutual TLS between nodes, when configured (else plaintext, for loopback).
    pub raft_tls: Option<crate::grpc::tls::RaftTls>,
    /// The leader's heartbeat, ms; openraft also bounds each replication call by it, so it must
    /// exceed the longest round trip to any member.
    pub heartbeat_ms: u64,
    /// The shortest election timeout, ms (the longest is twice it).
    pub election_timeout_ms: u64,
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
    secret: String,
    raft_tls: Option<crate::grpc::tls::RaftTls>,
    /// Read-index rounds on this node as leader, shared by its own readers and forwarded ones.
    leader_reads: Coalescer,
    /// Read-index rounds asked of the leader, shared by this node's readers as a follower.
    forwarded_reads: Coalescer,
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
/// How long a join waits for the new learner to catch up before leaving it a learner.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an explicit promotion waits for the learner to catch up.
const PROMOTE_CATCH_UP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a node at a joining address has to answer the identity challenge.
const IDENTIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// What a join made of the node.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JoinOutcome {
    pub voter: bool,
    /// Why it stayed a learner.
    pub reason: Option<String>,
}

impl JoinOutcome {
    fn voter() -> JoinOutcome {
        JoinOutcome {
            voter: true,
            reason: None,
        }
    }

    fn learner(reason: String) -> JoinOutcome {
        JoinOutcome {
            voter: false,
            reason: Some(reason),
        }
    }
}

/// The highest log index the leader knows `node_id` holds (leader only).
fn matched_index(metrics: &openraft::RaftMetrics<NodeId, RelayNode>, node_id: NodeId) -> Option<u64> {
    metrics
        .replication
        .as_ref()
        .and_then(|r| r.get(&node_id).cloned().flatten())
        .map(|l| l.index)
}

fn membership_error<E: std::fmt::Display>(e: E) -> LedgerError {
    LedgerError::Unavailable(format!("membership change: {e}"))
}

/// This node's clock in milliseconds since the epoch (moved only by `relay-chaos`'s skew hook).
/// How an unavailable linearizable read says this node had a read index but had not applied up to
/// it in time (readiness reports it as catching up, not as a missing leader).
pub const CATCHING_UP: &str = "catching up to the read index";

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
        let state_machine = StateMachineStore::new(db.clone(), &cfg.dir.join("snapshots"))?;
        let log_store = LogStore::new(db.clone(), state_machine.durable_snapshot());
        let config = Config {
            cluster_name: "relay".into(),
            // Failover is bounded by the election timeout; the defaults (50 ms, 300-600 ms) keep it
            // near a second on loopback and LAN (scripts/bench-failover.sh); across regions both
            // grow with the round trip (relay-chaos regions, deploy/multi-region.md).
            heartbeat_interval: cfg.heartbeat_ms,
            election_timeout_min: cfg.election_timeout_ms,
            election_timeout_max: cfg.election_timeout_ms * 2,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(cfg.snapshot_every_entries),
            // Keep a tenth of an interval behind each snapshot so a briefly lagging follower can
            // still catch up from the log instead of a full snapshot.
            max_in_snapshot_log_to_keep: cfg.snapshot_every_entries / 10,
            ..Default::default()
        }
        .validate()
        .map_err(|e| LedgerError::Fatal(e.to_string()))?;
        let peers = Peers::new(&cfg.cluster_secret, cfg.raft_tls.clone()).map_err(LedgerError::Fatal)?;
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
        let reader = StateReader::new(db);
        let leader_reads = leader_rounds(raft.clone(), reader.clone(), cfg.request_timeout);
        let forwarded_reads = forwarded_rounds(raft.clone(), peers.clone(), leader_reads.clone(), cfg.request_timeout);
        Ok(Ledger {
            leader_reads,
            forwarded_reads,
            batcher: Batcher::start(raft.clone(), cfg.request_timeout),
            raft,
            node: cfg.node,
            peers,
            max_voters: cfg.max_voters.max(1),
            reader,
            node_id: cfg.node_id,
            request_timeout: cfg.request_timeout,
            secret: cfg.cluster_secret,
            raft_tls: cfg.raft_tls,
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
        let idempotency =
            idempotency.or_else(|| Some(IdempotencyKey::internal(NODE_SCOPE, ulid::Ulid::new().to_string())));
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

    /// Runs one typed operation through [`Ledger::write`]: its own output, or its rejection.
    pub async fn run<O: Op>(
        &self,
        idempotency: Option<IdempotencyKey>,
        op: O,
    ) -> Result<Result<O::Output, Rejection>, LedgerError> {
        typed::<O>(self.write(idempotency, op.into()).await)
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

    /// On the leader: confirms leadership with a quorum (in a round shared with concurrent
    /// readers) and returns the index a reader must have applied for its read to be linearizable,
    /// with the leader's clock as of the round.
    pub async fn leader_read_point(&self) -> Result<ReadPoint, LedgerError> {
        Ok(self.leader_reads.get().await?)
    }

    /// A consistent copy of the whole state, at least as new as every write acknowledged before
    /// the call: the applied log id it stands at, and the rows (a Raft snapshot's data).
    pub async fn backup(&self) -> Result<(Option<openraft::LogId<NodeId>>, Vec<u8>), LedgerError> {
        let db = self.linearizable().await?.db();
        let (last_applied, _, data) = tokio::task::spawn_blocking(move || crate::store::snapshot::capture(&db))
            .await
            .map_err(|e| LedgerError::Fatal(format!("backup task: {e}")))??;
        Ok((last_applied, data))
    }

    /// Makes reads from [`Ledger::reader`] linearizable: gets a read index from the leader (this
    /// node or, forwarded, another) and waits until this node has applied up to it.
    pub async fn linearizable(&self) -> Result<&StateReader, LedgerError> {
        Ok(self.linearizable_now().await?.0)
    }

    /// [`Ledger::linearizable`], and the time the read is judged by: the leader's clock as of the
    /// read-index round (never behind the applied cluster clock), so a follower whose own clock
    /// lags never serves a lease the leader would call expired.
    pub async fn linearizable_now(&self) -> Result<(&StateReader, u64), LedgerError> {
        let deadline = tokio::time::Instant::now() + self.request_timeout;
        let mut backoff = Duration::from_millis(20);
        loop {
            let rounds = match self.is_leader() {
                true => &self.leader_reads,
                false => &self.forwarded_reads,
            };
            let point = match tokio::time::timeout(self.remaining(deadline), rounds.get()).await {
                Ok(point) => point.map_err(LedgerError::from),
                Err(_) => Err(LedgerError::Unavailable("read index timed out".into())),
            };
            let err = match point {
                Ok(point) => {
                    let waited = self
                        .raft
                        .wait(Some(self.remaining(deadline)))
                        .applied_index_at_least(Some(point.index), "linearizable read")
                        .await;
                    return match waited {
                        Ok(_) => Ok((&self.reader, point.clock_ms.max(self.reader.clock_ms()?))),
                        Err(e) => Err(LedgerError::Unavailable(format!("{CATCHING_UP}: {e}"))),
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

    /// Asks the node that says it is `node_id` at `raft_addr` to prove it holds the cluster secret
    /// (nothing secret is sent) and to read `probe_key` from its object store. Returns the probe's
    /// blake3 as that node read it.
    pub async fn verify_peer(
        &self,
        node_id: NodeId,
        raft_addr: &str,
        probe_key: Option<String>,
    ) -> Result<Option<[u8; 32]>, crate::grpc::identity::IdentifyError> {
        crate::grpc::identity::verify(
            raft_addr,
            node_id,
            &self.secret,
            probe_key,
            self.raft_tls.as_ref(),
            IDENTIFY_TIMEOUT,
        )
        .await
    }

    /// Adds a node as a learner (a learner never counts towards a quorum, so this cannot stall the
    /// cluster), waits for it to catch up, then makes it a voter while the cluster has fewer than
    /// `max_voters`. A node that does not catch up in time stays a learner. Forwarded to the
    /// leader when this node is not it. The caller has checked the node with [`Ledger::verify_peer`].
    pub async fn join(&self, node_id: NodeId, node: RelayNode) -> Result<JoinOutcome, LedgerError> {
        match self.join_local(node_id, node.clone()).await {
            Err(LedgerError::NotLeader { leader: Some(leader) }) => {
                let addr = self
                    .leader_addr(leader)
                    .ok_or_else(|| LedgerError::Unavailable(format!("leader {leader} has no known address")))?;
                let timeout = CATCH_UP_TIMEOUT + Duration::from_secs(15);
                Ok(self
                    .peers
                    .forward::<_, JoinOutcome>(&addr, Method::Join, &(node_id, node), timeout)
                    .await?)
            }
            other => other,
        }
    }

    /// [`Ledger::join`] on the leader.
    pub async fn join_local(&self, node_id: NodeId, node: RelayNode) -> Result<JoinOutcome, LedgerError> {
        if !self.is_leader() {
            return Err(LedgerError::NotLeader {
                leader: self.status().leader_id,
            });
        }
        let membership = self.raft.metrics().borrow().membership_config.clone();
        let voters: Vec<NodeId> = membership.membership().voter_ids().collect();
        if voters.contains(&node_id) {
            return Ok(JoinOutcome::voter());
        }
        if let Some(known) = membership.membership().get_node(&node_id) {
            if known.raft_addr != node.raft_addr {
                return Err(LedgerError::Unavailable(format!(
                    "node {node_id} is already a learner at {}; remove it first",
                    known.raft_addr
                )));
            }
        }
        self.raft
            .add_learner(node_id, node, false)
            .await
            .map_err(membership_error)?;
        info!(node_id, "ledger: node joined as learner");
        if voters.len() >= self.max_voters {
            return Ok(JoinOutcome::learner(format!(
                "the cluster already has {} voters (--voters {})",
                voters.len(),
                self.max_voters
            )));
        }
        if let Err(lag) = self.wait_caught_up(node_id, CATCH_UP_TIMEOUT).await {
            return Ok(JoinOutcome::learner(lag));
        }
        self.raft
            .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([node_id])), false)
            .await
            .map_err(membership_error)?;
        info!(node_id, "ledger: learner caught up and became a voter");
        Ok(JoinOutcome::voter())
    }

    /// Waits (up to `timeout`) until the learner has replicated everything the leader had when
    /// the wait began; on timeout, says how far behind it is.
    async fn wait_caught_up(&self, node_id: NodeId, timeout: Duration) -> Result<(), String> {
        let target = self.raft.metrics().borrow().last_log_index.unwrap_or(0);
        let deadline = tokio::time::Instant::now() + timeout;
        let mut metrics = self.raft.metrics();
        loop {
            let matched = matched_index(&metrics.borrow(), node_id);
            if matched.is_some_and(|m| m >= target) {
                return Ok(());
            }
            let wait = tokio::time::timeout_at(deadline, metrics.changed()).await;
            if !matches!(wait, Ok(Ok(()))) {
                return Err(format!(
                    "node {node_id} has not caught up: it holds the log up to {matched:?} of {target}"
                ));
            }
        }
    }

    /// Promotes a learner to voter (leader only) once it has caught up; a learner that has not
    /// caught up within a few seconds is refused as unavailable (try again), so a promotion can
    /// never hand the quorum to a node that cannot vote.
    pub async fn promote(&self, node_id: NodeId) -> Result<(), LedgerError> {
        self.wait_caught_up(node_id, PROMOTE_CATCH_UP_TIMEOUT)
            .await
            .map_err(LedgerError::Unavailable)?;
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

    /// How this node is reached.
    pub fn node(&self) -> &RelayNode {
        &self.node
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

    /// Whether Raft still runs (a storage failure stops it for good; the node must restart).
    pub fn is_running(&self) -> bool {
        self.raft.metrics().borrow().running_state.is_ok()
    }

    /// Resolves when Raft has stopped on a fatal error, with that error.
    pub async fn stopped(&self) -> String {
        let mut metrics = self.raft.metrics();
        loop {
            if let Err(fatal) = &metrics.borrow().running_state {
                return fatal.to_string();
            }
            if metrics.changed().await.is_err() {
                return "raft metrics closed".into();
            }
        }
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

    /// On the leader, the highest log index it knows each member holds (`None`: nothing yet);
    /// empty elsewhere, since only the leader replicates.
    pub fn replication(&self) -> std::collections::BTreeMap<NodeId, Option<u64>> {
        let m = self.raft.metrics().borrow().clone();
        m.replication
            .map(|r| r.into_iter().map(|(id, l)| (id, l.map(|l| l.index))).collect())
            .unwrap_or_default()
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

/// Read-index rounds run on this node: one quorum heartbeat round each (openraft), then the
/// leader's clock.
fn leader_rounds(raft: Raft, reader: StateReader, timeout: Duration) -> Coalescer {
    // The highest clock a round on this node answered: a clock stepped back never makes a lease
    // live again that a round already judged over. (Across a leader change the new leader's clock
    // is floored by the applied cluster clock only: the skew bound of CHAOS.md.)
    let answered = Arc::new(std::sync::atomic::AtomicU64::new(0));
    Coalescer::new(move || {
        let (raft, reader, answered) = (raft.clone(), reader.clone(), answered.clone());
        async move {
            let result = tokio::time::timeout(timeout, raft.get_read_log_id())
                .await
                .map_err(|_| ForwardError::Unavailable("read barrier timed out".into()))?;
            match result {
                Ok((read_log_id, _)) => {
                    // Taken after leadership was confirmed, so inside every waiting reader's request.
                    let now = wall_clock_ms().max(reader.clock_ms().unwrap_or(0));
                    let before = answered.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                    Ok(ReadPoint {
                        index: read_log_id.map(|l| l.index).unwrap_or(0),
                        clock_ms: now.max(before),
                    })
                }
                Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                    Err(ForwardError::NotLeader(f.leader_id))
                }
                Err(RaftError::APIError(e)) => Err(ForwardError::Unavailable(e.to_string())),
                Err(RaftError::Fatal(e)) => Err(ForwardError::Failed(e.to_string())),
            }
        }
    })
}

/// Read-index rounds asked of whichever node this one believes leads (or run here, should it
/// have become the leader since).
fn forwarded_rounds(raft: Raft, peers: Peers, local: Coalescer, timeout: Duration) -> Coalescer {
    Coalescer::new(move || {
        let (raft, peers, local) = (raft.clone(), peers.clone(), local.clone());
        async move {
            let (me, leader, addr) = {
                let m = raft.metrics();
                let m = m.borrow();
                let addr = m.current_leader.and_then(|l| {
                    m.membership_config
                        .membership()
                        .get_node(&l)
                        .map(|n| n.raft_addr.clone())
                });
                (m.id, m.current_leader, addr)
            };
            match (leader, addr) {
                (Some(l), _) if l == me => local.get().await,
                (Some(_), Some(addr)) => {
                    peers
                        .forward::<(), ReadPoint>(&addr, Method::ReadIndex, &(), timeout)
                        .await
                }
                (Some(l), None) => Err(ForwardError::Unavailable(format!("leader {l} has no known address"))),
                (None, _) => Err(ForwardError::NotLeader(None)),
            }
        }
    })
}

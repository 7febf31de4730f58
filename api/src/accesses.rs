//! The access history of reads served after a linearizable check, recorded off the read's
//! critical path.
//!
//! A download is judged by a read index and the leader's clock (`Ledger::linearizable_now`), which
//! costs no log write; what it served is then queued here and written to the ledger in batches
//! ([`relay_raft::ops::RecordAccesses`]): one entry per [`FLUSH_EVERY`] at most, holding up to
//! [`BATCH_MAX`] accesses. The bounds:
//!
//! - the queue holds [`QUEUE_MAX`] accesses; a full queue makes reads wait (up to
//!   [`ENQUEUE_WAIT`], then 503) rather than drop history;
//! - a batch is retried with the same idempotency key until the ledger takes it, so it counts once;
//! - on shutdown the queue is drained and written, for up to [`DRAIN_WITHIN`] (a node that has
//!   lost its quorum still stops; what it could not write is logged as lost);
//! - a crash (kill -9, power) loses at most the accesses of the last [`FLUSH_EVERY`] plus the batch
//!   in flight: a lease's `access_count` and `recent_access` may then miss them. Nothing that
//!   must count exactly goes through here (claims and baton reads stay ledger writes).

use std::sync::Arc;
use std::time::Duration;

use relay_raft::command::IdempotencyKey;
use relay_raft::ledger::NODE_SCOPE;
use relay_raft::model::AccessActor;
use relay_raft::ops::{RecordAccesses, ServedAccess};
use relay_raft::{Ledger, LedgerError};
use tokio::sync::{mpsc, watch, Mutex};

use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;

/// Accesses waiting to be written, at most.
pub const QUEUE_MAX: usize = 65_536;
/// Accesses in one ledger entry, at most (about 60 bytes each).
pub const BATCH_MAX: usize = 4_096;
/// How long accesses gather before a batch is written.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// How long a read waits for room in a full queue.
pub const ENQUEUE_WAIT: Duration = Duration::from_secs(2);

/// The sending side, shared by every handler; [`run`] writes what it queues.
pub struct AccessLog {
    tx: mpsc::Sender<ServedAccess>,
    rx: Mutex<Option<mpsc::Receiver<ServedAccess>>>,
}

impl Default for AccessLog {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_MAX);
        AccessLog {
            tx,
            rx: Mutex::new(Some(rx)),
        }
    }
}

impl AccessLog {
    /// Queues one access served at `at_ms` (the cluster time it was judged by).
    pub async fn record(&self, metrics: &Metrics, lease_id: &str, actor: AccessActor, at_ms: u64) -> ApiResult<()> {
        let access = ServedAccess {
            lease_id: lease_id.to_string(),
            actor,
            at_ms,
        };
        match self.tx.send_timeout(access, ENQUEUE_WAIT).await {
            Ok(()) => {
                metrics.accesses_pending.inc();
                Ok(())
            }
            Err(_) => Err(ApiError::Unavailable(
                "the access history is not being written; retry".into(),
            )),
        }
    }
}

/// Writes queued accesses in batches until `stop`, then drains the queue and writes the rest,
/// for at most [`DRAIN_WITHIN`] (a node without a quorum must still be able to stop).
pub async fn run(ledger: Arc<Ledger>, log: Arc<AccessLog>, metrics: Arc<Metrics>, mut stop: watch::Receiver<bool>) {
    let Some(mut rx) = log.rx.lock().await.take() else {
        tracing::error!("access log: a writer is already running");
        return;
    };
    let mut batch = Vec::with_capacity(BATCH_MAX);
    loop {
        tokio::select! {
            _ = rx.recv_many(&mut batch, BATCH_MAX) => {}
            _ = stop.changed() => {}
        }
        if !*stop.borrow() {
            // Let a burst gather into one entry.
            tokio::select! {
                _ = tokio::time::sleep(FLUSH_EVERY) => {}
                _ = stop.changed() => {}
            }
        }
        fill(&mut rx, &mut batch);
        if !batch.is_empty() {
            write(&ledger, &metrics, std::mem::take(&mut batch), &stop, None).await;
        }
        if *stop.borrow() {
            break;
        }
    }
    let deadline = tokio::time::Instant::now() + DRAIN_WITHIN;
    loop {
        fill(&mut rx, &mut batch);
        if batch.is_empty() {
            return;
        }
        write(&ledger, &metrics, std::mem::take(&mut batch), &stop, Some(deadline)).await;
    }
}

/// How long a stopping node keeps trying to write the accesses it still holds.
pub const DRAIN_WITHIN: Duration = Duration::from_secs(5);

/// Tops `batch` up from the queue without waiting.
fn fill(rx: &mut mpsc::Receiver<ServedAccess>, batch: &mut Vec<ServedAccess>) {
    while batch.len() < BATCH_MAX {
        match rx.try_recv() {
            Ok(a) => batch.push(a),
            Err(_) => break,
        }
    }
}

/// Writes one batch under one idempotency key, retrying while the ledger is unavailable; once the
/// node is stopping, only until `deadline` (the accesses are then reported lost).
async fn write(
    ledger: &Ledger,
    metrics: &Metrics,
    accesses: Vec<ServedAccess>,
    stop: &watch::Receiver<bool>,
    deadline: Option<tokio::time::Instant>,
) {
    let count = accesses.len() as i64;
    let key = IdempotencyKey::internal(NODE_SCOPE, format!("accesses-{}", ulid::Ulid::new()));
    let op = RecordAccesses { accesses };
    let mut backoff = Duration::from_millis(50);
    let stopping_deadline = || deadline.unwrap_or_else(|| tokio::time::Instant::now() + DRAIN_WITHIN);
    let mut until = deadline;
    loop {
        let attempt = ledger.run(Some(key.clone()), op.clone());
        let answer = match until {
            Some(d) => match tokio::time::timeout_at(d, attempt).await {
                Ok(answer) => answer,
                Err(_) => Err(LedgerError::Unavailable("stopping".into())),
            },
            None => attempt.await,
        };
        match answer {
            Ok(Ok(recorded)) => {
                metrics.accesses_recorded.inc_by(u64::from(recorded));
                break;
            }
            Ok(Err(rejection)) => {
                tracing::error!(%rejection, count, "access log: batch refused; its accesses are not recorded");
                break;
            }
            Err(e @ (LedgerError::NotLeader { .. } | LedgerError::Unavailable(_))) => {
                if *stop.borrow() && until.is_none() {
                    until = Some(stopping_deadline());
                }
                if until.is_some_and(|d| tokio::time::Instant::now() + backoff >= d) {
                    tracing::error!(error = %e, count, "access log: stopping without a ledger to write to; these accesses are not recorded");
                    break;
                }
                tracing::warn!(error = %e, count, "access log: batch not written yet; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            Err(e) => {
                tracing::error!(error = %e, count, "access log: batch lost");
                break;
            }
        }
    }
    metrics.accesses_pending.dec_by(count);
}

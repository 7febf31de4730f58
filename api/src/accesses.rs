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
//! - on shutdown the queue is drained and written;
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

/// Writes queued accesses in batches until `stop`, then drains the queue and writes the rest.
pub async fn run(ledger: Arc<Ledger>, log: Arc<AccessLog>, metrics: Arc<Metrics>, mut stop: watch::Receiver<bool>) {
    let Some(mut rx) = log.rx.lock().await.take() else {
        tracing::error!("access log: a writer is already running");
        return;
    };
    let mut batch = Vec::with_capacity(BATCH_MAX);
    loop {
        let stopping = tokio::select! {
            n = rx.recv_many(&mut batch, BATCH_MAX) => n == 0,
            _ = stop.changed() => true,
        };
        if !stopping {
            // Let a burst gather into one entry.
            tokio::select! {
                _ = tokio::time::sleep(FLUSH_EVERY) => {}
                _ = stop.changed() => {}
            }
        }
        while batch.len() < BATCH_MAX {
            match rx.try_recv() {
                Ok(a) => batch.push(a),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            write(&ledger, &metrics, std::mem::take(&mut batch), stopping).await;
        }
        if stopping || *stop.borrow() {
            // Drain whatever is still queued before the node goes.
            loop {
                while batch.len() < BATCH_MAX {
                    match rx.try_recv() {
                        Ok(a) => batch.push(a),
                        Err(_) => break,
                    }
                }
                if batch.is_empty() {
                    return;
                }
                write(&ledger, &metrics, std::mem::take(&mut batch), true).await;
            }
        }
    }
}

/// Writes one batch under one idempotency key, retrying while the ledger is unavailable (a few
/// times only when the node is stopping).
async fn write(ledger: &Ledger, metrics: &Metrics, accesses: Vec<ServedAccess>, stopping: bool) {
    let count = accesses.len() as i64;
    let key = IdempotencyKey::internal(NODE_SCOPE, format!("accesses-{}", ulid::Ulid::new()));
    let op = RecordAccesses { accesses };
    let mut backoff = Duration::from_millis(50);
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        match ledger.run(Some(key.clone()), op.clone()).await {
            Ok(Ok(recorded)) => {
                metrics.accesses_recorded.inc_by(u64::from(recorded));
                break;
            }
            Ok(Err(rejection)) => {
                tracing::error!(%rejection, count, "access log: batch refused; its accesses are not recorded");
                break;
            }
            Err(e @ (LedgerError::NotLeader { .. } | LedgerError::Unavailable(_))) if !stopping || attempts < 5 => {
                tracing::warn!(error = %e, count, attempts, "access log: batch not written yet; retrying");
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

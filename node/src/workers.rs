//! Background work on the leader: expire due leases, then delete their bytes and record that it
//! did. Both steps are in the ledger, so a crash between them only repeats the (idempotent) delete.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use object_store::ObjectStore;
use relay_api::{objects, Metrics};
use relay_raft::sm::{GC_BATCH_MAX, SWEEP_BATCH_MAX};
use relay_raft::{Command, Ledger, Outcome};
use tokio::sync::watch;
use tracing::{debug, warn};

/// Object deletions in flight at once.
const DELETE_CONCURRENCY: usize = 8;

pub async fn run_sweeper(
    ledger: Arc<Ledger>,
    store: Arc<dyn ObjectStore>,
    metrics: Arc<Metrics>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if !ledger.is_leader() {
            continue;
        }
        if let Err(e) = expire_due(&ledger, &metrics).await {
            warn!(error = %e, "sweeper: expiring leases");
        }
        if let Err(e) = collect_garbage(&ledger, &store, &metrics).await {
            warn!(error = %e, "gc: deleting objects");
        }
    }
}

async fn expire_due(ledger: &Ledger, metrics: &Metrics) -> Result<(), relay_raft::LedgerError> {
    // Bounded: a backlog drains over several ticks rather than in one unbounded loop.
    for _ in 0..8 {
        let due = ledger.reader().next_timer_due_ms()?;
        if due.is_none_or(|d| d > ledger.now_ms()) {
            return Ok(());
        }
        match ledger.write(None, Command::ExpireDue { max: SWEEP_BATCH_MAX }).await? {
            Ok(Outcome::Swept {
                expired,
                purged,
                dedup_pruned,
            }) => {
                metrics.leases_expired.inc_by(expired as u64);
                debug!(expired, purged, dedup_pruned, "sweeper: swept");
                if expired < SWEEP_BATCH_MAX && purged < SWEEP_BATCH_MAX && dedup_pruned < SWEEP_BATCH_MAX {
                    return Ok(());
                }
            }
            other => {
                warn!(?other, "sweeper: unexpected answer");
                return Ok(());
            }
        }
    }
    Ok(())
}

async fn collect_garbage(
    ledger: &Ledger,
    store: &Arc<dyn ObjectStore>,
    metrics: &Metrics,
) -> Result<(), relay_raft::LedgerError> {
    let pending = ledger.reader().gc_pending(GC_BATCH_MAX)?;
    metrics.gc_pending.set(pending.len() as i64);
    if pending.is_empty() {
        return Ok(());
    }
    let results: Vec<(String, Result<(), object_store::Error>)> = futures::stream::iter(pending)
        .map(|key| async move {
            let r = objects::delete(store, &key).await;
            (key, r)
        })
        .buffer_unordered(DELETE_CONCURRENCY)
        .collect()
        .await;
    let mut deleted = Vec::new();
    for (key, result) in results {
        match result {
            Ok(()) => deleted.push(key),
            Err(e) => {
                metrics.object_delete_failures.inc();
                warn!(object_key = %key, error = %e, "gc: delete failed; will retry");
            }
        }
    }
    if deleted.is_empty() {
        return Ok(());
    }
    let count = deleted.len() as u64;
    ledger
        .write(None, Command::RecordObjectsDeleted { object_keys: deleted })
        .await?
        .ok();
    metrics.objects_deleted.inc_by(count);
    Ok(())
}

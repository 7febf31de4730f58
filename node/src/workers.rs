//! Background work on the leader: expire due leases, then delete their bytes
//! ([`relay_api::blobs::gc`]).

use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use relay_api::Metrics;
use relay_raft::ops::{ExpireDue, Swept};
use relay_raft::sm::SWEEP_BATCH_MAX;
use relay_raft::Ledger;
use tokio::sync::watch;
use tracing::{debug, warn};

pub async fn run_sweeper(
    ledger: Arc<Ledger>,
    store: Arc<dyn ObjectStore>,
    s3: Option<Arc<object_store::aws::AmazonS3>>,
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
        if let Err(e) = relay_api::blobs::gc::collect_garbage(&ledger, &store, s3.as_ref(), &metrics).await {
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
        match ledger.run(None, ExpireDue { max: SWEEP_BATCH_MAX }).await? {
            Ok(Swept {
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
            Err(rejection) => {
                warn!(%rejection, "sweeper: refused");
                return Ok(());
            }
        }
    }
    Ok(())
}

//! Background work on the leader: expire due leases, then delete their bytes
//! ([`relay_api::blobs::gc`]).

use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use relay_api::Metrics;
use relay_raft::ops::{ExpireDue, Swept};
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

/// Timers one sweep entry processes. Smaller than the ledger's cap (`SWEEP_BATCH_MAX`): every
/// node applies the entry in one go, and reads waiting on the apply queue wait for it, so a mass
/// expiry goes as many short entries rather than a few long ones (measured with
/// `relay-loadtest expiry`: BENCHMARKS.md).
const EXPIRE_PER_ENTRY: u32 = 512;
/// Sweep entries per tick at most, so a backlog drains over several ticks.
const ENTRIES_PER_TICK: usize = 64;

async fn expire_due(ledger: &Ledger, metrics: &Metrics) -> Result<(), relay_raft::LedgerError> {
    for _ in 0..ENTRIES_PER_TICK {
        let due = ledger.reader().next_timer_due_ms()?;
        if due.is_none_or(|d| d > ledger.now_ms()) {
            return Ok(());
        }
        match ledger.run(None, ExpireDue { max: EXPIRE_PER_ENTRY }).await? {
            Ok(Swept {
                expired,
                purged,
                dedup_pruned,
            }) => {
                metrics.leases_expired.inc_by(expired as u64);
                debug!(expired, purged, dedup_pruned, "sweeper: swept");
                if expired < EXPIRE_PER_ENTRY && purged < EXPIRE_PER_ENTRY && dedup_pruned < EXPIRE_PER_ENTRY {
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

//! The orphan sweeper's schedule, on the leader; what it deletes, and when, is
//! [`relay_api::blobs::orphans`].

use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use relay_api::Metrics;
use relay_raft::Ledger;
use tokio::sync::watch;
use tracing::{info, warn};

pub async fn run(
    ledger: Arc<Ledger>,
    store: Arc<dyn ObjectStore>,
    metrics: Arc<Metrics>,
    interval: Duration,
    min_age: Duration,
    mut stop: watch::Receiver<bool>,
) {
    // Where the last pass stopped, when it stopped short of the end (blobs, then scratch).
    let mut after = None;
    let mut after_scratch = None;
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
        match relay_api::blobs::orphans::sweep(&ledger, &store, min_age, after.as_ref()).await {
            Ok(pass) => {
                after = pass.next;
                if pass.deleted > 0 {
                    metrics.orphans_deleted.inc_by(pass.deleted);
                    info!(deleted = pass.deleted, "orphan sweeper: deleted unreferenced objects");
                }
            }
            Err(e) => warn!(error = %e, "orphan sweeper: pass failed; will retry"),
        }
        match relay_api::blobs::orphans::sweep_scratch(&ledger, &store, min_age, after_scratch.as_ref()).await {
            Ok(pass) => {
                after_scratch = pass.next;
                if pass.deleted > 0 {
                    metrics.orphans_deleted.inc_by(pass.deleted);
                    info!(
                        deleted = pass.deleted,
                        "orphan sweeper: deleted unreferenced scratch objects"
                    );
                }
            }
            Err(e) => warn!(error = %e, "orphan sweeper: scratch pass failed; will retry"),
        }
    }
}

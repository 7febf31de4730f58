//! The orphan sweeper, on the leader: deletes blobs nothing in the ledger knows about once they
//! are older than a bound. They come from uploads whose command failed after the bytes were
//! written and whose cleanup failed too (a crash, or the store refusing the delete).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use object_store::path::Path;
use object_store::ObjectStore;
use relay_api::{objects, Metrics};
use relay_raft::Ledger;
use tokio::sync::watch;
use tracing::{info, warn};

/// Objects looked at per pass; the rest wait for the next one.
const SCAN_MAX: usize = 100_000;

pub async fn run(
    ledger: Arc<Ledger>,
    store: Arc<dyn ObjectStore>,
    metrics: Arc<Metrics>,
    interval: Duration,
    min_age: Duration,
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
        match sweep(&ledger, &store, min_age).await {
            Ok(0) => {}
            Ok(n) => {
                metrics.orphans_deleted.inc_by(n);
                info!(deleted = n, "orphan sweeper: deleted unreferenced objects");
            }
            Err(e) => warn!(error = %e, "orphan sweeper: pass failed; will retry"),
        }
    }
}

async fn sweep(ledger: &Ledger, store: &Arc<dyn ObjectStore>, min_age: Duration) -> Result<u64, String> {
    let cutoff = chrono_now() - chrono::Duration::from_std(min_age).map_err(|e| e.to_string())?;
    let mut listing = store.list(Some(&Path::from(objects::BLOB_PREFIX)));
    let mut deleted = 0;
    let mut seen = 0;
    while let Some(meta) = listing.next().await {
        let meta = meta.map_err(|e| e.to_string())?;
        seen += 1;
        if seen > SCAN_MAX {
            break;
        }
        if meta.last_modified > cutoff {
            continue;
        }
        let key = meta.location.to_string();
        if ledger.reader().object_known(&key).map_err(|e| e.to_string())? {
            continue;
        }
        // Still unknown after a read barrier: the leader has applied everything committed.
        if ledger
            .linearizable()
            .await
            .map_err(|e| e.to_string())?
            .object_known(&key)
            .map_err(|e| e.to_string())?
        {
            continue;
        }
        objects::delete(store, &key).await.map_err(|e| e.to_string())?;
        warn!(object_key = %key, age = ?meta.last_modified, "orphan sweeper: deleted an unreferenced object");
        deleted += 1;
    }
    Ok(deleted)
}

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

//! Deleting the bytes of closed leases: the ledger queues their object keys; the leader deletes
//! them from the store and records that it did. A crash between the two only repeats the
//! (idempotent) delete.

use std::sync::Arc;

use futures::StreamExt;
use object_store::ObjectStore;
use relay_raft::ops::RecordObjectsDeleted;
use relay_raft::sm::GC_BATCH_MAX;
use relay_raft::Ledger;
use tracing::warn;

use crate::{objects, Metrics};

/// Object deletions in flight at once.
const DELETE_CONCURRENCY: usize = 8;

/// Deletes up to one batch of queued objects and records the deletions.
pub async fn collect_garbage(
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
        .run(None, RecordObjectsDeleted { object_keys: deleted })
        .await?
        .ok();
    metrics.objects_deleted.inc_by(count);
    Ok(())
}

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
const DELETE_CONCURRENCY: usize = 32;
/// Batches one call deletes at most while a backlog lasts (a mass expiry queues many at once).
const BATCHES_PER_CALL: usize = 16;

/// Aborts the multipart upload `<hex id>/<object key>` names; one already gone counts as aborted.
async fn abort_multipart(s3: Option<&Arc<object_store::aws::AmazonS3>>, rest: &str) -> Result<(), object_store::Error> {
    use object_store::multipart::MultipartStore;
    let parsed = rest
        .split_once('/')
        .and_then(|(id, key)| Some((String::from_utf8(hex::decode(id).ok()?).ok()?, key)));
    let (Some(s3), Some((id, key))) = (s3, parsed) else {
        // Not S3, or not a name this node made: nothing to abort.
        return Ok(());
    };
    match s3.abort_multipart(&object_store::path::Path::from(key), &id).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        // Refused for good (the upload is unknown to this store, or completed): retrying forever
        // would only hold up the queue behind it; the bucket's lifecycle rule is the backstop.
        Err(e @ (object_store::Error::PermissionDenied { .. } | object_store::Error::Precondition { .. })) => {
            tracing::warn!(object_key = key, error = %e, "gc: the store refused to abort a multipart upload; given up");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Deletes queued objects (and aborts queued S3 multipart uploads an upload abandoned, through
/// `s3`) and records the deletions, batch after batch while full ones are queued, up to
/// [`BATCHES_PER_CALL`].
pub async fn collect_garbage(
    ledger: &Ledger,
    store: &Arc<dyn ObjectStore>,
    s3: Option<&Arc<object_store::aws::AmazonS3>>,
    metrics: &Metrics,
) -> Result<(), relay_raft::LedgerError> {
    for _ in 0..BATCHES_PER_CALL {
        if collect_batch(ledger, store, s3, metrics).await? < GC_BATCH_MAX {
            break;
        }
    }
    Ok(())
}

/// One batch: how many objects were queued when it began.
async fn collect_batch(
    ledger: &Ledger,
    store: &Arc<dyn ObjectStore>,
    s3: Option<&Arc<object_store::aws::AmazonS3>>,
    metrics: &Metrics,
) -> Result<usize, relay_raft::LedgerError> {
    let pending = ledger.reader().gc_pending(GC_BATCH_MAX)?;
    let queued = pending.len();
    metrics.gc_pending.set(queued as i64);
    if pending.is_empty() {
        return Ok(0);
    }
    let results: Vec<(String, Result<(), object_store::Error>)> = futures::stream::iter(pending)
        .map(|key| async move {
            let r = match key.strip_prefix(relay_raft::sm::uploads::MULTIPART_GC_PREFIX) {
                Some(rest) => abort_multipart(s3, rest).await,
                None => objects::delete(store, &key).await,
            };
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
        // Every delete failed: no point in trying the same batch again at once.
        return Ok(0);
    }
    let count = deleted.len() as u64;
    ledger
        .run(None, RecordObjectsDeleted { object_keys: deleted })
        .await?
        .ok();
    metrics.objects_deleted.inc_by(count);
    Ok(queued)
}

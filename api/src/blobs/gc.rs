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

/// The leader's garbage collector. It walks the queue with a cursor, so each batch starts where
/// the last one ended instead of stepping over the rows already recorded deleted (RocksDB keeps
/// them as tombstones until compaction, so rescanning them costs a mass expiry time quadratic in
/// its size), and wraps to the start when it reaches the end, which is where failed deletes are
/// retried.
pub struct Collector {
    /// The first key of the next batch ("" is the start of the queue).
    cursor: String,
    /// Where deletes run, when not on the caller's runtime: a local disk's deletes are blocking
    /// system calls, and a runtime whose threads run at a lower CPU priority leaves the cores to
    /// the foreground while both want them.
    background: Option<tokio::runtime::Handle>,
}

impl Collector {
    /// A collector whose deletes run on `background` (a runtime of low-priority threads), or on
    /// the caller's runtime with `None`.
    pub fn new(background: Option<tokio::runtime::Handle>) -> Self {
        Collector {
            cursor: String::new(),
            background,
        }
    }

    /// Deletes queued objects (and aborts queued S3 multipart uploads an upload abandoned, through
    /// `s3`) and records the deletions, batch after batch while full ones are queued, up to
    /// [`BATCHES_PER_CALL`]. A batch's deletions are recorded while the next batch is deleted.
    pub async fn collect(
        &mut self,
        ledger: &Ledger,
        store: &Arc<dyn ObjectStore>,
        s3: Option<&Arc<object_store::aws::AmazonS3>>,
        metrics: &Metrics,
    ) -> Result<(), relay_raft::LedgerError> {
        let mut unrecorded: Vec<String> = Vec::new();
        for _ in 0..BATCHES_PER_CALL {
            let pending = ledger.reader().gc_pending_from(&self.cursor, GC_BATCH_MAX)?;
            let full = pending.len() >= GC_BATCH_MAX;
            self.cursor = match (full, pending.last()) {
                // Just after the last key: `key ‖ 0` is the smallest key greater than it.
                (true, Some(last)) => format!("{last}\0"),
                _ => String::new(),
            };
            metrics.gc_pending.set(pending.len() as i64);
            if pending.is_empty() && unrecorded.is_empty() {
                break;
            }
            let (recorded, results) = futures::join!(
                record(ledger, metrics, std::mem::take(&mut unrecorded)),
                self.delete_batch(store, s3, pending)
            );
            recorded?;
            let deleted = tally(metrics, results);
            // Every delete failing (the store is down) ends the call: the next tick tries again.
            let stop = !full || deleted.is_empty();
            unrecorded = deleted;
            if stop {
                break;
            }
        }
        record(ledger, metrics, unrecorded).await
    }

    /// Deletes one batch, on the background runtime if there is one.
    async fn delete_batch(
        &self,
        store: &Arc<dyn ObjectStore>,
        s3: Option<&Arc<object_store::aws::AmazonS3>>,
        pending: Vec<String>,
    ) -> Vec<(String, Result<(), object_store::Error>)> {
        let Some(background) = &self.background else {
            return delete_all(store, s3, pending).await;
        };
        let (store, s3) = (store.clone(), s3.cloned());
        match background
            .spawn(async move { delete_all(&store, s3.as_ref(), pending).await })
            .await
        {
            Ok(results) => results,
            Err(e) => {
                // The task panicked or its runtime stopped: the whole batch stays queued.
                warn!(error = %e, "gc: the delete task failed; will retry");
                Vec::new()
            }
        }
    }
}

async fn delete_all(
    store: &Arc<dyn ObjectStore>,
    s3: Option<&Arc<object_store::aws::AmazonS3>>,
    pending: Vec<String>,
) -> Vec<(String, Result<(), object_store::Error>)> {
    futures::stream::iter(pending)
        .map(|key| async move {
            let r = match key.strip_prefix(relay_raft::sm::uploads::MULTIPART_GC_PREFIX) {
                Some(rest) => abort_multipart(s3, rest).await,
                None => objects::delete(store, &key).await,
            };
            (key, r)
        })
        .buffer_unordered(DELETE_CONCURRENCY)
        .collect()
        .await
}

/// Counts and logs the failures; returns the keys whose bytes are gone.
fn tally(metrics: &Metrics, results: Vec<(String, Result<(), object_store::Error>)>) -> Vec<String> {
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
    deleted
}

/// Records in the ledger that these objects' bytes are gone.
async fn record(ledger: &Ledger, metrics: &Metrics, deleted: Vec<String>) -> Result<(), relay_raft::LedgerError> {
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

//! Blobs nothing in the ledger knows about: from uploads whose command was refused or whose
//! outcome was never learned, and whose clean-up did not happen. Once older than a bound, and
//! still unknown after a read barrier, they are deleted.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use object_store::path::Path;
use object_store::ObjectStore;
use relay_raft::Ledger;
use tracing::warn;

use crate::objects;

/// Objects looked at per pass; the rest wait for the next one.
const SCAN_MAX: usize = 100_000;

/// One pass: deletes the unreferenced blobs older than `min_age`; returns how many.
pub async fn sweep(ledger: &Ledger, store: &Arc<dyn ObjectStore>, min_age: Duration) -> Result<u64, String> {
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

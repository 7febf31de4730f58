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

/// What a pass did, and where the next one goes on from (`None`: from the start; every blob is
/// reached within `objects / SCAN_MAX + 1` passes, however many live ones come first).
pub struct Pass {
    pub deleted: u64,
    pub next: Option<Path>,
}

/// One pass over up to [`SCAN_MAX`] blobs after `after`: deletes the unreferenced ones older
/// than `min_age`.
pub async fn sweep(
    ledger: &Ledger,
    store: &Arc<dyn ObjectStore>,
    min_age: Duration,
    after: Option<&Path>,
) -> Result<Pass, String> {
    sweep_under(ledger, store, min_age, after, objects::BLOB_PREFIX).await
}

/// [`sweep`] of the scratch tier's objects (`scratch/…`), which a live scratch record references.
pub async fn sweep_scratch(
    ledger: &Ledger,
    store: &Arc<dyn ObjectStore>,
    min_age: Duration,
    after: Option<&Path>,
) -> Result<Pass, String> {
    sweep_under(ledger, store, min_age, after, "scratch").await
}

async fn sweep_under(
    ledger: &Ledger,
    store: &Arc<dyn ObjectStore>,
    min_age: Duration,
    after: Option<&Path>,
    prefix: &str,
) -> Result<Pass, String> {
    let cutoff = chrono_now() - chrono::Duration::from_std(min_age).map_err(|e| e.to_string())?;
    let prefix = Path::from(prefix);
    let mut listing = match after {
        Some(after) => store.list_with_offset(Some(&prefix), after),
        None => store.list(Some(&prefix)),
    };
    let mut deleted = 0;
    let mut seen = 0;
    let mut last = None;
    while let Some(meta) = listing.next().await {
        let meta = meta.map_err(|e| e.to_string())?;
        seen += 1;
        if seen > SCAN_MAX {
            return Ok(Pass { deleted, next: last });
        }
        last = Some(meta.location.clone());
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
    Ok(Pass { deleted, next: None })
}

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

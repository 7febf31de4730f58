//! Backups: a consistent copy of the replicated state (the same rows a Raft snapshot holds), the
//! object keys it stands on, and the restore of that state into a fresh data directory, from which
//! `relay serve` founds a new cluster.
//!
//! The restored state keeps every record as it was, `expires_at` included, but none of the old
//! cluster's Raft identity (its applied log id and membership): the new cluster starts its own log
//! at index 1 on top of the state, so expiry goes on by the original times.

use std::path::Path;

use rocksdb::{WriteBatch, WriteOptions};

use crate::error::StoreError;
use crate::store::keys::{META_LAST_APPLIED, META_MEMBERSHIP};
use crate::store::snapshot::decode_state;
use crate::store::{cf, open_db, STATE_CFS};

pub use crate::store::snapshot::STATE_FORMAT;

/// The object keys the state references (`refs`: key → the lease that stands on it), sorted.
pub fn referenced_objects(snapshot: &[u8]) -> Result<Vec<(String, String)>, StoreError> {
    let data = decode_state("the backup", snapshot)?;
    let refs = STATE_CFS
        .iter()
        .position(|n| *n == "refs")
        .expect("refs is a state column family") as u8;
    let mut out: Vec<(String, String)> = data
        .rows
        .into_iter()
        .filter(|(i, _, _)| *i == refs)
        .map(|(_, k, v)| {
            (
                String::from_utf8_lossy(&k).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            )
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Why a restore did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("{0} already holds a ledger: restore only into a new data directory")]
    NotEmpty(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Writes the state in `snapshot` into a new ledger database under `ledger_dir` (`<dir>/db`),
/// leaving out the old cluster's applied log id and membership. Returns the rows written.
///
/// The database is built beside (`restoring.tmp`) and renamed into place once synced: a restore
/// that stops half way leaves no `db` that a node would take for a cluster.
pub fn restore_into(ledger_dir: &Path, snapshot: &[u8]) -> Result<usize, RestoreError> {
    if ledger_dir.exists() {
        return Err(RestoreError::NotEmpty(ledger_dir.display().to_string()));
    }
    let data = decode_state("the backup", snapshot)?;
    std::fs::create_dir_all(ledger_dir).map_err(StoreError::from)?;
    let tmp = ledger_dir.join("restoring.tmp");
    let written = write_rows(&tmp, data)?;
    std::fs::rename(&tmp, ledger_dir.join("db")).map_err(StoreError::from)?;
    std::fs::File::open(ledger_dir)
        .and_then(|d| d.sync_all())
        .map_err(StoreError::from)?;
    Ok(written)
}

fn write_rows(db_path: &Path, data: crate::store::snapshot::SnapshotData) -> Result<usize, RestoreError> {
    let db = open_db(db_path)?;
    let mut batch = WriteBatch::default();
    let mut written = 0;
    for (i, k, v) in data.rows {
        let name = STATE_CFS.get(i as usize).ok_or(StoreError::MissingCf("backup row"))?;
        if *name == "meta" && (k == META_LAST_APPLIED || k == META_MEMBERSHIP) {
            continue;
        }
        batch.put_cf(cf(&db, name)?, k, v);
        written += 1;
    }
    let mut opts = WriteOptions::default();
    opts.set_sync(true);
    db.write_opt(batch, &opts).map_err(StoreError::from)?;
    db.flush_wal(true).map_err(StoreError::from)?;
    Ok(written)
}

//! Snapshots: every state column family as of one applied log id, written to one file.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::{SnapshotMeta, StoredMembership};
use rocksdb::{IteratorMode, WriteBatch, WriteOptions, DB};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::store::keys::{META_LAST_APPLIED, META_MEMBERSHIP};
use crate::store::{cf, decode, encode, STATE_CFS};
use crate::{NodeId, RelayNode};

pub type Meta = SnapshotMeta<NodeId, RelayNode>;

/// The encoding of a snapshot's (and a backup's) state; one in another format is refused.
pub const STATE_FORMAT: u32 = 1;

/// The state as (column family index, key, value) rows, with the format they are in.
#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
pub struct SnapshotData {
    pub format: u32,
    pub rows: Vec<(u8, Vec<u8>, Vec<u8>)>,
}

impl Default for SnapshotData {
    fn default() -> Self {
        SnapshotData {
            format: STATE_FORMAT,
            rows: Vec::new(),
        }
    }
}

/// Decodes a snapshot's state, refusing one in another format before reading its rows.
pub fn decode_state(what: &'static str, bytes: &[u8]) -> Result<SnapshotData, StoreError> {
    // The format is the first field: read it alone, so rows in an unknown layout are never parsed.
    let format: u32 = decode(what, bytes.get(..4).unwrap_or(bytes))?;
    if format != STATE_FORMAT {
        return Err(StoreError::format(what, format, STATE_FORMAT));
    }
    decode(what, bytes)
}

/// Reads all state column families from one consistent RocksDB snapshot. Returns the applied log
/// id and membership as of that snapshot too, so data and metadata always agree.
pub fn capture(
    db: &DB,
) -> Result<
    (
        Option<openraft::LogId<NodeId>>,
        StoredMembership<NodeId, RelayNode>,
        Vec<u8>,
    ),
    StoreError,
> {
    let snap = db.snapshot();
    let meta_cf = cf(db, "meta")?;
    let last_applied = match snap.get_cf(meta_cf, META_LAST_APPLIED)? {
        Some(b) => decode("meta", &b)?,
        None => None,
    };
    let membership = match snap.get_cf(meta_cf, META_MEMBERSHIP)? {
        Some(b) => decode("meta", &b)?,
        None => StoredMembership::default(),
    };
    let mut data = SnapshotData::default();
    for (i, name) in STATE_CFS.iter().enumerate() {
        for item in snap.iterator_cf(cf(db, name)?, IteratorMode::Start) {
            let (k, v) = item?;
            data.rows.push((i as u8, k.to_vec(), v.to_vec()));
        }
    }
    Ok((last_applied, membership, encode(&data)?))
}

/// Replaces the whole state with `bytes`, in one synced write batch.
pub fn restore(db: &DB, bytes: &[u8]) -> Result<(), StoreError> {
    let data = decode_state("the snapshot", bytes)?;
    let mut batch = WriteBatch::default();
    for name in STATE_CFS {
        let handle = cf(db, name)?;
        for item in db.iterator_cf(handle, IteratorMode::Start) {
            let (k, _) = item?;
            batch.delete_cf(handle, k);
        }
    }
    for (i, k, v) in data.rows {
        let name = STATE_CFS.get(i as usize).ok_or(StoreError::MissingCf("snapshot row"))?;
        batch.put_cf(cf(db, name)?, k, v);
    }
    let mut opts = WriteOptions::default();
    opts.set_sync(true);
    db.write_opt(batch, &opts)?;
    Ok(())
}

/// The latest snapshot on disk, kept so followers and restarts can use it.
pub struct SnapshotFile {
    path: PathBuf,
    /// One past the last log index the snapshot on disk covers (0: none), set once it is durable:
    /// the log store purges nothing the snapshot does not cover.
    durable: Arc<AtomicU64>,
}

impl SnapshotFile {
    pub fn new(dir: &Path) -> Result<Self, StoreError> {
        fs::create_dir_all(dir)?;
        let file = SnapshotFile {
            path: dir.join("current.snap"),
            durable: Arc::new(AtomicU64::new(0)),
        };
        if let Some((meta, _)) = file.load()? {
            file.durable.store(covered(&meta), Ordering::Release);
        }
        Ok(file)
    }

    /// One past the last log index the durable snapshot covers, shared with the log store.
    pub fn durable(&self) -> Arc<AtomicU64> {
        self.durable.clone()
    }

    /// Writes atomically: temp file, fsync, rename, fsync the directory.
    pub fn save(&self, meta: &Meta, data: &[u8]) -> Result<(), StoreError> {
        let tmp = self.path.with_extension("tmp");
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&encode(&(meta, data))?)?;
        f.sync_all()?;
        fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            fs::File::open(dir)?.sync_all()?;
        }
        self.durable.fetch_max(covered(meta), Ordering::AcqRel);
        Ok(())
    }

    pub fn load(&self) -> Result<Option<(Meta, Vec<u8>)>, StoreError> {
        match fs::read(&self.path) {
            Ok(bytes) => Ok(Some(decode("snapshot file", &bytes)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// One past the last log index `meta` covers.
fn covered(meta: &Meta) -> u64 {
    meta.last_log_id.map(|id| id.index + 1).unwrap_or(0)
}

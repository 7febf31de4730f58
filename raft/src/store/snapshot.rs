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
///
/// The rows are written straight into the encoded state (the layout `bincode` gives
/// [`SnapshotData`]), never collected as one small allocation per key and value first: at 10^6
/// leases that was millions of them, more than the state's own size again, and a heap that did
/// not shrink after the snapshot was sent (`relay-loadtest scale`, BENCHMARKS.md).
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
    let mut out = Vec::new();
    out.extend_from_slice(&STATE_FORMAT.to_le_bytes());
    // The row count, filled in once known.
    out.extend_from_slice(&0u64.to_le_bytes());
    let mut count = 0u64;
    for (i, name) in STATE_CFS.iter().enumerate() {
        for item in snap.iterator_cf(cf(db, name)?, IteratorMode::Start) {
            let (k, v) = item?;
            out.push(i as u8);
            for field in [&k, &v] {
                out.extend_from_slice(&(field.len() as u64).to_le_bytes());
                out.extend_from_slice(field);
            }
            count += 1;
        }
    }
    out[4..12].copy_from_slice(&count.to_le_bytes());
    Ok((last_applied, membership, out))
}

/// The rows of an encoded state, read in place (see [`capture`] for the layout). The format is
/// checked before any row is read; a truncated row is an error.
pub struct Rows<'a> {
    what: &'static str,
    rest: &'a [u8],
    left: u64,
}

/// A row: its column family's index in [`STATE_CFS`], its key and its value.
pub type Row<'a> = (u8, &'a [u8], &'a [u8]);

pub fn rows<'a>(what: &'static str, bytes: &'a [u8]) -> Result<Rows<'a>, StoreError> {
    let format: u32 = decode(what, bytes.get(..4).unwrap_or(bytes))?;
    if format != STATE_FORMAT {
        return Err(StoreError::format(what, format, STATE_FORMAT));
    }
    let mut rows = Rows {
        what,
        rest: &bytes[4..],
        left: 0,
    };
    rows.left = rows.u64()?;
    Ok(rows)
}

impl<'a> Rows<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.rest.len() < n {
            return Err(StoreError::Decode {
                cf: self.what,
                source: Box::new(bincode::ErrorKind::Io(std::io::ErrorKind::UnexpectedEof.into())),
            });
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, StoreError> {
        let bytes = self.take(8)?;
        Ok(u64::from_le_bytes(bytes.try_into().unwrap_or_default()))
    }

    fn field(&mut self) -> Result<&'a [u8], StoreError> {
        let len = self.u64()?;
        // A length beyond what is left is a truncated (or damaged) state, not an allocation.
        self.take(usize::try_from(len).unwrap_or(usize::MAX))
    }

    fn row(&mut self) -> Result<Row<'a>, StoreError> {
        let cf = self.take(1)?[0];
        let key = self.field()?;
        Ok((cf, key, self.field()?))
    }
}

impl<'a> Iterator for Rows<'a> {
    type Item = Result<Row<'a>, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let row = self.row();
        if row.is_err() {
            self.left = 0;
        }
        Some(row)
    }
}

/// Checks that `bytes` is a whole state in this format, reading every row in place.
pub fn validate(what: &'static str, bytes: &[u8]) -> Result<(), StoreError> {
    for row in rows(what, bytes)? {
        let (i, _, _) = row?;
        if usize::from(i) >= STATE_CFS.len() {
            return Err(StoreError::MissingCf("snapshot row"));
        }
    }
    Ok(())
}

/// Replaces the whole state with `bytes`, in one synced write batch (nothing is written if any
/// row is unreadable).
pub fn restore(db: &DB, bytes: &[u8]) -> Result<(), StoreError> {
    let rows = rows("the snapshot", bytes)?;
    let mut batch = WriteBatch::default();
    for name in STATE_CFS {
        let handle = cf(db, name)?;
        for item in db.iterator_cf(handle, IteratorMode::Start) {
            let (k, _) = item?;
            batch.delete_cf(handle, k);
        }
    }
    for row in rows {
        let (i, k, v) = row?;
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
        // `(meta, data)` as bincode lays it out, without a second copy of the state.
        f.write_all(&encode(meta)?)?;
        f.write_all(&(data.len() as u64).to_le_bytes())?;
        f.write_all(data)?;
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
            Ok(bytes) => Ok(Some(split_file(bytes)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// A snapshot file's `(meta, data)`, with the data moved to the front of the file's own buffer
/// rather than copied out of it.
fn split_file(mut bytes: Vec<u8>) -> Result<(Meta, Vec<u8>), StoreError> {
    let what = "snapshot file";
    // From the slice (which checks every length against what is left), never from a reader
    // (which allocates a damaged length before finding the bytes missing).
    let meta: Meta = decode(what, &bytes)?;
    let start = bincode::serialized_size(&meta).map_err(|source| StoreError::Decode { cf: what, source })? as usize;
    let len: u64 = decode(what, bytes.get(start..).unwrap_or_default())?;
    let data_start = start + 8;
    if (bytes.len() - data_start.min(bytes.len())) as u64 != len {
        return Err(StoreError::Decode {
            cf: what,
            source: Box::new(bincode::ErrorKind::Io(std::io::ErrorKind::UnexpectedEof.into())),
        });
    }
    bytes.drain(..data_start);
    Ok((meta, bytes))
}

/// One past the last log index `meta` covers.
fn covered(meta: &Meta) -> u64 {
    meta.last_log_id.map(|id| id.index + 1).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SnapshotData {
        SnapshotData {
            format: STATE_FORMAT,
            rows: vec![
                (0, b"a".to_vec(), b"1".to_vec()),
                (3, Vec::new(), vec![7; 300]),
                (5, b"key".to_vec(), Vec::new()),
            ],
        }
    }

    #[test]
    fn rows_read_in_place_what_bincode_wrote_and_refuse_every_truncation() {
        let bytes = encode(&sample()).unwrap();
        let read: Vec<(u8, Vec<u8>, Vec<u8>)> = rows("t", &bytes)
            .unwrap()
            .map(|r| r.map(|(i, k, v)| (i, k.to_vec(), v.to_vec())))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(read, sample().rows);
        validate("t", &bytes).unwrap();
        for cut in 0..bytes.len() {
            assert!(
                validate("t", &bytes[..cut]).is_err(),
                "a state cut at {cut} bytes was accepted"
            );
        }
        let mut other = bytes.clone();
        other[..4].copy_from_slice(&(STATE_FORMAT + 1).to_le_bytes());
        assert!(validate("t", &other).is_err());
    }

    #[test]
    fn a_snapshot_file_reads_back_and_so_does_one_a_previous_binary_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let file = SnapshotFile::new(dir.path()).unwrap();
        let meta = Meta {
            last_log_id: Some(openraft::LogId::new(openraft::CommittedLeaderId::new(2, 1), 41)),
            last_membership: StoredMembership::default(),
            snapshot_id: "2-1-41-0".into(),
        };
        let data = encode(&sample()).unwrap();
        file.save(&meta, &data).unwrap();
        assert_eq!(file.load().unwrap(), Some((meta.clone(), data.clone())));
        // Written whole by bincode, as binaries before the in-place layout did.
        fs::write(dir.path().join("current.snap"), encode(&(&meta, &data)).unwrap()).unwrap();
        assert_eq!(file.load().unwrap(), Some((meta, data)));
        // A file cut short is an error, not a shorter state.
        let whole = fs::read(dir.path().join("current.snap")).unwrap();
        fs::write(dir.path().join("current.snap"), &whole[..whole.len() - 1]).unwrap();
        assert!(file.load().is_err());
    }
}

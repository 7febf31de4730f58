//! The state machine store: applies committed entries to the state column families.
//!
//! Each entry's effects and its `last_applied` go into one RocksDB write batch, so a restart
//! never re-applies or skips an entry. The batch is not fsynced on its own: the Raft log is, and
//! entries after `last_applied` are re-applied from it after a crash.

use std::io::Cursor;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, StorageError, StoredMembership};
use rocksdb::DB;

use crate::command::Outcome;
use crate::error::StoreError;
use crate::sm::apply_entry;
use crate::store::keys::{META_LAST_APPLIED, META_MEMBERSHIP};
use crate::store::snapshot::{self, Meta, SnapshotFile};
use crate::store::txn::Txn;
use crate::{NodeId, RelayNode, Response, TypeConfig};

type SResult<T> = Result<T, StorageError<NodeId>>;

#[derive(Clone)]
pub struct StateMachineStore {
    db: Arc<DB>,
    snapshots: Arc<SnapshotFile>,
    snapshot_seq: Arc<AtomicU64>,
}

impl StateMachineStore {
    /// One past the last log index the snapshot on disk covers (see [`LogStore::new`]).
    ///
    /// [`LogStore::new`]: crate::store::LogStore::new
    pub fn durable_snapshot(&self) -> Arc<AtomicU64> {
        self.snapshots.durable()
    }

    pub fn new(db: Arc<DB>, snapshot_dir: &Path) -> Result<Self, StoreError> {
        Ok(StateMachineStore {
            db,
            snapshots: Arc::new(SnapshotFile::new(snapshot_dir)?),
            snapshot_seq: Arc::new(AtomicU64::new(0)),
        })
    }

    fn apply_entry(&self, entry: &Entry<TypeConfig>) -> Result<Response, StoreError> {
        let mut txn = Txn::new(&self.db);
        let response = match &entry.payload {
            EntryPayload::Blank => Ok(Outcome::Noop),
            EntryPayload::Normal(request) => {
                let (response, last) = apply_entry(&self.db, request)?;
                txn = last;
                response
            }
            EntryPayload::Membership(m) => {
                txn.put(
                    "meta",
                    META_MEMBERSHIP,
                    &StoredMembership::new(Some(entry.log_id), m.clone()),
                )?;
                Ok(Outcome::Noop)
            }
        };
        txn.put("meta", META_LAST_APPLIED, &Some(entry.log_id))?;
        self.db.write(txn.into_batch())?;
        Ok(response)
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> SResult<Snapshot<TypeConfig>> {
        // Reading the whole state takes a while on a big ledger: off the async workers, so
        // requests are not stalled behind it (on 2 cores they would be).
        let db = self.db.clone();
        let (last_log_id, last_membership, data) =
            tokio::task::spawn_blocking(move || snapshot::capture(&db))
                .await
                .map_err(|e| StoreError::Io(std::io::Error::other(format!("snapshot task: {e}"))))??;
        let seq = self.snapshot_seq.fetch_add(1, Ordering::Relaxed);
        let snapshot_id = match last_log_id {
            Some(id) => format!("{}-{}-{}-{seq}", id.leader_id.term, id.leader_id.node_id, id.index),
            None => format!("empty-{seq}"),
        };
        let meta = Meta {
            last_log_id,
            last_membership,
            snapshot_id,
        };
        self.snapshots.save(&meta, &data)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> SResult<(Option<LogId<NodeId>>, StoredMembership<NodeId, RelayNode>)> {
        let meta_cf = crate::store::cf(&self.db, "meta")?;
        let last_applied = match self.db.get_cf(meta_cf, META_LAST_APPLIED).map_err(StoreError::from)? {
            Some(b) => crate::store::decode("meta", &b)?,
            None => None,
        };
        let membership = match self.db.get_cf(meta_cf, META_MEMBERSHIP).map_err(StoreError::from)? {
            Some(b) => crate::store::decode("meta", &b)?,
            None => StoredMembership::default(),
        };
        Ok((last_applied, membership))
    }

    async fn apply<I>(&mut self, entries: I) -> SResult<Vec<Response>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut responses = Vec::new();
        for entry in entries {
            responses.push(self.apply_entry(&entry)?);
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> SResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(&mut self, meta: &Meta, snapshot: Box<Cursor<Vec<u8>>>) -> SResult<()> {
        let data = snapshot.into_inner();
        // Refuse a state in another format before it replaces anything.
        snapshot::validate("the snapshot", &data)?;
        // The file first: a state restored to index N always has a snapshot on disk covering N,
        // whatever moment a crash picks (the log store waits for both before purging to N).
        self.snapshots.save(meta, &data)?;
        snapshot::restore(&self.db, &data)?;
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> SResult<Option<Snapshot<TypeConfig>>> {
        Ok(self.snapshots.load()?.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}

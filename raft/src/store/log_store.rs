//! The Raft log and vote in RocksDB (`log` and `raft` column families), fsynced on every append.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{Entry, LogId, OptionalSend, StorageError, Vote};
use rocksdb::{Direction, IteratorMode, WriteBatch, WriteOptions, DB};

use crate::error::StoreError;
use crate::store::keys::{self, RAFT_COMMITTED, RAFT_LAST_PURGED, RAFT_VOTE};
use crate::store::{cf, decode, encode};
use crate::{NodeId, TypeConfig};

type SResult<T> = Result<T, StorageError<NodeId>>;

#[derive(Clone)]
pub struct LogStore {
    db: Arc<DB>,
    /// One past the last log index the snapshot on disk covers (from the state machine store);
    /// `None` purges at once (openraft's conformance suite, which has no state machine behind it).
    durable_snapshot: Option<Arc<AtomicU64>>,
}

/// How long a purge waits for the state it needs to be on disk before it refuses.
const PURGE_WAIT: Duration = Duration::from_secs(60);

impl LogStore {
    /// A log store that purges only what the snapshot on disk (`durable_snapshot`, from
    /// [`crate::store::StateMachineStore::durable_snapshot`]) and the applied state cover.
    pub fn new(db: Arc<DB>, durable_snapshot: Arc<AtomicU64>) -> Self {
        LogStore {
            db,
            durable_snapshot: Some(durable_snapshot),
        }
    }

    /// A log store that purges whatever it is asked to (for storage conformance tests only).
    pub fn unguarded(db: Arc<DB>) -> Self {
        LogStore {
            db,
            durable_snapshot: None,
        }
    }

    /// Whether the state up to `index` is applied and covered by the snapshot on disk, so the log
    /// up to it is no longer needed to rebuild this node.
    fn covered(&self, index: u64) -> Result<bool, StoreError> {
        let Some(durable) = &self.durable_snapshot else {
            return Ok(true);
        };
        if durable.load(Ordering::Acquire) <= index {
            return Ok(false);
        }
        let applied: Option<LogId<NodeId>> = match self.db.get_cf(cf(&self.db, "meta")?, keys::META_LAST_APPLIED)? {
            Some(bytes) => decode("meta", &bytes)?,
            None => None,
        };
        Ok(applied.is_some_and(|id| id.index >= index))
    }

    fn get_meta<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StoreError> {
        match self.db.get_cf(cf(&self.db, "raft")?, key)? {
            Some(bytes) => Ok(Some(decode("raft", &bytes)?)),
            None => Ok(None),
        }
    }

    fn put_meta_synced<T: serde::Serialize>(&self, key: &[u8], value: &T) -> Result<(), StoreError> {
        self.db
            .put_cf_opt(cf(&self.db, "raft")?, key, encode(value)?, &synced())?;
        Ok(())
    }

    fn last_entry_id(&self) -> Result<Option<LogId<NodeId>>, StoreError> {
        let mut iter = self.db.iterator_cf(cf(&self.db, "log")?, IteratorMode::End);
        match iter.next() {
            Some(item) => {
                let (_, v) = item?;
                let entry: Entry<TypeConfig> = decode("log", &v)?;
                Ok(Some(entry.log_id))
            }
            None => Ok(None),
        }
    }
}

fn synced() -> WriteOptions {
    let mut opts = WriteOptions::default();
    opts.set_sync(true);
    opts
}

fn start_index(range: &impl RangeBounds<u64>) -> u64 {
    match range.start_bound() {
        Bound::Included(i) => *i,
        Bound::Excluded(i) => i + 1,
        Bound::Unbounded => 0,
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> SResult<Vec<Entry<TypeConfig>>> {
        let start = keys::log_index(start_index(&range));
        let log_cf = cf(&self.db, "log")?;
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(log_cf, IteratorMode::From(&start, Direction::Forward))
        {
            let (k, v) = item.map_err(StoreError::from)?;
            let index = keys::parse_u64(&k).unwrap_or(u64::MAX);
            if !range.contains(&index) {
                break;
            }
            out.push(decode("log", &v)?);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> SResult<LogState<TypeConfig>> {
        let last_purged_log_id: Option<LogId<NodeId>> = self.get_meta(RAFT_LAST_PURGED)?;
        let last_log_id = self.last_entry_id()?.or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> SResult<()> {
        Ok(self.put_meta_synced(RAFT_VOTE, vote)?)
    }

    async fn read_vote(&mut self) -> SResult<Option<Vote<NodeId>>> {
        Ok(self.get_meta(RAFT_VOTE)?)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> SResult<()> {
        // Not fsynced: losing it only means re-learning the commit index from the leader.
        let raft_cf = cf(&self.db, "raft")?;
        self.db
            .put_cf(raft_cf, RAFT_COMMITTED, encode(&committed)?)
            .map_err(StoreError::from)?;
        Ok(())
    }

    async fn read_committed(&mut self) -> SResult<Option<LogId<NodeId>>> {
        Ok(self.get_meta::<Option<LogId<NodeId>>>(RAFT_COMMITTED)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> SResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let log_cf = cf(&self.db, "log")?;
        let mut batch = WriteBatch::default();
        for entry in entries {
            batch.put_cf(log_cf, keys::log_index(entry.log_id.index), encode(&entry)?);
        }
        let result = self.db.write_opt(batch, &synced());
        let io_result = result
            .as_ref()
            .map(|_| ())
            .map_err(|e| std::io::Error::other(e.to_string()));
        callback.log_io_completed(io_result);
        result.map_err(StoreError::from)?;
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> SResult<()> {
        let log_cf = cf(&self.db, "log")?;
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(log_cf, keys::log_index(log_id.index), keys::log_index(u64::MAX));
        batch.delete_cf(log_cf, keys::log_index(u64::MAX));
        self.db.write_opt(batch, &synced()).map_err(StoreError::from)?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> SResult<()> {
        // openraft asks to purge the log behind a snapshot it is installing while the state
        // machine may still be writing it: a crash then would leave the log purged past both the
        // snapshot on disk and the applied state, and the node could never start again. Wait
        // until both cover the purge point.
        let deadline = tokio::time::Instant::now() + PURGE_WAIT;
        while !self.covered(log_id.index)? {
            if tokio::time::Instant::now() >= deadline {
                return Err(StoreError::Io(std::io::Error::other(format!(
                    "purge to {} waited {PURGE_WAIT:?} for the snapshot and applied state to cover it",
                    log_id.index
                )))
                .into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Record the purge point first: a crash in between leaves extra entries, never a hole.
        self.put_meta_synced(RAFT_LAST_PURGED, &log_id)?;
        let log_cf = cf(&self.db, "log")?;
        self.db
            .delete_range_cf(log_cf, keys::log_index(0), keys::log_index(log_id.index + 1))
            .map_err(StoreError::from)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use openraft::storage::{RaftLogStorage, RaftSnapshotBuilder, RaftStateMachine};
    use openraft::{CommittedLeaderId, LogId};

    use super::*;
    use crate::store::{open_db, StateMachineStore};

    /// openraft may purge the log behind a snapshot it is still installing: the purge waits until
    /// the snapshot on disk and the applied state cover it, so no crash leaves the log purged past
    /// what this node can rebuild from.
    #[tokio::test]
    async fn a_purge_waits_for_the_snapshot_and_applied_state_to_cover_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_db(&dir.path().join("db")).unwrap();
        let mut sm = StateMachineStore::new(db.clone(), &dir.path().join("snapshots")).unwrap();
        let mut log = LogStore::new(db.clone(), sm.durable_snapshot());
        let at = LogId::new(CommittedLeaderId::new(1, 1), 10);
        let purge = tokio::spawn({
            let mut log = log.clone();
            async move { log.purge(at).await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!purge.is_finished(), "nothing covers index 10 yet");
        assert!(log.get_log_state().await.unwrap().last_purged_log_id.is_none());
        // The state reaches 10 and a snapshot of it is made durable: now the purge goes ahead.
        db.put_cf(
            crate::store::cf(&db, "meta").unwrap(),
            keys::META_LAST_APPLIED,
            encode(&Some(at)).unwrap(),
        )
        .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!purge.is_finished(), "applied, but no snapshot on disk covers it");
        sm.get_snapshot_builder().await.build_snapshot().await.unwrap();
        purge.await.unwrap().unwrap();
        assert_eq!(log.get_log_state().await.unwrap().last_purged_log_id, Some(at));
    }
}

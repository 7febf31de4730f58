//! RocksDB: one database, one column family per record type.
//!
//! State column families hold only what `apply` writes, together with `meta` (last applied log id,
//! membership, cluster clock) so that one write batch moves state and `last_applied` together.
//! The Raft log and vote live in `log` and `raft`, outside snapshots.

pub mod keys;
pub mod log_store;
pub mod snapshot;
pub mod state_machine;
pub mod txn;

use std::path::Path;
use std::sync::Arc;

use rocksdb::{BlockBasedOptions, Cache, ColumnFamilyDescriptor, Options, DB};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::StoreError;

pub use log_store::LogStore;
pub use state_machine::StateMachineStore;

/// Column families that make up the replicated state (and so the snapshots).
pub const STATE_CFS: &[&str] = &[
    "meta",
    "accounts",
    "api_keys",
    "leases",
    "by_owner",
    "expiry",
    "gc",
    "dedup",
    "checkpoints",
    "bodies",
    "drop_tokens",
    "messages",
    "webhooks",
    "handoffs",
    "handoff_tokens",
    "handoffs_by_lease",
    "refs",
    // Appended, never inserted: snapshots name column families by their index here.
    "admin_keys",
    "x402",
    "sessions",
    "account_keys",
    "charges",
    // Batons: entries (lease_id ‖ 0 ‖ seq), sharing tokens (by hash) and their index
    // (lease_id ‖ 0 ‖ token_id), live batons per owner, replaced objects held for readers.
    "baton_entries",
    "baton_tokens",
    "baton_token_ids",
    "baton_owners",
    "baton_retired",
    // Uploads: records ("u" ‖ upload_id), pending leases ("l" ‖ lease_id), live scratch
    // objects per owner ("o" ‖ owner ‖ 0 ‖ upload_id) and scratch input keys ("s" ‖ input_key).
    "uploads",
    // The witness log: its size ("n"), latest checkpoint ("k"), complete-subtree hashes
    // ("h" ‖ level ‖ index), records ("r" ‖ index) and records per baton ("b" ‖ id ‖ 0 ‖ index).
    "witness",
];
/// The most files RocksDB keeps open (it closes and reopens the rest as needed), so the node's
/// file descriptors are bounded and client connections can be capped around them.
pub const ROCKSDB_MAX_OPEN_FILES: i32 = 256;
/// Memtables of every column family together, at most (flushed to SST files beyond it). At 64 MiB
/// (16 MiB per family) a fill from 10^5 to 10^6 leases ran at 1 000 creates/s against 2 400 with
/// RocksDB's defaults: many small flushes, and compactions of them on the same cores
/// (`relay-loadtest scale`, BENCHMARKS.md).
pub const MEMTABLE_BUDGET_BYTES: usize = 128 << 20;
/// The one block cache (data, index and filter blocks) every column family shares.
pub const BLOCK_CACHE_BYTES: usize = 64 << 20;
/// Bloom filter bits per key: a lookup of a key that is absent (a new idempotency key, a free
/// lease id) then skips the SST files instead of reading an index and a block in each.
const BLOOM_BITS_PER_KEY: f64 = 10.0;

/// Column families private to this node's Raft log.
pub const LOG_CFS: &[&str] = &["log", "raft"];

/// The on-disk format of the ledger database (its column families and record encodings). A
/// database carries it in the `raft` column family; a node refuses one in any other format.
pub const DATA_FORMAT: u32 = 2;
/// Older formats this binary opens and re-marks as [`DATA_FORMAT`]: format 2 only added a log
/// command (`RecordAccesses`), which an older binary could not read, so the mark keeps one from
/// opening the database again.
const READABLE_DATA_FORMATS: &[u32] = &[1];
/// Where the database keeps [`DATA_FORMAT`] (in `raft`, outside snapshots: each node's own).
const DATA_FORMAT_KEY: &[u8] = b"data_format";

/// Opens (creating if needed) the ledger database, checks every column family exists and that
/// the database is in [`DATA_FORMAT`] (a new one is marked with it).
pub fn open_db(path: &Path) -> Result<Arc<DB>, StoreError> {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    // Bounded background work on a 2-core machine; RocksDB picks sensible sizes otherwise.
    opts.increase_parallelism(2);
    opts.set_max_total_wal_size(256 << 20);
    opts.set_max_open_files(ROCKSDB_MAX_OPEN_FILES);
    // Memory that does not grow with the data: every column family's memtables share one budget,
    // and its blocks, indexes and filters one cache (by default each family has its own 64 MiB
    // memtables and 32 MiB cache, and SST indexes live outside any cache).
    opts.set_db_write_buffer_size(MEMTABLE_BUDGET_BYTES);
    let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(&cache);
    table.set_cache_index_and_filter_blocks(true);
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    table.set_bloom_filter(BLOOM_BITS_PER_KEY, false);
    let cfs = STATE_CFS.iter().chain(LOG_CFS).map(|name| {
        let mut cf_opts = Options::default();
        cf_opts.set_block_based_table_factory(&table);
        cf_opts.set_write_buffer_size(MEMTABLE_BUDGET_BYTES / 4);
        ColumnFamilyDescriptor::new(*name, cf_opts)
    });
    let db = DB::open_cf_descriptors(&opts, path, cfs)?;
    for name in STATE_CFS.iter().chain(LOG_CFS) {
        db.cf_handle(name).ok_or(StoreError::MissingCf(name))?;
    }
    let raft = cf(&db, "raft")?;
    match db.get_cf(raft, DATA_FORMAT_KEY)? {
        Some(bytes) => {
            let found = <[u8; 4]>::try_from(bytes.as_slice())
                .map(u32::from_le_bytes)
                .map_err(|_| StoreError::Missing("a readable data format marker".into()))?;
            if READABLE_DATA_FORMATS.contains(&found) {
                mark_format(&db)?;
                tracing::info!(from = found, to = DATA_FORMAT, "ledger: data directory format upgraded");
            } else if found != DATA_FORMAT {
                return Err(StoreError::format("the data directory", found, DATA_FORMAT));
            }
        }
        // A database with a log or a vote but no marker predates format 1: its records are not
        // in format 1 (membership and snapshots changed with it), so nothing is read from it.
        None if ["raft", "log"].iter().any(|name| {
            cf(&db, name).is_ok_and(|h| db.iterator_cf(h, rocksdb::IteratorMode::Start).next().is_some())
        }) =>
        {
            return Err(StoreError::format("the data directory", 0, DATA_FORMAT));
        }
        // A new database: mark it.
        None => mark_format(&db)?,
    }
    Ok(Arc::new(db))
}

/// Marks the database as [`DATA_FORMAT`], durably.
fn mark_format(db: &DB) -> Result<(), StoreError> {
    let mut opts = rocksdb::WriteOptions::default();
    opts.set_sync(true);
    let mut batch = rocksdb::WriteBatch::default();
    batch.put_cf(cf(db, "raft")?, DATA_FORMAT_KEY, DATA_FORMAT.to_le_bytes());
    db.write_opt(batch, &opts)?;
    Ok(())
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    bincode::serialize(value).map_err(StoreError::Encode)
}

pub(crate) fn decode<T: DeserializeOwned>(cf: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    bincode::deserialize(bytes).map_err(|source| StoreError::Decode { cf, source })
}

pub(crate) fn cf<'a>(db: &'a DB, name: &'static str) -> Result<&'a rocksdb::ColumnFamily, StoreError> {
    db.cf_handle(name).ok_or(StoreError::MissingCf(name))
}

#[cfg(test)]
mod format_tests {
    use super::*;

    fn set_marker(path: &Path, format: u32) {
        let db = open_db(path).expect("open");
        db.put_cf(cf(&db, "raft").unwrap(), DATA_FORMAT_KEY, format.to_le_bytes())
            .expect("mark");
    }

    fn marker(path: &Path) -> u32 {
        let db = open_db(path).expect("open");
        let bytes = db.get_cf(cf(&db, "raft").unwrap(), DATA_FORMAT_KEY).unwrap().unwrap();
        u32::from_le_bytes(bytes.as_slice().try_into().unwrap())
    }

    #[test]
    fn an_older_readable_format_is_upgraded_and_an_unknown_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(marker(dir.path()), DATA_FORMAT, "a new database is marked");
        set_marker(dir.path(), 1);
        assert_eq!(marker(dir.path()), DATA_FORMAT, "format 1 opens and is re-marked");
        set_marker(dir.path(), 7);
        let Err(refused) = open_db(dir.path()) else {
            panic!("format 7 opened")
        };
        let refused = refused.to_string();
        assert!(
            refused.contains('7') && refused.contains(&DATA_FORMAT.to_string()),
            "{refused}"
        );
    }
}

//! A state transaction: reads come from the database as of the start of the command, writes
//! collect in one `WriteBatch` that is committed together with `last_applied`.
//!
//! Commands read before they write and never read back their own writes, which keeps this a thin
//! layer instead of an overlay.

use rocksdb::{Direction, IteratorMode, ReadOptions, WriteBatch, DB};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::StoreError;
use crate::store::{cf, decode, encode};

pub struct Txn<'a> {
    db: &'a DB,
    batch: WriteBatch,
}

impl<'a> Txn<'a> {
    pub fn new(db: &'a DB) -> Self {
        Txn {
            db,
            batch: WriteBatch::default(),
        }
    }

    pub fn into_batch(self) -> WriteBatch {
        self.batch
    }

    pub fn get_raw(&self, name: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(cf(self.db, name)?, key)?)
    }

    pub fn get<T: DeserializeOwned>(&self, name: &'static str, key: &[u8]) -> Result<Option<T>, StoreError> {
        match self.get_raw(name, key)? {
            Some(bytes) => Ok(Some(decode(name, &bytes)?)),
            None => Ok(None),
        }
    }

    pub fn put<T: Serialize>(&mut self, name: &'static str, key: &[u8], value: &T) -> Result<(), StoreError> {
        let bytes = encode(value)?;
        self.put_raw(name, key, &bytes)
    }

    pub fn put_raw(&mut self, name: &'static str, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.batch.put_cf(cf(self.db, name)?, key, value);
        Ok(())
    }

    pub fn delete(&mut self, name: &'static str, key: &[u8]) -> Result<(), StoreError> {
        self.batch.delete_cf(cf(self.db, name)?, key);
        Ok(())
    }

    /// Up to `limit` entries with keys in `[start, end)`, in key order.
    pub fn range(
        &self,
        name: &'static str,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        scan_range(self.db, name, start, end, limit)
    }
}

/// Up to `limit` entries of `name` with keys in `[start, end)`.
pub fn scan_range(
    db: &DB,
    name: &'static str,
    start: &[u8],
    end: &[u8],
    limit: usize,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
    let mut out = Vec::new();
    // The bound lets RocksDB stop at `end` instead of stepping over deleted keys beyond it (a
    // drained queue or timer range is a run of tombstones until compaction drops them).
    let mut opts = ReadOptions::default();
    opts.set_iterate_upper_bound(end.to_vec());
    let iter = db.iterator_cf_opt(cf(db, name)?, opts, IteratorMode::From(start, Direction::Forward));
    for item in iter {
        if out.len() >= limit {
            break;
        }
        let (k, v) = item?;
        if k.as_ref() >= end {
            break;
        }
        out.push((k.to_vec(), v.to_vec()));
    }
    Ok(out)
}

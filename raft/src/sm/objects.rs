//! Which object-store keys the ledger holds: `refs` (key → lease) for every object some lease,
//! checkpoint body or message stands on, and `gc` for the ones to delete. A key is in at most one
//! of the two, so the orphan sweeper may delete any old object that is in neither.

use crate::error::StoreError;
use crate::store::txn::Txn;

/// A new object key is usable only if the GC worker is not about to delete it.
pub fn usable(txn: &Txn<'_>, object_key: &str) -> Result<bool, StoreError> {
    Ok(txn.get_raw("gc", object_key.as_bytes())?.is_none())
}

/// `lease_id` now stands on `object_key`.
pub fn reference(txn: &mut Txn<'_>, object_key: &str, lease_id: &str) -> Result<(), StoreError> {
    txn.put_raw("refs", object_key.as_bytes(), lease_id.as_bytes())
}

/// Nothing stands on `object_key` any more: hand it to the GC worker.
pub fn release(txn: &mut Txn<'_>, object_key: &str, lease_id: &str, now_ms: u64) -> Result<(), StoreError> {
    txn.delete("refs", object_key.as_bytes())?;
    txn.put("gc", object_key.as_bytes(), &(lease_id, now_ms))
}

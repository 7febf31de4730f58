//! The billing history: one charge per paid create, newest first per owner, kept for
//! [`CHARGE_RETENTION_MS`].

use crate::error::StoreError;
use crate::model::Charge;
use crate::store::keys::{self, META_CHARGE_SEQ};
use crate::store::txn::Txn;

const CF: &str = "charges";
/// How long a charge stays listed.
pub const CHARGE_RETENTION_MS: u64 = 90 * 24 * 3600 * 1000;

/// Records `charge` for `owner`.
pub fn record(txn: &mut Txn<'_>, owner: &str, charge: &Charge) -> Result<(), StoreError> {
    let seq = txn
        .get_raw("meta", META_CHARGE_SEQ)?
        .as_deref()
        .and_then(keys::parse_u64)
        .unwrap_or(0)
        + 1;
    txn.put_raw("meta", META_CHARGE_SEQ, &seq.to_be_bytes())?;
    let key = charge_key(owner, seq);
    txn.put(CF, &key, charge)?;
    txn.put_raw(CF, &keys::dedup_age(charge.at_ms + CHARGE_RETENTION_MS, &key), &[])?;
    Ok(())
}

/// Forgets charges past their retention, at most `max`.
pub fn prune(txn: &mut Txn<'_>, now_ms: u64, max: u32) -> Result<u32, StoreError> {
    crate::sm::sweep::prune_aged(txn, CF, now_ms, max, |_, _| Ok(()))
}

/// `c ‖ owner ‖ 0 ‖ !seq`: an owner's charges, newest first.
pub fn charge_key(owner: &str, seq: u64) -> Vec<u8> {
    [b"c", owner.as_bytes(), &[0], &(!seq).to_be_bytes()].concat()
}

/// The prefix of an owner's charges.
pub fn owner_prefix(owner: &str) -> Vec<u8> {
    [b"c", owner.as_bytes(), &[0]].concat()
}

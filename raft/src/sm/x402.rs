//! x402 payments: an authorization pays once, for exactly the ledger's price, before it expires.
//! Its record keeps the request that settles it until a settlement is known, so a leader can
//! settle what a departed node could not; a failed settlement voids the lease it paid for in the
//! same step, and so does an authorization that expires unsettled.

use crate::baton::Extension;
use crate::command::{NewLease, Outcome, Rejection, Response};
use crate::error::StoreError;
use crate::model::{Lease, Settlement, X402Record};
use crate::ops::{SettleX402, X402Payment};
use crate::sm::leases;
use crate::store::keys;
use crate::store::txn::Txn;

const CF: &str = "x402";
/// Longest reason, transaction id or network kept.
const TEXT_MAX_LEN: usize = 256;
/// The largest settle request kept.
pub const SETTLE_REQUEST_MAX_BYTES: usize = 16 << 10;
/// The longest an authorization may stay valid: its record is kept that long.
pub const VALIDITY_MAX_MS: u64 = 24 * 3600 * 1000;

/// Takes `payment` for the lease `new` costing `price_micros`, or refuses it.
pub fn take(
    txn: &mut Txn<'_>,
    now_ms: u64,
    payment: &X402Payment,
    new: &NewLease,
    price_micros: u64,
) -> Result<Result<(), Rejection>, StoreError> {
    take_for(txn, now_ms, payment, &new.owner, &new.lease_id, price_micros)
}

/// Takes `payment` for an extension of `lease_id` (owned by `owner`) costing `price_micros`, and
/// remembers what it added: a failed settlement takes the extension back, not the lease.
pub fn take_extension(
    txn: &mut Txn<'_>,
    now_ms: u64,
    payment: &X402Payment,
    extension: &Extension,
    owner: &str,
    price_micros: u64,
) -> Result<Result<(), Rejection>, StoreError> {
    let taken = take_for(txn, now_ms, payment, owner, &extension.lease_id, price_micros)?;
    if taken.is_ok() {
        if let Some(key) = record_key(&payment.from, &payment.nonce_hex) {
            txn.put(CF, &extension_key(&key), extension)?;
        }
    }
    Ok(taken)
}

/// The extension an x402 payment bought: `e` ‖ from ‖ nonce.
fn extension_key(record_key: &[u8]) -> Vec<u8> {
    [b"e", &record_key[1..]].concat()
}

fn take_for(
    txn: &mut Txn<'_>,
    now_ms: u64,
    payment: &X402Payment,
    owner: &str,
    lease_id: &str,
    price_micros: u64,
) -> Result<Result<(), Rejection>, StoreError> {
    let Some(key) = record_key(&payment.from, &payment.nonce_hex) else {
        return Ok(Err(Rejection::Invalid("x402 payer or nonce malformed".into())));
    };
    if !payment.from.eq_ignore_ascii_case(owner) {
        return Ok(Err(Rejection::Invalid("an x402 lease belongs to its payer".into())));
    }
    if payment.settle_request.len() > SETTLE_REQUEST_MAX_BYTES {
        return Ok(Err(Rejection::Invalid("settle request too large".into())));
    }
    if txn.get_raw(CF, &key)?.is_some() {
        return Ok(Err(Rejection::PaymentReused));
    }
    if now_ms >= payment.valid_before_ms {
        return Ok(Err(Rejection::PaymentExpired));
    }
    if payment.valid_before_ms - now_ms > VALIDITY_MAX_MS {
        return Ok(Err(Rejection::Invalid(
            "an authorization may be valid for a day at most".into(),
        )));
    }
    if payment.value_micros != price_micros {
        return Ok(Err(Rejection::PriceMismatch {
            paid_micros: payment.value_micros,
            price_micros,
        }));
    }
    let record = X402Record {
        lease_id: lease_id.to_string(),
        value_micros: payment.value_micros,
        valid_before_ms: payment.valid_before_ms,
        settlement: Settlement::Pending,
        settle_request: Some(payment.settle_request.clone()),
        attempts: 0,
        last_attempt_ms: now_ms,
    };
    txn.put(CF, &key, &record)?;
    txn.put_raw(CF, &pending_key(&key), &[])?;
    txn.put_raw(CF, &keys::dedup_age(payment.valid_before_ms, &key), &[])?;
    Ok(Ok(()))
}

/// Records what became of a settlement: settled, failed (the lease is voided), or one more
/// attempt whose outcome is unknown. Once settled or failed, the first word stands.
pub fn settle(txn: &mut Txn<'_>, now_ms: u64, op: &SettleX402) -> Result<Response, StoreError> {
    let Some(key) = record_key(&op.from, &op.nonce_hex) else {
        return Ok(Err(Rejection::Invalid("x402 payer or nonce malformed".into())));
    };
    let Some(mut record) = txn.get::<X402Record>(CF, &key)? else {
        return Ok(Err(Rejection::Invalid("no such x402 payment".into())));
    };
    let too_long = match &op.settlement {
        Settlement::Pending => false,
        Settlement::Settled { transaction, network } => {
            transaction.len() > TEXT_MAX_LEN || network.len() > TEXT_MAX_LEN
        }
        Settlement::Failed { reason } => reason.len() > TEXT_MAX_LEN,
    };
    if too_long {
        return Ok(Err(Rejection::Invalid("settlement text too long".into())));
    }
    if record.settlement != Settlement::Pending {
        return Ok(Ok(Outcome::X402Settled { record }));
    }
    match &op.settlement {
        Settlement::Pending => {
            record.attempts = record.attempts.saturating_add(1);
            record.last_attempt_ms = now_ms;
        }
        done => {
            if let Settlement::Failed { .. } = done {
                void(txn, now_ms, &key, &record)?;
            } else {
                txn.delete(CF, &extension_key(&key))?;
            }
            record.settlement = done.clone();
            record.settle_request = None;
            txn.delete(CF, &pending_key(&key))?;
        }
    }
    txn.put(CF, &key, &record)?;
    Ok(Ok(Outcome::X402Settled { record }))
}

/// Deletes the lease a payment was to pay for, if it still stands.
fn void(txn: &mut Txn<'_>, now_ms: u64, key: &[u8], record: &X402Record) -> Result<(), StoreError> {
    if let Some(extension) = txn.get::<Extension>(CF, &extension_key(key))? {
        txn.delete(CF, &extension_key(key))?;
        return crate::sm::batons::take_back(txn, now_ms, &extension, record.value_micros);
    }
    if let Some(lease) = txn.get::<Lease>("leases", record.lease_id.as_bytes())? {
        if lease.is_live_at(now_ms) {
            // Live and its owner's: the delete cannot be refused.
            let _ = leases::delete(txn, now_ms, &lease.owner, &lease.lease_id)?;
        }
    }
    Ok(())
}

/// Forgets records whose authorization expired before `now_ms` (a later use is refused by its
/// time alone), at most `max`. One still unsettled can never be settled now: its lease is voided.
pub fn prune(txn: &mut Txn<'_>, now_ms: u64, max: u32) -> Result<u32, StoreError> {
    crate::sm::sweep::prune_aged(txn, CF, now_ms, max, |txn, key| {
        if let Some(record) = txn.get::<X402Record>(CF, key)? {
            if record.settlement == Settlement::Pending {
                void(txn, now_ms, key, &record)?;
                txn.delete(CF, &pending_key(key))?;
            }
            txn.delete(CF, &extension_key(key))?;
        }
        Ok(())
    })
}

/// The record key of `(from, nonce)`, both hex; `None` when either is malformed.
pub fn record_key(from: &str, nonce_hex: &str) -> Option<Vec<u8>> {
    let mut addr = [0u8; 20];
    hex::decode_to_slice(from.strip_prefix("0x")?, &mut addr).ok()?;
    let mut nonce = [0u8; 32];
    hex::decode_to_slice(nonce_hex.strip_prefix("0x")?, &mut nonce).ok()?;
    Some(keys::x402_record(&addr, &nonce))
}

/// The pending index entry of a record: `q` ‖ from ‖ nonce.
pub fn pending_key(record_key: &[u8]) -> Vec<u8> {
    [b"q", &record_key[1..]].concat()
}

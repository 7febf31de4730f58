//! x402 payments: an authorization pays once, for exactly the ledger's price, before it expires;
//! a failed settlement voids what it paid for in the same step.

use crate::command::{NewLease, Outcome, Rejection, Response};
use crate::error::StoreError;
use crate::model::{Lease, Settlement, X402Record};
use crate::ops::{SettleX402, X402Payment};
use crate::sm::leases;
use crate::store::keys;
use crate::store::txn::Txn;

const CF: &str = "x402";
/// Longest reason or transaction id kept.
const TEXT_MAX_LEN: usize = 256;

/// Takes `payment` for the lease `new` costing `price_micros`, or refuses it.
pub fn take(
    txn: &mut Txn<'_>,
    now_ms: u64,
    payment: &X402Payment,
    new: &NewLease,
    price_micros: u64,
) -> Result<Result<(), Rejection>, StoreError> {
    let Some(key) = record_key(&payment.from, &payment.nonce_hex) else {
        return Ok(Err(Rejection::Invalid("x402 payer or nonce malformed".into())));
    };
    if !payment.from.eq_ignore_ascii_case(&new.owner) {
        return Ok(Err(Rejection::Invalid("an x402 lease belongs to its payer".into())));
    }
    if txn.get_raw(CF, &key)?.is_some() {
        return Ok(Err(Rejection::PaymentReused));
    }
    if now_ms >= payment.valid_before_ms {
        return Ok(Err(Rejection::PaymentExpired));
    }
    if payment.value_micros != price_micros {
        return Ok(Err(Rejection::PriceMismatch {
            paid_micros: payment.value_micros,
            price_micros,
        }));
    }
    let record = X402Record {
        lease_id: new.lease_id.clone(),
        value_micros: payment.value_micros,
        valid_before_ms: payment.valid_before_ms,
        settlement: Settlement::Pending,
    };
    txn.put(CF, &key, &record)?;
    txn.put_raw(CF, &keys::dedup_age(payment.valid_before_ms, &key), &[])?;
    Ok(Ok(()))
}

/// Records the settlement; a failure voids the lease (its bytes go as for any delete).
pub fn settle(txn: &mut Txn<'_>, now_ms: u64, op: &SettleX402) -> Result<Response, StoreError> {
    let Some(key) = record_key(&op.from, &op.nonce_hex) else {
        return Ok(Err(Rejection::Invalid("x402 payer or nonce malformed".into())));
    };
    let Some(mut record) = txn.get::<X402Record>(CF, &key)? else {
        return Ok(Err(Rejection::Invalid("no such x402 payment".into())));
    };
    let too_long = match &op.settlement {
        Settlement::Pending => return Ok(Err(Rejection::Invalid("a settlement is settled or failed".into()))),
        Settlement::Settled { transaction, network } => {
            transaction.len() > TEXT_MAX_LEN || network.len() > TEXT_MAX_LEN
        }
        Settlement::Failed { reason } => reason.len() > TEXT_MAX_LEN,
    };
    if too_long {
        return Ok(Err(Rejection::Invalid("settlement text too long".into())));
    }
    if record.settlement != Settlement::Pending {
        // Settled once: the first word stands.
        return Ok(Ok(Outcome::X402Settled { record }));
    }
    if let Settlement::Failed { .. } = op.settlement {
        if let Some(lease) = txn.get::<Lease>("leases", record.lease_id.as_bytes())? {
            if lease.is_live_at(now_ms) {
                // Live and its owner's: the delete cannot be refused.
                let _ = leases::delete(txn, now_ms, &lease.owner, &lease.lease_id)?;
            }
        }
    }
    record.settlement = op.settlement.clone();
    txn.put(CF, &key, &record)?;
    Ok(Ok(Outcome::X402Settled { record }))
}

/// Forgets records whose authorization expired before `now_ms` (a later use is refused by its
/// time alone), at most `max`.
pub fn prune(txn: &mut Txn<'_>, now_ms: u64, max: u32) -> Result<u32, StoreError> {
    let end = keys::dedup_age(now_ms, &[]);
    let mut pruned = 0;
    for (age_key, _) in txn.range(CF, b"t", &end, max as usize)? {
        txn.delete(CF, &age_key)?;
        txn.delete(CF, &age_key[9..])?;
        pruned += 1;
    }
    Ok(pruned)
}

/// The record key of `(from, nonce)`, both hex; `None` when either is malformed.
pub fn record_key(from: &str, nonce_hex: &str) -> Option<Vec<u8>> {
    let mut addr = [0u8; 20];
    hex::decode_to_slice(from.strip_prefix("0x")?, &mut addr).ok()?;
    let mut nonce = [0u8; 32];
    hex::decode_to_slice(nonce_hex.strip_prefix("0x")?, &mut nonce).ok()?;
    Some(keys::x402_record(&addr, &nonce))
}

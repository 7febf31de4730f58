//! The cluster's prices, replicated: every node quotes from them and the state machine charges
//! by them, so nodes started with different flags still charge one rate.

use crate::command::{Outcome, Rejection, Response};
use crate::error::StoreError;
use crate::model::LeaseKind;
use crate::pricing::Pricing;
use crate::store::keys;
use crate::store::txn::Txn;

/// The highest rate or minimum charge accepted, micro-USDC (a million USDC): beyond it a typo,
/// not a price.
pub const PRICE_MAX_MICROS: u64 = 1_000_000_000_000;

/// Replaces the prices; leases already bought keep what they paid.
pub fn set(txn: &mut Txn<'_>, pricing: &Pricing) -> Result<Response, StoreError> {
    if pricing.rate_micros_per_gb_day > PRICE_MAX_MICROS || pricing.min_charge_micros > PRICE_MAX_MICROS {
        return Ok(Err(Rejection::Invalid(format!(
            "rate and minimum charge must be at most {PRICE_MAX_MICROS} micro-USDC"
        ))));
    }
    txn.put("meta", keys::META_PRICING, pricing)?;
    Ok(Ok(Outcome::PricingSet { pricing: *pricing }))
}

/// The prices in force: the stored ones, or the defaults before any were set.
pub fn current(txn: &Txn<'_>) -> Result<Pricing, StoreError> {
    Ok(txn.get::<Pricing>("meta", keys::META_PRICING)?.unwrap_or_default())
}

/// What a new lease of `kind` for `duration_seconds` costs now.
pub fn charge(txn: &Txn<'_>, kind: &LeaseKind, duration_seconds: u64) -> Result<u64, StoreError> {
    Ok(current(txn)?.price_micros(kind.billable_bytes(), duration_seconds))
}

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

/// Changes the figures given; leases already bought keep what they paid. Every lease costs at
/// least one micro-USDC, so no purchase is free (each holds ledger state and maybe bytes).
pub fn set(txn: &mut Txn<'_>, rate: Option<u64>, min_charge: Option<u64>) -> Result<Response, StoreError> {
    let mut pricing = current(txn)?;
    if let Some(rate) = rate {
        pricing.rate_micros_per_gb_day = rate;
    }
    if let Some(min) = min_charge {
        pricing.min_charge_micros = min;
    }
    if pricing.rate_micros_per_gb_day > PRICE_MAX_MICROS || !(1..=PRICE_MAX_MICROS).contains(&pricing.min_charge_micros)
    {
        return Ok(Err(Rejection::Invalid(format!(
            "the rate must be at most {PRICE_MAX_MICROS} micro-USDC, and the minimum charge from 1 to {PRICE_MAX_MICROS}"
        ))));
    }
    txn.put("meta", keys::META_PRICING, &pricing)?;
    Ok(Ok(Outcome::PricingSet { pricing }))
}

/// The prices in force: the stored ones, or the defaults before any were set.
pub fn current(txn: &Txn<'_>) -> Result<Pricing, StoreError> {
    Ok(txn.get::<Pricing>("meta", keys::META_PRICING)?.unwrap_or_default())
}

/// What a new lease of `kind` for `duration_seconds` costs now.
pub fn charge(txn: &Txn<'_>, kind: &LeaseKind, duration_seconds: u64) -> Result<u64, StoreError> {
    Ok(current(txn)?.price_micros(kind.billable_bytes(), duration_seconds))
}

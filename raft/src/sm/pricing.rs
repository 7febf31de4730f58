//! The cluster's prices, replicated: every node quotes from them and the state machine charges
//! by them, so nodes started with different flags still charge one rate.

use crate::baton::{self, Baton, BatonRates, Shape};
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

/// What a new lease of `kind` for `duration_seconds` costs now (a baton by its whole shape).
pub fn charge(txn: &Txn<'_>, kind: &LeaseKind, duration_seconds: u64) -> Result<u64, StoreError> {
    let pricing = current(txn)?;
    Ok(match kind {
        LeaseKind::Baton(b) => baton::price(&pricing, &rates(txn)?, &shape_of(b, duration_seconds)),
        other => pricing.price_micros(other.billable_bytes(), duration_seconds),
    })
}

/// The priced part of a baton held for `duration_seconds`.
pub fn shape_of(b: &Baton, duration_seconds: u64) -> Shape {
    Shape {
        write: b.write,
        size_bytes: b.size_bytes,
        duration_seconds,
        egress_bytes: b.egress_bytes,
        burn_after_reading: b.burn_after_reading,
        disposal: b.disposal,
        witness: b.witness,
    }
}

/// The baton rates in force.
pub fn rates(txn: &Txn<'_>) -> Result<BatonRates, StoreError> {
    Ok(txn
        .get::<BatonRates>("meta", keys::META_BATON_RATES)?
        .unwrap_or_default())
}

/// Changes the baton rates given.
pub fn set_rates(txn: &mut Txn<'_>, egress: Option<u64>, witness_fee: Option<u64>) -> Result<Response, StoreError> {
    let mut rates = rates(txn)?;
    if let Some(egress) = egress {
        rates.egress_micros_per_gb = egress;
    }
    if let Some(fee) = witness_fee {
        rates.witness_fee_micros = fee;
    }
    if rates.egress_micros_per_gb > PRICE_MAX_MICROS || rates.witness_fee_micros > PRICE_MAX_MICROS {
        return Ok(Err(Rejection::Invalid(format!(
            "the egress rate and the witness fee must be at most {PRICE_MAX_MICROS} micro-USDC"
        ))));
    }
    txn.put("meta", keys::META_BATON_RATES, &rates)?;
    Ok(Ok(Outcome::BatonRatesSet { rates }))
}

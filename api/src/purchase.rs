//! The path every paid create walks before its command is proposed: the reservation is priced
//! by the cluster's prices (replicated in the ledger, the same on every node), its duration is
//! checked against the limits, and the payer's balance is pre-checked, so a purchase that clearly
//! cannot be paid is refused before any bytes are taken. The ledger prices and debits again when
//! it applies the command; that charge is the one that counts.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use relay_raft::ops::LeaseCreated;
use relay_raft::{Lease, Outcome};
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::headers::check_duration;
use crate::idempotency::Keyed;
use crate::render;
use crate::state::AppState;

/// Who pays for a purchase, and owns what it buys. Today an account, proven by its API key; the
/// next ways to pay (an x402 payment, a session) become more variants, and the handlers that take
/// a `Payer` do not change.
pub enum Payer {
    Account(Caller),
}

impl Payer {
    /// The account charged, and the owner of the lease bought.
    pub fn account_id(&self) -> &str {
        match self {
            Payer::Account(caller) => &caller.account_id,
        }
    }

    /// The scope its Idempotency-Keys live in.
    pub fn scope(&self) -> &str {
        self.account_id()
    }
}

impl FromRequestParts<AppState> for Payer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Payer, ApiError> {
        Ok(Payer::Account(Caller::from_request_parts(parts, state).await?))
    }
}

/// What a create asks to buy: `billable_bytes` (the object's size, a checkpoint's reserved body,
/// a mailbox's capacity) for `duration_seconds`.
#[derive(Clone, Copy, Debug)]
pub struct Reservation {
    pub billable_bytes: u64,
    pub duration_seconds: u64,
}

/// The price of `reservation` by the prices this node has applied, after checking its duration.
pub fn quote(state: &AppState, reservation: Reservation) -> ApiResult<u64> {
    let cfg = &state.config;
    check_duration(
        reservation.duration_seconds,
        cfg.min_duration_seconds,
        cfg.max_duration_seconds,
    )?;
    let pricing = state.ledger.reader().pricing()?;
    Ok(pricing.price_micros(reservation.billable_bytes, reservation.duration_seconds))
}

/// Prices `reservation` and refuses it when the payer's balance clearly cannot pay. A retry of a
/// keyed purchase the ledger already made (the same size and duration) is not refused: the ledger
/// replays its answer, and charges nothing again.
pub fn begin(state: &AppState, payer: &Payer, keyed: Option<&Keyed>, reservation: Reservation) -> ApiResult<u64> {
    let cost_micros = quote(state, reservation)?;
    let reader = state.ledger.reader();
    if let Some(k) = keyed {
        let made = reader.idempotency_record(k.scope(), k.key())?.map(|r| r.response);
        if let Some(Ok(Outcome::LeaseCreated(LeaseCreated { lease, .. }))) = made {
            if lease.kind.billable_bytes() == reservation.billable_bytes
                && lease.duration_seconds == reservation.duration_seconds
            {
                return Ok(cost_micros);
            }
        }
    }
    if let Some(account) = reader.account(payer.account_id())? {
        if account.balance_micros < cost_micros {
            return Err(ApiError::InsufficientBalance {
                balance_micros: account.balance_micros,
                needed_micros: cost_micros,
            });
        }
    }
    Ok(cost_micros)
}

/// The receipt of a purchase: what every paid create answers with (the lease, its term and what
/// it cost), to which each resource adds its own fields.
pub fn receipt(lease: &Lease, own: Value) -> Value {
    let mut v = json!({
        "status": "ok",
        "lease_id": lease.lease_id,
        "expires_at": render::timestamp(lease.expires_at_ms),
        "duration_seconds": lease.duration_seconds,
        "duration_human": render::duration_human(lease.duration_seconds),
        "cost_micros": lease.cost_micros.to_string(),
        "paid_usdc": render::usdc(lease.cost_micros),
        "ledger_id": lease.ledger_id,
    });
    if let (Some(all), Value::Object(own)) = (v.as_object_mut(), own) {
        all.extend(own);
    }
    v
}

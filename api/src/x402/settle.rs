//! Settling x402 payments, from the request that took the payment and, for whatever that
//! request could not finish, from the leader's reconciler.
//!
//! Exactly one party calls `/settle` first: the request whose create was applied fresh (a
//! replayed request only reports). An unknown outcome leaves the payment pending with its attempt
//! counted; the reconciler settles pending payments again after `--x402-settle-retry-seconds`, and there an
//! "already used" answer means our earlier attempt went through. A definite refusal voids the
//! lease. An authorization that expires still pending is voided by the ledger itself.

use std::time::Duration;

use relay_raft::ops::SettleX402;
use relay_raft::{IdempotencyKey, Settlement, X402Record};
use serde_json::Value;
use tokio::sync::watch;

use super::facilitator::{FacilitatorError, Settled, NONCE_USED};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Pending payments the reconciler looks at per pass.
const PASS_MAX: usize = 16;

/// What became of a settlement attempt.
pub enum Outcome {
    Settled(Settled),
    Refused(String),
    Unknown,
}

/// One `/settle` call, classified. `retried`: an earlier attempt of ours may have gone through.
pub async fn attempt(state: &AppState, request: &[u8], retried: bool) -> ApiResult<Outcome> {
    Ok(match state.facilitator()?.settle(request).await {
        Ok(settled) => Outcome::Settled(settled),
        Err(FacilitatorError::Refused { reason }) if retried && reason == NONCE_USED => Outcome::Settled(Settled {
            transaction: String::new(),
            network: network_of(request),
            payer: String::new(),
        }),
        Err(FacilitatorError::Refused { reason }) => Outcome::Refused(reason),
        Err(FacilitatorError::Unknown(e)) => {
            tracing::warn!(error = %e, "x402: settlement outcome unknown");
            Outcome::Unknown
        }
    })
}

/// Writes what became of `(from, nonce)`'s settlement; a settled one is retried until it sticks
/// (a few times: the reconciler finishes what this cannot).
pub async fn record(state: &AppState, from: &str, nonce_hex: &str, settlement: Settlement) -> ApiResult<X402Record> {
    let op = SettleX402 {
        from: from.to_string(),
        nonce_hex: nonce_hex.to_string(),
        settlement,
    };
    let mut backoff = Duration::from_millis(50);
    let mut last = None;
    for _ in 0..4 {
        // A fresh internal key each time: an attempt counts once per call, and a final word
        // stands whatever the key.
        let key = IdempotencyKey::internal("x402", ulid::Ulid::new().to_string());
        match crate::ops::run(state, Some(key), op.clone(), "payment").await {
            Ok(record) => return Ok(record),
            Err(e @ ApiError::Unavailable(_)) => last = Some(e),
            Err(e) => return Err(e),
        }
        tokio::time::sleep(backoff).await;
        backoff *= 2;
    }
    Err(last.unwrap_or_else(|| ApiError::Unavailable("recording a settlement".into())))
}

/// The network named in a settle request's requirements.
fn network_of(request: &[u8]) -> String {
    serde_json::from_slice::<Value>(request)
        .ok()
        .and_then(|v| v["paymentRequirements"]["network"].as_str().map(String::from))
        .unwrap_or_default()
}

/// One reconciler pass: settles pending payments whose last attempt is old enough.
pub async fn pass(state: &AppState) -> ApiResult<u32> {
    let now_ms = relay_raft::wall_clock_ms();
    let retry_ms = match &state.config.x402 {
        Some(x) => x.settle_retry.as_millis() as u64,
        None => return Ok(0),
    };
    let mut done = 0;
    for (from, nonce, record) in state.ledger.reader().x402_pending(PASS_MAX)? {
        if now_ms < record.last_attempt_ms.saturating_add(retry_ms) {
            continue;
        }
        let Some(request) = record.settle_request.as_deref() else {
            continue;
        };
        // The request that took it may have tried (and crashed before saying so): a used nonce
        // is our settlement.
        let settlement = match attempt(state, request, true).await? {
            Outcome::Settled(s) => Settlement::Settled {
                transaction: s.transaction,
                network: s.network,
            },
            Outcome::Refused(reason) => Settlement::Failed { reason },
            Outcome::Unknown => Settlement::Pending,
        };
        tracing::info!(%from, %nonce, ?settlement, "x402 reconciler: settled a pending payment");
        record_or_log(state, &from, &nonce, settlement).await;
        done += 1;
    }
    Ok(done)
}

async fn record_or_log(state: &AppState, from: &str, nonce: &str, settlement: Settlement) {
    if let Err(e) = record(state, from, nonce, settlement).await {
        tracing::warn!(error = %e, %from, %nonce, "x402: recording a settlement");
    }
}

/// The reconciler: on the leader, a pass every `interval` until `stop`.
pub async fn run(state: AppState, interval: Duration, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if !state.ledger.is_leader() {
            continue;
        }
        if let Err(e) = pass(&state).await {
            tracing::warn!(error = %e, "x402 reconciler");
        }
    }
}

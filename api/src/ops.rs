//! One ledger call for every handler: a typed operation's own output, or the API error its
//! rejection or failure means, mapped here once. A handler reads parse → run → render:
//!
//! ```ignore
//! let lease = ops::run(&state, idem, DeleteLease { owner, lease_id }, "lease").await?;
//! ```

use relay_raft::{IdempotencyKey, LedgerError, Op, Rejection};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Runs `op` through the ledger; `what` names the resource in a 404 or 410.
pub async fn run<O: Op>(
    state: &AppState,
    idempotency: Option<IdempotencyKey>,
    op: O,
    what: &'static str,
) -> ApiResult<O::Output> {
    let started = std::time::Instant::now();
    let outcome = state.ledger.run(idempotency, op).await;
    state.metrics.ledger_commit.observe(started.elapsed().as_secs_f64());
    answer(outcome, what)
}

/// Maps an answer already in hand (when something else must see it first, such as a staged
/// blob).
pub fn answer<T>(answer: Result<Result<T, Rejection>, LedgerError>, what: &'static str) -> ApiResult<T> {
    answer?.map_err(|rejection| ApiError::from_rejection(rejection, what))
}

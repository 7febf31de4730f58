//! One ledger call for every handler: a command's outcome, as the value the handler wants, or the
//! API error its rejection or failure means, mapped here once. A handler reads parse → run →
//! render:
//!
//! ```ignore
//! let lease = ops::run(&state, idem, command, "lease", outcome!(Outcome::LeaseDeleted { lease } => lease)).await?;
//! ```

use relay_raft::{Command, IdempotencyKey, LedgerError, Outcome, Response};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Picks the wanted value out of an outcome, or gives the outcome back (a bug: another command's
/// answer).
pub type Pick<T> = fn(Outcome) -> Result<T, Outcome>;

/// Runs `command` through the ledger; `what` names the resource in a 404 or 410.
pub async fn run<T>(
    state: &AppState,
    idempotency: Option<IdempotencyKey>,
    command: Command,
    what: &'static str,
    pick: Pick<T>,
) -> ApiResult<T> {
    answer(state.ledger.write(idempotency, command).await, what, pick)
}

/// Maps an answer already in hand (when something else must see it first, such as a staged
/// blob).
pub fn answer<T>(answer: Result<Response, LedgerError>, what: &'static str, pick: Pick<T>) -> ApiResult<T> {
    match answer? {
        Ok(outcome) => pick(outcome).map_err(ApiError::unexpected),
        Err(rejection) => Err(ApiError::from_rejection(rejection, what)),
    }
}

/// A [`Pick`] from one pattern: `outcome!(Outcome::LeaseCreated { lease, .. } => lease)`.
#[macro_export]
macro_rules! outcome {
    ($pattern:pat => $value:expr) => {
        |outcome: relay_raft::Outcome| match outcome {
            $pattern => Ok($value),
            other => Err(other),
        }
    };
}

//! `/healthz` (the process answers and its ledger runs) and `/readyz` (this node can serve
//! linearizable requests, or what it waits for: a leader, or the leader's read index). Details go
//! to the log.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::state::AppState;

/// The process answers and its ledger runs.
#[utoipa::path(get, path = "/healthz", operation_id = "health_healthz", tag = "meta", responses(
    (status = 200, description = "The ledger runs", body = Object),
    crate::openapi::Common,
))]
pub async fn healthz(State(state): State<AppState>) -> Response {
    if state.ledger.is_running() {
        Json(json!({"status": "ok"})).into_response()
    } else {
        let body = json!({"status": "error", "error": {"code": "ledger_stopped", "message": "the ledger has stopped", "request_id": crate::request_id::current()}});
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

/// This node can serve linearizable requests; a 503 says what it waits for (`waiting_for`).
#[utoipa::path(get, path = "/readyz", operation_id = "health_readyz", tag = "meta", responses(
    (status = 200, description = "Ready: a leader is known and its read index answered", body = Object),
    crate::openapi::Common,
))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let status = state.ledger.status();
    // A probe never waits long: no leader known is said at once, and a read index that takes over
    // a second means no leader this node can reach.
    let no_leader = (
        "leader",
        "waiting for a leader this node can reach: a quorum of voters must be up",
    );
    let waiting = match status.leader_id {
        None => Some(no_leader),
        Some(_) => match tokio::time::timeout(std::time::Duration::from_secs(1), state.ledger.linearizable()).await {
            Ok(Ok(_)) => None,
            Ok(Err(e)) if e.to_string().contains(relay_raft::ledger::CATCHING_UP) => {
                Some(("catch_up", "catching up with the leader's log"))
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "not ready");
                Some(no_leader)
            }
            Err(_) => Some(no_leader),
        },
    };
    match waiting {
        None => {
            Json(json!({"status": "ready", "node_id": status.node_id, "leader_id": status.leader_id})).into_response()
        }
        Some((what, message)) => {
            let body = json!({"status": "error", "waiting_for": what, "error": {
                "code": "not_ready", "message": message, "request_id": crate::request_id::current(),
            }});
            (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "1")], Json(body)).into_response()
        }
    }
}

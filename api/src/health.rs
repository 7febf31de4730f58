//! `/healthz` (the process answers and its ledger runs) and `/readyz` (this node can serve
//! linearizable requests). Neither says more than that: details go to the log.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::state::AppState;

pub async fn healthz(State(state): State<AppState>) -> Response {
    if state.ledger.is_running() {
        Json(json!({"status": "ok"})).into_response()
    } else {
        let body = json!({"status": "error", "error": {"code": "ledger_stopped", "message": "the ledger has stopped"}});
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    let status = state.ledger.status();
    match state.ledger.linearizable().await {
        Ok(_) => {
            Json(json!({"status": "ready", "node_id": status.node_id, "leader_id": status.leader_id})).into_response()
        }
        Err(e) => {
            tracing::debug!(error = %e, "not ready");
            let body = json!({"status": "error", "error": {
                "code": "not_ready", "message": "this node cannot serve linearizable requests right now",
            }});
            (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "1")], Json(body)).into_response()
        }
    }
}

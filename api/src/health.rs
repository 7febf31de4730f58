//! `/healthz` (the process answers) and `/readyz` (this node can serve linearizable requests).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::state::AppState;

pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    let status = state.ledger.status();
    match state.ledger.linearizable().await {
        Ok(_) => {
            Json(json!({"status": "ready", "node_id": status.node_id, "leader_id": status.leader_id})).into_response()
        }
        Err(e) => {
            let body = json!({"status": "error", "error": {"code": "not_ready", "message": e.to_string()}});
            (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "1")], Json(body)).into_response()
        }
    }
}

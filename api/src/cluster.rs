//! `/cluster/…`: membership status and changes, for operators. Guarded by the cluster secret
//! (`X-Cluster-Secret`) or the bootstrap account's API key.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::Json;
use relay_raft::grpc::secret_matches;
use relay_raft::{NodeId, RelayNode};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{Caller, BOOTSTRAP_ACCOUNT_ID};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Proof that the caller may change the cluster.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(secret) = parts.headers.get("x-cluster-secret") {
            if secret_matches(secret.as_bytes(), state.config.cluster_secret.as_bytes()) {
                return Ok(Admin);
            }
            tracing::warn!("cluster admin call refused: wrong cluster secret");
            return Err(ApiError::Unauthorized("wrong cluster secret"));
        }
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.account_id == BOOTSTRAP_ACCOUNT_ID {
            Ok(Admin)
        } else {
            Err(ApiError::Unauthorized(
                "cluster administration needs the cluster secret or the bootstrap key",
            ))
        }
    }
}

fn json_body<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> ApiResult<T> {
    let bytes = body.map_err(|e| ApiError::BadRequest(format!("reading the body: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

pub async fn status(State(state): State<AppState>, _: Admin) -> ApiResult<Json<Value>> {
    let s = state.ledger.status();
    let members = state.ledger.members();
    let ids = |voter: bool| members.iter().filter(|m| m.2 == voter).map(|m| m.0).collect::<Vec<_>>();
    Ok(Json(json!({
        "status": "ok",
        "node_id": s.node_id,
        "state": s.state,
        "leader_id": s.leader_id,
        "term": s.term,
        "voters": ids(true),
        "learners": ids(false),
        "members": members.iter().map(|(id, n, voter)| json!({
            "id": id, "raft_addr": n.raft_addr, "http_addr": n.http_addr, "voter": voter,
        })).collect::<Vec<_>>(),
        "last_applied": s.last_applied,
        "last_log_index": s.last_log_index,
        "snapshot_index": s.snapshot_index,
        "purged_index": s.purged_index,
    })))
}

#[derive(Deserialize)]
struct JoinBody {
    node_id: NodeId,
    raft_addr: String,
    http_addr: String,
}

#[derive(Deserialize)]
struct NodeBody {
    node_id: NodeId,
}

pub async fn join(
    State(state): State<AppState>,
    _: Admin,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let b: JoinBody = json_body(body)?;
    if b.node_id == 0 || b.raft_addr.parse::<std::net::SocketAddr>().is_err() {
        return Err(ApiError::InvalidValue {
            field: "node",
            reason: "need node_id >= 1 and raft_addr IP:port".into(),
        });
    }
    state
        .ledger
        .join(
            b.node_id,
            RelayNode {
                raft_addr: b.raft_addr,
                http_addr: b.http_addr,
            },
        )
        .await?;
    Ok(Json(json!({"status": "ok", "node_id": b.node_id})))
}

/// Runs a leader-only membership change, or says which node to ask.
async fn on_leader<F, Fut>(state: &AppState, node_id: NodeId, f: F) -> ApiResult<()>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), relay_raft::LedgerError>>,
{
    if !state.ledger.members().iter().any(|m| m.0 == node_id) {
        return Err(ApiError::NotFound("node"));
    }
    if !state.ledger.is_leader() {
        let leader = state.ledger.status().leader_id;
        let http = state
            .ledger
            .members()
            .into_iter()
            .find(|m| Some(m.0) == leader)
            .map(|m| m.1.http_addr);
        return Err(ApiError::Unavailable(format!(
            "not the leader; ask node {leader:?} at {http:?}"
        )));
    }
    Ok(f().await?)
}

pub async fn promote(
    State(state): State<AppState>,
    _: Admin,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let b: NodeBody = json_body(body)?;
    on_leader(&state, b.node_id, || state.ledger.promote(b.node_id)).await?;
    Ok(Json(json!({"status": "ok", "node_id": b.node_id})))
}

pub async fn remove(
    State(state): State<AppState>,
    _: Admin,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let b: NodeBody = json_body(body)?;
    on_leader(&state, b.node_id, || state.ledger.remove(b.node_id)).await?;
    Ok(Json(json!({"status": "ok", "node_id": b.node_id})))
}

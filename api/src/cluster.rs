//! `/cluster/…`: membership status and changes, for operators. Guarded by [`Admin`]: the cluster
//! secret (`X-Cluster-Secret`) or an admin key, never an agent's API key.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::Json;
use relay_raft::ops::{SetBatonRates, SetPricing};
use relay_raft::{NodeId, RelayNode};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Admin;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::{objects, ops};

/// Admin bodies are tiny; anything larger is refused unread (axum's own cap, applied per route).
pub const BODY_MAX_BYTES: usize = 4 << 10;

fn json_body<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> ApiResult<T> {
    let bytes = body.map_err(|e| match e {
        BytesRejection::FailedToBufferBody(_) => ApiError::TooLarge {
            what: "body",
            limit: BODY_MAX_BYTES as u64,
        },
        other => ApiError::BadRequest(format!("reading the body: {other}")),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

/// Like [`json_body`], for bodies that must be a JSON object (serde would also take an array).
pub(crate) fn json_object<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> ApiResult<T> {
    let value: Value = json_body(body)?;
    if !value.is_object() {
        return Err(ApiError::BadRequest("the body must be a JSON object".into()));
    }
    serde_json::from_value(value).map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

/// This binary's version and the formats it reads and writes: `relay version`, and each node's
/// `/cluster/status`.
pub fn versions() -> Value {
    json!({
        "binary": env!("CARGO_PKG_VERSION"),
        "formats": {
            "data": relay_raft::store::DATA_FORMAT,
            "rpc": relay_raft::grpc::RPC_FORMAT,
            "state": relay_raft::store::snapshot::STATE_FORMAT,
        },
    })
}

#[utoipa::path(
    get,
    path = "/cluster/status",
    operation_id = "cluster_status",
    tag = "cluster",
    security(("cluster_secret" = []), ("admin_key" = [])),
    responses(
        (status = 200, description = "`{status, node_id, state, leader_id, term, voters, learners, members: [{id, raft_addr, http_addr, region, voter, matched_index, lag_entries}], last_applied, last_log_index, snapshot_index, purged_index, version}`; `matched_index` and `lag_entries` only from the leader", content_type = "application/json", body = Object),
        crate::openapi::Common,
        crate::openapi::Authed,
    )
)]
pub async fn status(State(state): State<AppState>, _: Admin) -> ApiResult<Json<Value>> {
    let s = state.ledger.status();
    let members = state.ledger.members();
    let ids = |voter: bool| members.iter().filter(|m| m.2 == voter).map(|m| m.0).collect::<Vec<_>>();
    // The leader knows how far each member is behind it; other nodes answer null.
    let replication = state.ledger.replication();
    let behind = |id: &NodeId| -> Value {
        match (replication.get(id), s.last_log_index) {
            (Some(matched), Some(last)) => json!(last.saturating_sub(matched.unwrap_or(0))),
            _ => Value::Null,
        }
    };
    Ok(Json(json!({
        "status": "ok",
        "node_id": s.node_id,
        "state": s.state,
        "leader_id": s.leader_id,
        "term": s.term,
        "voters": ids(true),
        "learners": ids(false),
        "members": members.iter().map(|(id, n, voter)| json!({
            "id": id, "raft_addr": n.raft_addr, "http_addr": n.http_addr, "region": n.region, "voter": voter,
            "matched_index": replication.get(id).copied().flatten(), "lag_entries": behind(id),
        })).collect::<Vec<_>>(),
        "last_applied": s.last_applied,
        "last_log_index": s.last_log_index,
        "snapshot_index": s.snapshot_index,
        "purged_index": s.purged_index,
        "version": versions(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinBody {
    node_id: NodeId,
    raft_addr: String,
    http_addr: String,
    #[serde(default)]
    region: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeBody {
    node_id: NodeId,
}

/// `POST /cluster/join`: before the node is even a learner, the address must answer as a Relay
/// node holding the cluster secret, and read a probe object this node just wrote through its own
/// object store (so a cluster whose nodes keep bytes apart is refused, not half-working). Then
/// the node joins as a learner and becomes a voter only once it has caught up.
#[utoipa::path(
    post,
    path = "/cluster/join",
    operation_id = "cluster_join",
    tag = "cluster",
    security(("cluster_secret" = []), ("admin_key" = [])),
    request_body(content = Object, content_type = "application/json", description = "`{node_id, raft_addr, http_addr, region}`"),
    responses(
        (status = 200, description = "`{status, node_id, role, reason}`", content_type = "application/json", body = Object),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E413,
        crate::openapi::E422,
    )
)]
pub async fn join(
    State(state): State<AppState>,
    _: Admin,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let b: JoinBody = json_body(body)?;
    if b.node_id == 0 || !relay_raft::grpc::tls::is_host_port(&b.raft_addr) {
        return Err(ApiError::InvalidValue {
            field: "node",
            reason: "need node_id >= 1 and raft_addr host:port".into(),
        });
    }
    if b.region.len() > 64
        || !b
            .region
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c))
    {
        return Err(ApiError::InvalidValue {
            field: "region",
            reason: "at most 64 letters, digits, '-', '_' or '.'".into(),
        });
    }
    if b.http_addr.len() > 256 || !(b.http_addr.starts_with("http://") || b.http_addr.starts_with("https://")) {
        return Err(ApiError::InvalidValue {
            field: "http_addr",
            reason: "must be an http:// or https:// URL of at most 256 characters".into(),
        });
    }
    let (probe_key, probe_blake3) = objects::write_probe(&state.objects).await?;
    let seen = state
        .ledger
        .verify_peer(b.node_id, &b.raft_addr, Some(probe_key.clone()))
        .await;
    objects::discard(&state.objects, &probe_key).await;
    match seen {
        Err(e) => {
            tracing::warn!(node_id = b.node_id, error = %e, "join refused");
            return Err(ApiError::JoinRefused(e.to_string()));
        }
        Ok(seen) if seen != Some(probe_blake3) => {
            tracing::warn!(node_id = b.node_id, "join refused: the node sees another object store");
            return Err(ApiError::JoinRefused(format!(
                "node {} does not see this cluster's object store (a probe written here was {} there); \
                 every node must use the same --objects",
                b.node_id,
                if seen.is_none() { "missing" } else { "different" }
            )));
        }
        Ok(_) => {}
    }
    let outcome = state
        .ledger
        .join(
            b.node_id,
            RelayNode {
                raft_addr: b.raft_addr,
                http_addr: b.http_addr,
                region: b.region,
            },
        )
        .await?;
    Ok(Json(json!({
        "status": "ok",
        "node_id": b.node_id,
        "role": if outcome.voter { "voter" } else { "learner" },
        "reason": outcome.reason,
    })))
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
    f().await.map_err(|e| match e {
        // Membership refusals are written by us for the operator (a learner not caught up).
        relay_raft::LedgerError::Unavailable(reason) => ApiError::Unavailable(reason),
        other => other.into(),
    })
}

#[utoipa::path(
    post,
    path = "/cluster/promote",
    operation_id = "cluster_promote",
    tag = "cluster",
    security(("cluster_secret" = []), ("admin_key" = [])),
    request_body(content = Object, content_type = "application/json", description = "`{node_id}`"),
    responses(
        (status = 200, description = "`{status, node_id}`", content_type = "application/json", body = Object),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E404,
        crate::openapi::E413,
    )
)]
pub async fn promote(
    State(state): State<AppState>,
    _: Admin,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let b: NodeBody = json_body(body)?;
    on_leader(&state, b.node_id, || state.ledger.promote(b.node_id)).await?;
    Ok(Json(json!({"status": "ok", "node_id": b.node_id})))
}

#[utoipa::path(
    post,
    path = "/cluster/remove",
    operation_id = "cluster_remove",
    tag = "cluster",
    security(("cluster_secret" = []), ("admin_key" = [])),
    request_body(content = Object, content_type = "application/json", description = "`{node_id}`"),
    responses(
        (status = 200, description = "`{status, node_id}`", content_type = "application/json", body = Object),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E404,
        crate::openapi::E413,
    )
)]
pub async fn remove(
    State(state): State<AppState>,
    _: Admin,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let b: NodeBody = json_body(body)?;
    on_leader(&state, b.node_id, || state.ledger.remove(b.node_id)).await?;
    Ok(Json(json!({"status": "ok", "node_id": b.node_id})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PricingBody {
    rate_micros_per_gb_day: Option<u64>,
    min_charge_micros: Option<u64>,
    egress_micros_per_gb: Option<u64>,
    witness_fee_micros: Option<u64>,
}

/// `POST /cluster/pricing`: changes the cluster's prices (either figure, or both) in the ledger;
/// every node quotes and charges them from the moment the change commits. Leases already bought
/// keep what they paid.
#[utoipa::path(
    post,
    path = "/cluster/pricing",
    operation_id = "cluster_set_pricing",
    tag = "cluster",
    security(("cluster_secret" = []), ("admin_key" = [])),
    request_body(content = Object, content_type = "application/json", description = "`{rate_micros_per_gb_day, min_charge_micros, egress_micros_per_gb, witness_fee_micros}`; at least one"),
    responses(
        (status = 200, description = "The prices now in force", content_type = "application/json", body = Object),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E413,
        crate::openapi::E422,
    )
)]
pub async fn set_pricing(
    State(state): State<AppState>,
    _: Admin,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let b: PricingBody = json_object(body)?;
    let storage = b.rate_micros_per_gb_day.is_some() || b.min_charge_micros.is_some();
    let baton = b.egress_micros_per_gb.is_some() || b.witness_fee_micros.is_some();
    if !storage && !baton {
        return Err(ApiError::BadRequest(
            "give rate_micros_per_gb_day, min_charge_micros, egress_micros_per_gb or witness_fee_micros".into(),
        ));
    }
    // Only the figures given: the ledger merges them, so concurrent changes of different figures
    // both land.
    let pricing = match storage {
        true => {
            let change = SetPricing {
                rate_micros_per_gb_day: b.rate_micros_per_gb_day,
                min_charge_micros: b.min_charge_micros,
            };
            ops::run(&state, None, change, "pricing").await?
        }
        false => state.ledger.linearizable().await?.pricing()?,
    };
    let rates = match baton {
        true => {
            let change = SetBatonRates {
                egress_micros_per_gb: b.egress_micros_per_gb,
                witness_fee_micros: b.witness_fee_micros,
            };
            ops::run(&state, None, change, "pricing").await?
        }
        false => state.ledger.linearizable().await?.baton_rates()?,
    };
    tracing::info!(
        rate_micros_per_gb_day = pricing.rate_micros_per_gb_day,
        min_charge_micros = pricing.min_charge_micros,
        egress_micros_per_gb = rates.egress_micros_per_gb,
        witness_fee_micros = rates.witness_fee_micros,
        "cluster prices changed"
    );
    Ok(Json(json!({
        "status": "ok",
        "rate_micros_per_gb_day": pricing.rate_micros_per_gb_day,
        "min_charge_micros": pricing.min_charge_micros,
        "egress_micros_per_gb": rates.egress_micros_per_gb,
        "witness_fee_micros": rates.witness_fee_micros,
    })))
}

/// `POST /cluster/session-keys/rotate`: new session tokens are signed with a fresh key; the
/// newest few keys still verify, so open sessions go on until they expire.
#[utoipa::path(
    post,
    path = "/cluster/session-keys/rotate",
    operation_id = "cluster_rotate_session_key",
    tag = "cluster",
    security(("cluster_secret" = []), ("admin_key" = [])),
    responses(
        (status = 200, description = "`{status, kid}`", content_type = "application/json", body = Object),
        crate::openapi::Common,
        crate::openapi::Authed,
    )
)]
pub async fn rotate_session_key(State(state): State<AppState>, _: Admin) -> ApiResult<Json<Value>> {
    let kid = crate::sessions::rotate(&state).await?;
    tracing::info!(%kid, "session signing key rotated");
    Ok(Json(json!({"status": "ok", "kid": kid})))
}

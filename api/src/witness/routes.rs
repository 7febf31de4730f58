//! The witness log's routes. The log's key, checkpoint and consistency proofs are public (anyone
//! may audit the log; nothing here writes). A baton's records, with their inclusion proofs, are
//! its owner's (also after the baton is gone: records outlive it) or a read token's while the
//! baton lives.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use relay_raft::reader::StateReader;
use relay_raft::sm::batons;
use relay_raft::tlog::merkle::{self, hash_b64};
use relay_raft::tlog::{Record, TlogProof};
use relay_raft::witness::{SignedCheckpoint, WitnessLog};
use serde_json::{json, Value};

use crate::auth::Admin;
use crate::baton::access::Who;
use crate::baton::id_param;
use crate::error::{ApiError, ApiResult};
use crate::headers::query_map;
use crate::state::AppState;

/// Records one page of `GET /v1/baton/{id}/witness` answers, at most and by default.
pub const RECORDS_PAGE_MAX: usize = 100;

fn not_yet() -> ApiError {
    ApiError::Unavailable("the witness log has no signed checkpoint yet; retry in a second".into())
}

fn log_of(reader: &StateReader) -> ApiResult<WitnessLog> {
    reader.witness_log()?.ok_or_else(not_yet)
}

fn latest(reader: &StateReader) -> ApiResult<SignedCheckpoint> {
    reader.witness_checkpoint()?.ok_or_else(not_yet)
}

/// `GET /.well-known/relay-witness`: the log's origin and every verifier key it has used.
#[utoipa::path(
    get,
    path = "/.well-known/relay-witness",
    operation_id = "witness_well_known",
    tag = "witness",
    responses(
        (status = 200, description = "`{origin, keys, key_history, active_key, retention_days, checkpoint, record_format}`", content_type = "application/json", body = Object),
        crate::openapi::Common,
    )
)]
pub async fn well_known(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let reader = state.ledger.linearizable().await?;
    let log = log_of(reader)?;
    let keys: Vec<String> = log.verifiers().iter().map(ToString::to_string).collect();
    // Each key with the largest size it may have signed once retired: a checkpoint a retired key
    // signed past that is a forgery (`relay verify --key` with this JSON refuses it).
    let history: Vec<Value> = keys
        .iter()
        .zip(&log.keys)
        .map(|(k, w)| {
            json!({
                "key": k,
                "added_at": crate::render::timestamp(w.added_at_ms),
                "until_size": w.until_size,
                "until_root": w.until_root.as_ref().map(hash_b64),
                "operator_held": w.operator_held(),
            })
        })
        .collect();
    let checkpoint = reader.witness_checkpoint()?;
    Ok(Json(json!({
        "origin": log.origin,
        "keys": keys,
        "key_history": history,
        "active_key": keys.last(),
        "retention_days": log.retention_ms / 86_400_000,
        "checkpoint": checkpoint.map(|c| json!({"size": c.size, "root_hash": hash_b64(&c.root)})),
        "record_format": relay_raft::tlog::record::HEADER,
    })))
}

/// `GET /v1/witness/checkpoint`: the latest signed checkpoint, as a C2SP signed note.
#[utoipa::path(
    get,
    path = "/v1/witness/checkpoint",
    operation_id = "witness_checkpoint",
    tag = "witness",
    responses(
        (status = 200, description = "The latest signed checkpoint (a C2SP signed note)", content_type = "text/plain", body = String),
        crate::openapi::Common,
    )
)]
pub async fn checkpoint(State(state): State<AppState>) -> ApiResult<Response> {
    let reader = state.ledger.linearizable().await?;
    let cp = latest(reader)?;
    Ok((
        [(CONTENT_TYPE, "text/plain; charset=utf-8"), (CACHE_CONTROL, "no-store")],
        cp.note,
    )
        .into_response())
}

fn size_param(q: &std::collections::HashMap<String, String>, name: &'static str) -> ApiResult<u64> {
    let text = q
        .get(name)
        .ok_or_else(|| ApiError::BadRequest(format!("missing query parameter {name}")))?;
    let ok = !text.is_empty() && text.len() <= 20 && text.bytes().all(|b| b.is_ascii_digit());
    text.parse::<u64>().ok().filter(|_| ok).ok_or(ApiError::InvalidValue {
        field: name,
        reason: "must be a tree size: a non-negative integer".into(),
    })
}

/// `GET /v1/witness/consistency?from=&to=`: the RFC 9162 consistency proof between two tree
/// sizes, up to the latest checkpoint's.
#[utoipa::path(
    get,
    path = "/v1/witness/consistency",
    operation_id = "witness_consistency",
    tag = "witness",
    params(
        ("from" = u64, Query, description = "The older tree size"),
        ("to" = u64, Query, description = "The newer tree size, at most the latest checkpoint's"),
    ),
    responses(
        (status = 200, description = "An RFC 9162 consistency proof: `{from, to, from_root, to_root, hashes}`", content_type = "application/json", body = Object),
        crate::openapi::Common,
        crate::openapi::E422,
    )
)]
pub async fn consistency(State(state): State<AppState>, RawQuery(raw): RawQuery) -> ApiResult<Json<Value>> {
    let q = query_map(raw.as_deref())?;
    if let Some(other) = q.keys().find(|k| *k != "from" && *k != "to") {
        return Err(ApiError::BadRequest(format!("unknown query parameter {other}")));
    }
    let (from, to) = (size_param(&q, "from")?, size_param(&q, "to")?);
    if from == 0 || from > to {
        return Err(ApiError::InvalidValue {
            field: "from",
            reason: "sizes must satisfy 1 <= from <= to".into(),
        });
    }
    let reader = state.ledger.linearizable().await?;
    let cp = latest(reader)?;
    if to > cp.size {
        return Err(ApiError::InvalidValue {
            field: "to",
            reason: format!("past the latest checkpoint's size, {}", cp.size),
        });
    }
    let hashes = reader.witness_hashes();
    let proof = merkle::consistency_proof(&hashes, from, to)?;
    Ok(Json(json!({
        "from": from,
        "to": to,
        "from_root": hash_b64(&merkle::root(&hashes, from)?),
        "to_root": hash_b64(&merkle::root(&hashes, to)?),
        "hashes": proof.iter().map(hash_b64).collect::<Vec<_>>(),
    })))
}

/// `GET /v1/baton/{id}/witness?after=&limit=`: the baton's witness records, oldest first, each
/// with a C2SP tlog-proof bundle against the latest checkpoint (`null` until a checkpoint covers
/// it, within a second or so).
#[utoipa::path(
    get,
    path = "/v1/baton/{id}/witness",
    operation_id = "witness_baton_records",
    tag = "witness",
    security(("api_key" = []), ("session" = []), ("baton_token" = [])),
    params(
        ("id" = String, Path, description = "A baton id (`btn_…`)"),
        ("after" = Option<u64>, Query, description = "Records after this log index"),
        ("limit" = Option<u32>, Query, description = "Up to this many, 1–100"),
    ),
    responses(
        (status = 200, description = "`{baton_id, checkpoint_size, records: [{index, record_base64, event, seq, sha256, at_ms, proof}], next_after}`", content_type = "application/json", body = Object),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E404,
        crate::openapi::E410,
        crate::openapi::E422,
    )
)]
pub async fn baton_records(
    State(state): State<AppState>,
    who: Who,
    path: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let baton_id = id_param(path)?;
    let q = query_map(raw.as_deref())?;
    if let Some(other) = q.keys().find(|k| *k != "after" && *k != "limit") {
        return Err(ApiError::BadRequest(format!("unknown query parameter {other}")));
    }
    let after = match q.get("after") {
        None => None,
        Some(_) => Some(size_param(&q, "after")?),
    };
    let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
        None => RECORDS_PAGE_MAX,
        Some(Ok(n)) if (1..=RECORDS_PAGE_MAX).contains(&n) => n,
        Some(_) => {
            return Err(ApiError::InvalidValue {
                field: "limit",
                reason: format!("must be an integer from 1 to {RECORDS_PAGE_MAX}"),
            })
        }
    };
    let reader = state.ledger.linearizable().await?;
    // Records outlive the baton: the owner they name may read them; a token only while its
    // baton lives (tokens go with it).
    let allowed = match &who {
        Who::Owner(c) => {
            let named = reader.witness_records(&baton_id, None, 1)?.first().map(|r| r.1.clone());
            let live = reader.lease(&baton_id)?.map(|l| l.owner);
            named.or(live).as_deref() == Some(c.account_id.as_str())
        }
        Who::Token { token, .. } => {
            if token.lease_id != baton_id || !token.scope.reads() {
                return Err(ApiError::NotFound("baton"));
            }
            // A token whose reads are spent learns nothing more about the content, hashes
            // included.
            if token.spent() {
                return Err(ApiError::from_rejection(
                    relay_raft::Rejection::ReadCapExhausted,
                    "baton",
                ));
            }
            let now = state.ledger.now_ms();
            if !reader.lease(&baton_id)?.is_some_and(|l| batons::is_live(&l, now)) {
                return Err(ApiError::Gone(
                    "baton is gone: its owner may still read its witness records",
                ));
            }
            true
        }
    };
    if !allowed {
        return Err(ApiError::NotFound("baton"));
    }
    let rows = reader.witness_records(&baton_id, after, limit)?;
    let cp = reader.witness_checkpoint()?;
    let hashes = reader.witness_hashes();
    let mut records = Vec::with_capacity(rows.len());
    for (index, _, bytes) in &rows {
        let proof = match &cp {
            Some(cp) if *index < cp.size => Some(
                TlogProof {
                    extra: Some(bytes.clone()),
                    index: *index,
                    path: merkle::inclusion_proof(&hashes, *index, cp.size)?,
                    checkpoint: cp.note.clone(),
                }
                .to_text(),
            ),
            _ => None,
        };
        let record = Record::parse(bytes).ok();
        records.push(json!({
            "index": index,
            "record_base64": B64.encode(bytes),
            "event": record.as_ref().map(|r| r.event.name()),
            "seq": record.as_ref().map(|r| r.seq),
            "sha256": record.as_ref().map(|r| hex::encode(r.sha256)),
            "at_ms": record.as_ref().map(|r| r.at_ms),
            "proof": proof,
        }));
    }
    let next = (rows.len() == limit).then(|| rows.last().map(|r| r.0)).flatten();
    Ok(Json(json!({
        "baton_id": baton_id,
        "checkpoint_size": cp.as_ref().map(|c| c.size),
        "records": records,
        "next_after": next,
    })))
}

/// `POST /cluster/witness/rotate`: a fresh signing key signs from now on; every earlier key stays
/// published. Refused while the operator supplies the key (`--witness-key-file`).
#[utoipa::path(
    post,
    path = "/cluster/witness/rotate",
    operation_id = "witness_rotate",
    tag = "cluster",
    security(("cluster_secret" = []), ("admin_key" = [])),
    responses(
        (status = 200, description = "`{status, active_key}`", content_type = "application/json", body = Object),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E409,
    )
)]
pub async fn rotate(State(state): State<AppState>, _: Admin) -> ApiResult<Json<Value>> {
    if state.config.witness.operator_key.is_some() {
        return Err(ApiError::Conflict(
            "the witness key is the operator's (--witness-key-file): rotate it by changing the file",
        ));
    }
    let key = super::signer::rotate(&state).await?;
    tracing::info!(%key, "witness signing key rotated");
    Ok(Json(json!({"status": "ok", "active_key": key})))
}

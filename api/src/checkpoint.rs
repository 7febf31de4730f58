//! Checkpoint leases: `POST /api/checkpoint`, and `GET`/`PUT`/`DELETE /api/checkpoint/:workflow_id`.
//!
//! Bodies are JSON, held in memory (bounded by the reservation), and either ride in the Raft
//! entry (up to `inline_max_bytes`) or live in the object store. Reads take a read barrier; writes,
//! consumes and deletes are ledger commands, so versions and compare-and-set are linearizable.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{self, HeaderMap};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use relay_raft::command::NewLease;
use relay_raft::ops::{
    CheckpointConsumed, ConsumeCheckpoint, CreateCheckpoint, DeleteCheckpoint, ReleaseBytes, WriteCheckpoint,
};
use relay_raft::{BodyRef, Checkpoint, Lease, LeaseKind};
use serde_json::json;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::headers::{optional_str, parse_u64, query_map, required_u64, reservation};
use crate::idempotency::{self, Part};
use crate::purchase::{self, Payer, Reservation};
use crate::state::AppState;
use crate::{blobs, bodies, ids, limits, objects, ops, render};

/// How often a read retries when the body it was pointed at was replaced under it.
const READ_ATTEMPTS: usize = 3;
const CREATE_ROUTE: &str = "POST /api/checkpoint";
const WRITE_ROUTE: &str = "PUT /api/checkpoint/{workflow_id}";

#[utoipa::path(
    post,
    path = "/api/checkpoint",
    operation_id = "checkpoint_create",
    tag = "checkpoint",
    security(("api_key" = []), ("session" = []), ("x402" = [])),
    params(
        ("X-Workflow-Id" = String, Header, description = "`[A-Za-z0-9._-]{1,128}`, unique among the caller's live checkpoints"),
        ("X-Duration-Seconds" = u64, Header, description = "How long the lease lives, within the node's bounds (/api/pricing)"),
        ("X-Max-Body-Bytes" = Option<u64>, Header, nullable = false, description = "The largest state this checkpoint holds"),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, description = "1–128 visible ASCII characters; a retry with the same key and the same request gets the first answer, another request with it a 422"),
    ),
    request_body(content = Object, content_type = "application/json", description = "The first state: one JSON value"),
    responses(
        (status = 201, description = "The receipt, plus `workflow_id`, `max_body_bytes`, `version` and `size_bytes`", content_type = "application/json", body = crate::openapi::schemas::Receipt, headers(("PAYMENT-RESPONSE" = String, description = "x402 v2 settlement (X-PAYMENT-RESPONSE for v1), when paid by x402"))),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E402,
        crate::openapi::E409,
        crate::openapi::E413,
        crate::openapi::E422,
    )
)]
pub async fn create(
    State(state): State<AppState>,
    payer: Payer,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let cfg = &state.config;
    let workflow_id = workflow_id_header(&headers)?;
    let duration_seconds = required_u64(&headers, "x-duration-seconds")?;
    let max_body_bytes = match optional_str(&headers, "x-max-body-bytes")? {
        Some(text) => parse_u64(text, "x-max-body-bytes")?,
        None => cfg.checkpoint_default_body_bytes,
    };
    reservation(
        max_body_bytes,
        "max_body_bytes",
        "X-Max-Body-Bytes",
        cfg.checkpoint_max_body_bytes,
    )?;
    let reservation = Reservation {
        billable_bytes: max_body_bytes,
        duration_seconds,
        product: "Checkpoint",
        baton: None,
        extension: None,
    };
    purchase::quote(&state, reservation)?;
    let keyed = idempotency::begin(&state, &headers, payer.scope(), CREATE_ROUTE)?;
    let purchase = purchase::begin(&state, &payer, keyed.as_ref(), reservation).await?;
    let body = read_json_body(&state, body, &headers, max_body_bytes).await?;
    let idem = keyed.as_ref().map(|k| {
        k.seal(&[
            Part::Header(&headers, "x-workflow-id"),
            Part::Header(&headers, "x-duration-seconds"),
            Part::Header(&headers, "x-max-body-bytes"),
            Part::Value(blake3::hash(&body.bytes).as_bytes()),
        ])
    });
    let small = blobs::small(&state, body.bytes.clone()).await?;
    let new = NewLease {
        lease_id: ids::lease_id(),
        ledger_id: ids::ledger_id(),
        owner: payer.account_id().to_string(),
        kind: LeaseKind::Checkpoint(Checkpoint {
            workflow_id,
            max_body_bytes,
            version: 1,
            updated_at_ms: 0,
            body: small.body,
        }),
        duration_seconds,
    };
    let create = CreateCheckpoint {
        new,
        inline_body: small.inline,
    };
    let committed = purchase.commit(&state, idem, create).await;
    small.staged.settle(&state, &committed.answer).await;
    let (lease, paid) = purchase.answer(&state, committed, "checkpoint")?;
    let cell = cell(&lease)?;
    let response = (
        StatusCode::CREATED,
        Json(purchase::receipt(
            &lease,
            json!({
                "workflow_id": cell.workflow_id,
                "max_body_bytes": cell.max_body_bytes,
                "version": cell.version,
                "size_bytes": cell.body.size_bytes,
            }),
        )),
    )
        .into_response();
    Ok(purchase::with_receipt(response, paid))
}

/// `GET`: the latest body. `?consume=true` reads and deletes in one step (never on `HEAD`).
#[utoipa::path(
    get,
    path = "/api/checkpoint/{workflow_id}",
    operation_id = "checkpoint_read",
    tag = "checkpoint",
    security(("api_key" = []), ("session" = [])),
    params(
        ("workflow_id" = String, Path, description = "The checkpoint's workflow id"),
        ("consume" = Option<String>, Query, description = "`true`: read and delete in one step"),
        ("If-None-Match" = Option<String>, Header, nullable = false, description = "`\"<version>\"` or `*`: 304 when unchanged"),
    ),
    responses(
        (status = 200, description = "The stored JSON", content_type = "application/json", body = Object, headers(("ETag" = String, description = "The version, quoted"), ("X-Checkpoint-Version" = String, description = "The version"), ("X-Lease-Expires-At" = String, description = "When the lease ends"))),
        (status = 304, description = "Not modified since the version given"),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E404,
        crate::openapi::E410,
        crate::openapi::E502,
    )
)]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    method: Method,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let workflow_id = workflow_id_param(path)?;
    let query = query_map(raw.as_deref())?;
    let consume = match query.get("consume").map(String::as_str) {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "consume={other:?}: expected true or false"
            )))
        }
    };
    if consume && method != Method::HEAD {
        return read_and_delete(&state, caller.account_id, workflow_id).await;
    }
    for _ in 0..READ_ATTEMPTS {
        let (reader, now_ms) = state.ledger.linearizable_now().await?;
        let (lease, inline_body) = reader
            .checkpoint(&caller.account_id, &workflow_id)?
            .ok_or(ApiError::NotFound("checkpoint"))?;
        if !lease.is_live_at(now_ms) {
            return Err(ApiError::Gone("checkpoint has expired or was deleted"));
        }
        let cell = cell(&lease)?;
        if if_none_match(&headers, cell.version) {
            return with_meta(Response::builder().status(StatusCode::NOT_MODIFIED), &lease)?
                .body(Body::empty())
                .map_err(|e| ApiError::Internal(e.to_string()));
        }
        // The body is held whole until it is sent: it takes its room in the body buffer.
        let room = state.limits.buffer(cell.body.size_bytes).await?;
        if let Some(bytes) = fetch_body(&state, &cell.body, inline_body).await? {
            return Ok(limits::hold(respond(&lease, bytes)?, room));
        }
        // The body was replaced and collected between the two reads: read again.
    }
    Err(ApiError::Unavailable("checkpoint is being rewritten; retry".into()))
}

async fn read_and_delete(state: &AppState, owner: String, workflow_id: String) -> ApiResult<Response> {
    // Room for the body before it is consumed (the reservation bounds it and never changes), so a
    // busy node refuses the consume rather than lose the body.
    let reserved = match state.ledger.reader().checkpoint(&owner, &workflow_id)? {
        Some((
            Lease {
                kind: LeaseKind::Checkpoint(c),
                ..
            },
            _,
        )) => c.max_body_bytes,
        _ => state.config.checkpoint_max_body_bytes,
    };
    let room = state.limits.buffer(reserved).await?;
    let CheckpointConsumed { lease, inline_body } =
        ops::run(state, None, ConsumeCheckpoint { owner, workflow_id }, "checkpoint").await?;
    let body = &cell(&lease)?.body;
    let bytes = fetch_body(state, body, inline_body).await;
    if body.object_key.is_some() {
        // The ledger held the object for this read; let it go now, whatever the read's fate.
        let release = ReleaseBytes {
            lease_id: lease.lease_id.clone(),
        };
        let _ = state.ledger.run(None, release).await;
    }
    match bytes? {
        Some(bytes) => Ok(limits::hold(respond(&lease, bytes)?, room)),
        None => Err(ApiError::Integrity),
    }
}

/// `PUT`: replace the body, version + 1; `If-Match` makes it a compare-and-set.
#[utoipa::path(
    put,
    path = "/api/checkpoint/{workflow_id}",
    operation_id = "checkpoint_write",
    tag = "checkpoint",
    security(("api_key" = []), ("session" = [])),
    params(
        ("workflow_id" = String, Path, description = "The checkpoint's workflow id"),
        ("If-Match" = Option<String>, Header, nullable = false, description = "`\"<version>\"` or `*`: write only over that version"),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, description = "1–128 visible ASCII characters; a retry with the same key and the same request gets the first answer, another request with it a 422"),
    ),
    request_body(content = Object, content_type = "application/json", description = "The new state: one JSON value"),
    responses(
        (status = 200, description = "`{status, lease_id, workflow_id, version, size_bytes, updated_at, expires_at}`", content_type = "application/json", body = crate::openapi::schemas::CheckpointWritten, headers(("ETag" = String, description = "The new version, quoted"))),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E404,
        crate::openapi::E409,
        crate::openapi::E410,
        crate::openapi::E412,
        crate::openapi::E413,
        crate::openapi::E422,
    )
)]
pub async fn write(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let workflow_id = workflow_id_param(path)?;
    let if_version = if_match(&headers)?;
    // The reservation never changes, so a local read bounds the body; the ledger checks again.
    let limit = match state.ledger.reader().checkpoint(&caller.account_id, &workflow_id)? {
        Some((
            Lease {
                kind: LeaseKind::Checkpoint(c),
                ..
            },
            _,
        )) => c.max_body_bytes,
        _ => state.config.checkpoint_max_body_bytes,
    };
    let keyed = idempotency::begin(&state, &headers, &caller.account_id, WRITE_ROUTE)?;
    let body = read_json_body(&state, body, &headers, limit).await?;
    let idem = keyed.as_ref().map(|k| {
        k.seal(&[
            Part::Value(workflow_id.as_bytes()),
            Part::Header(&headers, "if-match"),
            Part::Value(blake3::hash(&body.bytes).as_bytes()),
        ])
    });
    let small = blobs::small(&state, body.bytes.clone()).await?;
    let write = WriteCheckpoint {
        owner: caller.account_id,
        workflow_id,
        if_version,
        body: small.body,
        inline_body: small.inline,
    };
    let answer = state.ledger.run(idem, write).await;
    small.staged.settle(&state, &answer).await;
    let lease = ops::answer(answer, "checkpoint")?;
    let cell = cell(&lease)?;
    let json = json!({
        "status": "ok",
        "lease_id": lease.lease_id,
        "workflow_id": cell.workflow_id,
        "version": cell.version,
        "size_bytes": cell.body.size_bytes,
        "updated_at": render::timestamp(cell.updated_at_ms),
        "expires_at": render::timestamp(lease.expires_at_ms),
    });
    let mut response = Json(json).into_response();
    add_meta(response.headers_mut(), &lease)?;
    Ok(response)
}

#[utoipa::path(
    delete,
    path = "/api/checkpoint/{workflow_id}",
    operation_id = "checkpoint_delete",
    tag = "checkpoint",
    security(("api_key" = []), ("session" = [])),
    params(
        ("workflow_id" = String, Path, description = "The checkpoint's workflow id"),
    ),
    responses(
        (status = 200, description = "`{status, lease_id, workflow_id, deleted, refund_micros}`", content_type = "application/json", body = Object),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E404,
        crate::openapi::E410,
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<Response> {
    let workflow_id = workflow_id_param(path)?;
    let delete = DeleteCheckpoint {
        owner: caller.account_id,
        workflow_id: workflow_id.clone(),
    };
    let lease = ops::run(&state, None, delete, "checkpoint").await?;
    Ok(Json(json!({
        "status": "ok",
        "lease_id": lease.lease_id,
        "workflow_id": workflow_id,
        "deleted": true,
        "refund_micros": "0",
    }))
    .into_response())
}

/// The body's bytes; `None` when its object has already been replaced and collected.
async fn fetch_body(state: &AppState, body: &BodyRef, inline_body: Option<Vec<u8>>) -> ApiResult<Option<Bytes>> {
    match (&body.object_key, inline_body) {
        (None, Some(bytes)) => Ok(Some(Bytes::from(bytes))),
        (Some(key), _) => objects::read_small(&state.objects, key, &body.blake3_hex, &state.metrics).await,
        (None, None) => Err(ApiError::Internal("inline checkpoint body missing".into())),
    }
}

/// Reads the body (at most `limit` bytes, checked against Content-Length first) and checks that
/// it is one JSON value.
async fn read_json_body(state: &AppState, body: Body, headers: &HeaderMap, limit: u64) -> ApiResult<bodies::Buffered> {
    let body = bodies::read(state, body, headers, limit, "body").await?;
    serde_json::from_slice::<serde::de::IgnoredAny>(&body.bytes).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
    Ok(body)
}

fn respond(lease: &Lease, bytes: Bytes) -> ApiResult<Response> {
    with_meta(Response::builder().status(StatusCode::OK), lease)?
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, bytes.len())
        .body(Body::from(bytes))
        .map_err(|e| ApiError::Internal(e.to_string()))
}

fn with_meta(mut builder: axum::http::response::Builder, lease: &Lease) -> ApiResult<axum::http::response::Builder> {
    if let Some(headers) = builder.headers_mut() {
        add_meta(headers, lease)?;
    }
    Ok(builder)
}

fn add_meta(headers: &mut HeaderMap, lease: &Lease) -> ApiResult<()> {
    let cell = cell(lease)?;
    let pairs = [
        ("x-checkpoint-version", cell.version.to_string()),
        ("x-checkpoint-updated-at", render::timestamp(cell.updated_at_ms)),
        ("etag", etag(cell.version)),
        ("x-lease-id", lease.lease_id.clone()),
        ("x-lease-expires-at", render::timestamp(lease.expires_at_ms)),
    ];
    for (name, value) in pairs {
        if let Ok(v) = value.parse() {
            headers.insert(name, v);
        }
    }
    Ok(())
}

fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

/// `If-Match: 3`, `If-Match: "3"` (the ETag) or `*` (any version).
pub(crate) fn if_match(headers: &HeaderMap) -> ApiResult<Option<u64>> {
    let Some(value) = optional_str(headers, "if-match")? else {
        return Ok(None);
    };
    if value == "*" {
        return Ok(None);
    }
    let bare = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    if value.starts_with("W/") {
        // If-Match uses strong comparison: a weak tag matches nothing.
        return Ok(Some(u64::MAX));
    }
    parse_u64(bare, "if-match").map(Some)
}

pub(crate) fn if_none_match(headers: &HeaderMap, version: u64) -> bool {
    optional_str(headers, "if-none-match")
        .ok()
        .flatten()
        .is_some_and(|v| v == "*" || v.split(',').any(|t| t.trim().trim_start_matches("W/") == etag(version)))
}

/// `^[A-Za-z0-9._-]{1,128}$`.
pub fn is_workflow_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= relay_raft::sm::checkpoints::WORKFLOW_ID_MAX_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

pub(crate) fn workflow_id_header(headers: &HeaderMap) -> ApiResult<String> {
    const NAME: &str = "x-workflow-id";
    let id = optional_str(headers, NAME)?.ok_or(ApiError::MissingHeader(NAME))?;
    if !is_workflow_id(id) {
        return Err(ApiError::InvalidHeader {
            name: NAME,
            reason: "must be 1 to 128 characters of A-Z a-z 0-9 . _ -".into(),
        });
    }
    Ok(id.to_string())
}

/// A workflow id from the path; ids that cannot exist are 404 like unknown ones.
fn workflow_id_param(path: Result<Path<String>, PathRejection>) -> ApiResult<String> {
    match path {
        Ok(Path(id)) if is_workflow_id(&id) => Ok(id),
        _ => Err(ApiError::NotFound("checkpoint")),
    }
}

/// The checkpoint part of a lease. Checkpoint commands only touch checkpoints (and keys are
/// scoped by route), so another kind is a bug.
fn cell(lease: &Lease) -> ApiResult<&Checkpoint> {
    match &lease.kind {
        LeaseKind::Checkpoint(c) => Ok(c),
        other => Err(ApiError::Internal(format!(
            "checkpoint command answered with a {}",
            other.name()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Workflow ids follow the reference's alphabet and length.
    #[test]
    fn workflow_ids() {
        assert!(is_workflow_id("crawl-job-42"));
        assert!(is_workflow_id("a.b_c-D9"));
        assert!(is_workflow_id(&"x".repeat(128)));
        for bad in ["", "a/b", "a b", "é", "a%2F", &"x".repeat(129)] {
            assert!(!is_workflow_id(bad), "{bad:?}");
        }
    }

    /// If-Match takes the bare version, the ETag, or `*`; a weak tag never matches.
    #[test]
    fn if_match_forms() {
        let mut h = HeaderMap::new();
        for (value, expected) in [
            ("3", Some(3)),
            ("\"3\"", Some(3)),
            ("*", None),
            ("W/\"3\"", Some(u64::MAX)),
        ] {
            h.insert("if-match", value.parse().unwrap());
            assert_eq!(if_match(&h).unwrap(), expected, "{value}");
        }
        h.insert("if-match", "abc".parse().unwrap());
        assert!(if_match(&h).is_err());
    }
}

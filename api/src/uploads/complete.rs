//! `POST /api/uploads/{id}/complete`: the owner says the bytes are in the store. The node reads
//! them back (size, blake3, SHA-256) and the ledger completes the upload only if they are what
//! was declared; then the lease is readable. For presigned multipart uploads the body names the
//! parts' ETags and the node completes the multipart upload first. Completing twice answers the
//! completed upload. `GET /api/uploads/{id}`: where an upload stands.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use object_store::multipart::{MultipartStore, PartId};
use relay_raft::ops::CompleteUpload;
use relay_raft::upload::{Mode, Upload, UploadState};
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::uploads::{find, upload_id_param, view};
use crate::{bodies, objects, ops};

/// The largest completion body: 10 000 parts' ETags.
const BODY_MAX_BYTES: u64 = 1 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Completion {
    #[serde(default)]
    parts: Vec<PartTag>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartTag {
    part_number: u64,
    etag: String,
}

/// The caller's upload (another owner's is 404, like an unknown one).
async fn owned(state: &AppState, caller: &Caller, upload_id: &str) -> ApiResult<Upload> {
    let upload = find(state, upload_id, true).await?;
    if upload.owner != caller.account_id {
        return Err(ApiError::NotFound("upload"));
    }
    Ok(upload)
}

#[utoipa::path(
    get,
    path = "/api/uploads/{upload_id}",
    operation_id = "uploads_complete_status",
    tag = "uploads",
    security(("api_key" = []), ("session" = [])),
    params(
        ("upload_id" = String, Path, description = "An upload id (`upl_…`)"),
    ),
    responses(
        (status = 200, description = "The upload: `{upload_id, status, size_bytes, expires_at, created_at, lease_id, blake3, sha256}`", content_type = "application/json", body = crate::openapi::schemas::UploadView),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E404,
    )
)]
pub async fn status(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<Response> {
    let upload = owned(&state, &caller, &upload_id_param(path)?).await?;
    let now = state.ledger.reader().clock_ms()?.max(relay_raft::wall_clock_ms());
    Ok(Json(view(&upload, now)).into_response())
}

#[utoipa::path(
    post,
    path = "/api/uploads/{upload_id}/complete",
    operation_id = "uploads_complete_complete",
    tag = "uploads",
    security(("api_key" = []), ("session" = [])),
    params(
        ("upload_id" = String, Path, description = "An upload id (`upl_…`)"),
    ),
    request_body(content = Object, content_type = "application/json", description = "For S3 multipart: `{parts: [{part_number, etag}]}`; otherwise empty"),
    responses(
        (status = 200, description = "The completed upload", content_type = "application/json", body = crate::openapi::schemas::UploadView),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E404,
        crate::openapi::E409,
        crate::openapi::E410,
        crate::openapi::E413,
        crate::openapi::E422,
    )
)]
pub async fn complete(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let upload_id = upload_id_param(path)?;
    let upload = owned(&state, &caller, &upload_id).await?;
    let raw = bodies::read(&state, body, &headers, BODY_MAX_BYTES, "completion body")
        .await?
        .bytes;
    let completion: Completion = if raw.iter().all(u8::is_ascii_whitespace) {
        Completion { parts: Vec::new() }
    } else {
        serde_json::from_slice(&raw).map_err(|e| ApiError::InvalidJson(e.to_string()))?
    };
    let now = relay_raft::wall_clock_ms();
    let gone = || ApiError::Gone("the upload was abandoned, ended or is past its deadline");
    match &upload.state {
        UploadState::Complete { .. } => return Ok(Json(view(&upload, now)).into_response()),
        UploadState::Pending if now < upload.expires_at_ms => {}
        _ => return Err(gone()),
    }
    // Nothing is asked of the store (a multipart completion builds an object) for a lease that
    // can no longer take it.
    if let relay_raft::upload::Target::Lease { lease_id } = &upload.target {
        if !state
            .ledger
            .reader()
            .lease(lease_id)?
            .is_some_and(|l| l.is_live_at(now))
        {
            return Err(gone());
        }
    }
    match &upload.mode {
        Mode::Local => {
            return Err(ApiError::UploadIncomplete(
                "PUT the bytes to the upload's URL; that request completes it".into(),
            ))
        }
        Mode::Tus { .. } => {
            return Err(ApiError::UploadIncomplete(
                "a tus upload completes with its last PATCH".into(),
            ))
        }
        Mode::S3Multipart { multipart_id, .. } => {
            finish_multipart(&state, &upload, multipart_id, completion.parts).await?
        }
        Mode::S3Single => {}
    }
    let _slot = state.limits.upload_slot(&caller.account_id).await?;
    let with_sha256 = super::needs_sha256(&state, &upload)?;
    let Some((size_bytes, blake3_hex, sha256_hex)) =
        objects::measure(&state.objects, &upload.object_key, with_sha256).await?
    else {
        return Err(ApiError::UploadIncomplete(
            "the store holds no bytes for this upload yet: PUT them to its URL first".into(),
        ));
    };
    let op = CompleteUpload {
        upload_id,
        owner: Some(caller.account_id.clone()),
        object_key: None,
        size_bytes,
        blake3_hex,
        sha256_hex: sha256_hex.unwrap_or_default(),
    };
    let done = ops::run(&state, None, op, "upload").await?;
    Ok(Json(view(&done, now)).into_response())
}

/// Completes the store's multipart upload from the parts' ETags, in part order.
async fn finish_multipart(state: &AppState, upload: &Upload, multipart_id: &str, parts: Vec<PartTag>) -> ApiResult<()> {
    let Some(s3) = &state.s3 else {
        return Err(ApiError::Internal("a multipart upload without S3".into()));
    };
    let Mode::S3Multipart { part_bytes, .. } = upload.mode else {
        return Err(ApiError::Internal("not multipart".into()));
    };
    let count = upload.size_bytes.div_ceil(part_bytes);
    if parts.len() as u64 != count || parts.iter().enumerate().any(|(i, p)| p.part_number != i as u64 + 1) {
        return Err(ApiError::InvalidValue {
            field: "parts",
            reason: format!("name all {count} parts, numbered 1..={count} in order, with their ETags"),
        });
    }
    if parts.iter().any(|p| p.etag.is_empty() || p.etag.len() > 128) {
        return Err(ApiError::InvalidValue {
            field: "parts",
            reason: "every part needs the ETag its PUT answered".into(),
        });
    }
    let path = object_store::path::Path::from(upload.object_key.as_str());
    let ids = parts.into_iter().map(|p| PartId { content_id: p.etag }).collect();
    let id = multipart_id.to_string();
    match s3.client.complete_multipart(&path, &id, ids).await {
        Ok(_) => Ok(()),
        // Completed by an earlier call whose answer was lost: the object is there to measure.
        Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(object_store::Error::Generic { source, .. }) => {
            tracing::info!(error = %source, "completing a multipart upload");
            Err(ApiError::UploadIncomplete(
                "the store did not accept the parts: every part must be uploaded with its URL, and each ETag be the one its PUT answered".into(),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

//! `PUT /uploads/{id}?expires=…&sig=…`: the node-signed upload URL of the local-files store.
//! The signature and expiry are checked before a byte is read; the body is then bounded by the
//! upload's declared length, hashed as it streams to a fresh blob, checked against the declared
//! SHA-256, and the upload completed in the same request. A second PUT after completion is 409:
//! the bytes are written once.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use relay_raft::ops::CompleteUpload;
use relay_raft::upload::{Mode, UploadState};

use crate::error::{ApiError, ApiResult};
use crate::headers::{optional_str, parse_u64, query_map};
use crate::state::AppState;
use crate::uploads::{find, sign, upload_id_param, view};
use crate::{blobs, ids, ops};

#[utoipa::path(
    put,
    path = "/uploads/{upload_id}",
    operation_id = "uploads_local_put",
    tag = "uploads",
    params(
        ("upload_id" = String, Path, description = "An upload id (`upl_…`)"),
        ("expires" = u64, Query, description = "From the signed URL"),
        ("sig" = String, Query, description = "From the signed URL"),
    ),
    request_body(content = crate::openapi::schemas::Binary, content_type = "*/*", description = "Exactly the upload's declared size"),
    responses(
        (status = 200, description = "The upload: `{upload_id, status, size_bytes, expires_at, created_at, lease_id, blake3, sha256}`", content_type = "application/json", body = crate::openapi::schemas::UploadView),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E404,
        crate::openapi::E409,
        crate::openapi::E410,
        crate::openapi::E422,
    )
)]
pub async fn put(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let upload_id = upload_id_param(path)?;
    let q = query_map(query.as_deref())?;
    let forbidden = || ApiError::Forbidden("the upload URL's signature is not valid");
    let expires_s = parse_u64(q.get("expires").ok_or_else(forbidden)?, "expires").map_err(|_| forbidden())?;
    let sig = q.get("sig").ok_or_else(forbidden)?;
    if !sign::verify(&state.config.cluster_secret, &upload_id, expires_s, sig) {
        return Err(forbidden());
    }
    if relay_raft::wall_clock_ms() / 1000 >= expires_s {
        return Err(ApiError::Forbidden("the upload URL has expired"));
    }
    let upload = find(&state, &upload_id, false).await?;
    if upload.mode != Mode::Local {
        return Err(ApiError::NotFound("upload"));
    }
    match upload.state {
        UploadState::Pending => {}
        UploadState::Complete { .. } => return Err(ApiError::UploadComplete),
        _ => {
            return Err(ApiError::Gone(
                "the upload was abandoned, ended or is past its deadline",
            ))
        }
    }
    if let Some(length) = optional_str(&headers, "content-length")? {
        if length.parse::<u64>().ok() != Some(upload.size_bytes) {
            return Err(ApiError::SizeMismatch {
                declared: upload.size_bytes,
                received: length.parse().unwrap_or(0),
            });
        }
    }
    let _slot = state.limits.upload_slot(&upload.owner).await?;
    let with_sha256 = super::needs_sha256(&state, &upload)?;
    let blob = blobs::upload_to(&state, ids::blob_key(), body, upload.size_bytes, with_sha256).await?;
    let sha256_hex = blob.sha256_hex.clone().unwrap_or_default();
    let complete = CompleteUpload {
        upload_id,
        owner: None,
        object_key: Some(blob.object_key.clone()),
        size_bytes: blob.size_bytes,
        blake3_hex: blob.blake3_hex.clone(),
        sha256_hex,
    };
    let answer = state.ledger.run(None, complete).await;
    blob.staged.settle(&state, &answer).await;
    let done = ops::answer(answer, "upload")?;
    Ok((StatusCode::OK, Json(view(&done, relay_raft::wall_clock_ms()))).into_response())
}

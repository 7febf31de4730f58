//! The `upload` object a create hands out instead of taking the body: where to PUT the bytes,
//! with which headers, until when. On S3 the bytes go straight to the bucket: one presigned PUT
//! bound to the length, the checksum when one is declared, and write-once (`If-None-Match: *`),
//! or above the single-PUT size presigned multipart parts, each bound to its length. On local
//! files a node serves the PUT itself at a node-signed URL ([`super::local`]).

use std::time::Duration;

use axum::http::HeaderMap;
use base64::Engine;
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::signer::{HeaderName, HeaderValue, Method, SignedUrlOptions, Signer};
use relay_raft::ops::NewUpload;
use relay_raft::upload::{Mode, Target};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::uploads::{new_upload_id, sign, S3Direct};
use crate::{mailbox, render};

/// S3's bounds on multipart uploads.
const PARTS_MAX: u64 = 10_000;
const PART_MIN_BYTES: u64 = 5 << 20;

/// A planned upload: the record for the ledger and the object for the client.
pub struct Plan {
    pub upload: NewUpload,
    pub object: Value,
}

/// What is to be uploaded, by whom, for what.
pub struct Want {
    pub owner: String,
    pub object_key: String,
    pub size_bytes: u64,
    pub sha256_hex: Option<String>,
    pub ttl_seconds: u64,
    pub target: Target,
}

/// Plans `want`: makes its id, its URL(s) and (for multipart) the store's multipart upload.
/// Nothing is written to the ledger; a multipart upload the ledger then refuses is aborted by
/// [`abandon`].
pub async fn plan(state: &AppState, headers: &HeaderMap, want: Want) -> ApiResult<Plan> {
    let upload_id = new_upload_id();
    let expires_at_ms = relay_raft::wall_clock_ms() + want.ttl_seconds * 1000;
    let limits = &state.config.uploads;
    let mode = match &state.s3 {
        None => Mode::Local,
        Some(_) if want.size_bytes <= limits.single_put_max_bytes => Mode::S3Single,
        Some(s3) => {
            let part_bytes = limits
                .part_bytes
                .max(want.size_bytes.div_ceil(PARTS_MAX))
                .max(PART_MIN_BYTES);
            let path = Path::from(want.object_key.as_str());
            let multipart_id = s3.client.create_multipart(&path).await?;
            Mode::S3Multipart {
                multipart_id,
                part_bytes,
            }
        }
    };
    let upload = NewUpload {
        upload_id,
        owner: want.owner,
        object_key: want.object_key,
        size_bytes: want.size_bytes,
        sha256_hex: want.sha256_hex,
        ttl_seconds: want.ttl_seconds,
        target: want.target,
        mode,
    };
    let object = object(state, headers, &upload, expires_at_ms).await?;
    Ok(Plan { upload, object })
}

/// The `upload` object of a pending upload, signed again for what is left of its life (a keyed
/// retry of its create answers it so): the same URLs but for their signatures' timestamps.
pub async fn again(state: &AppState, headers: &HeaderMap, upload: &relay_raft::upload::Upload) -> ApiResult<Value> {
    let new = NewUpload {
        upload_id: upload.upload_id.clone(),
        owner: upload.owner.clone(),
        object_key: upload.object_key.clone(),
        size_bytes: upload.size_bytes,
        sha256_hex: upload.sha256_hex.clone(),
        ttl_seconds: upload
            .expires_at_ms
            .saturating_sub(relay_raft::wall_clock_ms())
            .div_ceil(1000)
            .max(1),
        target: upload.target.clone(),
        mode: upload.mode.clone(),
    };
    object(state, headers, &new, upload.expires_at_ms).await
}

/// Where and how to PUT an upload's bytes, valid until `expires_at_ms`.
async fn object(state: &AppState, headers: &HeaderMap, upload: &NewUpload, expires_at_ms: u64) -> ApiResult<Value> {
    let base = mailbox::base_url(state, headers);
    let upload_id = &upload.upload_id;
    let mut object = match (&state.s3, &upload.mode) {
        (None, _) | (_, Mode::Local) => {
            let expires_s = expires_at_ms / 1000;
            let sig = sign::signature(&state.config.cluster_secret, upload_id, expires_s);
            let url = format!("{base}/uploads/{upload_id}?expires={expires_s}&sig={sig}");
            let mut h = json!({"content-length": upload.size_bytes.to_string()});
            if let Some(sha) = &upload.sha256_hex {
                h["x-content-sha256"] = json!(sha);
            }
            json!({"url": url, "method": "PUT", "headers": h})
        }
        (
            Some(s3),
            Mode::S3Multipart {
                multipart_id,
                part_bytes,
            },
        ) => {
            let count = upload.size_bytes.div_ceil(*part_bytes);
            let mut parts = Vec::with_capacity(count as usize);
            for n in 1..=count {
                let size = (*part_bytes).min(upload.size_bytes - (n - 1) * part_bytes);
                let query = [("partNumber", n.to_string()), ("uploadId", multipart_id.clone())];
                let bound = [("content-length", size.to_string())];
                let url = presigned_put(s3, &upload.object_key, &query, &bound, upload.ttl_seconds).await?;
                parts.push(json!({
                    "part_number": n,
                    "url": url,
                    "method": "PUT",
                    "size_bytes": size,
                    "headers": {"content-length": size.to_string()},
                }));
            }
            json!({"url": null, "method": "PUT", "headers": {}, "part_size_bytes": part_bytes, "parts": parts})
        }
        (Some(s3), _) => {
            let mut bound = vec![
                ("content-length", upload.size_bytes.to_string()),
                ("if-none-match", "*".to_string()),
            ];
            if let Some(sha) = &upload.sha256_hex {
                let raw = hex::decode(sha).map_err(|_| ApiError::Internal("sha256 not hex".into()))?;
                bound.push((
                    "x-amz-checksum-sha256",
                    base64::engine::general_purpose::STANDARD.encode(raw),
                ));
            }
            let url = presigned_put(s3, &upload.object_key, &[], &bound, upload.ttl_seconds).await?;
            let h: serde_json::Map<String, Value> = bound.into_iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
            json!({"url": url, "method": "PUT", "headers": h})
        }
    };
    object["upload_id"] = json!(upload_id);
    object["expires_at"] = json!(render::timestamp(expires_at_ms));
    object["size_bytes"] = json!(upload.size_bytes);
    object["complete_url"] = json!(format!("{base}/api/uploads/{upload_id}/complete"));
    Ok(object)
}

/// A presigned PUT: SigV4 binding the length where static credentials are known, else
/// object_store's `Signer` (which binds the other headers and the query, not the length).
async fn presigned_put(
    s3: &S3Direct,
    object_key: &str,
    query: &[(&str, String)],
    bound: &[(&str, String)],
    ttl_seconds: u64,
) -> ApiResult<String> {
    if let Some(p) = &s3.presigner {
        return Ok(p.put_url(object_key, query, bound, ttl_seconds, chrono::Utc::now()));
    }
    let mut opts = SignedUrlOptions::new().with_query(query.iter().map(|(k, v)| (k.to_string(), v.clone())));
    for (name, value) in bound.iter().filter(|(n, _)| *n != "content-length") {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| ApiError::Internal(e.to_string()))?;
        let value = HeaderValue::from_str(value).map_err(|e| ApiError::Internal(e.to_string()))?;
        opts = opts.with_signed_header(name, value);
    }
    let url = s3
        .client
        .signed_url_opts(
            Method::PUT,
            &Path::from(object_key),
            Duration::from_secs(ttl_seconds),
            &opts,
        )
        .await?;
    Ok(url.to_string())
}

/// Undoes what [`plan`] made in the store when the ledger did not take the upload.
pub async fn abandon(state: &AppState, upload: &NewUpload) {
    if let (Some(s3), Mode::S3Multipart { multipart_id, .. }) = (&state.s3, &upload.mode) {
        let path = Path::from(upload.object_key.as_str());
        if let Err(e) = s3.client.abort_multipart(&path, multipart_id).await {
            tracing::warn!(object_key = %upload.object_key, error = %e, "aborting an unused multipart upload");
        }
    }
}

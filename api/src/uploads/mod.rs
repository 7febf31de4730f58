//! Uploads whose bytes do not come in the create request. The map:
//!
//! - [`presign`]: the `upload` object a create hands out: an S3 presigned PUT (or presigned
//!   multipart parts, [`sigv4`]) bound to the declared length and checksum, or a node-signed URL
//!   on local files ([`sign`]).
//! - [`local`]: `PUT /uploads/{id}`, the node-signed URL's handler; it completes the upload itself.
//! - [`complete`]: `POST /api/uploads/{id}/complete` (reads the bytes back from the store and
//!   verifies size and hash) and `GET /api/uploads/{id}`.
//! - [`tus`]: resumable uploads (tus 1.0) at `/api/uploads/tus`.
//! - [`scratch`]: the free 24-hour scratch tier, and reusing a scratch object as a create's source.
//!
//! The ledger ([`relay_raft::upload`]) holds every upload's record, so any node can take the next
//! step, and abandons at its deadline an upload never completed, with its bytes.

pub mod complete;
pub mod local;
pub mod presign;
pub mod scratch;
pub mod sign;
pub mod sigv4;
pub mod tus;

use axum::extract::rejection::PathRejection;
use axum::extract::Path;
use axum::http::HeaderMap;
use relay_raft::upload::{Upload, UploadState};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::headers::optional_str;
use crate::render;
use crate::state::AppState;

/// Direct-to-S3 uploads: the bucket's client (multipart create and complete, and presigning
/// when there are no static credentials) and the SigV4 presigner that binds the length.
#[derive(Clone, Debug)]
pub struct S3Direct {
    pub client: std::sync::Arc<object_store::aws::AmazonS3>,
    pub presigner: Option<sigv4::Presigner>,
}

impl S3Direct {
    pub fn new(client: std::sync::Arc<object_store::aws::AmazonS3>, objects_url: &str) -> S3Direct {
        S3Direct {
            client,
            presigner: sigv4::Presigner::from_url(objects_url),
        }
    }
}

/// The uploads' bounds and lifetimes (`--upload-*`, `--scratch-*`, `--tus-*`).
#[derive(Clone, Debug)]
pub struct UploadLimits {
    /// How long an upload URL (and a pending upload) lives.
    pub url_ttl_seconds: u64,
    /// Above this, an S3 upload is presigned as multipart parts.
    pub single_put_max_bytes: u64,
    /// Presigned multipart part size (grown so no upload needs more than 10 000 parts).
    pub part_bytes: u64,
    /// The largest scratch object.
    pub scratch_max_bytes: u64,
    /// A scratch object's life.
    pub scratch_ttl_seconds: u64,
    /// Scratch objects one owner may hold at once, and their total bytes.
    pub scratch_max_count: u64,
    pub scratch_max_total_bytes: u64,
    /// How long a tus upload may take from creation to its last byte.
    pub tus_ttl_seconds: u64,
    /// A tus PATCH is stored as pieces of at most this size, each recorded as it lands.
    pub tus_chunk_bytes: u64,
    /// tus uploads one owner may have in progress at once, and the bytes they may declare.
    pub tus_max_pending: u64,
    pub tus_max_pending_bytes: u64,
}

impl Default for UploadLimits {
    fn default() -> Self {
        UploadLimits {
            url_ttl_seconds: 3600,
            single_put_max_bytes: 32 << 20,
            part_bytes: 16 << 20,
            scratch_max_bytes: 50 << 20,
            scratch_ttl_seconds: 24 * 3600,
            scratch_max_count: 100,
            scratch_max_total_bytes: 1 << 30,
            tus_ttl_seconds: 24 * 3600,
            tus_chunk_bytes: 8 << 20,
            tus_max_pending: 16,
            tus_max_pending_bytes: 32 << 30,
        }
    }
}

/// An upload id from the path; malformed ids cannot exist, so they are 404 like unknown ones.
pub fn upload_id_param(path: Result<Path<String>, PathRejection>) -> ApiResult<String> {
    match path {
        Ok(Path(id)) if is_upload_id(&id) => Ok(id),
        _ => Err(ApiError::NotFound("upload")),
    }
}

pub fn is_upload_id(id: &str) -> bool {
    id.strip_prefix(relay_raft::upload::ID_PREFIX)
        .is_some_and(|rest| rest.len() == 26 && rest.parse::<ulid::Ulid>().is_ok())
}

pub fn new_upload_id() -> String {
    format!("{}{}", relay_raft::upload::ID_PREFIX, ulid::Ulid::new())
}

/// `X-Content-SHA256`: 64 hex digits, kept lowercase.
pub fn declared_sha256(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(text) = optional_str(headers, "x-content-sha256")? else {
        return Ok(None);
    };
    parse_sha256(text).map(Some).ok_or(ApiError::InvalidHeader {
        name: "X-Content-SHA256",
        reason: "must be a SHA-256 in 64 hex digits".into(),
    })
}

pub fn parse_sha256(text: &str) -> Option<String> {
    (text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())).then(|| text.to_ascii_lowercase())
}

/// Whether completing `upload` needs its bytes' SHA-256: to check a declared one, for a baton
/// (which keeps its content's SHA-256) or a scratch object (which may become a baton's content).
/// Otherwise it is not computed: a hash nobody asked for costs a full pass over the bytes.
pub fn needs_sha256(state: &AppState, upload: &Upload) -> ApiResult<bool> {
    if upload.sha256_hex.is_some() || upload.is_scratch() {
        return Ok(true);
    }
    Ok(match &upload.target {
        relay_raft::upload::Target::Lease { lease_id } => state
            .ledger
            .reader()
            .lease(lease_id)?
            .is_none_or(|l| matches!(l.kind, relay_raft::LeaseKind::Baton(_))),
        relay_raft::upload::Target::Fill { upload_id } => match state.ledger.reader().upload(upload_id)? {
            Some(target) => needs_sha256(state, &target)?,
            None => true,
        },
        _ => false,
    })
}

/// The upload's record as the freshest read can see it: a local read, and a read barrier when
/// this node does not know it yet (it may have been made through another node just now).
pub async fn find(state: &AppState, upload_id: &str, fresh: bool) -> ApiResult<Upload> {
    if !fresh {
        if let Some(u) = state.ledger.reader().upload(upload_id)? {
            return Ok(u);
        }
    }
    state
        .ledger
        .linearizable()
        .await?
        .upload(upload_id)?
        .ok_or(ApiError::NotFound("upload"))
}

/// An upload as its owner sees it.
pub fn view(upload: &Upload, now_ms: u64) -> Value {
    let (lease_id, blake3, sha256) = match &upload.state {
        UploadState::Complete {
            lease_id,
            blake3_hex,
            sha256_hex,
            ..
        } => (
            lease_id.clone(),
            Some(blake3_hex.clone()),
            Some(sha256_hex.clone()).filter(|s| !s.is_empty()),
        ),
        _ => (None, None, None),
    };
    let mut v = json!({
        "upload_id": upload.upload_id,
        "status": upload.status_at(now_ms),
        "size_bytes": upload.size_bytes,
        "expires_at": render::timestamp(upload.expires_at_ms),
        "created_at": render::timestamp(upload.created_at_ms),
        "lease_id": lease_id,
        "blake3": blake3,
        "sha256": sha256,
    });
    if let relay_raft::upload::Target::Scratch { input_key } = &upload.target {
        v["input_key"] = json!(input_key);
    }
    if let relay_raft::upload::Mode::Tus { offset, .. } = &upload.mode {
        v["offset"] = json!(offset);
    }
    v
}

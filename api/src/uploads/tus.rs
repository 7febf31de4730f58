//! Resumable uploads, tus 1.0 (core, creation, expiration, checksum, termination) at
//! `/api/uploads/tus`. A creation declares the length and, in `Upload-Metadata`, the Storage
//! lease to buy (`filename`, `duration_seconds`, `content_type`); nothing is paid until the last
//! byte arrives, when the lease is created from the owner's balance (after a price check at
//! creation) and the final answer names it in `X-Lease-Id`. Or it names a pending presigned
//! upload (`upload_id`) whose bytes it brings: its last byte completes that one.
//!
//! Every PATCH is stored as pieces of at most `--tus-chunk-bytes`, each written to the object
//! store and then recorded in the ledger at the upload's offset, so the offset survives the node:
//! after a crash any node answers `HEAD` with what was recorded and takes the next PATCH. A PATCH
//! with `Upload-Checksum` is recorded only once its whole body matched.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use relay_raft::command::NewLease;
use relay_raft::ops::{BeginUpload, EndUpload, FillFromTus, FinishTus, NewUpload, TusAppend};
use relay_raft::upload::{Chunk, Mode, ScratchQuota, Target, Upload, UploadState};
use relay_raft::{LeaseKind, Rejection};

use crate::auth::Caller;
use crate::blobs;
use crate::error::{ApiError, ApiResult};
use crate::headers::{check_duration, optional_str, parse_u64, required_str};
use crate::purchase::{self, Reservation};
use crate::state::AppState;
use crate::uploads::{find, new_upload_id, upload_id_param};
use crate::{ids, mailbox, objects, ops, store};

const VERSION: &str = "1.0.0";
const EXTENSIONS: &str = "creation,expiration,checksum,termination";
const CHECKSUMS: &str = "sha1,sha256";
/// The longest `Upload-Metadata` taken.
const METADATA_MAX_BYTES: usize = 4 << 10;

/// Every tus answer, errors too, names the protocol version.
fn tus(result: ApiResult<Response>) -> Response {
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    let h = response.headers_mut();
    h.insert("tus-resumable", HeaderValue::from_static(VERSION));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn check_version(headers: &HeaderMap) -> ApiResult<()> {
    match optional_str(headers, "tus-resumable")? {
        Some(VERSION) => Ok(()),
        _ => Err(ApiError::TusVersion),
    }
}

fn http_date(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

fn set(response: &mut Response, name: &'static str, value: impl ToString) {
    if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
        response.headers_mut().insert(HeaderName::from_static(name), v);
    }
}

#[utoipa::path(
    options,
    path = "/api/uploads/tus",
    operation_id = "uploads_tus_options",
    tag = "uploads",
    responses(
        (status = 204, description = "The tus versions, extensions, checksums and maximum size (headers)", headers(("Tus-Version" = String, description = "1.0.0"), ("Tus-Extension" = String, description = "The extensions served"))),
        crate::openapi::Common,
    )
)]
pub async fn options(State(state): State<AppState>) -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    set(&mut r, "tus-version", VERSION);
    set(&mut r, "tus-extension", EXTENSIONS);
    set(&mut r, "tus-checksum-algorithm", CHECKSUMS);
    set(&mut r, "tus-max-size", state.config.max_object_bytes);
    tus(Ok(r))
}

/// The same answer for one upload's URL.
#[utoipa::path(
    options,
    path = "/api/uploads/tus/{upload_id}",
    operation_id = "uploads_tus_options_upload",
    tag = "uploads",
    params(
        ("upload_id" = String, Path, description = "An upload id (`upl_…`)"),
    ),
    responses(
        (status = 204, description = "The tus versions, extensions, checksums and maximum size (headers)", headers(("Tus-Version" = String, description = "1.0.0"), ("Tus-Extension" = String, description = "The extensions served"))),
        crate::openapi::Common,
    )
)]
pub async fn options_upload(state: State<AppState>) -> Response {
    options(state).await
}

/// What a creation's `Upload-Metadata` asks for: a lease to buy, or a pending upload to fill.
struct Wanted {
    file_name: String,
    content_type: String,
    duration_seconds: u64,
    /// `upload_id`: the pending (presigned) upload whose bytes this brings.
    fill: Option<String>,
}

/// `key base64,key base64,…` with the keys this server reads; others are ignored.
fn metadata(headers: &HeaderMap) -> ApiResult<Wanted> {
    let raw = optional_str(headers, "upload-metadata")?.unwrap_or("");
    let bad = |reason: String| ApiError::InvalidHeader {
        name: "Upload-Metadata",
        reason,
    };
    if raw.len() > METADATA_MAX_BYTES {
        return Err(bad(format!("at most {METADATA_MAX_BYTES} bytes")));
    }
    let mut fields = HeaderMap::new();
    let mut duration = None;
    let mut fill = None;
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once(' ').unwrap_or((pair, ""));
        let value = base64::engine::general_purpose::STANDARD
            .decode(value.trim())
            .map_err(|_| bad(format!("{key}: the value is not base64")))?;
        match key {
            "filename" => {
                let v = HeaderValue::from_bytes(&value).map_err(|_| bad("filename: not a valid name".into()))?;
                fields.insert("x-file-name", v);
            }
            "content_type" | "filetype" => {
                let v = HeaderValue::from_bytes(&value).map_err(|_| bad(format!("{key}: not a media type")))?;
                fields.insert("content-type", v);
            }
            "duration_seconds" => {
                let text = std::str::from_utf8(&value).map_err(|_| bad("duration_seconds: not a number".into()))?;
                duration = Some(parse_u64(text, "Upload-Metadata duration_seconds")?);
            }
            "upload_id" => {
                let id = String::from_utf8(value).map_err(|_| bad("upload_id: not text".into()))?;
                fill = Some(id);
            }
            _ => {}
        }
    }
    if !fields.contains_key("x-file-name") {
        fields.insert("x-file-name", HeaderValue::from_static("upload"));
    }
    let duration_seconds = match (duration, &fill) {
        (Some(d), None) => d,
        (None, Some(_)) => 0,
        (None, None) => return Err(bad("duration_seconds (or upload_id) is required".into())),
        (Some(_), Some(_)) => {
            return Err(bad(
                "upload_id fills a lease already bought: send it without duration_seconds".into(),
            ))
        }
    };
    Ok(Wanted {
        file_name: store::file_name(&fields)?,
        content_type: store::content_type(&fields)?,
        duration_seconds,
        fill,
    })
}

#[utoipa::path(
    post,
    path = "/api/uploads/tus",
    operation_id = "uploads_tus_create",
    tag = "uploads",
    security(("api_key" = []), ("session" = [])),
    params(
        ("Tus-Resumable" = String, Header, description = "`1.0.0`"),
        ("Upload-Length" = u64, Header, description = "The whole upload's size"),
        ("Upload-Metadata" = Option<String>, Header, nullable = false, description = "tus metadata: `filename`, `content_type`, and `duration_seconds` or `upload_id`"),
    ),
    responses(
        (status = 201, description = "Created; `Location` is the upload's URL", headers(("Location" = String, description = "The upload's URL"), ("Upload-Expires" = String, description = "When an unfinished upload is dropped"))),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E402,
        crate::openapi::E404,
        crate::openapi::E410,
        crate::openapi::E412,
        crate::openapi::E413,
        crate::openapi::E422,
    )
)]
pub async fn create(State(state): State<AppState>, caller: Caller, headers: HeaderMap) -> Response {
    tus(create_inner(&state, caller, &headers).await)
}

async fn create_inner(state: &AppState, caller: Caller, headers: &HeaderMap) -> ApiResult<Response> {
    check_version(headers)?;
    if optional_str(headers, "content-length")?.is_some_and(|l| l != "0") {
        return Err(ApiError::BadRequest(
            "creation takes no body here (creation-with-upload is not offered): PATCH the bytes".into(),
        ));
    }
    if headers.contains_key("upload-defer-length") {
        return Err(ApiError::BadRequest(
            "Upload-Defer-Length is not supported: send Upload-Length".into(),
        ));
    }
    let length = parse_u64(required_str(headers, "upload-length")?, "Upload-Length")?;
    if length == 0 {
        return Err(ApiError::InvalidHeader {
            name: "Upload-Length",
            reason: "an upload holds at least one byte".into(),
        });
    }
    state.config.check_object_size("Upload-Length", length)?;
    // Every PATCH adds at least one piece, and an upload holds at most TUS_CHUNKS_MAX of them.
    let finishable = state
        .config
        .uploads
        .tus_chunk_bytes
        .saturating_mul(relay_raft::upload::TUS_CHUNKS_MAX as u64);
    if length > finishable {
        return Err(ApiError::TooLarge {
            what: "Upload-Length (tus pieces per upload times --tus-chunk-bytes)",
            limit: finishable,
        });
    }
    let wanted = metadata(headers)?;
    let cfg = &state.config;
    let target = match wanted.fill {
        // Already paid: the ledger checks it is the caller's, pending, single, of this length.
        Some(id) => {
            if !super::is_upload_id(&id) || find(state, &id, true).await?.owner != caller.account_id {
                return Err(ApiError::NotFound("upload"));
            }
            Target::Fill { upload_id: id }
        }
        None => {
            check_duration(
                wanted.duration_seconds,
                cfg.min_duration_seconds,
                cfg.max_duration_seconds,
            )?;
            // Priced now, paid when the last byte arrives: refuse early what the balance cannot pay.
            check_balance(state, &caller.account_id, length, wanted.duration_seconds)?;
            Target::NewStorage {
                file_name: wanted.file_name,
                content_type: wanted.content_type,
                duration_seconds: wanted.duration_seconds,
            }
        }
    };
    let upload = NewUpload {
        upload_id: new_upload_id(),
        owner: caller.account_id.clone(),
        object_key: ids::blob_key(),
        size_bytes: length,
        sha256_hex: None,
        ttl_seconds: cfg.uploads.tus_ttl_seconds,
        target,
        mode: Mode::Tus { offset: 0, chunks: 0 },
    };
    let quota = ScratchQuota {
        max_count: cfg.uploads.tus_max_pending,
        max_bytes: cfg.uploads.tus_max_pending_bytes,
    };
    let began = ops::run(
        state,
        None,
        BeginUpload {
            upload,
            quota: Some(quota),
        },
        "upload",
    )
    .await?;
    let location = format!(
        "{}/api/uploads/tus/{}",
        mailbox::base_url(state, headers),
        began.upload_id
    );
    let mut r = StatusCode::CREATED.into_response();
    set(&mut r, "location", location);
    set(&mut r, "upload-expires", http_date(began.expires_at_ms));
    Ok(r)
}

/// Whether the pending upload `upload_id` still takes bytes: pending, before its deadline, its
/// lease live.
async fn still_fillable(state: &AppState, upload_id: &str) -> ApiResult<bool> {
    let reader = state.ledger.linearizable().await?;
    let Some(target) = reader.upload(upload_id)? else {
        return Ok(false);
    };
    let now = reader.clock_ms()?.max(relay_raft::wall_clock_ms());
    if !target.is_pending() || now >= target.expires_at_ms {
        return Ok(false);
    }
    Ok(match &target.target {
        Target::Lease { lease_id } => reader.lease(lease_id)?.is_some_and(|l| l.is_live_at(now)),
        _ => false,
    })
}

/// Refuses (402) a lease of `size_bytes` for `duration_seconds` that `owner`'s balance cannot pay.
fn check_balance(state: &AppState, owner: &str, size_bytes: u64, duration_seconds: u64) -> ApiResult<()> {
    let price = purchase::quote(
        state,
        Reservation {
            billable_bytes: size_bytes,
            duration_seconds,
            product: "Storage lease",
            baton: None,
            extension: None,
        },
    )?;
    let balance = state
        .ledger
        .reader()
        .account(owner)?
        .ok_or(ApiError::Forbidden(
            "a tus upload is paid from an account's balance: use an API key or the account's session",
        ))?
        .balance_micros;
    if balance < price {
        return Err(ApiError::InsufficientBalance {
            balance_micros: balance,
            needed_micros: price,
        });
    }
    Ok(())
}

/// The caller's tus upload, read through a barrier (another node may have taken the last PATCH).
async fn owned(state: &AppState, caller: &Caller, upload_id: &str) -> ApiResult<Upload> {
    let upload = find(state, upload_id, true).await?;
    if upload.owner != caller.account_id || !matches!(upload.mode, Mode::Tus { .. }) {
        return Err(ApiError::NotFound("upload"));
    }
    Ok(upload)
}

/// An answer naming where the upload stands: its offset, length, deadline and lease once made.
fn progress(status: StatusCode, upload: &Upload, offset: u64, lease_id: Option<&str>) -> Response {
    let mut r = status.into_response();
    set(&mut r, "upload-offset", offset);
    set(&mut r, "upload-length", upload.size_bytes);
    set(&mut r, "upload-expires", http_date(upload.expires_at_ms));
    if let Some(id) = lease_id {
        set(&mut r, "x-lease-id", id);
    }
    r
}

fn lease_of(upload: &Upload) -> Option<&str> {
    match &upload.state {
        UploadState::Complete { lease_id, .. } => lease_id.as_deref(),
        _ => None,
    }
}

fn pending(upload: &Upload) -> ApiResult<u64> {
    match &upload.state {
        UploadState::Pending if relay_raft::wall_clock_ms() < upload.expires_at_ms => Ok(upload.offset()),
        UploadState::Complete { .. } => Err(ApiError::UploadComplete),
        _ => Err(ApiError::Gone("the upload was terminated or is past its deadline")),
    }
}

#[utoipa::path(
    head,
    path = "/api/uploads/tus/{upload_id}",
    operation_id = "uploads_tus_head",
    tag = "uploads",
    security(("api_key" = []), ("session" = [])),
    params(
        ("upload_id" = String, Path, description = "An upload id (`upl_…`)"),
        ("Tus-Resumable" = String, Header, description = "`1.0.0`"),
    ),
    responses(
        (status = 200, description = "The offset reached (headers)", headers(("Upload-Offset" = String, description = "Bytes received"), ("Upload-Length" = String, description = "The whole size"))),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E402,
        crate::openapi::E404,
        crate::openapi::E409,
        crate::openapi::E410,
        crate::openapi::E412,
    )
)]
pub async fn head(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    tus(head_inner(&state, caller, path, &headers).await)
}

async fn head_inner(
    state: &AppState,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    check_version(headers)?;
    let upload = owned(state, &caller, &upload_id_param(path)?).await?;
    if let Some(lease_id) = lease_of(&upload) {
        return Ok(progress(StatusCode::OK, &upload, upload.size_bytes, Some(lease_id)));
    }
    let offset = pending(&upload)?;
    // Every byte is in but the node that took the last one stopped before buying the lease.
    if offset == upload.size_bytes {
        let lease_id = finish(state, &upload).await?;
        return Ok(progress(StatusCode::OK, &upload, offset, Some(&lease_id)));
    }
    Ok(progress(StatusCode::OK, &upload, offset, None))
}

#[utoipa::path(
    delete,
    path = "/api/uploads/tus/{upload_id}",
    operation_id = "uploads_tus_delete",
    tag = "uploads",
    security(("api_key" = []), ("session" = [])),
    params(
        ("upload_id" = String, Path, description = "An upload id (`upl_…`)"),
        ("Tus-Resumable" = String, Header, description = "`1.0.0`"),
    ),
    responses(
        (status = 204, description = "Terminated"),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E404,
        crate::openapi::E409,
        crate::openapi::E410,
        crate::openapi::E412,
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    tus(async {
        check_version(&headers)?;
        let upload = owned(&state, &caller, &upload_id_param(path)?).await?;
        let end = EndUpload {
            upload_id: upload.upload_id,
            owner: caller.account_id.clone(),
        };
        ops::run(&state, None, end, "upload").await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }
    .await)
}

/// `Upload-Checksum: <algorithm> <base64 digest>`.
fn checksum(headers: &HeaderMap) -> ApiResult<Option<(ring::digest::Context, Vec<u8>)>> {
    let Some(text) = optional_str(headers, "upload-checksum")? else {
        return Ok(None);
    };
    let bad = |reason: &str| ApiError::InvalidHeader {
        name: "Upload-Checksum",
        reason: reason.into(),
    };
    let (algorithm, digest) = text
        .split_once(' ')
        .ok_or_else(|| bad("expected `<algorithm> <base64>`"))?;
    let algorithm = match algorithm {
        "sha1" => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        "sha256" => &ring::digest::SHA256,
        _ => return Err(bad("supported algorithms: sha1, sha256")),
    };
    let digest = base64::engine::general_purpose::STANDARD
        .decode(digest.trim())
        .map_err(|_| bad("the digest is not base64"))?;
    if digest.len() != algorithm.output_len() {
        return Err(bad("the digest has the wrong length for its algorithm"));
    }
    Ok(Some((ring::digest::Context::new(algorithm), digest)))
}

#[utoipa::path(
    patch,
    path = "/api/uploads/tus/{upload_id}",
    operation_id = "uploads_tus_patch",
    tag = "uploads",
    security(("api_key" = []), ("session" = [])),
    params(
        ("upload_id" = String, Path, description = "An upload id (`upl_…`)"),
        ("Tus-Resumable" = String, Header, description = "`1.0.0`"),
        ("Upload-Offset" = u64, Header, description = "Where these bytes start: the current offset"),
        ("Upload-Checksum" = Option<String>, Header, nullable = false, description = "`sha1|sha256 <base64 digest>` of this body"),
    ),
    request_body(content = crate::openapi::schemas::Binary, content_type = "application/offset+octet-stream", description = "The next bytes"),
    responses(
        (status = 204, description = "Appended; the last PATCH buys the lease (X-Lease-Id)", headers(("Upload-Offset" = String, description = "Bytes received"))),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E402,
        crate::openapi::E404,
        crate::openapi::E409,
        crate::openapi::E410,
        crate::openapi::E412,
        crate::openapi::E413,
        crate::openapi::E415,
        crate::openapi::E422,
        crate::openapi::E460,
    )
)]
pub async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    tus(patch_inner(&state, caller, path, &headers, body).await)
}

async fn patch_inner(
    state: &AppState,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    check_version(headers)?;
    if optional_str(headers, "content-type")? != Some("application/offset+octet-stream") {
        return Err(ApiError::UnsupportedMediaType(
            "a PATCH body is Content-Type: application/offset+octet-stream",
        ));
    }
    let offset = parse_u64(required_str(headers, "upload-offset")?, "Upload-Offset")?;
    let mut check = checksum(headers)?;
    let upload = owned(state, &caller, &upload_id_param(path)?).await?;
    if let Some(lease_id) = lease_of(&upload) {
        // A retried final PATCH: already done.
        if offset == upload.size_bytes && optional_str(headers, "content-length")?.unwrap_or("0") == "0" {
            return Ok(progress(StatusCode::NO_CONTENT, &upload, offset, Some(lease_id)));
        }
        return Err(ApiError::UploadComplete);
    }
    let current = pending(&upload)?;
    if offset != current {
        return Err(ApiError::OffsetMismatch { offset: current });
    }
    let remaining = upload.size_bytes - current;
    if let Some(length) = optional_str(headers, "content-length")? {
        let length = parse_u64(length, "Content-Length")?;
        if length > remaining {
            let mut r = ApiError::TooLarge {
                what: "the PATCH body (the rest of Upload-Length)",
                limit: remaining,
            }
            .into_response();
            set(&mut r, "upload-offset", current);
            return Ok(r);
        }
    }
    let _slot = state.limits.upload_slot(&caller.account_id).await?;
    let piece_max = state.config.uploads.tus_chunk_bytes as usize;
    let _room = state.limits.buffer(piece_max.min(remaining as usize) as u64).await?;
    let mut writer = Pieces {
        state,
        upload: &upload,
        at: current,
        held: Vec::new(),
        hold: check.is_some(),
    };
    let mut stream = body.into_data_stream();
    let mut buf = BytesMut::new();
    let mut received: u64 = 0;
    let mut cut: Option<ApiError> = None;
    while let Some(next) = stream.next().await {
        let data = match next {
            Ok(d) => d,
            Err(e) => {
                cut = Some(crate::listener::body_error(e));
                break;
            }
        };
        received += data.len() as u64;
        if received > remaining {
            // Pieces already recorded stay (as after a cut); the answer names the offset now.
            writer.drop_held().await;
            let mut r = ApiError::TooLarge {
                what: "the PATCH body (the rest of Upload-Length); what was recorded before it ran over is kept",
                limit: remaining,
            }
            .into_response();
            set(&mut r, "upload-offset", writer.at);
            return Ok(r);
        }
        if let Some((ctx, _)) = check.as_mut() {
            ctx.update(&data);
        }
        buf.extend_from_slice(&data);
        while buf.len() >= piece_max {
            let piece = buf.split_to(piece_max).freeze();
            writer.put(piece).await?;
        }
    }
    // What arrived before a cut is kept (tus resumes from the recorded offset), unless the body
    // was to be checked whole.
    if cut.is_some() && writer.hold {
        writer.drop_held().await;
        return Err(cut.unwrap_or(ApiError::BadRequest("the body was cut".into())));
    }
    if !buf.is_empty() {
        writer.put(buf.freeze()).await?;
    }
    if let Some((ctx, expected)) = check {
        if ctx.finish().as_ref() != expected.as_slice() {
            writer.drop_held().await;
            return Err(ApiError::ChecksumMismatch);
        }
        writer.record_held().await?;
    }
    if let Some(e) = cut {
        return Err(e);
    }
    let at = writer.at;
    if at == upload.size_bytes {
        let lease_id = finish(state, &upload).await?;
        return Ok(progress(StatusCode::NO_CONTENT, &upload, at, Some(&lease_id)));
    }
    Ok(progress(StatusCode::NO_CONTENT, &upload, at, None))
}

/// Writes a PATCH's pieces to the store and records each at the upload's offset (or, for a body
/// under a checksum, holds them until it is checked).
struct Pieces<'a> {
    state: &'a AppState,
    upload: &'a Upload,
    at: u64,
    held: Vec<Chunk>,
    hold: bool,
}

impl Pieces<'_> {
    async fn put(&mut self, bytes: Bytes) -> ApiResult<()> {
        let chunk = Chunk {
            object_key: ids::blob_key(),
            size_bytes: bytes.len() as u64,
        };
        objects::put_small(&self.state.objects, &chunk.object_key, bytes).await?;
        self.state.metrics.bytes_uploaded.inc_by(chunk.size_bytes);
        match self.hold {
            true => {
                self.held.push(chunk);
                Ok(())
            }
            false => self.record(chunk).await,
        }
    }

    async fn record(&mut self, chunk: Chunk) -> ApiResult<()> {
        let size = chunk.size_bytes;
        let key = chunk.object_key.clone();
        let op = TusAppend {
            upload_id: self.upload.upload_id.clone(),
            owner: self.upload.owner.clone(),
            offset: self.at,
            chunk,
        };
        match self.state.ledger.run(None, op).await {
            Ok(Ok(_)) => {
                self.at += size;
                Ok(())
            }
            Ok(Err(rejection)) => {
                objects::discard(&self.state.objects, &key).await;
                Err(ApiError::from_rejection(rejection, "upload"))
            }
            // Unknown outcome: the piece may be recorded; the orphan sweeper decides.
            Err(e) => Err(e.into()),
        }
    }

    async fn record_held(&mut self) -> ApiResult<()> {
        let held = std::mem::take(&mut self.held);
        let mut rest = held.into_iter();
        while let Some(chunk) = rest.next() {
            if let Err(e) = self.record(chunk).await {
                for left in rest {
                    objects::discard(&self.state.objects, &left.object_key).await;
                }
                return Err(e);
            }
        }
        Ok(())
    }

    async fn drop_held(&mut self) {
        for chunk in std::mem::take(&mut self.held) {
            objects::discard(&self.state.objects, &chunk.object_key).await;
        }
    }
}

/// Joins the recorded pieces (in the store, at a fresh key, hashing as they pass) and buys the
/// lease. Answers its id; when another node finished first, that lease's.
async fn finish(state: &AppState, upload: &Upload) -> ApiResult<String> {
    let fresh = find(state, &upload.upload_id, true).await?;
    if let Some(id) = lease_of(&fresh) {
        return Ok(id.to_string());
    }
    // One join at a time per upload on this node, within the owner's upload slots, and none at
    // all while the balance cannot pay: a refused purchase must not cost a copy of the bytes.
    let Some(_held) = crate::idempotency::hold(state, &format!("tus-finish {}", fresh.upload_id)) else {
        return Err(ApiError::IdempotencyInFlight);
    };
    let _slot = state.limits.upload_slot(&fresh.owner).await?;
    match &fresh.target {
        Target::NewStorage { duration_seconds, .. } => {
            check_balance(state, &fresh.owner, fresh.size_bytes, *duration_seconds)?
        }
        // The upload to fill must still take bytes; if not, this one ends now, unjoined.
        Target::Fill { upload_id } if !still_fillable(state, upload_id).await? => {
            let end = EndUpload {
                upload_id: fresh.upload_id.clone(),
                owner: fresh.owner.clone(),
            };
            ops::run(state, None, end, "upload").await?;
            return Err(ApiError::Gone(
                "the upload this one was to fill is complete or gone; this one is ended",
            ));
        }
        _ => {}
    }
    let store = state.objects.clone();
    let keys: Vec<String> = state
        .ledger
        .reader()
        .tus_chunks(&fresh.upload_id)?
        .into_iter()
        .map(|c| c.object_key)
        .collect();
    let stream = futures::stream::iter(keys)
        .then(move |key| {
            let store = store.clone();
            async move {
                let got = store.get(&object_store::path::Path::from(key)).await?;
                Ok::<_, object_store::Error>(got.into_stream())
            }
        })
        .try_flatten();
    // A piece missing from the store (the upload was ended meanwhile) is not a client's body
    // error, and its path is nobody's business.
    let with_sha256 = super::needs_sha256(state, &fresh)?;
    let joined = blobs::upload_to(
        state,
        ids::blob_key(),
        Body::from_stream(stream),
        fresh.size_bytes,
        with_sha256,
    )
    .await
    .map_err(|e| match e {
        ApiError::BadRequest(_) | ApiError::SizeMismatch { .. } => {
            ApiError::Gone("the upload's pieces are gone: it was ended or passed its deadline")
        }
        other => other,
    })?;
    let sha256_hex = joined.sha256_hex.clone().unwrap_or_default();
    let (file_name, content_type, duration_seconds) = match &fresh.target {
        Target::NewStorage {
            file_name,
            content_type,
            duration_seconds,
        } => (file_name.clone(), content_type.clone(), *duration_seconds),
        Target::Fill { .. } => {
            let op = FillFromTus {
                upload_id: fresh.upload_id.clone(),
                owner: fresh.owner.clone(),
                object_key: joined.object_key.clone(),
                size_bytes: joined.size_bytes,
                blake3_hex: joined.blake3_hex.clone(),
                sha256_hex,
            };
            let answer = state.ledger.run(None, op).await;
            joined.staged.settle(state, &answer).await;
            let filled = ops::answer(answer, "upload")?;
            return lease_of(&filled)
                .map(String::from)
                .ok_or_else(|| ApiError::Internal("a filled upload without its lease".into()));
        }
        _ => return Err(ApiError::Internal("finishing what is not a tus upload".into())),
    };
    let new = NewLease {
        lease_id: ids::lease_id(),
        ledger_id: ids::ledger_id(),
        owner: fresh.owner.clone(),
        kind: LeaseKind::Storage {
            object_key: joined.object_key.clone(),
            file_name,
            content_type,
            size_bytes: joined.size_bytes,
            blake3_hex: joined.blake3_hex.clone(),
        },
        duration_seconds,
    };
    let op = FinishTus {
        upload_id: fresh.upload_id.clone(),
        new,
        sha256_hex,
    };
    let answer = state.ledger.run(None, op).await;
    joined.staged.settle(state, &answer).await;
    match answer? {
        Ok(created) => Ok(created.lease.lease_id),
        Err(Rejection::UploadComplete) => {
            let again = find(state, &fresh.upload_id, true).await?;
            lease_of(&again).map(String::from).ok_or(ApiError::UploadComplete)
        }
        Err(rejection) => Err(ApiError::from_rejection(rejection, "upload")),
    }
}

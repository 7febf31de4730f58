//! Storage leases: `POST /api/store`, `GET /api/download/:lease_id`, `DELETE /api/store/:lease_id`.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use relay_raft::command::NewLease;
use relay_raft::ops::{CreateWithUpload, DeleteLease};
use relay_raft::upload::Target;
use relay_raft::{AccessActor, Lease, LeaseKind};
use serde_json::json;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::headers::{optional_str, required_u64};
use crate::idempotency::{self, Part};
use crate::purchase::{self, Payer, Reservation};
use crate::state::AppState;
use crate::uploads::{self, presign, scratch};
use crate::{blobs, ids, objects, ops, range, render};

const FILE_NAME_MAX_BYTES: usize = 255;
/// Objects up to this size are read whole and checked before the answer starts; larger ones
/// stream with their last chunk held back until the hash matches.
const VERIFY_BEFORE_SEND_MAX: u64 = 1 << 20;
const CONTENT_TYPE_MAX_BYTES: usize = 255;
const CREATE_ROUTE: &str = "POST /api/store";

#[utoipa::path(
    post,
    path = "/api/store",
    operation_id = "store_create",
    tag = "storage",
    security(("api_key" = []), ("session" = []), ("x402" = [])),
    params(
        ("X-Duration-Seconds" = u64, Header, description = "How long the lease lives, within the node's bounds (/api/pricing)"),
        ("X-Size-Bytes" = Option<u64>, Header, nullable = false, description = "The object's exact size in bytes (optional with X-Input-Key)"),
        ("X-File-Name" = String, Header, description = "The name downloads carry: 1–255 bytes, no path separators or control characters"),
        ("Content-Type" = Option<String>, Header, nullable = false, description = "The object's media type, served back on download (default application/octet-stream)"),
        ("X-Upload" = Option<String>, Header, nullable = false, description = "`presigned`: no body; the answer carries an upload URL"),
        ("X-Input-Key" = Option<String>, Header, nullable = false, description = "A scratch object (POST /v1/scratch/upload-url) to keep as this lease's bytes"),
        ("X-Content-SHA256" = Option<String>, Header, nullable = false, description = "The bytes' SHA-256, 64 hex, bound into a presigned upload"),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, description = "1–128 visible ASCII characters; a retry with the same key and the same request gets the first answer, another request with it a 422"),
    ),
    request_body(content = crate::openapi::schemas::Binary, content_type = "application/octet-stream", description = "The bytes, exactly X-Size-Bytes of them; none with X-Upload or X-Input-Key"),
    responses(
        (status = 201, description = "The receipt: the lease, its price and who paid, `object_key`, `size_bytes`, and `upload` for a presigned create", content_type = "application/json", body = crate::openapi::schemas::Receipt, headers(("PAYMENT-RESPONSE" = String, description = "x402 v2 settlement (X-PAYMENT-RESPONSE for v1), when paid by x402"))),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E402,
        crate::openapi::E404,
        crate::openapi::E409,
        crate::openapi::E410,
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
    let presigned = match optional_str(&headers, "x-upload")? {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("presigned") => true,
        Some(_) => {
            return Err(ApiError::InvalidHeader {
                name: "X-Upload",
                reason: "the only upload mode is \"presigned\"".into(),
            })
        }
    };
    let input_key = scratch::input_key_header(&headers)?;
    if presigned && input_key.is_some() {
        return Err(ApiError::BadRequest(
            "send X-Upload: presigned or X-Input-Key, not both".into(),
        ));
    }
    if presigned || input_key.is_some() {
        let length = optional_str(&headers, "content-length")?.unwrap_or("0");
        if length != "0" || headers.contains_key("transfer-encoding") {
            return Err(ApiError::BadRequest(
                "this create takes no body: the bytes come through the upload URL or the input key".into(),
            ));
        }
    }
    let duration_seconds = required_u64(&headers, "x-duration-seconds")?;
    let file_name = file_name(&headers)?;
    let content_type = content_type(&headers)?;
    // Only a proven owner learns anything of a key: an unproven payment is priced first (402).
    let source = match &input_key {
        Some(key) if crate::purchase::proven(&payer) => Some(scratch::source(&state, payer.account_id(), key).await?),
        _ => None,
    };
    let size_bytes = match (&source, optional_str(&headers, "x-size-bytes")?) {
        (Some(s), Some(text)) if crate::headers::parse_u64(text, "X-Size-Bytes")? != s.size_bytes => {
            return Err(ApiError::SizeMismatch {
                declared: crate::headers::parse_u64(text, "X-Size-Bytes")?,
                received: s.size_bytes,
            })
        }
        (Some(s), _) => s.size_bytes,
        (None, _) => required_u64(&headers, "x-size-bytes")?,
    };
    let sha256_hex = uploads::declared_sha256(&headers)?;
    let keyed = idempotency::begin(&state, &headers, payer.scope(), CREATE_ROUTE)?;
    let cfg = &state.config;
    cfg.check_object_size("X-Size-Bytes", size_bytes)?;
    if !presigned && input_key.is_none() {
        if let Some(length) = optional_str(&headers, "content-length")? {
            if length.parse::<u64>().ok() != Some(size_bytes) {
                return Err(ApiError::SizeMismatch {
                    declared: size_bytes,
                    received: length.parse().unwrap_or(0),
                });
            }
        }
    }
    let reservation = Reservation {
        billable_bytes: size_bytes,
        duration_seconds,
        product: "Storage lease",
        baton: None,
        extension: None,
    };
    let purchase = purchase::begin(&state, &payer, keyed.as_ref(), reservation).await?;
    let lease_id = ids::lease_id();
    let storage = |object_key: String, blake3_hex: String| NewLease {
        lease_id: lease_id.clone(),
        ledger_id: ids::ledger_id(),
        owner: payer.account_id().to_string(),
        kind: LeaseKind::Storage {
            object_key,
            file_name: file_name.clone(),
            content_type: content_type.clone(),
            size_bytes,
            blake3_hex,
        },
        duration_seconds,
    };
    let seal = |extra: &[u8]| {
        keyed.as_ref().map(|k| {
            k.seal(&[
                Part::Header(&headers, "x-size-bytes"),
                Part::Header(&headers, "x-duration-seconds"),
                Part::Header(&headers, "x-file-name"),
                Part::Header(&headers, "content-type"),
                Part::Header(&headers, "x-upload"),
                Part::Header(&headers, "x-input-key"),
                Part::Header(&headers, "x-content-sha256"),
                Part::Value(extra),
            ])
        })
    };

    if presigned {
        let plan = presign::plan(
            &state,
            &headers,
            presign::Want {
                owner: payer.account_id().to_string(),
                object_key: ids::blob_key(),
                size_bytes,
                sha256_hex,
                ttl_seconds: cfg.uploads.url_ttl_seconds,
                target: Target::Lease {
                    lease_id: lease_id.clone(),
                },
            },
        )
        .await?;
        let new = storage(plan.upload.object_key.clone(), String::new());
        let op = CreateWithUpload {
            purchase: Box::new(new.into()),
            upload: plan.upload.clone(),
        };
        let committed = purchase.commit(&state, seal(b"presigned"), op).await;
        let ours = matches!(&committed.answer, Ok(Ok(c)) if c.lease.lease_id == lease_id);
        if !ours {
            presign::abandon(&state, &plan.upload).await;
        }
        let (lease, paid) = purchase.answer(&state, committed, "account")?;
        let mut body = receipt(&lease)?;
        body["upload"] = match ours {
            true => plan.object,
            // A keyed retry: the first request's upload, as it stands (its URLs were handed out then).
            false => pending_upload(&state, &headers, &lease.lease_id).await?,
        };
        let response = (StatusCode::CREATED, Json(body)).into_response();
        return Ok(purchase::with_receipt(response, paid));
    }

    let (staged, new) = match source {
        Some(source) => {
            let (staged, key) = scratch::copy(&state, &source).await?;
            (staged, storage(key, source.blake3_hex))
        }
        // An unproven payer was answered by the purchase's 402 above; nothing else gets here.
        None if input_key.is_some() => return Err(ApiError::Unauthorized("prove who owns the input key")),
        None => {
            let _slot = state.limits.upload_slot(payer.account_id()).await?;
            let upload = blobs::upload(&state, body, size_bytes).await?;
            (upload.staged, storage(upload.object_key, upload.blake3_hex))
        }
    };
    let idem = seal(blake3_of(&new.kind).as_bytes());
    let committed = purchase.commit(&state, idem, new).await;
    staged.settle(&state, &committed.answer).await;
    let (lease, paid) = purchase.answer(&state, committed, "account")?;
    let response = (StatusCode::CREATED, Json(receipt(&lease)?)).into_response();
    Ok(purchase::with_receipt(response, paid))
}

/// The upload a lease is waiting for, signed again for what is left of its life (`null` once it
/// completed): what a keyed retry of the create answers.
pub async fn pending_upload(state: &AppState, headers: &HeaderMap, lease_id: &str) -> ApiResult<serde_json::Value> {
    let reader = state.ledger.reader();
    let Some(upload_id) = reader.pending_upload(lease_id)? else {
        return Ok(serde_json::Value::Null);
    };
    match reader.upload(&upload_id)? {
        Some(u) if u.is_pending() => presign::again(state, headers, &u).await,
        _ => Ok(serde_json::Value::Null),
    }
}

/// The body's hash, as uploaded.
fn blake3_of(kind: &LeaseKind) -> &str {
    match kind {
        LeaseKind::Storage { blake3_hex, .. } => blake3_hex,
        _ => "",
    }
}

fn receipt(lease: &Lease) -> ApiResult<serde_json::Value> {
    let LeaseKind::Storage {
        object_key, size_bytes, ..
    } = &lease.kind
    else {
        return Err(ApiError::Internal(format!(
            "store create answered with a {}",
            lease.kind.name()
        )));
    };
    Ok(purchase::receipt(
        lease,
        json!({
            "object_key": object_key,
            "size_bytes": size_bytes,
        }),
    ))
}

/// A lease id from the path; malformed ids cannot exist, so they are 404 like unknown ones.
pub fn lease_id_param(path: Result<Path<String>, PathRejection>) -> ApiResult<String> {
    match path {
        Ok(Path(id)) if ids::is_lease_id(&id) => Ok(id),
        _ => Err(ApiError::NotFound("lease")),
    }
}

#[utoipa::path(
    get,
    path = "/api/download/{lease_id}",
    operation_id = "store_download",
    tag = "storage",
    security(("api_key" = []), ("session" = [])),
    params(
        ("lease_id" = String, Path, description = "A lease id (`lse_…`)"),
        ("Range" = Option<String>, Header, nullable = false, description = "One byte range (`bytes=a-b`, `a-`, `-n`); anything else serves the whole object"),
    ),
    responses(
        (status = 200, description = "The object's bytes, with the Content-Type it was stored with", content_type = "*/*", body = crate::openapi::schemas::Binary, headers(("ETag" = String, description = "The bytes' blake3, quoted"), ("X-Lease-Expires-At" = String, description = "When the lease ends"))),
        (status = 206, description = "The range asked for", content_type = "*/*", body = crate::openapi::schemas::Binary, headers(("Content-Range" = String, description = "bytes a-b/size"))),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E404,
        crate::openapi::E409,
        crate::openapi::E410,
        crate::openapi::E416,
        crate::openapi::E502,
    )
)]
pub async fn download(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let lease_id = lease_id_param(path)?;
    // A size never changes, so a local (possibly stale) read is enough to refuse a bad Range
    // before anything is recorded as an access.
    // Likewise a lease's kind never changes: other kinds are not downloadable here.
    if let Some(lease) = state.ledger.reader().lease(&lease_id)? {
        if lease.owner == caller.account_id {
            let LeaseKind::Storage { size_bytes, .. } = lease.kind else {
                return Err(ApiError::NotFound("lease"));
            };
            range::parse(optional_str(&headers, "range").ok().flatten(), size_bytes)?;
        }
    }
    // A read index and the leader's clock judge ownership and expiry, so a lease is never served
    // after `expires_at` or after an acknowledged delete; the access is recorded afterwards, in a
    // batch (`accesses`).
    let (reader, now_ms) = state.ledger.linearizable_now().await?;
    let lease = ops::answer(
        Ok(reader.accessible(&lease_id, Some(&caller.account_id), now_ms)?),
        "lease",
    )?;
    state
        .accesses
        .record(&state.metrics, &lease_id, AccessActor::Owner, now_ms)
        .await?;
    serve_object(&state, &lease, &headers).await
}

/// Streams a Storage lease's bytes with its type, name, and range support.
pub async fn serve_object(state: &AppState, lease: &Lease, headers: &HeaderMap) -> ApiResult<Response> {
    let LeaseKind::Storage {
        object_key,
        file_name,
        content_type,
        size_bytes,
        blake3_hex,
    } = &lease.kind
    else {
        return Err(ApiError::NotFound("lease"));
    };
    let range_header = optional_str(headers, "range").ok().flatten();
    let range = range::parse(range_header, *size_bytes)?;
    let mut room = None;
    let body = if range.is_none() && *size_bytes <= VERIFY_BEFORE_SEND_MAX {
        // Small enough to check before the status line: a bad object is a 502, not a cut body.
        // Held whole until sent, so it takes its room in the body buffer.
        room = Some(state.limits.buffer(*size_bytes).await?);
        let cached = state.object_cache.get(object_key, blake3_hex, state.ledger.now_ms());
        let read = match cached {
            Some(bytes) => Some(bytes),
            None => objects::read_small(&state.objects, object_key, blake3_hex, &state.metrics).await?,
        };
        match read {
            Some(bytes) => {
                state
                    .object_cache
                    .put(object_key, blake3_hex, lease.expires_at_ms, bytes.clone());
                Body::from(bytes)
            }
            None => {
                state.metrics.integrity_failures.inc();
                tracing::error!(object_key, "object of a live lease is missing");
                return Err(ApiError::Integrity);
            }
        }
    } else {
        objects::open(
            &state.objects,
            object_key,
            range.clone(),
            blake3_hex,
            state.metrics.clone(),
        )
        .await?
    };
    let (status, length) = match &range {
        Some(r) => (StatusCode::PARTIAL_CONTENT, r.end - r.start),
        None => (StatusCode::OK, *size_bytes),
    };
    state.metrics.bytes_downloaded.inc_by(length);
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type.as_str())
        .header(header::CONTENT_LENGTH, length)
        .header(header::CONTENT_DISPOSITION, content_disposition(file_name))
        .header(header::ETAG, format!("\"{blake3_hex}\""))
        .header(header::ACCEPT_RANGES, "bytes")
        // Stored bytes are never a page of this origin (which serves the dashboard), even if a
        // browser is asked to show them.
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::CONTENT_SECURITY_POLICY, "default-src 'none'; sandbox")
        .header("x-lease-expires-at", render::timestamp(lease.expires_at_ms));
    if let Some(r) = &range {
        response = response.header(
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{}", r.start, r.end - 1, size_bytes),
        );
    }
    let response = response.body(body).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(match room {
        Some(room) => crate::limits::hold(response, room),
        None => response,
    })
}

#[utoipa::path(
    delete,
    path = "/api/store/{lease_id}",
    operation_id = "store_delete",
    tag = "storage",
    security(("api_key" = []), ("session" = [])),
    params(
        ("lease_id" = String, Path, description = "A lease id (`lse_…`)"),
    ),
    responses(
        (status = 200, description = "Deleted now: `{status, lease_id, deleted, refund_micros}`", content_type = "application/json", body = crate::openapi::schemas::LeaseDeleted),
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
    let lease_id = lease_id_param(path)?;
    delete_lease(&state, caller.account_id, lease_id, "lease").await
}

/// Early delete by the owner, no refund; `what` names the resource in a 404.
pub async fn delete_lease(
    state: &AppState,
    owner: String,
    lease_id: String,
    what: &'static str,
) -> ApiResult<Response> {
    let lease = ops::run(state, None, DeleteLease { owner, lease_id }, what).await?;
    Ok(Json(json!({
        "status": "ok",
        "lease_id": lease.lease_id,
        "deleted": true,
        "refund_micros": "0",
    }))
    .into_response())
}

pub(crate) fn file_name(headers: &HeaderMap) -> ApiResult<String> {
    const NAME: &str = "x-file-name";
    let raw = headers.get(NAME).ok_or(ApiError::MissingHeader(NAME))?;
    // Names may be UTF-8 (clients often send raw UTF-8 bytes in this header).
    let name = std::str::from_utf8(raw.as_bytes())
        .map_err(|_| ApiError::InvalidHeader {
            name: NAME,
            reason: "must be UTF-8".into(),
        })?
        .trim();
    if name.is_empty() || name.len() > FILE_NAME_MAX_BYTES {
        return Err(ApiError::InvalidHeader {
            name: NAME,
            reason: format!("must be 1 to {FILE_NAME_MAX_BYTES} bytes"),
        });
    }
    if name
        .chars()
        .any(|c| c.is_control() || is_invisible_format(c) || c == '/' || c == '\\')
        || name == "."
        || name == ".."
    {
        return Err(ApiError::InvalidHeader {
            name: NAME,
            reason:
                "must be a plain file name: no path separators, control, invisible, format or private-use characters"
                    .into(),
        });
    }
    Ok(name.to_string())
}

/// Characters that change how a name is displayed without showing themselves, or show as
/// nothing: bidirectional overrides and isolates (`invoice\u{202e}fdp.exe` shows as
/// `invoiceexe.pdf`), Unicode's format characters and default-ignorable code points (zero-width
/// characters, variation selectors, tag characters, fillers), line and paragraph separators,
/// blank-looking letters, and private-use characters (no one knows how they render).
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        // Format (Cf) and default-ignorable code points, and line and paragraph separators.
        '\u{00ad}' | '\u{034f}' | '\u{061c}' | '\u{0600}'..='\u{0605}' | '\u{06dd}' | '\u{070f}'
        | '\u{0890}'..='\u{0891}' | '\u{08e2}' | '\u{115f}'..='\u{1160}' | '\u{17b4}'..='\u{17b5}'
        | '\u{180b}'..='\u{180f}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{206f}' | '\u{3164}' | '\u{fe00}'..='\u{fe0f}' | '\u{feff}' | '\u{ffa0}'
        | '\u{fff0}'..='\u{fffc}' | '\u{110bd}' | '\u{110cd}' | '\u{13430}'..='\u{1343f}'
        | '\u{1bca0}'..='\u{1bca3}' | '\u{1d173}'..='\u{1d17a}' | '\u{e0000}'..='\u{e0fff}'
        // Blank-looking: the Braille blank, and the Hangul fillers above.
        | '\u{2800}'
        // Private use.
        | '\u{e000}'..='\u{f8ff}' | '\u{f0000}'..='\u{10ffff}'
    )
}

pub(crate) fn content_type(headers: &HeaderMap) -> ApiResult<String> {
    const NAME: &str = "content-type";
    let Some(value) = optional_str(headers, NAME)? else {
        return Ok("application/octet-stream".into());
    };
    let (essence, _) = value.split_once(';').unwrap_or((value, ""));
    let valid_token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    let well_formed = essence
        .trim()
        .split_once('/')
        .is_some_and(|(t, s)| valid_token(t) && valid_token(s));
    if value.is_empty() || value.len() > CONTENT_TYPE_MAX_BYTES || !well_formed {
        return Err(ApiError::InvalidHeader {
            name: NAME,
            reason: "must be a media type like text/plain".into(),
        });
    }
    Ok(value.to_string())
}

/// `attachment; filename="ascii"; filename*=UTF-8''percent-encoded` (RFC 6266).
fn content_disposition(name: &str) -> HeaderValue {
    const UNSAFE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'.').remove(b'-').remove(b'_');
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let value = format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        utf8_percent_encode(name, UNSAFE)
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Non-ASCII names keep an ASCII fallback and an exact UTF-8 form.
    #[test]
    fn content_disposition_carries_both_forms() {
        let v = content_disposition("résumé \"final\".pdf");
        let s = v.to_str().unwrap();
        assert!(s.starts_with("attachment; filename=\"r_sum_ _final_.pdf\""), "{s}");
        assert!(s.contains("filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.pdf"), "{s}");
    }

    /// Names that would display as something else are refused.
    #[test]
    fn file_names_cannot_hide_their_extension() {
        let mut h = HeaderMap::new();
        for (name, ok) in [
            ("invoice.pdf", true),
            ("résumé.pdf", true),
            ("invoice\u{202e}fdp.exe", false),
            ("a\u{200b}b.txt", false),
            ("\u{feff}x.txt", false),
            ("x\u{2067}y", false),
            ("a\u{e0041}\u{e0001}.txt", false),
            ("a\u{2028}b", false),
            ("a\u{fe0f}b", false),
            ("a\u{e0100}b", false),
            ("\u{3164}.txt", false),
            ("\u{ffa0}.txt", false),
            ("\u{2800}.txt", false),
            ("a\u{034f}b", false),
            ("a\u{1d173}b", false),
            ("\u{0600}x", false),
            ("a\u{fffc}b", false),
            ("a\u{17b4}b", false),
            ("a\u{180b}b", false),
            ("a\u{e000}b", false),
            ("日本語のファイル.txt", true),
            ("emoji-😀.png", true),
        ] {
            h.insert("x-file-name", HeaderValue::from_bytes(name.as_bytes()).unwrap());
            assert_eq!(file_name(&h).is_ok(), ok, "{name:?}");
        }
    }

    /// Media types must have a type and a subtype made of token characters.
    #[test]
    fn content_types_are_checked() {
        let mut h = HeaderMap::new();
        for (value, ok) in [
            ("text/plain", true),
            ("application/json; charset=utf-8", true),
            ("text", false),
            ("/x", false),
            ("a b/c", false),
        ] {
            h.insert("content-type", HeaderValue::from_str(value).unwrap());
            assert_eq!(content_type(&h).is_ok(), ok, "{value}");
        }
    }
}

//! The free scratch tier: `POST /v1/scratch/upload-url` hands any payer (an API key, a session,
//! or a signed x402 payment, which is not settled) an upload URL for up to
//! `--scratch-max-bytes` and an `input_key`, `scratch/<owner>/<uuid>`, that later creates name
//! as their source (`X-Input-Key` on `POST /api/store`, `input_key` on a baton) instead of
//! sending the bytes again. Each owner holds a bounded number of scratch objects and bytes at
//! once; each lives `--scratch-ttl-seconds` (24 h) and is then deleted like a lease. Another
//! owner's key is 404.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use object_store::path::Path;
use object_store::ObjectStoreExt;
use relay_raft::ops::BeginUpload;
use relay_raft::upload::{ScratchQuota, Target, UploadState};
use serde::Deserialize;
use serde_json::json;

use crate::blobs::{self, Staged};
use crate::error::{ApiError, ApiResult};
use crate::headers::optional_str;
use crate::purchase::Payer;
use crate::state::AppState;
use crate::uploads::{declared_sha256, parse_sha256, presign};
use crate::{bodies, ids, ops};

/// The largest request body (a few small fields).
const BODY_MAX_BYTES: u64 = 4 << 10;
/// The longest input key accepted (owner ids and a UUID fit with room to spare).
const INPUT_KEY_MAX: usize = 256;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Request {
    size_bytes: Option<u64>,
    sha256: Option<String>,
}

/// A scratch object ready to be the source of a create.
pub struct Source {
    pub object_key: String,
    pub size_bytes: u64,
    pub blake3_hex: String,
    pub sha256_hex: String,
}

/// The owner a free request acts for: an account, a session's subject, or the wallet whose
/// signature the payment proves (nothing is settled: scratch is free). The payment must still be
/// one this node could take: to its payTo, on its network, valid now and for at most a day.
fn owner_of(state: &AppState, payer: &Payer) -> ApiResult<String> {
    match payer {
        Payer::Account(caller) => Ok(caller.account_id.clone()),
        Payer::Wallet(w) => {
            if let Err(e) = &w.signer {
                return Err(ApiError::PaymentMalformed(format!(
                    "the payment's signature proves no signer: {e}"
                )));
            }
            let cfg = state
                .config
                .x402
                .as_ref()
                .ok_or_else(|| ApiError::Internal("an x402 payer on a node without x402".into()))?;
            let value = u64::try_from(w.payment.authorization.value)
                .map_err(|_| ApiError::PaymentMalformed("the payment's value is out of range".into()))?;
            // At least what the cheapest purchase costs: a payment worth nothing proves nothing.
            let min = state.ledger.reader().pricing()?.min_charge_micros;
            if value < min {
                return Err(ApiError::PaymentMalformed(format!(
                    "the payment must be worth at least the minimum charge ({min} micro-USDC)"
                )));
            }
            let now_s = relay_raft::wall_clock_ms() / 1000;
            w.payment
                .check(cfg, value, now_s)
                .map_err(|e| ApiError::PaymentMalformed(format!("the payment is not one this node takes: {e}")))?;
            Ok(w.address.clone())
        }
        Payer::Nobody { .. } => Err(ApiError::Unauthorized(
            "scratch is free but not anonymous: send an API key, a session token or a signed x402 payment",
        )),
    }
}

#[utoipa::path(
    post,
    path = "/v1/scratch/upload-url",
    operation_id = "uploads_scratch_upload_url",
    tag = "uploads",
    security(("api_key" = []), ("session" = []), ("x402" = [])),
    params(
        ("X-Size-Bytes" = Option<u64>, Header, nullable = false, description = "The size, unless the body gives `size_bytes`"),
        ("X-Content-SHA256" = Option<String>, Header, nullable = false, description = "The bytes' SHA-256, unless the body gives `sha256`"),
    ),
    request_body(content = Object, content_type = "application/json", description = "Optional: `{size_bytes, sha256}`"),
    responses(
        (status = 201, description = "`{input_key, upload_id, size_bytes, expires_at, upload}`: PUT the bytes, then pass input_key to a create", content_type = "application/json", body = Object),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E409,
        crate::openapi::E413,
        crate::openapi::E422,
    )
)]
pub async fn upload_url(
    State(state): State<AppState>,
    payer: Payer,
    headers: HeaderMap,
    body: axum::body::Body,
) -> ApiResult<Response> {
    let owner = owner_of(&state, &payer)?;
    let raw = bodies::read(&state, body, &headers, BODY_MAX_BYTES, "request body")
        .await?
        .bytes;
    let req: Request = if raw.iter().all(u8::is_ascii_whitespace) {
        Request::default()
    } else {
        serde_json::from_slice(&raw).map_err(|e| ApiError::InvalidJson(e.to_string()))?
    };
    let size_bytes = match (req.size_bytes, optional_str(&headers, "x-size-bytes")?) {
        (Some(n), _) => n,
        (None, Some(text)) => crate::headers::parse_u64(text, "X-Size-Bytes")?,
        (None, None) => return Err(ApiError::MissingHeader("X-Size-Bytes (or size_bytes in the body)")),
    };
    let sha256_hex = match req.sha256 {
        Some(text) => Some(parse_sha256(&text).ok_or(ApiError::InvalidValue {
            field: "sha256",
            reason: "must be a SHA-256 in 64 hex digits".into(),
        })?),
        None => declared_sha256(&headers)?,
    };
    let limits = &state.config.uploads;
    if size_bytes == 0 {
        return Err(ApiError::InvalidValue {
            field: "size_bytes",
            reason: "a scratch object holds at least one byte".into(),
        });
    }
    if size_bytes > limits.scratch_max_bytes {
        return Err(ApiError::TooLarge {
            what: "a scratch object",
            limit: limits.scratch_max_bytes,
        });
    }
    let input_key = format!("scratch/{owner}/{}", uuid()?);
    let plan = presign::plan(
        &state,
        &headers,
        presign::Want {
            owner,
            object_key: input_key.clone(),
            size_bytes,
            sha256_hex,
            ttl_seconds: limits.scratch_ttl_seconds,
            target: Target::Scratch {
                input_key: input_key.clone(),
            },
        },
    )
    .await?;
    let begin = BeginUpload {
        upload: plan.upload.clone(),
        quota: Some(ScratchQuota {
            max_count: limits.scratch_max_count,
            max_bytes: limits.scratch_max_total_bytes,
        }),
    };
    let began = match ops::run(&state, None, begin, "upload").await {
        Ok(u) => u,
        Err(e) => {
            presign::abandon(&state, &plan.upload).await;
            return Err(e);
        }
    };
    let body = json!({
        "input_key": input_key,
        "upload_id": began.upload_id,
        "size_bytes": size_bytes,
        "expires_at": crate::render::timestamp(began.expires_at_ms),
        "upload": plan.object,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// A random (version 4) UUID.
fn uuid() -> ApiResult<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| ApiError::Internal(e.to_string()))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

/// The scratch object `input_key` names, if `owner`'s and usable now: another owner's key, or
/// one that never was, is 404; one still uploading is 409; one past its life is 410.
pub async fn source(state: &AppState, owner: &str, input_key: &str) -> ApiResult<Source> {
    let not_found = ApiError::NotFound("input key");
    if input_key.len() > INPUT_KEY_MAX || !input_key.starts_with("scratch/") {
        return Err(not_found);
    }
    let Some(upload) = state.ledger.linearizable().await?.scratch(input_key)? else {
        return Err(not_found);
    };
    if upload.owner != owner {
        return Err(not_found);
    }
    let now = state.ledger.reader().clock_ms()?.max(relay_raft::wall_clock_ms());
    match &upload.state {
        UploadState::Complete {
            blake3_hex, sha256_hex, ..
        } if now < upload.expires_at_ms => Ok(Source {
            object_key: upload.object_key.clone(),
            size_bytes: upload.size_bytes,
            blake3_hex: blake3_hex.clone(),
            sha256_hex: sha256_hex.clone(),
        }),
        UploadState::Pending if now < upload.expires_at_ms => Err(ApiError::UploadPending),
        _ => Err(ApiError::Gone("the scratch object is past its life or was deleted")),
    }
}

/// Copies a scratch object to a fresh blob (server-side on S3: no byte passes through the
/// node), for a create to stand on; the ledger's answer decides whether it stays.
pub async fn copy(state: &AppState, source: &Source) -> ApiResult<(Staged, String)> {
    let to = ids::blob_key();
    match state
        .objects
        .copy(&Path::from(source.object_key.as_str()), &Path::from(to.as_str()))
        .await
    {
        Ok(()) => Ok((blobs::staged(to.clone()), to)),
        Err(object_store::Error::NotFound { .. }) => {
            Err(ApiError::Gone("the scratch object is past its life or was deleted"))
        }
        Err(e) => Err(e.into()),
    }
}

/// `X-Input-Key`, when given.
pub fn input_key_header(headers: &HeaderMap) -> ApiResult<Option<String>> {
    Ok(optional_str(headers, "x-input-key")?.map(String::from))
}

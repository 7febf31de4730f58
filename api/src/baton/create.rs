//! `POST /v1/baton/quote` (free, no credentials) and `POST /v1/baton` (paid once, by the quote
//! of its shape, through the purchase path).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use bytes::Bytes;
use relay_raft::baton::{Baton, NewToken, Shape};
use relay_raft::command::NewLease;
use relay_raft::ops::{Content, CreateBaton, CreateWithUpload};
use relay_raft::upload::Target;
use relay_raft::{BodyRef, LeaseKind};
use serde::Deserialize;
use serde_json::{json, Value};

use super::shape::{self, Capacity, Lifecycle, ShapeBody, Sharing, TokenShape, Trust};
use super::{access, baton_of, render_time, text_type, CONTENT_INLINE_MAX};
use crate::error::{ApiError, ApiResult};
use crate::idempotency::{self, Part};
use crate::purchase::{self, Payer, Reservation};
use crate::state::AppState;
use crate::uploads::presign;
use crate::{blobs, bodies, ids, render};

/// The largest quote body: a shape and nothing else.
pub const QUOTE_BODY_MAX: u64 = 64 << 10;
/// The largest create body: 3 MiB of content in base64 and the shape around it.
const CREATE_BODY_MAX: u64 = CONTENT_INLINE_MAX * 4 / 3 + QUOTE_BODY_MAX;
const CREATE_ROUTE: &str = "POST /v1/baton";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    preconfig: Option<String>,
    write: Option<String>,
    capacity: Option<Capacity>,
    sharing: Option<Sharing>,
    lifecycle: Option<Lifecycle>,
    trust: Option<Trust>,
    content_base64: Option<String>,
    content_size_bytes: Option<u64>,
    /// Binds a first write over 3 MiB (uploaded through the `upload` URL) to this SHA-256, hex.
    content_sha256: Option<String>,
    /// A scratch object to take the first content from, instead of sending it.
    input_key: Option<String>,
    content_type: Option<String>,
}

/// Parses a JSON body; an empty body is the empty object.
pub fn parse<T: for<'de> Deserialize<'de> + Default>(bytes: &[u8]) -> ApiResult<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::InvalidJson(e.to_string()))
}

#[utoipa::path(
    post,
    path = "/v1/baton/quote",
    operation_id = "baton_create_quote",
    tag = "baton",
    request_body(content = Object, content_type = "application/json", description = "A baton shape: `{preconfig, write, capacity, sharing, lifecycle, trust}`; every field optional"),
    responses(
        (status = 200, description = "`{status, price_micros, price_usdc, shape}`", content_type = "application/json", body = Object),
        crate::openapi::Common,
        crate::openapi::E413,
        crate::openapi::E422,
    )
)]
pub async fn quote(State(state): State<AppState>, headers: HeaderMap, body: Body) -> ApiResult<Json<Value>> {
    let body = bodies::read(&state, body, &headers, QUOTE_BODY_MAX, "body").await?;
    let resolved = shape::resolve(&state, parse::<ShapeBody>(&body.bytes)?)?;
    // After a read barrier, so a price just changed shows at once on every node.
    state.ledger.linearizable().await?;
    let price_micros = shape::price(&state, &resolved.shape)?;
    let tokens: Vec<Value> = resolved.tokens.iter().map(shape::render_token_shape).collect();
    Ok(Json(json!({
        "status": "ok",
        "price_micros": price_micros,
        "price_usdc": render::usdc(price_micros),
        "shape": shape::render(resolved.preconfig.as_deref(), &resolved.shape, &tokens),
    })))
}

#[utoipa::path(
    post,
    path = "/v1/baton",
    operation_id = "baton_create_create",
    tag = "baton",
    security(("api_key" = []), ("session" = []), ("x402" = [])),
    params(
        ("Idempotency-Key" = Option<String>, Header, nullable = false, description = "1–128 visible ASCII characters; a retry with the same key and the same request gets the first answer, another request with it a 422"),
    ),
    request_body(content = Object, content_type = "application/json", description = "A shape plus the first content: `content_base64`, `content_size_bytes` (over 3 MiB: an upload URL) or `input_key`"),
    responses(
        (status = 201, description = "The receipt, plus `baton_id`, `shape`, `tokens` (each token shown once), `version`, `size_bytes`, `state`, and `upload` when the content comes apart", content_type = "application/json", body = crate::openapi::schemas::Receipt, headers(("PAYMENT-RESPONSE" = String, description = "x402 v2 settlement (X-PAYMENT-RESPONSE for v1), when paid by x402"))),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E402,
        crate::openapi::E404,
        crate::openapi::E405,
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
    // An unpaid request is priced and answered 402; it may not make the node hold megabytes.
    let limit = match payer {
        Payer::Nobody { .. } => QUOTE_BODY_MAX,
        _ => CREATE_BODY_MAX,
    };
    let keyed = idempotency::begin(&state, &headers, payer.scope(), CREATE_ROUTE)?;
    let raw = bodies::read(&state, body, &headers, limit, "body").await?;
    let req: CreateBody = parse(&raw.bytes)?;
    let shape_body = ShapeBody {
        preconfig: req.preconfig,
        write: req.write,
        capacity: req.capacity,
        sharing: req.sharing,
        lifecycle: req.lifecycle,
        trust: req.trust,
    };
    let resolved = shape::resolve(&state, shape_body)?;
    let large = req.content_size_bytes.filter(|n| *n > CONTENT_INLINE_MAX);
    let elsewhere = large.is_some() || req.input_key.is_some();
    if elsewhere {
        check_elsewhere(
            &resolved.shape,
            &req.content_base64,
            large.is_some() && req.input_key.is_some(),
        )?;
    }
    let content = match elsewhere {
        true => None,
        false => first_content(&state, &resolved.shape, req.content_base64, req.content_size_bytes)?,
    };
    let content_type = content_type(&resolved.shape, req.content_type)?;
    let sha256_hex = match &req.content_sha256 {
        Some(text) => Some(crate::uploads::parse_sha256(text).ok_or(ApiError::InvalidValue {
            field: "content_sha256",
            reason: "a SHA-256 in 64 hex digits".into(),
        })?),
        None => None,
    };
    let source = match &req.input_key {
        Some(key) if purchase::proven(&payer) => {
            let source = crate::uploads::scratch::source(&state, payer.account_id(), key).await?;
            if source.size_bytes > resolved.shape.size_bytes {
                return Err(ApiError::TooLarge {
                    what: "the scratch object (the baton's size_bytes)",
                    limit: resolved.shape.size_bytes,
                });
            }
            Some(source)
        }
        _ => None,
    };
    if let Some(n) = large {
        if n > resolved.shape.size_bytes {
            return Err(ApiError::TooLarge {
                what: "content_size_bytes (the baton's size_bytes)",
                limit: resolved.shape.size_bytes,
            });
        }
    }
    let reservation = Reservation {
        billable_bytes: resolved.shape.size_bytes,
        duration_seconds: resolved.shape.duration_seconds,
        product: "Baton",
        baton: Some(resolved.shape),
        extension: None,
    };
    let purchase = purchase::begin(&state, &payer, keyed.as_ref(), reservation).await?;
    let idem = keyed
        .as_ref()
        .map(|k| k.seal(&[Part::Value(blake3::hash(&raw.bytes).as_bytes())]));
    drop(raw);
    let (tokens, secrets) = issue(&resolved.tokens)?;
    let (content, staged) = match (content, source) {
        (Some(bytes), _) => {
            let (c, staged) = stage(&state, resolved.shape.write, bytes, content_type.clone()).await?;
            (Some(c), staged)
        }
        (None, Some(source)) => {
            let (staged, key) = crate::uploads::scratch::copy(&state, &source).await?;
            let content = Content {
                body: BodyRef {
                    size_bytes: source.size_bytes,
                    blake3_hex: source.blake3_hex,
                    object_key: Some(key),
                },
                inline: None,
                sha256_hex: source.sha256_hex,
                content_type: content_type.clone(),
            };
            (Some(content), Some(staged))
        }
        (None, None) => (None, None),
    };
    let cfg = &state.config.baton;
    let mut baton = Baton::empty(&resolved.shape);
    baton.entries_max = cfg.max_entries;
    baton.entry_max_bytes = cfg.max_entry_bytes;
    baton.content_type = content_type;
    let lease_id = ids::baton_id();
    let new = NewLease {
        lease_id: lease_id.clone(),
        ledger_id: ids::ledger_id(),
        owner: payer.account_id().to_string(),
        kind: LeaseKind::Baton(Box::new(baton)),
        duration_seconds: resolved.shape.duration_seconds,
    };
    let op = CreateBaton {
        new,
        content,
        tokens,
        batons_max: cfg.max_per_owner,
    };
    let mut upload = None;
    let committed = match large {
        None => purchase.commit(&state, idem, op).await,
        Some(size_bytes) => {
            let want = presign::Want {
                owner: payer.account_id().to_string(),
                object_key: ids::blob_key(),
                size_bytes,
                sha256_hex,
                ttl_seconds: state.config.uploads.url_ttl_seconds,
                target: Target::Lease {
                    lease_id: lease_id.clone(),
                },
            };
            let plan = presign::plan(&state, &headers, want).await?;
            let with = CreateWithUpload {
                purchase: Box::new(op.into()),
                upload: plan.upload.clone(),
            };
            let committed = purchase.commit(&state, idem, with).await;
            if matches!(&committed.answer, Ok(Ok(c)) if c.lease.lease_id == lease_id) {
                upload = Some(plan.object);
            } else {
                presign::abandon(&state, &plan.upload).await;
            }
            committed
        }
    };
    if let Some(staged) = staged {
        staged.settle(&state, &committed.answer).await;
    }
    let (lease, paid) = purchase.answer(&state, committed, "baton")?;
    let b = baton_of(&lease)?;
    // The tokens are shown once: a replay of a keyed create names them, without the secrets.
    let tokens: Vec<Value> = if lease.lease_id == lease_id {
        secrets
            .iter()
            .map(|(t, token)| token_json(t, Some(token), lease.created_at_ms))
            .collect()
    } else {
        state
            .ledger
            .linearizable()
            .await?
            .baton_tokens(&lease.lease_id)?
            .iter()
            .map(super::manage::token_listing)
            .collect()
    };
    let shape = super::shape_of(&lease, b);
    let shape_tokens: Vec<Value> = resolved.tokens.iter().map(shape::render_token_shape).collect();
    let own = json!({
        "baton_id": lease.lease_id,
        "shape": shape::render(resolved.preconfig.as_deref(), &shape, &shape_tokens),
        "price_micros": lease.cost_micros,
        "version": b.version,
        "size_bytes": b.used_bytes,
        "tokens": tokens,
        "state": "active",
        "created_at": render_time(lease.created_at_ms),
    });
    let mut receipt = purchase::receipt(&lease, own);
    if let Some(upload) = upload {
        receipt["upload"] = upload;
    } else if large.is_some() {
        receipt["upload"] = crate::store::pending_upload(&state, &headers, &lease.lease_id).await?;
    }
    let response = (StatusCode::CREATED, Json(receipt)).into_response();
    Ok(purchase::with_receipt(response, paid))
}

/// A first content that does not come in the body (a first write over 3 MiB through the upload
/// URL, or a scratch object) fits only a single or overwrite baton, and comes one way.
fn check_elsewhere(shape: &Shape, content_base64: &Option<String>, both: bool) -> ApiResult<()> {
    if content_base64.is_some() || both {
        return Err(ApiError::BadRequest(
            "send one first content: content_base64, content_size_bytes over 3 MiB (uploaded), or input_key".into(),
        ));
    }
    if shape.write.appends() {
        return Err(ApiError::WrongWriteKind(format!(
            "a {} baton's entries ride inline: at most 3 MiB, as content_base64",
            shape.write.name()
        )));
    }
    Ok(())
}

/// The first content, decoded and checked against the shape: at most 3 MiB inline (a larger
/// first write needs the upload path), within the size, text where text is due.
fn first_content(
    state: &AppState,
    shape: &Shape,
    content_base64: Option<String>,
    content_size_bytes: Option<u64>,
) -> ApiResult<Option<Bytes>> {
    let Some(text) = content_base64 else {
        if content_size_bytes.is_some_and(|n| n > 0) {
            return Err(ApiError::InvalidValue {
                field: "content_base64",
                reason: "a first write of up to 3 MiB is sent as content_base64".into(),
            });
        }
        return Ok(None);
    };
    if text.len() as u64 > CONTENT_INLINE_MAX.div_ceil(3) * 4 {
        return Err(ApiError::TooLarge {
            what: "content_base64",
            limit: CONTENT_INLINE_MAX,
        });
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .map_err(|e| ApiError::InvalidValue {
            field: "content_base64",
            reason: format!("not base64: {e}"),
        })?;
    if content_size_bytes.is_some_and(|n| n != bytes.len() as u64) {
        return Err(ApiError::InvalidValue {
            field: "content_size_bytes",
            reason: format!("the content has {} bytes", bytes.len()),
        });
    }
    super::check_write(state, shape.write, shape.size_bytes, 0, &bytes)?;
    Ok(Some(Bytes::from(bytes)))
}

fn content_type(shape: &Shape, given: Option<String>) -> ApiResult<String> {
    if shape.write.is_text() {
        return Ok(text_type().into());
    }
    content_type_value(given.as_deref())
}

/// A single object's content type: given (1 to 128 visible ASCII characters and spaces), or
/// `application/octet-stream`.
pub fn content_type_value(given: Option<&str>) -> ApiResult<String> {
    let value = given.unwrap_or("application/octet-stream").to_string();
    if value.is_empty()
        || value.len() > relay_raft::baton::CONTENT_TYPE_MAX_LEN
        || !value.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
    {
        return Err(ApiError::InvalidValue {
            field: "content_type",
            reason: "1 to 128 visible ASCII characters".into(),
        });
    }
    Ok(value)
}

/// Content for the ledger: an entry (always inline), or an object's content (inline when small,
/// else staged as a blob to settle by the answer).
pub async fn stage(
    state: &AppState,
    write: relay_raft::baton::WriteKind,
    bytes: Bytes,
    content_type: String,
) -> ApiResult<(Content, Option<blobs::Staged>)> {
    let sha256_hex = relay_raft::baton::sha256_hex(&bytes);
    if write.appends() {
        let body = BodyRef {
            size_bytes: bytes.len() as u64,
            blake3_hex: blake3::hash(&bytes).to_hex().to_string(),
            object_key: None,
        };
        let content = Content {
            body,
            inline: Some(bytes.to_vec()),
            sha256_hex,
            content_type,
        };
        return Ok((content, None));
    }
    let small = blobs::small(state, bytes).await?;
    let content = Content {
        body: small.body,
        inline: small.inline,
        sha256_hex,
        content_type,
    };
    Ok((content, Some(small.staged)))
}

/// New tokens as the ledger stores them (hashes), and each with its secret, to show once.
pub type Issued = (Vec<NewToken>, Vec<(NewToken, String)>);

/// Fresh secrets for the tokens asked for.
pub fn issue(shapes: &[TokenShape]) -> ApiResult<Issued> {
    let mut tokens = Vec::with_capacity(shapes.len());
    let mut shown = Vec::with_capacity(shapes.len());
    for t in shapes {
        let (token, hash) = access::new_token()?;
        let new = NewToken {
            token_id: ids::token_id(),
            token_hash_hex: hash,
            prefix: token.chars().take(12).collect(),
            scope: t.scope,
            read_cap: t.read_cap,
            ttl_seconds: t.ttl_seconds,
        };
        shown.push((new.clone(), token));
        tokens.push(new);
    }
    Ok((tokens, shown))
}

/// A token as issued: its secret, shown once.
pub fn token_json(t: &NewToken, token: Option<&String>, issued_at_ms: u64) -> Value {
    json!({
        "token_id": t.token_id,
        "token": token,
        "scope": t.scope.name(),
        "read_cap": t.read_cap,
        "expires_at": t.ttl_seconds.map(|ttl| render_time(issued_at_ms.saturating_add(ttl.saturating_mul(1000)))),
    })
}

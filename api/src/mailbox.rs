//! Mailbox leases: `POST /api/mailbox`, drops to `drop_url` (no auth: the token is the
//! credential), and the owner's `poll_url` (list, pick up, delete) and `DELETE /api/mailbox/:id`.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header::{self, HeaderMap};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use relay_raft::command::NewLease;
use relay_raft::ops::{CreateMailbox, DeleteMessage, DropMessage, MessagePicked, PickupMessage};
use relay_raft::{Lease, LeaseKind, Mailbox, Message, Webhook};
use serde_json::json;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::headers::{optional_str, parse_u64, required_u64, reservation};
use crate::idempotency::{self, Part};
use crate::purchase::{self, Payer, Reservation};
use crate::state::AppState;
use crate::{blobs, bodies, ids, objects, ops, render, webhook};

const CREATE_ROUTE: &str = "POST /api/mailbox";
const DROP_ROUTE: &str = "POST /api/mailbox/drop/{token}";

/// Drop tokens: 32 bytes from the OS RNG, base64url without padding.
const DROP_TOKEN_LEN: usize = 43;
const WEBHOOK_URL_MAX_LEN: usize = 2048;

#[utoipa::path(
    post,
    path = "/api/mailbox",
    operation_id = "mailbox_create",
    tag = "mailbox",
    security(("api_key" = []), ("session" = []), ("x402" = [])),
    params(
        ("X-Capacity-Bytes" = u64, Header, description = "Bytes the mailbox holds at once"),
        ("X-Duration-Seconds" = u64, Header, description = "How long the lease lives, within the node's bounds (/api/pricing)"),
        ("X-Max-Message-Bytes" = Option<u64>, Header, nullable = false, description = "The largest message (default the capacity, up to the node's maximum)"),
        ("X-Max-Messages" = Option<u64>, Header, nullable = false, description = "Messages held at once"),
        ("X-Keep-On-Read" = Option<String>, Header, nullable = false, description = "`true` keeps a message after pickup (default `false`)"),
        ("X-Webhook-Url" = Option<String>, Header, nullable = false, description = "Where each new message is announced (Standard Webhooks); public addresses only"),
        ("X-Webhook-Secret" = Option<String>, Header, nullable = false, description = "`whsec_…` to sign webhooks with (default: one is made and shown once)"),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, description = "1–128 visible ASCII characters; a retry with the same key and the same request gets the first answer, another request with it a 422"),
    ),
    responses(
        (status = 201, description = "The receipt, plus `drop_url` (shown once), `poll_url`, `webhook_url`, `webhook_secret` and the mailbox's bounds", content_type = "application/json", body = crate::openapi::schemas::Receipt, headers(("PAYMENT-RESPONSE" = String, description = "x402 v2 settlement (X-PAYMENT-RESPONSE for v1), when paid by x402"))),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E402,
        crate::openapi::E409,
        crate::openapi::E413,
        crate::openapi::E422,
    )
)]
pub async fn create(State(state): State<AppState>, payer: Payer, headers: HeaderMap) -> ApiResult<Response> {
    let cfg = &state.config;
    let capacity_bytes = required_u64(&headers, "x-capacity-bytes")?;
    let duration_seconds = required_u64(&headers, "x-duration-seconds")?;
    reservation(
        capacity_bytes,
        "capacity_bytes",
        "X-Capacity-Bytes",
        cfg.mailbox_max_capacity_bytes,
    )?;
    let max_message_bytes =
        optional_u64(&headers, "x-max-message-bytes")?.unwrap_or(cfg.mailbox_max_message_bytes.min(capacity_bytes));
    if max_message_bytes == 0 || max_message_bytes > capacity_bytes.min(cfg.mailbox_max_message_bytes) {
        return Err(ApiError::InvalidValue {
            field: "max_message_bytes",
            reason: format!(
                "must be 1 to {} (the capacity and the server's ceiling)",
                capacity_bytes.min(cfg.mailbox_max_message_bytes)
            ),
        });
    }
    let max_messages = optional_u64(&headers, "x-max-messages")?.unwrap_or(cfg.mailbox_default_messages);
    if !(1..=cfg.mailbox_max_messages).contains(&max_messages) {
        return Err(ApiError::InvalidValue {
            field: "max_messages",
            reason: format!("must be 1 to {}", cfg.mailbox_max_messages),
        });
    }
    let keep_on_read = match optional_str(&headers, "x-keep-on-read")? {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => true,
        Some(v) if v.eq_ignore_ascii_case("false") || v == "0" => false,
        Some(_) => {
            return Err(ApiError::InvalidHeader {
                name: "x-keep-on-read",
                reason: "must be true or false".into(),
            })
        }
    };
    let reservation = Reservation {
        billable_bytes: capacity_bytes,
        duration_seconds,
        product: "Mailbox",
        baton: None,
        extension: None,
    };
    purchase::quote(&state, reservation)?;
    let keyed = idempotency::begin(&state, &headers, payer.scope(), CREATE_ROUTE)?;
    // The payer first: resolving a webhook's host is work an unproven request does not get.
    let purchase = purchase::begin(&state, &payer, keyed.as_ref(), reservation).await?;
    let webhook = webhook_settings(&state, &headers).await?;
    let token = new_token()?;
    let new = NewLease {
        lease_id: ids::lease_id(),
        ledger_id: ids::ledger_id(),
        owner: payer.account_id().to_string(),
        kind: LeaseKind::Mailbox(Mailbox {
            capacity_bytes,
            max_message_bytes,
            max_messages,
            keep_on_read,
            drop_token_hash_hex: blake3::hash(token.as_bytes()).to_hex().to_string(),
            webhook: webhook.clone(),
            used_bytes: 0,
            message_count: 0,
            next_seq: 1,
            webhooks_pending: 0,
        }),
        duration_seconds,
    };
    let idem = keyed.as_ref().map(|k| {
        k.seal(&[
            Part::Header(&headers, "x-capacity-bytes"),
            Part::Header(&headers, "x-duration-seconds"),
            Part::Header(&headers, "x-max-message-bytes"),
            Part::Header(&headers, "x-max-messages"),
            Part::Header(&headers, "x-keep-on-read"),
            Part::Header(&headers, "x-webhook-url"),
            Part::Header(&headers, "x-webhook-secret"),
        ])
    });
    let committed = purchase.commit(&state, idem, CreateMailbox { new }).await;
    let (lease, paid) = purchase.answer(&state, committed, "account")?;
    let LeaseKind::Mailbox(mb) = &lease.kind else {
        return Err(ApiError::Internal(format!(
            "mailbox create answered with a {}",
            lease.kind.name()
        )));
    };
    // A replayed create answers with the first mailbox, whose token and secret were shown once.
    let fresh = mb.drop_token_hash_hex == blake3::hash(token.as_bytes()).to_hex().as_str();
    let base = base_url(&state, &headers);
    let response = (
        StatusCode::CREATED,
        Json(purchase::receipt(
            &lease,
            json!({
                "drop_url": fresh.then(|| format!("{base}/api/mailbox/drop/{token}")),
                "poll_url": format!("{base}/api/mailbox/{}/messages", lease.lease_id),
                "webhook_url": mb.webhook.as_ref().map(|w| w.url.clone()),
                "webhook_secret": if fresh { webhook.map(|w| w.secret) } else { None },
                "capacity_bytes": mb.capacity_bytes,
                "max_message_bytes": mb.max_message_bytes,
                "max_messages": mb.max_messages,
                "keep_on_read": mb.keep_on_read,
            }),
        )),
    )
        .into_response();
    Ok(purchase::with_receipt(response, paid))
}

/// `X-Webhook-Url` (checked against the SSRF policy now, and again at every connection) and
/// `X-Webhook-Secret` (given, or generated).
async fn webhook_settings(state: &AppState, headers: &HeaderMap) -> ApiResult<Option<Webhook>> {
    let url = optional_str(headers, "x-webhook-url")?;
    let secret = optional_str(headers, "x-webhook-secret")?;
    let Some(url) = url else {
        if secret.is_some() {
            return Err(ApiError::BadRequest("X-Webhook-Secret needs X-Webhook-Url".into()));
        }
        return Ok(None);
    };
    if url.len() > WEBHOOK_URL_MAX_LEN {
        return Err(ApiError::InvalidHeader {
            name: "x-webhook-url",
            reason: format!("longer than {WEBHOOK_URL_MAX_LEN} characters"),
        });
    }
    let checked = state
        .config
        .webhook_policy
        .check_url(url)
        .await
        .map_err(|reason| ApiError::InvalidValue {
            field: "webhook_url",
            reason,
        })?;
    let secret = match secret {
        Some(s) if webhook::secret_key(s).is_some() => s.to_string(),
        Some(_) => {
            return Err(ApiError::InvalidHeader {
                name: "x-webhook-secret",
                reason: "must be whsec_ followed by base64 of 16 to 64 bytes".into(),
            })
        }
        None => webhook::new_secret().map_err(|e| ApiError::Internal(e.to_string()))?,
    };
    Ok(Some(Webhook {
        url: checked.to_string(),
        secret,
    }))
}

/// `POST drop_url`: no auth; the token in the path is the credential. The token is checked
/// against the ledger's state before a byte of the body is read: an unknown token costs a read
/// barrier at most, never a ledger write, an object or more memory than the request head.
#[utoipa::path(
    post,
    path = "/api/mailbox/drop/{token}",
    operation_id = "mailbox_drop_message",
    tag = "mailbox",
    params(
        ("token" = String, Path, description = "The drop token from the mailbox's `drop_url`; it is the credential"),
        ("Content-Type" = Option<String>, Header, nullable = false, description = "The message's media type, kept with it"),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, description = "1–128 visible ASCII characters; a retry with the same key and the same request gets the first answer, another request with it a 422"),
    ),
    request_body(content = crate::openapi::schemas::Binary, content_type = "*/*", description = "The message, up to the mailbox's X-Max-Message-Bytes"),
    responses(
        (status = 201, description = "Queued: `{status, id, size_bytes, received_at}`", content_type = "application/json", body = Object),
        crate::openapi::Common,
        crate::openapi::E404,
        crate::openapi::E409,
        crate::openapi::E410,
        crate::openapi::E413,
        crate::openapi::E422,
    )
)]
pub async fn drop_message(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let token = match path {
        Ok(Path(t)) if is_token(&t) => t,
        _ => return Err(ApiError::NotFound("mailbox")),
    };
    let hash = blake3::hash(token.as_bytes());
    let content_type = crate::store::content_type(&headers)?;
    // This node's state first; a mailbox created a moment ago elsewhere needs a read barrier.
    let lease = match state.ledger.reader().mailbox_by_token_hash(hash.as_bytes())? {
        Some(lease) => lease,
        None => state
            .ledger
            .linearizable()
            .await?
            .mailbox_by_token_hash(hash.as_bytes())?
            .ok_or(ApiError::NotFound("mailbox"))?,
    };
    let LeaseKind::Mailbox(mb) = &lease.kind else {
        return Err(ApiError::NotFound("mailbox"));
    };
    // Expiry and deletion are final, so a local "gone" is the answer; the ledger checks again.
    if !lease.is_live_at(state.ledger.now_ms()) {
        return Err(ApiError::Gone("mailbox has expired or was deleted"));
    }
    let keyed = idempotency::begin(&state, &headers, &format!("drop:{}", hash.to_hex()), DROP_ROUTE)?;
    // Limits never change, so the local record bounds the body.
    let body = bodies::read(&state, body, &headers, mb.max_message_bytes, "message").await?;
    let idem = keyed.as_ref().map(|k| {
        k.seal(&[
            Part::Header(&headers, "content-type"),
            Part::Value(blake3::hash(&body.bytes).as_bytes()),
        ])
    });
    let small = blobs::small(&state, body.bytes.clone()).await?;
    let drop = DropMessage {
        token_hash_hex: hash.to_hex().to_string(),
        content_type,
        body: small.body,
        inline_body: small.inline,
    };
    let answer = state.ledger.run(idem, drop).await;
    small.staged.settle(&state, &answer).await;
    let message = ops::answer(answer, "mailbox")?.message;
    state.metrics.messages_dropped.inc();
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "status": "ok",
            "id": message_id(message.seq),
            "size_bytes": message.body.size_bytes,
            "received_at": render::timestamp(message.received_at_ms),
        })),
    )
        .into_response())
}

/// `GET poll_url`: the queued messages, in arrival order.
#[utoipa::path(
    get,
    path = "/api/mailbox/{lease_id}/messages",
    operation_id = "mailbox_poll",
    tag = "mailbox",
    security(("api_key" = []), ("session" = [])),
    params(
        ("lease_id" = String, Path, description = "A lease id (`lse_…`)"),
    ),
    responses(
        (status = 200, description = "The queue's metadata: `{status, lease_id, count, used_bytes, capacity_bytes, expires_at, items: [{id, size_bytes, content_type, received_at}]}`", content_type = "application/json", body = crate::openapi::schemas::MailboxQueue),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E404,
        crate::openapi::E410,
    )
)]
pub async fn poll(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<Response> {
    let lease_id = crate::store::lease_id_param(path)?;
    let (reader, now_ms) = state.ledger.linearizable_now().await?;
    let lease = owned_live_mailbox(reader.lease(&lease_id)?, &caller, now_ms)?;
    let LeaseKind::Mailbox(mb) = &lease.kind else {
        return Err(ApiError::NotFound("mailbox"));
    };
    let messages = reader.messages(&lease_id, mb.max_messages as usize)?;
    let items: Vec<_> = messages
        .iter()
        .map(|m| {
            json!({
                "id": message_id(m.seq),
                "size_bytes": m.body.size_bytes,
                "content_type": m.content_type,
                "received_at": render::timestamp(m.received_at_ms),
            })
        })
        .collect();
    Ok(Json(json!({
        "status": "ok",
        "lease_id": lease.lease_id,
        "count": items.len(),
        "used_bytes": mb.used_bytes,
        "capacity_bytes": mb.capacity_bytes,
        "expires_at": render::timestamp(lease.expires_at_ms),
        "items": items,
    }))
    .into_response())
}

/// `GET poll_url/:id`: one message; picking it up removes it unless the mailbox keeps messages
/// on read. `HEAD` never removes anything.
#[utoipa::path(
    get,
    path = "/api/mailbox/{lease_id}/messages/{message_id}",
    operation_id = "mailbox_pickup",
    tag = "mailbox",
    security(("api_key" = []), ("session" = [])),
    params(
        ("lease_id" = String, Path, description = "A lease id (`lse_…`)"),
        ("message_id" = String, Path, description = "A message id (`msg_…`)"),
    ),
    responses(
        (status = 200, description = "The message's bytes with the Content-Type it was dropped with; removed unless the mailbox keeps messages on read", content_type = "*/*", body = crate::openapi::schemas::Binary, headers(("X-Message-Id" = String, description = "The message id"), ("X-Received-At" = String, description = "When it arrived"))),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E404,
        crate::openapi::E410,
        crate::openapi::E502,
    )
)]
pub async fn pickup(
    State(state): State<AppState>,
    caller: Caller,
    method: Method,
    path: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<Response> {
    let (lease_id, seq) = message_params(path)?;
    let (reader, now_ms) = state.ledger.linearizable_now().await?;
    owned_live_mailbox(reader.lease(&lease_id)?, &caller, now_ms)?;
    let message = reader.message(&lease_id, seq)?.ok_or(ApiError::NotFound("message"))?;
    if method == Method::HEAD {
        return respond(&message, None);
    }
    // The message is held whole until sent: it takes its room in the body buffer first.
    let room = state.limits.buffer(message.body.size_bytes).await?;
    // Object bytes are read before the pickup commits, so a removed message was always served.
    let prefetched = match &message.body.object_key {
        Some(key) => Some(
            objects::read_small(&state.objects, key, &message.body.blake3_hex, &state.metrics)
                .await?
                .ok_or(ApiError::NotFound("message"))?,
        ),
        None => None,
    };
    let pickup = PickupMessage {
        owner: caller.account_id,
        lease_id,
        seq,
    };
    let MessagePicked {
        message, inline_body, ..
    } = ops::run(&state, None, pickup, "mailbox").await?;
    let bytes = match (prefetched, inline_body) {
        (Some(bytes), _) => bytes,
        (None, Some(bytes)) => Bytes::from(bytes),
        (None, None) => return Err(ApiError::Internal("inline message body missing".into())),
    };
    Ok(crate::limits::hold(respond(&message, Some(bytes))?, room))
}

/// `DELETE poll_url/:id`.
#[utoipa::path(
    delete,
    path = "/api/mailbox/{lease_id}/messages/{message_id}",
    operation_id = "mailbox_delete_message",
    tag = "mailbox",
    security(("api_key" = []), ("session" = [])),
    params(
        ("lease_id" = String, Path, description = "A lease id (`lse_…`)"),
        ("message_id" = String, Path, description = "A message id (`msg_…`)"),
    ),
    responses(
        (status = 200, description = "`{status, id, deleted}`", content_type = "application/json", body = Object),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E404,
        crate::openapi::E410,
    )
)]
pub async fn delete_message(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<Response> {
    let (lease_id, seq) = message_params(path)?;
    let delete = DeleteMessage {
        owner: caller.account_id,
        lease_id,
        seq,
    };
    ops::run(&state, None, delete, "mailbox").await?;
    Ok(Json(json!({"status": "ok", "id": message_id(seq), "deleted": true})).into_response())
}

/// `DELETE /api/mailbox/:lease_id`: the mailbox and every message, now; no refund.
#[utoipa::path(
    delete,
    path = "/api/mailbox/{lease_id}",
    operation_id = "mailbox_delete",
    tag = "mailbox",
    security(("api_key" = []), ("session" = [])),
    params(
        ("lease_id" = String, Path, description = "A lease id (`lse_…`)"),
    ),
    responses(
        (status = 200, description = "Deleted with its messages: `{status, lease_id, deleted, refund_micros}`", content_type = "application/json", body = crate::openapi::schemas::LeaseDeleted),
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
    let lease_id = crate::store::lease_id_param(path)?;
    // A lease's kind never changes, so a local read tells a mailbox from other leases.
    if let Some(lease) = state.ledger.reader().lease(&lease_id)? {
        if lease.owner == caller.account_id && !matches!(lease.kind, LeaseKind::Mailbox(_)) {
            return Err(ApiError::NotFound("mailbox"));
        }
    }
    crate::store::delete_lease(&state, caller.account_id, lease_id, "mailbox").await
}

/// The caller's mailbox if it is live at `now_ms` (the read's cluster time).
fn owned_live_mailbox(lease: Option<Lease>, caller: &Caller, now_ms: u64) -> ApiResult<Lease> {
    match lease {
        Some(l) if l.owner == caller.account_id && matches!(l.kind, LeaseKind::Mailbox(_)) => {
            if l.is_live_at(now_ms) {
                Ok(l)
            } else {
                Err(ApiError::Gone("mailbox has expired or was deleted"))
            }
        }
        _ => Err(ApiError::NotFound("mailbox")),
    }
}

fn respond(message: &Message, bytes: Option<Bytes>) -> ApiResult<Response> {
    let length = bytes.as_ref().map_or(message.body.size_bytes, |b| b.len() as u64);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, message.content_type.as_str())
        .header(header::CONTENT_LENGTH, length)
        .header("x-message-id", message_id(message.seq))
        .header("x-received-at", render::timestamp(message.received_at_ms))
        .body(bytes.map(Body::from).unwrap_or_else(Body::empty))
        .map_err(|e| ApiError::Internal(e.to_string()))
}

pub fn message_id(seq: u64) -> String {
    format!("msg_{seq}")
}

fn message_params(path: Result<Path<(String, String)>, PathRejection>) -> ApiResult<(String, u64)> {
    let Ok(Path((lease_id, id))) = path else {
        return Err(ApiError::NotFound("message"));
    };
    if !ids::is_lease_id(&lease_id) {
        return Err(ApiError::NotFound("mailbox"));
    }
    let seq = id
        .strip_prefix("msg_")
        .filter(|s| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or(ApiError::NotFound("message"))?;
    Ok((lease_id, seq))
}

fn optional_u64(headers: &HeaderMap, name: &'static str) -> ApiResult<Option<u64>> {
    optional_str(headers, name)?.map(|v| parse_u64(v, name)).transpose()
}

fn new_token() -> ApiResult<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn is_token(t: &str) -> bool {
    t.len() == DROP_TOKEN_LEN && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Where this node is reached: `--public-url`, else `http://<Host>`.
pub fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.config.public_url {
        return url.trim_end_matches('/').to_string();
    }
    let host = optional_str(headers, "host")
        .ok()
        .flatten()
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b)))
        .unwrap_or("localhost");
    format!("http://{host}")
}

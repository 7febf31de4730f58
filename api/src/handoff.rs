//! Handoff: `POST /api/handoff/:lease_id` issues a claim token for any lease kind;
//! `GET|POST|HEAD /api/claim/:token` redeems it without auth; `GET /api/handoffs/:lease_id` lists
//! outstanding tokens and `DELETE /api/handoffs/:handoff_id` revokes one.
//!
//! A claim is checked first with a read barrier (nothing counted), the content it will serve is
//! opened or read, and only then is the one `Claim` command proposed, so a request that answers
//! an error never counts a claim.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use bytes::Bytes;
use futures::StreamExt;
use relay_raft::sm::handoffs;
use relay_raft::{Command, Handoff, IdempotencyKey, Lease, LeaseKind, Message, Outcome};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::headers::idempotency_key;
use crate::state::AppState;
use crate::{mailbox, objects, render, store};

pub const TOKEN_PREFIX: &str = "hof_";
/// `hof_` + 32 bytes from the OS RNG, base64url.
const TOKEN_LEN: usize = 4 + 43;
/// Characters of the token shown in listings.
const SHOWN_PREFIX_LEN: usize = 12;
const CREATE_BODY_MAX: u64 = 16 << 10;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    max_claims: Option<u64>,
    delete_on_claim: Option<bool>,
    ttl_seconds: Option<u64>,
    require_post: Option<bool>,
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let lease_id = store::lease_id_param(path)?;
    let bytes = objects::read_body(body, CREATE_BODY_MAX, "body").await?;
    let params: CreateBody = if bytes.iter().all(u8::is_ascii_whitespace) {
        CreateBody::default()
    } else {
        serde_json::from_slice(&bytes).map_err(|e| {
            if e.is_data() {
                ApiError::InvalidValue {
                    field: "body",
                    reason: e.to_string(),
                }
            } else {
                ApiError::InvalidJson(e.to_string())
            }
        })?
    };
    let cfg = &state.config;
    let max_claims = params.max_claims.unwrap_or(1);
    if max_claims == 0 || max_claims > u64::from(cfg.handoff_max_claims) {
        return Err(ApiError::InvalidValue {
            field: "max_claims",
            reason: format!("must be 1 to {}", cfg.handoff_max_claims),
        });
    }
    let ttl_seconds = params.ttl_seconds.unwrap_or(3600);
    if ttl_seconds == 0 || ttl_seconds > cfg.max_duration_seconds {
        return Err(ApiError::InvalidValue {
            field: "ttl_seconds",
            reason: format!("must be 1 to {}", cfg.max_duration_seconds),
        });
    }
    let idempotency = idempotency_key(&headers)?;
    let token = new_token()?;
    let command = Command::CreateHandoff {
        owner: caller.account_id.clone(),
        lease_id,
        handoff_id: format!("hnd_{}", ulid::Ulid::new()),
        token_hash_hex: blake3::hash(token.as_bytes()).to_hex().to_string(),
        token_prefix: token[..SHOWN_PREFIX_LEN].to_string(),
        max_claims: max_claims as u32,
        delete_on_claim: params.delete_on_claim.unwrap_or(false),
        require_post: params.require_post.unwrap_or(false),
        ttl_seconds,
    };
    let idem = idempotency.map(|key| IdempotencyKey {
        scope: caller.account_id,
        key,
    });
    let (handoff, lease_expires_at_ms) = match state.ledger.write(idem, command).await? {
        Ok(Outcome::HandoffCreated {
            handoff,
            lease_expires_at_ms,
        }) => (handoff, lease_expires_at_ms),
        Ok(other) => return Err(ApiError::unexpected(other)),
        Err(rejection) => return Err(ApiError::from_rejection(rejection, "lease")),
    };
    // A replayed create answers with the first handoff, whose token was shown once.
    let fresh = handoff.token_hash_hex == blake3::hash(token.as_bytes()).to_hex().as_str();
    let base = mailbox::base_url(&state, &headers);
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "status": "ok",
            "handoff_id": handoff.handoff_id,
            "handoff_token": fresh.then_some(&token),
            "claim_url": fresh.then(|| format!("{base}/api/claim/{token}")),
            "lease_id": handoff.lease_id,
            "max_claims": handoff.max_claims,
            "delete_on_claim": handoff.delete_on_claim,
            "require_post": handoff.require_post,
            "expires_at": render::timestamp(handoff.expires_at_ms),
            "lease_expires_at": render::timestamp(lease_expires_at_ms),
        })),
    )
        .into_response())
}

/// `GET`, `POST` or `HEAD /api/claim/:token`, no auth.
pub async fn claim(
    State(state): State<AppState>,
    method: Method,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let token = match path {
        Ok(Path(t)) if is_token(&t) => t,
        _ => return Err(ApiError::NotFound("handoff")),
    };
    let hash = blake3::hash(token.as_bytes());
    let post = method == Method::POST;

    // 1. Would the claim be counted? Nothing is counted yet. This node's own state may lag, but
    // every refusal it can see is final (revoked, claimed out, expired and deleted stay so), so
    // only a token it does not know yet, or content that changes, needs a read barrier.
    let mut reader = state.ledger.reader();
    let known = reader.handoff_by_token_hash(hash.as_bytes())?;
    let handoff = match known {
        Some(h) => h,
        None => {
            reader = state.ledger.linearizable().await?;
            reader
                .handoff_by_token_hash(hash.as_bytes())?
                .ok_or(ApiError::NotFound("handoff"))?
        }
    };
    let now_ms = state.ledger.now_ms();
    // HEAD is judged like the GET it previews.
    let handoff = handoffs::judge(handoff, now_ms, post).map_err(|r| ApiError::from_rejection(r, "handoff"))?;
    let mut lease = reader
        .lease(&handoff.lease_id)?
        .filter(|l| l.is_live_at(now_ms))
        .ok_or(ApiError::Gone("lease has expired or was deleted"))?;
    if !matches!(lease.kind, LeaseKind::Storage { .. }) {
        // A checkpoint's state and a mailbox's messages change: serve them as of now.
        lease = state
            .ledger
            .linearizable()
            .await?
            .lease(&handoff.lease_id)?
            .filter(|l| l.is_live_at(now_ms))
            .ok_or(ApiError::Gone("lease has expired or was deleted"))?;
    }

    // 2. Have the content in hand (or the object open) before counting. A Storage lease's bytes
    // never change, so the (possibly lagging) local record names them exactly.
    let content = prepare(&state, &lease, method == Method::HEAD).await?;
    if method == Method::HEAD {
        return Ok(content.into_response(&handoff, None));
    }

    // 3. The one command that counts, retried safely under the caller's Idempotency-Key.
    let idem = idempotency_key(&headers)?.map(|key| IdempotencyKey {
        scope: format!("claim:{}", hash.to_hex()),
        key,
    });
    let command = Command::Claim {
        token_hash_hex: hash.to_hex().to_string(),
        post,
    };
    let (handoff, closed) = match state.ledger.write(idem, command).await? {
        Ok(Outcome::Claimed { handoff, closed, .. }) => (handoff, closed),
        Ok(other) => return Err(ApiError::unexpected(other)),
        Err(rejection) => return Err(ApiError::from_rejection(rejection, "handoff")),
    };
    let guard = closed.then(|| ReleaseOnDrop {
        state: state.clone(),
        lease_id: lease.lease_id.clone(),
    });
    Ok(content.into_response(&handoff, guard))
}

/// What a claim serves, prepared before the claim is counted.
enum Content {
    /// A Storage lease's bytes, already opened (headers and a streaming body).
    Object(Response),
    /// A Checkpoint's latest state.
    Checkpoint {
        version: u64,
        updated_at_ms: u64,
        bytes: Bytes,
    },
    /// A Mailbox's queued messages (bodies are read as the answer streams).
    Messages {
        state: AppState,
        lease_id: String,
        messages: Vec<Message>,
    },
}

async fn prepare(state: &AppState, lease: &Lease, head: bool) -> ApiResult<Content> {
    match &lease.kind {
        LeaseKind::Storage { .. } => {
            if head {
                let mut response = store::serve_object(state, lease, &HeaderMap::new()).await?;
                *response.body_mut() = Body::empty();
                return Ok(Content::Object(response));
            }
            Ok(Content::Object(
                store::serve_object(state, lease, &HeaderMap::new()).await?,
            ))
        }
        LeaseKind::Checkpoint(c) => {
            let bytes = match &c.body.object_key {
                None => Bytes::from(
                    state
                        .ledger
                        .reader()
                        .checkpoint_body(&lease.lease_id)?
                        .ok_or_else(|| ApiError::Internal("inline checkpoint body missing".into()))?,
                ),
                Some(key) => objects::read_small(&state.objects, key, &c.body.blake3_hex, &state.metrics)
                    .await?
                    .ok_or(ApiError::Unavailable("checkpoint is being rewritten; retry".into()))?,
            };
            Ok(Content::Checkpoint {
                version: c.version,
                updated_at_ms: c.updated_at_ms,
                bytes,
            })
        }
        LeaseKind::Mailbox(mb) => Ok(Content::Messages {
            state: state.clone(),
            lease_id: lease.lease_id.clone(),
            messages: state
                .ledger
                .reader()
                .messages(&lease.lease_id, mb.max_messages as usize)?,
        }),
    }
}

impl Content {
    fn into_response(self, handoff: &Handoff, guard: Option<ReleaseOnDrop>) -> Response {
        let mut response = match self {
            Content::Object(response) => response.map(|body| guarded(body, guard)),
            Content::Checkpoint {
                version,
                updated_at_ms,
                bytes,
            } => {
                let mut r = Response::new(Body::from(bytes));
                let h = r.headers_mut();
                h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                h.insert("x-checkpoint-version", HeaderValue::from(version));
                if let Ok(v) = HeaderValue::from_str(&render::timestamp(updated_at_ms)) {
                    h.insert("x-checkpoint-updated-at", v);
                }
                r
            }
            Content::Messages {
                state,
                lease_id,
                messages,
            } => {
                let mut r = Response::new(guarded(messages_body(state, lease_id, messages), guard));
                r.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                r
            }
        };
        let h = response.headers_mut();
        h.insert(
            "x-handoff-id",
            HeaderValue::from_str(&handoff.handoff_id).unwrap_or(HeaderValue::from_static("")),
        );
        h.insert("x-claims-remaining", HeaderValue::from(handoff.claims_remaining));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// `{"lease_id": …, "items": [{id, size_bytes, content_type, received_at, data | data_base64}]}`,
/// one message at a time so memory stays bounded by the largest message.
fn messages_body(state: AppState, lease_id: String, messages: Vec<Message>) -> Body {
    let head = format!(
        "{{\"lease_id\":{},\"count\":{},\"items\":[",
        Value::from(lease_id.clone()),
        messages.len()
    );
    let items = futures::stream::iter(messages.into_iter().enumerate()).then(move |(i, m)| {
        let (state, lease_id) = (state.clone(), lease_id.clone());
        async move {
            let bytes = match &m.body.object_key {
                None => state.ledger.reader().message_body(&lease_id, m.seq)?.map(Bytes::from),
                Some(key) => objects::read_small(&state.objects, key, &m.body.blake3_hex, &state.metrics).await?,
            };
            let mut item = json!({
                "id": mailbox::message_id(m.seq),
                "size_bytes": m.body.size_bytes,
                "content_type": m.content_type,
                "received_at": render::timestamp(m.received_at_ms),
            });
            match bytes {
                Some(b) => match serde_json::from_slice::<Value>(&b) {
                    Ok(data) => item["data"] = data,
                    Err(_) => item["data_base64"] = json!(STANDARD.encode(&b)),
                },
                // Picked up by the owner after this claim was judged.
                None => item["removed"] = json!(true),
            }
            let sep = if i == 0 { "" } else { "," };
            Ok::<Bytes, ApiError>(Bytes::from(format!("{sep}{item}")))
        }
    });
    let stream = futures::stream::once(async move { Ok(Bytes::from(head)) })
        .chain(items)
        .chain(futures::stream::once(async { Ok(Bytes::from_static(b"]}")) }))
        .map(|r: ApiResult<Bytes>| r.map_err(|e| std::io::Error::other(e.to_string())));
    Body::from_stream(stream)
}

/// Deletes the content of a lease closed by its final claim once the answer is done with it
/// (streamed, or abandoned by the client); the ledger's hold timer covers a crash.
struct ReleaseOnDrop {
    state: AppState,
    lease_id: String,
}

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        let ledger = self.state.ledger.clone();
        let lease_id = std::mem::take(&mut self.lease_id);
        tokio::spawn(async move {
            if let Err(e) = ledger.write(None, Command::ReleaseBytes { lease_id }).await {
                tracing::warn!(error = %e, "releasing a claimed lease's content; the hold timer will");
            }
        });
    }
}

fn guarded(body: Body, guard: Option<ReleaseOnDrop>) -> Body {
    match guard {
        None => body,
        Some(guard) => Body::from_stream(body.into_data_stream().map(move |chunk| {
            let _keep = &guard;
            chunk
        })),
    }
}

/// `GET /api/handoffs/:lease_id`: the lease's outstanding tokens.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<Response> {
    let lease_id = store::lease_id_param(path)?;
    let reader = state.ledger.linearizable().await?;
    match reader.lease(&lease_id)? {
        Some(l) if l.owner == caller.account_id => {}
        _ => return Err(ApiError::NotFound("lease")),
    }
    let now_ms = state.ledger.now_ms();
    let rows: Vec<Value> = reader
        .handoffs_for_lease(&lease_id)?
        .into_iter()
        .filter(|h| !h.revoked && h.claims_remaining > 0 && now_ms < h.expires_at_ms)
        .map(|h| {
            json!({
                "handoff_id": h.handoff_id,
                "token_prefix": h.token_prefix,
                "claims_remaining": h.claims_remaining,
                "max_claims": h.max_claims,
                "delete_on_claim": h.delete_on_claim,
                "require_post": h.require_post,
                "created_at": render::timestamp(h.created_at_ms),
                "expires_at": render::timestamp(h.expires_at_ms),
            })
        })
        .collect();
    Ok(Json(json!({"status": "ok", "lease_id": lease_id, "count": rows.len(), "handoffs": rows})).into_response())
}

/// `DELETE /api/handoffs/:handoff_id`: revoke; a second call is 404. Completed claims stand.
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<Response> {
    let handoff_id = match path {
        Ok(Path(id)) if is_handoff_id(&id) => id,
        _ => return Err(ApiError::NotFound("handoff")),
    };
    let command = Command::RevokeHandoff {
        owner: caller.account_id,
        handoff_id,
    };
    match state.ledger.write(None, command).await? {
        Ok(Outcome::HandoffRevoked { handoff }) => Ok(Json(json!({
            "status": "ok",
            "handoff_id": handoff.handoff_id,
            "revoked": true,
            "claims_used": handoff.max_claims - handoff.claims_remaining,
        }))
        .into_response()),
        Ok(other) => Err(ApiError::unexpected(other)),
        Err(rejection) => Err(ApiError::from_rejection(rejection, "handoff")),
    }
}

/// `GET /api/handoffs/:id` names a lease, `DELETE` a handoff: one route, dispatched by the id.
pub fn is_handoff_id(id: &str) -> bool {
    id.strip_prefix("hnd_")
        .is_some_and(|rest| rest.len() == 26 && rest.parse::<ulid::Ulid>().is_ok())
}

fn new_token() -> ApiResult<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

fn is_token(t: &str) -> bool {
    t.len() == TOKEN_LEN
        && t.starts_with(TOKEN_PREFIX)
        && t[TOKEN_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tokens carry 256 random bits, have one shape, and are never repeated.
    #[test]
    fn tokens() {
        let a = new_token().unwrap();
        assert!(is_token(&a), "{a}");
        assert_ne!(a, new_token().unwrap());
        assert!(!is_token("hof_short"));
        assert!(!is_token(&a.replace("hof_", "xxx_")));
        assert!(is_handoff_id(&format!("hnd_{}", ulid::Ulid::new())));
        assert!(!is_handoff_id("hnd_nope"));
    }
}

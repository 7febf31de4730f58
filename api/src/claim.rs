//! `GET|POST|HEAD /api/claim/:token`: redeem a handoff token, no auth (the token is the
//! credential).
//!
//! A claim is judged first on this node's state (nothing counted; an unknown token costs a read
//! barrier at most), the content it will serve is opened or read, and only then is the one
//! `Claim` command proposed, naming what is served, so a request that answers an error never
//! counts a claim. With an `Idempotency-Key`, a retried claim is the same claim: counted once,
//! serving what the first served while that still exists, else 410; never newer content.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::Method;
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use relay_raft::ops::{typed, Claim, Claimed, ReleaseBytes};
use relay_raft::sm::{dedup, handoffs};
use relay_raft::{Handoff, IdempotencyKey, Lease, LeaseKind, Message, Rejection, Served};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::idempotency::{self, Part};
use crate::state::AppState;
use crate::{handoff, mailbox, objects, ops, render, store};

const ROUTE: &str = "claim /api/claim/{token}";
/// How often a claim is prepared again when the content changed before it was counted.
const PREPARE_ATTEMPTS: usize = 3;

/// Redeems a claim token: the lease's content, counted once (HEAD previews and counts nothing).
#[utoipa::path(
    get,
    path = "/api/claim/{token}",
    operation_id = "claim_get",
    tag = "handoff",
    params(
        ("token" = String, Path, description = "The claim token (`hof_…`); it is the credential"),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, description = "1–128 visible ASCII characters; a retry with the same key and the same request gets the first answer, another request with it a 422"),
    ),
    responses(
        (status = 200, description = "The lease's content: a stored object's bytes, a checkpoint's JSON, or a mailbox's messages as JSON", content_type = "*/*", body = crate::openapi::schemas::Binary, headers(("X-Handoff-Id" = String, description = "The handoff"), ("X-Claims-Remaining" = String, description = "Claims left on this token"))),
        crate::openapi::Common,
        crate::openapi::E404,
        crate::openapi::E405,
        crate::openapi::E409,
        crate::openapi::E410,
        crate::openapi::E422,
        crate::openapi::E502,
    )
)]
pub async fn claim_get(
    state: State<AppState>,
    method: Method,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    redeem(state, method, path, headers).await
}

/// The same claim, for tokens that require POST (a link preview never counts one).
#[utoipa::path(
    post,
    path = "/api/claim/{token}",
    operation_id = "claim_post",
    tag = "handoff",
    params(
        ("token" = String, Path, description = "The claim token (`hof_…`); it is the credential"),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, description = "1–128 visible ASCII characters; a retry with the same key and the same request gets the first answer, another request with it a 422"),
    ),
    responses(
        (status = 200, description = "Claims as GET does; a token issued with `require_post` takes only this. The lease's content: a stored object's bytes, a checkpoint's JSON, or a mailbox's messages as JSON", content_type = "*/*", body = crate::openapi::schemas::Binary, headers(("X-Handoff-Id" = String, description = "The handoff"), ("X-Claims-Remaining" = String, description = "Claims left on this token"))),
        crate::openapi::Common,
        crate::openapi::E404,
        crate::openapi::E405,
        crate::openapi::E409,
        crate::openapi::E410,
        crate::openapi::E422,
        crate::openapi::E502,
    )
)]
pub async fn claim_post(
    state: State<AppState>,
    method: Method,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    redeem(state, method, path, headers).await
}

async fn redeem(
    State(state): State<AppState>,
    method: Method,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let token = match path {
        Ok(Path(t)) if handoff::is_token(&t) => t,
        _ => return Err(ApiError::NotFound("handoff")),
    };
    let hash = blake3::hash(token.as_bytes());
    let token_hash_hex = hash.to_hex().to_string();
    let post = method == Method::POST;
    let head = method == Method::HEAD;

    // HEAD never counts, so it takes no key.
    let keyed = match head {
        true => None,
        false => idempotency::begin(&state, &headers, &format!("claim:{token_hash_hex}"), ROUTE)?,
    };
    let idem = keyed
        .as_ref()
        .map(|k| k.seal(&[Part::Value(method.as_str().as_bytes())]));
    if let Some(idem) = &idem {
        if let Some(first) = recorded(&state, idem)? {
            return replay(&state, hash.as_bytes(), first).await;
        }
    }

    for _ in 0..PREPARE_ATTEMPTS {
        // 1. Would the claim be counted? Nothing is counted yet. This node's state may lag, but
        // every refusal it can see is final (revoked, claimed out, expired and deleted stay so),
        // so only a token it does not know yet, or content that changes, needs a read barrier.
        let (handoff, lease) = match judge(&state, hash.as_bytes(), post).await {
            Ok(found) => found,
            Err(refusal) => {
                // A lost answer's retry may find the claim already counted, on the leader.
                if let Some(idem) = &idem {
                    if let Some(first) = recorded_linearizable(&state, idem).await? {
                        return replay(&state, hash.as_bytes(), first).await;
                    }
                }
                return Err(refusal);
            }
        };

        // 2. Have the content in hand (or the object open) before counting.
        let content = prepare(&state, &lease, head).await?;
        if head {
            return Ok(content.into_response(&handoff, None));
        }

        // 3. The one command that counts, naming what is served.
        let claim = Claim {
            token_hash_hex: token_hash_hex.clone(),
            post,
            served: content.served,
        };
        match state.ledger.run(idem.clone(), claim).await? {
            Ok(Claimed {
                handoff,
                closed,
                served,
                ..
            }) if served == content.served => {
                let guard = closed.then(|| ReleaseOnDrop {
                    state: state.clone(),
                    lease_id: lease.lease_id.clone(),
                });
                return Ok(content.into_response(&handoff, guard));
            }
            // The same key was counted first elsewhere (another node): that claim's answer.
            Ok(first) => return replay(&state, hash.as_bytes(), Ok(first)).await,
            Err(Rejection::ContentChanged) => continue,
            Err(rejection) => return Err(ApiError::from_rejection(rejection, "handoff")),
        }
    }
    Err(ApiError::Unavailable(
        "the content kept changing while the claim was prepared".into(),
    ))
}

/// The handoff (as this claim would find it) and its live lease, read with a barrier when this
/// node does not know the token yet and whenever the content may change.
async fn judge(state: &AppState, hash: &[u8; 32], post: bool) -> ApiResult<(Handoff, Lease)> {
    let mut reader = state.ledger.reader();
    let handoff = match reader.handoff_by_token_hash(hash)? {
        Some(h) => h,
        None => {
            reader = state.ledger.linearizable().await?;
            reader
                .handoff_by_token_hash(hash)?
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
    Ok((handoff, lease))
}

/// The first answer to this key, as far as this node has applied.
fn recorded(state: &AppState, idem: &IdempotencyKey) -> ApiResult<Option<Result<Claimed, Rejection>>> {
    let Some(record) = state.ledger.reader().idempotency_record(&idem.scope, &idem.key)? else {
        return Ok(None);
    };
    Ok(Some(typed::<Claim>(Ok(dedup::replay(&record, idem)))?))
}

/// The first answer to this key, after a read barrier.
async fn recorded_linearizable(
    state: &AppState,
    idem: &IdempotencyKey,
) -> ApiResult<Option<Result<Claimed, Rejection>>> {
    state.ledger.linearizable().await?;
    recorded(state, idem)
}

/// Answers a retried claim from what the first one did: its refusal, or what it served if that
/// still exists (the lease live and its content unchanged), else 410. A revoked or expired token
/// ends replays too: revoking a leaked token must stop every way of using it.
async fn replay(state: &AppState, token_hash: &[u8; 32], first: Result<Claimed, Rejection>) -> ApiResult<Response> {
    let Claimed {
        handoff,
        lease: claimed,
        served,
        ..
    } = ops::answer(Ok(first), "handoff")?;
    let reader = state.ledger.linearizable().await?;
    let now_ms = state.ledger.now_ms();
    match reader.handoff_by_token_hash(token_hash)? {
        Some(h) if h.revoked => return Err(ApiError::NotFound("handoff")),
        Some(h) if now_ms >= h.expires_at_ms => return Err(ApiError::Gone("handoff token has expired")),
        Some(_) => {}
        None => return Err(ApiError::NotFound("handoff")),
    }
    let lease = reader
        .lease(&claimed.lease_id)?
        .filter(|l| l.is_live_at(now_ms))
        .ok_or(ApiError::Gone("what this claim served is gone"))?;
    let content = prepare(state, &lease, false).await?;
    let same = match (served, content.served) {
        (Served::Checkpoint { version: a }, Served::Checkpoint { version: b }) => a == b,
        (Served::Object, Served::Object) => true,
        (Served::Messages { .. }, Served::Messages { .. }) => true,
        _ => false,
    };
    if !same {
        return Err(ApiError::Gone("what this claim served has been replaced"));
    }
    let room = content.room;
    let body = match (served, content.body) {
        // Only the messages the first claim could have served.
        (
            Served::Messages { upto_seq },
            Payload::Messages {
                state,
                lease_id,
                messages,
            },
        ) => Payload::Messages {
            state,
            lease_id,
            messages: messages.into_iter().filter(|m| m.seq < upto_seq).collect(),
        },
        (_, body) => body,
    };
    let content = Content { served, body, room };
    let mut response = content.into_response(&handoff, None);
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(response)
}

/// What a claim serves, prepared before the claim is counted.
struct Content {
    served: Served,
    body: Payload,
    /// Room in the body buffer for what is held whole until sent.
    room: Option<crate::limits::Buffer>,
}

enum Payload {
    /// A Storage lease's bytes, already opened (headers and a streaming body).
    Object(Response),
    /// A Checkpoint's state.
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
            let mut response = store::serve_object(state, lease, &HeaderMap::new()).await?;
            if head {
                *response.body_mut() = Body::empty();
            }
            Ok(Content {
                served: Served::Object,
                body: Payload::Object(response),
                room: None,
            })
        }
        LeaseKind::Checkpoint(c) => {
            let room = state.limits.buffer(c.body.size_bytes).await?;
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
            Ok(Content {
                served: Served::Checkpoint { version: c.version },
                body: Payload::Checkpoint {
                    version: c.version,
                    updated_at_ms: c.updated_at_ms,
                    bytes,
                },
                room: Some(room),
            })
        }
        // The ledger refuses handoffs of batons; they share by their own tokens.
        LeaseKind::Baton(_) => Err(ApiError::NotFound("handoff")),
        LeaseKind::Mailbox(mb) => {
            // One message at a time is held while the answer streams: the largest, base64'd.
            let room = state.limits.buffer(mb.max_message_bytes.saturating_mul(7) / 3).await?;
            let messages = state
                .ledger
                .reader()
                .messages(&lease.lease_id, mb.max_messages as usize)?;
            let upto_seq = messages.last().map_or(mb.next_seq, |m| m.seq + 1);
            Ok(Content {
                served: Served::Messages { upto_seq },
                body: Payload::Messages {
                    state: state.clone(),
                    lease_id: lease.lease_id.clone(),
                    messages,
                },
                room: Some(room),
            })
        }
    }
}

impl Content {
    fn into_response(self, handoff: &Handoff, guard: Option<ReleaseOnDrop>) -> Response {
        let mut response = match self.body {
            Payload::Object(response) => response.map(|body| guarded(body, guard)),
            Payload::Checkpoint {
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
            Payload::Messages {
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
        match self.room {
            Some(room) => crate::limits::hold(response, room),
            None => response,
        }
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
            if bytes.is_none() {
                // Picked up by the owner after this claim was judged.
                item["removed"] = json!(true);
            }
            let item = render::with_data(item, bytes.as_deref());
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
pub(crate) struct ReleaseOnDrop {
    pub(crate) state: AppState,
    pub(crate) lease_id: String,
}

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        let ledger = self.state.ledger.clone();
        let lease_id = std::mem::take(&mut self.lease_id);
        tokio::spawn(async move {
            if let Err(e) = ledger.run(None, ReleaseBytes { lease_id }).await {
                tracing::warn!(error = %e, "releasing a claimed lease's content; the hold timer will");
            }
        });
    }
}

pub(crate) fn guarded(body: Body, guard: Option<ReleaseOnDrop>) -> Body {
    match guard {
        None => body,
        Some(guard) => Body::from_stream(body.into_data_stream().map(move |chunk| {
            let _keep = &guard;
            chunk
        })),
    }
}

//! Reading and writing a baton's content. A read is one ledger step ([`ReadBaton`]) that
//! resolves the range, refuses it whole if it would pass the read budget, and counts the bytes and
//! the token's read; the bytes are served after it, from the answer (inline content), the object
//! store, or this node's applied state (entries, behind a read barrier).

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use relay_raft::baton::{Baton, Entry};
use relay_raft::ops::{AppendEntry, BatonRead, ReadBaton, ReadTarget, WriteBaton};
use relay_raft::Lease;
use serde_json::{json, Value};

use super::access::Who;
use super::{baton_of, check_write, create, id_param, render_time, text_type, CONTENT_INLINE_MAX};
use crate::claim::{guarded, ReleaseOnDrop};
use crate::error::{ApiError, ApiResult};
use crate::headers::{optional_str, query_map};
use crate::idempotency::{self, Part};
use crate::state::AppState;
use crate::{bodies, objects, ops, range};

const WRITE_ROUTE: &str = "PUT /v1/baton/{id}";
const APPEND_ROUTE: &str = "POST /v1/baton/{id}/entries";
/// Entries read from the state per step of a streamed answer.
const STREAM_BATCH: usize = 64;
const ENTRIES_DEFAULT_LIMIT: u64 = 100;

/// `GET /v1/baton/{id}`: the content, or one range of it (206).
#[utoipa::path(
    get,
    path = "/v1/baton/{id}",
    operation_id = "baton_content_read",
    tag = "baton",
    security(("api_key" = []), ("session" = []), ("baton_token" = [])),
    params(
        ("id" = String, Path, description = "A baton id (`btn_…`)"),
        ("Range" = Option<String>, Header, nullable = false, description = "One byte range"),
    ),
    responses(
        (status = 200, description = "The content", content_type = "*/*", body = crate::openapi::schemas::Binary, headers(("ETag" = String, description = "The version, quoted"), ("X-Baton-Version" = String, description = "The version"))),
        (status = 206, description = "The range asked for", content_type = "*/*", body = crate::openapi::schemas::Binary, headers(("Content-Range" = String, description = "bytes a-b/size"))),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E404,
        crate::openapi::E405,
        crate::openapi::E409,
        crate::openapi::E410,
        crate::openapi::E416,
        crate::openapi::E502,
    )
)]
pub async fn read(
    State(state): State<AppState>,
    who: Who,
    method: Method,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    no_head(&method)?;
    let lease_id = id_param(path)?;
    let asked = range::spec(optional_str(&headers, "range").ok().flatten());
    let op = ReadBaton {
        lease_id,
        actor: who.actor(),
        target: ReadTarget::Content { range: asked },
    };
    let read = ops::run(&state, None, op, "baton").await?;
    let b = baton_of(&read.lease)?.clone();
    let guard = read.closed.then(|| ReleaseOnDrop {
        state: state.clone(),
        lease_id: read.lease.lease_id.clone(),
    });
    let length = read.end - read.start;
    let body = if length == 0 {
        Body::empty()
    } else if b.write.appends() {
        // The entries were committed before the read: once this node has applied that far, they
        // are here (and a burned baton holds them until the guard lets go).
        state.ledger.linearizable().await?;
        entries_body(&state, &read)
    } else {
        match (&read.inline, b.content.as_ref().and_then(|c| c.object_key.as_ref())) {
            (Some(bytes), _) => Body::from(Bytes::from(bytes.clone()).slice(read.start as usize..read.end as usize)),
            (None, Some(key)) => {
                let blake3_hex = b.content.as_ref().map(|c| c.blake3_hex.clone()).unwrap_or_default();
                let whole = read.start == 0 && read.end == read.total;
                let window = (!whole).then_some(read.start..read.end);
                objects::open(&state.objects, key, window, &blake3_hex, state.metrics.clone()).await?
            }
            (None, None) => return Err(ApiError::Internal("baton content missing".into())),
        }
    };
    state.metrics.bytes_downloaded.inc_by(length);
    let partial = asked.is_some() && read.total > 0;
    let mut response = Response::builder()
        .status(if partial {
            StatusCode::PARTIAL_CONTENT
        } else {
            StatusCode::OK
        })
        .header(header::CONTENT_TYPE, content_type(&b))
        .header(header::CONTENT_LENGTH, length)
        .header(header::ACCEPT_RANGES, "bytes")
        // Content is the uploader's: never rendered as this origin's page.
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::CONTENT_SECURITY_POLICY, "default-src 'none'; sandbox")
        .body(guarded(body, guard))
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    if partial {
        let value = format!("bytes {}-{}/{}", read.start, read.end.saturating_sub(1), read.total);
        insert(response.headers_mut(), header::CONTENT_RANGE.as_str(), value);
    }
    add_meta(response.headers_mut(), &read.lease, &b, &read);
    Ok(response)
}

/// Every read is counted against the budget and the caps, so a HEAD (which would be counted and
/// serve nothing) is refused; the owner's `GET …/meta` says the rest for free.
fn no_head(method: &Method) -> ApiResult<()> {
    match *method == Method::HEAD {
        true => Err(ApiError::MethodNotAllowed),
        false => Ok(()),
    }
}

fn content_type(b: &Baton) -> String {
    match b.write.is_text() || b.content_type.is_empty() {
        true if b.write.is_text() => text_type().into(),
        true => "application/octet-stream".into(),
        false => b.content_type.clone(),
    }
}

fn insert(headers: &mut HeaderMap, name: &'static str, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(name, v);
    }
}

/// `X-Baton-Version`, `X-Baton-Size-Bytes`, `X-Baton-Egress-Remaining`, `ETag`, and for a capped
/// token the reads it has left.
fn add_meta(headers: &mut HeaderMap, lease: &Lease, b: &Baton, read: &BatonRead) {
    insert(headers, "x-baton-id", lease.lease_id.clone());
    insert(headers, "x-baton-version", b.version.to_string());
    insert(headers, "x-baton-size-bytes", read.total.to_string());
    insert(
        headers,
        "x-baton-egress-remaining",
        b.egress_bytes.saturating_sub(b.egress_used).to_string(),
    );
    insert(headers, "etag", etag(b.version));
    insert(headers, "x-baton-expires-at", render_time(lease.expires_at_ms));
    if let Some(sha) = &b.content_sha256 {
        insert(headers, "x-baton-content-sha256", sha.clone());
    }
    if let Some(t) = &read.token {
        if let Some(cap) = t.read_cap {
            insert(
                headers,
                "x-baton-reads-remaining",
                cap.saturating_sub(t.reads).to_string(),
            );
        }
    }
    if read.closed {
        insert(headers, "x-baton-burned", "true".into());
    }
}

pub fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

/// Bytes `start..end` of the entries `1..=upto_seq` laid end to end, read from the applied state
/// a batch at a time.
fn entries_body(state: &AppState, read: &BatonRead) -> Body {
    struct Cursor {
        after: u64,
        offset: u64,
        done: bool,
    }
    let (reader, lease_id) = (state.ledger.reader().clone(), read.lease.lease_id.clone());
    let (start, end, upto) = (read.start, read.end, read.upto_seq);
    let first = Cursor {
        after: 0,
        offset: 0,
        done: false,
    };
    let stream = futures::stream::unfold(first, move |mut cur| {
        let (reader, lease_id) = (reader.clone(), lease_id.clone());
        async move {
            if cur.done || cur.offset >= end || cur.after >= upto {
                return None;
            }
            let batch = match reader.baton_entries(&lease_id, cur.after, STREAM_BATCH) {
                Ok(batch) if !batch.is_empty() => batch,
                Ok(_) => return Some((Err(gone("baton entries are gone")), Cursor { done: true, ..cur })),
                Err(e) => return Some((Err(gone(&e.to_string())), Cursor { done: true, ..cur })),
            };
            let mut chunk = Vec::new();
            for (entry, bytes) in batch {
                if entry.seq > upto || cur.offset >= end {
                    cur.done = true;
                    break;
                }
                let Some(bytes) = bytes else {
                    return Some((Err(gone("baton entry bytes are gone")), Cursor { done: true, ..cur }));
                };
                let (from, to) = (cur.offset, cur.offset + entry.size_bytes);
                if to > start {
                    let lo = start.saturating_sub(from) as usize;
                    let hi = (end.min(to) - from) as usize;
                    chunk.extend_from_slice(&bytes[lo..hi]);
                }
                cur.offset = to;
                cur.after = entry.seq;
            }
            Some((Ok(Bytes::from(chunk)), cur))
        }
    });
    Body::from_stream(stream)
}

/// A stream cut short: the client sees a truncated body, never wrong bytes.
fn gone(why: &str) -> std::io::Error {
    std::io::Error::other(why.to_string())
}

/// `PUT /v1/baton/{id}`: replace a single or overwrite baton's content; `If-Match` makes it a
/// compare-and-set (412).
#[utoipa::path(
    put,
    path = "/v1/baton/{id}",
    operation_id = "baton_content_write",
    tag = "baton",
    security(("api_key" = []), ("session" = []), ("baton_token" = [])),
    params(
        ("id" = String, Path, description = "A baton id (`btn_…`)"),
        ("If-Match" = Option<String>, Header, nullable = false, description = "`\"<version>\"` or `*`"),
        ("Content-Type" = Option<String>, Header, nullable = false, description = "The content's type (`single` batons)"),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, description = "1–128 visible ASCII characters; a retry with the same key and the same request gets the first answer, another request with it a 422"),
    ),
    request_body(content = crate::openapi::schemas::Binary, content_type = "*/*", description = "The new content"),
    responses(
        (status = 200, description = "`{status, baton_id, version, size_bytes, content_sha256, updated_at, expires_at}`", content_type = "application/json", body = crate::openapi::schemas::BatonWritten, headers(("ETag" = String, description = "The new version, quoted"))),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E404,
        crate::openapi::E405,
        crate::openapi::E409,
        crate::openapi::E410,
        crate::openapi::E412,
        crate::openapi::E413,
        crate::openapi::E422,
    )
)]
pub async fn write(
    State(state): State<AppState>,
    who: Who,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let lease_id = id_param(path)?;
    let if_version = crate::checkpoint::if_match(&headers)?;
    // Who may write is settled before the body is read; the baton's kind and size (which never
    // shrink) then bound it. The ledger checks all of it again.
    let b = writable(&state, &who, &lease_id).await?;
    if b.write.appends() {
        return Err(wrong_kind(&b, "append to it with POST /v1/baton/{id}/entries"));
    }
    let content_type = match b.write.is_text() {
        true => text_type().to_string(),
        false => create::content_type_value(optional_str(&headers, "content-type")?)?,
    };
    let known = Some(b);
    let limit = known
        .as_ref()
        .map_or(CONTENT_INLINE_MAX, |b| b.size_bytes.min(CONTENT_INLINE_MAX));
    let keyed = idempotency::begin(&state, &headers, &who.scope(), WRITE_ROUTE)?;
    let body = bodies::read(&state, body, &headers, limit, "body").await?;
    let write = known.as_ref().map_or(relay_raft::baton::WriteKind::Single, |b| b.write);
    if let Some(b) = &known {
        check_write(&state, b.write, b.size_bytes, 0, &body.bytes)?;
    }
    let idem = keyed.as_ref().map(|k| {
        k.seal(&[
            Part::Value(lease_id.as_bytes()),
            Part::Header(&headers, "if-match"),
            Part::Header(&headers, "content-type"),
            Part::Value(blake3::hash(&body.bytes).as_bytes()),
        ])
    });
    let (content, staged) = create::stage(&state, write, body.bytes.clone(), content_type).await?;
    let op = WriteBaton {
        lease_id,
        actor: who.actor(),
        if_version,
        content,
    };
    let answer = state.ledger.run(idem, op).await;
    if let Some(staged) = staged {
        staged.settle(&state, &answer).await;
    }
    let lease = ops::answer(answer, "baton")?;
    let b = baton_of(&lease)?;
    let mut response = Json(json!({
        "status": "ok",
        "baton_id": lease.lease_id,
        "version": b.version,
        "size_bytes": b.used_bytes,
        "content_sha256": b.content_sha256,
        "updated_at": render_time(b.updated_at_ms),
        "expires_at": render_time(lease.expires_at_ms),
    }))
    .into_response();
    insert(response.headers_mut(), "etag", etag(b.version));
    insert(response.headers_mut(), "x-baton-version", b.version.to_string());
    Ok(response)
}

/// The baton `who` may write to, before any body is read: its owner's (404 for anyone else's, as
/// for one that does not exist), or the token's own with a scope that writes (403 `scope`). A
/// baton this node has not applied yet is looked for again after a read barrier. Its kind and
/// limits never shrink, so this view bounds what is read.
async fn writable(state: &AppState, who: &Who, lease_id: &str) -> ApiResult<Baton> {
    if let Some(t) = who.token() {
        if t.lease_id != lease_id {
            return Err(ApiError::NotFound("baton"));
        }
        if !t.scope.writes() {
            return Err(ApiError::Scope("this token's scope does not allow writing".into()));
        }
    }
    match super::lease_anywhere(state, lease_id).await? {
        Some(Lease {
            kind: relay_raft::LeaseKind::Baton(b),
            owner,
            ..
        }) if matches!(who, Who::Token { .. }) || matches!(who, Who::Owner(c) if c.account_id == owner) => Ok(*b),
        _ => Err(ApiError::NotFound("baton")),
    }
}

fn wrong_kind(b: &Baton, hint: &str) -> ApiError {
    ApiError::WrongWriteKind(format!("this is a {} baton: {hint}", b.write.name()))
}

/// `POST /v1/baton/{id}/entries`: append one entry (UTF-8 text) to an append baton.
#[utoipa::path(
    post,
    path = "/v1/baton/{id}/entries",
    operation_id = "baton_content_append",
    tag = "baton",
    security(("api_key" = []), ("session" = []), ("baton_token" = [])),
    params(
        ("id" = String, Path, description = "A baton id (`btn_…`)"),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, description = "1–128 visible ASCII characters; a retry with the same key and the same request gets the first answer, another request with it a 422"),
    ),
    request_body(content = String, content_type = "text/plain", description = "One entry, UTF-8"),
    responses(
        (status = 201, description = "`{status, baton_id, seq, size_bytes, hash, prev_hash, at, version, used_bytes}`", content_type = "application/json", body = crate::openapi::schemas::EntryAppended),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E404,
        crate::openapi::E405,
        crate::openapi::E409,
        crate::openapi::E410,
        crate::openapi::E413,
        crate::openapi::E422,
    )
)]
pub async fn append(
    State(state): State<AppState>,
    who: Who,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let lease_id = id_param(path)?;
    let b = writable(&state, &who, &lease_id).await?;
    if !b.write.appends() {
        return Err(wrong_kind(&b, "replace its content with PUT /v1/baton/{id}"));
    }
    let known = Some(b);
    let limit = state.config.baton.max_entry_bytes;
    let keyed = idempotency::begin(&state, &headers, &who.scope(), APPEND_ROUTE)?;
    let body = bodies::read(&state, body, &headers, limit, "entry").await?;
    if let Some(b) = &known {
        check_write(&state, b.write, b.size_bytes, b.used_bytes, &body.bytes)?;
    }
    let idem = keyed.as_ref().map(|k| {
        k.seal(&[
            Part::Value(lease_id.as_bytes()),
            Part::Value(blake3::hash(&body.bytes).as_bytes()),
        ])
    });
    let op = AppendEntry {
        lease_id,
        actor: who.actor(),
        content: body.bytes.to_vec(),
    };
    let appended = ops::run(&state, idem, op, "baton").await?;
    let b = baton_of(&appended.lease)?;
    let mut item = entry_json(&appended.entry);
    item["status"] = json!("ok");
    item["baton_id"] = json!(appended.lease.lease_id);
    item["version"] = json!(b.version);
    item["used_bytes"] = json!(b.used_bytes);
    Ok((StatusCode::CREATED, Json(item)).into_response())
}

pub fn entry_json(e: &Entry) -> Value {
    json!({
        "seq": e.seq,
        "size_bytes": e.size_bytes,
        "hash": e.hash,
        "prev_hash": e.prev_hash,
        "at": render_time(e.at_ms),
    })
}

/// `GET /v1/baton/{id}/entries?after=&limit=`: entries in order, with their text.
#[utoipa::path(
    get,
    path = "/v1/baton/{id}/entries",
    operation_id = "baton_content_entries",
    tag = "baton",
    security(("api_key" = []), ("session" = []), ("baton_token" = [])),
    params(
        ("id" = String, Path, description = "A baton id (`btn_…`)"),
        ("after" = Option<u64>, Query, description = "Entries after this sequence number"),
        ("limit" = Option<u64>, Query, description = "Up to this many, 1–1000 (default 100)"),
    ),
    responses(
        (status = 200, description = "`{status, baton_id, entries: [{seq, size_bytes, hash, prev_hash, at, content}], next_after, has_more, entry_count, head_hash, egress_remaining_bytes}`", content_type = "application/json", body = crate::openapi::schemas::EntryPage),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E404,
        crate::openapi::E405,
        crate::openapi::E409,
        crate::openapi::E410,
        crate::openapi::E422,
    )
)]
pub async fn entries(
    State(state): State<AppState>,
    who: Who,
    method: Method,
    path: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    no_head(&method)?;
    let lease_id = id_param(path)?;
    let q = query_map(raw.as_deref())?;
    let number = |name: &'static str, default: u64| -> ApiResult<u64> {
        match q.get(name) {
            None => Ok(default),
            Some(v) => v.parse::<u64>().map_err(|_| ApiError::InvalidValue {
                field: name,
                reason: "not a non-negative integer".into(),
            }),
        }
    };
    let after = number("after", 0)?;
    let limit = number("limit", ENTRIES_DEFAULT_LIMIT)?;
    let max = relay_raft::sm::baton_reads::ENTRIES_PAGE_MAX as u64;
    if !(1..=max).contains(&limit) {
        return Err(ApiError::InvalidValue {
            field: "limit",
            reason: format!("must be 1 to {max}"),
        });
    }
    let op = ReadBaton {
        lease_id: lease_id.clone(),
        actor: who.actor(),
        target: ReadTarget::Entries {
            after,
            limit: limit as u32,
        },
    };
    let read = ops::run(&state, None, op, "baton").await?;
    let _guard = read.closed.then(|| ReleaseOnDrop {
        state: state.clone(),
        lease_id: lease_id.clone(),
    });
    let listed = if read.entries.is_empty() {
        Vec::new()
    } else {
        state
            .ledger
            .linearizable()
            .await?
            .baton_entries(&lease_id, after, read.entries.len())?
    };
    let mut items = Vec::with_capacity(listed.len());
    for ((entry, bytes), counted) in listed.iter().zip(&read.entries) {
        let Some(bytes) = bytes.as_deref().filter(|_| entry.seq == counted.seq) else {
            return Err(ApiError::Gone("the baton's entries are gone"));
        };
        let mut item = entry_json(entry);
        item["content"] = json!(String::from_utf8_lossy(bytes));
        items.push(item);
    }
    let b = baton_of(&read.lease)?;
    let last = read.entries.last().map(|e| e.seq);
    Ok(Json(json!({
        "status": "ok",
        "baton_id": lease_id,
        "entries": items,
        "next_after": last,
        "has_more": last.is_some_and(|seq| seq < read.upto_seq),
        "entry_count": read.upto_seq,
        "head_hash": b.head_hash,
        "egress_remaining_bytes": b.egress_bytes.saturating_sub(b.egress_used),
    })))
}

/// `GET /v1/baton/{id}/entries/{seq}`: one entry's text.
#[utoipa::path(
    get,
    path = "/v1/baton/{id}/entries/{seq}",
    operation_id = "baton_content_entry",
    tag = "baton",
    security(("api_key" = []), ("session" = []), ("baton_token" = [])),
    params(
        ("id" = String, Path, description = "A baton id (`btn_…`)"),
        ("seq" = u64, Path, description = "The entry's sequence number, from 1"),
    ),
    responses(
        (status = 200, description = "The entry's text", content_type = "text/plain", body = String, headers(("X-Entry-Seq" = String, description = "Its sequence number"), ("X-Entry-Hash" = String, description = "Its chain hash"))),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E404,
        crate::openapi::E405,
        crate::openapi::E409,
        crate::openapi::E410,
    )
)]
pub async fn entry(
    State(state): State<AppState>,
    who: Who,
    method: Method,
    path: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<Response> {
    no_head(&method)?;
    let Ok(Path((id, seq))) = path else {
        return Err(ApiError::NotFound("entry"));
    };
    let lease_id = id_param(Ok(Path(id)))?;
    let seq = seq
        .parse::<u64>()
        .ok()
        .filter(|s| *s >= 1)
        .ok_or(ApiError::NotFound("entry"))?;
    let op = ReadBaton {
        lease_id: lease_id.clone(),
        actor: who.actor(),
        target: ReadTarget::Entry { seq },
    };
    let read = ops::run(&state, None, op, "baton").await?;
    let guard = read.closed.then(|| ReleaseOnDrop {
        state: state.clone(),
        lease_id: lease_id.clone(),
    });
    let counted = read
        .entries
        .first()
        .ok_or_else(|| ApiError::Internal("entry read answered no entry".into()))?;
    let listed = state
        .ledger
        .linearizable()
        .await?
        .baton_entries(&lease_id, seq - 1, 1)?;
    let Some((entry, Some(bytes))) = listed.into_iter().next().filter(|(e, _)| e.seq == counted.seq) else {
        return Err(ApiError::Gone("the baton's entries are gone"));
    };
    let b = baton_of(&read.lease)?;
    let mut response = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, text_type())
        .header(header::CONTENT_LENGTH, bytes.len())
        .body(guarded(Body::from(bytes), guard))
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let h = response.headers_mut();
    insert(h, "x-entry-seq", entry.seq.to_string());
    insert(h, "x-entry-hash", entry.hash.clone());
    if let Some(prev) = &entry.prev_hash {
        insert(h, "x-entry-prev-hash", prev.clone());
    }
    add_meta(h, &read.lease, b, &read);
    Ok(response)
}

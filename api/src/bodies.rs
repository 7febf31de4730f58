//! Small bodies (checkpoint states, mailbox messages): held in memory, and either carried inline
//! in the ledger command or written to the object store before the command is proposed.

use axum::body::Body;
use axum::http::HeaderMap;
use bytes::Bytes;
use relay_raft::BodyRef;

use crate::error::{ApiError, ApiResult};
use crate::headers::optional_str;
use crate::state::AppState;
use crate::{ids, objects};

/// A body read into memory, holding its share of the node's body buffer until dropped.
pub struct Buffered {
    pub bytes: Bytes,
    _room: crate::limits::Buffer,
}

/// Reads a small body of at most `limit` bytes: refused (413) at once when `Content-Length` says
/// it is larger, and as soon as it grows past the limit; it waits for room in the node's body
/// buffer first (503 when none comes), so bodies held at once are bounded in total.
pub async fn read(
    state: &AppState,
    body: Body,
    headers: &HeaderMap,
    limit: u64,
    what: &'static str,
) -> ApiResult<Buffered> {
    let declared = match optional_str(headers, "content-length")? {
        Some(text) => Some(text.parse::<u64>().map_err(|_| ApiError::InvalidHeader {
            name: "content-length",
            reason: "not a number".into(),
        })?),
        None => None,
    };
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::TooLarge { what, limit });
    }
    let room = state.limits.buffer(declared.unwrap_or(limit).min(limit)).await?;
    let bytes = objects::read_body(body, declared.unwrap_or(limit).min(limit), what).await?;
    Ok(Buffered { bytes, _room: room })
}

/// Bodies up to `inline_max_bytes` ride in the ledger; larger ones are written to the object
/// store first (the caller deletes the object again if the command is refused).
pub async fn store(state: &AppState, bytes: Bytes) -> ApiResult<(BodyRef, Option<Vec<u8>>)> {
    let size_bytes = bytes.len() as u64;
    let blake3_hex = blake3::hash(&bytes).to_hex().to_string();
    if size_bytes <= state.config.inline_max_bytes {
        let body = BodyRef {
            size_bytes,
            blake3_hex,
            object_key: None,
        };
        return Ok((body, Some(bytes.to_vec())));
    }
    let object_key = ids::blob_key();
    objects::put_small(&state.objects, &object_key, bytes).await?;
    state.metrics.bytes_uploaded.inc_by(size_bytes);
    let body = BodyRef {
        size_bytes,
        blake3_hex,
        object_key: Some(object_key),
    };
    Ok((body, None))
}

/// Deletes the object a refused or failed command would have referenced.
pub async fn discard(state: &AppState, body: &BodyRef) {
    if let Some(key) = &body.object_key {
        objects::discard(&state.objects, key).await;
    }
}

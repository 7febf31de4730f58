//! Small bodies (checkpoint states, mailbox messages), read into memory within the node's body
//! buffer; [`crate::blobs::small`] then carries them inline or stages them as blobs.

use axum::body::Body;
use axum::http::HeaderMap;
use bytes::Bytes;

use crate::error::{ApiError, ApiResult};
use crate::headers::optional_str;
use crate::objects;
use crate::state::AppState;

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

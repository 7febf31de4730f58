//! Small bodies (checkpoint states, mailbox messages): held in memory, and either carried inline
//! in the ledger command or written to the object store before the command is proposed.

use bytes::Bytes;
use relay_raft::BodyRef;

use crate::error::ApiResult;
use crate::state::AppState;
use crate::{ids, objects};

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

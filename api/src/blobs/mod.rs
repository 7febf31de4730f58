//! An uploaded object's life, in one place. A blob is *staged* (streamed to the object store,
//! hashed and counted) before the command that will reference it is proposed; once the ledger
//! answers, it is *settled*:
//!
//! - committed: the answer references it, and it lives as long as what references it;
//! - abandoned: the command was certainly not applied (refused, or never proposed), or the answer
//!   is a replay of an earlier request that referenced other bytes; it is deleted now;
//! - unknown outcome (the answer was lost): it is left alone. The command may have committed, and
//!   a retry with the same Idempotency-Key will be answered with a lease that references these
//!   bytes; only the orphan sweeper ([`orphans`]) deletes them, once the ledger has shown it
//!   knows nothing of them.
//!
//! A committed blob is deleted when what references it closes (expiry, delete, a consumed or
//! replaced body): the ledger queues its key and [`gc`] deletes it.

// Opening the store `--objects` names; deleting closed leases' bytes; deleting what no lease knows.
pub mod gc;
pub mod orphans;
pub mod store;

use axum::body::Body;
use bytes::Bytes;
use relay_raft::ops::{LeaseCreated, MessageDropped};
use relay_raft::{BodyRef, Lease, LedgerError, Rejection};

use crate::error::ApiResult;
use crate::state::AppState;
use crate::{ids, objects};

/// Uploads up to this size are written with one PUT; larger ones with a multipart upload (each
/// upload holds up to this much, or two parts, in memory).
pub const SINGLE_PUT_MAX_BYTES: usize = 8 << 20;
/// Part size of multipart uploads.
pub const MULTIPART_PART_BYTES: usize = 8 << 20;

/// A blob written for a command not yet answered. Settle it with [`Staged::settle`]; dropped
/// unsettled, it is left to the orphan sweeper.
#[must_use = "a staged blob is settled once the ledger answers"]
pub struct Staged {
    object_key: Option<String>,
}

/// A streamed upload's blob and what was measured on the way.
pub struct Upload {
    pub staged: Staged,
    pub object_key: String,
    pub size_bytes: u64,
    pub blake3_hex: String,
    pub sha256_hex: Option<String>,
}

/// A small body: inline in the ledger command when it fits, else staged as a blob.
pub struct SmallBody {
    pub staged: Staged,
    pub body: BodyRef,
    pub inline: Option<Vec<u8>>,
}

/// Streams `body` (exactly `declared_bytes`) to a fresh blob; on any error nothing is left behind.
pub async fn upload(state: &AppState, body: Body, declared_bytes: u64) -> ApiResult<Upload> {
    upload_to(state, ids::blob_key(), body, declared_bytes, false).await
}

/// [`upload`] to `object_key`, also measuring the bytes' SHA-256 when `with_sha256`.
pub async fn upload_to(
    state: &AppState,
    object_key: String,
    body: Body,
    declared_bytes: u64,
    with_sha256: bool,
) -> ApiResult<Upload> {
    let uploaded = objects::upload(
        &state.objects,
        &object_key,
        body,
        declared_bytes,
        SINGLE_PUT_MAX_BYTES,
        MULTIPART_PART_BYTES,
        with_sha256,
    )
    .await?;
    state.metrics.bytes_uploaded.inc_by(uploaded.size_bytes);
    Ok(Upload {
        staged: Staged {
            object_key: Some(object_key),
        },
        object_key: uploaded.object_key,
        size_bytes: uploaded.size_bytes,
        blake3_hex: uploaded.blake3_hex,
        sha256_hex: uploaded.sha256_hex,
    })
}

/// A blob written elsewhere (a tus join, a copy) whose keeping the ledger's answer decides.
pub fn staged(object_key: String) -> Staged {
    Staged {
        object_key: Some(object_key),
    }
}

/// Bodies up to `inline_max_bytes` ride in the ledger; larger ones are staged with one PUT.
pub async fn small(state: &AppState, bytes: Bytes) -> ApiResult<SmallBody> {
    let size_bytes = bytes.len() as u64;
    let blake3_hex = blake3::hash(&bytes).to_hex().to_string();
    if size_bytes <= state.config.inline_max_bytes {
        return Ok(SmallBody {
            staged: Staged { object_key: None },
            body: BodyRef {
                size_bytes,
                blake3_hex,
                object_key: None,
            },
            inline: Some(bytes.to_vec()),
        });
    }
    let object_key = ids::blob_key();
    objects::put_small(&state.objects, &object_key, bytes).await?;
    state.metrics.bytes_uploaded.inc_by(size_bytes);
    Ok(SmallBody {
        staged: Staged {
            object_key: Some(object_key.clone()),
        },
        body: BodyRef {
            size_bytes,
            blake3_hex,
            object_key: Some(object_key),
        },
        inline: None,
    })
}

impl Staged {
    /// Settles the blob by the ledger's answer to the operation that was to reference it.
    pub async fn settle<T: References>(self, state: &AppState, answer: &Result<Result<T, Rejection>, LedgerError>) {
        let Some(key) = self.object_key else {
            return;
        };
        let keep = match answer {
            Ok(Ok(output)) => output.references(&key),
            Ok(Err(_)) | Err(LedgerError::TooLarge { .. }) => false,
            Err(e) => {
                tracing::info!(object_key = %key, error = %e, "write outcome unknown: the blob is left to the orphan sweeper");
                true
            }
        };
        if !keep {
            objects::discard(&state.objects, &key).await;
        }
    }
}

/// An operation's output that may reference a staged blob. A replay of an earlier request
/// answers with what that request referenced, which need not be this blob.
pub trait References {
    fn references(&self, key: &str) -> bool;
}

impl References for Lease {
    fn references(&self, key: &str) -> bool {
        self.kind.object_keys().iter().any(|k| k == key)
    }
}

impl References for LeaseCreated {
    fn references(&self, key: &str) -> bool {
        self.lease.references(key)
    }
}

impl References for relay_raft::upload::Upload {
    fn references(&self, key: &str) -> bool {
        self.object_key == key
    }
}

impl References for MessageDropped {
    fn references(&self, key: &str) -> bool {
        self.message.body.object_key.as_deref() == Some(key)
    }
}

//! Uploads whose bytes do not arrive in the create request: a presigned (or node-signed) PUT a
//! paid create hands out, a resumable tus upload, and a scratch object. The ledger keeps each
//! one's record (who, how many bytes, which hash, until when) so that any node can take the next
//! step after another died, and so that an upload never finished is abandoned at its expiry and
//! its bytes deleted.

use serde::{Deserialize, Serialize};

/// Upload ids: `upl_` and a ULID.
pub const ID_PREFIX: &str = "upl_";
/// The most chunks one tus upload may be made of (each PATCH adds at least one).
pub const TUS_CHUNKS_MAX: usize = 10_000;

/// One upload, by its `upload_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    pub upload_id: String,
    pub owner: String,
    /// Where the finished bytes live (for tus: where the chunks are joined).
    pub object_key: String,
    /// The declared length; the upload completes only with exactly this many bytes.
    pub size_bytes: u64,
    /// The declared SHA-256, hex; the upload completes only with bytes of this hash.
    pub sha256_hex: Option<String>,
    pub created_at_ms: u64,
    /// Pending past this instant: abandoned. For scratch: the object's end of life too.
    pub expires_at_ms: u64,
    pub target: Target,
    pub mode: Mode,
    pub state: UploadState,
}

/// What the bytes are for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    /// The content of a lease (Storage) or a baton created and paid before the bytes came.
    Lease { lease_id: String },
    /// A free scratch object, `scratch/<owner>/<uuid>`, reusable as the source of creates.
    Scratch { input_key: String },
    /// A tus upload that creates (and pays for) a Storage lease once its last byte arrives.
    NewStorage {
        file_name: String,
        content_type: String,
        duration_seconds: u64,
    },
    /// A tus upload that brings the bytes of another, pending upload (a presigned create's): its
    /// last byte completes that one.
    Fill { upload_id: String },
}

/// How the bytes arrive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// One PUT to a URL a node signed (HMAC) and serves itself (file backend).
    Local,
    /// One presigned S3 PUT.
    S3Single,
    /// Presigned S3 multipart: `part_bytes` per part; the store's multipart id.
    S3Multipart { multipart_id: String, part_bytes: u64 },
    /// tus 1.0: PATCHes, each stored as chunk objects in order (recorded under their own keys,
    /// so a chunk costs the ledger the same however many came before); `offset` bytes so far.
    Tus { offset: u64, chunks: u32 },
}

/// A stored piece of a tus upload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    pub object_key: String,
    pub size_bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UploadState {
    /// Waiting for its bytes.
    Pending,
    /// Verified in the store: size and hash. `lease_id`: the lease it became or filled.
    Complete {
        at_ms: u64,
        blake3_hex: String,
        sha256_hex: String,
        lease_id: Option<String>,
    },
    /// Never completed before `expires_at_ms`; its bytes are deleted.
    Abandoned { at_ms: u64 },
    /// A scratch object past its life, or one its owner deleted; its bytes are deleted.
    Expired { at_ms: u64 },
}

impl Upload {
    pub fn is_pending(&self) -> bool {
        self.state == UploadState::Pending
    }

    /// The bytes received so far (tus), or none yet.
    pub fn offset(&self) -> u64 {
        match &self.mode {
            Mode::Tus { offset, .. } => *offset,
            _ => 0,
        }
    }

    /// The status shown to its owner at `now_ms`.
    pub fn status_at(&self, now_ms: u64) -> &'static str {
        match self.state {
            UploadState::Pending if now_ms >= self.expires_at_ms => "abandoned",
            UploadState::Pending => "pending",
            UploadState::Complete { .. } if now_ms >= self.expires_at_ms && self.is_scratch() => "expired",
            UploadState::Complete { .. } => "complete",
            UploadState::Abandoned { .. } => "abandoned",
            UploadState::Expired { .. } => "expired",
        }
    }

    pub fn is_scratch(&self) -> bool {
        matches!(self.target, Target::Scratch { .. })
    }
}

/// A scratch owner's use of the free tier: live scratch objects and their declared bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScratchUsage {
    pub count: u64,
    pub bytes: u64,
}

/// Per-owner ceilings on what is held without being paid for yet (the free scratch tier, tus
/// uploads in progress), carried in the command that checks them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScratchQuota {
    pub max_count: u64,
    pub max_bytes: u64,
}

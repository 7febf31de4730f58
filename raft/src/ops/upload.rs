//! Upload operations: begin (a scratch object or a tus upload), a paid create whose bytes come
//! later, a tus chunk, completion (size and hash verified by the node that read the store), the
//! lease a finished tus upload buys, and termination.

use serde::{Deserialize, Serialize};

use super::LeaseCreated;
use crate::command::{Command, NewLease, Outcome};
use crate::upload::{Chunk, Mode, ScratchQuota, Target, Upload};
use crate::Op;

/// Everything a new upload record needs; ids and keys are made before proposing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUpload {
    pub upload_id: String,
    pub owner: String,
    pub object_key: String,
    pub size_bytes: u64,
    pub sha256_hex: Option<String>,
    /// Pending longer than this: abandoned (scratch: the object's whole life).
    pub ttl_seconds: u64,
    pub target: Target,
    pub mode: Mode,
}

/// Start an upload that creates nothing paid yet: a scratch object (within `quota`) or a tus
/// upload that buys its lease when its last byte arrives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeginUpload {
    pub upload: NewUpload,
    pub quota: Option<ScratchQuota>,
}
op!(BeginUpload(BeginUpload) -> Upload, Outcome::UploadChanged { upload } => upload);

/// A paid create (`CreateLease` or `CreateBaton`) whose content arrives later through `upload`
/// (its target is set to the new lease): both happen, or neither. Until the upload completes,
/// reads of the lease answer `UploadPending`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateWithUpload {
    pub purchase: Box<Command>,
    pub upload: NewUpload,
}
op!(CreateWithUpload(CreateWithUpload) -> LeaseCreated, Outcome::LeaseCreated(created) => created);

/// The node read the upload's bytes back from the store: `size_bytes` of these hashes, at
/// `object_key` (when a node-signed PUT wrote them to a fresh key). The ledger completes the upload
/// only if they are what was declared. Completing twice answers the completed upload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompleteUpload {
    pub upload_id: String,
    /// `None`: a node completing an upload it served (the signed URL was the credential).
    pub owner: Option<String>,
    pub object_key: Option<String>,
    pub size_bytes: u64,
    pub blake3_hex: String,
    pub sha256_hex: String,
}
op!(CompleteUpload(CompleteUpload) -> Upload, Outcome::UploadChanged { upload } => upload);

/// A tus PATCH stored `chunk` at `offset`; refused unless `offset` is the upload's offset now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TusAppend {
    pub upload_id: String,
    pub owner: String,
    pub offset: u64,
    pub chunk: Chunk,
}
op!(TusAppend(TusAppend) -> Upload, Outcome::UploadChanged { upload } => upload);

/// A tus upload's bytes are all in and joined at `new`'s object: debit the owner and create the
/// lease, and let the chunks go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinishTus {
    pub upload_id: String,
    pub new: NewLease,
    pub sha256_hex: String,
}
op!(FinishTus(FinishTus) -> LeaseCreated, Outcome::LeaseCreated(created) => created);

/// The owner ends an upload: a pending one is abandoned (tus termination), a scratch object is
/// deleted. Its bytes go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndUpload {
    pub upload_id: String,
    pub owner: String,
}
op!(EndUpload(EndUpload) -> Upload, Outcome::UploadChanged { upload } => upload);

/// A tus upload that fills a pending upload has every byte, joined at `object_key`: complete that
/// upload with them (verified as a completion is) and let the pieces go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FillFromTus {
    pub upload_id: String,
    pub owner: String,
    pub object_key: String,
    pub size_bytes: u64,
    pub blake3_hex: String,
    pub sha256_hex: String,
}
op!(FillFromTus(FillFromTus) -> Upload, Outcome::UploadChanged { upload } => upload);

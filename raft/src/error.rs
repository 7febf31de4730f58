//! Errors of the ledger layer.

use crate::NodeId;

/// Failures of the RocksDB layer or of decoding what it holds.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("corrupt record in {cf}: {source}")]
    Decode { cf: &'static str, source: bincode::Error },
    #[error("encoding a record: {0}")]
    Encode(bincode::Error),
    #[error("missing column family {0}")]
    MissingCf(&'static str),
    #[error("missing record: {0}")]
    Missing(String),
    #[error("snapshot file: {0}")]
    Io(#[from] std::io::Error),
    /// Bytes written in a format this build cannot read (newer, or older than it supports).
    #[error("{what} is in format {found}; this relay reads format {supported}{hint}")]
    Format {
        what: &'static str,
        found: u32,
        supported: u32,
        hint: &'static str,
    },
}

impl StoreError {
    pub(crate) fn format(what: &'static str, found: u32, supported: u32) -> StoreError {
        StoreError::Format {
            what,
            found,
            supported,
            hint: match found {
                0 => {
                    " (made by a development build from before formats were versioned: start from a new data directory)"
                }
                f if f > supported => " (written by a newer relay: run that version or newer)",
                _ => " (written by an older relay this build cannot read)",
            },
        }
    }
}

/// Why a ledger write or linearizable read did not complete. None of these say the command was
/// rejected: rejections are [`crate::Rejection`] values.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// This node is not the leader; `leader` is the one it knows of, if any.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    /// No quorum or no leader right now; the outcome of a write is unknown.
    #[error("ledger unavailable: {0}")]
    Unavailable(String),
    /// The command is larger than one Raft entry may be; it was not applied and never will be.
    #[error("command of {size_bytes} bytes exceeds the {limit_bytes}-byte entry limit")]
    TooLarge { size_bytes: u64, limit_bytes: u64 },
    #[error("ledger storage: {0}")]
    Store(#[from] StoreError),
    #[error("ledger stopped: {0}")]
    Fatal(String),
    /// The ledger answered an operation with another operation's outcome (a bug: an idempotency
    /// key reused across operations by the node itself).
    #[error("the ledger answered with another operation's outcome: {0}")]
    Mismatch(String),
}

impl From<StoreError> for openraft::StorageError<NodeId> {
    fn from(e: StoreError) -> Self {
        openraft::StorageIOError::<NodeId>::new(
            openraft::ErrorSubject::Store,
            openraft::ErrorVerb::Write,
            openraft::AnyError::new(&e),
        )
        .into()
    }
}

impl From<LedgerError> for crate::grpc::ForwardError {
    fn from(e: LedgerError) -> Self {
        use crate::grpc::ForwardError as F;
        match e {
            LedgerError::NotLeader { leader } => F::NotLeader(leader),
            LedgerError::Unavailable(m) => F::Unavailable(m),
            LedgerError::TooLarge {
                size_bytes,
                limit_bytes,
            } => F::TooLarge {
                size_bytes,
                limit_bytes,
            },
            other => F::Failed(other.to_string()),
        }
    }
}

impl From<crate::grpc::ForwardError> for LedgerError {
    fn from(e: crate::grpc::ForwardError) -> Self {
        use crate::grpc::ForwardError as F;
        match e {
            F::NotLeader(leader) => LedgerError::NotLeader { leader },
            F::TooLarge {
                size_bytes,
                limit_bytes,
            } => LedgerError::TooLarge {
                size_bytes,
                limit_bytes,
            },
            F::Unavailable(m) | F::Failed(m) => LedgerError::Unavailable(m),
        }
    }
}

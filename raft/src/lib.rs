//! The replicated lease ledger.
//!
//! Every change to Relay's state is a [`Request`] (a [`Command`] stamped with the leader's clock)
//! committed through openraft and applied by a deterministic state machine whose state lives in
//! RocksDB. The map:
//!
//! - [`model`]: what the ledger stores: accounts, leases and their lifecycle; [`baton`]: the
//!   baton's groups, tokens, entries and the price of a shape.
//! - [`upload`]: uploads whose bytes come after the create (presigned, tus, scratch).
//! - [`command`]: the [`Command`] / [`Response`] vocabulary, one variant per state change.
//! - [`ops`]: each command's payload as a typed operation ([`Op`]) with its own answer.
//! - [`sm`]: `apply`, one file per command family; a pure function of (state, request).
//! - [`store`]: RocksDB column families, the Raft log store and the state machine store.
//! - [`reader`]: read-only queries against the applied state.
//! - [`ledger`]: the handle the rest of Relay uses: start Raft, write commands (forwarded to the
//!   leader), read linearizably, change membership.
//! - [`grpc`]: the tonic transport between nodes, guarded by the cluster secret (and mutual TLS).
//! - [`backup`]: the objects a state copy references, and its restore into a new data directory.
//! - [`pricing`]: the price formula, shared by quotes and creates.

pub mod backup;
pub mod batcher;
pub mod baton;
mod bytes;
pub mod chaos;
pub mod command;
pub mod error;
pub mod grpc;
pub mod ledger;
pub mod model;
pub mod ops;
pub mod pricing;
pub mod reader;
pub mod reads;
pub mod sm;
pub mod store;
pub mod tlog;
pub mod upload;
pub mod witness;

pub use command::{Command, IdempotencyKey, Outcome, Rejection, Request, Response, Served};
pub use error::{LedgerError, StoreError};
pub use ledger::{wall_clock_ms, JoinOutcome, Ledger, LedgerConfig, LedgerStatus};
pub use model::{
    Access, AccessActor, Account, ApiKeyInfo, BodyRef, Charge, Checkpoint, Delivery, Handoff, Lease, LeaseKind,
    LeaseState, Mailbox, Message, Session, SessionKey, Settlement, Webhook, X402Record,
};
pub use ops::Op;
pub use reader::{ChargePage, LeasePage, StateReader};

/// Node ids are small integers chosen by the operator (`--node-id`).
pub type NodeId = u64;

use std::io::Cursor;

openraft::declare_raft_types!(
    /// The openraft type configuration of Relay's ledger.
    pub TypeConfig:
        D = Request,
        R = Response,
        Node = RelayNode,
);

/// How to reach a member: its Raft (gRPC) and public HTTP addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RelayNode {
    pub raft_addr: String,
    pub http_addr: String,
    /// The operator's label for where the node runs (`--region`); empty when not given.
    pub region: String,
}

/// Raft handle specialised to the ledger.
pub type Raft = openraft::Raft<TypeConfig>;

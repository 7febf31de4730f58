//! `relay-testkit`: real `relay` processes on loopback and a typed client of their HTTP API,
//! shared by the node integration tests, `relay-chaos` and `relay-loadtest`. It drives the binary
//! from outside and depends on no Relay crate, so it builds in seconds.
//!
//! - `node`: one process ([`Node`]): spawn with flags and environment, data dir and log, free or
//!   fixed ports, readiness, the keys it was given or made, kill -9, SIGTERM, pause, restart.
//! - `cluster`: N nodes sharing an object store ([`Cluster`]): found, join, wait for voters, the
//!   leader and health.
//! - `client`: the typed client ([`Client`]): one method per route callers use, each a [`Call`]
//!   that sends for a [`Reply`] or hands back the raw request.
//! - `ports`: fixed loopback ports for nodes whose peers must know them up front.
//! - `output`: a node's stdout, drained on its own thread.
//! - `error`: [`KitError`].

mod client;
mod cluster;
mod error;
mod node;
mod output;
mod ports;

pub use client::{api_path, Call, Client, Reply};
pub use cluster::{Cluster, ClusterBuilder, FORM_TIMEOUT, SECRET};
pub use error::KitError;
pub use node::{default_relay_bin, Node, NodeBuilder, LOG_FILE, READY_TIMEOUT, TERM_TIMEOUT};
pub use ports::free_ports;
pub use reqwest::Method;

//! The kit's one error type, for the launcher and the client alike.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum KitError {
    #[error("cannot start {bin}: {source}")]
    Spawn { bin: PathBuf, source: std::io::Error },
    #[error("relay never said it was listening within {timeout_s} s; log {log}:\n{tail}")]
    NotReady { timeout_s: u64, log: PathBuf, tail: String },
    #[error("relay exited before it was ready; log {log}:\n{tail}")]
    ExitedEarly { log: PathBuf, tail: String },
    #[error("relay did not exit within {timeout_s} s; log {log}:\n{tail}")]
    NotExited { timeout_s: u64, log: PathBuf, tail: String },
    /// Asked of a node in the wrong state (restart a running one, wait for a stopped one).
    #[error("{0}")]
    Process(String),
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("no free port in 20000..32000")]
    NoFreePort,
    #[error("cluster: {0}")]
    Cluster(String),
    /// The connection was never made: the request did not reach the node. The text is reqwest's.
    #[error("{0}")]
    Refused(String),
    /// Sent, but no complete answer came back (timeout, reset): it may still take effect.
    #[error("{0}")]
    Lost(String),
    #[error("{what}: HTTP {status} {body}")]
    Status { what: String, status: u16, body: String },
    #[error("{what}: unexpected answer {body}")]
    Malformed { what: String, body: String },
}

impl KitError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> KitError {
        let what = what.into();
        move |source| KitError::Io { what, source }
    }
}

//! Proof that an address is a Relay node holding the cluster secret, asked before that address
//! joins the membership (after which the leader sends it the secret on every call).
//!
//! The asking node sends a fresh nonce and, optionally, the key of a probe object it just wrote;
//! the node at the address answers with its id, its own Raft address, the blake3 of the probe as
//! it reads it from its object store, and a MAC over all of that keyed by the secret. A relay in
//! front of a real node cannot pass: the real node binds its own address into the MAC. The
//! service itself takes no secret (that is the point), so it does no more than hash one small
//! probe object under `probes/`, one call at a time.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tonic::{Request, Response, Status};

use super::pb::relay_identity_client::RelayIdentityClient;
use super::pb::relay_identity_server::RelayIdentity;
use super::pb::Blob;
use super::{blob, secret_matches, unblob};
use crate::NodeId;

/// Object keys a probe may have: `probes/` and a ULID.
pub const PROBE_PREFIX: &str = "probes/";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IdentifyRequest {
    pub nonce: [u8; 32],
    pub probe_key: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IdentifyResponse {
    pub node_id: NodeId,
    pub raft_addr: String,
    /// blake3 of the probe object as this node read it; `None` when it could not read it.
    pub probe_blake3: Option<[u8; 32]>,
    pub proof: [u8; 32],
}

/// Reads a probe object from this node's object store and returns its blake3 (`None` when it is
/// missing or unreadable). Provided by whoever owns the object store.
pub type ProbeReader = Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = Option<[u8; 32]>> + Send>> + Send + Sync>;

/// Whether `key` may name a probe object.
pub fn is_probe_key(key: &str) -> bool {
    key.strip_prefix(PROBE_PREFIX)
        .is_some_and(|rest| rest.len() == 26 && rest.parse::<ulid::Ulid>().is_ok())
}

/// The MAC over an answer, keyed by a key derived from the cluster secret.
pub fn proof(secret: &str, nonce: &[u8; 32], node_id: NodeId, raft_addr: &str, probe: Option<&[u8; 32]>) -> [u8; 32] {
    let key = blake3::derive_key("relay 2026 cluster identify v1", secret.as_bytes());
    let mut mac = blake3::Hasher::new_keyed(&key);
    mac.update(nonce);
    mac.update(&node_id.to_be_bytes());
    mac.update(&(raft_addr.len() as u64).to_be_bytes());
    mac.update(raft_addr.as_bytes());
    match probe {
        Some(p) => mac.update(&[1]).update(p),
        None => mac.update(&[0]),
    };
    *mac.finalize().as_bytes()
}

/// The answering side.
pub struct Service {
    pub node_id: NodeId,
    pub raft_addr: String,
    pub secret: String,
    pub probes: Option<ProbeReader>,
    /// One identify at a time: it is unauthenticated, so it must stay cheap.
    pub slots: Arc<Semaphore>,
}

#[tonic::async_trait]
impl RelayIdentity for Service {
    async fn identify(&self, req: Request<Blob>) -> Result<Response<Blob>, Status> {
        let ask: IdentifyRequest = unblob(req.get_ref())?;
        let _slot = self
            .slots
            .try_acquire()
            .map_err(|_| Status::resource_exhausted("busy"))?;
        let probe_blake3 = match (&ask.probe_key, &self.probes) {
            (Some(key), Some(read)) if is_probe_key(key) => {
                tokio::time::timeout(Duration::from_secs(5), read(key.clone()))
                    .await
                    .ok()
                    .flatten()
            }
            (Some(_), _) => None,
            (None, _) => None,
        };
        let answer = IdentifyResponse {
            node_id: self.node_id,
            raft_addr: self.raft_addr.clone(),
            probe_blake3,
            proof: proof(
                &self.secret,
                &ask.nonce,
                self.node_id,
                &self.raft_addr,
                probe_blake3.as_ref(),
            ),
        };
        Ok(Response::new(blob(&answer)?))
    }
}

/// Why an address is not let in.
#[derive(Debug, thiserror::Error)]
pub enum IdentifyError {
    #[error("{addr} did not answer as a Relay node: {message}")]
    NoAnswer { addr: String, message: String },
    #[error("{addr} does not hold this cluster's secret")]
    WrongSecret { addr: String },
    #[error("{addr} is node {found} at {found_addr}, not node {expected} at {addr}")]
    WrongNode {
        addr: String,
        expected: NodeId,
        found: NodeId,
        found_addr: String,
    },
}

/// Asks `addr` to prove it is node `node_id` holding `secret` (and to read the probe object).
/// Nothing secret is sent. Returns the probe's blake3 as the node read it.
pub async fn verify(
    addr: &str,
    node_id: NodeId,
    secret: &str,
    probe_key: Option<String>,
    tls: Option<&super::tls::RaftTls>,
    timeout: Duration,
) -> Result<Option<[u8; 32]>, IdentifyError> {
    let no_answer = |message: String| IdentifyError::NoAnswer {
        addr: addr.to_string(),
        message,
    };
    let mut nonce = [0u8; 32];
    getrandom::fill(&mut nonce).map_err(|e| no_answer(e.to_string()))?;
    let channel = super::tls::endpoint(addr, tls)
        .map_err(no_answer)?
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect_lazy();
    let mut client = RelayIdentityClient::new(channel).max_decoding_message_size(64 << 10);
    let ask = IdentifyRequest { nonce, probe_key };
    let mut request = Request::new(blob(&ask).map_err(|s| no_answer(s.to_string()))?);
    super::mark_format(&mut request);
    let call = client.identify(request);
    let answer: IdentifyResponse = match tokio::time::timeout(timeout, call).await {
        Err(_) => return Err(no_answer("timed out".into())),
        Ok(Err(status)) => return Err(no_answer(format!("{}: {}", status.code(), status.message()))),
        Ok(Ok(r)) => unblob(r.get_ref()).map_err(|s| no_answer(s.message().to_string()))?,
    };
    let expected = proof(
        secret,
        &nonce,
        answer.node_id,
        &answer.raft_addr,
        answer.probe_blake3.as_ref(),
    );
    if !secret_matches(&answer.proof, &expected) {
        return Err(IdentifyError::WrongSecret { addr: addr.to_string() });
    }
    if answer.node_id != node_id || answer.raft_addr != addr {
        return Err(IdentifyError::WrongNode {
            addr: addr.to_string(),
            expected: node_id,
            found: answer.node_id,
            found_addr: answer.raft_addr,
        });
    }
    Ok(answer.probe_blake3)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The proof binds every field: another secret, node, address or probe gives another MAC.
    #[test]
    fn proofs_bind_everything() {
        let n = [7u8; 32];
        let p = [9u8; 32];
        let base = proof("s3cret-s3cret-s3cret", &n, 2, "127.0.0.1:9000", Some(&p));
        assert_ne!(base, proof("other-other-other-x", &n, 2, "127.0.0.1:9000", Some(&p)));
        assert_ne!(
            base,
            proof("s3cret-s3cret-s3cret", &[8; 32], 2, "127.0.0.1:9000", Some(&p))
        );
        assert_ne!(base, proof("s3cret-s3cret-s3cret", &n, 3, "127.0.0.1:9000", Some(&p)));
        assert_ne!(base, proof("s3cret-s3cret-s3cret", &n, 2, "127.0.0.1:9001", Some(&p)));
        assert_ne!(base, proof("s3cret-s3cret-s3cret", &n, 2, "127.0.0.1:9000", None));
        assert!(is_probe_key(&format!("probes/{}", ulid::Ulid::new())));
        assert!(!is_probe_key("blobs/01hzzzzzzzzzzzzzzzzzzzzzzz"));
        assert!(!is_probe_key("probes/../blobs/x"));
    }
}

//! Calls to other nodes: openraft's network (one reused HTTP/2 channel per peer) and the
//! Forward / ReadIndex / Join calls a follower makes to the leader.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::transport::Channel;

use super::pb::raft_service_client::RaftServiceClient;
use super::pb::Blob;
use super::{blob, unblob, ForwardError, APPEND_MAX_BYTES, MESSAGE_MAX_BYTES, SECRET_HEADER};
use crate::{NodeId, RelayNode, TypeConfig};

/// Channels to peers by address, shared by Raft replication and forwarding.
#[derive(Clone)]
pub struct Peers {
    secret: Arc<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
    tls: Option<Arc<super::tls::RaftTls>>,
    channels: Arc<Mutex<HashMap<String, Channel>>>,
}

/// A call that did not reach the peer or whose answer could not be read.
#[derive(Debug, thiserror::Error)]
#[error("rpc to {addr}: {message}")]
pub struct CallError {
    pub addr: String,
    pub message: String,
    /// The request was larger than a message may be: retrying cannot help.
    pub too_large: Option<u64>,
}

impl Peers {
    pub fn new(secret: &str, tls: Option<super::tls::RaftTls>) -> Result<Peers, String> {
        let secret = secret
            .parse()
            .map_err(|_| "cluster secret must be visible ASCII".to_string())?;
        Ok(Peers {
            secret: Arc::new(secret),
            tls: tls.map(Arc::new),
            channels: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    fn channel(&self, addr: &str) -> Result<Channel, CallError> {
        let mut map = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(ch) = map.get(addr) {
            return Ok(ch.clone());
        }
        let endpoint = super::tls::endpoint(addr, self.tls.as_deref())
            .map_err(|e| CallError {
                addr: addr.into(),
                message: e,
                too_large: None,
            })?
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10));
        let ch = endpoint.connect_lazy();
        map.insert(addr.to_string(), ch.clone());
        Ok(ch)
    }

    /// One unary call with the secret attached, bounded by `timeout`.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        addr: &str,
        method: Method,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, CallError> {
        let err = |message: String| CallError {
            addr: addr.to_string(),
            message,
            too_large: None,
        };
        let mut client = RaftServiceClient::new(self.channel(addr)?)
            .max_decoding_message_size(MESSAGE_MAX_BYTES)
            .max_encoding_message_size(MESSAGE_MAX_BYTES);
        let payload = blob(req).map_err(|s| err(s.to_string()))?;
        let size_bytes = payload.data.len() as u64;
        let mut request = tonic::Request::new(payload);
        request.metadata_mut().insert(SECRET_HEADER, (*self.secret).clone());
        super::mark_format(&mut request);
        request.set_timeout(timeout);
        let fut = async {
            match method {
                Method::AppendEntries => client.append_entries(request).await,
                Method::Vote => client.vote(request).await,
                Method::InstallSnapshot => client.install_snapshot(request).await,
                Method::Forward => client.forward(request).await,
                Method::ReadIndex => client.read_index(request).await,
                Method::Join => client.join(request).await,
            }
        };
        let response: Blob = tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| err("timed out".into()))?
            .map_err(|s| CallError {
                too_large: (s.code() == tonic::Code::OutOfRange).then_some(size_bytes),
                ..err(format!("{}: {}", s.code(), s.message()))
            })?
            .into_inner();
        unblob(&response).map_err(|s| err(s.to_string()))
    }

    /// Forward-style call: transport failures become `ForwardError::Unavailable`.
    pub async fn forward<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        addr: &str,
        method: Method,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, ForwardError> {
        match self
            .call::<Req, Result<Resp, ForwardError>>(addr, method, req, timeout)
            .await
        {
            Ok(result) => result,
            Err(CallError {
                too_large: Some(size_bytes),
                ..
            }) => Err(ForwardError::TooLarge {
                size_bytes,
                limit_bytes: MESSAGE_MAX_BYTES as u64,
            }),
            Err(e) => Err(ForwardError::Unavailable(e.to_string())),
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Method {
    AppendEntries,
    Vote,
    InstallSnapshot,
    Forward,
    ReadIndex,
    Join,
}

/// openraft's network factory over [`Peers`].
#[derive(Clone)]
pub struct Network {
    pub peers: Peers,
}

pub struct PeerClient {
    peers: Peers,
    target: NodeId,
    addr: String,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &RelayNode) -> PeerClient {
        PeerClient {
            peers: self.peers.clone(),
            target,
            addr: node.raft_addr.clone(),
        }
    }
}

impl PeerClient {
    async fn rpc<Req, Resp, E>(
        &self,
        method: Method,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, RelayNode, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let answer: Result<Result<Resp, RaftError<NodeId, E>>, CallError> =
            self.peers.call(&self.addr, method, req, option.hard_ttl()).await;
        match answer {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(remote)) => Err(RPCError::RemoteError(RemoteError::new(self.target, remote))),
            Err(e) if e.message.starts_with("decode") || e.message.starts_with("encode") => {
                Err(RPCError::Network(NetworkError::new(&e)))
            }
            Err(e) => Err(RPCError::Unreachable(Unreachable::new(&e))),
        }
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, RelayNode, RaftError<NodeId>>> {
        let (rpc, sent_last) = within_message(rpc, APPEND_MAX_BYTES);
        let response = self.rpc(Method::AppendEntries, &rpc, &option).await?;
        match (response, sent_last) {
            // Only a prefix was sent: say how far the follower now matches.
            (AppendEntriesResponse::Success, Some(last)) => Ok(AppendEntriesResponse::PartialSuccess(Some(last))),
            (other, _) => Ok(other),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, RelayNode, RaftError<NodeId, InstallSnapshotError>>>
    {
        self.rpc(Method::InstallSnapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, RelayNode, RaftError<NodeId>>> {
        self.rpc(Method::Vote, &rpc, &option).await
    }
}

/// Cuts an AppendEntries request down to the entries that fit in `max_bytes` (always at least
/// one), so a run of large entries never exceeds the message limit. When entries were cut, also
/// returns the last log id sent, and lowers `leader_commit` to it: the follower must not commit
/// past what it was sent (entries up to the old commit index are committed, so this only lowers).
pub fn within_message(
    mut rpc: AppendEntriesRequest<TypeConfig>,
    max_bytes: u64,
) -> (AppendEntriesRequest<TypeConfig>, Option<openraft::LogId<NodeId>>) {
    let mut bytes = 0u64;
    let mut keep = 0;
    for entry in &rpc.entries {
        let size = bincode::serialized_size(entry).unwrap_or(u64::MAX);
        if keep > 0 && bytes.saturating_add(size) > max_bytes {
            break;
        }
        bytes = bytes.saturating_add(size);
        keep += 1;
    }
    if keep == rpc.entries.len() {
        return (rpc, None);
    }
    rpc.entries.truncate(keep);
    let last = rpc.entries.last().map(|e| e.log_id);
    if let (Some(last), Some(commit)) = (last, rpc.leader_commit) {
        if commit.index > last.index {
            rpc.leader_commit = Some(last);
        }
    }
    (rpc, last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Vote};

    fn entry(index: u64, bytes: usize) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(crate::command::Request {
                now_ms: 0,
                idempotency: None,
                command: crate::Command::ExpireDue(crate::ops::ExpireDue { max: bytes as u32 }),
            }),
        }
    }

    /// A run of entries larger than one message is sent in parts, never past the commit index the
    /// leader really has, and a single entry always goes.
    #[test]
    fn append_requests_are_cut_to_fit() {
        let rpc = AppendEntriesRequest {
            vote: Vote::new_committed(1, 1),
            prev_log_id: None,
            leader_commit: Some(LogId::new(CommittedLeaderId::new(1, 1), 10)),
            entries: (1..=10).map(|i| entry(i, 0)).collect(),
        };
        let one = bincode::serialized_size(&rpc.entries[0]).unwrap();
        let (cut, last) = within_message(rpc.clone(), one * 3);
        assert_eq!(cut.entries.len(), 3);
        assert_eq!(last.map(|l| l.index), Some(3));
        assert_eq!(cut.leader_commit.map(|l| l.index), Some(3));
        let (whole, last) = within_message(rpc.clone(), one * 100);
        assert_eq!((whole.entries.len(), last), (10, None));
        assert_eq!(whole.leader_commit.map(|l| l.index), Some(10));
        let (single, last) = within_message(rpc, 1);
        assert_eq!((single.entries.len(), last.map(|l| l.index)), (1, Some(1)));
    }
}

//! The inter-node gRPC service. Requests without the right secret are refused and logged.

use std::sync::Arc;

use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};

use super::identity;
use super::pb::raft_service_server::{RaftService, RaftServiceServer};
use super::pb::relay_identity_server::RelayIdentityServer;
use super::pb::Blob;
use super::{blob, secret_matches, unblob, ForwardError, MESSAGE_MAX_BYTES, SECRET_HEADER};
use crate::command::Request as LedgerRequest;
use crate::ledger::Ledger;
use crate::{NodeId, RelayNode, TypeConfig};

struct Service {
    ledger: Arc<Ledger>,
}

#[tonic::async_trait]
impl RaftService for Service {
    async fn append_entries(&self, req: Request<Blob>) -> Result<Response<Blob>, Status> {
        let rpc: AppendEntriesRequest<TypeConfig> = unblob(req.get_ref())?;
        Ok(Response::new(blob(&self.ledger.raft().append_entries(rpc).await)?))
    }

    async fn vote(&self, req: Request<Blob>) -> Result<Response<Blob>, Status> {
        let rpc: VoteRequest<NodeId> = unblob(req.get_ref())?;
        Ok(Response::new(blob(&self.ledger.raft().vote(rpc).await)?))
    }

    async fn install_snapshot(&self, req: Request<Blob>) -> Result<Response<Blob>, Status> {
        let rpc: InstallSnapshotRequest<TypeConfig> = unblob(req.get_ref())?;
        Ok(Response::new(blob(&self.ledger.raft().install_snapshot(rpc).await)?))
    }

    async fn forward(&self, req: Request<Blob>) -> Result<Response<Blob>, Status> {
        let request: LedgerRequest = unblob(req.get_ref())?;
        let result = self.ledger.write_local(request).await.map_err(ForwardError::from);
        Ok(Response::new(blob(&result)?))
    }

    async fn read_index(&self, _req: Request<Blob>) -> Result<Response<Blob>, Status> {
        let result = self.ledger.leader_read_point().await.map_err(ForwardError::from);
        Ok(Response::new(blob(&result)?))
    }

    async fn join(&self, req: Request<Blob>) -> Result<Response<Blob>, Status> {
        let (node_id, node): (NodeId, RelayNode) = unblob(req.get_ref())?;
        let result = self.ledger.join_local(node_id, node).await.map_err(ForwardError::from);
        Ok(Response::new(blob(&result)?))
    }
}

/// Serves the inter-node API on `listener` until `shutdown` resolves: the Raft service (secret
/// required) and the identity challenge (no secret: see [`identity`]).
pub async fn serve(
    listener: TcpListener,
    ledger: Arc<Ledger>,
    secret: String,
    probes: Option<identity::ProbeReader>,
    tls: Option<super::tls::RaftTls>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let identity = identity::Service {
        node_id: ledger.status().node_id,
        raft_addr: ledger.node().raft_addr.clone(),
        secret: secret.clone(),
        probes,
        slots: Arc::new(tokio::sync::Semaphore::new(1)),
    };
    let identity = RelayIdentityServer::new(identity)
        .max_decoding_message_size(64 << 10)
        .max_encoding_message_size(64 << 10);
    let identity = tonic::service::interceptor::InterceptedService::new(identity, |req: Request<()>| {
        super::check_format(req.metadata())?;
        Ok(req)
    });
    let secret = Arc::new(secret.into_bytes());
    let check = move |req: Request<()>| -> Result<Request<()>, Status> {
        let presented = req
            .metadata()
            .get(SECRET_HEADER)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if secret_matches(presented, &secret) {
            // Only a holder of the secret learns which format this node speaks.
            if let Err(refused) = super::check_format(req.metadata()) {
                tracing::warn!(peer = ?req.remote_addr(), reason = refused.message(), "raft rpc refused: format");
                return Err(refused);
            }
            Ok(req)
        } else {
            tracing::warn!(peer = ?req.remote_addr(), "raft rpc refused: wrong or missing cluster secret");
            Err(Status::unauthenticated("wrong or missing cluster secret"))
        }
    };
    let inner = RaftServiceServer::new(Service { ledger })
        .max_decoding_message_size(MESSAGE_MAX_BYTES)
        .max_encoding_message_size(MESSAGE_MAX_BYTES);
    let service = tonic::service::interceptor::InterceptedService::new(inner, check);
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &tls {
        builder = builder.tls_config(tls.server())?;
    }
    builder
        .timeout(std::time::Duration::from_secs(30))
        .add_service(service)
        .add_service(identity)
        // Without TCP_NODELAY, small Raft replies wait out the peer's delayed ACK (~40 ms).
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
}

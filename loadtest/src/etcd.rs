//! The same scenarios against etcd, through its own gRPC API, with the closest equivalent
//! operation: `checkpoint-put` is a put of the same body, `checkpoint-cas` a txn comparing the
//! key's mod revision then putting, `claim` a txn decrementing a counter only while it is
//! positive, `store-small` a put with a lease attached, `download` a linearizable get,
//! `mailbox-drop` and `baton-append` a put of a fresh key, `baton-read` a linearizable get.

use std::sync::Arc;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use crate::scenario::{OpError, Scenario};
use crate::LoadError;

#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("etcdserverpb");
}

use pb::compare::{CompareResult, CompareTarget, TargetUnion};
use pb::kv_client::KvClient;
use pb::lease_client::LeaseClient;
use pb::request_op::Request as Op;
use pb::{Compare, LeaseGrantRequest, PutRequest, RangeRequest, RequestOp, TxnRequest};

/// Claims on one etcd counter before the client starts a new one (like a fresh handoff token).
const CLAIMS_PER_COUNTER: u64 = 1_000_000;

pub struct EtcdCtx {
    pub channels: Vec<Channel>,
    pub scenario: Scenario,
    pub size_bytes: u64,
    pub run_id: String,
}

impl EtcdCtx {
    pub async fn connect(
        endpoints: &[String],
        scenario: Scenario,
        size_bytes: u64,
        run_id: String,
    ) -> Result<Self, LoadError> {
        let mut channels = Vec::new();
        for e in endpoints {
            let url = if e.starts_with("http") {
                e.clone()
            } else {
                format!("http://{e}")
            };
            let channel = Endpoint::from_shared(url.clone())
                .map_err(|e| LoadError::Args(format!("etcd endpoint {url}: {e}")))?
                .connect_timeout(Duration::from_secs(5))
                .timeout(Duration::from_secs(30))
                .tcp_nodelay(true)
                .connect()
                .await
                .map_err(|e| LoadError::Setup {
                    target: url.clone(),
                    reason: format!("cannot reach etcd: {e}"),
                })?;
            channels.push(channel);
        }
        if channels.is_empty() {
            return Err(LoadError::Args("--etcd needs at least one endpoint".into()));
        }
        Ok(EtcdCtx {
            channels,
            scenario,
            size_bytes,
            run_id,
        })
    }
}

pub struct EtcdClient {
    ctx: Arc<EtcdCtx>,
    kv: KvClient<Channel>,
    key: Vec<u8>,
    body: Vec<u8>,
    /// The key's mod revision as last seen (CAS and claim).
    mod_revision: i64,
    /// The claim counter's value as last seen.
    counter: u64,
    lease: i64,
    seq: u64,
}

impl EtcdClient {
    pub async fn setup(ctx: Arc<EtcdCtx>, index: usize) -> Result<EtcdClient, LoadError> {
        let channel = ctx.channels[index % ctx.channels.len()].clone();
        let kv = KvClient::new(channel.clone());
        let key = format!("lt/{}/{index}", ctx.run_id).into_bytes();
        let body = vec![b'x'; ctx.size_bytes as usize];
        let mut client = EtcdClient {
            ctx,
            kv,
            key,
            body,
            mod_revision: 0,
            counter: 0,
            lease: 0,
            seq: 0,
        };
        let setup_err = |e: tonic::Status| LoadError::Setup {
            target: "etcd".into(),
            reason: e.to_string(),
        };
        match client.ctx.scenario {
            Scenario::StoreSmall | Scenario::StoreX402 | Scenario::BatonAppend | Scenario::BatonAppendWitnessed => {
                let grant = LeaseClient::new(channel)
                    .lease_grant(LeaseGrantRequest { ttl: 3600, id: 0 })
                    .await
                    .map_err(setup_err)?;
                client.lease = grant.into_inner().id;
            }
            Scenario::Download
            | Scenario::CheckpointGet
            | Scenario::MailboxPoll
            | Scenario::CheckpointPut
            | Scenario::CheckpointCas
            | Scenario::MailboxDrop
            | Scenario::BatonRead => {
                client.mod_revision = client.put(client.body.clone()).await.map_err(setup_err)?;
            }
            Scenario::Claim => {
                client.counter = CLAIMS_PER_COUNTER;
                client.mod_revision = client
                    .put(CLAIMS_PER_COUNTER.to_string().into_bytes())
                    .await
                    .map_err(setup_err)?;
            }
        }
        Ok(client)
    }

    async fn put(&mut self, value: Vec<u8>) -> Result<i64, tonic::Status> {
        let resp = self
            .kv
            .put(PutRequest {
                key: self.key.clone(),
                value,
                lease: 0,
            })
            .await?;
        Ok(resp.into_inner().header.map_or(0, |h| h.revision))
    }

    pub async fn op(&mut self) -> Result<(), OpError> {
        let failed = |_: tonic::Status| OpError(0);
        match self.ctx.scenario {
            Scenario::StoreSmall
            | Scenario::StoreX402
            | Scenario::MailboxDrop
            | Scenario::BatonAppend
            | Scenario::BatonAppendWitnessed => {
                self.seq += 1;
                let mut key = self.key.clone();
                key.extend_from_slice(format!("/{}", self.seq).as_bytes());
                self.kv
                    .put(PutRequest {
                        key,
                        value: self.body.clone(),
                        lease: self.lease,
                    })
                    .await
                    .map_err(failed)?;
                Ok(())
            }
            // A linearizable get of the key, as every Relay read is linearizable.
            Scenario::Download | Scenario::CheckpointGet | Scenario::MailboxPoll | Scenario::BatonRead => {
                let resp = self
                    .kv
                    .range(RangeRequest {
                        key: self.key.clone(),
                        ..Default::default()
                    })
                    .await
                    .map_err(failed)?;
                match resp.into_inner().kvs.first() {
                    Some(kv) if kv.value.len() == self.body.len() => Ok(()),
                    _ => Err(OpError(404)),
                }
            }
            Scenario::CheckpointPut => {
                self.put(self.body.clone()).await.map_err(failed)?;
                Ok(())
            }
            Scenario::CheckpointCas => {
                let revision = self.txn_if_unmodified(self.body.clone()).await?;
                self.mod_revision = revision;
                Ok(())
            }
            Scenario::Claim => {
                if self.counter == 0 {
                    return Err(OpError(410));
                }
                let next = (self.counter - 1).to_string().into_bytes();
                self.mod_revision = self.txn_if_unmodified(next).await?;
                self.counter -= 1;
                Ok(())
            }
        }
    }

    /// Put `value` only if the key's mod revision is still the one last seen; the new revision.
    async fn txn_if_unmodified(&mut self, value: Vec<u8>) -> Result<i64, OpError> {
        let resp = self
            .kv
            .txn(TxnRequest {
                compare: vec![Compare {
                    result: CompareResult::Equal as i32,
                    target: CompareTarget::Mod as i32,
                    key: self.key.clone(),
                    target_union: Some(TargetUnion::ModRevision(self.mod_revision)),
                }],
                success: vec![RequestOp {
                    request: Some(Op::RequestPut(PutRequest {
                        key: self.key.clone(),
                        value,
                        lease: 0,
                    })),
                }],
                failure: vec![],
            })
            .await
            .map_err(|_| OpError(0))?
            .into_inner();
        if !resp.succeeded {
            return Err(OpError(412));
        }
        Ok(resp.header.map_or(0, |h| h.revision))
    }
}

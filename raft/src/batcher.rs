//! Group commit on the leader: concurrent writes are gathered into one Raft entry
//! ([`Command::Batch`]), so one log fsync and one replication round serve many requests.
//!
//! openraft 0.9 appends (and fsyncs) each proposal on its own before taking the next, so without
//! this a leader tops out at one write per fsync. Requests queue while earlier batches are in
//! flight; the next batch takes everything queued, up to [`BATCH_MAX`] requests and
//! [`ENTRY_MAX_BYTES`] encoded, so an entry always fits in one inter-node message.

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::command::{Command, Outcome, Request, Response, BATCH_MAX, ENTRY_MAX_BYTES};
use crate::error::LedgerError;
use crate::ledger::wall_clock_ms;
use crate::Raft;

/// Proposals in flight at once; more requests wait and join the next batch. One is fastest
/// (measured against 2 and 4: openraft takes proposals one at a time anyway, and fewer, larger
/// batches mean fewer fsyncs).
const IN_FLIGHT: usize = 1;
/// Requests waiting for a batch; beyond this, writes are refused as overloaded.
const QUEUE_MAX: usize = 16_384;

struct Pending {
    request: Request,
    /// The request's encoded size.
    size_bytes: u64,
    reply: oneshot::Sender<Result<Response, LedgerError>>,
}

/// Room a batch entry needs beyond its requests' own bytes (the enum tags and lengths).
const BATCH_OVERHEAD_BYTES: u64 = 64;

/// The encoded size of a request, as it will travel in the log.
pub fn encoded_size(request: &Request) -> u64 {
    bincode::serialized_size(request).unwrap_or(u64::MAX)
}

#[derive(Clone)]
pub struct Batcher {
    tx: mpsc::Sender<Pending>,
}

impl Batcher {
    pub fn start(raft: Raft, timeout: Duration) -> Batcher {
        let (tx, rx) = mpsc::channel(QUEUE_MAX);
        tokio::spawn(run(raft, rx, timeout));
        Batcher { tx }
    }

    /// Proposes `request` (which must carry an idempotency key) in the next batch.
    pub async fn write(&self, request: Request) -> Result<Response, LedgerError> {
        let size_bytes = encoded_size(&request);
        if size_bytes + BATCH_OVERHEAD_BYTES > ENTRY_MAX_BYTES {
            return Err(LedgerError::TooLarge {
                size_bytes,
                limit_bytes: ENTRY_MAX_BYTES - BATCH_OVERHEAD_BYTES,
            });
        }
        let (reply, answer) = oneshot::channel();
        self.tx
            .try_send(Pending {
                request,
                size_bytes,
                reply,
            })
            .map_err(|_| LedgerError::Unavailable("write queue full".into()))?;
        answer
            .await
            .map_err(|_| LedgerError::Unavailable("ledger stopping".into()))?
    }
}

async fn run(raft: Raft, mut rx: mpsc::Receiver<Pending>, timeout: Duration) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    // A request taken from the queue that did not fit in the previous batch.
    let mut carried: Option<Pending> = None;
    loop {
        let first = match carried.take() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        // Waiting for a slot is what lets the queue fill: the next batch takes it all.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut bytes = BATCH_OVERHEAD_BYTES + first.size_bytes;
        let mut batch = vec![first];
        while batch.len() < BATCH_MAX {
            match rx.try_recv() {
                Ok(p) if fits(bytes, p.size_bytes) => {
                    bytes += p.size_bytes;
                    batch.push(p);
                }
                Ok(p) => {
                    carried = Some(p);
                    break;
                }
                Err(_) => break,
            }
        }
        let raft = raft.clone();
        tokio::spawn(async move {
            propose(&raft, batch, timeout).await;
            drop(slot);
        });
    }
}

async fn propose(raft: &Raft, mut batch: Vec<Pending>, timeout: Duration) {
    let now_ms = wall_clock_ms();
    let entry = if batch.len() == 1 {
        Request {
            now_ms,
            ..batch[0].request.clone()
        }
    } else {
        Request {
            now_ms,
            idempotency: None,
            command: Command::Batch(batch.iter().map(|p| p.request.clone()).collect()),
        }
    };
    let result = tokio::time::timeout(timeout, raft.client_write(entry)).await;
    let answer: Result<Response, fn() -> LedgerError> = match result {
        Err(_) => Err(|| LedgerError::Unavailable("write timed out".into())),
        Ok(Ok(resp)) => Ok(resp.data),
        Ok(Err(e)) => {
            // Every waiter gets the same error; build one per waiter (errors are not Clone).
            let err = describe(e);
            for p in batch {
                let _ = p.reply.send(Err(err.make()));
            }
            return;
        }
    };
    match answer {
        Err(make) => {
            for p in batch {
                let _ = p.reply.send(Err(make()));
            }
        }
        Ok(response) if batch.len() == 1 => {
            let _ = batch.remove(0).reply.send(Ok(response));
        }
        Ok(Ok(Outcome::Batch(responses))) if responses.len() == batch.len() => {
            for (p, r) in batch.into_iter().zip(responses) {
                let _ = p.reply.send(Ok(r));
            }
        }
        Ok(other) => {
            tracing::error!(?other, "batch answered with something else");
            for p in batch {
                let _ = p
                    .reply
                    .send(Err(LedgerError::Fatal(format!("batch answered {other:?}"))));
            }
        }
    }
}

/// Whether a request of `size_bytes` still fits in a batch already holding `batch_bytes`.
fn fits(batch_bytes: u64, size_bytes: u64) -> bool {
    batch_bytes.saturating_add(size_bytes) <= ENTRY_MAX_BYTES
}

/// A proposal error, reproducible for every waiter.
enum Failure {
    NotLeader(Option<crate::NodeId>),
    Unavailable(String),
    Fatal(String),
}

impl Failure {
    fn make(&self) -> LedgerError {
        match self {
            Failure::NotLeader(leader) => LedgerError::NotLeader { leader: *leader },
            Failure::Unavailable(s) => LedgerError::Unavailable(s.clone()),
            Failure::Fatal(s) => LedgerError::Fatal(s.clone()),
        }
    }
}

fn describe(e: RaftError<crate::NodeId, ClientWriteError<crate::NodeId, crate::RelayNode>>) -> Failure {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => Failure::NotLeader(f.leader_id),
        RaftError::APIError(e) => Failure::Unavailable(e.to_string()),
        RaftError::Fatal(e) => Failure::Fatal(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::IdempotencyKey;

    fn drop_of(bytes: usize) -> Request {
        Request {
            now_ms: 0,
            idempotency: Some(IdempotencyKey::internal("s", "k")),
            command: Command::DropMessage(crate::ops::DropMessage {
                token_hash_hex: String::new(),
                content_type: "x/y".into(),
                body: crate::BodyRef {
                    size_bytes: bytes as u64,
                    blake3_hex: String::new(),
                    object_key: None,
                },
                inline_body: Some(vec![7; bytes]),
            }),
        }
    }

    /// A batch of the largest inline bodies stays within one entry: 512 bodies of 1 MiB would be
    /// 512 MiB, far past the inter-node message limit.
    #[test]
    fn batches_are_bounded_in_bytes() {
        let one = encoded_size(&drop_of(1 << 20));
        let mut bytes = BATCH_OVERHEAD_BYTES;
        let mut n = 0;
        while n < BATCH_MAX && fits(bytes, one) {
            bytes += one;
            n += 1;
        }
        assert!((1..16).contains(&n), "{n} bodies of 1 MiB in one entry");
        assert!(bytes <= ENTRY_MAX_BYTES);
        let batch = Request {
            now_ms: 0,
            idempotency: None,
            command: Command::Batch((0..n).map(|_| drop_of(1 << 20)).collect()),
        };
        assert!(
            encoded_size(&batch) <= ENTRY_MAX_BYTES,
            "the estimate covers the real encoding"
        );
    }

    /// A single request past the entry limit is refused as too large, never retried.
    #[tokio::test]
    async fn an_oversize_request_is_refused() {
        let (tx, _rx) = mpsc::channel(1);
        let batcher = Batcher { tx };
        let err = batcher.write(drop_of(9 << 20)).await.unwrap_err();
        assert!(matches!(err, LedgerError::TooLarge { .. }), "{err}");
    }
}

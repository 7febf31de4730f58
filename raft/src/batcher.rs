//! Group commit on the leader: concurrent writes are gathered into one Raft entry
//! ([`Command::Batch`]), so one log fsync and one replication round serve many requests.
//!
//! openraft 0.9 appends (and fsyncs) each proposal on its own before taking the next, so without
//! this a leader tops out at one write per fsync. Requests queue while earlier batches are in
//! flight; the next batch takes everything queued, up to [`BATCH_MAX`].

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::command::{Command, Outcome, Request, Response, BATCH_MAX};
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
    reply: oneshot::Sender<Result<Response, LedgerError>>,
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
        let (reply, answer) = oneshot::channel();
        self.tx
            .try_send(Pending { request, reply })
            .map_err(|_| LedgerError::Unavailable("write queue full".into()))?;
        answer
            .await
            .map_err(|_| LedgerError::Unavailable("ledger stopping".into()))?
    }
}

async fn run(raft: Raft, mut rx: mpsc::Receiver<Pending>, timeout: Duration) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        // Waiting for a slot is what lets the queue fill: the next batch takes it all.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < BATCH_MAX {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
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

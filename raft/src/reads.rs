//! Linearizable reads share read-index rounds.
//!
//! A read index costs the leader one heartbeat round to a quorum (openraft sends it per call), and
//! a follower one forwarded call to the leader. Concurrent readers need not pay it each: a round
//! that *starts after* a reader arrived proves leadership at a moment inside that reader's
//! request, so its index serves the reader as well as its own caller. Readers that arrive while a
//! round is in flight wait for the next one (never the one already running, which may have
//! started before them). At most one round runs at a time per [`Coalescer`].
//!
//! A round also reports the leader's clock as of the round, so every reader it serves judges
//! expiry by the same cluster clock a write would have been stamped with at that moment.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::grpc::ForwardError;

/// What one read-index round proved: the log index a reader must have applied, and the leader's
/// clock (never behind its applied cluster clock) taken after leadership was confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadPoint {
    pub index: u64,
    pub clock_ms: u64,
}

/// Readers waiting for the next round; beyond this a read is refused as overloaded.
pub const WAITING_MAX: usize = 16_384;

type Round = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<ReadPoint, ForwardError>> + Send>> + Send + Sync>;

struct Waiting {
    running: bool,
    readers: Vec<oneshot::Sender<Result<ReadPoint, ForwardError>>>,
}

/// Gathers concurrent readers into shared rounds of `round`.
#[derive(Clone)]
pub struct Coalescer {
    waiting: Arc<Mutex<Waiting>>,
    round: Round,
}

impl Coalescer {
    pub fn new<F, Fut>(round: F) -> Coalescer
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ReadPoint, ForwardError>> + Send + 'static,
    {
        Coalescer {
            waiting: Arc::new(Mutex::new(Waiting {
                running: false,
                readers: Vec::new(),
            })),
            round: Arc::new(move || Box::pin(round())),
        }
    }

    /// The result of a round that started after this call.
    pub async fn get(&self) -> Result<ReadPoint, ForwardError> {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut w = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
            if w.readers.len() >= WAITING_MAX {
                return Err(ForwardError::Unavailable(
                    "too many reads waiting for a read index".into(),
                ));
            }
            w.readers.push(tx);
            !std::mem::replace(&mut w.running, true)
        };
        if start {
            // A task of its own: a reader that goes away (its client hung up) never strands the
            // others waiting on its round.
            tokio::spawn(drive(self.waiting.clone(), self.round.clone()));
        }
        rx.await
            .unwrap_or_else(|_| Err(ForwardError::Unavailable("read round abandoned".into())))
    }
}

/// Runs rounds while readers wait; each round serves exactly the readers that were waiting when
/// it started.
async fn drive(waiting: Arc<Mutex<Waiting>>, round: Round) {
    // Should a round panic, the next reader starts a fresh driver instead of waiting forever.
    // Only then: on a normal return a new driver may already be running for new readers.
    struct Reset(Arc<Mutex<Waiting>>);
    impl Drop for Reset {
        fn drop(&mut self) {
            if std::thread::panicking() {
                let mut w = self.0.lock().unwrap_or_else(|p| p.into_inner());
                w.running = false;
                w.readers.clear();
            }
        }
    }
    let _reset = Reset(waiting.clone());
    loop {
        let readers = {
            let mut w = waiting.lock().unwrap_or_else(|p| p.into_inner());
            if w.readers.is_empty() {
                w.running = false;
                return;
            }
            std::mem::take(&mut w.readers)
        };
        let result = round().await;
        for reader in readers {
            let _ = reader.send(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use super::*;

    /// A round counts itself and reports which round it was, after a pause in which more readers
    /// can arrive.
    fn counting(rounds: Arc<AtomicU64>) -> Coalescer {
        Coalescer::new(move || {
            let rounds = rounds.clone();
            async move {
                let n = rounds.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(ReadPoint { index: n, clock_ms: n })
            }
        })
    }

    #[tokio::test]
    async fn concurrent_readers_share_rounds() {
        let rounds = Arc::new(AtomicU64::new(0));
        let c = counting(rounds.clone());
        let tasks: Vec<_> = (0..200)
            .map(|_| {
                let c = c.clone();
                tokio::spawn(async move { c.get().await })
            })
            .collect();
        for t in tasks {
            t.await.expect("task").expect("round");
        }
        // 200 readers arriving together: the first starts a round, the rest share the next.
        assert!(rounds.load(Ordering::SeqCst) <= 3, "{rounds:?}");
    }

    #[tokio::test]
    async fn a_reader_never_gets_a_round_that_started_before_it() {
        let rounds = Arc::new(AtomicU64::new(0));
        let c = counting(rounds.clone());
        for _ in 0..20 {
            let first = {
                let c = c.clone();
                tokio::spawn(async move { c.get().await })
            };
            // Arrives while the first reader's round is in flight.
            tokio::time::sleep(Duration::from_millis(5)).await;
            let started_before = rounds.load(Ordering::SeqCst);
            let second = c.get().await.expect("round");
            assert!(
                second.index > started_before,
                "served by round {} that started before it",
                second.index
            );
            first.await.expect("task").expect("round");
        }
    }

    #[tokio::test]
    async fn a_failed_round_fails_its_readers_and_the_next_round_runs() {
        let calls = Arc::new(AtomicU64::new(0));
        let c = {
            let calls = calls.clone();
            Coalescer::new(move || {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    match n {
                        0 => Err(ForwardError::NotLeader(Some(2))),
                        _ => Ok(ReadPoint { index: 7, clock_ms: 9 }),
                    }
                }
            })
        };
        assert!(matches!(c.get().await, Err(ForwardError::NotLeader(Some(2)))));
        assert_eq!(
            c.get().await.expect("second round"),
            ReadPoint { index: 7, clock_ms: 9 }
        );
    }

    #[tokio::test]
    async fn a_panicking_round_does_not_wedge_later_readers() {
        let calls = Arc::new(AtomicU64::new(0));
        let c = {
            let calls = calls.clone();
            Coalescer::new(move || {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n == 0 {
                        panic!("planted");
                    }
                    Ok(ReadPoint { index: 1, clock_ms: 1 })
                }
            })
        };
        assert!(matches!(c.get().await, Err(ForwardError::Unavailable(_))));
        assert!(c.get().await.is_ok());
    }
}

//! The webhook worker, on the leader: takes due deliveries from the replicated queue, makes one
//! attempt each (bounded concurrency), and records the result in the ledger, so a delivery
//! accepted before a leader dies is made by the next one (at least once).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use relay_api::ssrf::Policy;
use relay_api::{webhook, Metrics};
use relay_raft::command::WebhookResult;
use relay_raft::sm::mailbox::{WEBHOOK_ATTEMPTS_MAX, WEBHOOK_BATCH_MAX};
use relay_raft::{Command, Delivery, LeaseKind, Ledger};
use tokio::sync::{mpsc, watch, Semaphore};
use tracing::{debug, warn};

/// Attempts in flight at once.
const CONCURRENCY: usize = 64;
/// Deliveries taken from the queue per tick.
const BATCH: usize = 512;
/// How long finished attempts wait to be recorded together.
const RECORD_LINGER: Duration = Duration::from_millis(5);
/// First retry after this long, doubling per attempt up to `BACKOFF_MAX`.
const BACKOFF_BASE: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

type InFlight = Arc<Mutex<HashSet<(String, u64)>>>;

pub async fn run(
    ledger: Arc<Ledger>,
    policy: Arc<Policy>,
    metrics: Arc<Metrics>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let client = match webhook::client(policy.clone()) {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "webhooks: cannot build the HTTP client; deliveries stay queued");
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(CONCURRENCY));
    // Deliveries attempted but not yet recorded; the queue still lists them until then.
    let in_flight: InFlight = Arc::default();
    let (done_tx, done_rx) = mpsc::channel::<WebhookResult>(CONCURRENCY * 2);
    let recorder = tokio::spawn(record(ledger.clone(), done_rx, in_flight.clone()));
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        if !ledger.is_leader() {
            continue;
        }
        let due = match ledger.reader().due_deliveries(ledger.now_ms(), BATCH) {
            Ok(d) => d,
            Err(e) => {
                warn!(error = %e, "webhooks: reading the queue");
                continue;
            }
        };
        for delivery in due {
            let key = (delivery.lease_id.clone(), delivery.seq);
            if !in_flight.lock().expect("in-flight set").insert(key) {
                continue;
            }
            let Ok(permit) = slots.clone().acquire_owned().await else {
                break;
            };
            let (ledger, policy, metrics, client, done_tx) = (
                ledger.clone(),
                policy.clone(),
                metrics.clone(),
                client.clone(),
                done_tx.clone(),
            );
            tokio::spawn(async move {
                let result = attempt(&ledger, &policy, &metrics, &client, delivery).await;
                let _ = done_tx.send(result).await;
                drop(permit);
            });
        }
    }
    drop(done_tx);
    let _ = recorder.await;
}

/// Records finished attempts in batches; only then may a delivery be taken again.
async fn record(ledger: Arc<Ledger>, mut done: mpsc::Receiver<WebhookResult>, in_flight: InFlight) {
    while let Some(first) = done.recv().await {
        let mut results = vec![first];
        let linger = tokio::time::sleep(RECORD_LINGER);
        tokio::pin!(linger);
        while results.len() < WEBHOOK_BATCH_MAX {
            tokio::select! {
                more = done.recv() => match more {
                    Some(r) => results.push(r),
                    None => break,
                },
                _ = &mut linger => break,
            }
        }
        let keys: Vec<(String, u64)> = results.iter().map(|r| (r.lease_id.clone(), r.seq)).collect();
        if let Err(e) = ledger.write(None, Command::WebhooksAttempted { results }).await {
            // Not recorded: the deliveries stay due and are attempted again (at least once).
            warn!(error = %e, "webhooks: recording attempts");
        }
        let mut set = in_flight.lock().expect("in-flight set");
        for key in keys {
            set.remove(&key);
        }
    }
}

/// One attempt at one delivery, and what the ledger should do with it.
async fn attempt(
    ledger: &Ledger,
    policy: &Policy,
    metrics: &Metrics,
    client: &relay_api::webhook::HttpClient,
    delivery: Delivery,
) -> WebhookResult {
    // A mailbox that is gone takes its announcements with it.
    let target = match ledger.reader().lease(&delivery.lease_id) {
        Ok(Some(lease)) if lease.is_live_at(ledger.now_ms()) => match lease.kind {
            LeaseKind::Mailbox(mb) => mb.webhook,
            _ => None,
        },
        Ok(_) => None,
        Err(e) => {
            warn!(error = %e, "webhooks: reading the mailbox; retrying later");
            return WebhookResult {
                retry_at_ms: Some(ledger.now_ms() + backoff_ms(delivery.attempts)),
                due_ms: delivery.due_ms,
                lease_id: delivery.lease_id,
                seq: delivery.seq,
            };
        }
    };
    let retry_at_ms = match target {
        None => None,
        Some(hook) => match webhook::attempt(client, policy, &hook.url, &hook.secret, &delivery).await {
            Ok(()) => {
                metrics.webhooks_delivered.inc();
                let latency_ms = ledger.now_ms().saturating_sub(delivery.received_at_ms);
                metrics.webhook_delivery_latency.observe(latency_ms as f64 / 1000.0);
                None
            }
            Err(e) => {
                metrics.webhook_attempt_failures.inc();
                if delivery.attempts + 1 >= WEBHOOK_ATTEMPTS_MAX {
                    metrics.webhooks_abandoned.inc();
                    warn!(lease_id = %delivery.lease_id, seq = delivery.seq, error = %e, "webhook abandoned");
                } else {
                    debug!(lease_id = %delivery.lease_id, seq = delivery.seq, error = %e, "webhook attempt failed");
                }
                Some(ledger.now_ms() + backoff_ms(delivery.attempts))
            }
        },
    };
    WebhookResult {
        due_ms: delivery.due_ms,
        lease_id: delivery.lease_id,
        seq: delivery.seq,
        retry_at_ms,
    }
}

/// Exponential backoff with ±25 % jitter, so failing receivers are not hit in lockstep.
fn backoff_ms(attempts: u32) -> u64 {
    let base = BACKOFF_BASE.as_millis() as u64;
    let exp = base
        .saturating_mul(1u64 << attempts.min(16))
        .min(BACKOFF_MAX.as_millis() as u64);
    let mut r = [0u8; 2];
    let _ = getrandom::fill(&mut r);
    let jitter = (u16::from_le_bytes(r) as u64 * exp / 2) / u16::MAX as u64;
    exp - exp / 4 + jitter
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Backoff doubles, is capped, and jitters within ±25 %.
    #[test]
    fn backoff_grows_and_is_bounded() {
        for attempts in 0..20 {
            let exp = (500u64 << attempts.min(16)).min(60_000);
            let b = backoff_ms(attempts);
            assert!(b >= exp * 3 / 4 && b <= exp * 5 / 4, "{attempts}: {b}");
        }
    }
}

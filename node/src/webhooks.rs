//! The webhook worker, on the leader: takes due deliveries from the replicated queue, makes one
//! attempt each (bounded concurrency), and records the result in the ledger, so a delivery
//! accepted before a leader dies is made by the next one (at least once).
//!
//! Fairness: one receiving host always gets [`PER_HOST`] attempts at once, as long as its
//! account holds fewer than [`OWNER_GUARANTEED`] such places over all its hosts; a host gets more
//! (up to [`HOST_MAX`]) only while [`KEPT_FOR_OTHERS`] slots stay free. So neither one slow host
//! nor one account with many slow hosts can take the slots another's deliveries need. The scan
//! of the queue walks past deliveries whose host or account is saturated: half of each scan from the oldest, half
//! going on from where the last stopped, so however many deliveries a slow or dead receiver has
//! queued (each attempt may take the full 10 s timeout), another host's due delivery is reached
//! within one pass over the queue, [`SCAN_MAX`]/2 deliveries a scan.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use relay_api::ssrf::Policy;
use relay_api::{webhook, Metrics};
use relay_raft::command::WebhookResult;
use relay_raft::ops::WebhooksAttempted;
use relay_raft::sm::mailbox::{WEBHOOK_ATTEMPTS_MAX, WEBHOOK_BATCH_MAX};
use relay_raft::{Delivery, LeaseKind, Ledger, Webhook};
use tokio::sync::{mpsc, watch, Notify, Semaphore};
use tracing::{debug, warn};

/// Attempts in flight at once.
const CONCURRENCY: usize = 96;
/// Attempts in flight to one receiving host, always allowed.
const PER_HOST: usize = 8;
/// How many of the always-allowed [`PER_HOST`] places one account's mailboxes may hold at once,
/// over all the hosts they point at (an account can name as many hosts as it likes).
const OWNER_GUARANTEED: usize = 48;
/// Attempts in flight to one receiving host, at most, when slots are free (a single busy
/// receiver may use most of the worker).
const HOST_MAX: usize = 80;
/// Slots no host takes beyond its [`PER_HOST`] share, so other hosts' deliveries always find
/// room, however slow the busy one is.
const KEPT_FOR_OTHERS: usize = CONCURRENCY - HOST_MAX;
/// Due deliveries looked at per scan, at most (those in flight or of saturated hosts are walked
/// past by their key alone, without decoding them). A full pass over the largest queue the
/// ledger allows takes `WEBHOOKS_PENDING_MAX / SCAN_MAX` scans.
const SCAN_MAX: usize = 2048;
/// Free slots that start a scan before the next tick.
const REFILL_AT: usize = CONCURRENCY / 12;
/// Deliveries a scan that found nothing to send must have walked past before the next scans
/// back off (a short walk, say past deliveries waiting to be recorded, is cheap to repeat).
const IDLE_AFTER_WALKING: usize = 256;
/// After a long scan that found nothing to send, while no attempt finishes, the next scans come this
/// many ticks apart (new deliveries wait at most that long).
const IDLE_SCAN_EVERY: u32 = 5;
/// How long finished attempts wait to be recorded together.
const RECORD_LINGER: Duration = Duration::from_millis(5);
/// First retry after this long, doubling per attempt up to `BACKOFF_MAX`.
const BACKOFF_BASE: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Deliveries attempted and not yet recorded, by message key (`lease_id ‖ 0 ‖ seq`).
type InFlight = Arc<Mutex<HashSet<Vec<u8>>>>;
type PerHost = Arc<Mutex<HashMap<String, usize>>>;

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
    let per_host: PerHost = Arc::default();
    let (done_tx, done_rx) = mpsc::channel::<WebhookResult>(CONCURRENCY * 2);
    let recorder = tokio::spawn(record(ledger.clone(), done_rx, in_flight.clone()));
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Where the last scan stopped; the next one goes on from there.
    let mut cursor: Option<Vec<u8>> = None;
    let mut idle_ticks = 0u32;
    // Attempts finished so far, and as of the last scan that found nothing to send.
    let finished = Arc::new(AtomicU64::new(0));
    let freed = Arc::new(Notify::new());
    let mut finished_at_idle = 0;
    loop {
        let freed_only = tokio::select! {
            _ = tick.tick() => false,
            _ = freed.notified() => true,
            _ = stop.changed() => break,
        };
        // Slots coming free are filled before the next tick once enough have (a scan per
        // finished attempt would cost more than it saves).
        let wanted = if freed_only { REFILL_AT } else { 1 };
        if !ledger.is_leader() || slots.available_permits() < wanted {
            continue;
        }
        // Nothing could go last time and nothing has finished since: look again only now and then.
        if idle_ticks > 0 && finished.load(Ordering::Relaxed) == finished_at_idle {
            idle_ticks -= 1;
            continue;
        }
        let (picked, walked, next) = pick(&ledger, &slots, &in_flight, &per_host, cursor.take());
        cursor = next;
        idle_ticks = 0;
        // A short walk costs little: only a long one that found nothing backs off.
        if picked.is_empty() && walked >= IDLE_AFTER_WALKING {
            idle_ticks = IDLE_SCAN_EVERY - 1;
            finished_at_idle = finished.load(Ordering::Relaxed);
        }
        for (delivery, target, guaranteed) in picked {
            // Only this loop takes slots, and `pick` took no more than were free.
            let permit = slots.clone().try_acquire_owned().expect("a slot pick counted as free");
            let shares = target
                .as_ref()
                .map(|t| (t.host_key(), guaranteed.then(|| t.owner_key())));
            let (ledger, policy, metrics, client, done_tx, per_host, finished, freed) = (
                ledger.clone(),
                policy.clone(),
                metrics.clone(),
                client.clone(),
                done_tx.clone(),
                per_host.clone(),
                finished.clone(),
                freed.clone(),
            );
            tokio::spawn(async move {
                let hook = target.map(|t| t.hook);
                let result = attempt(&ledger, &policy, &metrics, &client, delivery, hook).await;
                if let Some((host, owner)) = shares {
                    release(&per_host, &host);
                    if let Some(owner) = owner {
                        release(&per_host, &owner);
                    }
                }
                finished.fetch_add(1, Ordering::Relaxed);
                let _ = done_tx.send(result).await;
                drop(permit);
                freed.notify_one();
            });
        }
    }
    drop(done_tx);
    let _ = recorder.await;
}

/// Where a live mailbox's deliveries go, and whose they are.
#[derive(Clone)]
struct Target {
    hook: Webhook,
    host: String,
    owner: String,
}

impl Target {
    /// Its counters in [`PerHost`] (hosts and accounts share the map, apart by prefix).
    fn host_key(&self) -> String {
        format!("h:{}", self.host)
    }
    fn owner_key(&self) -> String {
        format!("g:{}", self.owner)
    }
}

/// A delivery to attempt, with where it goes (`None`: the mailbox is gone and the delivery is
/// just dropped), and whether it holds one of its host's always-allowed places.
type Picked = (Delivery, Option<Target>, bool);

/// Chooses the deliveries to attempt now: not already in flight, and whose host has a free place
/// (taken here). Half of the scan walks from the oldest due delivery, so the queue drains in
/// order; the other half goes on from `cursor`, where the last scan stopped, so deliveries behind
/// a long run that cannot go (a saturated host's) are reached too. Returns the new cursor.
fn pick(
    ledger: &Ledger,
    slots: &Semaphore,
    in_flight: &InFlight,
    per_host: &PerHost,
    cursor: Option<Vec<u8>>,
) -> (Vec<Picked>, usize, Option<Vec<u8>>) {
    let mut picker = Picker {
        ledger,
        in_flight,
        per_host,
        free: slots.available_permits(),
        now_ms: ledger.now_ms(),
        targets: HashMap::new(),
        chosen: Vec::new(),
        walked: 0,
        last: None,
    };
    let reader = ledger.reader();
    let now_ms = picker.now_ms;
    let half = SCAN_MAX / 2;
    let oldest = reader.scan_due_deliveries(now_ms, None, half, |k, v| picker.visit(k, v));
    let from_oldest = picker.last.take();
    let next = match oldest {
        // The oldest half reached the end, or filled every free slot: start afresh next time.
        Ok(true) => None,
        Ok(false) if picker.chosen.len() >= picker.free => cursor,
        Ok(false) => {
            // Go on from the cursor when it lies beyond the part just walked, else from there.
            let start = match (cursor, from_oldest) {
                (Some(c), Some(f)) if c > f => Some(c),
                (_, f) => f,
            };
            match reader.scan_due_deliveries(now_ms, start.as_deref(), half, |k, v| picker.visit(k, v)) {
                Ok(true) => None,
                Ok(false) => picker.last.take().or(start),
                Err(e) => {
                    warn!(error = %e, "webhooks: reading the queue");
                    None
                }
            }
        }
        Err(e) => {
            warn!(error = %e, "webhooks: reading the queue");
            None
        }
    };
    (picker.chosen, picker.walked, next)
}

struct Picker<'a> {
    ledger: &'a Ledger,
    in_flight: &'a InFlight,
    per_host: &'a PerHost,
    free: usize,
    now_ms: u64,
    targets: HashMap<String, Option<Target>>,
    chosen: Vec<Picked>,
    walked: usize,
    last: Option<Vec<u8>>,
}

impl Picker<'_> {
    /// Takes the delivery at `key` if it may go now; returns whether to look at more. Entries
    /// that may not go are judged by their key and a per-scan cache alone.
    fn visit(&mut self, key: &[u8], value: &[u8]) -> bool {
        self.walked += 1;
        self.last = Some(key.to_vec());
        let Some((lease_id, _, message_key)) = relay_raft::store::keys::delivery_parts(key) else {
            return true;
        };
        if self.in_flight.lock().expect("in-flight set").contains(message_key) {
            return true;
        }
        if !self.targets.contains_key(lease_id) {
            let target = target_of(self.ledger, lease_id, self.now_ms);
            self.targets.insert(lease_id.to_string(), target);
        }
        let target = self.targets.get(lease_id).cloned().flatten();
        let mut guaranteed = false;
        if let Some(t) = &target {
            let still_free = self.free.saturating_sub(self.chosen.len());
            let mut counts = self.per_host.lock().expect("per-host counts");
            let (host, owner) = (t.host_key(), t.owner_key());
            let count = |key: &str| counts.get(key).copied().unwrap_or(0);
            match admit(count(&host), count(&owner), still_free) {
                None => return true,
                Some(g) => guaranteed = g,
            }
            *counts.entry(host).or_insert(0) += 1;
            if guaranteed {
                *counts.entry(owner).or_insert(0) += 1;
            }
        }
        let unwind = |target: &Option<Target>| {
            if let Some(t) = target {
                release(self.per_host, &t.host_key());
                if guaranteed {
                    release(self.per_host, &t.owner_key());
                }
            }
        };
        // The scan reads one view of the queue, and a delivery recorded (and let out of the
        // in-flight set) since that view was taken would be sent twice: check it is still there.
        if !self.ledger.reader().delivery_queued(key).unwrap_or(false) {
            unwind(&target);
            return true;
        }
        let delivery = match relay_raft::StateReader::delivery(value) {
            Ok(d) => d,
            Err(e) => {
                warn!(error = %e, "webhooks: a corrupt delivery record; skipping it");
                unwind(&target);
                return true;
            }
        };
        self.in_flight
            .lock()
            .expect("in-flight set")
            .insert(message_key.to_vec());
        self.chosen.push((delivery, target, guaranteed));
        self.chosen.len() < self.free
    }
}

/// Whether a delivery may go now, given the attempts in flight to its host, the always-allowed
/// places its account holds, and the slots still free: `Some(true)` in one of its host's
/// always-allowed places, `Some(false)` beyond them, `None` not now.
fn admit(on_host: usize, owner_held: usize, still_free: usize) -> Option<bool> {
    if on_host < PER_HOST && owner_held < OWNER_GUARANTEED {
        Some(true)
    } else if on_host < HOST_MAX && still_free > KEPT_FOR_OTHERS {
        Some(false)
    } else {
        None
    }
}

/// A live mailbox's webhook, the host it goes to and its owner; `None` when the mailbox is gone.
fn target_of(ledger: &Ledger, lease_id: &str, now_ms: u64) -> Option<Target> {
    let lease = ledger.reader().lease(lease_id).ok().flatten()?;
    if !lease.is_live_at(now_ms) {
        return None;
    }
    let LeaseKind::Mailbox(mb) = lease.kind else {
        return None;
    };
    let hook = mb.webhook?;
    let host = relay_api::webhook::host_of(&hook.url).unwrap_or_default();
    Some(Target {
        hook,
        host,
        owner: lease.owner,
    })
}

fn release(counts: &PerHost, key: &str) {
    let mut counts = counts.lock().expect("per-host counts");
    if let Some(n) = counts.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            counts.remove(key);
        }
    }
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
        let keys: Vec<Vec<u8>> = results
            .iter()
            .map(|r| relay_raft::store::keys::message(&r.lease_id, r.seq))
            .collect();
        if let Err(e) = ledger.run(None, WebhooksAttempted { results }).await {
            // Not recorded: the deliveries stay due and are attempted again (at least once).
            warn!(error = %e, "webhooks: recording attempts");
        }
        let mut set = in_flight.lock().expect("in-flight set");
        for key in keys {
            set.remove(&key);
        }
    }
}

/// One attempt at one delivery (to `hook`; `None` when the mailbox is gone), and what the ledger
/// should do with it. The message's inline bytes are read now: a message picked up since the
/// drop is announced without them.
async fn attempt(
    ledger: &Ledger,
    policy: &Policy,
    metrics: &Metrics,
    client: &relay_api::webhook::HttpClient,
    delivery: Delivery,
    hook: Option<Webhook>,
) -> WebhookResult {
    let retry_at_ms = match hook {
        None => None,
        Some(hook) => {
            let inline_body = match ledger.reader().message_body(&delivery.lease_id, delivery.seq) {
                Ok(body) => body,
                Err(e) => {
                    warn!(error = %e, "webhooks: reading the message; announcing without its bytes");
                    None
                }
            };
            match webhook::attempt(
                client,
                policy,
                &hook.url,
                &hook.secret,
                &delivery,
                inline_body.as_deref(),
            )
            .await
            {
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
            }
        }
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

    /// One account pointing its mailboxes at many slow hosts fills at most its always-allowed
    /// places plus what leaves the last slots free: another account's first delivery still goes.
    #[test]
    fn many_hosts_of_one_account_leave_room_for_others() {
        let mut per_host = vec![0usize; 12];
        let (mut held, mut busy) = (0usize, 0usize);
        // The attacker's hosts take turns until nothing more is admitted.
        loop {
            let mut admitted = false;
            for n in per_host.iter_mut() {
                if let Some(g) = admit(*n, held, CONCURRENCY - busy) {
                    *n += 1;
                    busy += 1;
                    held += g as usize;
                    admitted = true;
                }
            }
            if !admitted {
                break;
            }
        }
        assert!(busy <= CONCURRENCY - KEPT_FOR_OTHERS, "{busy} slots taken");
        // Another account's fresh host: admitted in an always-allowed place.
        assert_eq!(admit(0, 0, CONCURRENCY - busy), Some(true));
        // The same account's fresh host waits: its always-allowed places are used up.
        assert_eq!(admit(0, held, CONCURRENCY - busy), None);
        // One slow host alone: 8 places, then more only while 16 slots stay free.
        assert_eq!(admit(PER_HOST, PER_HOST, KEPT_FOR_OTHERS + 1), Some(false));
        assert_eq!(admit(PER_HOST, PER_HOST, KEPT_FOR_OTHERS), None);
    }

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

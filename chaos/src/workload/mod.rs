//! Workloads: clients that run operations against random nodes and record each one.

pub mod baton;
pub mod checkpoint;
pub mod claims;
pub mod mailbox;
pub mod storage;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::Rng;
use relay_testkit::{Call, Client, KitError, Reply};

use crate::history::{Clock, Completed, History, Op, Outcome};
use crate::ChaosError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// Many claimers racing for a few claims of many handoff tokens.
    Claims,
    /// Compare-and-set registers (checkpoint versions), read and written.
    Checkpoint,
    /// Storage leases created, downloaded, deleted and left to expire.
    Storage,
    /// Messages dropped into mailboxes and picked up.
    Mailbox,
    /// Baton logs appended to and read under read caps; small batons read to their budget and
    /// past their expiry.
    Baton,
}

/// Client timeout: longer than a node's own 10 s request bound would make every stalled request
/// hold a client for the whole fault; shorter records more unknowns. Either is correct.
pub const OP_TIMEOUT: Duration = Duration::from_secs(5);

/// One write in ten carries this much padding: past the node's 64 KiB inline limit, so its body
/// goes to the object store and the one it replaces is garbage-collected.
pub const LARGE_PAD: usize = 70_000;

/// `{key: value}`, sometimes padded past the inline limit.
pub fn padded_json(value_key: &str, value: u64, rng: &mut StdRng) -> String {
    if rng.random_bool(0.1) {
        serde_json::json!({ value_key: value, "p": "x".repeat(LARGE_PAD) }).to_string()
    } else {
        serde_json::json!({ value_key: value }).to_string()
    }
}

/// What every client shares.
pub struct Ctx {
    /// One client per node, each with the run's key and [`OP_TIMEOUT`].
    pub api: Vec<Client>,
    pub history: History,
    pub clock: Clock,
    pub stop: AtomicBool,
    /// When the run began, for workloads that move on to fresh keys as time passes.
    pub start_us: AtomicU64,
}

impl Ctx {
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    pub fn node(&self, rng: &mut StdRng) -> usize {
        rng.random_range(0..self.api.len())
    }

    pub fn elapsed_s(&self) -> u64 {
        (self
            .clock
            .now_us()
            .saturating_sub(self.start_us.load(Ordering::Relaxed)))
            / 1_000_000
    }

    /// Records one operation; `op` is filled in from the answer by the workload.
    /// A timeout, reset or 5xx is unknown (it may still take effect); a 4xx, or a connection never
    /// made, is a definite failure.
    pub fn record(&self, client: &str, node: usize, invoke_us: u64, result: &Result<Reply, KitError>, op: Op) {
        let (outcome, status, error) = match result {
            Ok(a) if (200..300).contains(&a.status) => (Outcome::Ok, Some(a.status), None),
            Ok(a) if (400..500).contains(&a.status) => (Outcome::Fail, Some(a.status), None),
            Ok(a) => (
                Outcome::Unknown,
                Some(a.status),
                Some(String::from_utf8_lossy(&a.body[..a.body.len().min(200)]).into_owned()),
            ),
            Err(KitError::Refused(e)) => (Outcome::Fail, None, Some(e.clone())),
            Err(KitError::Lost(e)) => (Outcome::Unknown, None, Some(e.clone())),
            Err(other) => (Outcome::Unknown, None, Some(other.to_string())),
        };
        self.history.record(
            client,
            node + 1,
            invoke_us,
            self.clock.now_us(),
            Completed {
                outcome,
                status,
                error,
                op,
            },
        );
    }

    /// A pause between operations, and a longer one after a failure so a dead node is not spun on.
    pub async fn think(&self, rng: &mut StdRng, failed: bool) {
        let ms = if failed {
            rng.random_range(20..100)
        } else {
            rng.random_range(0..10)
        };
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    /// Setup and final calls: retried (on any node) until they give a definite answer.
    pub async fn until_definite(
        &self,
        what: &str,
        rng: &mut StdRng,
        make: impl Fn(&Client) -> Call,
    ) -> Result<(usize, Reply), ChaosError> {
        let mut last = String::new();
        for _ in 0..RETRIES {
            let node = self.node(rng);
            match make(&self.api[node]).send().await {
                Ok(a) if a.status < 500 => return Ok((node, a)),
                Ok(a) => last = format!("HTTP {}: {}", a.status, a.text()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(ChaosError::Workload(format!(
            "{what}: no definite answer after {RETRIES} tries: {last}"
        )))
    }

    /// Final reads: `attempt` on each node in turn, from `first`, 200 ms apart, until it reports a
    /// definite answer (true).
    pub async fn until_answered<F, Fut>(&self, what: &str, first: usize, attempt: F) -> Result<(), ChaosError>
    where
        F: Fn(usize) -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        for i in 0..RETRIES {
            if attempt((first + i) % self.api.len()).await {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(ChaosError::Workload(format!("{what}: no answer after {RETRIES} tries")))
    }
}

/// Bound on retries of one setup or final call (at 200 ms apart, about a minute with timeouts).
const RETRIES: usize = 150;

/// The path of a URL a node handed out (`http://host/api/...` → `/api/...`), to reach it through
/// any node.
pub fn path_of(url: &str) -> String {
    relay_testkit::api_path(url).unwrap_or_default().to_string()
}

pub fn expect_status(what: &str, a: &Reply, want: u16) -> Result<(), ChaosError> {
    if a.status == want {
        Ok(())
    } else {
        Err(ChaosError::Workload(format!("{what}: HTTP {} {}", a.status, a.text())))
    }
}

/// Spawns `n` clients of one workload.
pub fn spawn_clients<S, F, Fut>(
    ctx: &Arc<Ctx>,
    state: &Arc<S>,
    name: &str,
    n: usize,
    seed: u64,
    f: F,
) -> Vec<tokio::task::JoinHandle<()>>
where
    S: Send + Sync + 'static,
    F: Fn(Arc<Ctx>, Arc<S>, String, StdRng) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    use rand::SeedableRng;
    (0..n)
        .map(|i| {
            let rng =
                StdRng::seed_from_u64(seed ^ fxhash(name).wrapping_add((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)));
            tokio::spawn(f(ctx.clone(), state.clone(), format!("{name}-{i}"), rng))
        })
        .collect()
}

/// A stable hash of a name (std's hasher is randomly keyed per process).
pub fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

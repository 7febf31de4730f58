//! Storage leases: created with a unique body (half of them expiring within seconds),
//! downloaded, sometimes deleted. Every acknowledged create is downloaded once more after the
//! final restart.

use std::sync::{Arc, Mutex};

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use super::Ctx;
use crate::history::Op;
use crate::ChaosError;

/// Leases a client picks from: the most recent ones (older ones are checked at the end).
const RECENT: usize = 64;

#[derive(Default)]
pub struct Leases {
    /// (lease id, body number) of every acknowledged create.
    pub acked: Mutex<Vec<(String, u64)>>,
}

pub fn body(n: u64) -> Vec<u8> {
    let unit = format!("relay-chaos body {n};");
    unit.repeat(1 + (n % 7) as usize).into_bytes()
}

async fn download(ctx: &Ctx, client: &str, node: usize, lease_id: &str, n: u64) -> bool {
    let invoke = ctx.clock.now_us();
    let result = ctx.api[node].download(lease_id).send().await;
    let body_ok = match &result {
        Ok(a) if a.status == 200 => Some(a.body == body(n)),
        _ => None,
    };
    ctx.record(
        client,
        node,
        invoke,
        &result,
        Op::Download {
            lease_id: lease_id.into(),
            body: n,
            body_ok,
        },
    );
    matches!(&result, Ok(a) if a.status < 500)
}

pub async fn client(ctx: Arc<Ctx>, leases: Arc<Leases>, name: String, mut rng: StdRng) {
    let id: u64 = name.rsplit('-').next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut counter = 0u64;
    while !ctx.stopped() {
        let node = ctx.node(&mut rng);
        let pick = {
            let acked = leases.acked.lock().unwrap_or_else(|e| e.into_inner());
            let recent = &acked[acked.len().saturating_sub(RECENT)..];
            recent.choose(&mut rng).cloned()
        };
        let dice = rng.random_range(0..100);
        let answered = match pick {
            Some((lease_id, n)) if (30..90).contains(&dice) => download(&ctx, &name, node, &lease_id, n).await,
            Some((lease_id, _)) if dice >= 90 => {
                let invoke = ctx.clock.now_us();
                let result = ctx.api[node].delete_lease(&lease_id).send().await;
                ctx.record(&name, node, invoke, &result, Op::Delete { lease_id });
                matches!(&result, Ok(a) if a.status < 500)
            }
            _ => {
                counter += 1;
                let n = ((id + 1) << 40) | counter;
                // Half expire within seconds, during the run; half outlive it.
                let seconds = if rng.random_bool(0.5) {
                    rng.random_range(1..=6)
                } else {
                    86_400
                };
                let mut answered = create(&ctx, &leases, &name, node, n, seconds).await;
                // An unknown outcome is retried once, with the same Idempotency-Key: the retry
                // must answer with the lease the first made, if it made one, and its bytes.
                if answered.is_none() {
                    ctx.think(&mut rng, true).await;
                    answered = create(&ctx, &leases, &name, ctx.node(&mut rng), n, seconds).await;
                }
                answered.is_some()
            }
        };
        ctx.think(&mut rng, !answered).await;
    }
}

/// One create of body `n` (keyed by `n`); `Some(acknowledged)` when the answer was definite.
async fn create(ctx: &Ctx, leases: &Leases, client: &str, node: usize, n: u64, seconds: u64) -> Option<bool> {
    let bytes = body(n);
    let invoke = ctx.clock.now_us();
    let result = ctx.api[node]
        .store(&file_name(n), seconds, bytes)
        .idempotency_key(&format!("store-{n}"))
        .send()
        .await;
    let (lease_id, expires_at_ms) = match &result {
        Ok(a) if a.status == 201 => {
            let v = a.json();
            (
                v["lease_id"].as_str().map(String::from),
                v["expires_at"].as_str().and_then(parse_ms),
            )
        }
        _ => (None, None),
    };
    if let Some(id) = &lease_id {
        let mut acked = leases.acked.lock().unwrap_or_else(|e| e.into_inner());
        // A retry answered with the first create's lease is one lease, checked once at the end.
        if !acked.iter().rev().take(RECENT).any(|(l, _)| l == id) {
            acked.push((id.clone(), n));
        }
    }
    ctx.record(
        client,
        node,
        invoke,
        &result,
        Op::Create {
            body: n,
            lease_id,
            expires_at_ms,
        },
    );
    match &result {
        Ok(a) if a.status < 500 => Some(a.status == 201),
        _ => None,
    }
}

/// The name a body's lease is stored under, so the final census can count leases per body.
fn file_name(n: u64) -> String {
    format!("chaos-{n}.bin")
}

fn parse_ms(ts: &str) -> Option<u64> {
    chrono::DateTime::parse_from_rfc3339(ts)
        .ok()
        .and_then(|t| u64::try_from(t.timestamp_millis()).ok())
}

/// Final downloads in flight at once.
const FINAL_WORKERS: usize = 8;

/// After the final restart: every acknowledged create downloaded once more.
pub async fn finish(ctx: &Arc<Ctx>, leases: &Leases, rng: &mut StdRng) -> Result<(), ChaosError> {
    let queue = Arc::new(Mutex::new(
        leases.acked.lock().unwrap_or_else(|e| e.into_inner()).clone(),
    ));
    let mut workers = Vec::new();
    for _ in 0..FINAL_WORKERS {
        let (ctx, queue) = (ctx.clone(), queue.clone());
        let mut rng = StdRng::seed_from_u64(rng.random());
        workers.push(tokio::spawn(async move {
            loop {
                let Some((lease_id, n)) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop() else {
                    return Ok(());
                };
                let first = ctx.node(&mut rng);
                ctx.until_answered(&format!("final download of {lease_id}"), first, |node| {
                    let (ctx, lease_id) = (&ctx, &lease_id);
                    async move { download(ctx, "final", node, lease_id, n).await }
                })
                .await?;
            }
        }));
    }
    for w in workers {
        w.await
            .map_err(|e| ChaosError::Workload(format!("final download worker: {e}")))??;
    }
    census(ctx, rng).await
}

/// Listing pages read for the census, at most (200 leases each).
const CENSUS_PAGES_MAX: usize = 5_000;

/// Lists every lease of the account (tombstones included) and records the bodies that made more
/// than one Storage lease.
async fn census(ctx: &Arc<Ctx>, rng: &mut StdRng) -> Result<(), ChaosError> {
    let mut per_body: std::collections::HashMap<u64, u32> = std::collections::HashMap::new();
    let mut cursor: Option<String> = None;
    let invoke = ctx.clock.now_us();
    for _ in 0..CENSUS_PAGES_MAX {
        let (at, answer) = ctx
            .until_definite("lease census", rng, |api| api.leases(Some(200), cursor.as_deref()))
            .await?;
        super::expect_status("lease census", &answer, 200)?;
        let page = answer.json();
        for lease in page["leases"].as_array().into_iter().flatten() {
            let n = lease["file_name"]
                .as_str()
                .and_then(|f| f.strip_prefix("chaos-")?.strip_suffix(".bin")?.parse::<u64>().ok());
            if let Some(n) = n {
                *per_body.entry(n).or_default() += 1;
            }
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => {
                let mut duplicated: Vec<(u64, u32)> = per_body.into_iter().filter(|(_, c)| *c > 1).collect();
                duplicated.sort_unstable();
                let result = Ok(relay_testkit::Reply {
                    status: 200,
                    headers: Default::default(),
                    body: Default::default(),
                });
                ctx.record("final", at, invoke, &result, Op::Census { duplicated });
                return Ok(());
            }
        }
    }
    Err(ChaosError::Workload(format!(
        "lease census: more than {CENSUS_PAGES_MAX} pages"
    )))
}

//! Storage leases: created with a unique body (half of them expiring within seconds),
//! downloaded, sometimes deleted. Every acknowledged create is downloaded once more after the
//! final restart.

use std::sync::{Arc, Mutex};

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use super::{json, Ctx};
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
    let result = ctx
        .send(
            ctx.http
                .get(format!("{}/api/download/{lease_id}", ctx.nodes[node]))
                .header("authorization", &ctx.auth),
        )
        .await;
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
                let result = ctx
                    .send(
                        ctx.http
                            .delete(format!("{}/api/store/{lease_id}", ctx.nodes[node]))
                            .header("authorization", &ctx.auth),
                    )
                    .await;
                ctx.record(&name, node, invoke, &result, Op::Delete { lease_id });
                matches!(&result, Ok(a) if a.status < 500)
            }
            _ => {
                counter += 1;
                let n = ((id + 1) << 40) | counter;
                let bytes = body(n);
                // Half expire within seconds, during the run; half outlive it.
                let seconds = if rng.random_bool(0.5) {
                    rng.random_range(1..=6)
                } else {
                    86_400
                };
                let invoke = ctx.clock.now_us();
                let result = ctx
                    .send(
                        ctx.http
                            .post(format!("{}/api/store", ctx.nodes[node]))
                            .header("authorization", &ctx.auth)
                            .header("x-file-name", "chaos.bin")
                            .header("x-size-bytes", bytes.len().to_string())
                            .header("x-duration-seconds", seconds.to_string())
                            .body(bytes),
                    )
                    .await;
                let (lease_id, expires_at_ms) = match &result {
                    Ok(a) if a.status == 201 => {
                        let v = json(a);
                        (
                            v["lease_id"].as_str().map(String::from),
                            v["expires_at"].as_str().and_then(parse_ms),
                        )
                    }
                    _ => (None, None),
                };
                if let Some(id) = &lease_id {
                    leases
                        .acked
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((id.clone(), n));
                }
                ctx.record(
                    &name,
                    node,
                    invoke,
                    &result,
                    Op::Create {
                        body: n,
                        lease_id,
                        expires_at_ms,
                    },
                );
                matches!(&result, Ok(a) if a.status < 500)
            }
        };
        ctx.think(&mut rng, !answered).await;
    }
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
    Ok(())
}

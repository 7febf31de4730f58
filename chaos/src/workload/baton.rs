//! Batons under faults. Append logs (new ones every `LOG_EPOCH_S`, witnessed) take entries
//! `"<value>;"` from the owner and are read whole by the owner and by read-capped tokens; small
//! single batons (new ones every `BUDGET_EPOCH_S`, each expiring soon after its epoch) are read
//! until their read budget is spent and past their expiry. Clients also fetch the witness log's
//! checkpoint from any node, and a consistency proof from the last size they saw. After the final
//! restart every log is read whole, every baton's counters are taken from its meta, and a
//! consistency proof is fetched between every two checkpoint sizes seen, in order.

use std::sync::Arc;

use base64::Engine;
use rand::rngs::StdRng;
use rand::Rng;
use serde_json::json;

use super::{expect_status, Ctx};
use crate::history::Op;
use crate::ChaosError;

const LOG_EPOCH_S: u64 = 60;
const LOGS_PER_EPOCH: usize = 2;
/// Read-capped tokens per log, and each one's cap.
pub const TOKENS: usize = 3;
pub const READ_CAP: u32 = 25;
const BUDGET_EPOCH_S: u64 = 20;
/// A budget baton's content size and read budget (this many whole reads).
pub const BUDGET_SIZE: u64 = 1000;
pub const BUDGET_READS: u64 = 15;

pub struct Log {
    pub baton_id: String,
    pub tokens: Vec<String>,
}

pub struct Budget {
    pub baton_id: String,
    pub expires_at_ms: u64,
    pub body: Vec<u8>,
}

pub struct Batons {
    pub logs: Vec<Log>,
    pub budgets: Vec<Budget>,
    /// Every witness tree size a client saw in a checkpoint.
    pub witness_sizes: std::sync::Mutex<std::collections::BTreeSet<u64>>,
}

async fn create(ctx: &Ctx, rng: &mut StdRng, shape: serde_json::Value) -> Result<serde_json::Value, ChaosError> {
    // One key per create: a retry after an unknown answer is the same purchase.
    let key = format!("baton-setup-{}", rng.random::<u64>());
    let (_, a) = ctx
        .until_definite("create baton", rng, |api| {
            api.baton_create(&shape).idempotency_key(&key)
        })
        .await?;
    expect_status("create baton", &a, 201)?;
    Ok(a.json())
}

pub async fn setup(ctx: &Ctx, duration_s: u64, rng: &mut StdRng) -> Result<Batons, ChaosError> {
    let mut logs = Vec::new();
    for _ in 0..(duration_s / LOG_EPOCH_S + 1) as usize * LOGS_PER_EPOCH {
        let tokens = vec![json!({"scope": "read", "read_cap": READ_CAP}); TOKENS];
        let v = create(
            ctx,
            rng,
            json!({
                "write": "append",
                "capacity": {"size_bytes": 16 << 20, "duration_seconds": 86_400, "egress_bytes": 1u64 << 32},
                "sharing": {"tokens": tokens},
                "trust": {"witness": true},
            }),
        )
        .await?;
        logs.push(Log {
            baton_id: v["baton_id"].as_str().unwrap_or_default().to_string(),
            tokens: (0..TOKENS)
                .map(|i| v["tokens"][i]["token"].as_str().unwrap_or_default().to_string())
                .collect(),
        });
    }
    let mut budgets = Vec::new();
    for k in 0..(duration_s / BUDGET_EPOCH_S + 1) {
        let body: Vec<u8> = (0..BUDGET_SIZE)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(k as u8))
            .collect();
        let v = create(
            ctx,
            rng,
            json!({
                "capacity": {
                    "size_bytes": BUDGET_SIZE,
                    "duration_seconds": (k + 1) * BUDGET_EPOCH_S + 5,
                    "egress_bytes": BUDGET_SIZE * BUDGET_READS,
                },
                "content_base64": base64::engine::general_purpose::STANDARD.encode(&body),
            }),
        )
        .await?;
        let expires_at_ms = v["expires_at"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp_millis() as u64)
            .unwrap_or(0);
        budgets.push(Budget {
            baton_id: v["baton_id"].as_str().unwrap_or_default().to_string(),
            expires_at_ms,
            body,
        });
    }
    let (node, a) = ctx
        .until_definite("witness keys", rng, |api| api.get("/.well-known/relay-witness"))
        .await?;
    let keys = a.json()["keys"]
        .as_array()
        .map(|k| k.iter().filter_map(|k| k.as_str().map(String::from)).collect())
        .unwrap_or_default();
    ctx.record("setup", node, ctx.clock.now_us(), &Ok(a), Op::WitnessKeys { keys });
    Ok(Batons {
        logs,
        budgets,
        witness_sizes: Default::default(),
    })
}

/// The tree size a checkpoint note names.
pub fn note_size(note: &str) -> Option<u64> {
    note.lines().nth(1)?.parse().ok()
}

/// Fetches the checkpoint from `node`, and a consistency proof from `last` (the size this client
/// saw before) when the tree grew; answers the size seen, and whether a request failed.
async fn observe_witness(ctx: &Ctx, client: &str, node: usize, batons: &Batons, last: u64) -> (u64, bool) {
    let invoke = ctx.clock.now_us();
    let result = ctx.api[node].get("/v1/witness/checkpoint").send().await;
    let note = match &result {
        Ok(a) if a.status == 200 => Some(a.text()),
        _ => None,
    };
    ctx.record(
        client,
        node,
        invoke,
        &result,
        Op::WitnessCheckpoint { note: note.clone() },
    );
    let Some(size) = note.as_deref().and_then(note_size) else {
        return (last, !matches!(&result, Ok(a) if a.status < 500));
    };
    if let Ok(mut sizes) = batons.witness_sizes.lock() {
        sizes.insert(size);
    }
    if last == 0 || size <= last {
        return (last.max(size), false);
    }
    (size, !consistency(ctx, client, node, last, size).await)
}

/// Fetches and records the consistency proof between two sizes; whether the answer was definite.
async fn consistency(ctx: &Ctx, client: &str, node: usize, from: u64, to: u64) -> bool {
    let invoke = ctx.clock.now_us();
    let result = ctx.api[node]
        .get(&format!("/v1/witness/consistency?from={from}&to={to}"))
        .send()
        .await;
    let hashes = match &result {
        Ok(a) if a.status == 200 => a.json()["hashes"]
            .as_array()
            .map(|h| h.iter().filter_map(|h| h.as_str().map(String::from)).collect()),
        _ => None,
    };
    ctx.record(
        client,
        node,
        invoke,
        &result,
        Op::WitnessConsistency { from, to, hashes },
    );
    matches!(&result, Ok(a) if a.status < 500)
}

/// The values of a log's content, in order; `None` when it is not a log of ours.
pub fn values(body: &[u8]) -> Option<Vec<u64>> {
    let text = std::str::from_utf8(body).ok()?;
    text.split_terminator(';').map(|v| v.parse().ok()).collect()
}

pub async fn client(ctx: Arc<Ctx>, batons: Arc<Batons>, name: String, mut rng: StdRng) {
    let id: u64 = name.rsplit('-').next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut counter = 0u64;
    let mut witnessed = 0u64;
    while !ctx.stopped() {
        let node = ctx.node(&mut rng);
        let epoch = (ctx.elapsed_s() / LOG_EPOCH_S) as usize;
        let first = (epoch * LOGS_PER_EPOCH).min(batons.logs.len() - LOGS_PER_EPOCH);
        let log = first + rng.random_range(0..LOGS_PER_EPOCH);
        let roll: f64 = rng.random();
        let failed = if roll < 0.45 {
            counter += 1;
            let value = ((id + 1) << 40) | counter;
            let mut answered = append(&ctx, &name, node, &batons, log, value).await;
            // An unknown outcome is retried once with the same Idempotency-Key: one entry,
            // whichever attempt made it.
            if !answered {
                ctx.think(&mut rng, true).await;
                answered = append(&ctx, &name, ctx.node(&mut rng), &batons, log, value).await;
            }
            !answered
        } else if roll < 0.75 {
            let token = rng.random_bool(0.6).then(|| rng.random_range(0..TOKENS));
            read_log(&ctx, &name, node, &batons, log, token).await
        } else if roll < 0.82 {
            let (seen, failed) = observe_witness(&ctx, &name, node, &batons, witnessed).await;
            witnessed = seen;
            failed
        } else {
            // The current budget baton, or the one before it (expired, or about to be).
            let epoch = (ctx.elapsed_s() / BUDGET_EPOCH_S) as usize;
            let b = epoch
                .saturating_sub(rng.random_range(0..2))
                .min(batons.budgets.len() - 1);
            read_budget(&ctx, &name, node, &batons, b).await
        };
        ctx.think(&mut rng, failed).await;
    }
}

/// One append of `"<value>;"` (keyed by `value`); whether the answer was definite.
async fn append(ctx: &Ctx, client: &str, node: usize, batons: &Batons, log: usize, value: u64) -> bool {
    let invoke = ctx.clock.now_us();
    let result = ctx.api[node]
        .baton_append(&batons.logs[log].baton_id, format!("{value};"))
        .idempotency_key(&format!("entry-{value}"))
        .send()
        .await;
    let seq = match &result {
        Ok(a) if a.status == 201 => a.json()["seq"].as_u64(),
        _ => None,
    };
    ctx.record(
        client,
        node,
        invoke,
        &result,
        Op::BatonAppend { baton: log, value, seq },
    );
    matches!(&result, Ok(a) if a.status < 500)
}

/// A whole read of a log, by the owner or a token; whether it failed.
async fn read_log(ctx: &Ctx, client: &str, node: usize, batons: &Batons, log: usize, token: Option<usize>) -> bool {
    let l = &batons.logs[log];
    let api = match token {
        Some(t) => ctx.api[node].clone().bearer(&l.tokens[t]),
        None => ctx.api[node].clone(),
    };
    let invoke = ctx.clock.now_us();
    let result = api.baton_read(&l.baton_id).send().await;
    let (values, reads_remaining) = match &result {
        Ok(a) if a.status == 200 => (
            Some(values(&a.body)),
            a.header_u64("x-baton-reads-remaining").map(|r| r as u32),
        ),
        _ => (None, None),
    };
    ctx.record(
        client,
        node,
        invoke,
        &result,
        Op::BatonRead {
            baton: log,
            token,
            values: values.clone().flatten(),
            parsed: values.map(|v| v.is_some()),
            reads_remaining,
        },
    );
    !matches!(&result, Ok(a) if a.status < 500)
}

/// A whole read of a budget baton; whether it failed.
async fn read_budget(ctx: &Ctx, client: &str, node: usize, batons: &Batons, b: usize) -> bool {
    let budget = &batons.budgets[b];
    let invoke = ctx.clock.now_us();
    let result = ctx.api[node].baton_read(&budget.baton_id).send().await;
    let body_ok = match &result {
        Ok(a) if a.status == 200 => Some(a.body.as_ref() == budget.body.as_slice()),
        _ => None,
    };
    ctx.record(
        client,
        node,
        invoke,
        &result,
        Op::BudgetRead {
            baton: b,
            size: BUDGET_SIZE,
            budget: BUDGET_SIZE * BUDGET_READS,
            expires_at_ms: budget.expires_at_ms,
            body_ok,
        },
    );
    !matches!(&result, Ok(a) if a.status < 500)
}

/// After the final restart: every log read whole with each token's count of reads, and every
/// budget baton's egress as the ledger counts it.
pub async fn finish(ctx: &Ctx, batons: &Batons, rng: &mut StdRng) -> Result<(), ChaosError> {
    for (i, l) in batons.logs.iter().enumerate() {
        let invoke = ctx.clock.now_us();
        let (_, meta) = ctx
            .until_definite("baton meta", rng, |api| api.baton_meta(&l.baton_id))
            .await?;
        let (node, a) = ctx
            .until_definite("final log read", rng, |api| api.baton_read(&l.baton_id))
            .await?;
        let token_ids: Vec<String> = {
            let (_, t) = ctx
                .until_definite("baton tokens", rng, |api| {
                    api.get(&format!("/v1/baton/{}/tokens", l.baton_id))
                })
                .await?;
            let listed = t.json()["tokens"].as_array().cloned().unwrap_or_default();
            // Match listed tokens to ours by their prefix (the listing never shows the secret).
            l.tokens
                .iter()
                .map(|secret| {
                    listed
                        .iter()
                        .find(|t| t["prefix"].as_str().is_some_and(|p| secret.starts_with(p)))
                        .and_then(|t| t["token_id"].as_str())
                        .unwrap_or_default()
                        .to_string()
                })
                .collect()
        };
        let per_token = meta.json()["usage"]["reads_per_token"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let reads = token_ids
            .iter()
            .enumerate()
            .filter_map(|(t, id)| {
                per_token
                    .iter()
                    .find(|r| r["token_id"].as_str() == Some(id.as_str()))
                    .and_then(|r| r["reads"].as_u64())
                    .map(|n| (t, n as u32))
            })
            .collect();
        let final_values = (a.status == 200).then(|| values(&a.body)).flatten();
        ctx.record(
            "final",
            node,
            invoke,
            &Ok(a),
            Op::BatonFinal {
                baton: i,
                values: final_values,
                reads,
            },
        );
    }
    // The witness log: the checkpoint now, then a proof between every two sizes seen, in order,
    // so every checkpoint is shown consistent with every later one.
    let invoke = ctx.clock.now_us();
    let (node, a) = ctx
        .until_definite("final witness checkpoint", rng, |api| api.get("/v1/witness/checkpoint"))
        .await?;
    let note = (a.status == 200).then(|| a.text());
    let last = note.as_deref().and_then(note_size);
    ctx.record("final", node, invoke, &Ok(a), Op::WitnessCheckpoint { note });
    let mut sizes: Vec<u64> = batons
        .witness_sizes
        .lock()
        .map(|s| s.iter().copied().collect())
        .unwrap_or_default();
    sizes.extend(last);
    sizes.sort_unstable();
    sizes.dedup();
    sizes.retain(|s| *s > 0 && Some(*s) <= last);
    for w in sizes.windows(2) {
        let (from, to) = (w[0], w[1]);
        let invoke = ctx.clock.now_us();
        let (node, a) = ctx
            .until_definite("witness consistency", rng, |api| {
                api.get(&format!("/v1/witness/consistency?from={from}&to={to}"))
            })
            .await?;
        let hashes = a.json()["hashes"]
            .as_array()
            .map(|h| h.iter().filter_map(|h| h.as_str().map(String::from)).collect());
        ctx.record(
            "final",
            node,
            invoke,
            &Ok(a),
            Op::WitnessConsistency { from, to, hashes },
        );
    }
    for (i, b) in batons.budgets.iter().enumerate() {
        let invoke = ctx.clock.now_us();
        let (node, a) = ctx
            .until_definite("budget meta", rng, |api| api.baton_meta(&b.baton_id))
            .await?;
        let egress_used = a.json()["usage"]["egress_used_bytes"].as_u64();
        ctx.record(
            "final",
            node,
            invoke,
            &Ok(a),
            Op::BudgetFinal {
                baton: i,
                egress_used,
                budget: BUDGET_SIZE * BUDGET_READS,
            },
        );
    }
    Ok(())
}

//! Compare-and-set registers: each is a checkpoint whose body is `{"w": <unique value>}`. Clients
//! read them and write them with `If-Match: <version they last saw>`. Registers are grouped in
//! epochs of `EPOCH_S` seconds so each one's history stays short enough to check exhaustively.

use std::collections::HashMap;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::Rng;
use serde_json::json;

use super::{expect_status, Ctx};
use crate::history::Op;
use crate::ChaosError;

const SLOTS: u64 = 4;
const EPOCH_S: u64 = 15;

pub struct Registers {
    pub keys: Vec<String>,
    epochs: u64,
}

fn key(slot: u64, epoch: u64) -> String {
    format!("chaos-reg-{slot}-{epoch}")
}

/// Creates every register the run will use, each holding `{"w": 0}` at version 1.
pub async fn setup(ctx: &Ctx, duration_s: u64, rng: &mut StdRng) -> Result<Registers, ChaosError> {
    let epochs = duration_s / EPOCH_S + 1;
    let mut keys = Vec::new();
    for epoch in 0..epochs {
        for slot in 0..SLOTS {
            let k = key(slot, epoch);
            let (_, a) = ctx
                .until_definite("create register", rng, |api| {
                    api.checkpoint_create(
                        &k,
                        86_400,
                        Some(super::LARGE_PAD as u64 * 2),
                        json!({"w": 0}).to_string(),
                    )
                    .idempotency_key(&format!("setup-{k}"))
                })
                .await?;
            // 409: an earlier try that timed out created it (registers are this run's alone).
            if a.status != 409 {
                expect_status("create register", &a, 201)?;
            }
            keys.push(k);
        }
    }
    Ok(Registers { keys, epochs })
}

fn value_of(body: &[u8]) -> Option<u64> {
    serde_json::from_slice::<serde_json::Value>(body).ok()?["w"].as_u64()
}

/// The version read, or the definite refusal (a 4xx), or neither.
async fn read(ctx: &Ctx, client: &str, node: usize, k: &str) -> Result<Option<u64>, u16> {
    let invoke = ctx.clock.now_us();
    let result = ctx.api[node].checkpoint_get(k).send().await;
    let (version, value) = match &result {
        Ok(a) if a.status == 200 => (a.header_u64("x-checkpoint-version"), value_of(&a.body)),
        _ => (None, None),
    };
    ctx.record(
        client,
        node,
        invoke,
        &result,
        Op::Read {
            key: k.to_string(),
            version,
            value,
        },
    );
    match &result {
        Ok(a) if (400..500).contains(&a.status) => Err(a.status),
        _ => Ok(version),
    }
}

/// One compare-and-set write of `{"w": value}` (keyed by `value`): the new version, or the
/// definite refusal's status, or `Err(None)` when the outcome is unknown.
async fn cas(
    ctx: &Ctx,
    client: &str,
    node: usize,
    k: &str,
    expect: u64,
    value: u64,
    body: &str,
) -> Result<u64, Option<u16>> {
    let invoke = ctx.clock.now_us();
    let result = ctx.api[node]
        .checkpoint_put(k, body.to_string())
        .if_match(expect)
        .idempotency_key(&format!("cas-{value}"))
        .send()
        .await;
    let new_version = match &result {
        Ok(a) if a.status == 200 => a.header_u64("x-checkpoint-version"),
        _ => None,
    };
    ctx.record(
        client,
        node,
        invoke,
        &result,
        Op::Cas {
            key: k.to_string(),
            expect,
            value,
            new_version,
        },
    );
    match (&result, new_version) {
        (_, Some(v)) => Ok(v),
        (Ok(a), None) if a.status < 500 => Err(Some(a.status)),
        _ => Err(None),
    }
}

pub async fn client(ctx: Arc<Ctx>, regs: Arc<Registers>, name: String, mut rng: StdRng) {
    let id: u64 = name.rsplit('-').next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut counter = 0u64;
    while !ctx.stopped() {
        let epoch = (ctx.elapsed_s() / EPOCH_S).min(regs.epochs - 1);
        let k = key(rng.random_range(0..SLOTS), epoch);
        let node = ctx.node(&mut rng);
        let known = seen.get(&k).copied();
        let failed = match known {
            Some(expect) if rng.random_bool(0.6) => {
                counter += 1;
                let value = ((id + 1) << 40) | counter;
                let body = super::padded_json("w", value, &mut rng);
                let mut answer = cas(&ctx, &name, node, &k, expect, value, &body).await;
                // An unknown outcome is retried once with the same Idempotency-Key: a replay of
                // the first write's answer, or the write itself, never both (the register model
                // then admits one effect only).
                if matches!(answer, Err(None)) {
                    ctx.think(&mut rng, true).await;
                    answer = cas(&ctx, &name, ctx.node(&mut rng), &k, expect, value, &body).await;
                }
                match answer {
                    Ok(v) => {
                        seen.insert(k, v);
                        false
                    }
                    Err(status) => {
                        // Refused or unknown: learn the version again before the next write.
                        seen.remove(&k);
                        status != Some(412)
                    }
                }
            }
            _ => match read(&ctx, &name, node, &k).await {
                Ok(Some(v)) => {
                    seen.insert(k, v);
                    false
                }
                _ => true,
            },
        };
        ctx.think(&mut rng, failed).await;
    }
}

/// After the final restart: one read of every register, retried until it answers.
pub async fn finish(ctx: &Ctx, regs: &Registers, rng: &mut StdRng) -> Result<(), ChaosError> {
    for k in &regs.keys {
        // A refusal is recorded and judged by the checker; only silence is retried.
        ctx.until_answered(
            &format!("final read of register {k}"),
            ctx.node(rng),
            |node| async move { !matches!(read(ctx, "final", node, k).await, Ok(None)) },
        )
        .await?;
    }
    Ok(())
}

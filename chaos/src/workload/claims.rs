//! Many claimers race for the few claims of many handoff tokens. Tokens come in epochs of
//! `EPOCH_S` seconds, `PER_EPOCH` at a time, each allowing 1–`MAX_CLAIMS` claims of a small
//! Storage lease.

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::Rng;
use relay_testkit::Method;
use serde_json::json;

use super::{expect_status, path_of, Ctx};
use crate::history::Op;
use crate::ChaosError;

const EPOCH_S: u64 = 1;
const PER_EPOCH: usize = 4;
const MAX_CLAIMS: u32 = 8;
const TOKENS_PER_LEASE: usize = 100;

pub struct Token {
    pub path: String,
    pub max_claims: u32,
}

pub struct Tokens {
    pub tokens: Vec<Token>,
    body: Vec<u8>,
}

fn body() -> Vec<u8> {
    (0..512u32).map(|i| (i * 7 + 3) as u8).collect()
}

pub async fn setup(ctx: &Ctx, duration_s: u64, rng: &mut StdRng) -> Result<Tokens, ChaosError> {
    let count = (duration_s / EPOCH_S + 1) as usize * PER_EPOCH;
    let body = body();
    let mut tokens = Vec::new();
    let mut lease = String::new();
    for t in 0..count {
        if t % TOKENS_PER_LEASE == 0 {
            let (_, a) = ctx
                .until_definite("create claim lease", rng, |api| {
                    api.store("claims.bin", 86_400, body.clone())
                })
                .await?;
            expect_status("create claim lease", &a, 201)?;
            lease = a.json()["lease_id"].as_str().unwrap_or_default().to_string();
        }
        let max_claims = rng.random_range(1..=MAX_CLAIMS);
        let (_, a) = ctx
            .until_definite("create handoff", rng, |api| {
                api.handoff_create(&lease, &json!({ "max_claims": max_claims }))
            })
            .await?;
        expect_status("create handoff", &a, 201)?;
        let path = path_of(a.json()["claim_url"].as_str().unwrap_or_default());
        tokens.push(Token { path, max_claims });
    }
    Ok(Tokens { tokens, body })
}

pub async fn client(ctx: Arc<Ctx>, tokens: Arc<Tokens>, name: String, mut rng: StdRng) {
    while !ctx.stopped() {
        let epoch = ctx.elapsed_s() / EPOCH_S;
        let first = (epoch as usize * PER_EPOCH).min(tokens.tokens.len() - PER_EPOCH);
        let token = first + rng.random_range(0..PER_EPOCH);
        let t = &tokens.tokens[token];
        let node = ctx.node(&mut rng);
        let method = if rng.random_bool(0.5) {
            Method::POST
        } else {
            Method::GET
        };
        let invoke = ctx.clock.now_us();
        let result = ctx.api[node].claim(method, &t.path).send().await;
        let (remaining, body_ok) = match &result {
            Ok(a) if a.status == 200 => (
                a.header_u64("x-claims-remaining").map(|r| r as u32),
                Some(a.body == tokens.body),
            ),
            _ => (None, None),
        };
        ctx.record(
            &name,
            node,
            invoke,
            &result,
            Op::Claim {
                token,
                max_claims: t.max_claims,
                remaining,
                body_ok,
            },
        );
        let failed = !matches!(&result, Ok(a) if a.status < 500);
        ctx.think(&mut rng, failed).await;
    }
}

/// After the final restart: how many claims each token has left (HEAD counts nothing).
pub async fn finish(ctx: &Ctx, tokens: &Tokens, rng: &mut StdRng) -> Result<(), ChaosError> {
    for (i, t) in tokens.tokens.iter().enumerate() {
        let invoke = ctx.clock.now_us();
        let (node, a) = ctx
            .until_definite("probe token", rng, |api| api.claim(Method::HEAD, &t.path))
            .await?;
        let remaining = match a.status {
            200 => a.header_u64("x-claims-remaining").map(|r| r as u32),
            // Claimed out.
            410 => Some(0),
            _ => None,
        };
        ctx.record(
            "final",
            node,
            invoke,
            &Ok(a),
            Op::ClaimProbe {
                token: i,
                max_claims: t.max_claims,
                remaining,
            },
        );
    }
    Ok(())
}

//! Many claimers race for the few claims of many handoff tokens. Tokens come in epochs of
//! `EPOCH_S` seconds, `PER_EPOCH` at a time, each allowing 1–`MAX_CLAIMS` claims of a small
//! Storage lease.

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::Rng;
use serde_json::json;

use super::{expect_status, header_u64, json, path_of, Ctx};
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
                .until_definite("create claim lease", rng, |node| {
                    ctx.http
                        .post(format!("{node}/api/store"))
                        .header("authorization", &ctx.auth)
                        .header("x-file-name", "claims.bin")
                        .header("x-size-bytes", body.len().to_string())
                        .header("x-duration-seconds", "86400")
                        .body(body.clone())
                })
                .await?;
            expect_status("create claim lease", &a, 201)?;
            lease = json(&a)["lease_id"].as_str().unwrap_or_default().to_string();
        }
        let max_claims = rng.random_range(1..=MAX_CLAIMS);
        let (_, a) = ctx
            .until_definite("create handoff", rng, |node| {
                ctx.http
                    .post(format!("{node}/api/handoff/{lease}"))
                    .header("authorization", &ctx.auth)
                    .header("content-type", "application/json")
                    .body(json!({ "max_claims": max_claims }).to_string())
            })
            .await?;
        expect_status("create handoff", &a, 201)?;
        let path = path_of(json(&a)["claim_url"].as_str().unwrap_or_default());
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
        let url = format!("{}{}", ctx.nodes[node], t.path);
        let req = if rng.random_bool(0.5) {
            ctx.http.post(url)
        } else {
            ctx.http.get(url)
        };
        let invoke = ctx.clock.now_us();
        let result = ctx.send(req).await;
        let (remaining, body_ok) = match &result {
            Ok(a) if a.status == 200 => (
                header_u64(a, "x-claims-remaining").map(|r| r as u32),
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
            .until_definite("probe token", rng, |node| ctx.http.head(format!("{node}{}", t.path)))
            .await?;
        let remaining = match a.status {
            200 => header_u64(&a, "x-claims-remaining").map(|r| r as u32),
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

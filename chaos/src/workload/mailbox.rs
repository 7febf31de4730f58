//! Messages `{"d": <unique number>}` dropped into a few mailboxes and picked up (which removes
//! them). After the final restart every mailbox is drained.

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::Rng;

use super::{expect_status, path_of, Ctx};
use crate::history::Op;
use crate::ChaosError;

const MAILBOXES: usize = 2;

pub struct Mailboxes {
    /// (lease id, drop path) of each mailbox.
    pub boxes: Vec<(String, String)>,
}

pub async fn setup(ctx: &Ctx, rng: &mut StdRng) -> Result<Mailboxes, ChaosError> {
    let mut boxes = Vec::new();
    for _ in 0..MAILBOXES {
        let (_, a) = ctx
            .until_definite("create mailbox", rng, |api| {
                api.mailbox_create(64 << 20, 86_400).header("x-max-messages", "10000")
            })
            .await?;
        expect_status("create mailbox", &a, 201)?;
        let v = a.json();
        boxes.push((
            v["lease_id"].as_str().unwrap_or_default().to_string(),
            path_of(v["drop_url"].as_str().unwrap_or_default()),
        ));
    }
    Ok(Mailboxes { boxes })
}

/// Picks up message `id` of mailbox `m`; `Some(true)` when it was picked up, `Some(false)` when
/// it was refused, `None` when there was no definite answer.
async fn pickup(ctx: &Ctx, client: &str, node: usize, boxes: &Mailboxes, m: usize, id: &str) -> Option<bool> {
    let invoke = ctx.clock.now_us();
    let result = ctx.api[node].mailbox_pickup(&boxes.boxes[m].0, id).send().await;
    let drop = match &result {
        Ok(a) if a.status == 200 => a.json()["d"].as_u64(),
        _ => None,
    };
    ctx.record(
        client,
        node,
        invoke,
        &result,
        Op::Pickup {
            mailbox: m,
            message_id: id.into(),
            drop,
        },
    );
    match &result {
        Ok(a) if a.status == 200 => Some(true),
        Ok(a) if a.status < 500 => Some(false),
        _ => None,
    }
}

/// The ids of the queued messages (not recorded: a listing promises nothing the pickups don't).
async fn list(ctx: &Ctx, node: usize, boxes: &Mailboxes, m: usize) -> Option<Vec<String>> {
    let a = ctx.api[node].mailbox_poll(&boxes.boxes[m].0).send().await.ok()?;
    if a.status != 200 {
        return None;
    }
    Some(
        a.json()["items"]
            .as_array()?
            .iter()
            .filter_map(|i| i["id"].as_str().map(String::from))
            .collect(),
    )
}

pub async fn client(ctx: Arc<Ctx>, boxes: Arc<Mailboxes>, name: String, mut rng: StdRng) {
    let id: u64 = name.rsplit('-').next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut counter = 0u64;
    while !ctx.stopped() {
        let node = ctx.node(&mut rng);
        let m = rng.random_range(0..boxes.boxes.len());
        let failed = if rng.random_bool(0.55) {
            counter += 1;
            let drop = ((id + 1) << 40) | counter;
            let body = super::padded_json("d", drop, &mut rng);
            let mut answered = drop_once(&ctx, &name, node, &boxes, m, drop, &body).await;
            // An unknown outcome is retried once with the same Idempotency-Key and body: one
            // message, whichever attempt made it.
            if !answered {
                ctx.think(&mut rng, true).await;
                answered = drop_once(&ctx, &name, ctx.node(&mut rng), &boxes, m, drop, &body).await;
            }
            !answered
        } else {
            match list(&ctx, node, &boxes, m).await {
                Some(ids) if !ids.is_empty() => {
                    // Among the oldest few, so concurrent pickers sometimes race for one message.
                    let id = &ids[rng.random_range(0..ids.len().min(4))];
                    pickup(&ctx, &name, node, &boxes, m, id).await.is_none()
                }
                Some(_) => false,
                None => true,
            }
        };
        ctx.think(&mut rng, failed).await;
    }
}

/// One drop of `{"d": drop}` (keyed by `drop`); whether the answer was definite.
async fn drop_once(ctx: &Ctx, client: &str, node: usize, boxes: &Mailboxes, m: usize, drop: u64, body: &str) -> bool {
    let invoke = ctx.clock.now_us();
    let result = ctx.api[node]
        .drop_message(&boxes.boxes[m].1, body.to_string())
        .content_type("application/json")
        .idempotency_key(&format!("drop-{drop}"))
        .send()
        .await;
    let message_id = match &result {
        Ok(a) if a.status == 201 => a.json()["id"].as_str().map(String::from),
        _ => None,
    };
    ctx.record(
        client,
        node,
        invoke,
        &result,
        Op::Drop {
            mailbox: m,
            drop,
            message_id,
        },
    );
    matches!(&result, Ok(a) if a.status < 500)
}

/// After the final restart: every queued message picked up.
pub async fn finish(ctx: &Ctx, boxes: &Mailboxes, rng: &mut StdRng) -> Result<(), ChaosError> {
    for m in 0..boxes.boxes.len() {
        let mut tries = 0;
        loop {
            tries += 1;
            if tries > 1000 {
                return Err(ChaosError::Workload(format!("draining mailbox {m}: no progress")));
            }
            let node = ctx.node(rng);
            let Some(ids) = list(ctx, node, boxes, m).await else {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                continue;
            };
            if ids.is_empty() {
                break;
            }
            for id in ids {
                let id = &id;
                ctx.until_answered(&format!("final pickup of {id}"), ctx.node(rng), |node| async move {
                    pickup(ctx, "final", node, boxes, m, id).await.is_some()
                })
                .await?;
            }
        }
    }
    Ok(())
}

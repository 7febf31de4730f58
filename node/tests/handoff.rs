//! Handoff on real processes: exact claim counts under concurrent claimers on three nodes (also
//! with the leader killed mid-storm), revoke racing claims, every lease kind, and bad inputs.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{bytes, client, files_under, Cluster, Relay, RelayExt};
use serde_json::{json, Value};

async fn handoff(node: &Relay, lease_id: &str, body: Value) -> Value {
    let reply = node
        .client(client())
        .handoff_create(lease_id, &body)
        .send()
        .await
        .unwrap();
    let json: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(reply.status, 201, "{json}");
    json
}

/// The claim URL as reached through `node`.
fn via(node: &Relay, url: &str) -> String {
    node.url(&common::api_path(url))
}

async fn outstanding(node: &Relay, lease_id: &str) -> Value {
    common::ok_json(node.client(client()).handoffs(lease_id), "outstanding handoffs").await
}

/// 48 concurrent claimers over three nodes against max_claims 5: exactly five get the bytes,
/// the rest 404/410, and the final claim deleted the lease and, soon after, its bytes.
#[tokio::test]
async fn exactly_max_claims_succeed() {
    let cluster = Cluster::start(3, &[]).await;
    let http = client();
    let body = bytes(4096, 3);
    let receipt = cluster.nodes[0].store(&http, "report.pdf", body.clone(), 600).await;
    let lease_id = receipt["lease_id"].as_str().unwrap().to_string();
    let h = handoff(
        &cluster.nodes[1],
        &lease_id,
        json!({"max_claims": 5, "delete_on_claim": true}),
    )
    .await;
    let claim_url = h["claim_url"].as_str().unwrap().to_string();
    assert!(h["handoff_token"].as_str().unwrap().starts_with("hof_"));

    let urls: Vec<String> = cluster.nodes.iter().map(|n| via(n, &claim_url)).collect();
    let tasks: Vec<_> = (0..48)
        .map(|i| {
            let url = urls[i % 3].clone();
            tokio::spawn(async move {
                let resp = client().get(url).send().await.unwrap();
                let status = resp.status().as_u16();
                let disposition = resp
                    .headers()
                    .get("content-disposition")
                    .map(|v| v.to_str().unwrap().to_string());
                (status, disposition, resp.bytes().await.unwrap().to_vec())
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        let (status, disposition, got) = t.await.unwrap();
        match status {
            200 => {
                ok += 1;
                assert_eq!(got, body);
                assert!(disposition.unwrap().starts_with("attachment; filename=\"report.pdf\""));
            }
            404 | 410 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(ok, 5, "successful claims");
    for node in &cluster.nodes {
        assert_eq!(
            node.download(&http, &lease_id).await.status(),
            410,
            "owner download after the final claim"
        );
    }
    let mut left = usize::MAX;
    for _ in 0..50 {
        left = files_under(&cluster.objects_dir().unwrap()).len();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "claimed-out bytes were not deleted");
}

/// The leader is SIGKILLed while claimers (retrying under their own Idempotency-Key, on any
/// live node) are still claiming: never more than max_claims successes.
#[tokio::test]
async fn leader_kill_mid_storm_never_overclaims() {
    let mut cluster = Cluster::start(3, &[]).await;
    let http = client();
    let receipt = cluster.nodes[0].store(&http, "a.bin", bytes(1024, 1), 600).await;
    let lease_id = receipt["lease_id"].as_str().unwrap().to_string();
    let h = handoff(&cluster.nodes[0], &lease_id, json!({"max_claims": 5})).await;
    let claim_url = h["claim_url"].as_str().unwrap().to_string();
    let urls: Arc<Vec<String>> = Arc::new(cluster.nodes.iter().map(|n| via(n, &claim_url)).collect());
    let successes = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..48)
        .map(|i| {
            let (urls, successes) = (urls.clone(), successes.clone());
            tokio::spawn(async move {
                // Spread over time so the kill lands mid-storm.
                tokio::time::sleep(Duration::from_millis(15 * i as u64)).await;
                let deadline = Instant::now() + Duration::from_secs(20);
                let mut attempt = 0;
                while Instant::now() < deadline {
                    let url = &urls[(i + attempt) % urls.len()];
                    attempt += 1;
                    let resp = client()
                        .get(url)
                        .header("idempotency-key", format!("claimer-{i}"))
                        .send()
                        .await;
                    match resp.map(|r| r.status().as_u16()) {
                        Ok(200) => {
                            successes.fetch_add(1, Ordering::SeqCst);
                            return true;
                        }
                        Ok(404 | 410) => return false,
                        // Node down or no leader yet: retry elsewhere with the same key.
                        _ => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
                false
            })
        })
        .collect();
    let waiting = Instant::now();
    while successes.load(Ordering::SeqCst) < 2 {
        assert!(waiting.elapsed() < Duration::from_secs(20), "no claims succeeded");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let leader = cluster.leader().await;
    cluster.nodes[leader].kill9();
    let mut ok = 0;
    for t in tasks {
        ok += t.await.unwrap() as usize;
    }
    assert!(ok <= 5, "{ok} successful claims for max_claims 5");
    assert!(ok >= 2);
    let survivor = (leader + 1) % 3;
    let listed = outstanding(&cluster.nodes[survivor], &lease_id).await;
    let remaining = listed["handoffs"]
        .get(0)
        .map_or(0, |h| h["claims_remaining"].as_u64().unwrap());
    assert!(
        ok as u64 <= 5 - remaining,
        "{ok} successes but the ledger counted {}",
        5 - remaining
    );
}

/// Claims race a revoke: once the revoke is acknowledged, no claim that starts succeeds.
#[tokio::test]
async fn no_claim_succeeds_after_revoke() {
    let cluster = Cluster::start(3, &[]).await;
    let http = client();
    let receipt = cluster.nodes[0].store(&http, "r.bin", bytes(512, 2), 600).await;
    let lease_id = receipt["lease_id"].as_str().unwrap().to_string();
    let h = handoff(&cluster.nodes[0], &lease_id, json!({"max_claims": 1000})).await;
    let claim_url = h["claim_url"].as_str().unwrap().to_string();
    let handoff_id = h["handoff_id"].as_str().unwrap().to_string();
    let started = Instant::now();
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let url = via(&cluster.nodes[i % 3], &claim_url);
            tokio::spawn(async move {
                let http = client();
                let mut log = Vec::new();
                while started.elapsed() < Duration::from_millis(1500) {
                    let t0 = started.elapsed();
                    let status = http.get(&url).send().await.unwrap().status().as_u16();
                    log.push((t0, status));
                }
                log
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let resp = cluster.nodes[1]
        .client(http.clone())
        .revoke(&handoff_id)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    let revoked_at = started.elapsed();
    let (mut before, mut after) = (0, 0);
    for t in tasks {
        for (t0, status) in t.await.unwrap() {
            if t0 > revoked_at {
                assert_eq!(status, 404, "a claim started after the revoke was acknowledged");
                after += 1;
            } else if status == 200 {
                before += 1;
            }
        }
    }
    assert!(
        before > 0 && after > 0,
        "the race did not happen ({before} before, {after} after)"
    );
    let again = cluster.nodes[2]
        .client(http.clone())
        .revoke(&handoff_id)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status, 404, "second revoke");
}

/// Checkpoint and mailbox leases hand off too; POST-only tokens refuse GET without counting;
/// HEAD never counts; listing and bad inputs.
#[tokio::test]
async fn every_kind_and_bad_inputs() {
    let node = Relay::start(&[]);
    let http = client();
    // Checkpoint.
    let resp = http
        .post(node.url("/api/checkpoint"))
        .header("authorization", node.auth())
        .header("x-workflow-id", "wf-1")
        .header("x-duration-seconds", "600")
        .body(r#"{"step":7}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let cp_lease = resp.json::<Value>().await.unwrap()["lease_id"]
        .as_str()
        .unwrap()
        .to_string();
    let h = handoff(&node, &cp_lease, json!({"require_post": true, "max_claims": 2})).await;
    let url = h["claim_url"].as_str().unwrap().to_string();
    let get = http.get(&url).send().await.unwrap();
    assert_eq!(get.status(), 405);
    assert_eq!(get.headers()["allow"], "POST");
    assert_eq!(http.head(&url).send().await.unwrap().status(), 405);
    let listed = outstanding(&node, &cp_lease).await;
    assert_eq!(
        listed["handoffs"][0]["claims_remaining"], 2,
        "a refused GET counted: {listed}"
    );
    assert!(listed["handoffs"][0]["token_prefix"]
        .as_str()
        .unwrap()
        .starts_with("hof_"));
    let post = http.post(&url).send().await.unwrap();
    assert_eq!(post.status(), 200);
    assert_eq!(post.headers()["x-checkpoint-version"], "1");
    assert_eq!(post.headers()["x-claims-remaining"], "1");
    assert_eq!(post.json::<Value>().await.unwrap(), json!({"step": 7}));

    // Mailbox: the queued messages as JSON; the final claim deletes the mailbox.
    let resp = http
        .post(node.url("/api/mailbox"))
        .header("authorization", node.auth())
        .header("x-capacity-bytes", "4096")
        .header("x-duration-seconds", "600")
        .send()
        .await
        .unwrap();
    let mb: Value = resp.json().await.unwrap();
    let drop_url = mb["drop_url"].as_str().unwrap();
    for body in [r#"{"task":"a"}"#, "plain text"] {
        let r = http.post(drop_url).body(body).send().await.unwrap();
        assert_eq!(r.status(), 201);
    }
    let mb_lease = mb["lease_id"].as_str().unwrap();
    let h = handoff(&node, mb_lease, json!({"delete_on_claim": true})).await;
    let url = h["claim_url"].as_str().unwrap().to_string();
    assert_eq!(http.head(&url).send().await.unwrap().status(), 200, "HEAD previews");
    let claimed: Value = http.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(claimed["count"], 2, "{claimed}");
    assert_eq!(claimed["items"][0]["data"], json!({"task": "a"}));
    assert_eq!(claimed["items"][1]["data_base64"], "cGxhaW4gdGV4dA==");
    assert_eq!(http.get(&url).send().await.unwrap().status(), 410, "claimed out");
    let poll = http
        .get(mb["poll_url"].as_str().unwrap())
        .header("authorization", node.auth())
        .send()
        .await
        .unwrap();
    assert_eq!(poll.status(), 410, "mailbox deleted by the final claim");

    // Bad inputs: each a 4xx JSON error, nothing issued.
    let create = |lease: String, body: &'static str| {
        http.post(node.url(&format!("/api/handoff/{lease}")))
            .header("authorization", node.auth())
            .body(body)
            .send()
    };
    for (lease, body, status) in [
        (cp_lease.clone(), "{nope", 400),
        (cp_lease.clone(), r#"{"max_claims": 0}"#, 422),
        (cp_lease.clone(), r#"{"max_claims": 1001}"#, 422),
        (cp_lease.clone(), r#"{"max_claims": -1}"#, 422),
        (cp_lease.clone(), r#"{"ttl_seconds": 0}"#, 422),
        (cp_lease.clone(), r#"{"surprise": true}"#, 422),
        (cp_lease.clone(), r#"{"delete_on_claim": "yes"}"#, 422),
        ("lse_nope".to_string(), "{}", 404),
        (format!("lse_{}", "0".repeat(26)), "{}", 404),
        (mb_lease.to_string(), "{}", 410),
    ] {
        let resp = create(lease, body).await.unwrap();
        assert_eq!(resp.status(), status, "{body}");
        assert_eq!(resp.json::<Value>().await.unwrap()["status"], "error");
    }
    assert_eq!(
        outstanding(&node, &cp_lease).await["count"],
        1,
        "a bad request issued a token"
    );
    for path in [
        "/api/claim/hof_short",
        "/api/claim/nothing",
        &format!("/api/claim/hof_{}", "A".repeat(43)),
    ] {
        assert_eq!(http.get(node.url(path)).send().await.unwrap().status(), 404, "{path}");
    }
    let no_auth = http
        .post(node.url(&format!("/api/handoff/{cp_lease}")))
        .send()
        .await
        .unwrap();
    assert_eq!(no_auth.status(), 401);
    let bad_revoke = http
        .delete(node.url("/api/handoffs/hnd_nope"))
        .header("authorization", node.auth())
        .send()
        .await
        .unwrap();
    assert_eq!(bad_revoke.status(), 404);
}

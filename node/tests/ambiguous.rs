//! Ambiguous outcomes, made to happen for real: a follower forwards a write to the leader, the
//! leader commits it, and the answer never comes back (the follower reaches the leader through a
//! proxy that holds the answers), so the client hears 503 for a write that took effect. Its
//! retry with the same Idempotency-Key must get that write back, with its bytes intact: an
//! unknown outcome never deletes the bytes a committed command references.

mod common;
#[path = "common/proxy.rs"]
mod proxy;

use common::{bytes, client, Cluster, Relay, RelayExt};
use proxy::Proxy;
use serde_json::Value;

async fn store(node: &Relay, http: &reqwest::Client, key: &str, body: &[u8]) -> reqwest::Response {
    let call = node.client(http.clone()).store("held.bin", 600, body.to_vec());
    call.idempotency_key(key).request().send().await.unwrap()
}

async fn put_checkpoint(node: &Relay, http: &reqwest::Client, key: &str, body: &str) -> reqwest::Response {
    let call = node.client(http.clone()).checkpoint_put("held", body.to_string());
    call.idempotency_key(key).request().send().await.unwrap()
}

async fn drop_message(http: &reqwest::Client, url: &str, key: &str, body: &[u8]) -> reqwest::Response {
    http.post(url)
        .header("idempotency-key", key)
        .header("content-type", "application/octet-stream")
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

/// Retrying a store, a checkpoint write with an object body and a mailbox drop above the inline
/// limit, each after a 503 for a write that did commit, gets the committed write back (one
/// effect each) and its bytes download intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_after_lost_answers_get_the_committed_write_and_its_bytes() {
    let proxy = Proxy::start().await;
    // Node 2 reaches node 1 (the founder, and leader) only through the proxy.
    let cluster = Cluster::start_each(3, &["--inline-max-bytes", "64"], &mut |i, running| {
        if i != 1 {
            return Vec::new();
        }
        proxy.target(&running[0].raft_addr());
        vec![
            "--chaos-dial".into(),
            format!("{}={}", running[0].raft_addr(), proxy.addr),
        ]
    })
    .await;
    assert_eq!(cluster.leader().await, 0, "the founder leads a quiet cluster");
    let (leader, follower) = (&cluster.nodes[0], &cluster.nodes[1]);
    let http = client();

    let created = http
        .post(follower.url("/api/checkpoint"))
        .header("authorization", follower.auth())
        .header("x-workflow-id", "held")
        .header("x-duration-seconds", "600")
        .header("x-max-body-bytes", "65536")
        .header("content-type", "application/json")
        .body(r#"{"step":0}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let mailbox = follower.mailbox(&http, 1 << 20, &[]).await;
    let drop_url = follower.url(&common::api_path(mailbox["drop_url"].as_str().unwrap()));
    let poll_url = follower.url(&common::api_path(mailbox["poll_url"].as_str().unwrap()));

    let object = bytes(200_000, 7);
    let state = format!(r#"{{"step":1,"pad":"{}"}}"#, "x".repeat(4000));
    let message = bytes(5_000, 9);

    // The leader commits each write; its answer to the follower is held until the follower's
    // ledger deadline passes.
    proxy.hold(true);
    let (a, b, c) = tokio::join!(
        store(follower, &http, "store-1", &object),
        put_checkpoint(follower, &http, "ckpt-1", &state),
        drop_message(&http, &drop_url, "drop-1", &message),
    );
    assert_eq!(a.status(), 503, "store: {}", a.text().await.unwrap());
    assert_eq!(b.status(), 503, "checkpoint: {}", b.text().await.unwrap());
    assert_eq!(c.status(), 503, "drop: {}", c.text().await.unwrap());
    proxy.hold(false);

    // They did commit: the leader knows all three.
    let leases = leader.all_leases(&http, 100).await;
    let stored: Vec<&Value> = leases.iter().filter(|l| l["kind"] == "storage").collect();
    assert_eq!(stored.len(), 1, "{leases:?}");
    let read = http
        .get(leader.url("/api/checkpoint/held"))
        .header("authorization", leader.auth())
        .send()
        .await
        .unwrap();
    assert_eq!(read.headers()["x-checkpoint-version"], "2");

    // The retries answer with the committed writes, and the bytes are all there.
    let a = store(follower, &http, "store-1", &object).await;
    assert_eq!(a.status(), 201);
    let receipt: Value = a.json().await.unwrap();
    assert_eq!(receipt["lease_id"], stored[0]["lease_id"]);
    let download = follower.download(&http, receipt["lease_id"].as_str().unwrap()).await;
    assert_eq!(download.status(), 200);
    assert_eq!(download.bytes().await.unwrap().as_ref(), object.as_slice());

    let b = put_checkpoint(follower, &http, "ckpt-1", &state).await;
    assert_eq!(b.status(), 200);
    assert_eq!(b.headers()["x-checkpoint-version"], "2");
    let read = http
        .get(follower.url("/api/checkpoint/held"))
        .header("authorization", follower.auth())
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    assert_eq!(read.headers()["x-checkpoint-version"], "2");
    let got: Value = read.json().await.unwrap();
    assert_eq!(got, serde_json::from_str::<Value>(&state).unwrap());

    let c = drop_message(&http, &drop_url, "drop-1", &message).await;
    assert_eq!(c.status(), 201);
    let dropped: Value = c.json().await.unwrap();
    let polled: Value = http
        .get(&poll_url)
        .header("authorization", follower.auth())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let messages = polled["items"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{polled}");
    assert_eq!(messages[0]["id"], dropped["id"]);
    let pickup = http
        .get(format!("{poll_url}/{}", dropped["id"].as_str().unwrap()))
        .header("authorization", follower.auth())
        .send()
        .await
        .unwrap();
    assert_eq!(pickup.status(), 200);
    assert_eq!(pickup.bytes().await.unwrap().as_ref(), message.as_slice());
}

//! A node of a stopped cluster, started again alone as the README says (the same command minus
//! `--join`), waits for its peers as long as it takes: `/healthz` answers at once, `/readyz`
//! answers 503 saying it waits for a leader, the log says so every few seconds, SIGTERM stops it
//! cleanly, and when a quorum is back it serves what it held.

mod common;

use std::time::{Duration, Instant};

use common::{client, Cluster, RelayExt};
use relay_testkit::Client;
use serde_json::Value;

/// Longer than the 60 s a node used to wait for a leader before it gave up.
const PAST_THE_OLD_LIMIT: Duration = Duration::from_secs(65);

async fn get(base: &str, path: &str) -> Option<(u16, Value)> {
    let r = Client::new(client(), base).get(path).send().await.ok()?;
    Some((r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null)))
}

#[tokio::test]
async fn a_node_of_a_stopped_cluster_waits_for_its_peers_as_long_as_it_takes() {
    let mut cluster = Cluster::start(3, &[]).await;
    let http = client();
    let receipt = cluster.nodes[1]
        .store(&http, "kept.txt", b"kept across the outage".to_vec(), 3600)
        .await;
    let lease = receipt["lease_id"].as_str().unwrap().to_string();
    for node in cluster.nodes.iter_mut() {
        assert!(node.terminate().expect("stop").success());
    }

    // Node 1 alone: alive at once, not ready, and still so past the old limit.
    let started = Instant::now();
    let node = &mut cluster.nodes[0];
    node.relaunch().expect("relaunch");
    let base = node.base().to_string();
    loop {
        if let Some((200, _)) = get(&base, "/healthz").await {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "/healthz never answered:\n{}",
            node.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = get(&base, "/readyz").await.expect("readyz");
    assert_eq!((status, body["waiting_for"].as_str()), (503, Some("leader")), "{body}");
    assert_eq!(body["error"]["code"], "not_ready");
    while started.elapsed() < PAST_THE_OLD_LIMIT {
        assert!(node.is_running(), "the node gave up waiting:\n{}", node.logs());
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(get(&base, "/healthz").await.map(|r| r.0), Some(200));
    assert_eq!(get(&base, "/readyz").await.map(|r| r.0), Some(503));
    assert!(node.logs().contains("waiting for a leader and a quorum of voters"));
    // SIGTERM while it waits: a clean exit.
    assert!(node.terminate().expect("stop").success());

    // All three again, in any order: ready, and what they held is there.
    for node in cluster.nodes.iter_mut() {
        node.remove_flag("--join");
        node.relaunch().expect("relaunch");
    }
    for node in cluster.nodes.iter_mut() {
        node.wait_ready(Duration::from_secs(60)).expect("ready");
    }
    for node in &cluster.nodes {
        let (status, body) = get(node.base(), "/readyz").await.expect("readyz");
        assert_eq!(status, 200, "{body}");
    }
    let r = cluster.nodes[0].download(&http, &lease).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"kept across the outage");
}

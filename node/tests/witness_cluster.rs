//! The witness log on three real nodes: witnessed appends go on through a leader kill -9 and a
//! kill -9 of the whole cluster; every checkpoint any node served verifies with the published
//! keys, no size ever has two roots, each is consistent with every later one (proofs checked here
//! with `relay_raft::tlog`), and no leaf a served checkpoint covered is lost.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{client, Cluster};
use relay_raft::tlog::merkle::{parse_hash, verify_consistency, Hash};
use relay_raft::tlog::verify::{open_checkpoint, Trusted};
use relay_raft::tlog::Verifier;
use relay_testkit::Client;
use serde_json::{json, Value};

/// Every checkpoint seen, by size: its root and note.
type Seen = BTreeMap<u64, (Hash, String)>;

async fn observe(cluster: &Cluster, seen: &mut Seen) {
    for node in cluster.nodes.iter().filter(|n| n.is_running()) {
        let Ok(r) = Client::new(client(), node.base())
            .get("/v1/witness/checkpoint")
            .send()
            .await
        else {
            continue;
        };
        if r.status != 200 {
            continue;
        }
        let note = r.text();
        let mut lines = note.lines();
        let size: u64 = lines.nth(1).unwrap().parse().unwrap();
        let root = parse_hash(lines.next().unwrap()).unwrap();
        if let Some((other, _)) = seen.get(&size) {
            assert_eq!(*other, root, "two roots for size {size}");
        }
        seen.insert(size, (root, note));
    }
}

/// Appends `n` entries through the nodes in turn, retrying through faults; observes as it goes.
async fn append(cluster: &Cluster, baton: &str, from: usize, n: usize, seen: &mut Seen) {
    for i in from..from + n {
        let start = Instant::now();
        loop {
            let node = &cluster.nodes[(i + start.elapsed().as_millis() as usize) % 3];
            if node.is_running() {
                let r = node
                    .client(client())
                    .baton_append(baton, format!("entry {i}"))
                    .idempotency_key(&format!("e{i}"))
                    .send()
                    .await;
                if r.is_ok_and(|r| r.status == 201) {
                    break;
                }
            }
            assert!(start.elapsed() < Duration::from_secs(60), "entry {i} never landed");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Slowly enough that the leader signs checkpoints mid-stream (one a second at most).
        tokio::time::sleep(Duration::from_millis(120)).await;
        if i % 3 == 0 {
            observe(cluster, seen).await;
        }
    }
}

async fn largest_served(cluster: &Cluster, seen: &mut Seen, at_least: u64) -> u64 {
    let start = Instant::now();
    loop {
        observe(cluster, seen).await;
        let top = seen.keys().last().copied().unwrap_or(0);
        if top >= at_least {
            return top;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no checkpoint of {at_least}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn checkpoints_stay_consistent_through_leader_changes_and_a_whole_cluster_kill9() {
    let mut cluster = Cluster::start(3, &[]).await;
    let mut seen = Seen::new();
    let r = cluster.nodes[0]
        .client(client())
        .baton_create(&json!({"preconfig": "ledger"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    let baton = r.json()["baton_id"].as_str().unwrap().to_string();

    append(&cluster, &baton, 0, 15, &mut seen).await;
    // The leader dies mid-stream; a new one signs from there.
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await.unwrap();
    cluster.nodes[leader].kill9();
    append(&cluster, &baton, 15, 15, &mut seen).await;
    cluster.nodes[leader].restart().expect("restart");
    append(&cluster, &baton, 30, 10, &mut seen).await;

    // Everything dies at once, after a checkpoint covering every entry was served.
    let served = largest_served(&cluster, &mut seen, 40).await;
    for node in cluster.nodes.iter_mut() {
        node.kill9();
    }
    for node in cluster.nodes.iter_mut() {
        node.relaunch().expect("relaunch");
    }
    for node in cluster.nodes.iter_mut() {
        node.wait_ready(Duration::from_secs(60)).expect("ready");
    }
    append(&cluster, &baton, 40, 10, &mut seen).await;
    let last = largest_served(&cluster, &mut seen, 50).await;
    assert!(last > served);

    // Every note verifies with the published keys.
    let wk: Value = Client::new(client(), cluster.nodes[0].base())
        .get("/.well-known/relay-witness")
        .send()
        .await
        .unwrap()
        .json();
    let keys: Vec<Trusted> = wk["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| Trusted::from(Verifier::parse(k.as_str().unwrap()).unwrap()))
        .collect();
    for (size, (root, note)) in &seen {
        let (cp, _) = open_checkpoint(note, &keys).unwrap_or_else(|e| panic!("{e}: {note}"));
        assert_eq!((cp.size, cp.root), (*size, *root));
    }
    // Each is consistent with the next (so with every later one), up to the last.
    let sizes: Vec<u64> = seen.keys().copied().filter(|s| *s > 0).collect();
    assert!(sizes.len() >= 4, "{sizes:?}");
    let api = Client::new(client(), cluster.nodes[1].base());
    for w in sizes.windows(2) {
        let c = api
            .get(&format!("/v1/witness/consistency?from={}&to={}", w[0], w[1]))
            .send()
            .await
            .unwrap();
        assert_eq!(c.status, 200, "{}", c.text());
        let hashes: Vec<Hash> = c.json()["hashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| parse_hash(h.as_str().unwrap()).unwrap())
            .collect();
        verify_consistency(w[0], w[1], &hashes, &seen[&w[0]].0, &seen[&w[1]].0)
            .unwrap_or_else(|e| panic!("{} -> {}: {e}", w[0], w[1]));
    }
    // No leaf the checkpoint served before the crash covered is lost: the baton has a record for
    // every entry (the create had none), each proven against the last checkpoint.
    let start = Instant::now();
    loop {
        let r = cluster.nodes[2]
            .client(client())
            .get(&format!("/v1/baton/{baton}/witness"))
            .send()
            .await
            .unwrap();
        let records = r.json()["records"].as_array().unwrap().clone();
        if records.len() == 50 && records.iter().all(|r| r["proof"].is_string()) {
            let seqs: Vec<u64> = records.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
            assert_eq!(seqs, (1..=50).collect::<Vec<_>>());
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{} records", records.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

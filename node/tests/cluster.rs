//! Three real `relay` processes on loopback: replication, forwarding, failover, catch-up by
//! snapshot, and the cluster secret.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{bytes, client, Cluster, Relay, RelayExt, SECRET};

/// A create through a follower is readable through every node at once, and the status shows
/// three voters with their addresses.
#[tokio::test]
async fn create_via_follower_is_readable_everywhere() {
    let cluster = Cluster::start(3, &[]).await;
    let http = client();
    let status = cluster.status(0).await;
    assert_eq!(status["voters"].as_array().unwrap().len(), 3, "{status}");
    assert_eq!(status["members"].as_array().unwrap().len(), 3);
    assert!(status["leader_id"].is_u64());

    let leader = cluster.leader().await;
    let follower = (leader + 1) % 3;
    let body = bytes(2048, 5);
    let receipt = cluster.nodes[follower]
        .store(&http, "via-follower.bin", body.clone(), 600)
        .await;
    let lease_id = receipt["lease_id"].as_str().unwrap();
    for node in &cluster.nodes {
        let resp = node.download(&http, lease_id).await;
        assert_eq!(resp.status(), 200, "download via {}", node.base());
        assert!(resp.bytes().await.unwrap().as_ref() == body.as_slice());
        assert_eq!(node.leases(&http).await["count"], 1, "listing via {}", node.base());
    }
}

/// SIGKILL the leader: a survivor accepts writes again, and a node that was down for 200 writes
/// (more than the log keeps behind a snapshot) catches up by snapshot and serves them all.
#[tokio::test]
async fn failover_and_catch_up_by_snapshot() {
    let mut cluster = Cluster::start(3, &["--snapshot-every-entries", "100"]).await;
    let http = client();
    let leader = cluster.leader().await;
    let stopped_at = cluster.status(leader).await["last_log_index"].as_u64().unwrap();
    cluster.nodes[leader].kill9();
    let survivor = (leader + 1) % 3;
    let started = Instant::now();
    let mut first_ok = None;
    while started.elapsed() < Duration::from_secs(20) {
        let resp = http
            .post(cluster.nodes[survivor].url("/api/store"))
            .header("authorization", cluster.nodes[survivor].auth())
            .header("x-file-name", "after-failover.bin")
            .header("x-size-bytes", "3")
            .header("x-duration-seconds", "600")
            .body("abc")
            .send()
            .await;
        if resp.is_ok_and(|r| r.status() == 201) {
            first_ok = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        first_ok.is_some(),
        "no write accepted within 20 s of killing the leader"
    );

    // The old leader stays down while 200 more writes land.
    for i in 0..200u32 {
        cluster.nodes[survivor]
            .store(&http, &format!("w{i}.bin"), bytes(16, i as u8), 600)
            .await;
    }
    // The live leader's log no longer reaches back to where the dead node stopped: it can only
    // catch up by installing a snapshot.
    cluster
        .wait_for(|s| s["state"] == "Leader" && s["purged_index"].as_u64().is_some_and(|p| p > stopped_at))
        .await;
    cluster.nodes[leader].restart().unwrap();
    let back = &cluster.nodes[leader];
    let total = back.all_leases(&http, 200).await.len();
    assert_eq!(total, 201, "the restarted node serves every write");
    let status = cluster.status(leader).await;
    assert!(
        status["snapshot_index"].as_u64().unwrap_or(0) > stopped_at,
        "no snapshot installed: {status}"
    );
}

/// A node with the wrong secret is refused at join, exits with an error, and never appears in
/// the membership.
#[tokio::test]
async fn wrong_secret_never_joins() {
    let founder = Relay::start(&["--cluster-secret", SECRET]);
    let (status, _) = common::refused_join(
        founder.base(),
        &["--node-id", "2", "--cluster-secret", "not-the-right-secret-000"],
    );
    assert!(!status.success());
    let resp = client()
        .get(founder.url("/cluster/status"))
        .header("x-cluster-secret", SECRET)
        .send()
        .await
        .unwrap();
    let s: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(s["members"].as_array().unwrap().len(), 1, "{s}");
    assert!(founder.logs().contains("wrong cluster secret"));
    let refused = client()
        .get(founder.url("/cluster/status"))
        .header("x-cluster-secret", "nope")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
}

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_relay"))
        .arg("cluster")
        .args(args)
        .output()
        .expect("relay cluster")
}

/// `relay cluster status` works against a live cluster (and refuses a wrong secret), and a
/// leader stopped with SIGTERM exits 0 while the survivors elect a new one and take writes.
#[tokio::test]
async fn cli_status_and_graceful_leader_exit() {
    let mut cluster = Cluster::start(3, &[]).await;
    let out = cli(&["status", "--url", cluster.nodes[0].base(), "--cluster-secret", SECRET]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["voters"].as_array().unwrap().len(), 3);
    let refused = cli(&[
        "status",
        "--url",
        cluster.nodes[0].base(),
        "--cluster-secret",
        "wrong-secret-0000000",
    ]);
    assert!(!refused.status.success());

    let target = cluster.leader().await;
    let exit = cluster.nodes[target].terminate().unwrap();
    assert!(exit.success(), "leader exit {exit:?}");
    assert!(cluster.nodes[target].logs().contains("shutdown: complete"));
    let survivor = (target + 1) % 3;
    let http = client();
    cluster.nodes[survivor]
        .store(&http, "after-handover.bin", bytes(8, 1), 600)
        .await;
}

/// Raft entries are bounded in bytes: 96 concurrent drops of 1 MiB each, riding inline, are
/// group-committed in entries that fit the inter-node message limit (a batch of them all would be
/// 96 MiB, past the 64 MiB limit), so every one commits and every node applies them.
#[tokio::test]
async fn large_inline_bodies_replicate_in_bounded_entries() {
    let cluster = Cluster::start(
        3,
        &[
            "--inline-max-bytes",
            "1048576",
            "--mailbox-max-message-bytes",
            "1100000",
        ],
    )
    .await;
    let http = client();
    let mb = cluster.nodes[0].mailbox(&http, 200 << 20, &[]).await;
    let path = common::api_path(mb["drop_url"].as_str().unwrap());
    let tasks: Vec<_> = (0..96)
        .map(|i| {
            let url = cluster.nodes[i % 3].url(&path);
            let http = http.clone();
            tokio::spawn(async move {
                let resp = http.post(url).body(bytes(1 << 20, i as u8)).send().await.unwrap();
                (resp.status().as_u16(), resp.text().await.unwrap_or_default())
            })
        })
        .collect();
    for t in tasks {
        let (status, text) = t.await.unwrap();
        if status != 201 {
            for n in &cluster.nodes {
                let logs = n.logs();
                eprintln!("--- {}\n{}", n.base(), &logs[logs.len().saturating_sub(6000)..]);
            }
        }
        assert_eq!(status, 201, "{text}");
    }
    let target = cluster.status(cluster.leader().await).await["last_log_index"]
        .as_u64()
        .unwrap();
    for i in 0..3 {
        let mut applied = 0;
        for _ in 0..100 {
            applied = cluster.status(i).await["last_applied"].as_u64().unwrap_or(0);
            if applied >= target {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(applied >= target, "node {i} applied {applied} of {target}");
    }
}

/// Only the founding node mints keys: a member restarted without `--join` (as the README says)
/// prints and registers no new admin or agent key, and the cluster still knows one admin key.
#[tokio::test]
async fn a_restarted_member_mints_no_keys() {
    let mut cluster = Cluster::start(3, &[]).await;
    let http = client();
    let node = &mut cluster.nodes[2];
    assert!(node.terminate().unwrap().success());
    node.restart_without_join();
    assert!(
        !node
            .stdout()
            .iter()
            .any(|l| l.contains("admin key") || l.contains("API key")),
        "{:?}",
        node.stdout()
    );
    assert!(!node.data_dir().join("admin-api-key").exists());
    let admin = cluster.nodes[0].admin_auth();
    let status = http
        .get(cluster.nodes[2].url("/cluster/status"))
        .header("authorization", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(
        status.status(),
        200,
        "the founder's admin key works on the restarted member"
    );
}

//! `relay backup` of a three-node cluster holding leases of every kind, then `relay restore` into
//! a fresh data directory and a new one-node cluster: every live lease reads back byte for byte,
//! a lease that had expired stays gone, and the backup routes are admin-only.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{bytes, client, Cluster, Relay, RelayExt, KEY, SECRET};
use relay_testkit::{Client, Reply};
use serde_json::{json, Value};

const RELAY_BIN: &str = env!("CARGO_BIN_EXE_relay");

async fn send(call: relay_testkit::Call) -> Reply {
    call.send().await.expect("request")
}

fn api(node: &Relay) -> Client {
    node.client(client())
}

fn relay(args: &[&str]) -> std::process::Output {
    Command::new(RELAY_BIN).args(args).output().expect("relay")
}

#[tokio::test]
async fn backup_then_restore_into_a_new_cluster_keeps_every_live_lease() {
    let cluster = Cluster::start(3, &[]).await;
    let leader = cluster.leader().await;
    let node = &cluster.nodes[(leader + 1) % 3];
    let http = client();

    // A big object (in the object store), a small one, one that will have expired, a checkpoint,
    // a mailbox with a message, a baton with content and entries.
    let big = bytes(300_000, 3);
    let small = bytes(100, 4);
    let big_id = node.store(&http, "big.bin", big.clone(), 600).await["lease_id"]
        .as_str()
        .unwrap()
        .to_string();
    let small_id = node.store(&http, "small.bin", small.clone(), 600).await["lease_id"]
        .as_str()
        .unwrap()
        .to_string();
    let brief_id = node.store(&http, "brief.bin", bytes(200_000, 5), 1).await["lease_id"]
        .as_str()
        .unwrap()
        .to_string();
    let state = json!({"step": 7, "notes": "checkpointed"});
    let r = send(api(node).checkpoint_create("wf-backup", 600, None, state.to_string())).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let mailbox = node.mailbox(&http, 1 << 20, &[]).await;
    let mailbox_id = mailbox["lease_id"].as_str().unwrap().to_string();
    let message = bytes(70_000, 6);
    let r = send(api(node).drop_message(mailbox["drop_url"].as_str().unwrap(), message.clone())).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = send(api(node).baton_create(&json!({"preconfig": "ledger"}))).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let baton_id = r.json()["baton_id"].as_str().unwrap().to_string();
    for entry in ["first", "second"] {
        assert_eq!(send(api(node).baton_append(&baton_id, entry)).await.status, 201);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Only an admin may copy the state.
    let anon = http.get(node.url("/cluster/backup")).send().await.unwrap();
    assert_eq!(anon.status(), 401);
    let agent = http
        .get(node.url("/cluster/backup"))
        .header("authorization", format!("Bearer {KEY}"))
        .send()
        .await
        .unwrap();
    assert_eq!(agent.status(), 403);
    // Nor the admin key: the copy holds secrets an admin key may not use.
    let admin_key = cluster.nodes[0].admin_key().expect("the founder's admin key");
    let by_admin = http
        .get(node.url("/cluster/backup"))
        .header("authorization", format!("Bearer {admin_key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_admin.status(), 403);
    let run = relay(&[
        "backup",
        "--url",
        node.base(),
        "--admin-key",
        &admin_key,
        "--out",
        dir_for_admin().as_str(),
    ]);
    assert!(!run.status.success());
    let unreferenced = http
        .get(node.url("/cluster/backup/object?key=probes%2Fx"))
        .header("x-cluster-secret", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(unreferenced.status(), 404);

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("backup");
    let out_s = out.to_str().unwrap();
    let run = relay(&[
        "backup",
        "--url",
        node.base(),
        "--cluster-secret",
        SECRET,
        "--out",
        out_s,
        "--with-objects",
    ]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let manifest: Value = serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        for file in ["", "ledger.snap", "manifest.json"] {
            let mode = std::fs::metadata(out.join(file)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode & 0o077, 0, "{file:?} is readable by others: {mode:o}");
        }
    }
    assert_eq!(manifest["format"], "relay-backup/v1");
    assert_eq!(manifest["objects_copied"], true);
    let objects = manifest["objects"].as_array().unwrap();
    let big_entry = objects
        .iter()
        .find(|o| o["lease_id"] == big_id.as_str())
        .expect("big object listed");
    assert_eq!(big_entry["bytes"], big.len());
    assert_eq!(big_entry["blake3"], blake3::hash(&big).to_hex().as_str());
    // A second backup into the same directory is refused: nothing is overwritten.
    let again = relay(&[
        "backup",
        "--url",
        node.base(),
        "--cluster-secret",
        SECRET,
        "--out",
        out_s,
    ]);
    assert!(!again.status.success());

    // A damaged backup is refused before anything is written.
    let damaged = dir.path().join("damaged");
    copy_dir(&out, &damaged);
    let snap = damaged.join("ledger.snap");
    let mut raw = std::fs::read(&snap).unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 1;
    std::fs::write(&snap, raw).unwrap();
    restore_is_refused(&damaged, &dir.path().join("from-damaged"), "does not match");

    // A backup whose manifest leaves out an object the state references is refused (the manifest
    // carries no hash of its own: the state decides what must be there).
    let partial = dir.path().join("partial");
    copy_dir(&out, &partial);
    let mut m: Value = serde_json::from_slice(&std::fs::read(partial.join("manifest.json")).unwrap()).unwrap();
    m["objects"]
        .as_array_mut()
        .unwrap()
        .retain(|o| o["lease_id"] != big_id.as_str());
    std::fs::write(partial.join("manifest.json"), serde_json::to_vec(&m).unwrap()).unwrap();
    restore_is_refused(&partial, &dir.path().join("from-partial"), "--allow-missing-objects");

    // The old cluster goes away entirely; the new one starts from the backup alone.
    drop(cluster);
    let data = dir.path().join("restored");
    let run = relay(&["restore", "--from", out_s, "--data-dir", data.to_str().unwrap()]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let again = relay(&["restore", "--from", out_s, "--data-dir", data.to_str().unwrap()]);
    assert!(
        !again.status.success(),
        "a second restore into the same directory must be refused"
    );
    let fresh = relay_testkit::Node::builder(RELAY_BIN)
        .dir(&data)
        .args(["--bootstrap-api-key", KEY, "--min-duration-seconds", "1"])
        .start()
        .unwrap();

    for (id, body) in [(&big_id, &big), (&small_id, &small)] {
        let got = fresh.download(&http, id).await;
        assert_eq!(got.status(), 200, "{id}");
        assert_eq!(got.bytes().await.unwrap().as_ref(), body.as_slice(), "{id}");
    }
    let gone = fresh.download(&http, &brief_id).await.status();
    assert!(gone == 404 || gone == 410, "an expired lease came back: {gone}");
    let r = send(api(&fresh).checkpoint_get("wf-backup")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["step"], 7, "{}", r.text());
    let r = send(api(&fresh).mailbox_pickup(&mailbox_id, "msg_1")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body.as_ref(), message.as_slice());
    let r = send(api(&fresh).baton_entries(&baton_id, 0, 10)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.text().matches("second").count() + r.text().matches("c2Vjb25k").count(),
        1,
        "{}",
        r.text()
    );
    // The restored cluster takes new writes on top.
    let after = fresh.store(&http, "after.bin", bytes(10, 1), 600).await;
    assert!(after["lease_id"].is_string());
}

/// `relay restore --from backup --data-dir target` fails saying `why`, and writes no ledger.
fn restore_is_refused(backup: &std::path::Path, target: &std::path::Path, why: &str) {
    let run = relay(&[
        "restore",
        "--from",
        backup.to_str().unwrap(),
        "--data-dir",
        target.to_str().unwrap(),
    ]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains(why), "{run:?}");
    assert!(!target.join("ledger").exists());
}

fn dir_for_admin() -> String {
    std::env::temp_dir()
        .join(format!("relay-backup-admin-{}", std::process::id()))
        .display()
        .to_string()
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

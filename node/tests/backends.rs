//! One suite, two object stores: every test here runs against the local filesystem and against a
//! real S3-protocol server (s3s-fs on loopback), like Garage's `db/test.rs` runs one suite over
//! each database engine. S3-only: the store going down and coming back.

mod common;
#[path = "common/s3.rs"]
mod s3;
#[path = "common/backend.rs"]
#[allow(dead_code)]
#[macro_use]
mod backend;

use backend::Backend;
use common::{bytes, client, Cluster, RelayExt};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use serde_json::Value;

both_backends!(
    small_and_multipart_objects_round_trip,
    checkpoint_and_mailbox_bodies_live_in_the_store,
    damaged_objects_are_never_served,
    orphans_are_swept,
    three_nodes_share_one_store,
);

/// Small (one PUT) and large (multipart) objects download intact, ranges work, and a delete
/// removes the bytes.
async fn small_and_multipart_objects_round_trip(backend: Backend) {
    let node = backend.node(&[]);
    let http = client();
    let small = bytes(1000, 1);
    let large = bytes(20 << 20, 2); // over the 8 MiB single-PUT limit
    let a = node.store(&http, "small.bin", small.clone(), 600).await;
    let b = node.store(&http, "large.bin", large.clone(), 600).await;
    backend.expect_objects(2, "after two stores").await;
    for (receipt, body) in [(&a, &small), (&b, &large)] {
        let resp = node.download(&http, receipt["lease_id"].as_str().unwrap()).await;
        assert_eq!(resp.status(), 200);
        assert!(resp.bytes().await.unwrap().as_ref() == body.as_slice());
    }
    let ranged = http
        .get(node.url(&format!("/api/download/{}", b["lease_id"].as_str().unwrap())))
        .header("authorization", node.auth())
        .header("range", "bytes=10485760-10485769")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), 206);
    assert_eq!(ranged.bytes().await.unwrap().as_ref(), &large[10485760..10485770]);
    let del = http
        .delete(node.url(&format!("/api/store/{}", b["lease_id"].as_str().unwrap())))
        .header("authorization", node.auth())
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 200);
    backend.expect_objects(1, "after a delete").await;
}

/// Large checkpoint states and mailbox messages go to the store and leave it when superseded,
/// picked up or expired.
async fn checkpoint_and_mailbox_bodies_live_in_the_store(backend: Backend) {
    let node = backend.node(&["--inline-max-bytes", "64"]);
    let http = client();
    let state = |n: u32| format!("{{\"n\":{n},\"pad\":\"{}\"}}", "p".repeat(300));
    let resp = http
        .post(node.url("/api/checkpoint"))
        .header("authorization", node.auth())
        .header("x-workflow-id", "wf")
        .header("x-duration-seconds", "600")
        .body(state(0))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    backend.expect_objects(1, "checkpoint v1").await;
    let put = http
        .put(node.url("/api/checkpoint/wf"))
        .header("authorization", node.auth())
        .body(state(1))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    backend.expect_objects(1, "checkpoint v2 replaced v1").await;
    let got = http
        .get(node.url("/api/checkpoint/wf"))
        .header("authorization", node.auth())
        .send()
        .await
        .unwrap();
    assert_eq!(got.text().await.unwrap(), state(1));

    let mb: Value = http
        .post(node.url("/api/mailbox"))
        .header("authorization", node.auth())
        .header("x-capacity-bytes", "100000")
        .header("x-duration-seconds", "600")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let drop = http
        .post(mb["drop_url"].as_str().unwrap())
        .body(state(9))
        .send()
        .await
        .unwrap();
    assert_eq!(drop.status(), 201);
    backend.expect_objects(2, "a message in the store").await;
    let picked = http
        .get(format!("{}/msg_1", mb["poll_url"].as_str().unwrap()))
        .header("authorization", node.auth())
        .send()
        .await
        .unwrap();
    assert_eq!(picked.text().await.unwrap(), state(9));
    backend.expect_objects(1, "picked-up message deleted").await;
    let consumed = http
        .get(node.url("/api/checkpoint/wf?consume=true"))
        .header("authorization", node.auth())
        .send()
        .await
        .unwrap();
    assert_eq!(consumed.text().await.unwrap(), state(1));
    backend.expect_objects(0, "consumed checkpoint deleted").await;
}

/// An object changed behind Relay's back is refused (502, counted), never served as good data;
/// a large one is cut short before its last chunk.
async fn damaged_objects_are_never_served(backend: Backend) {
    let node = backend.node(&[]);
    let http = client();
    let small = node.store(&http, "s.bin", bytes(4096, 3), 600).await;
    let large = node.store(&http, "l.bin", bytes(3 << 20, 4), 600).await;
    let store = backend.store();
    for (receipt, len) in [(&small, 4096usize), (&large, 3 << 20)] {
        let key = Path::from(receipt["object_key"].as_str().unwrap());
        store.put(&key, PutPayload::from(vec![0u8; len])).await.unwrap();
    }
    let resp = node.download(&http, small["lease_id"].as_str().unwrap()).await;
    assert_eq!(resp.status(), 502);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"]["code"], "integrity_error");
    let resp = node.download(&http, large["lease_id"].as_str().unwrap()).await;
    let body = resp.bytes().await;
    assert!(
        body.map_or(true, |b| b.len() < 3 << 20),
        "a damaged large object was served whole"
    );
    let metrics = http
        .get(node.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("relay_integrity_failures_total 2")),
        "integrity failures not counted:\n{metrics}"
    );
}

/// Objects nothing references are deleted once old enough; referenced ones stay.
async fn orphans_are_swept(backend: Backend) {
    let store = backend.store();
    store
        .put(&Path::from("blobs/orphan-1"), PutPayload::from(vec![1u8; 10]))
        .await
        .unwrap();
    let node = backend.node(&["--orphan-sweep-interval-seconds", "1", "--orphan-min-age-seconds", "1"]);
    let http = client();
    let kept = node.store(&http, "kept.bin", bytes(100, 5), 600).await;
    backend.expect_objects(1, "orphan swept, lease kept").await;
    assert_eq!(
        backend.keys().await,
        vec![kept["object_key"].as_str().unwrap().to_string()]
    );
    let resp = node.download(&http, kept["lease_id"].as_str().unwrap()).await;
    assert_eq!(resp.status(), 200);
}

/// A three-node cluster shares one store: a lease written through one node downloads through
/// every other.
async fn three_nodes_share_one_store(backend: Backend) {
    let url = backend.objects_url();
    let env = backend.env();
    let holder = tempfile::tempdir().unwrap();
    let cluster = Cluster::start_with_store(3, &[], holder, &url, &env).await;
    let http = client();
    let body = bytes(9 << 20, 6);
    let receipt = cluster.nodes[1].store(&http, "shared.bin", body.clone(), 600).await;
    for node in &cluster.nodes {
        let resp = node.download(&http, receipt["lease_id"].as_str().unwrap()).await;
        assert_eq!(resp.status(), 200, "via {}", node.base());
        assert!(resp.bytes().await.unwrap().as_ref() == body.as_slice());
    }
}

/// The store goes down: creates and downloads answer 503 with Retry-After and charge nothing;
/// a delete still succeeds in the ledger and the GC worker deletes the bytes once the store is
/// back, and service resumes by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_outage_is_503_and_recovers() {
    let mut backend = Backend::s3();
    let node = backend.node(&[]);
    let http = client();
    let kept = node.store(&http, "kept.bin", bytes(2048, 7), 600).await;
    let doomed = node.store(&http, "doomed.bin", bytes(2048, 8), 600).await;
    let Backend::S3(server) = &mut backend else {
        unreachable!()
    };
    server.stop();

    let create = http
        .post(node.url("/api/store"))
        .header("authorization", node.auth())
        .header("x-file-name", "while-down.bin")
        .header("x-size-bytes", "5")
        .header("x-duration-seconds", "600")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(create.status(), 503);
    assert_eq!(create.headers()["retry-after"], "1");
    let download = node.download(&http, kept["lease_id"].as_str().unwrap()).await;
    assert_eq!(download.status(), 503);
    let del = http
        .delete(node.url(&format!("/api/store/{}", doomed["lease_id"].as_str().unwrap())))
        .header("authorization", node.auth())
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 200, "a delete needs only the ledger");
    assert_eq!(node.leases(&http).await["count"], 2, "a failed create left a lease");

    server.resume();
    backend
        .expect_objects(1, "GC retried the delete after the outage")
        .await;
    let download = node.download(&http, kept["lease_id"].as_str().unwrap()).await;
    assert_eq!(download.status(), 200);
    node.store(&http, "after.bin", bytes(10, 9), 600).await;
}

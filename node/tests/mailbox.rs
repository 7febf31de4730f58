//! Mailbox leases on real processes: drops through every node, polling and pickup through
//! others, limits, signed webhooks that survive a leader kill, and the SSRF guard.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use common::{client, Cluster, Relay, RelayExt};
use serde_json::Value;

async fn create(node: &Relay, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = client()
        .post(node.url("/api/mailbox"))
        .header("authorization", node.auth())
        .header("x-duration-seconds", "600");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("create mailbox")
}

async fn created(node: &Relay, headers: &[(&str, &str)]) -> Value {
    let resp = create(node, headers).await;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    body
}

/// The drop URL as seen through another node (same path, that node's address).
fn via(node: &Relay, url: &str) -> String {
    node.url(&common::api_path(url))
}

async fn drop_to(url: &str, body: &[u8]) -> reqwest::Response {
    client()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .expect("drop")
}

async fn code(resp: reqwest::Response) -> String {
    resp.json::<Value>().await.unwrap()["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Drops through all three nodes, poll and pickup through others, limits answered 413/429,
/// no-auth poll 401, and delete removes one message or the whole mailbox.
#[tokio::test]
async fn drops_polls_and_limits_across_nodes() {
    let cluster = Cluster::start(3, &["--inline-max-bytes", "64"]).await;
    let http = client();
    let n = &cluster.nodes;
    let mb = created(
        &n[0],
        &[
            ("x-capacity-bytes", "1000"),
            ("x-max-message-bytes", "300"),
            ("x-max-messages", "5"),
        ],
    )
    .await;
    assert!(mb["webhook_secret"].is_null());
    let drop_url = mb["drop_url"].as_str().unwrap();
    let poll_url = mb["poll_url"].as_str().unwrap();
    let big = format!("{{\"pad\":\"{}\"}}", "z".repeat(200)); // object-backed (over 64 bytes)
    let bodies = [r#"{"i":0}"#.to_string(), r#"{"i":1}"#.to_string(), big.clone()];
    for (i, body) in bodies.iter().enumerate() {
        let resp = drop_to(&via(&n[i], drop_url), body.as_bytes()).await;
        assert_eq!(resp.status(), 201, "drop via node {i}");
    }
    let poll = |node: usize| {
        http.get(via(&n[node], poll_url))
            .header("authorization", n[node].auth())
            .send()
    };
    let listed: Value = poll(1).await.unwrap().json().await.unwrap();
    let ids: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["msg_1", "msg_2", "msg_3"], "{listed}");
    assert_eq!(listed["items"][2]["size_bytes"], big.len());

    // Pickup through a third node returns the bytes and removes the message.
    for (id, body) in [("msg_3", &big), ("msg_1", &bodies[0])] {
        let resp = http
            .get(via(&n[2], &format!("{poll_url}/{id}")))
            .header("authorization", n[2].auth())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "pickup {id}");
        assert_eq!(resp.headers()["content-type"], "application/json");
        assert_eq!(resp.text().await.unwrap(), *body);
        let again = http
            .get(via(&n[0], &format!("{poll_url}/{id}")))
            .header("authorization", n[0].auth())
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 404, "second pickup of {id}");
    }
    let listed: Value = poll(0).await.unwrap().json().await.unwrap();
    assert_eq!(listed["count"], 1);

    // Limits: one message too big (413), then the count limit (429).
    let resp = drop_to(drop_url, &vec![b'1'; 301]).await;
    assert_eq!(resp.status(), 413);
    assert_eq!(code(resp).await, "payload_too_large");
    for _ in 0..4 {
        assert_eq!(drop_to(&via(&n[1], drop_url), b"[]").await.status(), 201);
    }
    let resp = drop_to(drop_url, b"[]").await;
    assert_eq!(resp.status(), 429);
    assert_eq!(code(resp).await, "mailbox_full");
    // Capacity: a second mailbox of 10 bytes takes one 8-byte message, not two.
    let small = created(&n[1], &[("x-capacity-bytes", "10")]).await;
    let small_drop = small["drop_url"].as_str().unwrap();
    assert_eq!(drop_to(small_drop, b"12345678").await.status(), 201);
    let resp = drop_to(small_drop, b"12345678").await;
    assert_eq!(resp.status(), 429);
    assert_eq!(code(resp).await, "mailbox_full");

    // Auth: polling needs the owner's key; a wrong drop token is 404.
    let resp = http.get(via(&n[0], poll_url)).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let bad = drop_url.rsplit_once('/').unwrap().0.to_string() + "/" + &"A".repeat(43);
    assert_eq!(drop_to(&bad, b"{}").await.status(), 404);
    assert_eq!(drop_to(&format!("{bad}x"), b"{}").await.status(), 404);

    // Delete one message, then the mailbox: drops and polls are 410 afterwards.
    let del = http
        .delete(format!("{poll_url}/msg_2"))
        .header("authorization", n[0].auth())
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 200);
    let lease_id = mb["lease_id"].as_str().unwrap();
    let del = http
        .delete(n[2].url(&format!("/api/mailbox/{lease_id}")))
        .header("authorization", n[2].auth())
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 200);
    assert_eq!(drop_to(drop_url, b"{}").await.status(), 410);
    assert_eq!(poll(1).await.unwrap().status(), 410);
}

/// What the local webhook receiver saw, and whether it answers 2xx yet.
#[derive(Default)]
struct Receiver {
    seen: Mutex<Vec<(HeaderMap, Vec<u8>)>>,
    accepting: std::sync::atomic::AtomicBool,
}

async fn start_receiver(receiver: Arc<Receiver>) -> String {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let receiver = receiver.clone();
            async move {
                if !receiver.accepting.load(std::sync::atomic::Ordering::SeqCst) {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                receiver.seen.lock().unwrap().push((headers, body.to_vec()));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/hook")
}

/// Every drop is announced with a valid Standard Webhooks signature; deliveries still queued
/// when the leader is killed are made by the next leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_and_survive_failover() {
    let receiver = Arc::new(Receiver::default());
    let hook_url = start_receiver(receiver.clone()).await;
    let mut cluster = Cluster::start(3, &["--webhook-allow-cidr", "127.0.0.0/8"]).await;
    let mb = created(
        &cluster.nodes[0],
        &[("x-capacity-bytes", "100000"), ("x-webhook-url", hook_url.as_str())],
    )
    .await;
    let secret = mb["webhook_secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    let drop_url = mb["drop_url"].as_str().unwrap().to_string();

    // The receiver is down: deliveries pile up in the replicated queue.
    for i in 0..6 {
        let node = &cluster.nodes[i % 3];
        let resp = drop_to(&via(node, &drop_url), format!("{{\"n\":{i}}}").as_bytes()).await;
        assert_eq!(resp.status(), 201);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let leader = cluster.leader().await;
    cluster.nodes[leader].kill9();
    receiver.accepting.store(true, std::sync::atomic::Ordering::SeqCst);

    let started = Instant::now();
    loop {
        let ids: std::collections::BTreeSet<String> = receiver
            .seen
            .lock()
            .unwrap()
            .iter()
            .map(|(h, _)| h["webhook-id"].to_str().unwrap().to_string())
            .collect();
        if ids.len() == 6 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "only {} of 6 webhooks delivered after failover",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let key = relay_api::webhook::secret_key(&secret).unwrap();
    let mut seen_n = std::collections::BTreeSet::new();
    for (headers, body) in receiver.seen.lock().unwrap().iter() {
        let id = headers["webhook-id"].to_str().unwrap();
        let ts: u64 = headers["webhook-timestamp"].to_str().unwrap().parse().unwrap();
        let expected = relay_api::webhook::sign(&key, id, ts, body);
        assert_eq!(
            headers["webhook-signature"].to_str().unwrap(),
            expected,
            "signature of {id}"
        );
        let payload: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(payload["type"], "mailbox.message");
        assert_eq!(payload["lease_id"], mb["lease_id"]);
        seen_n.insert(payload["data"]["n"].as_u64().unwrap());
    }
    assert_eq!(seen_n.len(), 6);
}

/// Webhooks to internal addresses are refused at create unless allowed.
#[tokio::test]
async fn webhook_targets_are_guarded() {
    let node = Relay::start(&[]);
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://10.0.0.1/hook",
        "ftp://example.com/hook",
        "not a url",
    ] {
        let resp = create(&node, &[("x-capacity-bytes", "100"), ("x-webhook-url", url)]).await;
        assert_eq!(resp.status(), 422, "{url}");
        assert_eq!(code(resp).await, "invalid_value", "{url}");
    }
    for (headers, status) in [
        (vec![("x-capacity-bytes", "0")], 422),
        (vec![("x-capacity-bytes", "abc")], 400),
        (vec![("x-capacity-bytes", "100"), ("x-max-message-bytes", "101")], 422),
        (vec![("x-capacity-bytes", "100"), ("x-max-messages", "0")], 422),
        (vec![("x-capacity-bytes", "100"), ("x-keep-on-read", "maybe")], 400),
        (
            vec![("x-capacity-bytes", "100"), ("x-webhook-secret", "whsec_AAAA")],
            400,
        ),
        (vec![("x-capacity-bytes", "99999999999999")], 413),
        (vec![], 400),
    ] {
        let resp = create(&node, &headers).await;
        assert_eq!(resp.status(), status, "{headers:?}");
    }
    let leases: Value = node.leases(&client()).await;
    assert_eq!(leases["count"], 0, "a refused create made a lease");

    // keep-on-read: a pickup leaves the message queued.
    let mb = created(&node, &[("x-capacity-bytes", "100"), ("x-keep-on-read", "true")]).await;
    assert_eq!(drop_to(mb["drop_url"].as_str().unwrap(), b"{}").await.status(), 201);
    for _ in 0..2 {
        let resp = client()
            .get(format!("{}/msg_1", mb["poll_url"].as_str().unwrap()))
            .header("authorization", node.auth())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
}

/// A healthy receiver hears of each drop once: many concurrent drops, each webhook-id seen a
/// single time (the worker's queue scans must not pick a delivery recorded since they began).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_drop_is_announced_once() {
    let receiver = Arc::new(Receiver::default());
    receiver.accepting.store(true, std::sync::atomic::Ordering::SeqCst);
    let hook_url = start_receiver(receiver.clone()).await;
    let relay = Relay::start(&["--webhook-allow-cidr", "127.0.0.0/8"]);
    let mb = created(
        &relay,
        &[
            ("x-capacity-bytes", "10000000"),
            ("x-max-messages", "1000"),
            ("x-webhook-url", hook_url.as_str()),
        ],
    )
    .await;
    let drop_url = mb["drop_url"].as_str().unwrap().to_string();
    const DROPS: usize = 1000;
    let tasks: Vec<_> = (0..16)
        .map(|part| {
            let url = drop_url.clone();
            tokio::spawn(async move {
                for i in (part..DROPS).step_by(16) {
                    let r = drop_to(&url, format!("{{\"n\":{i}}}").as_bytes()).await;
                    assert_eq!(r.status(), 201);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let started = Instant::now();
    while receiver.seen.lock().unwrap().len() < DROPS {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{} of {DROPS} webhooks delivered",
            receiver.seen.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Room for a late duplicate to arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = receiver.seen.lock().unwrap();
    let ids: std::collections::BTreeSet<&str> = seen.iter().map(|(h, _)| h["webhook-id"].to_str().unwrap()).collect();
    assert_eq!(ids.len(), DROPS);
    assert_eq!(seen.len(), DROPS, "{} deliveries for {DROPS} drops", seen.len());
}

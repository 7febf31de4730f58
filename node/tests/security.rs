//! An attacker's view of one node: the agents' key administers nothing, joins must prove
//! themselves, anonymous requests to invented tokens cost nothing, stalled connections are cut
//! off, idempotency keys are bound to their request, and labels and queues stay bounded.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{bytes, client, Relay, RelayExt, SECRET};
use serde_json::{json, Value};

const ADMIN_ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/cluster/status", ""),
    ("GET", "/cluster/backup", ""),
    ("GET", "/cluster/backup/object?key=blobs%2Fx", ""),
    (
        "POST",
        "/cluster/join",
        r#"{"node_id":99,"raft_addr":"127.0.0.1:1","http_addr":"http://127.0.0.1:1"}"#,
    ),
    ("POST", "/cluster/promote", r#"{"node_id":1}"#),
    ("POST", "/cluster/remove", r#"{"node_id":1}"#),
];

async fn send(
    http: &reqwest::Client,
    relay: &Relay,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let mut req = http.request(method.parse().unwrap(), relay.url(path));
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = req.body(body.to_string()).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The key printed for agents administers nothing: every admin route answers it 403 and answers
/// nobody 401; the admin key (a different key, printed with its own label) and the cluster secret
/// work, and the admin key acts for no account.
#[tokio::test]
async fn the_agents_key_is_not_the_admin_key() {
    let relay = Relay::start(&["--cluster-secret", SECRET]);
    let http = client();
    let admin = relay.admin_key().unwrap();
    assert!(admin.starts_with("rs_admin_") && admin != relay.key(), "{admin}");
    for (method, path, body) in ADMIN_ROUTES {
        let (status, json) = send(&http, &relay, method, path, Some(&relay.auth()), body).await;
        assert_eq!(
            (status, json["error"]["code"].as_str()),
            (403, Some("forbidden")),
            "{method} {path}: {json}"
        );
        let (status, _) = send(&http, &relay, method, path, None, body).await;
        assert_eq!(status, 401, "{method} {path} without credentials");
    }
    let status = relay.cluster_status(&http).await;
    assert_eq!(status["voters"], json!([1]), "nothing was changed: {status}");
    let (code, json) = send(&http, &relay, "GET", "/api/leases", Some(&relay.admin_auth()), "").await;
    assert_eq!((code, json["error"]["code"].as_str()), (403, Some("forbidden")));
    let secret_ok = http
        .get(relay.url("/cluster/status"))
        .header("x-cluster-secret", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(secret_ok.status(), 200);
    relay.store(&http, "still.txt", bytes(10, 1), 60).await;
}

/// A listener that accepts connections and answers them with junk, as any non-Relay service
/// would.
fn junk_listener() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        }
    });
    addr
}

/// A join names an address that must prove it is a Relay node holding this cluster's secret
/// before it becomes even a learner: junk, silence and a node of another cluster are all refused,
/// and the one-node cluster keeps serving, also after a restart.
#[tokio::test]
async fn joins_must_prove_themselves() {
    let mut relay = Relay::start(&["--cluster-secret", SECRET]);
    let other = Relay::start(&["--cluster-secret", "another-cluster-secret-0123"]);
    let http = client();
    let silent = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap().to_string();
        drop(l);
        a
    };
    for (what, raft_addr) in [
        ("a junk service", junk_listener()),
        ("a closed port", silent),
        ("a node of another cluster", other.raft_addr().to_string()),
    ] {
        let body = json!({"node_id": 2, "raft_addr": raft_addr, "http_addr": "http://127.0.0.1:1"});
        let (status, json) = send(
            &http,
            &relay,
            "POST",
            "/cluster/join",
            Some(&relay.admin_auth()),
            &body.to_string(),
        )
        .await;
        assert_eq!(
            (status, json["error"]["code"].as_str()),
            (422, Some("join_refused")),
            "{what}: {json}"
        );
        let s = relay.cluster_status(&http).await;
        assert_eq!(
            (s["voters"].clone(), s["learners"].clone()),
            (json!([1]), json!([])),
            "{what}: {s}"
        );
        relay.store(&http, "serving.txt", bytes(10, 2), 60).await;
    }
    assert!(relay.terminate().unwrap().success());
    relay.restart().unwrap();
    relay.store(&http, "after-restart.txt", bytes(10, 3), 60).await;
}

/// A node whose object store is not the cluster's is refused at join (it could never serve the
/// others' bytes), with a message that says so; the cluster is unchanged.
#[tokio::test]
async fn a_node_with_its_own_object_store_is_refused() {
    let founder = Relay::start(&["--node-id", "1", "--cluster-secret", SECRET]);
    // Without --objects, the new node keeps bytes in its own data dir.
    let (status, stderr) = common::refused_join(founder.base(), &["--node-id", "2", "--cluster-secret", SECRET]);
    assert!(!status.success());
    assert!(stderr.contains("object store"), "{stderr}");
    let s = founder.cluster_status(&client()).await;
    assert_eq!(
        (s["voters"].clone(), s["learners"].clone()),
        (json!([1]), json!([])),
        "{s}"
    );
}

/// 200 anonymous drops of 60 and 100 KiB to invented tokens are all 404 and leave the Raft log,
/// the ledger's directory and the object store as they were.
#[tokio::test]
async fn drops_to_invented_tokens_cost_nothing() {
    let relay = Relay::start(&[]);
    let http = client();
    let before = relay.cluster_status(&http).await["last_log_index"].as_u64().unwrap();
    let ledger_before = common::bytes_under(&relay.data_dir().join("ledger"));
    let mut tasks = Vec::new();
    for i in 0..200u32 {
        // Half under the inline limit, half over it (those used to go to the object store first).
        let body = bytes(if i % 2 == 0 { 60 << 10 } else { 100 << 10 }, 9);
        let http = http.clone();
        let token: String = blake3::hash(&i.to_le_bytes()).to_hex()[..43].to_string();
        let url = relay.url(&format!("/api/mailbox/drop/{token}"));
        tasks.push(tokio::spawn(async move {
            let resp = http.post(url).body(body).send().await.unwrap();
            resp.status().as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 404);
    }
    let after = relay.cluster_status(&http).await["last_log_index"].as_u64().unwrap();
    assert!(after <= before + 2, "the log grew from {before} to {after}");
    let ledger_after = common::bytes_under(&relay.data_dir().join("ledger"));
    assert!(
        ledger_after < ledger_before + (1 << 20),
        "the ledger grew from {ledger_before} to {ledger_after} bytes"
    );
    assert!(common::files_under(&relay.objects_dir()).is_empty());
}

/// Opens a connection and sends `head` (and nothing more).
fn stalled(relay: &Relay, head: &str) -> TcpStream {
    let mut s = TcpStream::connect(relay.http_addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s
}

/// Reads what the server sends until it closes; the answer's status (0 if none) and when.
fn outcome(mut s: TcpStream, started: Instant) -> (u16, Duration) {
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|t| t.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, started.elapsed())
}

async fn mailbox(relay: &Relay, http: &reqwest::Client, extra: &[(&str, &str)]) -> Value {
    relay.mailbox(http, 1 << 20, extra).await
}

/// Connections that stall (half a request head, a body that stops) are closed by the timeouts
/// while every other request keeps flowing; stalled uploads give their slots back.
#[tokio::test]
async fn stalled_connections_are_cut_off() {
    let relay = Relay::start(&[
        "--header-read-timeout-seconds",
        "2",
        "--body-idle-timeout-seconds",
        "2",
        "--max-concurrent-uploads",
        "4",
        // One account streams them all here: the node-wide slots are what is under test.
        "--max-uploads-per-client",
        "16",
    ]);
    let http = client();
    let mb = mailbox(&relay, &http, &[]).await;
    let drop_url = mb["drop_url"].as_str().unwrap().to_string();
    let drop_path = common::api_path(&drop_url);
    let started = Instant::now();
    // Half a head; drops whose body stops after one byte; uploads likewise.
    let half_head = stalled(&relay, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    let drops: Vec<TcpStream> = (0..40)
        .map(|_| {
            stalled(
                &relay,
                &format!("POST {drop_path} HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nA"),
            )
        })
        .collect();
    let uploads: Vec<TcpStream> = (0..6)
        .map(|_| {
            stalled(
                &relay,
                &format!(
                    "POST /api/store HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nX-File-Name: s.bin\r\n\
                     X-Size-Bytes: 1000\r\nX-Duration-Seconds: 60\r\nContent-Length: 1000\r\n\r\nA",
                    relay.auth()
                ),
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Meanwhile, others are served at once.
    let t = Instant::now();
    let ok = http.post(&drop_url).body("hello").send().await.unwrap();
    assert_eq!(ok.status(), 201);
    assert!(t.elapsed() < Duration::from_secs(2), "a drop waited {:?}", t.elapsed());
    // An upload finds a slot once the stalled ones are cut off.
    let receipt = relay.store(&http, "after.bin", bytes(1000, 5), 60).await;
    assert!(receipt["lease_id"].is_string());
    let (status, took) = tokio::task::spawn_blocking(move || outcome(half_head, started))
        .await
        .unwrap();
    assert!(status == 0 || status == 408, "half a head answered {status}");
    assert!(
        took < Duration::from_secs(8),
        "half a head held its connection for {took:?}"
    );
    for s in drops.into_iter().chain(uploads) {
        let (status, took) = tokio::task::spawn_blocking(move || outcome(s, started)).await.unwrap();
        assert_eq!(status, 408, "a stalled body answered {status}");
        assert!(
            took < Duration::from_secs(10),
            "a stalled body held its connection for {took:?}"
        );
    }
    // Headers past the cap are refused, not buffered.
    let big = stalled(
        &relay,
        &format!(
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
            "a".repeat(64 << 10)
        ),
    );
    let (status, _) = tokio::task::spawn_blocking(move || outcome(big, Instant::now()))
        .await
        .unwrap();
    assert_eq!(status, 431);
}

async fn store_keyed(relay: &Relay, http: &reqwest::Client, key: &str, body: Vec<u8>) -> (u16, Value) {
    let resp = http
        .post(relay.url("/api/store"))
        .header("authorization", relay.auth())
        .header("idempotency-key", key)
        .header("x-file-name", "f.bin")
        .header("x-size-bytes", body.len().to_string())
        .header("x-duration-seconds", "600")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

/// An Idempotency-Key is bound to its request: the same key with another body is 422 (nothing
/// stored, nothing charged), with the same request the first receipt; the same key on another
/// route is another request; a duplicate still in flight is 409.
#[tokio::test]
async fn idempotency_keys_are_bound_to_their_request() {
    let relay = Relay::start(&[]);
    let http = client();
    let a = bytes(1000, 1);
    let (status, first) = store_keyed(&relay, &http, "key-1", a.clone()).await;
    assert_eq!(status, 201);
    let (status, json) = store_keyed(&relay, &http, "key-1", bytes(1000, 2)).await;
    assert_eq!(
        (status, json["error"]["code"].as_str()),
        (422, Some("idempotency_key_reused")),
        "{json}"
    );
    let (status, again) = store_keyed(&relay, &http, "key-1", a.clone()).await;
    assert_eq!((status, &again["lease_id"]), (201, &first["lease_id"]));
    let lease_id = first["lease_id"].as_str().unwrap();
    assert_eq!(relay.download(&http, lease_id).await.bytes().await.unwrap().to_vec(), a);
    assert_eq!(relay.leases(&http).await["count"], 1);
    assert_eq!(
        common::files_under(&relay.objects_dir()).len(),
        1,
        "spare uploads are removed"
    );

    // The same key on another route names another request: no 500, no leak.
    let resp = http
        .post(relay.url(&format!("/api/handoff/{lease_id}")))
        .header("authorization", relay.auth())
        .header("idempotency-key", "key-1")
        .json(&json!({"max_claims": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);

    // Mailbox and checkpoint creates: another request under the same key is refused.
    let mb = mailbox(&relay, &http, &[("idempotency-key", "key-2")]).await;
    let resp = http
        .post(relay.url("/api/mailbox"))
        .header("authorization", relay.auth())
        .header("idempotency-key", "key-2")
        .header("x-capacity-bytes", "2048")
        .header("x-duration-seconds", "600")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    assert!(mb["lease_id"].is_string());
    let checkpoint = |state: &'static str| {
        http.post(relay.url("/api/checkpoint"))
            .header("authorization", relay.auth())
            .header("idempotency-key", "key-3")
            .header("x-workflow-id", "wf-1")
            .header("x-duration-seconds", "600")
            .body(state)
    };
    assert_eq!(checkpoint(r#"{"a":1}"#).send().await.unwrap().status(), 201);
    assert_eq!(checkpoint(r#"{"a":2}"#).send().await.unwrap().status(), 422);
    assert_eq!(checkpoint(r#"{"a":1}"#).send().await.unwrap().status(), 201);

    // A duplicate of a request still in flight.
    let slow = stalled(
        &relay,
        &format!(
            "POST /api/store HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nIdempotency-Key: key-4\r\n\
             X-File-Name: s.bin\r\nX-Size-Bytes: 10\r\nX-Duration-Seconds: 60\r\nContent-Length: 10\r\n\r\nA",
            relay.auth()
        ),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, json) = store_keyed(&relay, &http, "key-4", bytes(10, 3)).await;
    assert_eq!(
        (status, json["error"]["code"].as_str()),
        (409, Some("idempotency_key_in_flight"))
    );
    drop(slow);
}

async fn claim(http: &reqwest::Client, url: &str, key: Option<&str>) -> (u16, Option<String>, Option<String>, String) {
    let mut req = http.get(url);
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    let resp = req.send().await.unwrap();
    let header = |n: &str| resp.headers().get(n).map(|v| v.to_str().unwrap().to_string());
    let (version, remaining) = (header("x-checkpoint-version"), header("x-claims-remaining"));
    (resp.status().as_u16(), version, remaining, resp.text().await.unwrap())
}

/// A replayed claim is the same claim: counted once, serving what the first served while that
/// exists, else 410, never newer content; a lost answer to the final claim can be fetched again.
#[tokio::test]
async fn replayed_claims_serve_what_the_first_served() {
    let relay = Relay::start(&[]);
    let http = client();
    let created = http
        .post(relay.url("/api/checkpoint"))
        .header("authorization", relay.auth())
        .header("x-workflow-id", "wf")
        .header("x-duration-seconds", "600")
        .body(r#"{"v":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let lease_id = created.json::<Value>().await.unwrap()["lease_id"]
        .as_str()
        .unwrap()
        .to_string();
    let handoff: Value = http
        .post(relay.url(&format!("/api/handoff/{lease_id}")))
        .header("authorization", relay.auth())
        .json(&json!({"max_claims": 2}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = handoff["claim_url"].as_str().unwrap().to_string();

    // Five claims with one key: one claim, version 1 every time.
    for _ in 0..5 {
        let (status, version, remaining, body) = claim(&http, &url, Some("c-1")).await;
        assert_eq!(
            (status, version.as_deref(), remaining.as_deref()),
            (200, Some("1"), Some("1"))
        );
        assert_eq!(body, r#"{"v":1}"#);
    }
    let write = |v: u32| {
        http.put(relay.url("/api/checkpoint/wf"))
            .header("authorization", relay.auth())
            .body(format!(r#"{{"v":{v}}}"#))
            .send()
    };
    assert_eq!(write(2).await.unwrap().status(), 200);
    // Version 1 is gone: the replay never serves the newer version.
    let (status, ..) = claim(&http, &url, Some("c-1")).await;
    assert_eq!(status, 410);
    // The second (final) claim gets version 2; its lost answer can be fetched again.
    let (status, version, remaining, _) = claim(&http, &url, Some("c-2")).await;
    assert_eq!(
        (status, version.as_deref(), remaining.as_deref()),
        (200, Some("2"), Some("0"))
    );
    let (status, version, remaining, _) = claim(&http, &url, Some("c-2")).await;
    assert_eq!(
        (status, version.as_deref(), remaining.as_deref()),
        (200, Some("2"), Some("0"))
    );
    // Without a key, the token is spent.
    assert_eq!(claim(&http, &url, None).await.0, 410);
    let leases = relay.leases(&http).await;
    assert_eq!(leases["leases"][0]["access_count"], 2, "{leases}");

    // Revoking a token ends its replays too.
    let h: Value = http
        .post(relay.url(&format!("/api/handoff/{lease_id}")))
        .header("authorization", relay.auth())
        .json(&json!({"max_claims": 3}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = h["claim_url"].as_str().unwrap().to_string();
    assert_eq!(claim(&http, &url, Some("r-1")).await.0, 200);
    let revoked = http
        .delete(relay.url(&format!("/api/handoffs/{}", h["handoff_id"].as_str().unwrap())))
        .header("authorization", relay.auth())
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(claim(&http, &url, Some("r-1")).await.0, 404);
}

/// Invented methods all count under one `other` label, so /metrics stays bounded.
#[tokio::test]
async fn metrics_labels_stay_bounded() {
    let relay = Relay::start(&[]);
    let http = client();
    for i in 0..300 {
        let method = reqwest::Method::from_bytes(format!("INVENT{i}").as_bytes()).unwrap();
        let resp = http.request(method, relay.url("/api/store")).send().await.unwrap();
        assert!(resp.status().is_client_error());
    }
    let text = relay.metrics(&http).await;
    assert!(!text.contains("INVENT"), "an invented method became a label");
    let series = text
        .lines()
        .filter(|l| l.starts_with("relay_http_requests_total{"))
        .count();
    assert!(series < 20, "{series} request series");
    assert!(text.contains("method=\"other\""));
}

/// A receiver that never answers never gets every delivery slot, and however many of its
/// deliveries are queued (more than one scan of the queue takes), another mailbox's webhooks
/// (another host) are delivered without waiting behind them.
#[tokio::test]
async fn a_slow_receiver_does_not_delay_others() {
    let relay = Relay::start(&["--webhook-allow-cidr", "127.0.0.0/8", "--webhook-allow-cidr", "::1/128"]);
    let http = client();
    // Accepts connections and never answers.
    let slow = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let slow_url = format!("http://127.0.0.1:{}/hook", slow.local_addr().unwrap().port());
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let held2 = held.clone();
    std::thread::spawn(move || {
        for s in slow.incoming().flatten() {
            held2.lock().unwrap().push(s);
        }
    });
    // Answers at once, recording when.
    let fast = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fast_url = format!("http://localhost:{}/hook", fast.local_addr().unwrap().port());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let tx = tx.clone();
            async move {
                let _ = tx.send(Instant::now());
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    tokio::spawn(async move { axum::serve(fast, app).await });

    // 5 × 900 deliveries to the slow host: more than one scan of the queue (2 × 1024) takes.
    let mut drops = Vec::new();
    for _ in 0..5 {
        let b = relay
            .mailbox(
                &http,
                1 << 20,
                &[("x-webhook-url", &slow_url), ("x-max-messages", "1000")],
            )
            .await;
        drops.push(b["drop_url"].as_str().unwrap().to_string());
    }
    let fast_box = mailbox(&relay, &http, &[("x-webhook-url", &fast_url)]).await;
    let tasks: Vec<_> = drops
        .into_iter()
        .flat_map(|url| (0..3).map(move |part| (url.clone(), part)))
        .map(|(url, part)| {
            let http = http.clone();
            tokio::spawn(async move {
                for i in 0..300 {
                    let r = http.post(&url).body(format!("slow {part} {i}")).send().await.unwrap();
                    assert_eq!(r.status(), 201);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // It may use most of the worker's 96 slots while they are free, never all of them.
    assert!(
        held.lock().unwrap().len() <= 80,
        "{} connections to the slow receiver",
        held.lock().unwrap().len()
    );
    let fast_drop = fast_box["drop_url"].as_str().unwrap();
    for i in 0..5 {
        let sent = Instant::now();
        let r = http.post(fast_drop).body(format!("fast {i}")).send().await.unwrap();
        assert_eq!(r.status(), 201);
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        let at = got.expect("the fast receiver waited behind the slow one").unwrap();
        assert!(at.duration_since(sent) < Duration::from_secs(3));
    }
}

/// Sends a whole request from the local address `from` and returns the answer's status.
async fn status_from(from: &str, relay: &Relay, request: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let mut stream = socket.connect(relay.http_addr().parse().unwrap()).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    String::from_utf8_lossy(&buf[..n])
        .strip_prefix("HTTP/1.1 ")
        .and_then(|t| t.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// One address holding its share of request slots gets 429 for more, at once, while another
/// address is served; past the node's global cap everyone gets 503; both say when to retry.
#[tokio::test]
async fn caps_per_address_and_per_node() {
    let relay = Relay::start(&["--max-requests-per-ip", "8", "--max-requests-in-flight", "12"]);
    let http = client();
    let mb = mailbox(&relay, &http, &[]).await;
    let drop_url = mb["drop_url"].as_str().unwrap();
    let drop_path = common::api_path(&drop_url);
    let head = format!("POST {drop_path} HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nA");
    let held: Vec<TcpStream> = (0..8).map(|_| stalled(&relay, &head)).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let health = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert_eq!(status_from("127.0.0.1", &relay, health).await, 429);
    assert_eq!(status_from("127.0.0.2", &relay, health).await, 200);
    // Four more from another address fill the node's twelve slots.
    let mut more = Vec::new();
    for _ in 0..4 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.3:0".parse().unwrap()).unwrap();
        let mut s = socket.connect(relay.http_addr().parse().unwrap()).await.unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut s, head.as_bytes())
            .await
            .unwrap();
        more.push(s);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(status_from("127.0.0.4", &relay, health).await, 503);
    drop((held, more));
    // Slots come back as soon as the requests end.
    let mut ok = false;
    for _ in 0..50 {
        if status_from("127.0.0.1", &relay, health).await == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "slots were not given back");
}

/// A client that stops reading answers cannot hold more than its address's share of the memory
/// behind them, and its stalled answers are cut off after the send timeout; other addresses are
/// served meanwhile. One account cannot take every upload slot either.
#[tokio::test]
async fn slow_readers_and_uploaders_hold_only_their_share() {
    let relay = Relay::start(&["--body-buffer-bytes", "33554432", "--send-timeout-seconds", "2"]);
    let http = client();
    let state = format!("[{}]", vec!["1234567"; 750_000].join(","));
    let created = http
        .post(relay.url("/api/checkpoint"))
        .header("authorization", relay.auth())
        .header("x-workflow-id", "big")
        .header("x-duration-seconds", "600")
        .header("x-max-body-bytes", (8u64 << 20).to_string())
        .body(state.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let get = format!(
        "GET /api/checkpoint/big HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\r\n",
        relay.auth()
    );
    // Five readers on one address that never read: one holds its share, the rest are refused.
    let mut readers = Vec::new();
    for _ in 0..5 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut s = socket.connect(relay.http_addr().parse().unwrap()).await.unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut s, get.as_bytes())
            .await
            .unwrap();
        readers.push(s);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(status_from("127.0.0.1", &relay, &get).await, 429);
    assert_eq!(status_from("127.0.0.2", &relay, &get).await, 200);
    // The stalled answer is cut off after the send timeout, and the share comes back.
    let mut ok = false;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if status_from("127.0.0.1", &relay, &get).await == 200 {
            ok = true;
            break;
        }
    }
    assert!(ok, "the stalled answer was never cut off");
    drop(readers);

    // Four stalled uploads are one account's share of the upload slots: a fifth is refused.
    let head = format!(
        "POST /api/store HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nX-File-Name: s.bin\r\n\
         X-Size-Bytes: 1000\r\nX-Duration-Seconds: 60\r\nContent-Length: 1000\r\n\r\nA",
        relay.auth()
    );
    let uploads: Vec<TcpStream> = (0..4).map(|_| stalled(&relay, &head)).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let resp = http
        .post(relay.url("/api/store"))
        .header("authorization", relay.auth())
        .header("x-file-name", "fifth.bin")
        .header("x-size-bytes", "3")
        .header("x-duration-seconds", "60")
        .body("abc")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    drop(uploads);
}

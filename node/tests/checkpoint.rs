//! Checkpoint leases on real processes: versions and compare-and-set across three nodes, no lost
//! update under contention, consume, expiry, and bad inputs that change nothing.

mod common;

use std::time::Duration;

use common::{client, files_under, Cluster, Relay, RelayExt};
use serde_json::{json, Value};

/// A checkpoint client bound to one node.
struct Cp<'a> {
    node: &'a Relay,
    http: reqwest::Client,
}

impl<'a> Cp<'a> {
    fn new(node: &'a Relay) -> Self {
        Cp { node, http: client() }
    }

    fn api(&self) -> relay_testkit::Client {
        self.node.client(self.http.clone())
    }

    async fn create(&self, workflow_id: &str, max_body: Option<u64>, duration_s: u64, body: &str) -> reqwest::Response {
        let call = self
            .api()
            .checkpoint_create(workflow_id, duration_s, max_body, body.to_string());
        call.request().send().await.expect("create")
    }

    async fn get(&self, workflow_id: &str, query: &str) -> reqwest::Response {
        let call = match query {
            "" => self.api().checkpoint_get(workflow_id),
            "?consume=true" => self.api().checkpoint_consume(workflow_id),
            _ => self.api().get(&format!("/api/checkpoint/{workflow_id}{query}")),
        };
        call.request().send().await.expect("get")
    }

    /// The current (version, body).
    async fn read(&self, workflow_id: &str) -> (u64, Value) {
        let resp = self.get(workflow_id, "").await;
        assert_eq!(resp.status(), 200, "read {workflow_id} via {}", self.node.base());
        let version = version_of(&resp);
        assert_eq!(resp.headers()["etag"], format!("\"{version}\"").as_str());
        (version, resp.json().await.expect("json body"))
    }

    async fn put(&self, workflow_id: &str, if_match: Option<u64>, body: &str) -> reqwest::Response {
        let mut call = self.api().checkpoint_put(workflow_id, body.to_string());
        if let Some(v) = if_match {
            call = call.if_match(v);
        }
        call.request().send().await.expect("put")
    }
}

fn version_of(resp: &reqwest::Response) -> u64 {
    resp.headers()["x-checkpoint-version"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn error_code(resp: reqwest::Response) -> String {
    let body: Value = resp.json().await.expect("json error");
    body["error"]["code"].as_str().unwrap_or_default().to_string()
}

/// Every write bumps the version by one and every node reads it at once, inline or from the
/// object store; a stale If-Match is 412 and changes nothing; superseded objects are deleted.
#[tokio::test]
async fn versions_are_linearizable_across_nodes() {
    let cluster = Cluster::start(3, &["--inline-max-bytes", "256"]).await;
    let clients: Vec<Cp> = cluster.nodes.iter().map(Cp::new).collect();
    let resp = clients[0].create("job-1", Some(4096), 600, r#"{"step":0}"#).await;
    assert_eq!(resp.status(), 201);
    let receipt: Value = resp.json().await.unwrap();
    assert_eq!(receipt["workflow_id"], "job-1");
    assert_eq!(receipt["version"], 1);
    assert_eq!(receipt["max_body_bytes"], 4096);
    assert!(receipt["cost_micros"].as_str().is_some());

    for step in 1..=6u64 {
        // Alternate small (inline) and large (object store) bodies.
        let pad = if step % 2 == 0 { "x".repeat(1000) } else { String::new() };
        let body = json!({"step": step, "pad": pad}).to_string();
        let writer = &clients[step as usize % 3];
        let resp = writer.put("job-1", None, &body).await;
        assert_eq!(resp.status(), 200, "put {step}");
        assert_eq!(version_of(&resp), step + 1);
        for c in &clients {
            let (version, state) = c.read("job-1").await;
            assert_eq!(version, step + 1, "version via {}", c.node.base());
            assert_eq!(state["step"], step);
        }
    }

    // Compare-and-set: the current version wins once, a stale one never.
    let resp = clients[1].put("job-1", Some(7), r#"{"step":"cas"}"#).await;
    assert_eq!(resp.status(), 200);
    let resp = clients[2].put("job-1", Some(7), r#"{"step":"stale"}"#).await;
    assert_eq!(resp.status(), 412);
    assert_eq!(error_code(resp).await, "precondition_failed");
    let (version, state) = clients[0].read("job-1").await;
    assert_eq!((version, state["step"].as_str()), (8, Some("cas")));

    // Only the latest body exists: the superseded objects were collected.
    let objects = cluster.objects_dir().unwrap();
    let mut left = usize::MAX;
    for _ in 0..50 {
        left = files_under(&objects).len();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "superseded checkpoint bodies are still stored");
}

/// Six clients on three nodes increment one counter with GET + If-Match PUT retry loops: the
/// final counter equals the number of successful PUTs.
#[tokio::test]
async fn compare_and_set_loses_no_update() {
    let cluster = Cluster::start(3, &[]).await;
    let resp = Cp::new(&cluster.nodes[0])
        .create("counter", None, 600, r#"{"n":0}"#)
        .await;
    assert_eq!(resp.status(), 201);
    const PER_CLIENT: u64 = 8;
    let mut tasks = Vec::new();
    for i in 0..6 {
        let node = &cluster.nodes[i % 3];
        let (base, auth) = (node.base().to_string(), node.auth());
        tasks.push(tokio::spawn(async move {
            let http = client();
            let (mut successes, mut conflicts) = (0u64, 0u64);
            while successes < PER_CLIENT {
                let resp = http
                    .get(format!("{base}/api/checkpoint/counter"))
                    .header("authorization", &auth)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200);
                let version = version_of(&resp);
                let n = resp.json::<Value>().await.unwrap()["n"].as_u64().unwrap();
                let resp = http
                    .put(format!("{base}/api/checkpoint/counter"))
                    .header("authorization", &auth)
                    .header("if-match", format!("\"{version}\""))
                    .body(json!({"n": n + 1}).to_string())
                    .send()
                    .await
                    .unwrap();
                match resp.status().as_u16() {
                    200 => successes += 1,
                    412 => conflicts += 1,
                    other => panic!("unexpected status {other}"),
                }
            }
            (successes, conflicts)
        }));
    }
    let (mut successes, mut conflicts) = (0, 0);
    for t in tasks {
        let (s, c) = t.await.unwrap();
        successes += s;
        conflicts += c;
    }
    let (version, state) = Cp::new(&cluster.nodes[1]).read("counter").await;
    assert_eq!(
        state["n"].as_u64(),
        Some(successes),
        "lost update ({conflicts} conflicts)"
    );
    assert_eq!(version, successes + 1);
}

/// Consume returns the state once; HEAD never consumes; object bodies are deleted after a
/// consume; an expired checkpoint is 410 and its bytes are gone.
#[tokio::test]
async fn consume_and_expiry() {
    let node = Relay::start(&["--inline-max-bytes", "64"]);
    let cp = Cp::new(&node);
    let big = json!({"blob": "y".repeat(500)}).to_string();
    assert_eq!(cp.create("park", None, 600, &big).await.status(), 201);
    assert_eq!(files_under(&node.objects_dir()).len(), 1);
    let head = cp
        .http
        .head(node.url("/api/checkpoint/park?consume=true"))
        .header("authorization", node.auth())
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    let resp = cp.get("park", "?consume=true").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), big);
    let again = cp.get("park", "?consume=true").await;
    assert_eq!(again.status(), 410);
    assert_eq!(cp.get("park", "").await.status(), 410);
    for _ in 0..50 {
        if files_under(&node.objects_dir()).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        files_under(&node.objects_dir()).is_empty(),
        "consumed body still stored"
    );
    // The workflow id is free again once its checkpoint is gone.
    assert_eq!(cp.create("park", None, 600, "[1]").await.status(), 201);

    // Expiry: 410 on every path, and the body's object is deleted.
    assert_eq!(cp.create("short", None, 1, &big).await.status(), 201);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(cp.get("short", "").await.status(), 410);
    assert_eq!(cp.put("short", None, "{}").await.status(), 410);
    assert_eq!(cp.get("short", "?consume=true").await.status(), 410);
    for _ in 0..30 {
        if files_under(&node.objects_dir()).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(files_under(&node.objects_dir()).is_empty(), "expired body still stored");

    // Delete: gone at once, later calls 410, unknown ids 404.
    let del = |wf: &str| {
        cp.http
            .delete(node.url(&format!("/api/checkpoint/{wf}")))
            .header("authorization", node.auth())
            .send()
    };
    assert_eq!(del("park").await.unwrap().status(), 200);
    assert_eq!(del("park").await.unwrap().status(), 410);
    assert_eq!(del("never-made").await.unwrap().status(), 404);
    assert_eq!(cp.get("park", "").await.status(), 410);
}

/// Bad ids, bad JSON, oversize bodies, duplicates, missing auth: each a 4xx JSON error, and the
/// checkpoint keeps its version and body, and no lease is created.
#[tokio::test]
async fn bad_inputs_change_nothing() {
    let node = Relay::start(&[]);
    let cp = Cp::new(&node);
    assert_eq!(cp.create("good", Some(64), 600, r#"{"v":1}"#).await.status(), 201);
    let lease_count = || async {
        let resp = cp
            .http
            .get(node.url("/api/leases"))
            .header("authorization", node.auth())
            .send()
            .await
            .unwrap();
        resp.json::<Value>().await.unwrap()["count"].as_u64().unwrap()
    };
    let leases_before = lease_count().await;

    let cases: Vec<(&str, reqwest::Response, u16, &str)> = vec![
        (
            "bad workflow id",
            cp.create("a/b", None, 600, "{}").await,
            400,
            "invalid_header",
        ),
        (
            "long workflow id",
            cp.create(&"x".repeat(129), None, 600, "{}").await,
            400,
            "invalid_header",
        ),
        (
            "bad json",
            cp.create("new", None, 600, "{nope").await,
            400,
            "invalid_json",
        ),
        ("empty body", cp.create("new", None, 600, "").await, 400, "invalid_json"),
        (
            "two values",
            cp.create("new", None, 600, "{} {}").await,
            400,
            "invalid_json",
        ),
        (
            "body over reservation",
            cp.create("new", Some(8), 600, r#"{"a":"123456"}"#).await,
            413,
            "payload_too_large",
        ),
        (
            "reservation over ceiling",
            cp.create("new", Some(1 << 40), 600, "{}").await,
            413,
            "payload_too_large",
        ),
        (
            "zero reservation",
            cp.create("new", Some(0), 600, "{}").await,
            422,
            "invalid_value",
        ),
        (
            "zero duration",
            cp.create("new", None, 0, "{}").await,
            422,
            "invalid_value",
        ),
        (
            "duplicate workflow",
            cp.create("good", None, 600, "{}").await,
            409,
            "conflict",
        ),
        ("put bad json", cp.put("good", None, "[1,").await, 400, "invalid_json"),
        (
            "put oversize",
            cp.put("good", None, &json!({"a": "z".repeat(100)}).to_string()).await,
            413,
            "payload_too_large",
        ),
        (
            "put stale",
            cp.put("good", Some(9), "{}").await,
            412,
            "precondition_failed",
        ),
        ("put unknown", cp.put("missing", None, "{}").await, 404, "not_found"),
        ("get unknown", cp.get("missing", "").await, 404, "not_found"),
        ("get bad id", cp.get("bad%20id", "").await, 404, "not_found"),
        (
            "bad consume flag",
            cp.get("good", "?consume=maybe").await,
            400,
            "bad_request",
        ),
        (
            "bad if-match",
            cp.http
                .put(node.url("/api/checkpoint/good"))
                .header("authorization", node.auth())
                .header("if-match", "v1")
                .body("{}")
                .send()
                .await
                .unwrap(),
            400,
            "invalid_header",
        ),
        (
            "no auth",
            cp.http.get(node.url("/api/checkpoint/good")).send().await.unwrap(),
            401,
            "unauthorized",
        ),
    ];
    for (name, resp, status, code) in cases {
        assert_eq!(resp.status(), status, "{name}");
        assert_eq!(error_code(resp).await, code, "{name}");
    }
    let (version, state) = cp.read("good").await;
    assert_eq!((version, state), (1, json!({"v": 1})));
    assert_eq!(lease_count().await, leases_before, "a bad request created a lease");

    // If-None-Match with the current ETag is 304, with another is 200.
    let not_modified = cp
        .http
        .get(node.url("/api/checkpoint/good"))
        .header("authorization", node.auth())
        .header("if-none-match", "\"1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(not_modified.status(), 304);
}

//! The node's log for log shippers: with `--log-format json` every line on stderr is one JSON
//! object, and every request logs its method, route, status, duration and request id (the one the
//! client got in `X-Request-Id`).

mod common;

use common::{client, Relay, RelayExt};
use serde_json::Value;

#[tokio::test]
async fn json_logs_carry_one_line_per_request_with_its_id() {
    let node = Relay::start(&["--log-format", "json"]);
    let http = client();
    let ok = http.get(node.url("/healthz")).send().await.unwrap();
    let ok_id = ok.headers()["x-request-id"].to_str().unwrap().to_string();
    let missing = http
        .get(node.url("/api/download/lse_01HX0000000000000000000000"))
        .header("authorization", node.auth())
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let missing_id = missing.headers()["x-request-id"].to_str().unwrap().to_string();
    let start = std::time::Instant::now();
    let lines: Vec<Value> = loop {
        let logs = node.logs();
        let lines: Vec<Value> = logs
            .lines()
            .filter(|l| !l.starts_with("relay: "))
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        if lines.iter().any(|l| l["request_id"] == missing_id.as_str()) {
            break lines;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(10), "{logs}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(lines
        .iter()
        .any(|l| l["message"].as_str().is_some_and(|m| m.contains("step 1/8"))));
    let find = |id: &str| lines.iter().find(|l| l["request_id"] == id).cloned().unwrap();
    let a = find(&ok_id);
    assert_eq!(
        (a["method"].as_str(), a["route"].as_str(), a["status"].as_u64()),
        (Some("GET"), Some("/healthz"), Some(200))
    );
    assert!(a["duration_ms"].as_f64().is_some());
    assert_eq!(a["level"], "INFO");
    let b = find(&missing_id);
    assert_eq!(
        (b["route"].as_str(), b["status"].as_u64()),
        (Some("/api/download/{lease_id}"), Some(404))
    );
}

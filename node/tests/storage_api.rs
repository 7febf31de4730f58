//! The Storage lease API end to end through HTTP on a real `relay` process.

mod common;

use common::{bytes, client, parse_ms, Relay, RelayExt};
use serde_json::Value;

/// Create, download (whole and ranged), list, delete: every field the reference promises.
#[tokio::test]
async fn store_download_list_delete() {
    let relay = Relay::start(&[]);
    let http = client();
    let body = bytes(1024, 7);
    let receipt = relay.store(&http, "notes.txt", body.clone(), 3600).await;

    assert_eq!(receipt["status"], "ok");
    assert_eq!(receipt["actor_type"], "account");
    let lease_id = receipt["lease_id"].as_str().unwrap().to_string();
    assert!(lease_id.starts_with("lse_") && lease_id.len() == 30, "{lease_id}");
    assert!(receipt["ledger_id"].as_str().unwrap().starts_with("led_"));
    assert!(receipt["object_key"].as_str().unwrap().starts_with("blobs/"));
    assert_eq!(receipt["duration_seconds"], 3600);
    assert_eq!(receipt["duration_human"], "1.0 hour");
    assert_eq!(receipt["size_bytes"], 1024);
    assert_eq!(receipt["cost_micros"], "29");
    assert_eq!(receipt["paid_usdc"], 0.000029);
    let expires_at = parse_ms(receipt["expires_at"].as_str().unwrap());
    let expected = common::now_ms() + 3_600_000;
    assert!(
        expires_at.abs_diff(expected) < 10_000,
        "expires_at {expires_at} vs {expected}"
    );

    let resp = relay.download(&http, &lease_id).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/octet-stream");
    let disposition = resp.headers()["content-disposition"].to_str().unwrap().to_string();
    assert!(
        disposition.starts_with("attachment; filename=\"notes.txt\""),
        "{disposition}"
    );
    assert_eq!(resp.headers()["content-length"], "1024");
    assert_eq!(resp.bytes().await.unwrap().to_vec(), body);

    let ranged = http
        .get(relay.url(&format!("/api/download/{lease_id}")))
        .header("authorization", relay.auth())
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), 206);
    assert_eq!(ranged.headers()["content-range"], "bytes 10-19/1024");
    assert_eq!(ranged.bytes().await.unwrap().to_vec(), body[10..20].to_vec());

    let unsatisfiable = http
        .get(relay.url(&format!("/api/download/{lease_id}")))
        .header("authorization", relay.auth())
        .header("range", "bytes=5000-")
        .send()
        .await
        .unwrap();
    assert_eq!(unsatisfiable.status(), 416);
    assert_eq!(unsatisfiable.headers()["content-range"], "bytes */1024");

    // Accesses are written in batches after the read: wait for both.
    let list = accesses_recorded(&relay, &http, 2).await;
    assert_eq!(list["count"], 1);
    let row = &list["leases"][0];
    assert_eq!(row["lease_id"], lease_id.as_str());
    assert_eq!(row["status"], "active");
    assert_eq!(row["file_name"], "notes.txt");
    assert_eq!(row["access_count"], 2, "whole and ranged downloads are recorded: {row}");
    assert_eq!(row["access_history"].as_array().unwrap().len(), 2);

    let deleted = http
        .delete(relay.url(&format!("/api/store/{lease_id}")))
        .header("authorization", relay.auth())
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    let gone = relay.download(&http, &lease_id).await;
    assert_eq!(gone.status(), 410);
    let gone_body: Value = gone.json().await.unwrap();
    assert_eq!(gone_body["error"]["code"], "gone");
    let again = http
        .delete(relay.url(&format!("/api/store/{lease_id}")))
        .header("authorization", relay.auth())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 410);

    let list = relay.leases(&http).await;
    assert_eq!(list["leases"][0]["status"], "deleted");
    assert!(list["leases"][0]["deleted_at"].is_string());
}

/// Listing pages through many leases newest first, each exactly once.
/// The owner's listing once its first lease shows `n` accesses (batched writes land within a
/// few tens of ms; 5 s is the bound that fails the test).
async fn accesses_recorded(relay: &Relay, http: &reqwest::Client, n: u64) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let list = relay.leases(http).await;
        if list["leases"][0]["access_count"] == n || std::time::Instant::now() > deadline {
            return list;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Every access a node served is in the ledger after a clean stop, even one served a moment
/// before the SIGTERM (the batch writer drains its queue before the node exits).
#[tokio::test]
async fn accesses_served_before_a_clean_stop_are_kept() {
    let mut relay = Relay::start(&[]);
    let http = client();
    let receipt = relay.store(&http, "a.bin", bytes(64, 3), 3600).await;
    let lease_id = receipt["lease_id"].as_str().unwrap().to_string();
    for _ in 0..25 {
        assert_eq!(relay.download(&http, &lease_id).await.status(), 200);
    }
    assert!(relay.terminate().expect("SIGTERM").success());
    relay.restart().expect("restart");
    let list = relay.leases(&http).await;
    assert_eq!(list["leases"][0]["access_count"], 25, "{list}");
}

#[tokio::test]
async fn listing_paginates() {
    let relay = Relay::start(&[]);
    let http = client();
    let mut created = Vec::new();
    for i in 0..7 {
        let r = relay.store(&http, &format!("f{i}.bin"), bytes(10, i), 600).await;
        created.push(r["lease_id"].as_str().unwrap().to_string());
    }
    let rows = relay.all_leases(&http, 3).await;
    let seen: Vec<String> = rows
        .iter()
        .map(|r| r["lease_id"].as_str().unwrap().to_string())
        .collect();
    let stamps: Vec<String> = rows
        .iter()
        .map(|r| r["created_at"].as_str().unwrap().to_string())
        .collect();
    // Every lease exactly once; newest first (leases made in the same millisecond may tie).
    assert_eq!(seen.len(), created.len(), "{seen:?}");
    let unique: std::collections::BTreeSet<_> = seen.iter().collect();
    assert_eq!(unique, created.iter().collect());
    let mut sorted = stamps.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(stamps, sorted, "pages are newest first");
}

/// Bodies above the single-PUT threshold go through a multipart upload and come back intact.
#[tokio::test]
async fn large_objects_stream_through_multipart() {
    let relay = Relay::start(&[]);
    let http = client();
    let body = bytes(20 * 1024 * 1024 + 123, 3);
    let receipt = relay.store(&http, "big.bin", body.clone(), 600).await;
    let resp = relay.download(&http, receipt["lease_id"].as_str().unwrap()).await;
    assert_eq!(resp.status(), 200);
    let got = resp.bytes().await.unwrap();
    assert_eq!(got.len(), body.len());
    assert!(got.as_ref() == body.as_slice(), "downloaded bytes differ");
    assert_eq!(
        common::files_under(&relay.objects_dir()).len(),
        1,
        "exactly one blob on disk"
    );
}

/// A retried create with the same Idempotency-Key answers with the first lease and charges once;
/// the retry's own upload is discarded.
#[tokio::test]
async fn idempotency_key_applies_once() {
    let relay = Relay::start(&[]);
    let http = client();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let resp = http
            .post(relay.url("/api/store"))
            .header("authorization", relay.auth())
            .header("x-file-name", "a.txt")
            .header("x-size-bytes", "5")
            .header("x-duration-seconds", "60")
            .header("idempotency-key", "order-42")
            .body("hello")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        let json: Value = resp.json().await.unwrap();
        ids.push(json["lease_id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids[0], ids[1]);
    let list = relay.leases(&http).await;
    assert_eq!(list["count"], 1);
    assert_eq!(common::files_under(&relay.objects_dir()).len(), 1);
}

/// With a balance for one lease, the second create is 402 and leaves nothing behind.
#[tokio::test]
async fn insufficient_balance_is_402_and_stores_nothing() {
    let relay = Relay::start(&["--bootstrap-balance-usdc", "0.00005"]);
    let http = client();
    relay.store(&http, "one.txt", bytes(100, 1), 60).await;
    let resp = http
        .post(relay.url("/api/store"))
        .header("authorization", relay.auth())
        .header("x-file-name", "two.txt")
        .header("x-size-bytes", "100")
        .header("x-duration-seconds", "60")
        .body(bytes(100, 2))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 402);
    let json: Value = resp.json().await.unwrap();
    assert_eq!(json["error"]["code"], "insufficient_balance");
    let list = relay.leases(&http).await;
    assert_eq!(list["count"], 1);
    assert_eq!(common::files_under(&relay.objects_dir()).len(), 1);
}

/// Pricing publishes the live figures and quotes use the same formula as creates.
#[tokio::test]
async fn pricing_and_quote() {
    let relay = Relay::start(&[]);
    let http = client();
    let pricing: Value = relay.get_json(&http, "/api/pricing").await;
    assert_eq!(pricing["rateUsdcPerGbDay"], 0.001);
    assert_eq!(pricing["minDurationSeconds"], 1);
    assert_eq!(pricing["minChargeMicros"], 29);

    let quote: Value = relay
        .get_json(&http, "/api/quote?size_bytes=1048576&duration_seconds=3600")
        .await;
    assert_eq!(quote["priceMicros"], "29");
    assert_eq!(quote["priceUsdc"], 0.000029);
    let big: Value = relay
        .get_json(&http, "/api/quote?size_bytes=1073741824&duration_seconds=864000")
        .await;
    assert_eq!(big["priceMicros"], "10000");
    assert!(big["expiresAt"].as_str().unwrap().ends_with('Z'));
}

/// Liveness, readiness and Prometheus metrics with per-route request counts.
#[tokio::test]
async fn health_ready_and_metrics() {
    let relay = Relay::start(&[]);
    let http = client();
    assert_eq!(http.get(relay.url("/healthz")).send().await.unwrap().status(), 200);
    let ready: Value = relay.get_json(&http, "/readyz").await;
    assert_eq!(ready["status"], "ready");
    relay.store(&http, "m.txt", bytes(3, 0), 60).await;
    let text = relay.metrics(&http).await;
    assert!(
        text.contains("relay_http_requests_total{method=\"POST\",route=\"/api/store\",status=\"201\"} 1"),
        "{text}"
    );
    assert!(text.contains("relay_http_request_duration_seconds_bucket"), "{text}");
}

/// The embedded default prints two generated keys once, each labelled (the agents' key and the
/// admin key, never the same), stores them 0600, and reuses them on restart.
#[tokio::test]
async fn bootstrap_key_is_printed_once_and_kept() {
    use std::os::unix::fs::PermissionsExt;
    let mut relay = Relay::start_raw(&["--min-duration-seconds", "1"], "");
    let printed = |label: &str| {
        let line = relay
            .stdout()
            .iter()
            .find(|l| l.contains(label))
            .cloned()
            .unwrap_or_else(|| panic!("no {label} line in {:?}", relay.stdout()));
        line.rsplit(' ').next().unwrap().to_string()
    };
    let key = printed("agent API key");
    let admin = printed("admin key");
    assert!(key.starts_with("rs_live_"), "{key}");
    assert!(admin.starts_with("rs_admin_"), "{admin}");
    for (file, value) in [("bootstrap-api-key", &key), ("admin-api-key", &admin)] {
        let path = relay.data_dir().join(file);
        assert_eq!(&std::fs::read_to_string(&path).unwrap().trim(), value);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    relay.set_key(key);
    let http = client();
    relay.store(&http, "k.txt", bytes(4, 4), 60).await;

    assert!(relay.terminate().unwrap().success());
    relay.restart().unwrap();
    assert!(
        !relay
            .stdout()
            .iter()
            .any(|l| l.contains("API key") || l.contains("admin key")),
        "a key printed again"
    );
    let list = relay.leases(&http).await;
    assert_eq!(list["count"], 1);
}

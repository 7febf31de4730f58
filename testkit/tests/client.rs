//! The typed client against a one-shot loopback server that records the raw request: each method
//! sends the route, headers and credential Relay expects, optional headers are added on the call,
//! and answers and failures come back as `Reply` and `KitError`.

use relay_testkit::{Client, KitError, Method};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves one request with `status` and `body`; the request's raw text comes back.
async fn one_shot(status: u16, headers: &str, body: &str) -> (String, tokio::task::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let answer = format!(
        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n{headers}\r\n{body}",
        body.len()
    );
    let task = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        // Head, then as many body bytes as it announces.
        loop {
            let n = socket.read(&mut buf).await.unwrap();
            seen.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&seen).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(String::from)
                    })
                    .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                if seen.len() >= end + 4 + length || n == 0 {
                    break;
                }
            }
        }
        socket.write_all(answer.as_bytes()).await.unwrap();
        String::from_utf8_lossy(&seen).to_string()
    });
    (base, task)
}

#[tokio::test]
async fn a_store_carries_its_headers_the_key_and_an_idempotency_key() {
    let (base, seen) = one_shot(201, "x-request-id: r1\r\n", r#"{"lease_id":"l_1"}"#).await;
    let reply = Client::new(reqwest::Client::new(), &base)
        .bearer("rs_live_k")
        .store("a.txt", 600, "hello")
        .idempotency_key("store-1")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status, 201);
    assert_eq!(reply.json()["lease_id"], "l_1");
    assert_eq!(reply.header("x-request-id"), Some("r1"));
    let request = seen.await.unwrap().to_ascii_lowercase();
    assert!(request.starts_with("post /api/store http/1.1"), "{request}");
    for line in [
        "authorization: bearer rs_live_k",
        "x-file-name: a.txt",
        "x-size-bytes: 5",
        "x-duration-seconds: 600",
        "idempotency-key: store-1",
    ] {
        assert!(request.contains(line), "{line} in {request}");
    }
    assert!(request.ends_with("\r\n\r\nhello"), "{request}");
}

#[tokio::test]
async fn a_compare_and_set_write_sends_if_match_and_reads_the_version() {
    let (base, seen) = one_shot(200, "x-checkpoint-version: 7\r\n", "").await;
    let reply = Client::new(reqwest::Client::new(), &base)
        .bearer("rs_live_k")
        .checkpoint_put("job-1", r#"{"w":1}"#)
        .if_match(6)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.header_u64("x-checkpoint-version"), Some(7));
    assert!(reply.json().is_null(), "an empty body reads as null");
    let request = seen.await.unwrap().to_ascii_lowercase();
    assert!(request.starts_with("put /api/checkpoint/job-1 http/1.1"), "{request}");
    assert!(request.contains("if-match: 6") && request.contains("content-type: application/json"));
}

#[tokio::test]
async fn drops_and_claims_go_to_the_url_handed_out_without_credentials() {
    let (base, seen) = one_shot(201, "", "{}").await;
    let other_node = Client::new(reqwest::Client::new(), "http://127.0.0.1:1").bearer("rs_live_k");
    let drop_url = format!("{base}/api/mailbox/drop/tok");
    other_node
        .drop_message(&drop_url, "m")
        .content_type("text/plain")
        .send()
        .await
        .unwrap();
    let request = seen.await.unwrap().to_ascii_lowercase();
    assert!(request.starts_with("post /api/mailbox/drop/tok http/1.1"), "{request}");
    assert!(!request.contains("authorization"), "{request}");
    assert_eq!(relay_testkit::api_path(&drop_url), Some("/api/mailbox/drop/tok"));

    let (base, seen) = one_shot(200, "", "").await;
    let admin = Client::new(reqwest::Client::new(), &base).secret("s3cret");
    admin
        .set_pricing(&json!({"min_charge_micros": 1}))
        .send()
        .await
        .unwrap();
    let request = seen.await.unwrap().to_ascii_lowercase();
    assert!(request.starts_with("post /cluster/pricing http/1.1"), "{request}");
    assert!(request.contains("x-cluster-secret: s3cret"), "{request}");
    let (base, seen) = one_shot(200, "", "").await;
    let node = Client::new(reqwest::Client::new(), &base);
    node.claim(Method::HEAD, "/api/claim/t").send().await.unwrap();
    assert!(seen.await.unwrap().starts_with("HEAD /api/claim/t HTTP/1.1"));
}

#[tokio::test]
async fn a_refused_connection_and_a_timeout_are_told_apart() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let err = Client::new(reqwest::Client::new(), &base)
        .get("/healthz")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(err, KitError::Refused(_)), "{err}");

    // Accepts and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", silent.local_addr().unwrap());
    let _held = tokio::spawn(async move {
        let conn = silent.accept().await;
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        drop(conn);
    });
    let err = Client::new(reqwest::Client::new(), &base)
        .timeout(std::time::Duration::from_millis(200))
        .get("/healthz")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(err, KitError::Lost(_)), "{err}");
}

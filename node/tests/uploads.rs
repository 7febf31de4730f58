//! Large objects whose bytes do not pass through the create request: presigned PUTs (straight to
//! a real S3-protocol server, or node-signed on local files), presigned multipart parts,
//! completion, abandonment at the deadline; resumable tus uploads (one surviving the death of the
//! node that took it, and a stock tus client); the free scratch tier and its reuse.

mod common;
#[path = "common/s3.rs"]
#[allow(dead_code)]
mod s3;
#[path = "common/backend.rs"]
#[allow(dead_code)]
#[macro_use]
mod backend;

use std::time::Duration;

use backend::Backend;
use common::{bytes, client, Cluster, Relay, RelayExt};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

both_backends!(
    a_presigned_upload_is_readable_once_complete,
    a_keyed_retry_answers_the_same_upload,
    wrong_bytes_and_forged_urls_are_refused,
    an_upload_never_completed_is_abandoned,
);

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

async fn send(req: reqwest::RequestBuilder) -> (u16, Value, reqwest::header::HeaderMap) {
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.bytes().await.unwrap_or_default();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null), headers)
}

/// `POST /api/store` with `X-Upload: presigned`: the receipt (201 asserted).
async fn presigned(node: &Relay, size: usize, sha: Option<&str>) -> Value {
    let mut req = client()
        .post(node.url("/api/store"))
        .header("authorization", node.auth())
        .header("x-upload", "presigned")
        .header("x-file-name", "big.bin")
        .header("x-size-bytes", size.to_string())
        .header("x-duration-seconds", "600");
    if let Some(sha) = sha {
        req = req.header("x-content-sha256", sha);
    }
    let (s, v, _) = send(req).await;
    assert_eq!(s, 201, "{v}");
    v
}

/// PUTs `body` to the upload object's URL with its headers (minus any named in `skip`).
async fn put(upload: &Value, body: Vec<u8>, skip: &[&str]) -> (u16, String) {
    let mut req = client().put(upload["url"].as_str().unwrap());
    for (k, v) in upload["headers"].as_object().unwrap() {
        if k != "content-length" && !skip.contains(&k.as_str()) {
            req = req.header(k, v.as_str().unwrap());
        }
    }
    let r = req.body(body).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

async fn complete(node: &Relay, upload: &Value, body: Option<Value>) -> (u16, Value) {
    let mut req = client()
        .post(upload["complete_url"].as_str().unwrap())
        .header("authorization", node.auth());
    if let Some(b) = body {
        req = req.json(&b);
    }
    let (s, v, _) = send(req).await;
    (s, v)
}

async fn read(node: &Relay, lease_id: &str) -> (u16, Vec<u8>) {
    let r = node.download(&client(), lease_id).await;
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

/// The node's count of object bytes it received itself.
async fn bytes_received(node: &Relay) -> u64 {
    let text = node.metrics(&client()).await;
    text.lines()
        .find(|l| l.starts_with("bytes_uploaded_total "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0) as u64
}

/// A 20 MiB presigned PUT: the lease answers 409 `upload_pending` until the upload completes;
/// on S3 the bytes go straight to the bucket (the node receives none) and the owner completes;
/// completing twice answers the same.
async fn a_presigned_upload_is_readable_once_complete(backend: Backend) {
    let node = backend.node(&[]);
    let body = bytes(20 << 20, 7);
    let sha = sha256_hex(&body);
    let receipt = presigned(&node, body.len(), Some(&sha)).await;
    let lease = receipt["lease_id"].as_str().unwrap();
    let upload = &receipt["upload"];
    assert!(upload["upload_id"].as_str().unwrap().starts_with("upl_"));
    assert_eq!(upload["method"], "PUT");
    let (s, _) = read(&node, lease).await;
    assert_eq!(s, 409, "before the bytes");
    let before = bytes_received(&node).await;
    let (s, text) = put(upload, body.clone(), &[]).await;
    assert_eq!(s, 200, "{text}");
    if backend.is_s3() {
        assert!(
            bytes_received(&node).await - before < 1 << 20,
            "the node carried the bytes"
        );
        assert_eq!(read(&node, lease).await.0, 409, "uploaded but not yet completed");
        let (s, first) = complete(&node, upload, None).await;
        assert_eq!(s, 200, "{first}");
        let (s, again) = complete(&node, upload, None).await;
        assert_eq!((s, &again), (200, &first), "completion is idempotent");
        assert_eq!(first["status"], "complete");
        assert_eq!(first["sha256"], sha);
    } else {
        let (s, again) = complete(&node, upload, None).await;
        assert_eq!(s, 200, "the node-signed PUT completed it: {again}");
    }
    let (s, got) = read(&node, lease).await;
    assert_eq!(s, 200);
    assert!(got == body, "the bytes read back are the ones uploaded");
}

/// The store (or the node) refuses bytes of another length or hash, a tampered signature and a
/// second write; the lease never becomes readable from them.
async fn wrong_bytes_and_forged_urls_are_refused(backend: Backend) {
    let node = backend.node(&[]);
    let body = bytes(1 << 20, 3);
    let receipt = presigned(&node, body.len(), Some(&sha256_hex(&body))).await;
    let lease = receipt["lease_id"].as_str().unwrap();
    let upload = &receipt["upload"];
    let mut other = body.clone();
    other[100] ^= 1;
    let (s, text) = put(upload, other, &[]).await;
    assert!((400..500).contains(&s), "another hash: {s} {text}");
    let (s, text) = put(upload, body[..1000].to_vec(), &[]).await;
    assert!((400..500).contains(&s), "another length: {s} {text}");
    let url = upload["url"].as_str().unwrap();
    let last = url.chars().last().unwrap();
    let forged = format!("{}{}", &url[..url.len() - 1], if last == '0' { '1' } else { '0' });
    let mut forged_upload = upload.clone();
    forged_upload["url"] = json!(forged);
    // (A short body: the signature is checked before a byte is read.)
    let (s, text) = put(&forged_upload, body[..10].to_vec(), &[]).await;
    assert_eq!(s, 403, "a tampered signature: {text}");
    if backend.is_s3() {
        // Nothing there (S3 keeps no refused body), or what a lax server kept: either way refused.
        let (s, v) = complete(&node, upload, None).await;
        let code = v["error"]["code"].as_str();
        assert!(
            (s, code) == (409, Some("upload_incomplete")) || (s, code) == (422, Some("upload_mismatch")),
            "{v}"
        );
    }
    assert_eq!(read(&node, lease).await.0, 409, "nothing wrong became readable");
    // Without a declared checksum the length still binds: on S3 by the signature.
    let plain = presigned(&node, 4096, None).await;
    let (s, _) = put(&plain["upload"], vec![1u8; 4000], &[]).await;
    assert!((400..500).contains(&s), "a short body: {s}");
    let (s, _) = put(&plain["upload"], vec![1u8; 4096], &[]).await;
    assert_eq!(s, 200);
    if backend.is_s3() {
        assert_eq!(complete(&node, &plain["upload"], None).await.0, 200);
    }
    let (s, _) = put(&plain["upload"], vec![2u8; 4096], &[]).await;
    assert!((400..500).contains(&s), "a second write: {s}");
    let (s, got) = read(&node, plain["lease_id"].as_str().unwrap()).await;
    assert_eq!((s, got), (200, vec![1u8; 4096]), "written once");
}

/// An upload URL that expired is refused, and an upload never completed is abandoned at its
/// deadline: the lease answers 410 and bytes uploaded but never completed are deleted.
async fn an_upload_never_completed_is_abandoned(backend: Backend) {
    let node = backend.node(&[
        "--upload-url-ttl-seconds",
        "2",
        "--upload-single-put-max-bytes",
        "5242880",
    ]);
    let body = bytes(100_000, 9);
    let late = presigned(&node, body.len(), None).await;
    let stranded = presigned(&node, body.len(), None).await;
    if backend.is_s3() {
        // Uploaded, never completed: one object, and one part of a multipart upload.
        assert_eq!(put(&stranded["upload"], body.clone(), &[]).await.0, 200);
        let parted = presigned(&node, 6 << 20, None).await;
        let part = &parted["upload"]["parts"][0];
        let r = client()
            .put(part["url"].as_str().unwrap())
            .body(bytes(part["size_bytes"].as_u64().unwrap() as usize, 1))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (s, _) = put(&late["upload"], body.clone(), &[]).await;
    assert_eq!(s, 403, "an expired URL");
    let mut status = 0;
    for _ in 0..50 {
        status = read(&node, stranded["lease_id"].as_str().unwrap()).await.0;
        if status == 410 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 410, "abandoned with its lease");
    let (s, v) = complete(&node, &stranded["upload"], None).await;
    assert_eq!(s, 410, "{v}");
    // Every byte goes: objects, and the parts of the multipart upload (aborted).
    let parts_left = || match &backend {
        Backend::S3(s) => std::fs::read_dir(s.root.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".upload_id-")
            })
            .count(),
        Backend::Local(_) => 0,
    };
    for _ in 0..50 {
        if backend.keys().await.iter().all(|k| !k.starts_with("blobs/")) && parts_left() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("bytes left behind: {:?}, {} parts", backend.keys().await, parts_left());
}

/// 64 MiB as presigned multipart parts PUT straight to the bucket; completing without every part
/// is refused, with them the lease reads back intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multipart_upload_goes_straight_to_the_bucket() {
    let backend = Backend::s3();
    let node = backend.node(&[]);
    let body = bytes(64 << 20, 5);
    let receipt = presigned(&node, body.len(), Some(&sha256_hex(&body))).await;
    let upload = &receipt["upload"];
    let parts = upload["parts"].as_array().expect("multipart parts");
    assert!(parts.len() >= 2 && upload["url"].is_null());
    let before = bytes_received(&node).await;
    let mut tags = Vec::new();
    let mut at = 0usize;
    for part in parts {
        let size = part["size_bytes"].as_u64().unwrap() as usize;
        let r = client()
            .put(part["url"].as_str().unwrap())
            .body(body[at..at + size].to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "part {}", part["part_number"]);
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        tags.push(json!({"part_number": part["part_number"], "etag": etag}));
        at += size;
    }
    assert_eq!(at, body.len());
    assert!(
        bytes_received(&node).await - before < 1 << 20,
        "the node carried the bytes"
    );
    let (s, v) = complete(&node, upload, Some(json!({ "parts": &tags[1..] }))).await;
    assert_eq!(s, 422, "a part missing: {v}");
    let (s, v) = complete(&node, upload, Some(json!({ "parts": tags }))).await;
    assert_eq!(s, 200, "{v}");
    let (s, got) = read(&node, receipt["lease_id"].as_str().unwrap()).await;
    assert_eq!(s, 200);
    assert!(got == body);
}

async fn scratch_url(node: &Relay, auth: &str, size: u64) -> (u16, Value) {
    let (s, v, _) = send(
        client()
            .post(node.url("/v1/scratch/upload-url"))
            .header("authorization", auth)
            .json(&json!({ "size_bytes": size })),
    )
    .await;
    (s, v)
}

async fn store_from(node: &Relay, auth: &str, input_key: &str) -> (u16, Value) {
    let (s, v, _) = send(
        client()
            .post(node.url("/api/store"))
            .header("authorization", auth)
            .header("x-input-key", input_key)
            .header("x-file-name", "from-scratch.bin")
            .header("x-duration-seconds", "600"),
    )
    .await;
    (s, v)
}

/// The free tier: bounded per owner (429 with a clear code), reusable by several creates without
/// sending the bytes again, invisible to other owners (404), gone after its life (410, bytes
/// deleted) while the leases made from it stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scratch_is_free_bounded_private_and_short_lived() {
    let backend = Backend::local();
    let node = backend.node(&[
        "--scratch-max-bytes",
        "4096",
        "--scratch-max-bytes-per-owner",
        "8192",
        "--scratch-max-per-owner",
        "3",
        "--scratch-ttl-seconds",
        "4",
    ]);
    let me = node.auth();
    let (s, v) = scratch_url(&node, &me, 4097).await;
    assert_eq!(s, 413, "{v}");
    let (s, none, _) = send(
        client()
            .post(node.url("/v1/scratch/upload-url"))
            .json(&json!({"size_bytes": 1})),
    )
    .await;
    assert_eq!(s, 401, "{none}");
    let (s, first) = scratch_url(&node, &me, 4096).await;
    assert_eq!(s, 201, "{first}");
    let key = first["input_key"].as_str().unwrap().to_string();
    assert!(key.starts_with("scratch/acct_bootstrap/"), "{key}");
    assert_eq!(scratch_url(&node, &me, 4096).await.0, 201);
    let (s, v) = scratch_url(&node, &me, 1).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (429, Some("scratch_quota_exceeded")),
        "{v}"
    );
    assert_eq!(store_from(&node, &me, &key).await.0, 409, "not uploaded yet");
    let body = bytes(4096, 11);
    assert_eq!(put(&first["upload"], body.clone(), &[]).await.0, 200);
    let mut leases = Vec::new();
    for _ in 0..2 {
        let (s, v) = store_from(&node, &me, &key).await;
        assert_eq!(s, 201, "{v}");
        leases.push(v["lease_id"].as_str().unwrap().to_string());
    }
    for lease in &leases {
        assert_eq!(read(&node, lease).await, (200, body.clone()));
    }
    // Another owner cannot tell the key exists.
    let (s, _, _) = send(
        client()
            .post(node.url("/cluster/accounts"))
            .header("authorization", node.admin_auth())
            .json(&json!({"account_id": "acct_other", "balance_micros": 1000000})),
    )
    .await;
    assert_eq!(s, 201);
    let (_, issued, _) = send(
        client()
            .post(node.url("/cluster/accounts/acct_other/keys"))
            .header("authorization", node.admin_auth()),
    )
    .await;
    let other = format!("Bearer {}", issued["api_key"].as_str().unwrap());
    assert_eq!(store_from(&node, &other, &key).await.0, 404);
    assert_eq!(store_from(&node, &me, "scratch/acct_bootstrap/nope").await.0, 404);
    // Past its life: 410, its bytes gone; what was made from it stays.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut s = 0;
    for _ in 0..30 {
        s = store_from(&node, &me, &key).await.0;
        if s == 410 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(s, 410);
    // Only the two leases' copies remain of its bytes.
    let mut gone = false;
    for _ in 0..30 {
        if backend.keys().await.len() == leases.len() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "scratch bytes left: {:?}", backend.keys().await);
    assert_eq!(read(&node, &leases[0]).await, (200, body));
    // The quota is free again, and counts objects too.
    for i in 0..3 {
        let (s, v) = scratch_url(&node, &me, 1).await;
        assert_eq!(s, 201, "{i}: {v}");
    }
    let (s, v) = scratch_url(&node, &me, 1).await;
    assert!(
        s == 429 && v["error"]["message"].as_str().unwrap().contains("objects"),
        "{v}"
    );
}

fn tus_req(node: &Relay, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
    client()
        .request(method, url)
        .header("authorization", node.auth())
        .header("tus-resumable", "1.0.0")
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

async fn tus_create(node: &Relay, length: usize) -> String {
    let (s, v, h) = send(
        tus_req(node, reqwest::Method::POST, &node.url("/api/uploads/tus"))
            .header("upload-length", length.to_string())
            .header(
                "upload-metadata",
                format!("filename {},duration_seconds {}", b64("t.bin"), b64("600")),
            ),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    h["location"].to_str().unwrap().to_string()
}

async fn tus_patch(node: &Relay, url: &str, offset: u64, body: Vec<u8>) -> (u16, Value, reqwest::header::HeaderMap) {
    send(
        tus_req(node, reqwest::Method::PATCH, url)
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", offset.to_string())
            .body(body),
    )
    .await
}

async fn tus_offset(node: &Relay, url: &str) -> (u16, u64) {
    let (s, _, h) = send(tus_req(node, reqwest::Method::HEAD, url)).await;
    let offset = h
        .get("upload-offset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (s, offset)
}

/// tus by hand: the protocol's refusals (version, media type, offset, checksum) change nothing;
/// the last PATCH buys the lease and names it; termination ends an upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tus_refuses_what_does_not_fit_and_buys_the_lease_at_the_last_byte() {
    let node = Relay::start(&["--tus-chunk-bytes", "65536"]);
    let body = bytes(300_000, 4);
    let url = tus_create(&node, body.len()).await;
    let (s, _, h) = send(client().head(&url).header("authorization", node.auth())).await;
    assert_eq!(
        (s, h["tus-resumable"].to_str().unwrap()),
        (412, "1.0.0"),
        "no Tus-Resumable"
    );
    let (s, _, _) = send(
        tus_req(&node, reqwest::Method::PATCH, &url)
            .header("content-type", "text/plain")
            .header("upload-offset", "0")
            .body(vec![1u8; 10]),
    )
    .await;
    assert_eq!(s, 415);
    let (s, v, _) = tus_patch(&node, &url, 5, body[..10].to_vec()).await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("offset_mismatch")));
    let (s, _, _) = send(
        tus_req(&node, reqwest::Method::PATCH, &url)
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", "0")
            .header(
                "upload-checksum",
                format!("sha256 {}", b64("not the digest of this body, 32b")),
            )
            .body(body[..100_000].to_vec()),
    )
    .await;
    assert_eq!(s, 460, "checksum mismatch");
    assert_eq!(tus_offset(&node, &url).await, (200, 0), "nothing of it kept");
    let (s, _, h) = tus_patch(&node, &url, 0, body[..200_000].to_vec()).await;
    assert_eq!((s, h["upload-offset"].to_str().unwrap()), (204, "200000"));
    let (s, _, h) = tus_patch(&node, &url, 200_000, vec![0u8; 100_001]).await;
    assert_eq!(s, 413, "past Upload-Length");
    assert_eq!(
        h["upload-offset"].to_str().unwrap(),
        "200000",
        "the answer names the offset"
    );
    let (s, _, h) = tus_patch(&node, &url, 200_000, body[200_000..].to_vec()).await;
    assert_eq!(s, 204);
    let lease = h["x-lease-id"].to_str().unwrap().to_string();
    assert_eq!(read(&node, &lease).await, (200, body.clone()));
    let listed = node.all_leases(&client(), 100).await;
    assert!(
        listed.iter().any(|l| l["lease_id"] == lease.as_str()),
        "listed with the others"
    );
    // Termination.
    let doomed = tus_create(&node, 10).await;
    let (s, _, _) = send(tus_req(&node, reqwest::Method::DELETE, &doomed)).await;
    assert_eq!(s, 204);
    assert_eq!(tus_offset(&node, &doomed).await.0, 410);
}

/// An upload whose node dies at 60 % resumes through another node of the cluster: the offset
/// and the pieces live in the ledger and the store, and the lease's bytes hash right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tus_upload_survives_the_death_of_its_node() {
    let mut cluster = Cluster::start(3, &["--tus-chunk-bytes", "1048576"]).await;
    let body = bytes(10 << 20, 8);
    let url0 = tus_create(&cluster.nodes[1], body.len()).await;
    let path = common::api_path(&url0);
    let cut = body.len() * 6 / 10;
    // The client sends 60 % and stalls; the node records what it received, piece by piece.
    let (tx, rx) = futures::channel::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let stream_body = reqwest::Body::wrap_stream(rx);
    let first = body[..cut].to_vec();
    let req = tus_req(&cluster.nodes[1], reqwest::Method::PATCH, &url0)
        .header("content-type", "application/offset+octet-stream")
        .header("upload-offset", "0")
        .body(stream_body);
    let sending = tokio::spawn(async move { req.send().await });
    let mut tx = tx;
    for piece in first.chunks(256 << 10) {
        futures::SinkExt::send(&mut tx, Ok(piece.to_vec())).await.unwrap();
    }
    let other_url = cluster.nodes[2].url(&path);
    let mut offset = 0;
    for _ in 0..100 {
        offset = tus_offset(&cluster.nodes[2], &other_url).await.1;
        if offset >= (cut as u64 / (1 << 20)) * (1 << 20) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(offset >= 5 << 20, "recorded before the death: {offset}");
    cluster.nodes[1].kill9();
    drop(tx);
    let _ = sending.await;
    let other = &cluster.nodes[2];
    let (s, offset) = tus_offset(other, &other_url).await;
    assert_eq!(s, 200);
    assert!(offset <= cut as u64 && offset % (1 << 20) == 0, "{offset}");
    let (s, v, h) = tus_patch(other, &other_url, offset, body[offset as usize..].to_vec()).await;
    assert_eq!(s, 204, "{v}");
    let lease = h["x-lease-id"].to_str().unwrap().to_string();
    let r = other.download(&client(), &lease).await;
    assert_eq!(r.status(), 200);
    let got = r.bytes().await.unwrap();
    assert_eq!(
        blake3::hash(&got),
        blake3::hash(&body),
        "the lease holds the upload's bytes"
    );
}

/// A stock tus client (tuspy, from PyPI) uploads end to end; the lease it bought reads back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stock_tus_client_uploads_end_to_end() {
    let node = Relay::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("payload.bin");
    let body = bytes(3 << 20, 12);
    std::fs::write(&file, &body).unwrap();
    let script = r#"
import sys
from tusclient import client
c = client.TusClient(sys.argv[1] + "/api/uploads/tus", headers={"Authorization": sys.argv[2]})
u = c.uploader(sys.argv[3], chunk_size=1024 * 1024,
               metadata={"filename": "payload.bin", "duration_seconds": "600"})
u.upload()
print(u.url)
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, node.base(), &node.auth(), file.to_str().unwrap()])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "tuspy failed (scripts/test.sh installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let (s, _, h) = send(tus_req(&node, reqwest::Method::HEAD, &url)).await;
    assert_eq!(s, 200);
    let lease = h["x-lease-id"].to_str().expect("the lease it bought").to_string();
    assert_eq!(read(&node, &lease).await, (200, body));
}

/// A baton whose first write is over 3 MiB gets an upload URL and is unreadable (409) until the
/// bytes are in; another takes its content from a scratch object. Append batons refuse both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_baton_takes_a_large_first_write_or_a_scratch_object() {
    let node = Relay::start(&[]);
    let body = bytes(4 << 20, 13);
    let shape = json!({"preconfig": "pass", "capacity": {"size_bytes": 8 << 20, "egress_bytes": 64 << 20}});
    let mut req = shape.clone();
    req["content_size_bytes"] = json!(body.len());
    req["content_sha256"] = json!(sha256_hex(&body));
    let (s, created, _) = send(
        client()
            .post(node.url("/v1/baton"))
            .header("authorization", node.auth())
            .json(&req),
    )
    .await;
    assert_eq!(s, 201, "{created}");
    let id = created["baton_id"].as_str().unwrap();
    let owner_read = || {
        client()
            .get(node.url(&format!("/v1/baton/{id}")))
            .header("authorization", node.auth())
    };
    let (s, v, _) = send(owner_read()).await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("upload_pending")));
    assert_eq!(put(&created["upload"], body.clone(), &[]).await.0, 200);
    let r = owner_read().send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap().as_ref() == body.as_slice());

    let (s, scratch) = scratch_url(&node, &node.auth(), 1000).await;
    assert_eq!(s, 201);
    let small = bytes(1000, 14);
    assert_eq!(put(&scratch["upload"], small.clone(), &[]).await.0, 200);
    let mut req = shape.clone();
    req["input_key"] = scratch["input_key"].clone();
    let (s, from, _) = send(
        client()
            .post(node.url("/v1/baton"))
            .header("authorization", node.auth())
            .json(&req),
    )
    .await;
    assert_eq!(s, 201, "{from}");
    let r = client()
        .get(node.url(&format!("/v1/baton/{}", from["baton_id"].as_str().unwrap())))
        .header("authorization", node.auth())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap().as_ref() == small.as_slice());

    let (s, v, _) = send(
        client()
            .post(node.url("/v1/baton"))
            .header("authorization", node.auth())
            .json(&json!({"preconfig": "ledger", "content_size_bytes": 4 << 20})),
    )
    .await;
    assert_eq!(s, 405, "an append baton: {v}");
}

/// A tus upload is bounded before a byte is paid for: the owner's uploads in progress are capped,
/// and one whose balance cannot pay at the last byte waits (402) without the node joining its
/// bytes again on every HEAD, until a top-up lets the next HEAD buy the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tus_uploads_in_progress_are_bounded_and_unpaid_ones_wait() {
    let node = Relay::start(&["--tus-max-pending-per-owner", "2"]);
    let admin = node.admin_auth();
    let (s, _, _) = send(
        client()
            .post(node.url("/cluster/accounts"))
            .header("authorization", &admin)
            .json(&json!({"account_id": "acct_poor", "balance_micros": 58})),
    )
    .await;
    assert_eq!(s, 201);
    let (_, issued, _) = send(
        client()
            .post(node.url("/cluster/accounts/acct_poor/keys"))
            .header("authorization", &admin),
    )
    .await;
    let auth = format!("Bearer {}", issued["api_key"].as_str().unwrap());
    let create = |len: usize| {
        client()
            .post(node.url("/api/uploads/tus"))
            .header("authorization", &auth)
            .header("tus-resumable", "1.0.0")
            .header("upload-length", len.to_string())
            .header("upload-metadata", format!("duration_seconds {}", b64("60")))
    };
    let (s, _, h) = send(create(100_000)).await;
    assert_eq!(s, 201);
    let url = h["location"].to_str().unwrap().to_string();
    assert_eq!(send(create(10)).await.0, 201);
    let (s, v, _) = send(create(10)).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (429, Some("tus_quota_exceeded")),
        "{v}"
    );
    // Spend the balance below the price (58 - 29 = 29, then 0).
    for _ in 0..2 {
        let (s, v, _) = send(
            client()
                .post(node.url("/api/store"))
                .header("authorization", &auth)
                .header("x-file-name", "x")
                .header("x-size-bytes", "1")
                .header("x-duration-seconds", "60")
                .body(vec![1u8]),
        )
        .await;
        assert_eq!(s, 201, "{v}");
    }
    let patch = |offset: u64, body: Vec<u8>| {
        client()
            .patch(&url)
            .header("authorization", &auth)
            .header("tus-resumable", "1.0.0")
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", offset.to_string())
            .body(body)
    };
    let (s, v, _) = send(patch(0, bytes(100_000, 2))).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (402, Some("insufficient_balance")),
        "{v}"
    );
    let before = bytes_received(&node).await;
    for _ in 0..5 {
        let (s, _, _) = send(
            client()
                .head(&url)
                .header("authorization", &auth)
                .header("tus-resumable", "1.0.0"),
        )
        .await;
        assert_eq!(s, 402);
    }
    assert_eq!(
        bytes_received(&node).await,
        before,
        "no join while the balance cannot pay"
    );
    let (s, _, _) = send(
        client()
            .post(node.url("/cluster/accounts/acct_poor/topup"))
            .header("authorization", &admin)
            .json(&json!({"amount_micros": 1000})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _, h) = send(
        client()
            .head(&url)
            .header("authorization", &auth)
            .header("tus-resumable", "1.0.0"),
    )
    .await;
    assert_eq!(s, 200);
    assert!(h["x-lease-id"].to_str().unwrap().starts_with("lse_"));
}

/// tus can bring the bytes of a presigned create: `upload_id` in the metadata names the pending
/// upload (the caller's, of the same length), and the last PATCH completes it; the lease is the
/// one the create bought.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tus_fills_a_presigned_upload() {
    let node = Relay::start(&["--tus-chunk-bytes", "65536"]);
    let body = bytes(200_000, 15);
    let receipt = presigned(&node, body.len(), Some(&sha256_hex(&body))).await;
    let lease = receipt["lease_id"].as_str().unwrap();
    let upload_id = receipt["upload"]["upload_id"].as_str().unwrap();
    let create = |len: usize, id: &str| {
        tus_req(&node, reqwest::Method::POST, &node.url("/api/uploads/tus"))
            .header("upload-length", len.to_string())
            .header("upload-metadata", format!("upload_id {}", b64(id)))
    };
    let (s, v, _) = send(create(body.len() + 1, upload_id)).await;
    assert_eq!(s, 422, "another length: {v}");
    let (s, _, _) = send(create(body.len(), "upl_01HX0000000000000000000000")).await;
    assert_eq!(s, 404);
    let (s, v, h) = send(create(body.len(), upload_id)).await;
    assert_eq!(s, 201, "{v}");
    let url = h["location"].to_str().unwrap().to_string();
    let (s, _, _) = tus_patch(&node, &url, 0, body[..100_000].to_vec()).await;
    assert_eq!(s, 204);
    assert_eq!(read(&node, lease).await.0, 409, "still pending");
    let (s, v, h) = tus_patch(&node, &url, 100_000, body[100_000..].to_vec()).await;
    assert_eq!(s, 204, "{v}");
    assert_eq!(h["x-lease-id"].to_str().unwrap(), lease);
    assert_eq!(read(&node, lease).await, (200, body.clone()));
    let (s, _) = put(&receipt["upload"], body.clone(), &[]).await;
    assert_eq!(s, 409, "written once: the presigned URL is spent");

    // A fill whose lease is deleted before its last byte ends with a 410, and later requests
    // do not copy its bytes again.
    let other = presigned(&node, body.len(), None).await;
    let (s, v, h) = send(create(body.len(), other["upload"]["upload_id"].as_str().unwrap())).await;
    assert_eq!(s, 201, "{v}");
    let url = h["location"].to_str().unwrap().to_string();
    assert_eq!(tus_patch(&node, &url, 0, body[..100_000].to_vec()).await.0, 204);
    let (s, _, _) = send(
        client()
            .delete(node.url(&format!("/api/store/{}", other["lease_id"].as_str().unwrap())))
            .header("authorization", node.auth()),
    )
    .await;
    assert_eq!(s, 200);
    let (s, v, _) = tus_patch(&node, &url, 100_000, body[100_000..].to_vec()).await;
    assert_eq!(s, 410, "{v}");
    let before = bytes_received(&node).await;
    for _ in 0..3 {
        assert_eq!(tus_offset(&node, &url).await.0, 410);
    }
    assert_eq!(bytes_received(&node).await, before, "nothing copied again");
    let (s, v, _) = send(create(body.len(), other["upload"]["upload_id"].as_str().unwrap())).await;
    assert_eq!(s, 410, "a fill of a deleted lease: {v}");
}

/// A keyed retry of a presigned create answers the same lease and the same upload, its URLs
/// signed again for what is left of its life, and they work.
async fn a_keyed_retry_answers_the_same_upload(backend: Backend) {
    let node = backend.node(&[]);
    let body = bytes(4096, 16);
    let size = body.len().to_string();
    let create = || {
        client()
            .post(node.url("/api/store"))
            .header("authorization", node.auth())
            .header("idempotency-key", "big-1")
            .header("x-upload", "presigned")
            .header("x-file-name", "big.bin")
            .header("x-size-bytes", &size)
            .header("x-duration-seconds", "600")
    };
    let (s, first, _) = send(create()).await;
    assert_eq!(s, 201, "{first}");
    let (s, again, _) = send(create()).await;
    assert_eq!(s, 201, "{again}");
    assert_eq!(again["lease_id"], first["lease_id"]);
    assert_eq!(again["upload"]["upload_id"], first["upload"]["upload_id"]);
    assert_eq!(put(&again["upload"], body.clone(), &[]).await.0, 200);
    if backend.is_s3() {
        assert_eq!(complete(&node, &again["upload"], None).await.0, 200);
    }
    assert_eq!(read(&node, first["lease_id"].as_str().unwrap()).await, (200, body));
    let (s, done, _) = send(create()).await;
    assert_eq!(
        (s, &done["upload"]),
        (201, &Value::Null),
        "complete: nothing left to upload"
    );
}

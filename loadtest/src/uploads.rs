//! `uploads`: one large object four ways against one node on an S3-protocol store: straight to
//! the store (object_store multipart, the baseline), through the node (`POST /api/store`
//! streamed), presigned (`X-Upload: presigned`, the parts PUT straight to the bucket, then
//! `complete`), and tus (`PATCH`es of `--tus-chunk-mib`). Each round runs the four in turn, the
//! next round in reverse order (A B C D, D C B A) so drift hits all; the report is the worst
//! round of each. For every way: MiB/s seen by the client, the node's CPU seconds (from
//! `/proc/PID/stat`) and its peak RSS during that upload (`VmHWM`, reset before each through
//! `/proc/PID/clear_refs`).

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ObjectStoreExt, WriteMultipart};
use serde_json::{json, Value};

use crate::{LoadError, UploadsArgs};

const CHUNK: usize = 1 << 20;
const WAYS: [&str; 4] = ["direct", "node", "presigned", "tus"];

fn chunk(i: usize) -> Bytes {
    Bytes::from(vec![(i % 251) as u8; CHUNK])
}

fn err(what: &str, e: impl std::fmt::Display) -> LoadError {
    LoadError::Setup {
        target: what.into(),
        reason: e.to_string(),
    }
}

/// The node's CPU seconds so far (user + system).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command's closing parenthesis; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn reset_peak(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

#[derive(Default, Clone, Copy)]
struct Cell {
    mib_s: f64,
    cpu_s: f64,
    rss_mib: f64,
}

pub async fn run(args: UploadsArgs) -> Result<(), LoadError> {
    let size = args.size_mib as usize * CHUNK;
    let store = AmazonS3Builder::from_env()
        .with_bucket_name(&args.bucket)
        .with_endpoint(&args.endpoint)
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_virtual_hosted_style_request(false)
        .build()
        .map_err(|e| err("s3", e))?;
    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(3600))
        .build()
        .map_err(|e| err("client", e))?;
    let auth = format!("Bearer {}", args.key);
    let mut worst = [Cell {
        mib_s: f64::MAX,
        ..Cell::default()
    }; 4];
    for round in 0..args.rounds {
        let order: Vec<usize> = if round % 2 == 0 {
            vec![0, 1, 2, 3]
        } else {
            vec![3, 2, 1, 0]
        };
        for way in order {
            reset_peak(args.node_pid);
            let cpu0 = cpu_seconds(args.node_pid);
            let t = Instant::now();
            match way {
                0 => direct(&store, round, args.size_mib as usize).await?,
                1 => through_node(&http, &args.relay, &auth, args.size_mib as usize).await?,
                2 => presigned(&http, &args.relay, &auth, size).await?,
                _ => tus(&http, &args.relay, &auth, size, args.tus_chunk_mib as usize * CHUNK).await?,
            }
            let secs = t.elapsed().as_secs_f64();
            let cell = Cell {
                mib_s: args.size_mib as f64 / secs,
                cpu_s: cpu_seconds(args.node_pid) - cpu0,
                rss_mib: peak_rss_mib(args.node_pid),
            };
            eprintln!(
                "round {round} {:>9}: {:.0} MiB/s, node CPU {:.1} s, node peak RSS {:.0} MiB",
                WAYS[way], cell.mib_s, cell.cpu_s, cell.rss_mib
            );
            let w = &mut worst[way];
            w.mib_s = w.mib_s.min(cell.mib_s);
            w.cpu_s = w.cpu_s.max(cell.cpu_s);
            w.rss_mib = w.rss_mib.max(cell.rss_mib);
        }
    }
    println!(
        "| way | {} MiB: MiB/s (worst of {}) | vs direct | node CPU s | node peak RSS MiB |",
        args.size_mib, args.rounds
    );
    println!("|---|---:|---:|---:|---:|");
    for (i, w) in worst.iter().enumerate() {
        println!(
            "| {} | {:.0} | {:.2} | {:.1} | {:.0} |",
            WAYS[i],
            w.mib_s,
            w.mib_s / worst[0].mib_s,
            w.cpu_s,
            w.rss_mib
        );
    }
    Ok(())
}

/// The baseline: object_store multipart with Relay's own part size, two parts in flight.
async fn direct(store: &object_store::aws::AmazonS3, round: u64, mib: usize) -> Result<(), LoadError> {
    let path = Path::from(format!("direct/{round}"));
    let mut upload =
        WriteMultipart::new_with_chunk_size(store.put_multipart(&path).await.map_err(|e| err("direct", e))?, 8 << 20);
    for i in 0..mib {
        upload.put(chunk(i));
        upload.wait_for_capacity(2).await.map_err(|e| err("direct", e))?;
    }
    upload.finish().await.map_err(|e| err("direct", e))?;
    store.delete(&path).await.map_err(|e| err("direct", e))?;
    Ok(())
}

async fn ok_json(resp: reqwest::Response, what: &str, want: u16) -> Result<Value, LoadError> {
    let status = resp.status().as_u16();
    let text = resp.text().await.map_err(|e| err(what, e))?;
    if status != want {
        return Err(err(what, format!("{status} {text}")));
    }
    serde_json::from_str(&text).map_err(|e| err(what, e))
}

async fn delete_lease(http: &reqwest::Client, relay: &str, auth: &str, lease_id: &str) {
    let _ = http
        .delete(format!("{relay}/api/store/{lease_id}"))
        .header("authorization", auth)
        .send()
        .await;
}

async fn through_node(http: &reqwest::Client, relay: &str, auth: &str, mib: usize) -> Result<(), LoadError> {
    let body = reqwest::Body::wrap_stream(futures::stream::iter(
        (0..mib).map(|i| Ok::<_, std::io::Error>(chunk(i))),
    ));
    let resp = http
        .post(format!("{relay}/api/store"))
        .header("authorization", auth)
        .header("x-file-name", "big.bin")
        .header("x-size-bytes", (mib * CHUNK).to_string())
        .header("x-duration-seconds", "3600")
        .body(body)
        .send()
        .await
        .map_err(|e| err("node", e))?;
    let lease = ok_json(resp, "node", 201).await?;
    delete_lease(http, relay, auth, lease["lease_id"].as_str().unwrap_or_default()).await;
    Ok(())
}

/// The bytes of `[start, end)` of the generated object, as a stream of its 1 MiB chunks.
fn range_body(start: usize, end: usize) -> reqwest::Body {
    let pieces: Vec<Result<Bytes, std::io::Error>> = (start / CHUNK..end.div_ceil(CHUNK))
        .map(|i| {
            let c = chunk(i);
            let (from, to) = (start.max(i * CHUNK) - i * CHUNK, end.min((i + 1) * CHUNK) - i * CHUNK);
            Ok(c.slice(from..to))
        })
        .collect();
    reqwest::Body::wrap_stream(futures::stream::iter(pieces))
}

async fn presigned(http: &reqwest::Client, relay: &str, auth: &str, size: usize) -> Result<(), LoadError> {
    let resp = http
        .post(format!("{relay}/api/store"))
        .header("authorization", auth)
        .header("x-upload", "presigned")
        .header("x-file-name", "big.bin")
        .header("x-size-bytes", size.to_string())
        .header("x-duration-seconds", "3600")
        .send()
        .await
        .map_err(|e| err("presigned", e))?;
    let receipt = ok_json(resp, "presigned create", 201).await?;
    let upload = &receipt["upload"];
    let mut complete = json!({});
    match upload["parts"].as_array() {
        None => {
            let url = upload["url"].as_str().unwrap_or_default();
            let r = http
                .put(url)
                .header("if-none-match", "*")
                .header("content-length", size)
                .body(range_body(0, size))
                .send()
                .await
                .map_err(|e| err("presigned put", e))?;
            if !r.status().is_success() {
                return Err(err("presigned put", r.status()));
            }
        }
        Some(parts) => {
            let mut at = 0usize;
            let mut jobs = Vec::new();
            for p in parts {
                let n = p["size_bytes"].as_u64().unwrap_or(0) as usize;
                let (url, number, start) = (
                    p["url"].as_str().unwrap_or_default().to_string(),
                    p["part_number"].clone(),
                    at,
                );
                at += n;
                let http = http.clone();
                jobs.push(async move {
                    let r = http
                        .put(url)
                        .header("content-length", n)
                        .body(range_body(start, start + n))
                        .send()
                        .await
                        .map_err(|e| err("part", e))?;
                    if !r.status().is_success() {
                        return Err(err("part", r.status()));
                    }
                    let etag = r
                        .headers()
                        .get("etag")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    Ok::<Value, LoadError>(json!({"part_number": number, "etag": etag}))
                });
            }
            // Two parts in flight, like the direct baseline.
            let tags: Vec<Result<Value, LoadError>> = futures::stream::iter(jobs).buffered(2).collect().await;
            let tags: Result<Vec<Value>, LoadError> = tags.into_iter().collect();
            complete = json!({ "parts": tags? });
        }
    }
    let r = http
        .post(upload["complete_url"].as_str().unwrap_or_default())
        .header("authorization", auth)
        .json(&complete)
        .send()
        .await
        .map_err(|e| err("complete", e))?;
    ok_json(r, "complete", 200).await?;
    delete_lease(http, relay, auth, receipt["lease_id"].as_str().unwrap_or_default()).await;
    Ok(())
}

async fn tus(http: &reqwest::Client, relay: &str, auth: &str, size: usize, piece: usize) -> Result<(), LoadError> {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let r = http
        .post(format!("{relay}/api/uploads/tus"))
        .header("authorization", auth)
        .header("tus-resumable", "1.0.0")
        .header("upload-length", size.to_string())
        .header(
            "upload-metadata",
            format!("filename {},duration_seconds {}", b64("big.bin"), b64("3600")),
        )
        .send()
        .await
        .map_err(|e| err("tus create", e))?;
    if r.status() != 201 {
        return Err(err("tus create", r.status()));
    }
    let url = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let mut at = 0;
    let mut lease = String::new();
    while at < size {
        let end = (at + piece).min(size);
        let r = http
            .patch(&url)
            .header("authorization", auth)
            .header("tus-resumable", "1.0.0")
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", at.to_string())
            .header("content-length", end - at)
            .body(range_body(at, end))
            .send()
            .await
            .map_err(|e| err("tus patch", e))?;
        if r.status() != 204 {
            return Err(err(
                "tus patch",
                format!("{} {}", r.status(), r.text().await.unwrap_or_default()),
            ));
        }
        if let Some(id) = r.headers().get("x-lease-id").and_then(|v| v.to_str().ok()) {
            lease = id.to_string();
        }
        at = end;
    }
    delete_lease(http, relay, auth, &lease).await;
    Ok(())
}

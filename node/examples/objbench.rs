//! Large-object throughput through Relay vs directly to the same S3-compatible store.
//!
//! `objbench --relay URL --key KEY --endpoint URL --bucket B --size-mib N [--rounds R]`
//! (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY). Direct: object_store multipart
//! upload with Relay's part size, then a streamed GET. Through Relay: POST /api/store streamed
//! from a generator, then GET /api/download streamed and discarded. Prints MiB/s and ratios.

use std::time::Instant;

use axum::body::Bytes;
use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ObjectStoreExt, WriteMultipart};

const CHUNK: usize = 1 << 20;
const PART: usize = 8 << 20;

fn chunk(i: usize) -> Bytes {
    Bytes::from(vec![(i % 251) as u8; CHUNK])
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut a = std::collections::HashMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        a.insert(k, it.next().ok_or("flag without value")?);
    }
    let get = |k: &str| a.get(k).cloned().ok_or(format!("{k} is required"));
    let (relay, key, endpoint, bucket) = (get("--relay")?, get("--key")?, get("--endpoint")?, get("--bucket")?);
    let size_mib: usize = get("--size-mib")?.parse()?;
    let rounds: usize = a.get("--rounds").map(|r| r.parse()).transpose()?.unwrap_or(3);
    let store = AmazonS3Builder::from_env()
        .with_bucket_name(&bucket)
        .with_endpoint(&endpoint)
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_virtual_hosted_style_request(false)
        .build()?;
    let http = reqwest::Client::builder().tcp_nodelay(true).build()?;
    let mib = |secs: f64| size_mib as f64 / secs;
    let (mut du, mut dd, mut ru, mut rd) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        // Direct to the store.
        let path = Path::from(format!("direct/{round}"));
        let t = Instant::now();
        let mut upload = WriteMultipart::new_with_chunk_size(store.put_multipart(&path).await?, PART);
        for i in 0..size_mib {
            upload.put(chunk(i));
            upload.wait_for_capacity(2).await?;
        }
        upload.finish().await?;
        du.push(mib(t.elapsed().as_secs_f64()));
        let t = Instant::now();
        let mut stream = store.get(&path).await?.into_stream();
        let mut n = 0;
        while let Some(c) = stream.next().await {
            n += c?.len();
        }
        assert_eq!(n, size_mib * CHUNK);
        dd.push(mib(t.elapsed().as_secs_f64()));
        store.delete(&path).await?;

        // Through Relay.
        let t = Instant::now();
        let body = reqwest::Body::wrap_stream(futures::stream::iter(
            (0..size_mib).map(|i| Ok::<_, std::io::Error>(chunk(i))),
        ));
        let resp = http
            .post(format!("{relay}/api/store"))
            .header("authorization", format!("Bearer {key}"))
            .header("x-file-name", "big.bin")
            .header("x-size-bytes", (size_mib * CHUNK).to_string())
            .header("x-duration-seconds", "3600")
            .body(body)
            .send()
            .await?;
        if resp.status() != 201 {
            return Err(format!("store: {} {}", resp.status(), resp.text().await?).into());
        }
        let lease: serde_json::Value = resp.json().await?;
        ru.push(mib(t.elapsed().as_secs_f64()));
        let t = Instant::now();
        let resp = http
            .get(format!(
                "{relay}/api/download/{}",
                lease["lease_id"].as_str().unwrap_or_default()
            ))
            .header("authorization", format!("Bearer {key}"))
            .send()
            .await?;
        let mut stream = resp.bytes_stream();
        let mut n = 0;
        while let Some(c) = stream.next().await {
            n += c?.len();
        }
        assert_eq!(n, size_mib * CHUNK, "download incomplete");
        rd.push(mib(t.elapsed().as_secs_f64()));
        http.delete(format!(
            "{relay}/api/store/{}",
            lease["lease_id"].as_str().unwrap_or_default()
        ))
        .header("authorization", format!("Bearer {key}"))
        .send()
        .await?;
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let (du, dd, ru, rd) = (median(&mut du), median(&mut dd), median(&mut ru), median(&mut rd));
    println!("object {size_mib} MiB, median of {rounds} rounds (MiB/s)");
    println!("upload:   direct {du:.0}  relay {ru:.0}  ratio {:.2}", ru / du);
    println!("download: direct {dd:.0}  relay {rd:.0}  ratio {:.2}", rd / dd);
    Ok(())
}

//! Object bytes: streaming uploads that hash and count as they go, and downloads that are checked
//! against the stored blake3 before the last byte leaves.

use std::sync::Arc;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;

/// Every blob Relay writes lives under this prefix (and nothing else does).
pub const BLOB_PREFIX: &str = "blobs";

/// What an upload wrote.
pub struct Uploaded {
    pub object_key: String,
    pub size_bytes: u64,
    pub blake3_hex: String,
    /// When asked for: the bytes' SHA-256, hex.
    pub sha256_hex: Option<String>,
}

/// How many multipart parts one upload keeps in flight.
const PARTS_IN_FLIGHT: usize = 2;

/// Streams `body` to `object_key`, refusing as soon as it exceeds `declared_bytes` and at the end
/// if it fell short. On any error nothing is left behind under `object_key`.
pub async fn upload(
    store: &Arc<dyn ObjectStore>,
    object_key: &str,
    body: Body,
    declared_bytes: u64,
    single_put_max_bytes: usize,
    part_bytes: usize,
    with_sha256: bool,
) -> ApiResult<Uploaded> {
    let path = Path::from(object_key);
    let mut stream = body.into_data_stream();
    let mut hasher = blake3::Hasher::new();
    let mut sha256 = with_sha256.then(|| ring::digest::Context::new(&ring::digest::SHA256));
    let mut received: u64 = 0;
    let mut small = BytesMut::new();
    let mut multipart: Option<WriteMultipart> = None;

    let result: ApiResult<()> = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(crate::listener::body_error)?;
            received += chunk.len() as u64;
            if received > declared_bytes {
                return Err(ApiError::SizeMismatch {
                    declared: declared_bytes,
                    received,
                });
            }
            hasher.update(&chunk);
            if let Some(sha) = sha256.as_mut() {
                sha.update(&chunk);
            }
            match multipart.as_mut() {
                Some(upload) => {
                    upload.put(chunk);
                    upload.wait_for_capacity(PARTS_IN_FLIGHT).await?;
                }
                None if small.len() + chunk.len() <= single_put_max_bytes => small.extend_from_slice(&chunk),
                None => {
                    let mut upload = WriteMultipart::new_with_chunk_size(store.put_multipart(&path).await?, part_bytes);
                    upload.put(std::mem::take(&mut small).freeze());
                    upload.put(chunk);
                    upload.wait_for_capacity(PARTS_IN_FLIGHT).await?;
                    multipart = Some(upload);
                }
            }
        }
        if received != declared_bytes {
            return Err(ApiError::SizeMismatch {
                declared: declared_bytes,
                received,
            });
        }
        Ok(())
    }
    .await;

    match (result, multipart) {
        (Ok(()), Some(upload)) => {
            upload.finish().await?;
        }
        (Ok(()), None) => {
            store.put(&path, PutPayload::from(small.freeze())).await?;
        }
        (Err(e), Some(upload)) => {
            if let Err(abort) = upload.abort().await {
                tracing::warn!(object_key, error = %abort, "aborting a failed multipart upload");
            }
            return Err(e);
        }
        (Err(e), None) => return Err(e),
    }
    Ok(Uploaded {
        object_key: object_key.to_string(),
        size_bytes: received,
        blake3_hex: hasher.finalize().to_hex().to_string(),
        sha256_hex: sha256.map(|s| hex::encode(s.finish())),
    })
}

/// What the store holds at `object_key`, read back whole: its size, blake3 and (when
/// `with_sha256`) SHA-256, hex; `None`: nothing is there.
pub async fn measure(
    store: &Arc<dyn ObjectStore>,
    object_key: &str,
    with_sha256: bool,
) -> ApiResult<Option<(u64, String, Option<String>)>> {
    let got = match store.get(&Path::from(object_key)).await {
        Ok(got) => got,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut stream = got.into_stream();
    let mut blake = blake3::Hasher::new();
    let mut sha = with_sha256.then(|| ring::digest::Context::new(&ring::digest::SHA256));
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        size += chunk.len() as u64;
        blake.update(&chunk);
        if let Some(sha) = sha.as_mut() {
            sha.update(&chunk);
        }
    }
    let sha256_hex = sha.map(|s| hex::encode(s.finish()));
    Ok(Some((size, blake.finalize().to_hex().to_string(), sha256_hex)))
}

/// Deletes an object; one that is already gone counts as deleted.
pub async fn delete(store: &Arc<dyn ObjectStore>, object_key: &str) -> Result<(), object_store::Error> {
    match store.delete(&Path::from(object_key)).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Deletes a blob a failed request wrote; failure here only leaves an orphan, so it is logged.
pub async fn discard(store: &Arc<dyn ObjectStore>, object_key: &str) {
    if let Err(e) = delete(store, object_key).await {
        tracing::warn!(object_key, error = %e, "could not delete the blob of a failed request");
    }
}

/// Opens `object_key` for streaming. A full read (`range: None`) is verified against
/// `blake3_hex`: the final chunk is held back until the hash matches, so a client never receives
/// a complete body that is wrong; on a mismatch the stream ends with an error instead.
pub async fn open(
    store: &Arc<dyn ObjectStore>,
    object_key: &str,
    range: Option<std::ops::Range<u64>>,
    blake3_hex: &str,
    metrics: Arc<Metrics>,
) -> ApiResult<Body> {
    let options = GetOptions {
        range: range.clone().map(GetRange::Bounded),
        ..Default::default()
    };
    let result = match store.get_opts(&Path::from(object_key), options).await {
        Ok(r) => r,
        // The ledger says the lease is live, so a missing object is damage, not a 404.
        Err(object_store::Error::NotFound { .. }) => {
            metrics.integrity_failures.inc();
            tracing::error!(object_key, "object of a live lease is missing");
            return Err(ApiError::Integrity);
        }
        Err(e) => return Err(e.into()),
    };
    let stream = result.into_stream();
    if range.is_some() {
        return Ok(Body::from_stream(stream));
    }
    Ok(Body::from_stream(verified(
        stream,
        blake3_hex.to_string(),
        object_key.to_string(),
        metrics,
    )))
}

fn verified(
    mut inner: impl Stream<Item = Result<Bytes, object_store::Error>> + Send + Unpin + 'static,
    expected_hex: String,
    object_key: String,
    metrics: Arc<Metrics>,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    async_stream(move |tx| async move {
        let mut hasher = blake3::Hasher::new();
        let mut held: Option<Bytes> = None;
        while let Some(item) = inner.next().await {
            let chunk = item.map_err(std::io::Error::other)?;
            hasher.update(&chunk);
            if let Some(prev) = held.replace(chunk) {
                if tx.send(Ok(prev)).await.is_err() {
                    return Ok(());
                }
            }
        }
        if hasher.finalize().to_hex().as_str() != expected_hex {
            metrics.integrity_failures.inc();
            tracing::error!(object_key, "blake3 mismatch while serving an object; download aborted");
            return Err(std::io::Error::other("integrity check failed"));
        }
        if let Some(last) = held {
            let _ = tx.send(Ok(last)).await;
        }
        Ok(())
    })
}

/// A stream fed by a task through a small bounded channel (backpressure: one chunk ahead).
fn async_stream<F, Fut>(f: F) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>) -> Fut,
    Fut: std::future::Future<Output = Result<(), std::io::Error>> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let err_tx = tx.clone();
    let fut = f(tx);
    tokio::spawn(async move {
        if let Err(e) = fut.await {
            let _ = err_tx.send(Err(e)).await;
        }
    });
    tokio_stream_from(rx)
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Reads a request body of at most `limit` bytes into memory; a longer one is refused as soon as
/// it crosses the limit.
pub async fn read_body(body: Body, limit: u64, what: &'static str) -> ApiResult<Bytes> {
    let mut stream = body.into_data_stream();
    let mut buf = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(crate::listener::body_error)?;
        if (buf.len() + chunk.len()) as u64 > limit {
            return Err(ApiError::TooLarge { what, limit });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Writes a small, already buffered body with one PUT.
pub async fn put_small(store: &Arc<dyn ObjectStore>, object_key: &str, bytes: Bytes) -> ApiResult<()> {
    store.put(&Path::from(object_key), PutPayload::from(bytes)).await?;
    Ok(())
}

/// Reads a whole small object and checks it against `blake3_hex`. `None` when the object is
/// gone (for example superseded and collected between the ledger read and this one).
pub async fn read_small(
    store: &Arc<dyn ObjectStore>,
    object_key: &str,
    blake3_hex: &str,
    metrics: &Metrics,
) -> ApiResult<Option<Bytes>> {
    let bytes = match store.get(&Path::from(object_key)).await {
        Ok(result) => result.bytes().await?,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if blake3::hash(&bytes).to_hex().as_str() != blake3_hex {
        metrics.integrity_failures.inc();
        tracing::error!(object_key, "blake3 mismatch reading a stored body");
        return Err(ApiError::Integrity);
    }
    Ok(Some(bytes))
}

/// Writes a fresh probe object (32 random bytes under `probes/`) for a joining node to read
/// through its own object store; returns its key and blake3.
pub async fn write_probe(store: &Arc<dyn ObjectStore>) -> ApiResult<(String, [u8; 32])> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::Internal(e.to_string()))?;
    let key = format!("{}{}", relay_raft::grpc::identity::PROBE_PREFIX, ulid::Ulid::new());
    put_small(store, &key, Bytes::copy_from_slice(&bytes)).await?;
    Ok((key, *blake3::hash(&bytes).as_bytes()))
}

/// How this node answers a probe: the blake3 of the probe object as its store holds it.
pub fn probe_reader(store: Arc<dyn ObjectStore>) -> relay_raft::grpc::identity::ProbeReader {
    Arc::new(move |key: String| {
        let store = store.clone();
        Box::pin(async move {
            let result = store.get(&Path::from(key.as_str())).await.ok()?;
            let bytes = result.bytes().await.ok()?;
            (bytes.len() <= 64).then(|| *blake3::hash(&bytes).as_bytes())
        })
    })
}

//! Opening the object store named by `--objects`: `file://PATH` (fsynced local files) or
//! `s3://BUCKET?endpoint=URL&region=R` (any S3-compatible store, path-style requests).

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::local::LocalFileSystem;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};

/// Why the `--objects` URL names no usable store.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StoreUrlError(pub String);

pub fn open(url: &str) -> Result<Arc<dyn ObjectStore>, StoreUrlError> {
    if let Some(path) = url.strip_prefix("file://") {
        return open_local(url, path);
    }
    if let Some(rest) = url.strip_prefix("s3://") {
        return Ok(Arc::new(open_s3(url, rest)?));
    }
    Err(StoreUrlError(format!(
        "{url}: unsupported object store URL (expected file://PATH or s3://BUCKET?endpoint=URL&region=R)"
    )))
}

/// A directory on local disk, fsynced on write so an acknowledged lease's bytes survive a power
/// cut like its ledger entry does.
fn open_local(url: &str, path: &str) -> Result<Arc<dyn ObjectStore>, StoreUrlError> {
    if path.is_empty() {
        return Err(StoreUrlError(format!("{url}: empty path")));
    }
    std::fs::create_dir_all(path).map_err(|e| StoreUrlError(format!("{url}: {e}")))?;
    let fs = LocalFileSystem::new_with_prefix(path)
        .map_err(|e| StoreUrlError(format!("{url}: {e}")))?
        .with_automatic_cleanup(true)
        .with_fsync(true);
    Ok(Arc::new(fs))
}

/// S3 or any S3-compatible store. Credentials and other settings come from the usual AWS
/// environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
/// …); the URL's `endpoint`, `region` and `allow_http` override them. Requests are path-style,
/// which every S3-compatible server accepts. Retries and timeouts are bounded, so a store that is
/// down turns into a quick 503 rather than a hung request.
fn open_s3(url: &str, rest: &str) -> Result<AmazonS3, StoreUrlError> {
    let bad = |why: String| StoreUrlError(format!("{url}: {why}"));
    let (bucket, query) = rest.split_once('?').unwrap_or((rest, ""));
    let valid_bucket = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if !valid_bucket {
        return Err(bad(format!("{bucket:?} is not a bucket name")));
    }
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_virtual_hosted_style_request(false)
        .with_retry(RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: 3,
            retry_timeout: Duration::from_secs(15),
        })
        .with_client_options(
            ClientOptions::new()
                .with_connect_timeout(Duration::from_secs(5))
                // Covers streaming a large object to or from the store, not just the first byte.
                .with_timeout(Duration::from_secs(600)),
        );
    let mut region_set = std::env::var_os("AWS_REGION").is_some() || std::env::var_os("AWS_DEFAULT_REGION").is_some();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .map_err(|_| bad(format!("{key}: not UTF-8")))?
            .into_owned();
        match key {
            "endpoint" => {
                if !(value.starts_with("http://") || value.starts_with("https://")) {
                    return Err(bad("endpoint must be an http:// or https:// URL".into()));
                }
                if value.starts_with("http://") {
                    builder = builder.with_allow_http(true);
                }
                builder = builder.with_endpoint(value);
            }
            "region" => {
                builder = builder.with_region(value);
                region_set = true;
            }
            "allow_http" => match value.as_str() {
                "true" | "1" => builder = builder.with_allow_http(true),
                "false" | "0" => builder = builder.with_allow_http(false),
                _ => return Err(bad("allow_http must be true or false".into())),
            },
            other => {
                return Err(bad(format!(
                    "unknown parameter {other:?} (endpoint, region, allow_http)"
                )))
            }
        }
    }
    if !region_set {
        builder = builder.with_region("us-east-1");
    }
    builder.build().map_err(|e| bad(e.to_string()))
}

/// The S3 client behind an `s3://` URL, for what only S3 does: presigned URLs and multipart
/// uploads the client drives. `None` for local files.
pub fn s3(url: &str) -> Result<Option<Arc<AmazonS3>>, StoreUrlError> {
    match url.strip_prefix("s3://") {
        Some(rest) => Ok(Some(Arc::new(open_s3(url, rest)?))),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Good URLs open (no request is made); bad ones say why.
    #[test]
    fn urls() {
        assert!(open("s3://relay-test?endpoint=http://127.0.0.1:9000&region=us-east-1").is_ok());
        assert!(open("s3://relay-test?endpoint=https://s3.example.com").is_ok());
        for bad in [
            "s3://",
            "s3://UPPER",
            "s3://ok-bucket?endpoint=ftp://x",
            "s3://ok-bucket?nonsense=1",
            "s3://ok-bucket?allow_http=maybe",
            "gs://bucket",
            "file://",
        ] {
            assert!(open(bad).is_err(), "{bad}");
        }
    }
}

//! Bytes to and from the API, streamed: a file is never read whole into memory, and what
//! arrives is written as it comes.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::http::CliError;
use super::progress;

const CHUNK_BYTES: usize = 256 << 10;

/// `path`'s length and its bytes as a stream that advances a progress bar (stdin is sent as
/// bytes read first: its length must be known before sending).
pub async fn upload_stream(
    path: &Path,
    quiet: bool,
) -> Result<(u64, impl Stream<Item = std::io::Result<Bytes>> + Send + 'static), CliError> {
    let io = |e: std::io::Error| CliError::Io(format!("{}: {e}", path.display()));
    let file = tokio::fs::File::open(path).await.map_err(io)?;
    let len = file.metadata().await.map_err(io)?.len();
    let source = file;
    let bar = progress::bar("upload", Some(len), quiet);
    let stream = futures::stream::unfold((source, bar), |(mut source, bar)| async move {
        let mut buf = vec![0u8; CHUNK_BYTES];
        match source.read(&mut buf).await {
            Ok(0) => {
                bar.finish();
                None
            }
            Ok(n) => {
                bar.inc(n as u64);
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), (source, bar)))
            }
            Err(e) => {
                bar.abandon();
                Some((Err(e), (source, bar)))
            }
        }
    });
    Ok((len, stream))
}

/// Writes a successful answer's body to `output` (or stdout), with a bar when it is big. A file
/// is written beside its target and renamed in whole, so a failed download leaves nothing.
pub async fn download(resp: reqwest::Response, output: Option<&PathBuf>, quiet: bool) -> Result<u64, CliError> {
    let bar = progress::bar("download", resp.content_length(), quiet);
    let (mut sink, partial): (Box<dyn tokio::io::AsyncWrite + Unpin>, Option<PathBuf>) = match output {
        Some(path) if path != Path::new("-") => {
            if path.is_dir() {
                return Err(CliError::Usage(format!(
                    "-o {}: a directory; name a file",
                    path.display()
                )));
            }
            // A fresh name, created exclusively: an existing file or symlink there is never
            // followed or overwritten.
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let partial = path.with_file_name(format!(".{name}.{}.relay-partial", ulid::Ulid::new()));
            let file = tokio::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&partial)
                .await
                .map_err(|e| CliError::Io(format!("{}: {e}", partial.display())))?;
            (Box::new(file), Some(partial))
        }
        _ => (Box::new(tokio::io::stdout()), None),
    };
    let mut written = 0u64;
    let mut body = resp.bytes_stream();
    let result: Result<(), CliError> = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| CliError::Io(format!("the download broke off: {e}")))?;
            sink.write_all(&chunk)
                .await
                .map_err(|e| CliError::Io(format!("writing: {e}")))?;
            written += chunk.len() as u64;
            bar.inc(chunk.len() as u64);
        }
        sink.flush().await.map_err(|e| CliError::Io(format!("writing: {e}")))?;
        Ok(())
    }
    .await;
    drop(sink);
    match (result, partial, output) {
        (Ok(()), Some(partial), Some(path)) => {
            if let Err(e) = tokio::fs::rename(&partial, path).await {
                let _ = tokio::fs::remove_file(&partial).await;
                bar.abandon();
                return Err(CliError::Io(format!("{}: {e}", path.display())));
            }
            bar.finish();
            Ok(written)
        }
        (Ok(()), _, _) => {
            bar.finish();
            Ok(written)
        }
        (Err(e), partial, _) => {
            bar.abandon();
            if let Some(partial) = partial {
                let _ = tokio::fs::remove_file(partial).await;
            }
            Err(e)
        }
    }
}

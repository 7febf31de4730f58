//! The HTTP listener, with a bound on everything a connection can hold:
//!
//! - connections open at once (beyond it, new ones wait in the kernel's backlog), and from one
//!   client address (beyond it, refused with 429 and closed);
//! - the time to send a request's headers, which also ends idle keep-alive connections;
//! - the size and count of headers (431);
//! - an idle timeout: a connection that moves no byte either way for that long is closed;
//! - a send timeout: an answer the client stops taking (no byte accepted for that long) is cut
//!   off, so slow readers cannot hold answers, and the memory behind them, for ever;
//! - request bodies: no byte for `body_idle`, or slower than `min_body_bytes_per_second` on
//!   average once `body_grace` has passed, ends the body with [`BodyTimeout`] (408).
//!
//! Every request also learns its client's address ([`ClientAddr`]).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use crate::error::ApiError;
use crate::limits::{ip_key, ClientAddr, PerKey};

/// The listener's figures: the node's flags (`relay serve --help`, where each default is
/// written), and the constants below.
#[derive(Clone, Debug)]
pub struct ListenerConfig {
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub send_timeout: Duration,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub body_idle: Duration,
    pub body_grace: Duration,
    pub min_body_bytes_per_second: u64,
}

/// Headers in one request head, at most (431 beyond).
pub const MAX_HEADERS: usize = 100;
/// How long a request body may take before the minimum rate applies.
pub const BODY_GRACE: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting and waits for
/// the open connections to finish (the caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: ListenerConfig,
    tls: Option<crate::tls::HttpTls>,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_headers(config.max_headers)
        .max_header_size(config.max_header_bytes)
        .max_buf_size((config.max_header_bytes * 2).max(8192));
    let http = Arc::new(http);
    let config = Arc::new(config);
    let connections = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let per_ip = Arc::new(PerKey::new(config.max_connections_per_ip.max(1) as u64));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = connections.clone().acquire_owned() => p.map_err(io::Error::other)?,
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Some(per_ip_slot) = per_ip.enter(&ip_key(peer.ip()), 1) else {
            // One address holds its share already: say so and close, without a task. (Over TLS
            // the client could not read plaintext: the close alone says it.)
            if tls.is_none() {
                let _ = stream.try_write(TOO_MANY_CONNECTIONS);
            }
            continue;
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "setting TCP_NODELAY");
        }
        let io = TokioIo::new(IdleIo::new(stream, config.idle_timeout, config.send_timeout));
        let router = router.clone();
        let body_config = config.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(|b| Body::new(TimedBody::new(b, &body_config)));
            request.extensions_mut().insert(ClientAddr(peer));
            router.clone().oneshot(request)
        });
        let Some(tls) = &tls else {
            let connection = graceful.watch(http.serve_connection(io, service));
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(%peer, error = %e, "http connection ended with an error");
                }
                drop((permit, per_ip_slot));
            });
            continue;
        };
        // The handshake runs in the connection's task, bounded like a request's headers, so a
        // slow or silent client holds only its own slot.
        let acceptor = tls.acceptor().clone();
        let watcher = graceful.watcher();
        let http = http.clone();
        let handshake_timeout = config.header_read_timeout;
        tokio::spawn(async move {
            let tls_stream = match tokio::time::timeout(handshake_timeout, acceptor.accept(io.into_inner())).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "tls handshake failed");
                    return drop((permit, per_ip_slot));
                }
                Err(_) => {
                    tracing::debug!(%peer, "tls handshake timed out");
                    return drop((permit, per_ip_slot));
                }
            };
            let connection = watcher.watch(http.serve_connection(TokioIo::new(tls_stream), service));
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "https connection ended with an error");
            }
            drop((permit, per_ip_slot));
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The answer to a connection over its address's cap, written before closing it.
const TOO_MANY_CONNECTIONS: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n\
retry-after: 1\r\nconnection: close\r\ncontent-length: 101\r\n\r\n\
{\"status\":\"error\",\"error\":{\"code\":\"rate_limited\",\"message\":\"too many connections from this address\"}}";

/// A request body that came too slowly or stopped coming.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BodyTimeout(pub &'static str);

/// The API error for a failure while reading a request body.
pub fn body_error(e: axum::Error) -> ApiError {
    match e.into_inner().downcast::<BodyTimeout>() {
        Ok(timeout) => ApiError::RequestTimeout(timeout.0),
        Err(other) => ApiError::BadRequest(format!("reading the request body: {other}")),
    }
}

/// The request body, timed (see the module docs). The clock starts when the handler first reads.
struct TimedBody {
    inner: Incoming,
    body_idle: Duration,
    grace: Duration,
    min_rate: u64,
    started: Option<Instant>,
    last_byte: Instant,
    received: u64,
    timer: Pin<Box<Sleep>>,
}

impl TimedBody {
    fn new(inner: Incoming, config: &ListenerConfig) -> TimedBody {
        let now = Instant::now();
        TimedBody {
            inner,
            body_idle: config.body_idle,
            grace: config.body_grace,
            min_rate: config.min_body_bytes_per_second,
            started: None,
            last_byte: now,
            received: 0,
            timer: Box::pin(tokio::time::sleep_until(now + config.body_idle)),
        }
    }

    /// Why the body must stop now, if it must.
    fn verdict(&self, now: Instant) -> Option<BodyTimeout> {
        if now.duration_since(self.last_byte) >= self.body_idle {
            return Some(BodyTimeout("the request body stopped arriving"));
        }
        let started = self.started?;
        let elapsed = now.duration_since(started);
        if self.min_rate > 0 && elapsed > self.grace {
            let owed = (elapsed - self.grace).as_secs_f64() * self.min_rate as f64;
            if (self.received as f64) < owed {
                return Some(BodyTimeout("the request body arrived too slowly"));
            }
        }
        None
    }
}

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let now = Instant::now();
        if self.started.is_none() {
            self.started = Some(now);
            self.last_byte = now;
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.received += data.len() as u64;
                    if !data.is_empty() {
                        self.last_byte = now;
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                if let Some(timeout) = self.verdict(now) {
                    return Poll::Ready(Some(Err(timeout.into())));
                }
                // Wake up when the body would go idle, and at least every second to check the rate.
                let wake = (self.last_byte + self.body_idle).min(now + Duration::from_secs(1));
                self.timer.as_mut().reset(wake);
                match self.timer.as_mut().poll(cx) {
                    Poll::Ready(()) => match self.verdict(Instant::now()) {
                        Some(timeout) => Poll::Ready(Some(Err(timeout.into()))),
                        None => {
                            cx.waker().wake_by_ref();
                            Poll::Pending
                        }
                    },
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A connection that is closed when no byte moves either way for `idle`, or when writes stay
/// blocked (the client takes nothing) for `send_timeout`.
struct IdleIo<T> {
    inner: T,
    idle: Duration,
    send_timeout: Duration,
    last: Instant,
    /// Since when writes have been refused by a full socket, if they are.
    blocked_since: Option<Instant>,
    timer: Pin<Box<Sleep>>,
}

impl<T> IdleIo<T> {
    fn new(inner: T, idle: Duration, send_timeout: Duration) -> IdleIo<T> {
        let now = Instant::now();
        IdleIo {
            inner,
            idle,
            send_timeout,
            last: now,
            blocked_since: None,
            timer: Box::pin(tokio::time::sleep_until(now + idle)),
        }
    }

    /// Called when the inner IO is not ready: fails once the connection has idled, or its writes
    /// have been blocked, too long.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let mut deadline = self.last + self.idle;
        if let Some(since) = self.blocked_since {
            deadline = deadline.min(since + self.send_timeout);
        }
        if self.timer.deadline() != deadline {
            self.timer.as_mut().reset(deadline);
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, "connection idle or not read")),
            Poll::Pending => Poll::Pending,
        }
    }

    fn wrote(&mut self, r: &io::Result<usize>) {
        if matches!(r, Ok(n) if *n > 0) {
            self.last = Instant::now();
            self.blocked_since = None;
        }
    }

    fn write_blocked(&mut self) {
        if self.blocked_since.is_none() {
            self.blocked_since = Some(Instant::now());
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleIo<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if r.is_ok() && buf.filled().len() > before {
                    self.last = Instant::now();
                }
                Poll::Ready(r)
            }
            Poll::Pending => self.poll_idle(cx).map(Err),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleIo<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(r) => {
                self.wrote(&r);
                Poll::Ready(r)
            }
            Poll::Pending => {
                self.write_blocked();
                self.poll_idle(cx).map(Err)
            }
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                self.wrote(&r);
                Poll::Ready(r)
            }
            Poll::Pending => {
                self.write_blocked();
                self.poll_idle(cx).map(Err)
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending => {
                self.write_blocked();
                self.poll_idle(cx).map(Err)
            }
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixed refusal is a well-formed answer: its body is exactly its content-length of JSON.
    #[test]
    fn the_connection_refusal_is_well_formed() {
        let text = std::str::from_utf8(TOO_MANY_CONNECTIONS).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 429 "));
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(body.len(), length);
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], "rate_limited");
    }
}

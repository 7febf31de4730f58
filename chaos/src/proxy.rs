//! Userspace TCP proxies between nodes: one per ordered pair (i → j), carrying every connection
//! node i opens to node j's Raft port. Each direction of a link can be blocked (bytes stop
//! flowing and new connections hang, as under a partition that drops packets) or delayed.
//! Only loopback addresses are involved.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How long a connection accepted while blocked waits before it is dropped.
const HELD_MAX: Duration = Duration::from_secs(30);
/// Chunks in flight per direction of one connection (bounds the memory a delay holds).
const QUEUE: usize = 256;
const CHUNK: usize = 64 << 10;
const POLL: Duration = Duration::from_millis(5);

/// The fault state of one link i → j.
#[derive(Default)]
pub struct Link {
    /// Bytes from i (the dialer) to j are not delivered.
    pub block_fwd: AtomicBool,
    /// Bytes from j back to i are not delivered.
    pub block_back: AtomicBool,
    /// One-way delay added to every chunk, both directions, microseconds.
    pub delay_us: AtomicU64,
}

impl Link {
    pub fn heal(&self) {
        self.block_fwd.store(false, Ordering::SeqCst);
        self.block_back.store(false, Ordering::SeqCst);
        self.delay_us.store(0, Ordering::SeqCst);
    }
}

/// Starts the proxy for one link; returns the address node i should dial.
pub async fn start(upstream: String, link: Arc<Link>) -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    tokio::spawn(async move {
        loop {
            let Ok((inbound, _)) = listener.accept().await else {
                tokio::time::sleep(POLL).await;
                continue;
            };
            let (upstream, link) = (upstream.clone(), link.clone());
            tokio::spawn(async move {
                // A connection made during a partition hangs (like a SYN that is never answered).
                let held_until = Instant::now() + HELD_MAX;
                while link.block_fwd.load(Ordering::SeqCst) || link.block_back.load(Ordering::SeqCst) {
                    if Instant::now() > held_until {
                        return;
                    }
                    tokio::time::sleep(POLL).await;
                }
                let Ok(outbound) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                let (ir, iw) = inbound.into_split();
                let (or, ow) = outbound.into_split();
                let a = tokio::spawn(pump(ir, ow, link.clone(), true));
                let b = tokio::spawn(pump(or, iw, link, false));
                let _ = tokio::join!(a, b);
            });
        }
    });
    Ok(addr)
}

/// Copies one direction: a reader stamps each chunk with its due time, a writer delivers it then,
/// waiting while the direction is blocked.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    link: Arc<Link>,
    forward: bool,
) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(QUEUE);
    let delay_link = link.clone();
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let due = Instant::now() + Duration::from_micros(delay_link.delay_us.load(Ordering::SeqCst));
                    if tx.send((due, buf[..n].to_vec())).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    let blocked = |l: &Link| {
        if forward {
            l.block_fwd.load(Ordering::SeqCst)
        } else {
            l.block_back.load(Ordering::SeqCst)
        }
    };
    while let Some((due, bytes)) = rx.recv().await {
        tokio::time::sleep_until(due).await;
        while blocked(&link) {
            tokio::time::sleep(POLL).await;
        }
        if to.write_all(&bytes).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
    reader.abort();
}

//! Caps on what one node takes on at once, so no client (and no crowd) can hold it hostage:
//!
//! - requests in flight, globally (503 `overloaded`), per client address (IPv6 by /64) and per
//!   account (429 `rate_limited`), all with `Retry-After`. A request holds its slots until its
//!   answer has been sent (or abandoned), not only while its handler runs;
//! - uploads streaming at once: per account and per address (429), and in all (503 after a short
//!   wait);
//! - bytes of bodies held in memory at once, coming in (checkpoint states, messages) or going out
//!   (the same, read whole before they are sent): per address (429) and in all (503 after a short
//!   wait).
//!
//! The per-key maps hold an entry only while something of that key is in flight, so they are
//! bounded by the global caps.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The figures: the node's flags (`relay serve --help`, where each default is written).
#[derive(Clone, Debug)]
pub struct LimitsConfig {
    /// Requests handled at once by this node.
    pub max_in_flight: usize,
    /// Requests in flight from one client address (an IPv6 client by its /64).
    pub max_in_flight_per_ip: usize,
    /// Requests in flight for one account.
    pub max_in_flight_per_account: usize,
    /// Uploads streaming to the object store at once.
    pub max_concurrent_uploads: usize,
    /// Uploads at once from one account, and from one address.
    pub max_uploads_per_client: usize,
    /// Bytes of bodies held in memory at once (a quarter of it at most for one address).
    pub body_buffer_bytes: u64,
    /// How long a request waits for an upload slot or buffer room before it is refused.
    pub wait: Duration,
}

/// How long a request waits for an upload slot or buffer room before it is refused.
pub const WAIT: Duration = Duration::from_secs(5);

/// The client's address as the listener saw it.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub SocketAddr);

/// The share of the body buffer one address may hold.
const BUFFER_SHARE_PER_IP: u64 = 4;
/// Body buffer permits are kibibytes, so a u32 count covers any sane budget.
const BUFFER_UNIT: u64 = 1024;

tokio::task_local! {
    /// The client address key of the request being handled.
    static CLIENT: String;
}

pub struct Limits {
    pub config: LimitsConfig,
    in_flight: Arc<Semaphore>,
    pub per_ip: Arc<PerKey>,
    pub per_account: Arc<PerKey>,
    uploads: Arc<Semaphore>,
    uploads_per_ip: Arc<PerKey>,
    uploads_per_account: Arc<PerKey>,
    body_buffer: Arc<Semaphore>,
    buffer_per_ip: Arc<PerKey>,
}

/// Room held in the node's body buffer (and the address's share of it) until dropped.
pub struct Buffer {
    _room: OwnedSemaphorePermit,
    _share: Option<InFlightGuard>,
}

/// An upload slot, held until dropped.
pub struct UploadSlot {
    _slot: OwnedSemaphorePermit,
    _per_account: InFlightGuard,
    _per_ip: Option<InFlightGuard>,
}

impl Limits {
    pub fn new(config: LimitsConfig) -> Limits {
        let buffer_units = (config.body_buffer_bytes / BUFFER_UNIT).clamp(1, Semaphore::MAX_PERMITS as u64);
        let per_client_uploads = config.max_uploads_per_client.max(1);
        Limits {
            in_flight: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
            per_ip: Arc::new(PerKey::new(config.max_in_flight_per_ip.max(1) as u64)),
            per_account: Arc::new(PerKey::new(config.max_in_flight_per_account.max(1) as u64)),
            uploads: Arc::new(Semaphore::new(config.max_concurrent_uploads.max(1))),
            uploads_per_ip: Arc::new(PerKey::new(per_client_uploads as u64)),
            uploads_per_account: Arc::new(PerKey::new(per_client_uploads as u64)),
            body_buffer: Arc::new(Semaphore::new(buffer_units as usize)),
            buffer_per_ip: Arc::new(PerKey::new((buffer_units / BUFFER_SHARE_PER_IP).max(1))),
            config,
        }
    }

    /// One upload slot for `account`: refused at once (429) when the account or the address
    /// already streams its share, else waiting at most the configured time (then 503).
    pub async fn upload_slot(&self, account: &str) -> ApiResult<UploadSlot> {
        let per_account = self
            .uploads_per_account
            .enter(account, 1)
            .ok_or(ApiError::TooManyRequests {
                what: "uploads",
                scope: "account",
            })?;
        let per_ip = match client() {
            Some(ip) => Some(self.uploads_per_ip.enter(&ip, 1).ok_or(ApiError::TooManyRequests {
                what: "uploads",
                scope: "address",
            })?),
            None => None,
        };
        let slot = tokio::time::timeout(self.config.wait, self.uploads.clone().acquire_owned())
            .await
            .map_err(|_| ApiError::Overloaded("every upload slot is taken"))?
            .map_err(|_| ApiError::Unavailable("shutting down".into()))?;
        Ok(UploadSlot {
            _slot: slot,
            _per_account: per_account,
            _per_ip: per_ip,
        })
    }

    /// Room for a body of up to `bytes` in memory: refused at once (429) when the client's address
    /// already holds its share, else waiting at most the configured time (then 503).
    pub async fn buffer(&self, bytes: u64) -> ApiResult<Buffer> {
        let total = (self.config.body_buffer_bytes / BUFFER_UNIT).clamp(1, Semaphore::MAX_PERMITS as u64);
        // A body larger than the budget waits for all of it rather than never fitting.
        let units = bytes.div_ceil(BUFFER_UNIT).clamp(1, total);
        let share = match client() {
            Some(ip) => Some(self.buffer_per_ip.enter(&ip, units.min(self.buffer_per_ip.max)).ok_or(
                ApiError::TooManyRequests {
                    what: "body bytes",
                    scope: "address",
                },
            )?),
            None => None,
        };
        let room = tokio::time::timeout(
            self.config.wait,
            self.body_buffer.clone().acquire_many_owned(units as u32),
        )
        .await
        .map_err(|_| ApiError::Overloaded("request body buffers are full"))?
        .map_err(|_| ApiError::Unavailable("shutting down".into()))?;
        Ok(Buffer {
            _room: room,
            _share: share,
        })
    }
}

/// The address key of the request being handled, if it came through the listener.
fn client() -> Option<String> {
    CLIENT.try_with(Clone::clone).ok()
}

/// Counts what each key holds (requests, or kibibytes of buffer), up to `max` each.
pub struct PerKey {
    max: u64,
    counts: Mutex<HashMap<String, u64>>,
}

/// Holds what one key took until dropped.
pub struct InFlightGuard {
    owner: Option<(Arc<PerKey>, String, u64)>,
}

impl PerKey {
    pub fn new(max: u64) -> PerKey {
        PerKey {
            max,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Takes `n` for `key`, or `None` when that would pass `max`.
    pub fn enter(self: &Arc<Self>, key: &str, n: u64) -> Option<InFlightGuard> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let held = counts.entry(key.to_string()).or_insert(0);
        if *held + n > self.max {
            if *held == 0 {
                counts.remove(key);
            }
            return None;
        }
        *held += n;
        Some(InFlightGuard {
            owner: Some((self.clone(), key.to_string(), n)),
        })
    }

    /// Keys holding something (for tests and metrics).
    pub fn len(&self) -> usize {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if let Some((per_key, key, n)) = self.owner.take() {
            let mut counts = per_key.counts.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(held) = counts.get_mut(&key) {
                *held = held.saturating_sub(n);
                if *held == 0 {
                    counts.remove(&key);
                }
            }
        }
    }
}

/// The key one client address counts under: IPv4 as is, IPv6 by its /64 (one host, one prefix).
pub fn ip_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = a.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// Middleware: the global and per-address caps. A request over a cap is answered at once,
/// without reading anything more of it; one within them holds its slots until its answer is sent.
pub async fn enforce(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Ok(slot) = state.limits.in_flight.clone().try_acquire_owned() else {
        return ApiError::Overloaded("too many requests in flight").into_response();
    };
    let Some(ClientAddr(addr)) = request.extensions().get::<ClientAddr>().copied() else {
        return hold(next.run(request).await, slot);
    };
    let ip = ip_key(addr.ip());
    let Some(per_ip) = state.limits.per_ip.enter(&ip, 1) else {
        return ApiError::TooManyRequests {
            what: "requests",
            scope: "address",
        }
        .into_response();
    };
    let response = CLIENT.scope(ip, next.run(request)).await;
    hold(response, (slot, per_ip))
}

/// Keeps `guard` alive until the response's body has been sent or dropped.
pub fn hold<G: Send + Sync + Unpin + 'static>(response: Response, guard: G) -> Response {
    response.map(|body| {
        Body::new(Held {
            body,
            rest: None,
            _guard: guard,
        })
    })
}

/// How much of a body is handed to the connection at a time. The connection pulls the next
/// piece only when it has sent the last, so a body held whole in memory stays accounted for
/// (its guard alive) until it is nearly sent, not from the moment it is handed over.
const PIECE_BYTES: usize = 64 << 10;

/// A body that holds something (slots, buffer room) for as long as it lives, handing its data
/// over a piece at a time.
struct Held<G> {
    body: Body,
    rest: Option<Bytes>,
    _guard: G,
}

impl<G> Held<G> {
    fn piece(&mut self, mut data: Bytes) -> Bytes {
        if data.len() > PIECE_BYTES {
            let first = data.split_to(PIECE_BYTES);
            self.rest = Some(data);
            first
        } else {
            data
        }
    }
}

impl<G: Unpin> HttpBody for Held<G> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(rest) = self.rest.take() {
            let piece = self.piece(rest);
            return Poll::Ready(Some(Ok(Frame::data(piece))));
        }
        match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => {
                    let piece = self.piece(data);
                    Poll::Ready(Some(Ok(Frame::data(piece))))
                }
                Err(frame) => Poll::Ready(Some(Ok(frame))),
            },
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_none() && self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let rest = self.rest.as_ref().map_or(0, |r| r.len() as u64);
        let inner = self.body.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + rest);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + rest);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key holds at most `max`, and its entry is gone when the last of it is given back.
    #[test]
    fn per_key_caps_and_forgets() {
        let per = Arc::new(PerKey::new(2));
        let a = per.enter("a", 1).unwrap();
        let b = per.enter("a", 1).unwrap();
        assert!(per.enter("a", 1).is_none());
        let c = per.enter("b", 2).unwrap();
        assert!(per.enter("b", 1).is_none());
        drop((a, c));
        assert!(per.enter("a", 1).is_some());
        drop(b);
        assert!(per.enter("c", 3).is_none());
        assert!(per.is_empty());
    }

    /// IPv6 clients count by /64; mapped IPv4 counts as the IPv4 address.
    #[test]
    fn ip_keys() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(ip_key(a), ip_key(b));
        assert_eq!(ip_key("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1");
    }

    /// One address gets at most its share of the body buffer, at once; another still gets room.
    #[tokio::test]
    async fn one_address_holds_at_most_its_share_of_the_buffer() {
        let limits = Limits::new(LimitsConfig {
            max_in_flight: 1024,
            max_in_flight_per_ip: 256,
            max_in_flight_per_account: 256,
            max_concurrent_uploads: 16,
            max_uploads_per_client: 4,
            body_buffer_bytes: 64 << 10,
            wait: WAIT,
        });
        let held = CLIENT
            .scope("10.0.0.1".into(), async {
                let first = limits.buffer(16 << 10).await.unwrap();
                let err = limits.buffer(1).await.err().unwrap();
                assert!(matches!(err, ApiError::TooManyRequests { .. }), "{err:?}");
                first
            })
            .await;
        let other = CLIENT.scope("10.0.0.2".into(), limits.buffer(16 << 10)).await;
        assert!(other.is_ok());
        drop(held);
    }
}

//! Caps on what one node takes on at once, so no client (and no crowd) can hold it hostage:
//!
//! - requests in flight, globally (503 `overloaded`), per client address (IPv6 by /64) and per
//!   account (429 `rate_limited`), all with `Retry-After`;
//! - uploads streaming at once (503 after a short wait);
//! - bytes of small bodies held in memory at once (503 after a short wait).
//!
//! The per-key maps hold an entry only while a request of that key is in flight, so they are
//! bounded by the global cap.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The figures, all configurable (`relay serve --help`).
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
    /// Bytes of request bodies held in memory at once (checkpoint states, messages).
    pub body_buffer_bytes: u64,
    /// How long a request waits for an upload slot or buffer room before it is refused.
    pub wait: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_in_flight: 1024,
            max_in_flight_per_ip: 256,
            max_in_flight_per_account: 256,
            max_concurrent_uploads: 16,
            body_buffer_bytes: 256 << 20,
            wait: Duration::from_secs(5),
        }
    }
}

/// The client's address as the listener saw it.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub SocketAddr);

pub struct Limits {
    pub config: LimitsConfig,
    in_flight: Arc<Semaphore>,
    pub per_ip: Arc<PerKey>,
    pub per_account: Arc<PerKey>,
    uploads: Arc<Semaphore>,
    body_buffer: Arc<Semaphore>,
}

/// Body buffer permits are kibibytes, so a u32 count covers any sane budget.
const BUFFER_UNIT: u64 = 1024;

impl Limits {
    pub fn new(config: LimitsConfig) -> Limits {
        let buffer_units = (config.body_buffer_bytes / BUFFER_UNIT).clamp(1, Semaphore::MAX_PERMITS as u64);
        Limits {
            in_flight: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
            per_ip: Arc::new(PerKey::new(config.max_in_flight_per_ip.max(1))),
            per_account: Arc::new(PerKey::new(config.max_in_flight_per_account.max(1))),
            uploads: Arc::new(Semaphore::new(config.max_concurrent_uploads.max(1))),
            body_buffer: Arc::new(Semaphore::new(buffer_units as usize)),
            config,
        }
    }

    /// One upload slot, waiting at most the configured time.
    pub async fn upload_slot(&self) -> ApiResult<OwnedSemaphorePermit> {
        tokio::time::timeout(self.config.wait, self.uploads.clone().acquire_owned())
            .await
            .map_err(|_| ApiError::Overloaded("every upload slot is taken"))?
            .map_err(|_| ApiError::Unavailable("shutting down".into()))
    }

    /// Room for a body of up to `bytes` in memory, waiting at most the configured time.
    pub async fn buffer(&self, bytes: u64) -> ApiResult<OwnedSemaphorePermit> {
        let units = bytes.div_ceil(BUFFER_UNIT).max(1);
        let total = (self.config.body_buffer_bytes / BUFFER_UNIT).max(1);
        // A body larger than the whole budget waits for all of it rather than never fitting.
        let units = units.min(total).min(Semaphore::MAX_PERMITS as u64) as u32;
        tokio::time::timeout(self.config.wait, self.body_buffer.clone().acquire_many_owned(units))
            .await
            .map_err(|_| ApiError::Overloaded("request body buffers are full"))?
            .map_err(|_| ApiError::Unavailable("shutting down".into()))
    }
}

/// Counts in-flight requests per key, up to `max` each.
pub struct PerKey {
    max: usize,
    counts: Mutex<HashMap<String, usize>>,
}

/// Holds one in-flight slot of a key until dropped.
pub struct InFlightGuard {
    owner: Option<(Arc<PerKey>, String)>,
}

impl PerKey {
    pub fn new(max: usize) -> PerKey {
        PerKey {
            max,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a slot for `key`, or `None` when the key already has `max` in flight.
    pub fn enter(self: &Arc<Self>, key: &str) -> Option<InFlightGuard> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(key.to_string()).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(InFlightGuard {
            owner: Some((self.clone(), key.to_string())),
        })
    }

    /// Keys with something in flight (for tests and metrics).
    pub fn len(&self) -> usize {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if let Some((per_key, key)) = self.owner.take() {
            let mut counts = per_key.counts.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = counts.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
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
/// without reading anything more of it.
pub async fn enforce(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Ok(_slot) = state.limits.in_flight.clone().try_acquire_owned() else {
        return ApiError::Overloaded("too many requests in flight").into_response();
    };
    let _per_ip = match request.extensions().get::<ClientAddr>() {
        Some(ClientAddr(addr)) => match state.limits.per_ip.enter(&ip_key(addr.ip())) {
            Some(guard) => Some(guard),
            None => return ApiError::TooManyRequests { scope: "address" }.into_response(),
        },
        None => None,
    };
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key holds at most `max` slots, and its entry is gone when the last slot is given back.
    #[test]
    fn per_key_caps_and_forgets() {
        let per = Arc::new(PerKey::new(2));
        let a = per.enter("a").unwrap();
        let b = per.enter("a").unwrap();
        assert!(per.enter("a").is_none());
        let c = per.enter("b").unwrap();
        drop((a, c));
        assert!(per.enter("a").is_some());
        drop(b);
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
}

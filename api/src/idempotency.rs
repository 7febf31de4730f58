//! `Idempotency-Key`, as in draft-ietf-httpapi-idempotency-key-header:
//!
//! - a key is scoped by who sends it and by route (`<account or token>|<METHOD route>`), so the
//!   same key on two routes names two requests;
//! - the ledger stores, with the first answer, a fingerprint of the request: method, route, the
//!   path parameters and headers that define it, and the blake3 of its body. The same key with
//!   another fingerprint is refused with 422 `idempotency_key_reused`; with the same fingerprint it
//!   gets the first answer and applies nothing again;
//! - while a request with a key is being handled on this node, another with the same key is
//!   refused with 409 `idempotency_key_in_flight` (on other nodes the ledger orders them: the
//!   second gets the first one's answer).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use relay_raft::command::IDEMPOTENCY_KEY_MAX_LEN;
use relay_raft::IdempotencyKey;

use crate::error::{ApiError, ApiResult};
use crate::headers::optional_str;
use crate::state::AppState;

const HEADER: &str = "idempotency-key";
/// Keyed requests one node tracks in flight at once (each also holds a request slot, so the
/// request cap bounds this first).
const IN_FLIGHT_MAX: usize = 65_536;

/// The keys of requests in flight on this node.
#[derive(Default)]
pub struct InFlightKeys {
    keys: Mutex<HashSet<String>>,
}

/// A request that carries an `Idempotency-Key`, registered as in flight until dropped.
pub struct Keyed {
    scope: String,
    key: String,
    route: &'static str,
    registry: Arc<InFlightKeys>,
    slot: String,
}

impl Drop for Keyed {
    fn drop(&mut self) {
        let mut keys = self.registry.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.remove(&self.slot);
    }
}

/// Work of one name a node does once at a time (a tus upload's join), held until dropped.
pub struct Held {
    registry: Arc<InFlightKeys>,
    slot: String,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut keys = self.registry.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.remove(&self.slot);
    }
}

/// Marks `name` in flight on this node; `None` while another request holds it.
pub fn hold(state: &AppState, name: &str) -> Option<Held> {
    let slot = format!("\u{1}{name}");
    let registry = state.idempotency.clone();
    let mut keys = registry.keys.lock().unwrap_or_else(|e| e.into_inner());
    if keys.contains(&slot) || keys.len() >= IN_FLIGHT_MAX {
        return None;
    }
    keys.insert(slot.clone());
    drop(keys);
    Some(Held { registry, slot })
}

/// The client's `Idempotency-Key`: 1 to 128 visible ASCII characters.
pub fn header(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(key) = optional_str(headers, HEADER)? else {
        return Ok(None);
    };
    if key.is_empty() || key.len() > IDEMPOTENCY_KEY_MAX_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::InvalidHeader {
            name: HEADER,
            reason: format!("must be 1 to {IDEMPOTENCY_KEY_MAX_LEN} visible ASCII characters"),
        });
    }
    Ok(Some(key.to_string()))
}

/// Reads the request's key (if any) for `route` on behalf of `who` (an account id, or a token's
/// hash for token-addressed routes) and marks it in flight.
pub fn begin(state: &AppState, headers: &HeaderMap, who: &str, route: &'static str) -> ApiResult<Option<Keyed>> {
    let Some(key) = header(headers)? else {
        return Ok(None);
    };
    let scope = format!("{who}|{route}");
    let slot = format!("{scope}\u{0}{key}");
    let registry = state.idempotency.clone();
    {
        let mut keys = registry.keys.lock().unwrap_or_else(|e| e.into_inner());
        if keys.contains(&slot) {
            return Err(ApiError::IdempotencyInFlight);
        }
        if keys.len() >= IN_FLIGHT_MAX {
            return Err(ApiError::Overloaded("too many keyed requests in flight"));
        }
        keys.insert(slot.clone());
    }
    Ok(Some(Keyed {
        scope,
        key,
        route,
        registry,
        slot,
    }))
}

impl Keyed {
    /// The ledger key for this request, fingerprinted by the `parts` that define it (path
    /// parameters, header values, the body's hash), in a fixed order chosen by the route.
    pub fn seal(&self, parts: &[Part<'_>]) -> IdempotencyKey {
        IdempotencyKey {
            scope: self.scope.clone(),
            key: self.key.clone(),
            fingerprint: fingerprint(self.route, parts),
        }
    }

    pub fn scope(&self) -> &str {
        &self.scope
    }

    pub fn key(&self) -> &str {
        &self.key
    }
}

/// One thing that defines a request.
pub enum Part<'a> {
    /// A header's raw value, or its absence.
    Header(&'a HeaderMap, &'static str),
    /// Any other value (a path parameter, a body's hash).
    Value(&'a [u8]),
}

/// blake3 over the route and each part, length-prefixed so no two requests run together.
pub fn fingerprint(route: &str, parts: &[Part<'_>]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"relay idempotency v1\0");
    h.update(route.as_bytes());
    for part in parts {
        let bytes: Option<&[u8]> = match part {
            Part::Header(headers, name) => headers.get(*name).map(|v| v.as_bytes()),
            Part::Value(v) => Some(v),
        };
        match bytes {
            None => h.update(&[0]),
            Some(b) => h.update(&[1]).update(&(b.len() as u64).to_be_bytes()).update(b),
        };
    }
    *h.finalize().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A different value, a missing header or a value moved to another part all change the
    /// fingerprint; the same request gives the same one.
    #[test]
    fn fingerprints_tell_requests_apart() {
        let mut a = HeaderMap::new();
        a.insert("x-size-bytes", "10".parse().unwrap());
        let mut b = HeaderMap::new();
        b.insert("x-size-bytes", "11".parse().unwrap());
        let empty = HeaderMap::new();
        let fp = |h: &HeaderMap, body: &[u8]| {
            fingerprint("POST /api/store", &[Part::Header(h, "x-size-bytes"), Part::Value(body)])
        };
        assert_eq!(fp(&a, b"x"), fp(&a, b"x"));
        assert_ne!(fp(&a, b"x"), fp(&b, b"x"));
        assert_ne!(fp(&a, b"x"), fp(&a, b"y"));
        assert_ne!(fp(&a, b"x"), fp(&empty, b"x"));
        assert_ne!(
            fingerprint("r", &[Part::Value(b"ab"), Part::Value(b"c")]),
            fingerprint("r", &[Part::Value(b"a"), Part::Value(b"bc")])
        );
        assert_ne!(fingerprint("POST /a", &[]), fingerprint("POST /b", &[]));
    }
}

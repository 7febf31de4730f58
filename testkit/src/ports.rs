//! Fixed loopback ports, for clusters whose members must know each other's addresses before any
//! of them starts (peers dialled through proxies) and find them again after a kill -9.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::KitError;

/// Below Linux's ephemeral range (32768 and up), so no socket bound to port 0 (a proxy here, a
/// test elsewhere) can take one between now and the node binding it.
const RANGE: std::ops::Range<u16> = 20_000..32_000;
const TRIES: usize = 1000;

/// `n` distinct ports that were free a moment ago, drawn at random so concurrent runs rarely pick
/// the same ones.
pub fn free_ports(n: usize) -> Result<Vec<u16>, KitError> {
    let mut taken = Vec::with_capacity(n);
    for _ in 0..TRIES {
        if taken.len() == n {
            break;
        }
        let port = RANGE.start + (next_random() % u64::from(RANGE.end - RANGE.start)) as u16;
        if !taken.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            taken.push(port);
        }
    }
    if taken.len() == n {
        Ok(taken)
    } else {
        Err(KitError::NoFreePort)
    }
}

/// splitmix64 over a per-process counter seeded from the clock and pid: enough to spread ports,
/// and no dependency for it.
fn next_random() -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut seed = STATE.load(Ordering::Relaxed);
    if seed == 0 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        seed = nanos ^ (u64::from(std::process::id()) << 32) | 1;
        let _ = STATE.compare_exchange(0, seed, Ordering::Relaxed, Ordering::Relaxed);
    }
    let mut z = STATE
        .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_in_range_and_free() {
        let ports = free_ports(10).unwrap();
        assert_eq!(ports.len(), 10);
        for (i, p) in ports.iter().enumerate() {
            assert!(RANGE.contains(p), "{p}");
            assert!(!ports[..i].contains(p), "{ports:?}");
        }
    }
}

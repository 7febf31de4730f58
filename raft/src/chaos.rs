//! Fault-injection hooks for `relay-chaos`, inert unless a node is started with the hidden
//! `--chaos-*` flags. They live in the ledger because both faults act here: the clock a leader
//! stamps on commands, and the address a node dials to reach a peer.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

static CLOCK_OFFSET_MS: AtomicI64 = AtomicI64::new(0);
static DIAL: OnceLock<HashMap<String, String>> = OnceLock::new();

/// Offsets beyond a day are refused: a skew test needs seconds, and a typo should not move the
/// ledger clock by years (the cluster clock never runs backwards once moved).
pub const CLOCK_OFFSET_MAX_MS: i64 = 86_400_000;

/// The offset added to this node's wall clock (milliseconds, may be negative).
pub fn clock_offset_ms() -> i64 {
    CLOCK_OFFSET_MS.load(Ordering::Relaxed)
}

/// Parses a clock-offset file: one signed integer of milliseconds, within the bound.
pub fn parse_offset(text: &str) -> Option<i64> {
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|v| v.abs() <= CLOCK_OFFSET_MAX_MS)
}

/// Follows `path` (re-read every 50 ms) so a test can move this node's clock while it runs.
/// A missing or malformed file leaves the current offset in place.
pub fn follow_clock_file(path: PathBuf) -> std::io::Result<()> {
    let load = move || {
        if let Some(v) = std::fs::read_to_string(&path).ok().and_then(|t| parse_offset(&t)) {
            CLOCK_OFFSET_MS.store(v, Ordering::Relaxed);
        }
    };
    load();
    std::thread::Builder::new()
        .name("chaos-clock".into())
        .spawn(move || loop {
            std::thread::sleep(Duration::from_millis(50));
            load();
        })?;
    Ok(())
}

/// Parses `ADDR=VIA` pairs: dial VIA whenever a peer at ADDR is to be reached.
pub fn parse_dial(pairs: &[String]) -> Result<HashMap<String, String>, String> {
    pairs
        .iter()
        .map(|p| match p.split_once('=') {
            Some((from, to))
                if from.parse::<std::net::SocketAddr>().is_ok() && to.parse::<std::net::SocketAddr>().is_ok() =>
            {
                Ok((from.to_string(), to.to_string()))
            }
            _ => Err(format!("--chaos-dial {p:?} must be IP:PORT=IP:PORT")),
        })
        .collect()
}

/// Installs the dial map; only the first call counts.
pub fn set_dial(map: HashMap<String, String>) {
    let _ = DIAL.set(map);
}

/// Where to connect to reach the peer at `addr`.
pub fn dial_addr(addr: &str) -> &str {
    DIAL.get().and_then(|m| m.get(addr)).map_or(addr, String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_dial_pairs_parse_strictly() {
        assert_eq!(parse_offset(" -1500\n"), Some(-1500));
        assert_eq!(parse_offset("86400001"), None);
        assert_eq!(parse_offset("1s"), None);
        let map = parse_dial(&["127.0.0.1:1=127.0.0.1:2".into()]).unwrap();
        assert_eq!(map["127.0.0.1:1"], "127.0.0.1:2");
        assert!(parse_dial(&["127.0.0.1:1".into()]).is_err());
        assert!(parse_dial(&["a=127.0.0.1:2".into()]).is_err());
    }
}

//! Small Storage objects kept in memory after their first verified read, so a repeated download
//! costs no object-store round trip and no hash.
//!
//! Safe because an object key's bytes never change (a key is written once, and its blake3 is in
//! the ledger with the lease), and because nothing here decides access: every download first
//! passes the ledger's linearizable check, and an entry is only served for the lease (key and
//! blake3) it was filled for. Bounded by [`CACHE_BYTES`] in total and [`ENTRY_MAX_BYTES`] per
//! object, evicted oldest-first; an entry also goes once its lease's `expires_at` passes.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bytes::Bytes;

/// Bytes held at most.
pub const CACHE_BYTES: u64 = 64 << 20;
/// Objects larger than this are never held.
pub const ENTRY_MAX_BYTES: u64 = 256 << 10;

struct Entry {
    bytes: Bytes,
    blake3_hex: String,
    expires_at_ms: u64,
    /// Which insertion of this key it is (an older one in `order` no longer names it).
    generation: u64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    /// Keys in insertion order (oldest first), with the generation inserted; a key whose entry
    /// went early, or was inserted again since, is skipped when it comes up.
    order: VecDeque<(String, u64)>,
    held_bytes: u64,
    next_generation: u64,
}

#[derive(Default)]
pub struct ObjectCache {
    inner: Mutex<Inner>,
}

impl ObjectCache {
    /// The bytes held for `object_key`, if they were filled for this blake3 and are not past
    /// `now_ms`.
    pub fn get(&self, object_key: &str, blake3_hex: &str, now_ms: u64) -> Option<Bytes> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let entry = inner.entries.get(object_key)?;
        if entry.blake3_hex == blake3_hex && now_ms < entry.expires_at_ms {
            return Some(entry.bytes.clone());
        }
        if let Some(gone) = inner.entries.remove(object_key) {
            inner.held_bytes -= gone.bytes.len() as u64;
        }
        None
    }

    /// Holds verified `bytes` for `object_key` until `expires_at_ms`, evicting the oldest entries
    /// to make room.
    pub fn put(&self, object_key: &str, blake3_hex: &str, expires_at_ms: u64, bytes: Bytes) {
        let size = bytes.len() as u64;
        if size > ENTRY_MAX_BYTES {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.entries.contains_key(object_key) {
            return;
        }
        while inner.held_bytes + size > CACHE_BYTES {
            let Some((oldest, generation)) = inner.order.pop_front() else {
                break;
            };
            if inner.entries.get(&oldest).is_some_and(|e| e.generation == generation) {
                if let Some(gone) = inner.entries.remove(&oldest) {
                    inner.held_bytes -= gone.bytes.len() as u64;
                }
            }
        }
        // Keys whose entries went early (expired, replaced) still sit in `order`; keep it from
        // growing without bound by dropping them when it is much longer than the map.
        if inner.order.len() > 2 * inner.entries.len() + 1024 {
            let Inner { entries, order, .. } = &mut *inner;
            order.retain(|(k, g)| entries.get(k).is_some_and(|e| e.generation == *g));
        }
        let generation = inner.next_generation;
        inner.next_generation += 1;
        inner.held_bytes += size;
        inner.order.push_back((object_key.to_string(), generation));
        inner.entries.insert(
            object_key.to_string(),
            Entry {
                bytes,
                blake3_hex: blake3_hex.to_string(),
                expires_at_ms,
                generation,
            },
        );
    }

    /// Bytes held now.
    pub fn held_bytes(&self) -> u64 {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).held_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_only_the_same_object_before_its_expiry() {
        let cache = ObjectCache::default();
        cache.put("k", "aa", 100, Bytes::from_static(b"hello"));
        assert_eq!(cache.get("k", "aa", 99).as_deref(), Some(&b"hello"[..]));
        assert_eq!(cache.get("k", "bb", 99), None, "another blake3 is another object");
        cache.put("k", "aa", 100, Bytes::from_static(b"hello"));
        assert_eq!(cache.get("k", "aa", 100), None, "expired");
        assert_eq!(cache.held_bytes(), 0);
    }

    #[test]
    fn stays_within_its_bound_oldest_out_first() {
        let cache = ObjectCache::default();
        let chunk = Bytes::from(vec![7u8; ENTRY_MAX_BYTES as usize]);
        let fits = (CACHE_BYTES / ENTRY_MAX_BYTES) as usize;
        for i in 0..fits + 10 {
            cache.put(&format!("k{i}"), "h", u64::MAX, chunk.clone());
            assert!(cache.held_bytes() <= CACHE_BYTES);
        }
        assert_eq!(cache.get("k0", "h", 0), None);
        assert!(cache.get(&format!("k{}", fits + 9), "h", 0).is_some());
        cache.put(
            "big",
            "h",
            u64::MAX,
            Bytes::from(vec![0u8; ENTRY_MAX_BYTES as usize + 1]),
        );
        assert_eq!(cache.get("big", "h", 0), None, "larger than an entry may be");
    }

    #[test]
    fn churn_does_not_grow_the_order_without_bound() {
        let cache = ObjectCache::default();
        for i in 0..50_000u64 {
            // New keys and one key over and over, each expiring before it is read again.
            for key in [format!("k{i}"), "same".to_string()] {
                cache.put(&key, "h", 10, Bytes::from_static(b"x"));
                let _ = cache.get(&key, "h", 20);
            }
        }
        let inner = cache.inner.lock().unwrap();
        assert!(
            inner.order.len() <= 2 * inner.entries.len() + 1025,
            "{}",
            inner.order.len()
        );
    }

    #[test]
    fn an_old_place_in_line_never_evicts_a_newer_entry() {
        let cache = ObjectCache::default();
        cache.put("k", "h", 10, Bytes::from_static(b"old"));
        assert_eq!(cache.get("k", "h", 20), None);
        let chunk = Bytes::from(vec![0u8; ENTRY_MAX_BYTES as usize]);
        cache.put("a", "h", u64::MAX, chunk.clone());
        cache.put("k", "h", u64::MAX, Bytes::from_static(b"new"));
        // One past the bound: "k"'s first place comes up first and must not take the new entry;
        // "a" is the oldest entry and goes.

        for i in 0..(CACHE_BYTES / ENTRY_MAX_BYTES) - 1 {
            cache.put(&format!("f{i}"), "h", u64::MAX, chunk.clone());
        }
        assert_eq!(cache.get("k", "h", 0).as_deref(), Some(&b"new"[..]));
        assert_eq!(cache.get("a", "h", 0), None);
    }
}

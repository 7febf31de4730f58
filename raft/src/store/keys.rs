//! Key layouts. Integers are big-endian so RocksDB's byte order is numeric order.

/// `meta` keys.
pub const META_LAST_APPLIED: &[u8] = b"last_applied";
pub const META_MEMBERSHIP: &[u8] = b"membership";
pub const META_CLOCK_MS: &[u8] = b"clock_ms";
/// The cluster's prices ([`crate::pricing::Pricing`]).
pub const META_PRICING: &[u8] = b"pricing";
/// The sequence number of the last charge recorded.
pub const META_CHARGE_SEQ: &[u8] = b"charge_seq";
/// The baton rates ([`crate::baton::BatonRates`]).
pub const META_BATON_RATES: &[u8] = b"baton_rates";
/// The keys that sign session tokens, oldest first; the last signs new ones.
pub const META_SESSION_KEYS: &[u8] = b"session_keys";

/// `raft` keys.
pub const RAFT_VOTE: &[u8] = b"vote";
pub const RAFT_COMMITTED: &[u8] = b"committed";
pub const RAFT_LAST_PURGED: &[u8] = b"last_purged";

pub fn log_index(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

pub fn parse_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
}

/// `by_owner`: owner ‖ 0x00 ‖ !created_at_ms ‖ lease_id, so a prefix scan lists newest first.
pub fn by_owner(owner: &str, created_at_ms: u64, lease_id: &str) -> Vec<u8> {
    let mut k = owner_prefix(owner);
    k.extend_from_slice(&(!created_at_ms).to_be_bytes());
    k.extend_from_slice(lease_id.as_bytes());
    k
}

pub fn owner_prefix(owner: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(owner.len() + 40);
    k.extend_from_slice(owner.as_bytes());
    k.push(0);
    k
}

/// What a timer in the `expiry` column family does when it is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Timer {
    /// The lease reaches `expires_at`: tombstone it and queue its bytes for deletion.
    Expire = 0,
    /// The tombstone's retention ends: forget the lease.
    Purge = 1,
    /// A closed lease's bytes were held for a stream in progress; the hold ends: queue them.
    Release = 2,
    /// A soft-deleted baton's grace ends: delete it for good.
    Dispose = 3,
    /// An upload's deadline (keyed by upload id): abandon it if pending; a scratch object's end.
    UploadDue = 4,
    /// An ended upload's record is forgotten.
    UploadPurge = 5,
    /// A witness record's retention ends (keyed `witness:<index>`): its bytes and baton index
    /// go; the tree's hashes stay.
    WitnessPurge = 6,
}

impl Timer {
    pub fn from_byte(b: u8) -> Option<Timer> {
        match b {
            0 => Some(Timer::Expire),
            1 => Some(Timer::Purge),
            2 => Some(Timer::Release),
            3 => Some(Timer::Dispose),
            4 => Some(Timer::UploadDue),
            5 => Some(Timer::UploadPurge),
            6 => Some(Timer::WitnessPurge),
            _ => None,
        }
    }
}

/// `expiry`: due_ms ‖ lease_id → [`Timer`] byte.
pub fn timer(due_ms: u64, lease_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + lease_id.len());
    k.extend_from_slice(&due_ms.to_be_bytes());
    k.extend_from_slice(lease_id.as_bytes());
    k
}

/// `checkpoints`: owner ‖ 0x00 ‖ workflow_id → lease_id of the owner's newest checkpoint with it.
pub fn checkpoint(owner: &str, workflow_id: &str) -> Vec<u8> {
    let mut k = owner_prefix(owner);
    k.extend_from_slice(workflow_id.as_bytes());
    k
}

/// `messages`: lease_id ‖ 0x00 ‖ seq; also the `bodies` key of an inline message.
pub fn message(lease_id: &str, seq: u64) -> Vec<u8> {
    let mut k = message_prefix(lease_id);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

pub fn message_prefix(lease_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(lease_id.len() + 9);
    k.extend_from_slice(lease_id.as_bytes());
    k.push(0);
    k
}

/// `webhooks`: due_ms ‖ lease_id ‖ 0x00 ‖ seq, so the worker takes the due ones in order.
pub fn delivery(due_ms: u64, lease_id: &str, seq: u64) -> Vec<u8> {
    let mut k = due_ms.to_be_bytes().to_vec();
    k.extend_from_slice(&message(lease_id, seq));
    k
}

/// The lease id and sequence number in a `webhooks` key, and the part after the due time (the
/// message's key, the same for every attempt at it).
pub fn delivery_parts(key: &[u8]) -> Option<(&str, u64, &[u8])> {
    let message = key.get(8..)?;
    let (lease_id, seq) = message.split_at_checked(message.len().checked_sub(9)?)?;
    let (sep, seq) = seq.split_first()?;
    if *sep != 0 {
        return None;
    }
    Some((std::str::from_utf8(lease_id).ok()?, parse_u64(seq)?, message))
}

/// `handoffs_by_lease`: lease_id ‖ 0x00 ‖ handoff_id.
pub fn lease_handoff(lease_id: &str, handoff_id: &str) -> Vec<u8> {
    let mut k = message_prefix(lease_id);
    k.extend_from_slice(handoff_id.as_bytes());
    k
}

/// `baton_owners`: owner ‖ 0x00 ‖ lease_id of each live baton, so an owner's count is bounded.
pub fn baton_owner(owner: &str, lease_id: &str) -> Vec<u8> {
    let mut k = owner_prefix(owner);
    k.extend_from_slice(lease_id.as_bytes());
    k
}

/// `baton_retired`: due_ms ‖ object key of a replaced object still held for reads in progress.
pub fn retired(due_ms: u64, object_key: &str) -> Vec<u8> {
    let mut k = due_ms.to_be_bytes().to_vec();
    k.extend_from_slice(object_key.as_bytes());
    k
}

/// The end (exclusive) of a `lease_id ‖ 0x00 ‖ …` prefix scan.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    end
}

/// `dedup` record: b'r' ‖ scope ‖ 0x00 ‖ key.
/// An x402 payment's record: `p` ‖ from (20 bytes) ‖ nonce (32 bytes); its age index is
/// [`dedup_age`] of `valid_before_ms` in the same column family.
pub fn x402_record(from: &[u8; 20], nonce: &[u8; 32]) -> Vec<u8> {
    let mut k = Vec::with_capacity(53);
    k.push(b'p');
    k.extend_from_slice(from);
    k.extend_from_slice(nonce);
    k
}

pub fn dedup_record(scope: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + scope.len() + key.len());
    k.push(b'r');
    k.extend_from_slice(scope.as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

/// `dedup` age index: b't' ‖ at_ms ‖ record key, so the oldest records are pruned first.
pub fn dedup_age(at_ms: u64, record_key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + record_key.len());
    k.push(b't');
    k.extend_from_slice(&at_ms.to_be_bytes());
    k.extend_from_slice(record_key);
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A delivery key gives back its lease id, sequence number and message key.
    #[test]
    fn delivery_keys_come_apart() {
        let key = delivery(77, "lse_01ABC", 5);
        let (lease_id, seq, message_key) = delivery_parts(&key).unwrap();
        assert_eq!((lease_id, seq), ("lse_01ABC", 5));
        assert_eq!(message_key, message("lse_01ABC", 5).as_slice());
        assert!(delivery_parts(&key[..10]).is_none());
    }
}

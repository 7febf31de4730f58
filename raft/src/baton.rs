//! What a baton is: a prepaid object configured along five groups (write, capacity, sharing,
//! lifecycle, trust), its sharing tokens and its entries, and the price of a shape. These types are
//! stored in RocksDB and in snapshots, so field changes are format changes.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::BodyRef;
use crate::pricing::{Pricing, GIB};

/// Every baton's id starts so (it is a lease id of its own shape).
pub const ID_PREFIX: &str = "btn_";
/// Sharing tokens one baton may have at once.
pub const TOKENS_MAX: u32 = 100;
/// Entries one append baton may hold, whatever the API is configured to allow.
pub const ENTRIES_MAX: u64 = 1_000_000;
/// How long a replaced object stays readable for a read that was counted just before the
/// replace (its answer named the old object).
pub const RETIRED_HOLD_MS: u64 = 60 * 1000;
/// The longest soft-delete grace period.
pub const GRACE_MAX_SECONDS: u64 = 30 * 24 * 3600;
/// The longest content type kept.
pub const CONTENT_TYPE_MAX_LEN: usize = 128;
/// The `prev_hash` of a chain's first entry: 32 zero bytes.
pub const CHAIN_GENESIS: [u8; 32] = [0; 32];

/// How a baton is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WriteKind {
    /// One object, replaced any time.
    Single,
    /// A text log of entries.
    Append,
    /// A text log whose entries are hash-linked; always witnessed.
    AppendChained,
    /// A text file replaced in full; only the latest is kept.
    Overwrite,
}

impl WriteKind {
    pub fn name(self) -> &'static str {
        match self {
            WriteKind::Single => "single",
            WriteKind::Append => "append",
            WriteKind::AppendChained => "append_chained",
            WriteKind::Overwrite => "overwrite",
        }
    }

    pub fn parse(name: &str) -> Option<WriteKind> {
        [
            WriteKind::Single,
            WriteKind::Append,
            WriteKind::AppendChained,
            WriteKind::Overwrite,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }

    /// Entries appended one at a time (else the content is replaced whole).
    pub fn appends(self) -> bool {
        matches!(self, WriteKind::Append | WriteKind::AppendChained)
    }

    /// Content must be UTF-8 text (logs and text files).
    pub fn is_text(self) -> bool {
        self != WriteKind::Single
    }
}

/// What a delete does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Disposal {
    /// A tombstone the owner may restore for `grace_seconds`, then a hard delete.
    Soft { grace_seconds: u64 },
    /// Gone at once.
    Hard,
}

/// Who may do what with a sharing token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    Read,
    Write,
    ReadWrite,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::ReadWrite => "read_write",
        }
    }

    pub fn parse(name: &str) -> Option<Scope> {
        [Scope::Read, Scope::Write, Scope::ReadWrite]
            .into_iter()
            .find(|s| s.name() == name)
    }

    pub fn reads(self) -> bool {
        self != Scope::Write
    }

    pub fn writes(self) -> bool {
        self != Scope::Read
    }
}

/// A baton's settings and usage. The lease around it holds the owner, the term and the price.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baton {
    pub write: WriteKind,
    /// Storage: the most content bytes it may hold.
    pub size_bytes: u64,
    /// The read budget: bytes served in all, by every reader.
    pub egress_bytes: u64,
    pub burn_after_reading: bool,
    pub disposal: Disposal,
    pub witness: bool,
    /// Of a single object's content.
    pub content_type: String,
    /// Content bytes held now (the object's size, or the entries' sum).
    pub used_bytes: u64,
    pub egress_used: u64,
    /// 1 at create, + 1 per replace or append.
    pub version: u64,
    /// The content of a single or overwrite baton; `None` while it is empty.
    pub content: Option<BodyRef>,
    /// SHA-256 of that content, hex.
    pub content_sha256: Option<String>,
    /// Entries appended; their sequence numbers are 1..=entry_count.
    pub entry_count: u64,
    /// The last entry's hash, hex (the chain's head).
    pub head_hash: Option<String>,
    /// Sharing tokens that exist now (revoked ones are forgotten).
    pub token_count: u32,
    /// Soft-deleted at this time; restorable until the grace ends.
    pub tombstoned_at_ms: Option<u64>,
    /// The final capped read consumed it.
    pub burned: bool,
    pub updated_at_ms: u64,
    /// The most entries it may hold, and the largest entry (the proposing node's ceilings).
    pub entries_max: u64,
    pub entry_max_bytes: u64,
}

impl Baton {
    /// A new, empty baton of this shape.
    pub fn empty(shape: &Shape) -> Baton {
        Baton {
            write: shape.write,
            size_bytes: shape.size_bytes,
            egress_bytes: shape.egress_bytes,
            burn_after_reading: shape.burn_after_reading,
            disposal: shape.disposal,
            witness: shape.witness,
            content_type: String::new(),
            used_bytes: 0,
            egress_used: 0,
            version: 1,
            content: None,
            content_sha256: None,
            entry_count: 0,
            head_hash: None,
            token_count: 0,
            tombstoned_at_ms: None,
            burned: false,
            updated_at_ms: 0,
            entries_max: 0,
            entry_max_bytes: 0,
        }
    }

    /// Its read budget is fully drawn: a limit has been hit. (A baton bought with no budget
    /// has drawn nothing, and may still buy one.)
    pub fn egress_exhausted(&self) -> bool {
        self.egress_bytes > 0 && self.egress_used >= self.egress_bytes
    }
}

/// The priced part of a baton: what a quote prices and a create buys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    pub write: WriteKind,
    pub size_bytes: u64,
    pub duration_seconds: u64,
    pub egress_bytes: u64,
    pub burn_after_reading: bool,
    pub disposal: Disposal,
    pub witness: bool,
}

/// A sharing token. The token itself is never stored; this record is keyed by its blake3.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatonToken {
    pub token_id: String,
    pub lease_id: String,
    /// The token's first characters, for the owner's listing.
    pub prefix: String,
    pub scope: Scope,
    pub read_cap: Option<u32>,
    pub reads: u32,
    pub expires_at_ms: Option<u64>,
    pub created_at_ms: u64,
}

impl BatonToken {
    /// Its read cap is set and consumed.
    pub fn spent(&self) -> bool {
        self.read_cap.is_some_and(|cap| self.reads >= cap)
    }
}

/// A token to issue: its id, its hash (hex) and what it may do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewToken {
    pub token_id: String,
    pub token_hash_hex: String,
    pub prefix: String,
    pub scope: Scope,
    pub read_cap: Option<u32>,
    pub ttl_seconds: Option<u64>,
}

/// What one paid extension added to a baton, kept with its x402 payment until it settles: a
/// failed settlement takes it back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extension {
    pub lease_id: String,
    pub add_seconds: u64,
    pub add_size_bytes: u64,
    pub add_egress_bytes: u64,
}

/// One entry of an append baton. Its bytes live in `bodies` under the same key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub at_ms: u64,
    pub size_bytes: u64,
    /// SHA-256, hex: of the content, or for a chained baton [`chain_hash`].
    pub hash: String,
    /// The previous entry's hash (a chained baton's only), hex.
    pub prev_hash: Option<String>,
}

/// A chained entry's hash: SHA-256 over `prev_hash` (32 bytes; [`CHAIN_GENESIS`] for the first
/// entry) ‖ `seq` (8 bytes, big-endian) ‖ the content.
pub fn chain_hash(prev: &[u8; 32], seq: u64, content: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update(content);
    h.finalize().into()
}

pub fn sha256_hex(content: &[u8]) -> String {
    hex::encode(Sha256::digest(content))
}

/// Baton rates beyond storage: reads and the witness. Replicated like [`Pricing`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatonRates {
    /// Micro-USDC per GiB of read budget.
    pub egress_micros_per_gb: u64,
    /// Added once to a witnessed baton's price.
    pub witness_fee_micros: u64,
}

impl Default for BatonRates {
    fn default() -> Self {
        BatonRates {
            egress_micros_per_gb: 10_000,
            witness_fee_micros: 100,
        }
    }
}

/// The price of a shape before the network minimum: storage on size × duration, egress on the
/// read budget, the witness fee when witnessed. Saturates (no balance pays `u64::MAX`).
pub fn raw_price(pricing: &Pricing, rates: &BatonRates, shape: &Shape) -> u64 {
    let storage = pricing.raw_micros(shape.size_bytes, shape.duration_seconds);
    let egress = (shape.egress_bytes as u128 * rates.egress_micros_per_gb as u128).div_ceil(GIB);
    let egress = u64::try_from(egress).unwrap_or(u64::MAX);
    let witness = if shape.witness { rates.witness_fee_micros } else { 0 };
    storage.saturating_add(egress).saturating_add(witness)
}

/// What a baton of `shape` costs: [`raw_price`], at least the network minimum.
pub fn price(pricing: &Pricing, rates: &BatonRates, shape: &Shape) -> u64 {
    raw_price(pricing, rates, shape).max(pricing.min_charge_micros)
}

/// What growing `before` into `after` costs: the difference of their raw prices, at least the
/// network minimum. It depends on no clock, so a quote made before equals the charge.
pub fn extension_price(pricing: &Pricing, rates: &BatonRates, before: &Shape, after: &Shape) -> u64 {
    raw_price(pricing, rates, after)
        .saturating_sub(raw_price(pricing, rates, before))
        .max(pricing.min_charge_micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(size: u64, secs: u64, egress: u64, witness: bool) -> Shape {
        Shape {
            write: WriteKind::Single,
            size_bytes: size,
            duration_seconds: secs,
            egress_bytes: egress,
            burn_after_reading: false,
            disposal: Disposal::Hard,
            witness,
        }
    }

    /// Each part of the formula counts once, and small shapes pay the minimum.
    #[test]
    fn price_adds_storage_egress_and_witness() {
        let p = Pricing::default();
        let r = BatonRates::default();
        assert_eq!(price(&p, &r, &shape(1 << 30, 86_400, 0, false)), 1_000);
        assert_eq!(price(&p, &r, &shape(1 << 30, 86_400, 1 << 30, false)), 11_000);
        assert_eq!(price(&p, &r, &shape(1 << 30, 86_400, 1 << 30, true)), 11_100);
        assert_eq!(price(&p, &r, &shape(1, 1, 1, false)), p.min_charge_micros);
        assert_eq!(price(&p, &r, &shape(u64::MAX, u64::MAX, u64::MAX, true)), u64::MAX);
    }

    /// An extension costs what it adds, never less than the minimum.
    #[test]
    fn extension_costs_the_difference() {
        let p = Pricing::default();
        let r = BatonRates::default();
        let before = shape(1 << 30, 86_400, 0, false);
        let after = shape(1 << 30, 2 * 86_400, 1 << 30, false);
        assert_eq!(extension_price(&p, &r, &before, &after), 1_000 + 10_000);
        assert_eq!(extension_price(&p, &r, &before, &before), p.min_charge_micros);
    }

    /// The chain hash is SHA-256 over prev ‖ seq (big-endian) ‖ content, as documented.
    #[test]
    fn chain_hash_is_the_documented_digest() {
        let mut manual = Vec::new();
        manual.extend_from_slice(&[0u8; 32]);
        manual.extend_from_slice(&1u64.to_be_bytes());
        manual.extend_from_slice(b"hello");
        assert_eq!(
            hex::encode(chain_hash(&CHAIN_GENESIS, 1, b"hello")),
            sha256_hex(&manual)
        );
    }
}

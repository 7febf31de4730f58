//! The witness log: an append-only RFC 6962 Merkle tree of witness records, one leaf per
//! witnessed baton write, appended in the same step as the write. Records are kept for the
//! retention in force when they were appended, whatever becomes of the baton; the tree's hashes
//! are kept for ever, so every proof stays answerable. Checkpoints are accepted only for the
//! log's own root at a size, signed by the active key.

use crate::command::{Outcome, Rejection, Response};
use crate::error::StoreError;
use crate::ops::{AddWitnessKey, SignCheckpoint};
use crate::store::keys::{self, Timer};
use crate::store::txn::Txn;
use crate::tlog::merkle::{self, leaf_hash, Hash, Hashes};
use crate::tlog::record::{Event, Record};
use crate::tlog::{note, Checkpoint, Verifier};
use crate::witness::{
    SignedCheckpoint, WitnessKey, WitnessLog, DEFAULT_RETENTION_MS, KEYS_MAX, RETENTION_MAX_MS, RETENTION_MIN_MS,
    SEALED_MAX_BYTES,
};

pub const CF: &str = "witness";
pub const META_WITNESS: &[u8] = b"witness";
const SIZE_KEY: &[u8] = b"n";
const CHECKPOINT_KEY: &[u8] = b"k";
/// Timer ids of record purges: this prefix and the leaf index.
pub const PURGE_PREFIX: &str = "witness:";

pub fn hash_key(level: u8, index: u64) -> Vec<u8> {
    let mut k = vec![b'h', level];
    k.extend_from_slice(&index.to_be_bytes());
    k
}

pub fn record_key(index: u64) -> Vec<u8> {
    let mut k = vec![b'r'];
    k.extend_from_slice(&index.to_be_bytes());
    k
}

pub fn baton_prefix(baton_id: &str) -> Vec<u8> {
    let mut k = vec![b'b'];
    k.extend_from_slice(baton_id.as_bytes());
    k.push(0);
    k
}

pub fn baton_key(baton_id: &str, index: u64) -> Vec<u8> {
    let mut k = baton_prefix(baton_id);
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// Reads complete-subtree hashes through any getter (a transaction, or the reader's database).
pub struct StoredHashes<F>(pub F);

/// A raw read of one key.
pub type Got = Result<Option<Vec<u8>>, StoreError>;

impl<F: Fn(&[u8]) -> Got> Hashes for StoredHashes<F> {
    type Error = StoreError;

    fn stored(&self, level: u8, index: u64) -> Result<Hash, StoreError> {
        (self.0)(&hash_key(level, index))?
            .and_then(|v| Hash::try_from(v.as_slice()).ok())
            .ok_or_else(|| StoreError::Missing(format!("witness hash {level}/{index}")))
    }
}

fn txn_hashes<'t>(txn: &'t Txn<'_>) -> StoredHashes<impl Fn(&[u8]) -> Got + 't> {
    StoredHashes(move |k: &[u8]| txn.get_raw(CF, k))
}

pub fn size(txn: &Txn<'_>) -> Result<u64, StoreError> {
    Ok(txn
        .get_raw(CF, SIZE_KEY)?
        .as_deref()
        .and_then(keys::parse_u64)
        .unwrap_or(0))
}

pub fn log(txn: &Txn<'_>) -> Result<Option<WitnessLog>, StoreError> {
    txn.get("meta", META_WITNESS)
}

/// A witnessed baton's write, as its record will say.
pub struct Write<'a> {
    pub baton_id: &'a str,
    pub owner: &'a str,
    pub event: Event,
    pub seq: u64,
    pub sha256_hex: &'a str,
    /// An append_chained entry's chain hash.
    pub chain_hex: Option<&'a str>,
}

/// Appends a witnessed baton write's record. (At most one per command: a transaction does not
/// read its own writes.) The hashes were checked or computed before the write changed anything;
/// one that is not 64 hex digits appends nothing, on every node alike.
pub fn witness(txn: &mut Txn<'_>, now_ms: u64, w: Write<'_>) -> Result<(), StoreError> {
    let parse = |h: &str| hex::decode(h).ok().and_then(|v| <[u8; 32]>::try_from(v).ok());
    let Some(sha256) = parse(w.sha256_hex) else {
        tracing::error!(
            baton = w.baton_id,
            "a witnessed write without a valid SHA-256: not witnessed"
        );
        return Ok(());
    };
    let record = Record {
        baton_id: w.baton_id.to_string(),
        event: w.event,
        seq: w.seq,
        sha256,
        chain: w.chain_hex.and_then(parse),
        at_ms: now_ms,
    };
    append(txn, now_ms, w.owner, &record).map(|_| ())
}

/// A SHA-256 as the ledger keeps it: 64 lowercase hex digits.
pub fn valid_sha256_hex(h: &str) -> bool {
    h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Appends a record as the next leaf; answers its index.
pub fn append(txn: &mut Txn<'_>, now_ms: u64, owner: &str, record: &Record) -> Result<u64, StoreError> {
    let n = size(txn)?;
    let bytes = record.to_bytes();
    let changes = {
        let hashes = txn_hashes(txn);
        merkle::appended(n, leaf_hash(&bytes), |level, index| hashes.stored(level, index))?
    };
    for (level, index, hash) in changes {
        txn.put_raw(CF, &hash_key(level, index), &hash)?;
    }
    txn.put_raw(CF, &record_key(n), &bytes)?;
    txn.put_raw(CF, &baton_key(&record.baton_id, n), owner.as_bytes())?;
    txn.put_raw(CF, SIZE_KEY, &(n + 1).to_be_bytes())?;
    let retention = log(txn)?.map_or(DEFAULT_RETENTION_MS, |l| l.retention_ms);
    txn.put_raw(
        "expiry",
        &keys::timer(now_ms.saturating_add(retention), &format!("{PURGE_PREFIX}{n}")),
        &[Timer::WitnessPurge as u8],
    )?;
    Ok(n)
}

/// A record's retention ended: its bytes and its baton index go; its hashes stay in the tree.
pub fn purge(txn: &mut Txn<'_>, timer_id: &str) -> Result<(), StoreError> {
    let Some(index) = timer_id.strip_prefix(PURGE_PREFIX).and_then(|i| i.parse::<u64>().ok()) else {
        return Ok(());
    };
    if let Some(bytes) = txn.get_raw(CF, &record_key(index))? {
        if let Ok(record) = Record::parse(&bytes) {
            txn.delete(CF, &baton_key(&record.baton_id, index))?;
        }
        txn.delete(CF, &record_key(index))?;
    }
    Ok(())
}

pub fn add_key(txn: &mut Txn<'_>, now_ms: u64, op: &AddWitnessKey) -> Result<Response, StoreError> {
    let invalid = |why: &str| Ok(Err(Rejection::Invalid(why.into())));
    let current = log(txn)?;
    if op.first {
        if let Some(log) = current {
            return Ok(Ok(Outcome::WitnessKeyAdded { log }));
        }
    }
    if !note::valid_name(&op.origin) {
        return invalid("the witness origin must be 1 to 256 characters without spaces or '+'");
    }
    if Verifier::new(&op.origin, &op.public_key).is_err() {
        return invalid("not an Ed25519 public key");
    }
    if op.sealed_seed.len() > SEALED_MAX_BYTES {
        return invalid("the sealed key is too long");
    }
    if !(RETENTION_MIN_MS..=RETENTION_MAX_MS).contains(&op.retention_ms) {
        return invalid("the witness retention must be a day to a century");
    }
    let mut log = current.unwrap_or(WitnessLog {
        origin: op.origin.clone(),
        retention_ms: op.retention_ms,
        keys: Vec::new(),
    });
    if log.origin != op.origin {
        return invalid("the witness log's origin never changes");
    }
    match log.keys.iter().position(|k| k.public_key == op.public_key) {
        // The active key again: a retry.
        Some(i) if i + 1 == log.keys.len() => return Ok(Ok(Outcome::WitnessKeyAdded { log })),
        // A retired key never signs again: its range of sizes is published as closed.
        Some(_) => return invalid("that witness key was retired; a retired key never signs again"),
        None => {}
    }
    if log.keys.len() >= KEYS_MAX {
        return invalid("the witness log has had too many keys");
    }
    // The retiring key signed at most the latest checkpoint's size.
    let last = latest(txn)?;
    if let Some(old) = log.keys.last_mut() {
        old.until_size = Some(last.as_ref().map_or(0, |c| c.size));
        old.until_root = Some(last.map_or_else(merkle::empty_root, |c| c.root));
    }
    log.retention_ms = op.retention_ms;
    log.keys.push(WitnessKey {
        public_key: op.public_key,
        sealed_seed: op.sealed_seed.clone(),
        added_at_ms: now_ms,
        until_size: None,
        until_root: None,
    });
    txn.put("meta", META_WITNESS, &log)?;
    Ok(Ok(Outcome::WitnessKeyAdded { log }))
}

pub fn latest(txn: &Txn<'_>) -> Result<Option<SignedCheckpoint>, StoreError> {
    txn.get(CF, CHECKPOINT_KEY)
}

pub fn sign(txn: &mut Txn<'_>, now_ms: u64, op: &SignCheckpoint) -> Result<Response, StoreError> {
    let invalid = |why: &str| Ok(Err(Rejection::Invalid(why.into())));
    let Some(log) = log(txn)? else {
        return invalid("the witness log has no key");
    };
    if log.active().map(|k| k.public_key) != Some(op.public_key) {
        return invalid("not signed by the active witness key");
    }
    let n = size(txn)?;
    if op.size > n {
        return invalid("a checkpoint covers at most the log's size");
    }
    let previous = latest(txn)?;
    if let Some(prev) = &previous {
        if op.size < prev.size {
            return invalid("older than the latest checkpoint");
        }
        if op.size == prev.size && prev.public_key == op.public_key {
            return Ok(Ok(Outcome::CheckpointSigned {
                checkpoint: prev.clone(),
            }));
        }
    }
    let root = merkle::root(&txn_hashes(txn), op.size)?;
    if root != op.root {
        return invalid("that is not the log's root at this size");
    }
    let checkpoint = Checkpoint {
        origin: log.origin.clone(),
        size: op.size,
        root,
    };
    let text = checkpoint.text();
    let verifier = Verifier::new(&log.origin, &op.public_key).expect("checked when the key was added");
    let Ok(signature) = <[u8; 64]>::try_from(op.signature.as_slice()) else {
        return invalid("an Ed25519 signature is 64 bytes");
    };
    if !verifier.verify(text.as_bytes(), &signature) {
        return invalid("the signature does not verify");
    }
    let signed = SignedCheckpoint {
        size: op.size,
        root,
        public_key: op.public_key,
        note: note::assemble(&text, &log.origin, &verifier.id, &signature),
        signed_at_ms: now_ms,
    };
    txn.put(CF, CHECKPOINT_KEY, &signed)?;
    Ok(Ok(Outcome::CheckpointSigned { checkpoint: signed }))
}

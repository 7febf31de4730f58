//! The offline checks behind `relay verify`: a content file against a tlog-proof bundle, and two
//! checkpoints against a consistency proof. Each step that fails says which.

use super::merkle::{leaf_hash, verify_consistency, verify_inclusion, Hash};
use super::note::{open, split, Verifier};
use super::{Checkpoint, Record, TlogError, TlogProof};

/// A key a verifier trusts, and for a key the log retired, the largest tree size it may have
/// signed (the log publishes it): a checkpoint it signed past that is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trusted {
    pub key: Verifier,
    pub until_size: Option<u64>,
    /// The root of the tree at `until_size`, when the log published it: the retired key's
    /// checkpoint of that size must have it.
    pub until_root: Option<Hash>,
}

impl From<Verifier> for Trusted {
    fn from(key: Verifier) -> Trusted {
        Trusted {
            key,
            until_size: None,
            until_root: None,
        }
    }
}

/// What a valid inclusion proof established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Included {
    pub record: Record,
    pub index: u64,
    pub checkpoint: Checkpoint,
    /// The keys whose signatures verified.
    pub signed_by: Vec<String>,
}

/// Opens a checkpoint note: only keys named for its origin count, a known key's bad signature or
/// a retired key's signature past its last size fails it. Answers the checkpoint and the names
/// and ids of the keys that signed it.
pub fn open_checkpoint(note: &str, keys: &[Trusted]) -> Result<(Checkpoint, Vec<String>), TlogError> {
    let (text, sigs) = split(note)?;
    let cp = Checkpoint::parse(text)?;
    let named: Vec<&Trusted> = keys.iter().filter(|t| t.key.name == cp.origin).collect();
    if named.is_empty() {
        return Err(TlogError::Mismatch(format!(
            "no given key is named for the checkpoint's origin {:?}",
            cp.origin
        )));
    }
    // Every entry for a signing key counts, whatever the order given: the most restrictive wins.
    for s in &sigs {
        for t in named.iter().filter(|t| t.key.id == s.id && t.key.name == s.name) {
            if let Some(until) = t.until_size {
                if cp.size > until {
                    return Err(TlogError::BadSignature(format!(
                        "signed by a key retired at size {until}: a checkpoint of {} leaves by it is a forgery",
                        cp.size
                    )));
                }
                if cp.size == until && t.until_root.is_some_and(|r| r != cp.root) {
                    return Err(TlogError::BadSignature(format!(
                        "signed by a key retired at size {until} with another root than the log published: a fork"
                    )));
                }
            }
        }
    }
    let verifiers: Vec<Verifier> = named.iter().map(|t| t.key.clone()).collect();
    open(note, &verifiers)?;
    let signed_by = sigs
        .iter()
        .filter(|s| verifiers.iter().any(|k| k.name == s.name && k.id == s.id))
        .map(|s| format!("{}+{}", s.name, hex::encode(s.id)))
        .collect();
    Ok((cp, signed_by))
}

/// Content whose SHA-256 is `content_sha256` is what the proof's record witnessed, the record is
/// in the log at the proof's index, and the log's key signed the checkpoint the path leads to.
/// `record` overrides the proof's `extra` line.
pub fn inclusion(
    content_sha256: &Hash,
    proof_text: &str,
    record: Option<&[u8]>,
    keys: &[Trusted],
) -> Result<Included, TlogError> {
    let proof = TlogProof::parse(proof_text)?;
    let record_bytes = record
        .or(proof.extra.as_deref())
        .ok_or_else(|| TlogError::Malformed("the proof carries no record (extra line) and none was given".into()))?;
    let record = Record::parse(record_bytes)?;
    if *content_sha256 != record.sha256 {
        return Err(TlogError::Mismatch(format!(
            "the file's SHA-256 is {}, the record witnessed {}",
            hex::encode(content_sha256),
            hex::encode(record.sha256)
        )));
    }
    let (checkpoint, signed_by) = open_checkpoint(&proof.checkpoint, keys)?;
    verify_inclusion(
        &leaf_hash(record_bytes),
        proof.index,
        checkpoint.size,
        &proof.path,
        &checkpoint.root,
    )?;
    Ok(Included {
        record,
        index: proof.index,
        checkpoint,
        signed_by,
    })
}

/// Two signed checkpoints of one log, the older first, and a proof that the older tree is a prefix
/// of the newer. A "newer" checkpoint smaller than the older one is a log that went back.
pub fn consistency(
    old_note: &str,
    new_note: &str,
    proof: &[Hash],
    keys: &[Trusted],
) -> Result<(Checkpoint, Checkpoint), TlogError> {
    let (old, _) = open_checkpoint(old_note, keys)?;
    let (new, _) = open_checkpoint(new_note, keys)?;
    if old.origin != new.origin {
        return Err(TlogError::Mismatch("the checkpoints are of two different logs".into()));
    }
    if new.size < old.size {
        return Err(TlogError::Inconsistent(format!(
            "the newer checkpoint has {} leaves, the older {}: the log went back",
            new.size, old.size
        )));
    }
    verify_consistency(old.size, new.size, proof, &old.root, &new.root)?;
    Ok((old, new))
}

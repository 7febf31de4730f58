//! The offline checks behind `relay verify`: a content file against a tlog-proof bundle, and two
//! checkpoints against a consistency proof. Each step that fails says which.

use super::merkle::{leaf_hash, verify_consistency, verify_inclusion, Hash};
use super::note::{open, Verifier};
use super::{Checkpoint, Record, TlogError, TlogProof};

/// What a valid inclusion proof established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Included {
    pub record: Record,
    pub index: u64,
    pub checkpoint: Checkpoint,
    /// The name of the key whose signature verified.
    pub signed_by: Vec<String>,
}

/// Opens a checkpoint note with `keys`, and checks its origin is the signing key's name.
pub fn open_checkpoint(note: &str, keys: &[Verifier]) -> Result<Checkpoint, TlogError> {
    let text = open(note, keys)?;
    let cp = Checkpoint::parse(text)?;
    if !keys.iter().any(|k| k.name == cp.origin) {
        return Err(TlogError::Mismatch(format!(
            "the checkpoint's origin {:?} is not the name of a given key",
            cp.origin
        )));
    }
    Ok(cp)
}

/// Content whose SHA-256 is `content_sha256` is what the proof's record witnessed, the record is
/// in the log at the proof's index, and the log's key signed the checkpoint the path leads to.
/// `record` overrides the proof's `extra` line.
pub fn inclusion(
    content_sha256: &Hash,
    proof_text: &str,
    record: Option<&[u8]>,
    keys: &[Verifier],
) -> Result<Included, TlogError> {
    let proof = TlogProof::parse(proof_text)?;
    let record_bytes = record
        .or(proof.extra.as_deref())
        .ok_or_else(|| TlogError::Malformed("the proof carries no record (extra line) and none was given".into()))?;
    let record = Record::parse(record_bytes)?;
    let sha = *content_sha256;
    if sha != record.sha256 {
        return Err(TlogError::Mismatch(format!(
            "the file's SHA-256 is {}, the record witnessed {}",
            hex::encode(sha),
            hex::encode(record.sha256)
        )));
    }
    let checkpoint = open_checkpoint(&proof.checkpoint, keys)?;
    verify_inclusion(
        &leaf_hash(record_bytes),
        proof.index,
        checkpoint.size,
        &proof.path,
        &checkpoint.root,
    )?;
    let (_, sigs) = super::note::split(&proof.checkpoint)?;
    let signed_by = sigs
        .iter()
        .filter(|s| keys.iter().any(|k| k.name == s.name && k.id == s.id))
        .map(|s| s.name.clone())
        .collect();
    Ok(Included {
        record,
        index: proof.index,
        checkpoint,
        signed_by,
    })
}

/// Two signed checkpoints of one log, and a proof that the older tree is a prefix of the newer.
pub fn consistency(
    old_note: &str,
    new_note: &str,
    proof: &[Hash],
    keys: &[Verifier],
) -> Result<(Checkpoint, Checkpoint), TlogError> {
    let old = open_checkpoint(old_note, keys)?;
    let new = open_checkpoint(new_note, keys)?;
    if old.origin != new.origin {
        return Err(TlogError::Mismatch("the checkpoints are of two different logs".into()));
    }
    let (a, b) = if old.size <= new.size {
        (&old, &new)
    } else {
        (&new, &old)
    };
    verify_consistency(a.size, b.size, proof, &a.root, &b.root)?;
    Ok((old, new))
}

//! The RFC 6962 / RFC 9162 Merkle tree: hashes, roots, inclusion and consistency proofs, and
//! their verification.
//!
//! A log never keeps a tree in memory. It keeps the hash of every *complete* subtree (2^level
//! leaves starting at a multiple of 2^level), written once when its last leaf arrives and never
//! changed after; any root or proof is then assembled from O(log² n) of those. [`Hashes`] is that
//! store; [`MemTree`] keeps one in memory for tests and tools.

use sha2::{Digest, Sha256};

use super::TlogError;

pub type Hash = [u8; 32];

/// The longest inclusion or consistency proof of a tree of at most 2^63 leaves.
pub const PROOF_MAX_HASHES: usize = 128;

/// RFC 6962 §2.1: the hash of a leaf holding `data`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// RFC 6962 §2.1: the hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two smaller than `n` (n ≥ 2): where RFC 6962 splits n leaves.
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// A store of complete-subtree hashes.
pub trait Hashes {
    type Error;
    /// The hash of the complete subtree of 2^`level` leaves starting at leaf `index << level`.
    fn stored(&self, level: u8, index: u64) -> Result<Hash, Self::Error>;
}

/// MTH(D[start..end]) for `start < end`.
pub fn subtree<H: Hashes>(h: &H, start: u64, end: u64) -> Result<Hash, H::Error> {
    let n = end - start;
    if n.is_power_of_two() && start % n == 0 {
        let level = n.trailing_zeros();
        return h.stored(level as u8, start >> level);
    }
    let k = split(n);
    let left = subtree(h, start, start + k)?;
    let right = subtree(h, start + k, end)?;
    Ok(node_hash(&left, &right))
}

/// The root of the tree of the first `size` leaves.
pub fn root<H: Hashes>(h: &H, size: u64) -> Result<Hash, H::Error> {
    match size {
        0 => Ok(empty_root()),
        n => subtree(h, 0, n),
    }
}

/// RFC 6962 §2.1.1 PATH(index, D[0..size]): the inclusion proof of a leaf, leaf side first.
/// The caller checks `index < size`.
pub fn inclusion_proof<H: Hashes>(h: &H, index: u64, size: u64) -> Result<Vec<Hash>, H::Error> {
    let mut out = Vec::new();
    path(h, index, 0, size, &mut out)?;
    Ok(out)
}

fn path<H: Hashes>(h: &H, m: u64, start: u64, end: u64, out: &mut Vec<Hash>) -> Result<(), H::Error> {
    let n = end - start;
    if n <= 1 {
        return Ok(());
    }
    let k = split(n);
    if m < k {
        path(h, m, start, start + k, out)?;
        out.push(subtree(h, start + k, end)?);
    } else {
        path(h, m - k, start + k, end, out)?;
        out.push(subtree(h, start, start + k)?);
    }
    Ok(())
}

/// RFC 6962 §2.1.2 PROOF(from, D[0..to]): the consistency proof between two sizes. The caller
/// checks `1 <= from <= to`; equal sizes have an empty proof.
pub fn consistency_proof<H: Hashes>(h: &H, from: u64, to: u64) -> Result<Vec<Hash>, H::Error> {
    let mut out = Vec::new();
    if from < to {
        subproof(h, from, 0, to, true, &mut out)?;
    }
    Ok(out)
}

fn subproof<H: Hashes>(h: &H, m: u64, start: u64, end: u64, whole: bool, out: &mut Vec<Hash>) -> Result<(), H::Error> {
    let n = end - start;
    if m == n {
        if !whole {
            out.push(subtree(h, start, end)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(h, m, start, start + k, whole, out)?;
        out.push(subtree(h, start + k, end)?);
    } else {
        subproof(h, m - k, start + k, end, false, out)?;
        out.push(subtree(h, start, start + k)?);
    }
    Ok(())
}

/// RFC 9162 §2.1.3.2: does `proof` put the leaf hash `leaf` at `index` of the tree of `size`
/// leaves whose root is `root`?
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> Result<(), TlogError> {
    if index >= size {
        return Err(TlogError::NotIncluded(format!(
            "index {index} is not below the tree size {size}"
        )));
    }
    if proof.len() > PROOF_MAX_HASHES {
        return Err(TlogError::NotIncluded("the proof is too long".into()));
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return Err(TlogError::NotIncluded(
                "the proof is longer than the tree is deep".into(),
            ));
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(TlogError::NotIncluded(
            "the proof is shorter than the tree is deep".into(),
        ));
    }
    if r != *root {
        return Err(TlogError::NotIncluded(
            "the path does not lead to the checkpoint's root".into(),
        ));
    }
    Ok(())
}

/// RFC 9162 §2.1.4.2: is the tree of `from` leaves with root `from_root` a prefix of the tree of
/// `to` leaves with root `to_root`?
pub fn verify_consistency(
    from: u64,
    to: u64,
    proof: &[Hash],
    from_root: &Hash,
    to_root: &Hash,
) -> Result<(), TlogError> {
    let bad = |why: &str| Err(TlogError::Inconsistent(why.into()));
    if from == 0 || from > to {
        return bad("sizes must satisfy 1 <= from <= to");
    }
    if proof.len() > PROOF_MAX_HASHES {
        return bad("the proof is too long");
    }
    if from == to {
        if !proof.is_empty() {
            return bad("equal sizes have an empty proof");
        }
        return match from_root == to_root {
            true => Ok(()),
            false => bad("two different roots for one size"),
        };
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if from.is_power_of_two() {
        path.push(*from_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return bad("the proof is empty");
    };
    let (mut fn_, mut sn) = (from - 1, to - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if sn == 0 {
            return bad("the proof is longer than the trees are deep");
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return bad("the proof is shorter than the trees are deep");
    }
    if fr != *from_root {
        return bad("the proof does not lead to the older root");
    }
    if sr != *to_root {
        return bad("the proof does not lead to the newer root");
    }
    Ok(())
}

/// What changes when a leaf is appended to a tree of `size` leaves: the complete-subtree hashes
/// `(level, index, hash)` it completes, the leaf's own first. `sibling(level, index)` reads an
/// existing one.
pub fn appended<E>(
    size: u64,
    leaf: Hash,
    mut sibling: impl FnMut(u8, u64) -> Result<Hash, E>,
) -> Result<Vec<(u8, u64, Hash)>, E> {
    let mut out = vec![(0u8, size, leaf)];
    let (mut level, mut index, mut hash) = (0u8, size, leaf);
    while index & 1 == 1 {
        let left = sibling(level, index - 1)?;
        hash = node_hash(&left, &hash);
        level += 1;
        index >>= 1;
        out.push((level, index, hash));
    }
    Ok(out)
}

/// A tree held in memory: every level of complete-subtree hashes.
#[derive(Clone, Debug, Default)]
pub struct MemTree {
    levels: Vec<Vec<Hash>>,
}

impl MemTree {
    pub fn new() -> MemTree {
        MemTree::default()
    }

    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Appends a leaf hash (not its data).
    pub fn push(&mut self, leaf: Hash) {
        let size = self.size();
        let changes = appended(size, leaf, |level, index| self.stored(level, index)).expect("siblings exist");
        for (level, index, hash) in changes {
            let level = level as usize;
            if self.levels.len() <= level {
                self.levels.push(Vec::new());
            }
            debug_assert_eq!(self.levels[level].len() as u64, index);
            self.levels[level].push(hash);
        }
    }

    pub fn root(&self) -> Hash {
        root(self, self.size()).expect("in memory")
    }
}

impl Hashes for MemTree {
    type Error = std::convert::Infallible;

    fn stored(&self, level: u8, index: u64) -> Result<Hash, Self::Error> {
        Ok(self.levels[level as usize][index as usize])
    }
}

/// Parses base64 hashes (lines of a proof, fields of a JSON proof).
pub fn parse_hash(b64: &str) -> Result<Hash, TlogError> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| TlogError::Malformed(format!("{b64:?} is not base64")))?;
    Hash::try_from(bytes.as_slice()).map_err(|_| TlogError::Malformed(format!("{b64:?} is not a 32-byte hash")))
}

pub fn hash_b64(h: &Hash) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(h)
}

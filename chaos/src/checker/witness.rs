//! The witness log, judged from outside with its own small implementation of the formats (so a
//! bug shared with Relay's code cannot hide): every checkpoint a node served is signed by a
//! published key; no tree size ever had two roots; every consistency proof served verifies
//! between the roots seen; after the run, every two sizes seen (in order) are joined by a proof,
//! so each checkpoint is consistent with every later one; and no checkpoint served during the
//! run is larger than the log after the final restart (a served leaf was lost).

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

use super::{slice, Violation};
use crate::history::{Entry, Op, Outcome};

type Hash = [u8; 32];

fn violation(key: String, message: String, slice: Vec<Entry>) -> Violation {
    Violation {
        checker: "witness",
        key,
        message,
        slice,
    }
}

/// A verifier key `name+hex id+base64(0x01 ‖ key)`: its name, id and key.
fn parse_key(s: &str) -> Option<(String, [u8; 4], VerifyingKey)> {
    let mut p = s.splitn(3, '+');
    let (name, id, key) = (p.next()?, p.next()?, p.next()?);
    let id = hex_bytes(id)?;
    let key = B64.decode(key).ok()?;
    if key.len() != 33 || key[0] != 1 {
        return None;
    }
    let vk = VerifyingKey::from_bytes(&key[1..].try_into().ok()?).ok()?;
    Some((name.to_string(), id.try_into().ok()?, vk))
}

fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    (s.len() % 2 == 0)
        .then(|| {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
                .collect()
        })
        .flatten()
}

/// Opens a note: (size, root) of its checkpoint, if a known key's signature verifies.
fn open(note: &str, keys: &[(String, [u8; 4], VerifyingKey)]) -> Result<(u64, Hash), String> {
    let cut = note.rfind("\n\n").ok_or("no signature block")?;
    let (text, sigs) = (&note[..cut + 1], &note[cut + 2..]);
    let mut verified = Vec::new();
    for line in sigs.lines() {
        let rest = line.strip_prefix("\u{2014} ").ok_or("a malformed signature line")?;
        let (name, b64) = rest.split_once(' ').ok_or("a malformed signature line")?;
        let blob = B64.decode(b64).map_err(|_| "a signature is not base64")?;
        if blob.len() != 68 {
            return Err("a signature of the wrong length".into());
        }
        for (kname, id, vk) in keys {
            if kname == name && id[..] == blob[..4] {
                let sig = Signature::from_slice(&blob[4..]).map_err(|_| "a malformed signature")?;
                vk.verify_strict(text.as_bytes(), &sig)
                    .map_err(|_| format!("the signature by {name} does not verify"))?;
                verified.push(name.to_string());
            }
        }
    }
    let mut lines = text.lines();
    let origin = lines.next().ok_or("no origin")?;
    // Signed by the log's own key: one named for the origin.
    if !verified.iter().any(|n| n == origin) {
        return Err("no signature by a published key named for the origin".into());
    }
    let size = lines.next().and_then(|s| s.parse().ok()).ok_or("no size")?;
    let root = lines
        .next()
        .and_then(|r| B64.decode(r).ok())
        .and_then(|r| Hash::try_from(r).ok())
        .ok_or("no root")?;
    Ok((size, root))
}

fn node(l: &Hash, r: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(l);
    h.update(r);
    h.finalize().into()
}

/// RFC 9162 §2.1.4.2.
fn consistent(from: u64, to: u64, proof: &[Hash], a: &Hash, b: &Hash) -> bool {
    if from == 0 || from > to {
        return false;
    }
    if from == to {
        return proof.is_empty() && a == b;
    }
    let mut path = Vec::new();
    if from.is_power_of_two() {
        path.push(*a);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut f, mut s) = (from - 1, to - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node(c, &fr);
            sr = node(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && fr == *a && sr == *b
}

pub fn check(history: &[Entry]) -> Vec<Violation> {
    let keys: Vec<_> = history
        .iter()
        .filter_map(|e| match &e.op {
            Op::WitnessKeys { keys } => Some(keys.iter().filter_map(|k| parse_key(k)).collect::<Vec<_>>()),
            _ => None,
        })
        .flatten()
        .collect();
    let mut violations = Vec::new();
    // size → (root, the entries that saw it)
    let mut roots: BTreeMap<u64, (Hash, Vec<usize>)> = BTreeMap::new();
    let mut final_size = None;
    for e in history {
        let Op::WitnessCheckpoint { note: Some(note) } = &e.op else {
            continue;
        };
        if e.outcome != Outcome::Ok {
            continue;
        }
        match open(note, &keys) {
            Err(why) => violations.push(violation("checkpoint".into(), why, slice(history, vec![e.index]))),
            Ok((size, root)) => {
                if e.client == "final" {
                    final_size = Some(size);
                }
                let seen = roots.entry(size).or_insert((root, Vec::new()));
                seen.1.push(e.index);
                if seen.0 != root {
                    violations.push(violation(
                        format!("size {size}"),
                        "two roots for one tree size".into(),
                        slice(history, seen.1.clone()),
                    ));
                }
            }
        }
    }
    let mut proven = BTreeMap::new();
    for e in history {
        let Op::WitnessConsistency {
            from,
            to,
            hashes: Some(hashes),
        } = &e.op
        else {
            continue;
        };
        let (Some((a, ia)), Some((b, ib))) = (roots.get(from), roots.get(to)) else {
            continue;
        };
        let proof: Option<Vec<Hash>> = hashes
            .iter()
            .map(|h| B64.decode(h).ok().and_then(|h| Hash::try_from(h).ok()))
            .collect();
        if proof.is_some_and(|p| consistent(*from, *to, &p, a, b)) {
            proven.insert((*from, *to), e.index);
        } else {
            let mut s = vec![e.index, ia[0], ib[0]];
            s.sort_unstable();
            violations.push(violation(
                format!("{from}..{to}"),
                "a consistency proof does not join the checkpoints seen".into(),
                slice(history, s),
            ));
        }
    }
    if let Some(last) = final_size {
        if let Some((&largest, (_, seen))) = roots.iter().next_back().filter(|(s, _)| **s > last) {
            violations.push(violation(
                format!("size {largest}"),
                format!("a checkpoint of {largest} leaves was served, but the log has {last} after the final restart"),
                slice(history, seen.clone()),
            ));
        }
        let sizes: Vec<u64> = roots.keys().copied().filter(|s| *s > 0 && *s <= last).collect();
        for w in sizes.windows(2) {
            if !proven.contains_key(&(w[0], w[1])) {
                violations.push(violation(
                    format!("{}..{}", w[0], w[1]),
                    "no proof that these checkpoints are consistent".into(),
                    slice(history, vec![roots[&w[0]].1[0], roots[&w[1]].1[0]]),
                ));
            }
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::testing::Builder;
    use ed25519_dalek::{Signer, SigningKey};

    const ORIGIN: &str = "chaos.test/log";

    fn key() -> (SigningKey, String) {
        let sk = SigningKey::from_bytes(&[3; 32]);
        let mut h = Sha256::new();
        h.update(ORIGIN.as_bytes());
        h.update(b"\n\x01");
        h.update(sk.verifying_key().as_bytes());
        let id = &h.finalize()[..4];
        let mut k = vec![1u8];
        k.extend_from_slice(sk.verifying_key().as_bytes());
        let vkey = format!(
            "{ORIGIN}+{}+{}",
            id.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            B64.encode(k)
        );
        (sk, vkey)
    }

    fn note(sk: &SigningKey, vkey: &str, size: u64, root: &Hash) -> String {
        let text = format!("{ORIGIN}\n{size}\n{}\n", B64.encode(root));
        let id = hex_bytes(vkey.split('+').nth(1).unwrap()).unwrap();
        let mut blob = id;
        blob.extend_from_slice(&sk.sign(text.as_bytes()).to_bytes());
        format!("{text}\n\u{2014} {ORIGIN} {}\n", B64.encode(blob))
    }

    fn leaf(i: u8) -> Hash {
        let mut h = Sha256::new();
        h.update([0u8, i]);
        h.finalize().into()
    }

    #[test]
    fn consistent_logs_pass_and_forks_rollbacks_and_bad_proofs_fail() {
        let (sk, vkey) = key();
        let (l0, l1, l2) = (leaf(0), leaf(1), leaf(2));
        let r1 = l0;
        let r2 = node(&l0, &l1);
        let r3 = node(&r2, &l2);
        let b64 = |h: &Hash| B64.encode(h);
        let keys = || Op::WitnessKeys {
            keys: vec![vkey.clone()],
        };
        let cp = |size, root: &Hash| Op::WitnessCheckpoint {
            note: Some(note(&sk, &vkey, size, root)),
        };
        let proof = |from, to, h: Vec<String>| Op::WitnessConsistency {
            from,
            to,
            hashes: Some(h),
        };
        let mut good = Builder::default();
        good.ok(0, 1, keys())
            .ok(1, 2, cp(1, &r1))
            .ok(2, 3, cp(2, &r2))
            .ok(3, 4, proof(1, 2, vec![b64(&l1)]))
            .ok(4, 5, proof(2, 3, vec![b64(&l2)]));
        let mut fin = good.0.clone();
        let mut b = Builder(std::mem::take(&mut fin));
        b.ok(5, 6, cp(3, &r3));
        let n = b.0.len();
        b.0[n - 1].client = "final".into();
        assert!(check(&b.0).is_empty(), "{:?}", check(&b.0));

        // A fork: another root for size 2.
        let mut fork = Builder(b.0.clone());
        fork.ok(6, 7, cp(2, &node(&l1, &l0)));
        assert!(check(&fork.0).iter().any(|v| v.message.contains("two roots")));
        // A forged signature.
        let mut forged = Builder(b.0.clone());
        let bad = note(&SigningKey::from_bytes(&[4; 32]), &vkey, 2, &r2);
        forged.ok(6, 7, Op::WitnessCheckpoint { note: Some(bad) });
        assert!(!check(&forged.0).is_empty());
        // A proof that does not join.
        let mut wrong = Builder(b.0.clone());
        wrong.ok(6, 7, proof(1, 3, vec![b64(&l2)]));
        assert!(check(&wrong.0).iter().any(|v| v.message.contains("does not join")));
        // A missing proof between two sizes seen.
        let mut missing = Builder(b.0.clone());
        missing
            .0
            .retain(|e| !matches!(e.op, Op::WitnessConsistency { from: 2, .. }));
        for (i, e) in missing.0.iter_mut().enumerate() {
            e.index = i;
        }
        assert!(check(&missing.0).iter().any(|v| v.message.contains("no proof")));
        // A rollback: the final checkpoint is smaller than one served.
        let mut lost = Builder(good.0.clone());
        lost.ok(5, 6, cp(1, &r1));
        let n = lost.0.len();
        lost.0[n - 1].client = "final".into();
        assert!(check(&lost.0)
            .iter()
            .any(|v| v.message.contains("after the final restart")));
    }
}

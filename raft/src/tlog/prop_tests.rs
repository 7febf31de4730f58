//! Property tests: for random trees every inclusion and consistency proof verifies, and a flipped
//! bit anywhere (leaf, path, root, index, sizes) fails.

use proptest::prelude::*;

use super::merkle::*;

fn tree(n: u64) -> (MemTree, Vec<Hash>) {
    let mut t = MemTree::new();
    let leaves: Vec<Hash> = (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect();
    for l in &leaves {
        t.push(*l);
    }
    (t, leaves)
}

fn flip(h: &Hash, bit: usize) -> Hash {
    let mut h = *h;
    h[(bit / 8) % 32] ^= 1 << (bit % 8);
    h
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn inclusion_proofs_verify_and_flips_fail(n in 1u64..300, pick in any::<u64>(), bit in 0usize..256, which in any::<usize>()) {
        let (t, leaves) = tree(n);
        let root = t.root();
        let i = pick % n;
        let p = inclusion_proof(&t, i, n).unwrap();
        prop_assert!(verify_inclusion(&leaves[i as usize], i, n, &p, &root).is_ok());
        prop_assert!(verify_inclusion(&flip(&leaves[i as usize], bit), i, n, &p, &root).is_err());
        prop_assert!(verify_inclusion(&leaves[i as usize], i, n, &p, &flip(&root, bit)).is_err());
        if !p.is_empty() {
            let mut q = p.clone();
            let k = which % q.len();
            q[k] = flip(&q[k], bit);
            prop_assert!(verify_inclusion(&leaves[i as usize], i, n, &q, &root).is_err());
            let mut short = p.clone();
            short.pop();
            prop_assert!(verify_inclusion(&leaves[i as usize], i, n, &short, &root).is_err());
        }
        let mut long = p.clone();
        long.push([0; 32]);
        prop_assert!(verify_inclusion(&leaves[i as usize], i, n, &long, &root).is_err());
        if n > 1 {
            let other = (i + 1 + pick % (n - 1)) % n;
            prop_assert!(verify_inclusion(&leaves[i as usize], other, n, &p, &root).is_err());
        }
        prop_assert!(verify_inclusion(&leaves[i as usize], n, n, &p, &root).is_err());
    }

    #[test]
    fn consistency_proofs_verify_and_flips_fail(to in 1u64..300, pick in any::<u64>(), bit in 0usize..256, which in any::<usize>()) {
        let (t, _) = tree(to);
        let from = 1 + pick % to;
        let (a, b) = (root(&t, from).unwrap(), root(&t, to).unwrap());
        let p = consistency_proof(&t, from, to).unwrap();
        prop_assert!(verify_consistency(from, to, &p, &a, &b).is_ok());
        prop_assert!(verify_consistency(from, to, &p, &flip(&a, bit), &b).is_err());
        prop_assert!(verify_consistency(from, to, &p, &a, &flip(&b, bit)).is_err());
        if !p.is_empty() {
            let mut q = p.clone();
            let k = which % q.len();
            q[k] = flip(&q[k], bit);
            prop_assert!(verify_consistency(from, to, &q, &a, &b).is_err());
        }
        // (The sizes themselves are authenticated by the signed checkpoints, not by the proof.)
        prop_assert!(verify_consistency(0, to, &p, &a, &b).is_err());
    }

    #[test]
    fn roots_agree_with_the_definition(n in 1u64..200) {
        let (t, leaves) = tree(n);
        fn mth(l: &[Hash]) -> Hash {
            if l.len() == 1 { return l[0]; }
            let mut k = 1;
            while k * 2 < l.len() { k *= 2; }
            node_hash(&mth(&l[..k]), &mth(&l[k..]))
        }
        for m in 1..=n {
            prop_assert_eq!(root(&t, m).unwrap(), mth(&leaves[..m as usize]));
        }
    }
}

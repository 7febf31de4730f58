//! Known-answer tests: the C2SP signed-note example, Go's `note` package test key, the RFC 9162
//! §2.1.5 seven-leaf example, the Certificate Transparency reference roots, and checkpoint and
//! proof text byte for byte.

use super::merkle::*;
use super::note::{open, Signer, Verifier};
use super::{Checkpoint, Record, TlogError, TlogProof};

const SPEC_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
const SPEC_NOTE: &str = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

#[test]
fn signed_note_spec_example_verifies() {
    let v = Verifier::parse(SPEC_VKEY).unwrap();
    assert_eq!(v.name, "example.com/foo");
    assert_eq!(hex::encode(v.id), "530d903a");
    assert_eq!(v.to_string(), SPEC_VKEY);
    assert_eq!(
        open(SPEC_NOTE, std::slice::from_ref(&v)).unwrap(),
        "This is an example message.\n"
    );
    // One changed byte of text, or of the signature, fails.
    let tampered = SPEC_NOTE.replacen("example message", "exemple message", 1);
    assert!(matches!(
        open(&tampered, std::slice::from_ref(&v)),
        Err(TlogError::BadSignature(_))
    ));
    let tampered = SPEC_NOTE.replacen("Uw2Q", "Uw2R", 1);
    assert!(open(&tampered, &[v]).is_err());
}

#[test]
fn go_note_test_key_signs_byte_for_byte() {
    // golang.org/x/mod/sumdb/note's test key and expected signature (Ed25519 is deterministic).
    let signer =
        Signer::parse("PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz").unwrap();
    assert_eq!(
        signer.verifier().to_string(),
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    );
    assert_eq!(
        signer.private_string(),
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
    );
    let text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    let note = signer.sign(text).unwrap();
    assert_eq!(
        note,
        format!("{text}\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n")
    );
}

#[test]
fn unknown_keys_are_ignored_and_known_bad_ones_fail() {
    let a = Signer::from_seed("log.example/a", &[1; 32]).unwrap();
    let b = Signer::from_seed("log.example/b", &[2; 32]).unwrap();
    let note = a.sign("hello\n").unwrap();
    assert_eq!(open(&note, &[b.verifier()]), Err(TlogError::UnknownKey));
    assert_eq!(open(&note, &[b.verifier(), a.verifier()]).unwrap(), "hello\n");
    // A second signature line by an unknown key is ignored.
    let two = format!("{note}\u{2014} other.example AAAAAAAA\n");
    assert_eq!(open(&two, &[a.verifier()]).unwrap(), "hello\n");
    // Malformed notes.
    for bad in [
        "hello\n",
        "hello\n\n",
        "hello\n\n\u{2014} x\n",
        "hello\n\n- log.example/a AAAA\n",
        "\n\n\u{2014} log.example/a AAAAAAAA\n",
    ] {
        assert!(open(bad, &[a.verifier()]).is_err(), "{bad:?}");
    }
    assert!(Signer::from_seed("has space", &[1; 32]).is_err());
    assert!(Signer::from_seed("has+plus", &[1; 32]).is_err());
    assert!(Verifier::parse("example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k").is_err());
}

/// The Certificate Transparency reference leaves and the roots of their first n.
fn ct_leaves() -> Vec<Vec<u8>> {
    vec![
        vec![],
        vec![0x00],
        vec![0x10],
        vec![0x20, 0x21],
        vec![0x30, 0x31],
        vec![0x40, 0x41, 0x42, 0x43],
        (0x50..0x58).collect(),
        (0x60..0x70).collect(),
    ]
}

const CT_ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

#[test]
fn reference_roots() {
    assert_eq!(
        hex::encode(empty_root()),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    let mut t = MemTree::new();
    for (i, leaf) in ct_leaves().iter().enumerate() {
        t.push(leaf_hash(leaf));
        assert_eq!(hex::encode(t.root()), CT_ROOTS[i], "root of {} leaves", i + 1);
    }
    for n in 1..=8u64 {
        assert_eq!(hex::encode(root(&t, n).unwrap()), CT_ROOTS[n as usize - 1]);
    }
}

#[test]
fn rfc9162_seven_leaf_example() {
    // RFC 9162 §2.1.5: leaves d0..d6, a..f and d6 their leaf hashes, g..j, k, l interior nodes.
    let d: Vec<Vec<u8>> = (0..7u8).map(|i| vec![b'd', i]).collect();
    let mut t = MemTree::new();
    for x in &d {
        t.push(leaf_hash(x));
    }
    let lh: Vec<Hash> = d.iter().map(|x| leaf_hash(x)).collect();
    let (a, b, c, dd, e, f, d6) = (lh[0], lh[1], lh[2], lh[3], lh[4], lh[5], lh[6]);
    let (g, h, i, j) = (node_hash(&a, &b), node_hash(&c, &dd), node_hash(&e, &f), d6);
    let (k, l) = (node_hash(&g, &h), node_hash(&i, &j));
    let top = node_hash(&k, &l);
    assert_eq!(t.root(), top);
    assert_eq!(inclusion_proof(&t, 0, 7).unwrap(), vec![b, h, l]);
    assert_eq!(inclusion_proof(&t, 3, 7).unwrap(), vec![c, g, l]);
    assert_eq!(inclusion_proof(&t, 4, 7).unwrap(), vec![f, j, k]);
    assert_eq!(inclusion_proof(&t, 6, 7).unwrap(), vec![i, k]);
    for (idx, leaf) in lh.iter().enumerate() {
        let p = inclusion_proof(&t, idx as u64, 7).unwrap();
        verify_inclusion(leaf, idx as u64, 7, &p, &top).unwrap();
    }
    // hash0 (3 leaves), hash1 (4 leaves), hash2 (6 leaves).
    let hash0 = node_hash(&g, &c);
    let hash1 = k;
    let hash2 = node_hash(&k, &i);
    assert_eq!(root(&t, 3).unwrap(), hash0);
    assert_eq!(root(&t, 4).unwrap(), hash1);
    assert_eq!(root(&t, 6).unwrap(), hash2);
    assert_eq!(consistency_proof(&t, 3, 7).unwrap(), vec![c, dd, g, l]);
    assert_eq!(consistency_proof(&t, 4, 7).unwrap(), vec![l]);
    assert_eq!(consistency_proof(&t, 6, 7).unwrap(), vec![i, j, k]);
    verify_consistency(3, 7, &[c, dd, g, l], &hash0, &top).unwrap();
    verify_consistency(4, 7, &[l], &hash1, &top).unwrap();
    verify_consistency(6, 7, &[i, j, k], &hash2, &top).unwrap();
    assert!(verify_consistency(6, 7, &[i, j, k], &hash1, &top).is_err());
    assert!(verify_consistency(3, 7, &[c, dd, g], &hash0, &top).is_err());
}

#[test]
fn checkpoint_text_byte_for_byte() {
    let cp = Checkpoint {
        origin: "relay.example/witness".into(),
        size: 8,
        root: <Hash>::try_from(hex::decode(CT_ROOTS[7]).unwrap()).unwrap(),
    };
    let text = "relay.example/witness\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n";
    assert_eq!(cp.text(), text);
    assert_eq!(Checkpoint::parse(text).unwrap(), cp);
    for bad in [
        "relay.example/witness\n08\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",
        "relay.example/witness\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQ=\n",
        "relay example\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",
        "relay.example/witness\n8\n",
        "relay.example/witness\n-1\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",
    ] {
        assert!(Checkpoint::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn proof_and_record_text_round_trip() {
    let record = Record {
        baton_id: "btn_01ABC".into(),
        event: super::record::Event::Entry,
        seq: 3,
        sha256: [0xab; 32],
        chain: Some([0xcd; 32]),
        at_ms: 1_700_000_000_123,
    };
    let bytes = record.to_bytes();
    assert_eq!(
        String::from_utf8(bytes.clone()).unwrap(),
        format!(
            "relay-witness/v1\nbaton btn_01ABC\nevent entry\nseq 3\nsha256 {}\nchain {}\nat_ms 1700000000123\n",
            "ab".repeat(32),
            "cd".repeat(32)
        )
    );
    assert_eq!(Record::parse(&bytes).unwrap(), record);
    let mut upper = String::from_utf8(bytes).unwrap().replace("abab", "ABAB");
    assert!(Record::parse(upper.as_bytes()).is_err());
    upper.push('\n');
    assert!(Record::parse(upper.as_bytes()).is_err());

    let signer = Signer::from_seed("relay.example/witness", &[7; 32]).unwrap();
    let p = TlogProof {
        extra: Some(b"abc".to_vec()),
        index: 5,
        path: vec![[1; 32], [2; 32]],
        checkpoint: signer
            .sign("relay.example/witness\n6\nAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n")
            .unwrap(),
    };
    let text = p.to_text();
    assert!(text.starts_with(
        "c2sp.org/tlog-proof@v1\nextra YWJj\nindex 5\nAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\nAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=\n\nrelay.example/witness\n6\n"
    ));
    assert_eq!(TlogProof::parse(&text).unwrap(), p);
    assert!(TlogProof::parse(&text.replace("index 5", "index 05")).is_err());
    assert!(TlogProof::parse(&text.replace("c2sp.org/tlog-proof@v1", "c2sp.org/tlog-proof@v2")).is_err());
}

#[test]
fn checkpoints_open_only_with_a_key_named_for_their_origin_and_in_its_range() {
    use super::verify::{open_checkpoint, Trusted};
    let log = Signer::from_seed("relay.example/witness", &[5; 32]).unwrap();
    let other = Signer::from_seed("evil.example/log", &[6; 32]).unwrap();
    let text = "relay.example/witness\n9\nAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n";
    let note = log.sign(text).unwrap();
    assert_eq!(open_checkpoint(&note, &[log.verifier().into()]).unwrap().0.size, 9);
    // Another log's key signing this origin's checkpoint is not this log's signature.
    let forged = other.sign(text).unwrap();
    let both: Vec<Trusted> = vec![log.verifier().into(), other.verifier().into()];
    assert!(open_checkpoint(&forged, &both).is_err());
    assert!(open_checkpoint(&forged, &[other.verifier().into()]).is_err());
    // A key retired at size 8 may not sign size 9; at size 9 it may.
    let retired = |until, root| Trusted {
        key: log.verifier(),
        until_size: Some(until),
        until_root: root,
    };
    assert!(matches!(
        open_checkpoint(&note, &[retired(8, None)]),
        Err(TlogError::BadSignature(_))
    ));
    assert!(open_checkpoint(&note, &[retired(9, None)]).is_ok());
    assert!(open_checkpoint(&note, &[retired(9, Some([1; 32]))]).is_ok());
    assert!(open_checkpoint(&note, &[retired(9, Some([2; 32]))]).is_err());
    // The same key also given without a range changes nothing, in either order.
    let plain: Trusted = log.verifier().into();
    assert!(open_checkpoint(&note, &[plain.clone(), retired(8, None)]).is_err());
    assert!(open_checkpoint(&note, &[retired(8, None), plain]).is_err());
}

//! The witness log in the ledger: which writes append a leaf and what it says, the key and
//! checkpoint rules, retention, and a property test over random writes and checkpoints: the stored
//! tree always equals a tree built from the records, every proof verifies, no size ever has two
//! roots, and applying the same commands twice gives the same state.

use proptest::prelude::*;

use crate::baton::{sha256_hex, Baton, Disposal, Shape, WriteKind};
use crate::command::{Command, NewLease, Outcome, Rejection, Request, Response};
use crate::model::LeaseKind;
use crate::ops::{self, Actor, AddWitnessKey, SignCheckpoint};
use crate::reader::StateReader;
use crate::sm::baton_tests::content;
use crate::sm::tests::{apply_all, dump, fresh_db};
use crate::tlog::merkle::{self, leaf_hash, verify_consistency, verify_inclusion, MemTree};
use crate::tlog::record::{Event, Record};
use crate::tlog::{note, Checkpoint, Signer};
use crate::witness::{DEFAULT_RETENTION_MS, RETENTION_MIN_MS};

const T0: u64 = 9_000_000;
const OWNER: &str = "acct_w";
const ORIGIN: &str = "relay.test/witness";

fn at(now_ms: u64, command: impl Into<Command>) -> Request {
    Request {
        now_ms,
        idempotency: None,
        command: command.into(),
    }
}

fn create(id: &str, write: WriteKind, witness: bool, first: Option<&[u8]>) -> ops::CreateBaton {
    let s = Shape {
        write,
        size_bytes: 10_000,
        duration_seconds: 60,
        egress_bytes: 0,
        burn_after_reading: false,
        disposal: Disposal::Hard,
        witness,
    };
    let mut b = Baton::empty(&s);
    b.entries_max = 1000;
    b.entry_max_bytes = 100;
    ops::CreateBaton {
        new: NewLease {
            lease_id: id.into(),
            ledger_id: format!("led_{id}"),
            owner: OWNER.into(),
            kind: LeaseKind::Baton(Box::new(b)),
            duration_seconds: 60,
        },
        content: first.map(content),
        tokens: vec![],
        batons_max: 100,
    }
}

fn write(id: &str, bytes: &[u8]) -> ops::WriteBaton {
    ops::WriteBaton {
        lease_id: id.into(),
        actor: Actor::Owner(OWNER.into()),
        if_version: None,
        content: content(bytes),
    }
}

fn append(id: &str, bytes: &[u8]) -> ops::AppendEntry {
    ops::AppendEntry {
        lease_id: id.into(),
        actor: Actor::Owner(OWNER.into()),
        content: bytes.to_vec(),
    }
}

fn signer(seed: u8) -> Signer {
    Signer::from_seed(ORIGIN, &[seed; 32]).unwrap()
}

fn add_key(seed: u8, first: bool) -> AddWitnessKey {
    AddWitnessKey {
        origin: ORIGIN.into(),
        public_key: signer(seed).public_key(),
        sealed_seed: vec![seed; 60],
        retention_ms: DEFAULT_RETENTION_MS,
        first,
    }
}

/// The checkpoint of the first `size` leaves of `tree`, signed by `key`.
fn sign_op(key: &Signer, tree: &MemTree, size: u64) -> SignCheckpoint {
    let root = merkle::root(tree, size).unwrap();
    let text = Checkpoint {
        origin: ORIGIN.into(),
        size,
        root,
    }
    .text();
    SignCheckpoint {
        size,
        root,
        public_key: key.public_key(),
        signature: key.signature(&text).to_vec(),
    }
}

fn setup() -> (tempfile::TempDir, std::sync::Arc<rocksdb::DB>) {
    let (dir, db) = fresh_db();
    let account = ops::CreateAccount {
        account_id: OWNER.into(),
        balance_micros: 1_000_000_000,
    };
    apply_all(&db, &[at(T0, account)]);
    (dir, db)
}

fn ok(r: &Response) {
    assert!(r.is_ok(), "{r:?}");
}

/// Every record in the log, in order, and the tree they make.
fn records(reader: &StateReader) -> (Vec<Record>, MemTree) {
    let n = reader.witness_size().unwrap();
    let mut out = Vec::new();
    let mut tree = MemTree::new();
    for i in 0..n {
        let bytes = reader
            .witness_record(i)
            .unwrap()
            .unwrap_or_else(|| panic!("record {i}"));
        tree.push(leaf_hash(&bytes));
        out.push(Record::parse(&bytes).unwrap());
    }
    (out, tree)
}

#[test]
fn witnessed_writes_append_their_records() {
    let (_d, db) = setup();
    let reader = StateReader::new(db.clone());
    let rs = apply_all(
        &db,
        &[
            at(T0 + 1, create("btn_c", WriteKind::AppendChained, true, Some(b"one"))),
            at(T0 + 2, append("btn_c", b"two")),
            at(T0 + 3, create("btn_s", WriteKind::Single, true, Some(b"v1"))),
            at(T0 + 4, write("btn_s", b"v2")),
            at(T0 + 5, create("btn_u", WriteKind::Single, false, Some(b"quiet"))),
            at(T0 + 6, write("btn_u", b"still quiet")),
            at(T0 + 7, create("btn_a", WriteKind::Append, false, Some(b"log"))),
            at(T0 + 8, append("btn_a", b"log 2")),
        ],
    );
    rs.iter().for_each(ok);
    let (recs, tree) = records(&reader);
    assert_eq!(recs.len(), 4);
    let Some(Outcome::EntryAppended(e)) = rs[1].as_ref().ok() else {
        panic!()
    };
    assert_eq!(recs[0].baton_id, "btn_c");
    assert_eq!((recs[0].event, recs[0].seq), (Event::Entry, 1));
    assert_eq!(recs[0].sha256.to_vec(), hex::decode(sha256_hex(b"one")).unwrap());
    assert_eq!((recs[1].event, recs[1].seq), (Event::Entry, 2));
    assert_eq!(recs[1].chain.map(hex::encode), Some(e.entry.hash.clone()));
    assert_eq!(recs[1].at_ms, T0 + 2);
    assert_eq!(
        (recs[2].baton_id.as_str(), recs[2].event, recs[2].seq),
        ("btn_s", Event::Version, 1)
    );
    assert_eq!((recs[3].event, recs[3].seq), (Event::Version, 2));
    assert_eq!(recs[3].sha256.to_vec(), hex::decode(sha256_hex(b"v2")).unwrap());
    assert!(recs[3].chain.is_none());
    // The stored tree is the records' tree.
    assert_eq!(merkle::root(&reader.witness_hashes(), 4).unwrap(), tree.root());
    // The baton index names the owner and the records.
    let c = reader.witness_records("btn_c", None, 10).unwrap();
    assert_eq!(c.iter().map(|r| r.0).collect::<Vec<_>>(), vec![0, 1]);
    assert_eq!(c[0].1, OWNER);
    let after = reader.witness_records("btn_c", Some(0), 10).unwrap();
    assert_eq!(after.iter().map(|r| r.0).collect::<Vec<_>>(), vec![1]);
    assert!(reader.witness_records("btn_u", None, 10).unwrap().is_empty());
}

#[test]
fn a_witnessed_write_with_a_bad_hash_is_refused_before_it_changes_anything() {
    let (_d, db) = setup();
    let reader = StateReader::new(db.clone());
    ok(&apply_all(&db, &[at(T0 + 1, create("btn_s", WriteKind::Single, true, None))])[0]);
    let before = dump(&db);
    let mut w = write("btn_s", b"x");
    w.content.inline = None;
    w.content.sha256_hex = "ZZ".repeat(32);
    let r = apply_all(&db, &[at(T0 + 2, w)]);
    assert!(matches!(r[0], Err(Rejection::Invalid(_))), "{r:?}");
    assert_eq!(reader.witness_size().unwrap(), 0);
    let after = dump(&db);
    assert_eq!(before.len(), after.len());
}

#[test]
fn keys_install_once_rotate_and_keep_their_origin() {
    let (_d, db) = setup();
    let reader = StateReader::new(db.clone());
    ok(&apply_all(&db, &[at(T0, add_key(1, true))])[0]);
    // A racing founder changes nothing.
    ok(&apply_all(&db, &[at(T0, add_key(2, true))])[0]);
    let log = reader.witness_log().unwrap().unwrap();
    assert_eq!(log.keys.len(), 1);
    assert_eq!(log.active().unwrap().public_key, signer(1).public_key());
    // A rotation adds and activates; the same key again is a no-op.
    ok(&apply_all(&db, &[at(T0, add_key(2, false))])[0]);
    ok(&apply_all(&db, &[at(T0, add_key(2, false))])[0]);
    let log = reader.witness_log().unwrap().unwrap();
    assert_eq!(log.keys.len(), 2);
    assert_eq!(log.active().unwrap().public_key, signer(2).public_key());
    assert_eq!(log.verifiers().len(), 2);
    assert_eq!((log.keys[0].until_size, log.keys[1].until_size), (Some(0), None));
    // The origin is fixed; bad keys and retentions are refused.
    let mut other = add_key(3, false);
    other.origin = "other.test/log".into();
    let mut spaced = add_key(3, false);
    spaced.origin = "has space".into();
    let mut short = add_key(3, false);
    short.retention_ms = RETENTION_MIN_MS - 1;
    let mut oversized = add_key(3, false);
    oversized.sealed_seed = vec![0; 1000];
    // A retired key is never made active again.
    let again = add_key(1, false);
    for op in [other, spaced, short, oversized, again] {
        let r = apply_all(&db, &[at(T0, op)]);
        assert!(matches!(r[0], Err(Rejection::Invalid(_))), "{r:?}");
    }
    assert_eq!(reader.witness_log().unwrap().unwrap().keys.len(), 2);
}

#[test]
fn checkpoints_take_only_the_logs_root_signed_by_the_active_key() {
    let (_d, db) = setup();
    let reader = StateReader::new(db.clone());
    let mut setup_ops = vec![
        at(T0, add_key(1, true)),
        at(T0 + 1, create("btn_c", WriteKind::AppendChained, true, Some(b"a"))),
    ];
    for i in 0..4u8 {
        setup_ops.push(at(T0 + 2 + i as u64, append("btn_c", &[b'b' + i])));
    }
    apply_all(&db, &setup_ops).iter().for_each(ok);
    let (_, tree) = records(&reader);
    assert_eq!(tree.size(), 5);
    let key = signer(1);
    let invalid = |op: SignCheckpoint| {
        let r = apply_all(&db, &[at(T0 + 10, op)]);
        assert!(matches!(r[0], Err(Rejection::Invalid(_))), "{r:?}");
    };
    // Wrong root, wrong key, past the end, empty, bad signature.
    let mut wrong_root = sign_op(&key, &tree, 3);
    wrong_root.root = merkle::root(&tree, 4).unwrap();
    invalid(wrong_root);
    invalid(sign_op(&signer(9), &tree, 3));
    let mut past = sign_op(&key, &tree, 5);
    past.size = 6;
    invalid(past);
    let mut zero = sign_op(&key, &tree, 1);
    zero.size = 0;
    invalid(zero);
    let mut forged = sign_op(&key, &tree, 3);
    forged.signature[0] ^= 1;
    invalid(forged);
    // A good one is stored as a note that opens with the key.
    ok(&apply_all(&db, &[at(T0 + 11, sign_op(&key, &tree, 3))])[0]);
    let cp = reader.witness_checkpoint().unwrap().unwrap();
    assert_eq!(cp.size, 3);
    let text = note::open(&cp.note, &[key.verifier()]).unwrap();
    assert_eq!(Checkpoint::parse(text).unwrap().root, merkle::root(&tree, 3).unwrap());
    // The same size again answers the same checkpoint; an older one is refused; a newer one moves on.
    let r = apply_all(&db, &[at(T0 + 12, sign_op(&key, &tree, 3))]);
    assert_eq!(r[0], Ok(Outcome::CheckpointSigned { checkpoint: cp.clone() }));
    invalid(sign_op(&key, &tree, 2));
    ok(&apply_all(&db, &[at(T0 + 13, sign_op(&key, &tree, 5))])[0]);
    // After a rotation, the old key may no longer sign; the new key re-signs the same size.
    ok(&apply_all(&db, &[at(T0 + 14, add_key(2, false))])[0]);
    assert_eq!(reader.witness_log().unwrap().unwrap().keys[0].until_size, Some(5));
    invalid(sign_op(&key, &tree, 5));
    ok(&apply_all(&db, &[at(T0 + 15, sign_op(&signer(2), &tree, 5))])[0]);
    let cp = reader.witness_checkpoint().unwrap().unwrap();
    assert_eq!((cp.size, cp.public_key), (5, signer(2).public_key()));
}

#[test]
fn records_outlive_their_baton_and_go_after_the_retention_hashes_stay() {
    let (_d, db) = setup();
    let reader = StateReader::new(db.clone());
    let mut key = add_key(1, true);
    key.retention_ms = RETENTION_MIN_MS;
    let rs = apply_all(
        &db,
        &[
            at(T0, key),
            at(T0 + 1, create("btn_c", WriteKind::AppendChained, true, Some(b"a"))),
            at(T0 + 2, append("btn_c", b"b")),
            at(
                T0 + 3,
                ops::DeleteBaton {
                    owner: OWNER.into(),
                    lease_id: "btn_c".into(),
                    hard: true,
                },
            ),
            // Past the baton's own expiry and purge, within the retention.
            at(T0 + 3_600_000, ops::ExpireDue { max: 1000 }),
            at(T0 + 7_200_000, ops::ExpireDue { max: 1000 }),
        ],
    );
    rs.iter().for_each(ok);
    assert_eq!(reader.witness_records("btn_c", None, 10).unwrap().len(), 2);
    let root = merkle::root(&reader.witness_hashes(), 2).unwrap();
    ok(&apply_all(&db, &[at(T0 + RETENTION_MIN_MS + 2, ops::ExpireDue { max: 1000 })])[0]);
    assert!(reader.witness_records("btn_c", None, 10).unwrap().is_empty());
    assert_eq!(reader.witness_size().unwrap(), 2);
    assert_eq!(merkle::root(&reader.witness_hashes(), 2).unwrap(), root);
}

#[derive(Clone, Debug)]
enum Step {
    Chained(u8, u8),
    Single(u8, u8),
    Quiet(u8),
    Sign(u64),
    Rotate,
    Pass(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u8..3, any::<u8>()).prop_map(|(b, x)| Step::Chained(b, x)),
        3 => (0u8..3, any::<u8>()).prop_map(|(b, x)| Step::Single(b, x)),
        1 => any::<u8>().prop_map(Step::Quiet),
        3 => any::<u64>().prop_map(Step::Sign),
        1 => Just(Step::Rotate),
        1 => (1u64..100_000).prop_map(Step::Pass),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn the_log_is_append_only_and_every_proof_verifies(steps in prop::collection::vec(step(), 1..60)) {
        let (_d, db) = setup();
        let (_d2, db2) = setup();
        let reader = StateReader::new(db.clone());
        let mut now = T0;
        let mut key_seed = 1u8;
        let mut requests = vec![at(now, add_key(key_seed, true))];
        for b in 0..3 {
            requests.push(at(now, create(&format!("btn_c{b}"), WriteKind::AppendChained, true, None)));
            requests.push(at(now, create(&format!("btn_s{b}"), WriteKind::Single, true, None)));
        }
        requests.push(at(now, create("btn_q", WriteKind::Single, false, None)));
        for r in &requests {
            apply_all(&db, std::slice::from_ref(r));
            apply_all(&db2, std::slice::from_ref(r));
        }
        // Every checkpoint the ledger accepted, by size.
        let mut seen: std::collections::BTreeMap<u64, [u8; 32]> = Default::default();
        for s in steps {
            now += 1;
            let req = match s {
                Step::Chained(b, x) => at(now, append(&format!("btn_c{b}"), format!("e{x}").as_bytes())),
                Step::Single(b, x) => at(now, write(&format!("btn_s{b}"), &[x])),
                Step::Quiet(x) => at(now, write("btn_q", &[x])),
                Step::Sign(pick) => {
                    let (_, tree) = records(&reader);
                    if tree.size() == 0 {
                        continue;
                    }
                    at(now, sign_op(&signer(key_seed), &tree, 1 + pick % tree.size()))
                }
                Step::Rotate => {
                    key_seed += 1;
                    at(now, add_key(key_seed, false))
                }
                Step::Pass(ms) => {
                    now += ms;
                    at(now, ops::ExpireDue { max: 100 })
                }
            };
            let r1 = apply_all(&db, std::slice::from_ref(&req));
            let r2 = apply_all(&db2, std::slice::from_ref(&req));
            prop_assert_eq!(&r1, &r2);
            if let Ok(Outcome::CheckpointSigned { checkpoint }) = &r1[0] {
                if let Some(root) = seen.insert(checkpoint.size, checkpoint.root) {
                    prop_assert_eq!(root, checkpoint.root, "two roots for size {}", checkpoint.size);
                }
            }
            // The stored tree is exactly the records' tree, at every size.
            let (_, tree) = records(&reader);
            let hashes = reader.witness_hashes();
            prop_assert_eq!(merkle::root(&hashes, tree.size()).unwrap(), tree.root());
        }
        prop_assert_eq!(dump(&db), dump(&db2));
        let (recs, tree) = records(&reader);
        let n = tree.size();
        let hashes = reader.witness_hashes();
        for i in 0..n {
            let leaf = leaf_hash(&recs[i as usize].to_bytes());
            let p = merkle::inclusion_proof(&hashes, i, n).unwrap();
            prop_assert!(verify_inclusion(&leaf, i, n, &p, &tree.root()).is_ok());
        }
        // Every accepted checkpoint is consistent with every later one and with the tree now.
        let sizes: Vec<u64> = seen.keys().copied().chain(std::iter::once(n)).filter(|s| *s > 0).collect();
        for (i, a) in sizes.iter().enumerate() {
            for b in &sizes[i..] {
                let p = merkle::consistency_proof(&hashes, *a, *b).unwrap();
                let (ra, rb) = (merkle::root(&hashes, *a).unwrap(), merkle::root(&hashes, *b).unwrap());
                if let Some(r) = seen.get(a) {
                    prop_assert_eq!(*r, ra);
                }
                prop_assert!(verify_consistency(*a, *b, &p, &ra, &rb).is_ok());
            }
        }
    }
}

//! Baton commands, step by step (every rule of the issue's table), and a property test over
//! random interleavings: budgets and caps never pass, money is conserved, entries chain, and
//! replay is deterministic.

use proptest::prelude::*;

use crate::baton::{
    self, chain_hash, sha256_hex, Baton, BatonRates, Disposal, Entry, NewToken, Scope, Shape, WriteKind, CHAIN_GENESIS,
};
use crate::command::{Command, NewLease, Outcome, Rejection, Request, Response};
use crate::model::{BodyRef, Lease, LeaseKind, LeaseState};
use crate::ops::{self, Actor, Content, RangeSpec, ReadTarget};
use crate::pricing::Pricing;
use crate::sm::tests::{all, apply_all, fresh_db};

const T0: u64 = 9_000_000;
const OWNER: &str = "acct_a";
const BALANCE: u64 = 10_000_000;

fn at(now_ms: u64, command: impl Into<Command>) -> Request {
    Request {
        now_ms,
        idempotency: None,
        command: command.into(),
    }
}

fn shape(write: WriteKind) -> Shape {
    Shape {
        write,
        size_bytes: 100,
        duration_seconds: 60,
        egress_bytes: 50,
        burn_after_reading: false,
        disposal: Disposal::Soft { grace_seconds: 10 },
        witness: write == WriteKind::AppendChained,
    }
}

fn hash_of(token: &str) -> String {
    blake3::hash(token.as_bytes()).to_hex().to_string()
}

fn token(id: &str, scope: Scope, read_cap: Option<u32>) -> NewToken {
    NewToken {
        token_id: id.into(),
        token_hash_hex: hash_of(id),
        prefix: id.into(),
        scope,
        read_cap,
        ttl_seconds: None,
    }
}

pub(super) fn content(bytes: &[u8]) -> Content {
    Content {
        body: BodyRef {
            size_bytes: bytes.len() as u64,
            blake3_hex: blake3::hash(bytes).to_hex().to_string(),
            object_key: None,
        },
        inline: Some(bytes.to_vec()),
        sha256_hex: sha256_hex(bytes),
        content_type: "text/plain".into(),
    }
}

fn create(id: &str, s: Shape, first: Option<&[u8]>, tokens: Vec<NewToken>) -> ops::CreateBaton {
    let mut b = Baton::empty(&s);
    b.entries_max = 5;
    b.entry_max_bytes = 40;
    ops::CreateBaton {
        new: NewLease {
            lease_id: id.into(),
            ledger_id: format!("led_{id}"),
            owner: OWNER.into(),
            kind: LeaseKind::Baton(Box::new(b)),
            duration_seconds: s.duration_seconds,
        },
        content: first.map(content),
        tokens,
        batons_max: 3,
    }
}

fn read(id: &str, actor: Actor, target: ReadTarget) -> ops::ReadBaton {
    ops::ReadBaton {
        lease_id: id.into(),
        actor,
        target,
    }
}

fn whole() -> ReadTarget {
    ReadTarget::Content { range: None }
}

fn owner() -> Actor {
    Actor::Owner(OWNER.into())
}

fn by(token_id: &str) -> Actor {
    Actor::Token(hash_of(token_id))
}

fn append(id: &str, actor: Actor, bytes: &[u8]) -> ops::AppendEntry {
    ops::AppendEntry {
        lease_id: id.into(),
        actor,
        content: bytes.to_vec(),
    }
}

fn delete(id: &str, hard: bool) -> ops::DeleteBaton {
    ops::DeleteBaton {
        owner: OWNER.into(),
        lease_id: id.into(),
        hard,
    }
}

fn restore(id: &str) -> ops::RestoreBaton {
    ops::RestoreBaton {
        owner: OWNER.into(),
        lease_id: id.into(),
    }
}

fn setup() -> (tempfile::TempDir, std::sync::Arc<rocksdb::DB>) {
    let (dir, db) = fresh_db();
    let account = ops::CreateAccount {
        account_id: OWNER.into(),
        balance_micros: BALANCE,
    };
    apply_all(&db, &[at(T0, account)]);
    (dir, db)
}

fn balance(db: &rocksdb::DB) -> u64 {
    all::<crate::model::Account>(db, "accounts")[0].1.balance_micros
}

fn lease(db: &rocksdb::DB, id: &str) -> Lease {
    all::<Lease>(db, "leases")
        .into_iter()
        .map(|(_, l)| l)
        .find(|l| l.lease_id == id)
        .expect("lease")
}

fn baton_of(l: &Lease) -> &Baton {
    match &l.kind {
        LeaseKind::Baton(b) => b,
        _ => panic!("not a baton"),
    }
}

fn served(r: &Response) -> &ops::BatonRead {
    match r {
        Ok(Outcome::BatonRead(read)) => read,
        other => panic!("unexpected {other:?}"),
    }
}

/// The charge is the quote: storage, egress and the witness fee, at least the minimum.
#[test]
fn create_charges_the_quote_once() {
    let (_d, db) = setup();
    let s = Shape {
        size_bytes: 1 << 30,
        duration_seconds: 86_400,
        egress_bytes: 1 << 30,
        ..shape(WriteKind::AppendChained)
    };
    let r = apply_all(&db, &[at(T0, create("btn_1", s, Some(b"genesis"), vec![]))]);
    let expected = baton::price(&Pricing::default(), &BatonRates::default(), &s);
    assert_eq!(expected, 1_000 + 10_000 + 100);
    assert!(r[0].is_ok(), "{r:?}");
    assert_eq!(balance(&db), BALANCE - expected);
    assert_eq!(lease(&db, "btn_1").cost_micros, expected);
}

/// A refused create (too many tokens, bad content, a shape broken) charges and stores nothing.
#[test]
fn refused_creates_store_and_charge_nothing() {
    let (_d, db) = setup();
    let many: Vec<NewToken> = (0..101).map(|i| token(&format!("t{i}"), Scope::Read, None)).collect();
    let dup = vec![token("t", Scope::Read, None), token("t", Scope::Read, None)];
    let unchained = Shape {
        witness: false,
        ..shape(WriteKind::AppendChained)
    };
    let r = apply_all(
        &db,
        &[
            at(T0, create("btn_1", shape(WriteKind::Single), None, many)),
            at(T0, create("btn_2", shape(WriteKind::Single), None, dup)),
            at(
                T0,
                create("btn_3", shape(WriteKind::Single), Some(&[b'x'; 101]), vec![]),
            ),
            at(T0, create("btn_4", shape(WriteKind::Append), Some(&[0xff]), vec![])),
            at(T0, create("btn_5", unchained, None, vec![])),
        ],
    );
    assert_eq!(r[0], Err(Rejection::TooManyTokens(100)));
    assert!(matches!(r[1], Err(Rejection::Invalid(_))), "{:?}", r[1]);
    assert!(matches!(r[2], Err(Rejection::TooLarge { .. })), "{:?}", r[2]);
    assert!(matches!(r[3], Err(Rejection::Invalid(_))), "{:?}", r[3]);
    assert!(matches!(r[4], Err(Rejection::Invalid(_))), "{:?}", r[4]);
    assert_eq!(balance(&db), BALANCE);
    assert!(all::<Lease>(&db, "leases").is_empty());
    assert!(all::<baton::BatonToken>(&db, "baton_tokens").is_empty());
}

/// Read caps count exactly; the cap's last read burns a burn-after-reading baton, whose bytes
/// are then held for the stream; later reads are refused.
#[test]
fn read_caps_and_burn_after_reading() {
    let (_d, db) = setup();
    let s = Shape {
        burn_after_reading: true,
        ..shape(WriteKind::Single)
    };
    let tokens = vec![token("r2", Scope::Read, Some(2)), token("w", Scope::Write, None)];
    apply_all(&db, &[at(T0, create("btn_1", s, Some(b"hello"), tokens))]);
    let r = apply_all(
        &db,
        &[
            at(T0 + 1, read("btn_1", by("w"), whole())),
            at(T0 + 1, read("btn_1", by("r2"), whole())),
            at(T0 + 1, read("btn_1", owner(), whole())),
        ],
    );
    assert_eq!(r[0], Err(Rejection::Scope("reading".into())));
    assert!(!served(&r[1]).closed);
    assert_eq!(served(&r[1]).inline.as_deref(), Some(&b"hello"[..]));
    // The owner's reads count egress, never a cap.
    assert!(!served(&r[2]).closed);
    let r = apply_all(&db, &[at(T0 + 2, read("btn_1", by("r2"), whole()))]);
    let last = served(&r[0]);
    assert!(last.closed);
    assert_eq!(last.token.as_ref().map(|t| t.reads), Some(2));
    let l = lease(&db, "btn_1");
    assert!(matches!(l.state, LeaseState::Deleted { .. }));
    assert!(baton_of(&l).burned);
    let r = apply_all(
        &db,
        &[
            at(T0 + 3, read("btn_1", by("r2"), whole())),
            at(T0 + 3, read("btn_1", owner(), whole())),
        ],
    );
    assert_eq!(r[0], Err(Rejection::LeaseGone));
    assert_eq!(r[1], Err(Rejection::LeaseGone));
}

/// A spent token on a baton that lives on (no burn) is refused with its own rejection.
#[test]
fn spent_tokens_are_refused() {
    let (_d, db) = setup();
    apply_all(
        &db,
        &[at(
            T0,
            create(
                "btn_1",
                shape(WriteKind::Single),
                Some(b"x"),
                vec![token("r1", Scope::Read, Some(1))],
            ),
        )],
    );
    let r = apply_all(
        &db,
        &[
            at(T0 + 1, read("btn_1", by("r1"), whole())),
            at(T0 + 1, read("btn_1", by("r1"), whole())),
            at(T0 + 1, read("btn_1", by("nobody"), whole())),
        ],
    );
    assert!(r[0].is_ok());
    assert_eq!(r[1], Err(Rejection::ReadCapExhausted));
    assert_eq!(r[2], Err(Rejection::TokenInvalid));
}

/// A read that would pass the budget is refused whole; ranges count only what they serve.
#[test]
fn egress_budget_is_never_passed() {
    let (_d, db) = setup();
    apply_all(
        &db,
        &[at(
            T0,
            create("btn_1", shape(WriteKind::Single), Some(&[b'a'; 20]), vec![]),
        )],
    );
    let r = apply_all(
        &db,
        &[
            at(T0 + 1, read("btn_1", owner(), whole())),
            at(T0 + 1, read("btn_1", owner(), whole())),
            at(T0 + 1, read("btn_1", owner(), whole())),
            at(
                T0 + 1,
                read(
                    "btn_1",
                    owner(),
                    ReadTarget::Content {
                        range: Some(RangeSpec::Suffix(10)),
                    },
                ),
            ),
            at(
                T0 + 1,
                read(
                    "btn_1",
                    owner(),
                    ReadTarget::Content {
                        range: Some(RangeSpec::From(20)),
                    },
                ),
            ),
        ],
    );
    assert!(r[0].is_ok() && r[1].is_ok());
    assert_eq!(
        r[2],
        Err(Rejection::EgressExhausted {
            remaining: 10,
            needed: 20
        })
    );
    let ranged = served(&r[3]);
    assert_eq!((ranged.start, ranged.end), (10, 20));
    assert_eq!(r[4], Err(Rejection::RangeNotSatisfiable { size: 20 }));
    assert_eq!(baton_of(&lease(&db, "btn_1")).egress_used, 50);
    // Spent: no more extensions.
    let extend = ops::ExtendBaton {
        owner: OWNER.into(),
        lease_id: "btn_1".into(),
        add_seconds: 10,
        add_size_bytes: 0,
        add_egress_bytes: 0,
        max_duration_seconds: 1_000_000,
        max_size_bytes: 1_000_000,
        max_egress_bytes: 1_000_000,
    };
    let r = apply_all(&db, &[at(T0 + 2, extend)]);
    assert!(matches!(r[0], Err(Rejection::LimitReached(_))), "{:?}", r[0]);
}

/// Writes past the size are refused with nothing changed; `If-Match` is compare-and-set; the
/// kind decides which write applies; a read token cannot write.
#[test]
fn writes_respect_size_version_kind_and_scope() {
    let (_d, db) = setup();
    let tokens = vec![token("r", Scope::Read, None), token("rw", Scope::ReadWrite, None)];
    apply_all(
        &db,
        &[
            at(T0, create("btn_1", shape(WriteKind::Overwrite), Some(b"v1"), tokens)),
            at(T0, create("btn_2", shape(WriteKind::Append), None, vec![])),
        ],
    );
    let write = |actor: Actor, if_version: Option<u64>, bytes: &[u8]| ops::WriteBaton {
        lease_id: "btn_1".into(),
        actor,
        if_version,
        content: content(bytes),
    };
    let before = lease(&db, "btn_1");
    let r = apply_all(
        &db,
        &[
            at(T0 + 1, write(owner(), None, &[b'x'; 101])),
            at(T0 + 1, write(by("r"), None, b"no")),
            at(T0 + 1, write(owner(), Some(7), b"no")),
            at(T0 + 1, write(owner(), None, &[0xc3])),
            at(T0 + 1, append("btn_1", owner(), b"no")),
            at(
                T0 + 1,
                ops::WriteBaton {
                    lease_id: "btn_2".into(),
                    ..write(owner(), None, b"no")
                },
            ),
        ],
    );
    assert!(matches!(r[0], Err(Rejection::TooLarge { .. })));
    assert_eq!(r[1], Err(Rejection::Scope("writing".into())));
    assert_eq!(r[2], Err(Rejection::VersionMismatch { current: 1 }));
    assert!(matches!(r[3], Err(Rejection::Invalid(_))));
    assert!(matches!(r[4], Err(Rejection::WrongWriteKind(_))));
    assert!(matches!(r[5], Err(Rejection::WrongWriteKind(_))));
    assert_eq!(lease(&db, "btn_1"), before);
    let r = apply_all(&db, &[at(T0 + 2, write(by("rw"), Some(1), b"v2"))]);
    let Ok(Outcome::BatonChanged { lease: l }) = &r[0] else {
        panic!("{r:?}")
    };
    assert_eq!((baton_of(l).version, baton_of(l).used_bytes), (2, 2));
    let r = apply_all(&db, &[at(T0 + 3, read("btn_1", owner(), whole()))]);
    assert_eq!(served(&r[0]).inline.as_deref(), Some(&b"v2"[..]));
}

/// A chained log's hashes are SHA-256(prev ‖ seq ‖ content), recomputed here from the entries
/// alone; the entry limit and the size hold.
#[test]
fn chained_entries_recompute_and_limits_hold() {
    let (_d, db) = setup();
    apply_all(
        &db,
        &[at(
            T0,
            create("btn_1", shape(WriteKind::AppendChained), Some(b"e1"), vec![]),
        )],
    );
    let r = apply_all(
        &db,
        &[
            at(T0 + 1, append("btn_1", owner(), b"e2")),
            at(T0 + 1, append("btn_1", owner(), b"e3")),
            at(T0 + 1, append("btn_1", owner(), &[b'x'; 41])),
            at(T0 + 1, append("btn_1", owner(), b"e4")),
            at(T0 + 1, append("btn_1", owner(), b"e5")),
            at(T0 + 1, append("btn_1", owner(), b"e6")),
        ],
    );
    assert!(r[..2].iter().all(Result::is_ok));
    assert!(matches!(r[2], Err(Rejection::TooLarge { .. })));
    assert_eq!(r[5], Err(Rejection::TooManyEntries(5)));
    let entries: Vec<Entry> = all::<Entry>(&db, "baton_entries").into_iter().map(|(_, e)| e).collect();
    let mut prev = CHAIN_GENESIS;
    for (i, e) in entries.iter().enumerate() {
        let content = format!("e{}", i + 1);
        assert_eq!(e.seq, i as u64 + 1);
        assert_eq!(e.prev_hash.as_deref(), Some(hex::encode(prev).as_str()));
        prev = chain_hash(&prev, e.seq, content.as_bytes());
        assert_eq!(e.hash, hex::encode(prev));
    }
    let l = lease(&db, "btn_1");
    assert_eq!(baton_of(&l).head_hash.as_deref(), Some(hex::encode(prev).as_str()));
    let listing = apply_all(
        &db,
        &[at(
            T0 + 2,
            read("btn_1", owner(), ReadTarget::Entries { after: 2, limit: 2 }),
        )],
    );
    let seqs: Vec<u64> = served(&listing[0]).entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![3, 4]);
    assert_eq!(baton_of(&lease(&db, "btn_1")).egress_used, 4);
}

/// Soft delete: gone during the grace, restored intact, disposed after the grace by the sweep;
/// hard delete: gone at once, entries and bytes with it.
#[test]
fn soft_and_hard_deletes() {
    let (_d, db) = setup();
    apply_all(
        &db,
        &[
            at(T0, create("btn_1", shape(WriteKind::Append), Some(b"kept"), vec![])),
            at(T0, create("btn_2", shape(WriteKind::Append), Some(b"gone"), vec![])),
        ],
    );
    let del = delete;
    let intact = lease(&db, "btn_1");
    let r = apply_all(
        &db,
        &[
            at(T0 + 1, del("btn_1", false)),
            at(T0 + 2, read("btn_1", owner(), whole())),
            at(T0 + 3, restore("btn_1")),
            at(T0 + 4, read("btn_1", owner(), whole())),
            at(T0 + 5, del("btn_2", true)),
            at(T0 + 5, restore("btn_2")),
        ],
    );
    assert!(r[0].is_ok());
    assert_eq!(r[1], Err(Rejection::LeaseGone));
    let Ok(Outcome::BatonChanged { lease: restored }) = &r[2] else {
        panic!("{r:?}")
    };
    assert_eq!(baton_of(restored), baton_of(&intact));
    assert_eq!(served(&r[3]).total, 4);
    assert_eq!(r[5], Err(Rejection::LeaseGone));
    let entries = all::<Entry>(&db, "baton_entries");
    assert_eq!(entries.len(), 1, "the hard-deleted baton's entry is gone");
    // Deleted again, and the grace runs out: the sweep disposes of it.
    apply_all(&db, &[at(T0 + 10, del("btn_1", false))]);
    let r = apply_all(&db, &[at(T0 + 10 + 10_000, ops::ExpireDue { max: 100 })]);
    assert!(r[0].is_ok());
    assert!(matches!(lease(&db, "btn_1").state, LeaseState::Deleted { .. }));
    assert!(all::<Entry>(&db, "baton_entries").is_empty());
    let r = apply_all(&db, &[at(T0 + 20_000, restore("btn_1"))]);
    assert_eq!(r[0], Err(Rejection::LeaseGone));
}

/// Expiry is judged at read time to the millisecond; the sweep then drops the entries.
#[test]
fn expiry_to_the_millisecond() {
    let (_d, db) = setup();
    apply_all(
        &db,
        &[at(
            T0,
            create(
                "btn_1",
                shape(WriteKind::Append),
                Some(b"x"),
                vec![token("r", Scope::Read, None)],
            ),
        )],
    );
    let end = T0 + 60_000;
    let r = apply_all(
        &db,
        &[
            at(end - 1, read("btn_1", by("r"), whole())),
            at(end, read("btn_1", by("r"), whole())),
            at(end, ops::ExpireDue { max: 100 }),
        ],
    );
    assert!(r[0].is_ok());
    assert_eq!(r[1], Err(Rejection::LeaseGone));
    assert!(all::<Entry>(&db, "baton_entries").is_empty());
    assert!(all::<Vec<u8>>(&db, "baton_owners").is_empty());
}

/// An extension costs the difference of the two shapes' prices and moves the expiry.
#[test]
fn extensions_cost_what_they_add() {
    let (_d, db) = setup();
    let s = Shape {
        size_bytes: 1 << 30,
        duration_seconds: 86_400,
        egress_bytes: 0,
        ..shape(WriteKind::Single)
    };
    apply_all(&db, &[at(T0, create("btn_1", s, None, vec![]))]);
    let before = balance(&db);
    let extend = ops::ExtendBaton {
        owner: OWNER.into(),
        lease_id: "btn_1".into(),
        add_seconds: 86_400,
        add_size_bytes: 0,
        add_egress_bytes: 1 << 30,
        max_duration_seconds: 10 * 86_400,
        max_size_bytes: 1 << 31,
        max_egress_bytes: 1 << 31,
    };
    let r = apply_all(&db, &[at(T0 + 1, extend)]);
    let Ok(Outcome::BatonExtended(ext)) = &r[0] else {
        panic!("{r:?}")
    };
    assert_eq!(ext.charged_micros, 1_000 + 10_000);
    assert_eq!(balance(&db), before - 11_000);
    assert_eq!(ext.lease.expires_at_ms, T0 + 2 * 86_400_000);
    let r = apply_all(&db, &[at(T0 + 86_400_000 + 5, read("btn_1", owner(), whole()))]);
    assert!(r[0].is_ok(), "the extension moved the expiry: {r:?}");
}

/// Tokens: at most 100 at once, revoked ones are unknown, another baton's token proves nothing.
#[test]
fn tokens_are_bounded_revocable_and_bound_to_their_baton() {
    let (_d, db) = setup();
    apply_all(
        &db,
        &[
            at(
                T0,
                create(
                    "btn_1",
                    shape(WriteKind::Single),
                    Some(b"x"),
                    vec![token("t1", Scope::Read, None)],
                ),
            ),
            at(T0, create("btn_2", shape(WriteKind::Single), Some(b"y"), vec![])),
        ],
    );
    let issue = |n: usize, from: usize| ops::IssueTokens {
        owner: OWNER.into(),
        lease_id: "btn_1".into(),
        tokens: (from..from + n)
            .map(|i| token(&format!("x{i}"), Scope::Read, None))
            .collect(),
        tokens_max: 100,
    };
    let r = apply_all(
        &db,
        &[
            at(T0 + 1, issue(100, 0)),
            at(T0 + 1, issue(99, 0)),
            at(T0 + 1, issue(1, 99)),
            at(T0 + 1, read("btn_2", by("t1"), whole())),
        ],
    );
    assert_eq!(r[0], Err(Rejection::TooManyTokens(100)));
    assert!(r[1].is_ok());
    assert_eq!(r[2], Err(Rejection::TooManyTokens(100)));
    assert_eq!(r[3], Err(Rejection::LeaseNotFound));
    let revoke = ops::RevokeToken {
        owner: OWNER.into(),
        lease_id: "btn_1".into(),
        token_id: "t1".into(),
    };
    let r = apply_all(
        &db,
        &[
            at(T0 + 2, revoke),
            at(T0 + 2, read("btn_1", by("t1"), whole())),
            at(T0 + 2, issue(1, 200)),
        ],
    );
    assert!(r[0].is_ok());
    assert_eq!(r[1], Err(Rejection::TokenInvalid));
    assert!(r[2].is_ok(), "a revoked token frees its place: {r:?}");
}

/// An owner's live batons are bounded; a closed one frees its place.
#[test]
fn batons_per_owner_are_bounded() {
    let (_d, db) = setup();
    let r = apply_all(
        &db,
        &(1..=4)
            .map(|i| at(T0, create(&format!("btn_{i}"), shape(WriteKind::Single), None, vec![])))
            .collect::<Vec<_>>(),
    );
    assert_eq!(r[3], Err(Rejection::TooManyBatons(3)));
    let r = apply_all(
        &db,
        &[
            at(T0 + 1, delete("btn_1", true)),
            at(T0 + 1, create("btn_5", shape(WriteKind::Single), None, vec![])),
        ],
    );
    assert!(r[1].is_ok(), "{r:?}");
}

/// One step of a random history against one baton.
#[derive(Clone, Debug)]
enum Step {
    Read { token: Option<usize>, suffix: Option<u64> },
    Append(u8),
    Delete { hard: bool },
    Restore,
    Sweep,
    Tick(u64),
}

fn arb_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (proptest::option::of(0usize..3), proptest::option::of(1u64..8)).prop_map(|(token, suffix)| Step::Read { token, suffix }),
        3 => (1u8..12).prop_map(Step::Append),
        1 => any::<bool>().prop_map(|hard| Step::Delete { hard }),
        1 => Just(Step::Restore),
        1 => Just(Step::Sweep),
        1 => (1u64..20_000).prop_map(Step::Tick),
    ]
}

fn history(steps: &[Step], chained: bool) -> Vec<Request> {
    let s = Shape {
        burn_after_reading: true,
        ..shape(if chained {
            WriteKind::AppendChained
        } else {
            WriteKind::Append
        })
    };
    let tokens = vec![
        token("a", Scope::Read, Some(2)),
        token("b", Scope::ReadWrite, Some(3)),
        token("c", Scope::Read, None),
    ];
    let mut now = T0;
    let mut out = vec![at(
        T0,
        ops::CreateAccount {
            account_id: OWNER.into(),
            balance_micros: BALANCE,
        },
    )];
    out.push(at(now, create("btn_1", s, Some(b"0"), tokens)));
    for step in steps {
        let command: Command = match step {
            Step::Read { token, suffix } => {
                let actor = token.map_or(owner(), |i| by(["a", "b", "c"][i]));
                read(
                    "btn_1",
                    actor,
                    ReadTarget::Content {
                        range: suffix.map(RangeSpec::Suffix),
                    },
                )
                .into()
            }
            Step::Append(n) => append("btn_1", owner(), &vec![b'a' + n; *n as usize]).into(),
            Step::Delete { hard } => delete("btn_1", *hard).into(),
            Step::Restore => restore("btn_1").into(),
            Step::Sweep => ops::ExpireDue { max: 100 }.into(),
            Step::Tick(ms) => {
                now += ms;
                continue;
            }
        };
        out.push(at(now, command));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// Under any history: egress never passes the budget, no token reads past its cap, reads are
    /// served only while the baton is live, entries chain in order with their sizes summing to
    /// the usage, money is conserved, and replay gives the same answers and state.
    #[test]
    fn budgets_caps_and_chains_hold(steps in proptest::collection::vec(arb_step(), 1..60), chained in any::<bool>()) {
        let requests = history(&steps, chained);
        let (_d1, db) = fresh_db();
        let responses = apply_all(&db, &requests);
        let (_d2, db2) = fresh_db();
        prop_assert_eq!(&responses, &apply_all(&db2, &requests));

        let mut egress = 0u64;
        let mut reads = std::collections::BTreeMap::new();
        let mut live = true;
        for (req, resp) in requests.iter().zip(&responses) {
            if let (Command::ReadBaton(op), Ok(Outcome::BatonRead(r))) = (&req.command, resp) {
                prop_assert!(live, "served after the baton closed");
                egress += r.end - r.start;
                if let Actor::Token(h) = &op.actor {
                    *reads.entry(h.clone()).or_insert(0u32) += 1;
                }
                if r.closed { live = false; }
            }
            if let (Command::DeleteBaton(op), Ok(_)) = (&req.command, resp) {
                if op.hard { live = false; }
            }
            if let Ok(Outcome::Swept(s)) = resp { if s.expired > 0 { live = false; } }
        }
        for (h, n) in &reads {
            let cap = [("a", 2u32), ("b", 3)].iter().find(|(id, _)| hash_of(id) == *h).map(|(_, c)| *c);
            if let Some(cap) = cap { prop_assert!(*n <= cap, "{} reads past a cap of {}", n, cap); }
        }
        let l = lease(&db, "btn_1");
        let b = baton_of(&l);
        prop_assert!(b.egress_used <= b.egress_bytes);
        prop_assert_eq!(b.egress_used, egress);
        prop_assert_eq!(balance(&db) + l.cost_micros, BALANCE);
        if l.state == LeaseState::Active {
            let entries: Vec<Entry> = all::<Entry>(&db, "baton_entries").into_iter().map(|(_, e)| e).collect();
            prop_assert_eq!(entries.len() as u64, b.entry_count);
            prop_assert_eq!(entries.iter().map(|e| e.size_bytes).sum::<u64>(), b.used_bytes);
            let mut prev = CHAIN_GENESIS;
            for (i, e) in entries.iter().enumerate() {
                prop_assert_eq!(e.seq, i as u64 + 1);
                if chained {
                    prop_assert_eq!(e.prev_hash.clone(), Some(hex::encode(prev)));
                    prev = hex::decode(&e.hash).unwrap().try_into().unwrap();
                }
            }
        } else {
            let held = matches!(l.state, LeaseState::Deleted { .. });
            prop_assert!(all::<Entry>(&db, "baton_entries").is_empty() || held, "entries outlive their baton");
        }
    }
}

/// Fixes from the attacker's review: a read that serves nothing counts nothing; the grace ends at
/// its millisecond whether or not the sweep came; revoking the last unspent capped token (or
/// switching burn on after the caps were spent) burns; the node's token ceiling holds.
#[test]
fn empty_reads_grace_ends_and_burns_by_revoke_or_lifecycle() {
    let (_d, db) = setup();
    let s = Shape {
        burn_after_reading: true,
        ..shape(WriteKind::Append)
    };
    let tokens = vec![token("one", Scope::Read, Some(1)), token("two", Scope::Read, Some(2))];
    apply_all(
        &db,
        &[
            at(T0, create("btn_1", s, Some(b"x"), tokens)),
            at(
                T0,
                create(
                    "btn_2",
                    shape(WriteKind::Single),
                    Some(b"y"),
                    vec![token("cap", Scope::Read, Some(1))],
                ),
            ),
            at(T0, create("btn_3", shape(WriteKind::Single), Some(b"z"), vec![])),
        ],
    );
    let r = apply_all(
        &db,
        &[
            at(
                T0 + 1,
                read("btn_1", by("one"), ReadTarget::Entries { after: 9, limit: 5 }),
            ),
            at(T0 + 1, read("btn_1", by("one"), whole())),
        ],
    );
    assert!(
        served(&r[0]).entries.is_empty() && served(&r[0]).token.is_none(),
        "nothing served, nothing counted"
    );
    assert!(!served(&r[1]).closed, "token two is unspent");
    let revoke = ops::RevokeToken {
        owner: OWNER.into(),
        lease_id: "btn_1".into(),
        token_id: "two".into(),
    };
    let r = apply_all(&db, &[at(T0 + 2, revoke.clone()), at(T0 + 2, revoke)]);
    assert!(r[0].is_ok());
    assert_eq!(r[1], Err(Rejection::TokenNotFound));
    assert!(
        baton_of(&lease(&db, "btn_1")).burned,
        "only spent capped tokens remain: burned"
    );

    let r = apply_all(&db, &[at(T0 + 3, read("btn_2", by("cap"), whole()))]);
    assert!(!served(&r[0]).closed);
    let burn = ops::SetLifecycle {
        owner: OWNER.into(),
        lease_id: "btn_2".into(),
        burn_after_reading: Some(true),
        disposal: None,
    };
    apply_all(&db, &[at(T0 + 4, burn)]);
    assert!(matches!(lease(&db, "btn_2").state, LeaseState::Deleted { .. }));

    let r = apply_all(
        &db,
        &[
            at(T0 + 5, delete("btn_3", false)),
            at(T0 + 5 + 10_000, restore("btn_3")),
        ],
    );
    assert_eq!(r[1], Err(Rejection::LeaseGone), "the grace ended at its millisecond");

    apply_all(
        &db,
        &[at(T0 + 6, create("btn_4", shape(WriteKind::Single), None, vec![]))],
    );
    let issue = ops::IssueTokens {
        owner: OWNER.into(),
        lease_id: "btn_4".into(),
        tokens: vec![token("a", Scope::Read, None), token("b", Scope::Read, None)],
        tokens_max: 1,
    };
    let r = apply_all(&db, &[at(T0 + 7, issue)]);
    assert_eq!(
        r[0],
        Err(Rejection::TooManyTokens(1)),
        "the node's ceiling, not only the hard cap"
    );
}

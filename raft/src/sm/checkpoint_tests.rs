//! Checkpoint commands, step by step: versions, compare-and-set, size limits, consume, expiry.

use crate::command::{Command, NewLease, Outcome, Rejection, Request, Response};
use crate::model::{BodyRef, Checkpoint, Lease, LeaseKind, LeaseState};
use crate::ops;
use crate::sm::tests::{all, apply_all, fresh_db, raw};

const T0: u64 = 7_000_000;

fn at(now_ms: u64, command: Command) -> Request {
    Request {
        now_ms,
        idempotency: None,
        command,
    }
}

fn inline(bytes: &[u8]) -> (BodyRef, Option<Vec<u8>>) {
    let body = BodyRef {
        size_bytes: bytes.len() as u64,
        blake3_hex: blake3::hash(bytes).to_hex().to_string(),
        object_key: None,
    };
    (body, Some(bytes.to_vec()))
}

fn object(key: &str, size_bytes: u64) -> (BodyRef, Option<Vec<u8>>) {
    let body = BodyRef {
        size_bytes,
        blake3_hex: "00".into(),
        object_key: Some(key.into()),
    };
    (body, None)
}

fn create(lease_id: &str, workflow_id: &str, (body, inline_body): (BodyRef, Option<Vec<u8>>)) -> Command {
    Command::CreateCheckpoint(ops::CreateCheckpoint {
        new: NewLease {
            lease_id: lease_id.into(),
            ledger_id: format!("led_{lease_id}"),
            owner: "acct_a".into(),
            kind: LeaseKind::Checkpoint(Checkpoint {
                workflow_id: workflow_id.into(),
                max_body_bytes: 100,
                version: 1,
                updated_at_ms: 0,
                body,
            }),
            duration_seconds: 10,
        },
        inline_body,
    })
}

fn put(if_version: Option<u64>, (body, inline_body): (BodyRef, Option<Vec<u8>>)) -> Command {
    Command::WriteCheckpoint(ops::WriteCheckpoint {
        owner: "acct_a".into(),
        workflow_id: "wf".into(),
        if_version,
        body,
        inline_body,
    })
}

fn version(response: &Response) -> u64 {
    match response {
        Ok(Outcome::CheckpointWritten { lease }) | Ok(Outcome::LeaseCreated(ops::LeaseCreated { lease, .. })) => {
            match &lease.kind {
                LeaseKind::Checkpoint(c) => c.version,
                _ => panic!("not a checkpoint"),
            }
        }
        other => panic!("unexpected {other:?}"),
    }
}

fn setup() -> (tempfile::TempDir, std::sync::Arc<rocksdb::DB>) {
    let (dir, db) = fresh_db();
    let r = apply_all(
        &db,
        &[
            at(
                T0,
                Command::CreateAccount(ops::CreateAccount {
                    account_id: "acct_a".into(),
                    balance_micros: 100,
                }),
            ),
            at(T0, create("lse_1", "wf", inline(b"{\"n\":0}"))),
        ],
    );
    assert_eq!(version(&r[1]), 1);
    (dir, db)
}

/// Writes bump the version by one; a stale `if_version` or an oversize body changes nothing.
#[test]
fn versions_and_compare_and_set() {
    let (_dir, db) = setup();
    let r = apply_all(&db, &[at(T0 + 1, put(Some(1), inline(b"{\"n\":1}")))]);
    assert_eq!(version(&r[0]), 2);
    let before = raw(&db, "bodies");
    let r = apply_all(
        &db,
        &[
            at(T0 + 2, put(Some(1), inline(b"{\"n\":2}"))),
            at(T0 + 2, put(None, inline(&[b' '; 101]))),
            at(T0 + 2, create("lse_2", "wf", inline(b"{}"))),
        ],
    );
    assert_eq!(r[0], Err(Rejection::VersionMismatch { current: 2 }));
    assert_eq!(
        r[1],
        Err(Rejection::TooLarge {
            size_bytes: 101,
            limit: 100
        })
    );
    assert_eq!(r[2], Err(Rejection::WorkflowExists));
    assert_eq!(raw(&db, "bodies"), before);
    // One lease charged, at the default prices' minimum.
    let charged = crate::pricing::Pricing::default().min_charge_micros;
    assert_eq!(
        all::<crate::model::Account>(&db, "accounts")[0].1.balance_micros,
        100 - charged
    );
    let r = apply_all(&db, &[at(T0 + 3, put(None, inline(b"{\"n\":3}")))]);
    assert_eq!(version(&r[0]), 3);
}

/// Moving the body to the object store and back queues each superseded object for deletion.
#[test]
fn superseded_objects_are_queued() {
    let (_dir, db) = setup();
    apply_all(
        &db,
        &[
            at(T0 + 1, put(None, object("blobs/a", 80))),
            at(T0 + 2, put(None, object("blobs/b", 90))),
        ],
    );
    assert!(raw(&db, "bodies").is_empty());
    assert_eq!(raw(&db, "gc").len(), 1);
    apply_all(&db, &[at(T0 + 3, put(None, inline(b"[]")))]);
    let gc: Vec<Vec<u8>> = raw(&db, "gc").into_iter().map(|(k, _)| k).collect();
    assert_eq!(gc, vec![b"blobs/a".to_vec(), b"blobs/b".to_vec()]);
}

/// A consume returns the inline body once and leaves a tombstone; the id can be reused.
#[test]
fn consume_reads_once() {
    let (_dir, db) = setup();
    let consume = Command::ConsumeCheckpoint(ops::ConsumeCheckpoint {
        owner: "acct_a".into(),
        workflow_id: "wf".into(),
    });
    let r = apply_all(&db, &[at(T0 + 1, consume.clone()), at(T0 + 2, consume)]);
    match &r[0] {
        Ok(Outcome::CheckpointConsumed(ops::CheckpointConsumed { inline_body, lease })) => {
            assert_eq!(inline_body.as_deref(), Some(&b"{\"n\":0}"[..]));
            assert_eq!(lease.state, LeaseState::Deleted { at_ms: T0 + 1 });
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(r[1], Err(Rejection::LeaseGone));
    assert!(raw(&db, "bodies").is_empty());
    let r = apply_all(&db, &[at(T0 + 3, create("lse_3", "wf", inline(b"1")))]);
    assert_eq!(version(&r[0]), 1);
}

/// A consumed object body is held for the reader, then released by `ReleaseBytes` (once).
#[test]
fn consumed_object_is_held_then_released() {
    let (_dir, db) = setup();
    apply_all(&db, &[at(T0 + 1, put(None, object("blobs/a", 80)))]);
    let r = apply_all(
        &db,
        &[at(
            T0 + 2,
            Command::ConsumeCheckpoint(ops::ConsumeCheckpoint {
                owner: "acct_a".into(),
                workflow_id: "wf".into(),
            }),
        )],
    );
    assert!(matches!(
        &r[0],
        Ok(Outcome::CheckpointConsumed(ops::CheckpointConsumed {
            inline_body: None,
            ..
        }))
    ));
    assert!(raw(&db, "gc").is_empty(), "held bytes must not be queued yet");
    let release = Command::ReleaseBytes(ops::ReleaseBytes {
        lease_id: "lse_1".into(),
    });
    let r = apply_all(&db, &[at(T0 + 3, release.clone()), at(T0 + 4, release)]);
    assert_eq!(r[0], Ok(Outcome::BytesReleased { released: true }));
    assert_eq!(r[1], Ok(Outcome::BytesReleased { released: false }));
    assert_eq!(raw(&db, "gc").len(), 1);
}

/// At expiry the checkpoint answers gone and the sweep drops its body and queues its object.
#[test]
fn expiry_deletes_every_version() {
    let (_dir, db) = setup();
    apply_all(&db, &[at(T0 + 1, put(None, object("blobs/a", 80)))]);
    let r = apply_all(
        &db,
        &[
            at(T0 + 10_000, put(None, inline(b"2"))),
            at(T0 + 10_000, Command::ExpireDue(ops::ExpireDue { max: 10 })),
        ],
    );
    assert_eq!(r[0], Err(Rejection::LeaseGone));
    assert!(raw(&db, "bodies").is_empty());
    assert_eq!(raw(&db, "gc").len(), 1);
    let lease: Lease = all(&db, "leases").remove(0).1;
    assert_eq!(lease.state, LeaseState::Expired { at_ms: T0 + 10_000 });
}

/// A claim prepared against a version that has since been replaced counts nothing and is not
/// remembered under its key, so the claimer's retry (same key, the new version) is counted once.
#[test]
fn a_claim_of_a_replaced_version_counts_nothing() {
    use crate::command::{IdempotencyKey, Served};
    let (_dir, db) = fresh_db();
    let token = blake3::hash(b"claim-token").to_hex().to_string();
    let keyed = |now_ms: u64, command: Command| Request {
        now_ms,
        idempotency: Some(IdempotencyKey {
            scope: "claim:x|claim".into(),
            key: "k".into(),
            fingerprint: [3; 32],
        }),
        command,
    };
    let claim = |version| {
        Command::Claim(ops::Claim {
            token_hash_hex: token.clone(),
            post: false,
            served: Served::Checkpoint { version },
        })
    };
    let r = apply_all(
        &db,
        &[
            at(
                T0,
                Command::CreateAccount(ops::CreateAccount {
                    account_id: "acct_a".into(),
                    balance_micros: 100,
                }),
            ),
            at(T0, create("lse_c", "wf", inline(b"{}"))),
            at(
                T0 + 1,
                Command::CreateHandoff(ops::CreateHandoff {
                    owner: "acct_a".into(),
                    lease_id: "lse_c".into(),
                    handoff_id: "hnd_1".into(),
                    token_hash_hex: token.clone(),
                    token_prefix: "hof_".into(),
                    max_claims: 2,
                    delete_on_claim: false,
                    require_post: false,
                    ttl_seconds: 60,
                }),
            ),
            at(T0 + 2, put(None, inline(b"[1]"))),
            keyed(T0 + 3, claim(1)),
            keyed(T0 + 4, claim(2)),
            keyed(T0 + 5, claim(2)),
        ],
    );
    assert_eq!(r[4], Err(Rejection::ContentChanged));
    let Ok(Outcome::Claimed(ops::Claimed { handoff, served, .. })) = &r[5] else {
        panic!("{:?}", r[5]);
    };
    assert_eq!(
        (handoff.claims_remaining, *served),
        (1, Served::Checkpoint { version: 2 })
    );
    assert_eq!(r[6], r[5], "the retry is the same claim");
}

//! Handoff commands, step by step: exact claim counts, POST-only tokens, revocation, expiry and
//! delete-on-claim.

use crate::command::{Command, NewLease, Outcome, Rejection, Request, Response, Served};
use crate::model::{Lease, LeaseKind, LeaseState};
use crate::ops;
use crate::sm::tests::{all, apply_all, fresh_db, raw};

const T0: u64 = 11_000_000;

fn at(now_ms: u64, command: Command) -> Request {
    Request {
        now_ms,
        idempotency: None,
        command,
    }
}

fn hash(n: u8) -> String {
    blake3::hash(&[n]).to_hex().to_string()
}

fn handoff(n: u8, max_claims: u32, delete_on_claim: bool, require_post: bool, ttl_seconds: u64) -> Command {
    Command::CreateHandoff(ops::CreateHandoff {
        owner: "acct_a".into(),
        lease_id: "lse_s".into(),
        handoff_id: format!("hnd_{n}"),
        token_hash_hex: hash(n),
        token_prefix: format!("t{n}"),
        max_claims,
        delete_on_claim,
        require_post,
        ttl_seconds,
    })
}

fn claim(n: u8, post: bool) -> Command {
    Command::Claim(ops::Claim {
        token_hash_hex: hash(n),
        post,
        served: Served::Object,
    })
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
            at(
                T0,
                Command::CreateLease(NewLease {
                    lease_id: "lse_s".into(),
                    ledger_id: "led_s".into(),
                    owner: "acct_a".into(),
                    kind: LeaseKind::Storage {
                        object_key: "blobs/s".into(),
                        file_name: "f.txt".into(),
                        content_type: "text/plain".into(),
                        size_bytes: 3,
                        blake3_hex: "00".into(),
                    },
                    duration_seconds: 100,
                }),
            ),
        ],
    );
    assert!(matches!(r[1], Ok(Outcome::LeaseCreated(ops::LeaseCreated { .. }))));
    (dir, db)
}

fn successes(r: &[Response]) -> usize {
    r.iter()
        .filter(|r| matches!(r, Ok(Outcome::Claimed(ops::Claimed { .. }))))
        .count()
}

/// Exactly max_claims claims succeed; the rest are exhausted.
#[test]
fn claims_are_exact() {
    let (_dir, db) = setup();
    apply_all(&db, &[at(T0 + 1, handoff(1, 3, false, false, 60))]);
    let r = apply_all(
        &db,
        &(0..10)
            .map(|i| at(T0 + 2 + i, claim(1, i % 2 == 0)))
            .collect::<Vec<_>>(),
    );
    assert_eq!(successes(&r), 3);
    assert!(r[3..].iter().all(|r| *r == Err(Rejection::HandoffExhausted)));
    let lease: Lease = all(&db, "leases").remove(0).1;
    assert_eq!(lease.access_count, 3);
    assert_eq!(lease.state, LeaseState::Active);
}

/// POST-only tokens refuse GET claims without counting them; revoked tokens are unknown; the
/// TTL is clamped to the lease and enforced.
#[test]
fn post_only_revoke_and_expiry() {
    let (_dir, db) = setup();
    let r = apply_all(
        &db,
        &[
            at(T0 + 1, handoff(1, 2, false, true, 60)),
            at(T0 + 1, handoff(2, 2, false, false, 1_000_000)),
            at(T0 + 2, claim(1, false)),
            at(T0 + 2, claim(1, true)),
            at(
                T0 + 3,
                Command::RevokeHandoff(ops::RevokeHandoff {
                    owner: "acct_a".into(),
                    handoff_id: "hnd_1".into(),
                }),
            ),
            at(T0 + 4, claim(1, true)),
            at(
                T0 + 5,
                Command::RevokeHandoff(ops::RevokeHandoff {
                    owner: "acct_a".into(),
                    handoff_id: "hnd_1".into(),
                }),
            ),
            at(T0 + 5, claim(9, true)),
        ],
    );
    match &r[1] {
        Ok(Outcome::HandoffCreated(ops::HandoffCreated {
            handoff,
            lease_expires_at_ms,
        })) => assert_eq!(handoff.expires_at_ms, *lease_expires_at_ms, "ttl clamped to the lease"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(r[2], Err(Rejection::PostRequired));
    assert!(matches!(&r[3], Ok(Outcome::Claimed(ops::Claimed { handoff, .. })) if handoff.claims_remaining == 1));
    assert!(matches!(r[4], Ok(Outcome::HandoffRevoked { .. })));
    assert_eq!(r[5], Err(Rejection::HandoffNotFound));
    assert_eq!(r[6], Err(Rejection::HandoffNotFound));
    assert_eq!(r[7], Err(Rejection::HandoffNotFound));
    let r = apply_all(&db, &[at(T0 + 100_000, claim(2, true))]);
    assert_eq!(r[0], Err(Rejection::HandoffExpired));
}

/// The final claim of a delete-on-claim handoff deletes the lease but holds its bytes for the
/// stream; later claims (other tokens too) find the lease gone.
#[test]
fn final_claim_deletes_and_holds_bytes() {
    let (_dir, db) = setup();
    let r = apply_all(
        &db,
        &[
            at(T0 + 1, handoff(1, 2, true, false, 60)),
            at(T0 + 1, handoff(2, 5, false, false, 60)),
            at(T0 + 2, claim(1, false)),
            at(T0 + 3, claim(1, false)),
            at(T0 + 4, claim(2, false)),
        ],
    );
    assert!(matches!(r[2], Ok(Outcome::Claimed(ops::Claimed { closed: false, .. }))));
    assert!(matches!(r[3], Ok(Outcome::Claimed(ops::Claimed { closed: true, .. }))));
    assert_eq!(r[4], Err(Rejection::LeaseGone));
    let lease: Lease = all(&db, "leases").remove(0).1;
    assert_eq!(lease.state, LeaseState::Deleted { at_ms: T0 + 3 });
    assert!(raw(&db, "gc").is_empty(), "bytes held while the claimer streams");
    let r = apply_all(
        &db,
        &[at(
            T0 + 5,
            Command::ReleaseBytes(ops::ReleaseBytes {
                lease_id: "lse_s".into(),
            }),
        )],
    );
    assert_eq!(r[0], Ok(Outcome::BytesReleased { released: true }));
    assert_eq!(raw(&db, "gc").len(), 1);
}

//! x402 payments step by step: one use per authorization (also across requests and after a
//! failed settlement), exactly the ledger's price, never after expiry, and a failed settlement
//! voids its lease; spent authorizations are forgotten only once expired.

use crate::command::{Command, NewLease, Outcome, Rejection, Request};
use crate::model::{Lease, LeaseKind, LeaseState, Settlement, X402Record};
use crate::ops;
use crate::sm::tests::{all, apply_all, fresh_db, raw};

const T0: u64 = 50_000_000;
const WALLET: &str = "0x51d49d6D9e05F42a0117b104955f05b7b827232e";
/// The default minimum charge: a 1-byte lease's price.
const PRICE: u64 = 29;

fn at(now_ms: u64, command: Command) -> Request {
    Request {
        now_ms,
        idempotency: None,
        command,
    }
}

fn nonce(n: u8) -> String {
    format!("0x{}", hex::encode([n; 32]))
}

fn pay(lease: &str, n: u8, value_micros: u64, valid_before_ms: u64) -> Command {
    Command::PayX402(ops::PayX402 {
        payment: ops::X402Payment {
            from: WALLET.into(),
            nonce_hex: nonce(n),
            value_micros,
            valid_before_ms,
            settle_request: b"{}".to_vec(),
        },
        purchase: Box::new(Command::CreateLease(NewLease {
            lease_id: lease.into(),
            ledger_id: format!("led_{lease}"),
            owner: WALLET.into(),
            kind: LeaseKind::Storage {
                object_key: format!("blobs/{lease}"),
                file_name: "f".into(),
                content_type: "text/plain".into(),
                size_bytes: 1,
                blake3_hex: "00".into(),
            },
            duration_seconds: 60,
        })),
    })
}

fn settle(n: u8, settlement: Settlement) -> Command {
    Command::SettleX402(ops::SettleX402 {
        from: WALLET.into(),
        nonce_hex: nonce(n),
        settlement,
    })
}

fn lease(db: &rocksdb::DB, id: &str) -> Lease {
    all::<Lease>(db, "leases")
        .into_iter()
        .map(|(_, l)| l)
        .find(|l| l.lease_id == id)
        .unwrap()
}

#[test]
fn an_authorization_pays_once_for_exactly_the_price() {
    let (_dir, db) = fresh_db();
    let far = T0 + 3_600_000;
    let r = apply_all(
        &db,
        &[
            at(T0, pay("lse_1", 1, PRICE - 1, far)),
            at(T0, pay("lse_1", 1, PRICE + 1, far)),
            at(T0, pay("lse_1", 1, PRICE, far)),
            at(T0 + 1, pay("lse_2", 1, PRICE, far)),
            at(T0 + 2, pay("lse_3", 2, PRICE, T0 + 2)),
        ],
    );
    assert_eq!(
        r[0],
        Err(Rejection::PriceMismatch {
            paid_micros: PRICE - 1,
            price_micros: PRICE
        })
    );
    assert!(matches!(r[1], Err(Rejection::PriceMismatch { .. })));
    let Ok(Outcome::LeaseCreated(created)) = &r[2] else {
        panic!("{:?}", r[2]);
    };
    assert_eq!(created.lease.owner, WALLET);
    assert_eq!(created.lease.cost_micros, PRICE);
    assert_eq!(r[3], Err(Rejection::PaymentReused));
    assert_eq!(r[4], Err(Rejection::PaymentExpired));
    // Nothing refused left a lease or a record behind.
    assert_eq!(all::<Lease>(&db, "leases").len(), 1);
    assert_eq!(raw(&db, "x402").len(), 3, "one record, its age and pending entries");
}

#[test]
fn a_failed_settlement_voids_the_lease_and_burns_the_authorization() {
    let (_dir, db) = fresh_db();
    let far = T0 + 3_600_000;
    let r = apply_all(
        &db,
        &[
            at(T0, pay("lse_1", 1, PRICE, far)),
            at(
                T0 + 1,
                settle(
                    1,
                    Settlement::Failed {
                        reason: "insufficient_funds".into(),
                    },
                ),
            ),
            at(
                T0 + 2,
                settle(
                    1,
                    Settlement::Settled {
                        transaction: "0x01".into(),
                        network: "base-sepolia".into(),
                    },
                ),
            ),
            at(T0 + 3, pay("lse_2", 1, PRICE, far)),
            at(T0 + 4, settle(9, Settlement::Failed { reason: "x".into() })),
        ],
    );
    let Ok(Outcome::X402Settled { record }) = &r[1] else {
        panic!("{:?}", r[1]);
    };
    assert!(matches!(record.settlement, Settlement::Failed { .. }));
    assert!(matches!(lease(&db, "lse_1").state, LeaseState::Deleted { .. }));
    // The first word stands.
    let Ok(Outcome::X402Settled { record }) = &r[2] else {
        panic!("{:?}", r[2]);
    };
    assert!(matches!(record.settlement, Settlement::Failed { .. }));
    assert_eq!(r[3], Err(Rejection::PaymentReused));
    assert!(matches!(r[4], Err(Rejection::Invalid(_))));
}

#[test]
fn spent_authorizations_are_forgotten_only_after_they_expire() {
    let (_dir, db) = fresh_db();
    let until = T0 + 10_000;
    let r = apply_all(
        &db,
        &[
            at(T0, pay("lse_1", 1, PRICE, until)),
            at(until - 1, Command::ExpireDue(ops::ExpireDue { max: 10 })),
        ],
    );
    assert!(matches!(r[0], Ok(Outcome::LeaseCreated(_))));
    let records: Vec<X402Record> = raw(&db, "x402")
        .into_iter()
        .filter(|(k, _)| k[0] == b'p')
        .map(|(_, v)| crate::store::decode("x402", &v).unwrap())
        .collect();
    assert_eq!(records.len(), 1, "kept while the authorization is valid");
    let r = apply_all(
        &db,
        &[
            at(until + 1, Command::ExpireDue(ops::ExpireDue { max: 10 })),
            at(until + 2, pay("lse_2", 1, PRICE, until)),
        ],
    );
    assert!(matches!(r[0], Ok(Outcome::Swept(_))));
    assert!(raw(&db, "x402").is_empty(), "forgotten once expired");
    // Forgotten, and still refused by its time.
    assert_eq!(r[1], Err(Rejection::PaymentExpired));
}

#[test]
fn x402_pays_only_for_creates_by_the_payer() {
    let (_dir, db) = fresh_db();
    let mut foreign = pay("lse_1", 1, PRICE, T0 + 60_000);
    if let Command::PayX402(p) = &mut foreign {
        if let Command::CreateLease(new) = &mut *p.purchase {
            new.owner = "acct_a".into();
        }
    }
    let mut not_a_create = pay("lse_2", 2, PRICE, T0 + 60_000);
    if let Command::PayX402(p) = &mut not_a_create {
        *p.purchase = Command::ExpireDue(ops::ExpireDue { max: 1 });
    }
    let r = apply_all(&db, &[at(T0, foreign), at(T0, not_a_create)]);
    assert!(matches!(r[0], Err(Rejection::Invalid(_))), "{:?}", r[0]);
    assert!(matches!(r[1], Err(Rejection::Invalid(_))), "{:?}", r[1]);
    assert!(raw(&db, "x402").is_empty());
}

#[test]
fn unknown_attempts_keep_a_payment_pending_and_an_unsettled_one_is_voided_at_expiry() {
    let (_dir, db) = fresh_db();
    let until = T0 + 10_000;
    let r = apply_all(
        &db,
        &[
            at(T0, pay("lse_1", 1, PRICE, until)),
            at(T0, pay("lse_2", 2, PRICE, until)),
            at(T0 + 1, settle(1, Settlement::Pending)),
            at(T0 + 2, settle(1, Settlement::Pending)),
            at(
                T0 + 3,
                settle(
                    2,
                    Settlement::Settled {
                        transaction: "0x02".into(),
                        network: "base-sepolia".into(),
                    },
                ),
            ),
        ],
    );
    let Ok(Outcome::X402Settled { record }) = &r[3] else {
        panic!("{:?}", r[3]);
    };
    assert_eq!(record.settlement, Settlement::Pending);
    assert_eq!((record.attempts, record.last_attempt_ms), (2, T0 + 2));
    assert!(record.settle_request.is_some(), "kept for the next attempt");
    let Ok(Outcome::X402Settled { record }) = &r[4] else {
        panic!("{:?}", r[4]);
    };
    assert!(record.settle_request.is_none(), "dropped once settled");
    apply_all(&db, &[at(until + 1, Command::ExpireDue(ops::ExpireDue { max: 10 }))]);
    assert!(
        matches!(lease(&db, "lse_1").state, LeaseState::Deleted { .. }),
        "never settled: voided"
    );
    assert_eq!(lease(&db, "lse_2").state, LeaseState::Active, "settled: kept");
}

#[test]
fn an_authorization_valid_for_more_than_a_day_is_refused() {
    let (_dir, db) = fresh_db();
    let r = apply_all(&db, &[at(T0, pay("lse_1", 1, PRICE, T0 + 25 * 3600 * 1000))]);
    assert!(matches!(r[0], Err(Rejection::Invalid(_))), "{:?}", r[0]);
}

/// A baton extension paid with x402: exactly the extension's price, once; a settled one stays,
/// a failed one is taken back (the baton itself stays, as it was before).
#[test]
fn an_extension_paid_with_x402_is_taken_back_when_its_settlement_fails() {
    use crate::baton::{self, Baton, BatonRates, Disposal, Shape, WriteKind};
    use crate::pricing::Pricing;
    let (_dir, db) = fresh_db();
    let shape = Shape {
        write: WriteKind::Single,
        size_bytes: 1 << 30,
        duration_seconds: 86_400,
        egress_bytes: 0,
        burn_after_reading: false,
        disposal: Disposal::Hard,
        witness: false,
    };
    let mut b = Baton::empty(&shape);
    b.entries_max = 10;
    b.entry_max_bytes = 10;
    let create = ops::CreateBaton {
        new: NewLease {
            lease_id: "btn_1".into(),
            ledger_id: "led_1".into(),
            owner: WALLET.into(),
            kind: LeaseKind::Baton(Box::new(b)),
            duration_seconds: 86_400,
        },
        content: None,
        tokens: vec![],
        batons_max: 10,
    };
    let full = baton::price(&Pricing::default(), &BatonRates::default(), &shape);
    let payment = |n: u8, value_micros: u64| ops::X402Payment {
        from: WALLET.into(),
        nonce_hex: nonce(n),
        value_micros,
        valid_before_ms: T0 + 600_000,
        settle_request: b"{}".to_vec(),
    };
    let extend = |n: u8, value: u64| {
        Command::PayX402(ops::PayX402 {
            payment: payment(n, value),
            purchase: Box::new(Command::ExtendBaton(ops::ExtendBaton {
                owner: WALLET.into(),
                lease_id: "btn_1".into(),
                add_seconds: 86_400,
                add_size_bytes: 0,
                add_egress_bytes: 0,
                max_duration_seconds: 10 * 86_400,
                max_size_bytes: 1 << 31,
                max_egress_bytes: 1 << 31,
            })),
        })
    };
    let r = apply_all(
        &db,
        &[
            at(
                T0,
                Command::PayX402(ops::PayX402 {
                    payment: payment(1, full),
                    purchase: Box::new(Command::CreateBaton(create)),
                }),
            ),
            at(T0 + 1, extend(2, 999)),
            at(T0 + 1, extend(2, 1_000)),
            at(T0 + 1, extend(2, 1_000)),
        ],
    );
    assert!(r[0].is_ok(), "{r:?}");
    assert_eq!(
        r[1],
        Err(Rejection::PriceMismatch {
            paid_micros: 999,
            price_micros: 1_000
        })
    );
    assert!(matches!(r[2], Ok(Outcome::LeaseCreated(_))), "{r:?}");
    assert_eq!(r[3], Err(Rejection::PaymentReused));
    let extended = lease(&db, "btn_1");
    assert_eq!(extended.expires_at_ms, T0 + 2 * 86_400_000);
    assert_eq!(extended.cost_micros, full + 1_000);

    // Settled: it stays. A second extension whose settlement fails is taken back.
    apply_all(
        &db,
        &[at(
            T0 + 2,
            settle(
                2,
                Settlement::Settled {
                    transaction: "0x1".into(),
                    network: "n".into(),
                },
            ),
        )],
    );
    let r = apply_all(&db, &[at(T0 + 3, extend(3, 1_000))]);
    assert!(r[0].is_ok(), "{r:?}");
    assert_eq!(lease(&db, "btn_1").expires_at_ms, T0 + 3 * 86_400_000);
    apply_all(
        &db,
        &[at(
            T0 + 4,
            settle(
                3,
                Settlement::Failed {
                    reason: "insufficient_funds".into(),
                },
            ),
        )],
    );
    let back = lease(&db, "btn_1");
    assert_eq!(back, extended, "the failed extension is taken back, and only it");
    assert_eq!(back.state, LeaseState::Active);
    let _ = raw(&db, "x402");
}

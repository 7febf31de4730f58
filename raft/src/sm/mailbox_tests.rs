//! Mailbox commands, step by step: limits, pickup, keep-on-read, webhook retries, expiry.

use crate::command::{Command, NewLease, Outcome, Rejection, Request, Response, WebhookResult};
use crate::model::{BodyRef, Delivery, LeaseKind, Mailbox, Message, Webhook};
use crate::ops;
use crate::sm::mailbox::{WEBHOOKS_PENDING_PER_MAILBOX_MAX, WEBHOOK_ATTEMPTS_MAX};
use crate::sm::tests::{all, apply_all, fresh_db, raw};

const T0: u64 = 9_000_000;

fn at(now_ms: u64, command: Command) -> Request {
    Request {
        now_ms,
        idempotency: None,
        command,
    }
}

fn token() -> String {
    blake3::hash(b"drop-token").to_hex().to_string()
}

fn setup(keep_on_read: bool) -> (tempfile::TempDir, std::sync::Arc<rocksdb::DB>) {
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
                Command::CreateMailbox(ops::CreateMailbox {
                    new: NewLease {
                        lease_id: "lse_m".into(),
                        ledger_id: "led_m".into(),
                        owner: "acct_a".into(),
                        kind: LeaseKind::Mailbox(Mailbox {
                            capacity_bytes: 10,
                            max_message_bytes: 6,
                            max_messages: 3,
                            keep_on_read,
                            drop_token_hash_hex: token(),
                            webhook: Some(Webhook {
                                url: "http://hook.test/".into(),
                                secret: "whsec_AAAA".into(),
                            }),
                            used_bytes: 0,
                            message_count: 0,
                            next_seq: 1,
                            webhooks_pending: 0,
                        }),
                        duration_seconds: 10,
                    },
                }),
            ),
        ],
    );
    assert!(
        matches!(r[1], Ok(Outcome::LeaseCreated(ops::LeaseCreated { .. }))),
        "{:?}",
        r[1]
    );
    (dir, db)
}

fn drop_msg(bytes: &[u8]) -> Command {
    Command::DropMessage(ops::DropMessage {
        token_hash_hex: token(),
        content_type: "text/plain".into(),
        body: BodyRef {
            size_bytes: bytes.len() as u64,
            blake3_hex: blake3::hash(bytes).to_hex().to_string(),
            object_key: None,
        },
        inline_body: Some(bytes.to_vec()),
    })
}

fn pickup(seq: u64) -> Command {
    Command::PickupMessage(ops::PickupMessage {
        owner: "acct_a".into(),
        lease_id: "lse_m".into(),
        seq,
    })
}

fn seq(r: &Response) -> u64 {
    match r {
        Ok(Outcome::MessageDropped(ops::MessageDropped { message, .. })) => message.seq,
        other => panic!("unexpected {other:?}"),
    }
}

/// Message size, count and capacity limits each refuse a drop without changing anything.
#[test]
fn limits_refuse_drops() {
    let (_dir, db) = setup(false);
    let r = apply_all(
        &db,
        &[
            at(T0 + 1, drop_msg(b"1234567")),
            at(T0 + 1, drop_msg(b"12345")),
            at(T0 + 1, drop_msg(b"12345")),
            at(T0 + 1, drop_msg(b"1")),
        ],
    );
    assert_eq!(
        r[0],
        Err(Rejection::TooLarge {
            size_bytes: 7,
            limit: 6
        })
    );
    assert_eq!((seq(&r[1]), seq(&r[2])), (1, 2));
    assert!(matches!(r[3], Err(Rejection::MailboxFull(_))), "capacity: {:?}", r[3]);
    // Picking one up frees its capacity; the count limit then bites at three.
    apply_all(&db, &[at(T0 + 2, pickup(1))]);
    let r = apply_all(
        &db,
        &[
            at(T0 + 3, drop_msg(b"1")),
            at(T0 + 3, drop_msg(b"2")),
            at(T0 + 3, drop_msg(b"3")),
        ],
    );
    assert_eq!((seq(&r[0]), seq(&r[1])), (3, 4));
    assert!(matches!(r[2], Err(Rejection::MailboxFull(_))), "count: {:?}", r[2]);
    assert_eq!(all::<Message>(&db, "messages").len(), 3);
}

/// Pickup answers the bytes and removes the message; with keep-on-read it stays.
#[test]
fn pickup_removes_unless_kept() {
    for keep in [false, true] {
        let (_dir, db) = setup(keep);
        apply_all(&db, &[at(T0 + 1, drop_msg(b"hi"))]);
        let r = apply_all(&db, &[at(T0 + 2, pickup(1)), at(T0 + 3, pickup(1))]);
        match &r[0] {
            Ok(Outcome::MessagePicked(ops::MessagePicked {
                inline_body, removed, ..
            })) => {
                assert_eq!(inline_body.as_deref(), Some(&b"hi"[..]));
                assert_eq!(*removed, !keep);
            }
            other => panic!("unexpected {other:?}"),
        }
        if keep {
            assert!(matches!(r[1], Ok(Outcome::MessagePicked(ops::MessagePicked { .. }))));
        } else {
            assert_eq!(r[1], Err(Rejection::MessageNotFound));
        }
    }
}

/// A failing webhook is retried at the worker's time, at most WEBHOOK_ATTEMPTS_MAX times.
#[test]
fn webhook_retries_are_bounded() {
    let (_dir, db) = setup(false);
    apply_all(&db, &[at(T0 + 1, drop_msg(b"hi"))]);
    let mut due = T0 + 1;
    for attempt in 1..=WEBHOOK_ATTEMPTS_MAX {
        let deliveries: Vec<(Vec<u8>, Delivery)> = all(&db, "webhooks");
        assert_eq!(deliveries.len(), 1, "attempt {attempt}");
        assert_eq!(deliveries[0].1.due_ms, due);
        let r = apply_all(
            &db,
            &[at(
                due,
                Command::WebhooksAttempted(ops::WebhooksAttempted {
                    results: vec![WebhookResult {
                        due_ms: due,
                        lease_id: "lse_m".into(),
                        seq: 1,
                        retry_at_ms: Some(due + 100),
                    }],
                }),
            )],
        );
        assert_eq!(r[0], Ok(Outcome::WebhooksRecorded { found: 1 }));
        due += 100;
    }
    assert!(raw(&db, "webhooks").is_empty(), "given up after the last attempt");
}

/// A mailbox's webhook queue is bounded: past the bound, drops are refused (nothing lost, nothing
/// queued) until deliveries are done; a picked-up message's delivery holds no copy of its bytes.
#[test]
fn webhook_backlog_is_bounded_per_mailbox() {
    let (_dir, db) = setup(false);
    let mut t = T0 + 1;
    let mut queued = 0;
    while queued < WEBHOOKS_PENDING_PER_MAILBOX_MAX {
        let r = apply_all(&db, &[at(t, drop_msg(b"x")), at(t, pickup(queued + 1))]);
        assert!(
            matches!(r[0], Ok(Outcome::MessageDropped(ops::MessageDropped { .. }))),
            "{:?}",
            r[0]
        );
        queued += 1;
        t += 1;
    }
    assert!(raw(&db, "bodies").is_empty(), "picked-up messages leave no copy behind");
    let r = apply_all(&db, &[at(t, drop_msg(b"y"))]);
    assert!(matches!(r[0], Err(Rejection::WebhookBacklog(_))), "{:?}", r[0]);
    assert!(raw(&db, "messages").is_empty(), "the refused drop queued nothing");
    // One delivery done: room for one more drop.
    let (_, first): (Vec<u8>, Delivery) = all(&db, "webhooks").remove(0);
    let r = apply_all(
        &db,
        &[
            at(
                t,
                Command::WebhooksAttempted(ops::WebhooksAttempted {
                    results: vec![WebhookResult {
                        due_ms: first.due_ms,
                        lease_id: first.lease_id.clone(),
                        seq: first.seq,
                        retry_at_ms: None,
                    }],
                }),
            ),
            at(t, drop_msg(b"z")),
        ],
    );
    assert_eq!(r[0], Ok(Outcome::WebhooksRecorded { found: 1 }));
    assert!(
        matches!(r[1], Ok(Outcome::MessageDropped(ops::MessageDropped { .. }))),
        "{:?}",
        r[1]
    );
}

/// At expiry every message (and its inline bytes) is gone.
#[test]
fn expiry_clears_messages() {
    let (_dir, db) = setup(false);
    apply_all(&db, &[at(T0 + 1, drop_msg(b"a")), at(T0 + 1, drop_msg(b"b"))]);
    assert_eq!(raw(&db, "bodies").len(), 2);
    let r = apply_all(
        &db,
        &[
            at(T0 + 10_000, drop_msg(b"c")),
            at(T0 + 10_000, Command::ExpireDue(ops::ExpireDue { max: 10 })),
        ],
    );
    assert_eq!(r[0], Err(Rejection::LeaseGone));
    assert!(raw(&db, "messages").is_empty());
    assert!(raw(&db, "bodies").is_empty());
}

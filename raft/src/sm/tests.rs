//! Property tests of `apply`: random command sequences keep the ledger's invariants, and applying
//! the same log twice (or restoring a snapshot) gives byte-identical state.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use proptest::prelude::*;
use rocksdb::{IteratorMode, DB};

use crate::command::{Command, IdempotencyKey, NewLease, Outcome, Request, Served};
use crate::model::{
    AccessActor, Account, BodyRef, Checkpoint, Handoff, Lease, LeaseKind, LeaseState, Mailbox, Message, Webhook,
};
use crate::ops;
use crate::pricing::Pricing;
use crate::sm::apply_entry;
use crate::store::keys::{self, Timer};
use crate::store::{cf, decode, open_db, snapshot, STATE_CFS};

const ACCOUNTS: [&str; 3] = ["acct_a", "acct_b", "acct_c"];
const OPENING_BALANCE: u64 = 10_000;

fn lease_id(n: u8) -> String {
    format!("lse_{n:02}")
}

fn arb_command() -> impl Strategy<Value = Command> {
    let account = proptest::sample::select(ACCOUNTS.to_vec()).prop_map(String::from);
    let lease = (0u8..8).prop_map(lease_id);
    prop_oneof![
        account.clone().prop_map(|a| Command::CreateAccount(ops::CreateAccount {
            account_id: a,
            balance_micros: OPENING_BALANCE
        })),
        (account.clone(), lease.clone(), 1u64..30, 0u64..4_000).prop_map(|(owner, lease_id, duration, _cost)| {
            Command::CreateLease(NewLease {
                ledger_id: format!("led_{lease_id}"),
                kind: LeaseKind::Storage {
                    object_key: format!("blobs/{lease_id}"),
                    file_name: "f".into(),
                    content_type: "text/plain".into(),
                    size_bytes: 1,
                    blake3_hex: "00".into(),
                },
                lease_id,
                owner,
                duration_seconds: duration,
            })
        }),
        (lease.clone(), proptest::option::of(account.clone())).prop_map(|(lease_id, owner)| Command::RecordAccess(
            ops::RecordAccess {
                lease_id,
                actor: AccessActor::Owner,
                owner
            }
        )),
        proptest::collection::vec((lease.clone(), 0u64..40_000), 0..6).prop_map(|accesses| Command::RecordAccesses(
            ops::RecordAccesses {
                accesses: accesses
                    .into_iter()
                    .map(|(lease_id, at_ms)| ops::ServedAccess {
                        lease_id,
                        actor: AccessActor::Owner,
                        at_ms
                    })
                    .collect()
            }
        )),
        (account.clone(), lease.clone())
            .prop_map(|(owner, lease_id)| Command::DeleteLease(ops::DeleteLease { owner, lease_id })),
        (1u32..5).prop_map(|max| Command::ExpireDue(ops::ExpireDue { max })),
        proptest::collection::vec(
            prop_oneof![
                lease.clone().prop_map(|l| format!("blobs/{l}")),
                (0u8..60).prop_map(|i| format!("blobs/cp_{i}"))
            ],
            0..4
        )
        .prop_map(|object_keys| Command::RecordObjectsDeleted(ops::RecordObjectsDeleted { object_keys })),
        lease
            .clone()
            .prop_map(|lease_id| Command::ReleaseBytes(ops::ReleaseBytes { lease_id })),
        (
            proptest::option::of(0u64..2_000_000_000),
            proptest::option::of(0u64..4_000)
        )
            .prop_map(|(rate, min)| Command::SetPricing(ops::SetPricing {
                rate_micros_per_gb_day: rate,
                min_charge_micros: min,
            })),
        (
            0u8..4,
            account.clone(),
            proptest::option::of(0u8..3),
            proptest::sample::select(vec![1_005_000u64, 1_100_000, 90_000_000])
        )
            .prop_map(
                |(id, subject, nonce, expires_at_ms)| Command::OpenSession(ops::OpenSession {
                    session_id: format!("ses_{id}"),
                    subject,
                    nonce: nonce.map(|n| format!("nonce{n}")),
                    expires_at_ms,
                    opened_by_key: None,
                })
            ),
        (0u8..4, account.clone()).prop_map(|(id, subject)| Command::RevokeSession(ops::RevokeSession {
            session_id: format!("ses_{id}"),
            subject,
        })),
    ]
}

const WORKFLOWS: [&str; 2] = ["wf_a", "wf_b"];

/// A body that is inline (with matching size and hash) or an object with a fresh-ish key.
fn arb_body() -> impl Strategy<Value = (BodyRef, Option<Vec<u8>>)> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(|bytes| {
            let body = BodyRef {
                size_bytes: bytes.len() as u64,
                blake3_hex: blake3::hash(&bytes).to_hex().to_string(),
                object_key: None,
            };
            (body, Some(bytes))
        }),
        (0u8..12, 0u64..60).prop_map(|(n, size)| {
            let body = BodyRef {
                size_bytes: size,
                blake3_hex: "00".into(),
                object_key: Some(format!("blobs/cp_{n}")),
            };
            (body, None)
        }),
    ]
}

fn arb_checkpoint_command() -> impl Strategy<Value = Command> {
    let account = proptest::sample::select(ACCOUNTS.to_vec()).prop_map(String::from);
    let workflow = proptest::sample::select(WORKFLOWS.to_vec()).prop_map(String::from);
    let lease = (0u8..8).prop_map(lease_id);
    prop_oneof![
        (
            account.clone(),
            workflow.clone(),
            lease,
            1u64..30,
            0u64..2_000,
            arb_body()
        )
            .prop_map(|(owner, workflow_id, lease_id, duration, _cost, (body, inline_body))| {
                Command::CreateCheckpoint(ops::CreateCheckpoint {
                    new: NewLease {
                        ledger_id: format!("led_{lease_id}"),
                        kind: LeaseKind::Checkpoint(Checkpoint {
                            workflow_id,
                            max_body_bytes: 48,
                            version: 1,
                            updated_at_ms: 0,
                            body,
                        }),
                        lease_id,
                        owner,
                        duration_seconds: duration,
                    },
                    inline_body,
                })
            }),
        (
            account.clone(),
            workflow.clone(),
            proptest::option::of(1u64..4),
            arb_body()
        )
            .prop_map(
                |(owner, workflow_id, if_version, (body, inline_body))| Command::WriteCheckpoint(
                    ops::WriteCheckpoint {
                        owner,
                        workflow_id,
                        if_version,
                        body,
                        inline_body,
                    }
                )
            ),
        (account.clone(), workflow.clone())
            .prop_map(|(owner, workflow_id)| Command::ConsumeCheckpoint(ops::ConsumeCheckpoint { owner, workflow_id })),
        (account, workflow)
            .prop_map(|(owner, workflow_id)| Command::DeleteCheckpoint(ops::DeleteCheckpoint { owner, workflow_id })),
    ]
}

/// The drop token of the mailbox with lease id `lse_{n}`: one per lease id, so collisions are
/// exercised only through lease id reuse.
fn token_hash(n: u8) -> String {
    blake3::hash(&[n]).to_hex().to_string()
}

fn handoff_token_hash(n: u8) -> String {
    blake3::hash(&[b'h', n]).to_hex().to_string()
}

/// What a claimer says it serves: mostly right for the lease's kind, sometimes stale or wrong.
fn arb_served() -> impl Strategy<Value = Served> {
    prop_oneof![
        3 => Just(Served::Object),
        2 => (1u64..4).prop_map(|version| Served::Checkpoint { version }),
        2 => (1u64..6).prop_map(|upto_seq| Served::Messages { upto_seq }),
    ]
}

fn arb_handoff_command() -> impl Strategy<Value = Command> {
    let account = proptest::sample::select(ACCOUNTS.to_vec()).prop_map(String::from);
    let lease = (0u8..8).prop_map(lease_id);
    let n = 0u8..6;
    prop_oneof![
        (
            account.clone(),
            lease,
            n.clone(),
            1u32..4,
            any::<bool>(),
            any::<bool>(),
            1u64..40
        )
            .prop_map(
                |(owner, lease_id, n, max_claims, delete_on_claim, require_post, ttl_seconds)| Command::CreateHandoff(
                    ops::CreateHandoff {
                        owner,
                        lease_id,
                        handoff_id: format!("hnd_{n}"),
                        token_hash_hex: handoff_token_hash(n),
                        token_prefix: format!("tok{n}"),
                        max_claims,
                        delete_on_claim,
                        require_post,
                        ttl_seconds,
                    }
                )
            ),
        (n.clone(), any::<bool>(), arb_served()).prop_map(|(n, post, served)| Command::Claim(ops::Claim {
            token_hash_hex: handoff_token_hash(n),
            post,
            served
        })),
        (n.clone(), any::<bool>(), arb_served()).prop_map(|(n, post, served)| Command::Claim(ops::Claim {
            token_hash_hex: handoff_token_hash(n),
            post,
            served
        })),
        (account, n).prop_map(|(owner, n)| Command::RevokeHandoff(ops::RevokeHandoff {
            owner,
            handoff_id: format!("hnd_{n}")
        })),
    ]
}

fn arb_mailbox_command() -> impl Strategy<Value = Command> {
    let account = proptest::sample::select(ACCOUNTS.to_vec()).prop_map(String::from);
    let n = 0u8..8;
    prop_oneof![
        (
            account.clone(),
            n.clone(),
            1u64..30,
            0u64..2_000,
            1u64..4,
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(|(owner, n, duration, _cost, max_messages, keep_on_read, webhook)| {
                Command::CreateMailbox(ops::CreateMailbox {
                    new: NewLease {
                        lease_id: lease_id(n),
                        ledger_id: format!("led_{n}"),
                        owner,
                        kind: LeaseKind::Mailbox(Mailbox {
                            capacity_bytes: 64,
                            max_message_bytes: 40,
                            max_messages,
                            keep_on_read,
                            drop_token_hash_hex: token_hash(n),
                            webhook: webhook.then(|| Webhook {
                                url: "http://hook.test/".into(),
                                secret: "whsec_AAAA".into(),
                            }),
                            used_bytes: 0,
                            message_count: 0,
                            next_seq: 1,
                            webhooks_pending: 0,
                        }),
                        duration_seconds: duration,
                    },
                })
            }),
        (n.clone(), arb_body()).prop_map(|(n, (body, inline_body))| Command::DropMessage(ops::DropMessage {
            token_hash_hex: token_hash(n),
            content_type: "application/json".into(),
            body,
            inline_body,
        })),
        (account.clone(), n.clone(), 1u64..5).prop_map(|(owner, n, seq)| Command::PickupMessage(ops::PickupMessage {
            owner,
            lease_id: lease_id(n),
            seq
        })),
        (account, n.clone(), 1u64..5).prop_map(|(owner, n, seq)| Command::DeleteMessage(ops::DeleteMessage {
            owner,
            lease_id: lease_id(n),
            seq
        })),
    ]
}

/// Requests whose clock mostly moves forward in seconds but sometimes jumps back (a new leader with
/// a slower clock), and which sometimes repeat an idempotency key.
const WALLETS: [&str; 2] = [
    "0x51d49d6D9e05F42a0117b104955f05b7b827232e",
    "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
];

fn x402_nonce(n: u8) -> String {
    format!("0x{}", hex::encode([n; 32]))
}

/// x402 purchases by two wallets with few nonces (so reuse is common), amounts that match the
/// price only sometimes, authorizations that expire during the run, and settlements.
fn arb_x402_command() -> impl Strategy<Value = Command> {
    let wallet = proptest::sample::select(WALLETS.to_vec()).prop_map(String::from);
    let valid_before = proptest::sample::select(vec![1_005_000u64, 1_060_000, 50_000_000]);
    prop_oneof![
        (
            wallet.clone(),
            0u8..3,
            0u8..8,
            1u64..30,
            proptest::sample::select(vec![29u64, 30, 1]),
            valid_before
        )
            .prop_map(|(from, nonce, lease, duration, value_micros, valid_before_ms)| {
                let lease_id = format!("lse_w{lease}");
                Command::PayX402(ops::PayX402 {
                    payment: ops::X402Payment {
                        from: from.clone(),
                        nonce_hex: x402_nonce(nonce),
                        value_micros,
                        valid_before_ms,
                        settle_request: b"{}".to_vec(),
                    },
                    purchase: Box::new(Command::CreateLease(NewLease {
                        ledger_id: format!("led_{lease_id}"),
                        kind: LeaseKind::Storage {
                            object_key: format!("blobs/{lease_id}"),
                            file_name: "f".into(),
                            content_type: "text/plain".into(),
                            size_bytes: 1,
                            blake3_hex: "00".into(),
                        },
                        lease_id,
                        owner: from,
                        duration_seconds: duration,
                    })),
                })
            }),
        (wallet, 0u8..3, 0u8..3).prop_map(|(from, nonce, outcome)| {
            Command::SettleX402(ops::SettleX402 {
                from,
                nonce_hex: x402_nonce(nonce),
                settlement: match outcome {
                    0 => crate::model::Settlement::Settled {
                        transaction: "0xabc".into(),
                        network: "base-sepolia".into(),
                    },
                    1 => crate::model::Settlement::Failed {
                        reason: "insufficient_funds".into(),
                    },
                    _ => crate::model::Settlement::Pending,
                },
            })
        }),
    ]
}

fn arb_requests() -> impl Strategy<Value = Vec<Request>> {
    let command = prop_oneof![
        3 => arb_command(),
        2 => arb_checkpoint_command(),
        2 => arb_mailbox_command(),
        2 => arb_handoff_command(),
        2 => arb_x402_command()
    ];
    proptest::collection::vec((command, -3_000i64..20_000, proptest::option::of(0u8..4)), 1..60).prop_map(|steps| {
        let mut now: i64 = 1_000_000;
        steps
            .into_iter()
            .enumerate()
            .map(|(i, (mut command, delta, idem))| {
                unique_object_key(&mut command, i);
                now = (now + delta).max(0);
                let idempotency = idem.map(|k| IdempotencyKey::internal("acct_a", format!("k{k}")));
                Request {
                    now_ms: now as u64,
                    idempotency,
                    command,
                }
            })
            .collect()
    })
}

/// The API gives every upload a fresh object key; so does the generator.
fn unique_object_key(command: &mut Command, i: usize) {
    let body = match command {
        Command::CreateCheckpoint(ops::CreateCheckpoint { new, .. }) => match &mut new.kind {
            LeaseKind::Checkpoint(c) => &mut c.body,
            _ => return,
        },
        Command::WriteCheckpoint(ops::WriteCheckpoint { body, .. }) => body,
        Command::DropMessage(ops::DropMessage { body, .. }) => body,
        _ => return,
    };
    if let Some(key) = &mut body.object_key {
        *key = format!("blobs/cp_{i}");
    }
}

pub(super) fn apply_all(db: &DB, requests: &[Request]) -> Vec<crate::Response> {
    requests
        .iter()
        .map(|req| {
            let (resp, txn) = apply_entry(db, req).expect("apply");
            db.write(txn.into_batch()).expect("write");
            resp
        })
        .collect()
}

/// Answers with batches opened up, in order.
fn flatten(responses: &[crate::Response]) -> Vec<crate::Response> {
    responses
        .iter()
        .flat_map(|r| match r {
            Ok(Outcome::Batch(inner)) => flatten(inner),
            other => vec![other.clone()],
        })
        .collect()
}

/// Groups some runs of requests into batch entries, as the leader's group commit does (every
/// batched request carries its own idempotency key).
fn batched(requests: Vec<Request>, cuts: &[usize]) -> Vec<Request> {
    let mut out = Vec::new();
    let mut i = 0;
    for (n, cut) in cuts.iter().enumerate() {
        if i >= requests.len() {
            break;
        }
        let len = (*cut).min(requests.len() - i);
        if len <= 1 {
            out.push(requests[i].clone());
            i += 1;
            continue;
        }
        let inner: Vec<Request> = requests[i..i + len]
            .iter()
            .enumerate()
            .map(|(j, r)| Request {
                idempotency: Some(
                    r.idempotency
                        .clone()
                        .unwrap_or(IdempotencyKey::internal("_node", format!("b{n}-{j}"))),
                ),
                ..r.clone()
            })
            .collect();
        let now_ms = inner.iter().map(|r| r.now_ms).max().unwrap_or(0);
        out.push(Request {
            now_ms,
            idempotency: None,
            command: Command::Batch(inner),
        });
        i += len;
    }
    out.extend_from_slice(&requests[i.min(requests.len())..]);
    out
}

pub(super) fn dump(db: &DB) -> BTreeMap<(&'static str, Vec<u8>), Vec<u8>> {
    let mut out = BTreeMap::new();
    for name in STATE_CFS {
        for item in db.iterator_cf(cf(db, name).unwrap(), IteratorMode::Start) {
            let (k, v) = item.unwrap();
            out.insert((*name, k.to_vec()), v.to_vec());
        }
    }
    out
}

pub(super) fn fresh_db() -> (tempfile::TempDir, Arc<DB>) {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path()).unwrap();
    (dir, db)
}

pub(super) fn all<T: serde::de::DeserializeOwned>(db: &DB, name: &'static str) -> Vec<(Vec<u8>, T)> {
    db.iterator_cf(cf(db, name).unwrap(), IteratorMode::Start)
        .map(|item| {
            let (k, v) = item.unwrap();
            (k.to_vec(), decode(name, &v).unwrap())
        })
        .collect()
}

pub(super) fn raw(db: &DB, name: &'static str) -> Vec<(Vec<u8>, Vec<u8>)> {
    db.iterator_cf(cf(db, name).unwrap(), IteratorMode::Start)
        .map(|item| {
            let (k, v) = item.unwrap();
            (k.to_vec(), v.to_vec())
        })
        .collect()
}

fn check_invariants(db: &DB, responses: &[crate::Response], requests: &[Request]) {
    let accounts: Vec<(Vec<u8>, Account)> = all(db, "accounts");
    let leases: Vec<(Vec<u8>, Lease)> = all(db, "leases");
    let timers = raw(db, "expiry");
    let by_owner = raw(db, "by_owner");
    let gc: BTreeSet<Vec<u8>> = raw(db, "gc").into_iter().map(|(k, _)| k).collect();
    let clock = db
        .get_cf(cf(db, "meta").unwrap(), keys::META_CLOCK_MS)
        .unwrap()
        .and_then(|b| keys::parse_u64(&b))
        .unwrap_or(0);
    let bodies: BTreeSet<Vec<u8>> = raw(db, "bodies").into_iter().map(|(k, _)| k).collect();
    let checkpoints: BTreeMap<Vec<u8>, Vec<u8>> = raw(db, "checkpoints").into_iter().collect();
    let messages: Vec<(Vec<u8>, Message)> = all(db, "messages");
    // Every message belongs to a lease that exists, and every drop token opens one.
    for (key, _) in &messages {
        assert!(leases
            .iter()
            .any(|(k, _)| key.starts_with(k) && key.get(k.len()) == Some(&0)));
    }
    for (_, lease_id) in raw(db, "drop_tokens") {
        assert!(leases.iter().any(|(k, _)| k == &lease_id), "dangling drop token");
    }
    // The webhook queue's counts (per mailbox and in total) match the queue, within bounds.
    let deliveries: Vec<(Vec<u8>, crate::model::Delivery)> = all(db, "webhooks");
    let total = db
        .get_cf(cf(db, "meta").unwrap(), crate::sm::mailbox::META_WEBHOOKS_PENDING)
        .unwrap()
        .and_then(|b| keys::parse_u64(&b))
        .unwrap_or(0);
    assert_eq!(total, deliveries.len() as u64, "webhook queue total");
    assert!(total <= crate::sm::mailbox::WEBHOOKS_PENDING_MAX);
    for owner in ACCOUNTS {
        let held = db
            .get_cf(cf(db, "meta").unwrap(), crate::sm::mailbox::owner_pending_key(owner))
            .unwrap()
            .and_then(|b| keys::parse_u64(&b))
            .unwrap_or(0);
        let queued = deliveries.iter().filter(|(_, d)| d.owner == owner).count() as u64;
        assert_eq!(held, queued, "webhooks pending for {owner}");
    }
    for (_, lease) in &leases {
        if let LeaseKind::Mailbox(mb) = &lease.kind {
            let queued = deliveries.iter().filter(|(_, d)| d.lease_id == lease.lease_id).count() as u64;
            assert_eq!(mb.webhooks_pending, queued, "webhooks pending of {}", lease.lease_id);
            assert!(queued <= crate::sm::mailbox::WEBHOOKS_PENDING_PER_MAILBOX_MAX);
        }
    }
    // Index entries only name leases that exist.
    for lease_id in checkpoints.values() {
        assert!(leases.iter().any(|(k, _)| k == lease_id), "dangling checkpoint index");
    }
    // Handoffs: indexes agree, and every handoff counted exactly the claims that succeeded.
    let handoffs: Vec<(Vec<u8>, Handoff)> = all(db, "handoffs");
    assert_eq!(raw(db, "handoff_tokens").len(), handoffs.len());
    assert_eq!(raw(db, "handoffs_by_lease").len(), handoffs.len());
    for (_, h) in &handoffs {
        assert!(h.claims_remaining <= h.max_claims);
        assert!(
            leases.iter().any(|(k, _)| k == h.lease_id.as_bytes()),
            "handoff of a forgotten lease"
        );
        let successes: BTreeSet<u32> = responses
            .iter()
            .filter_map(|r| match r {
                Ok(Outcome::Claimed(ops::Claimed { handoff, .. }))
                    if handoff.handoff_id == h.handoff_id && handoff.created_at_ms == h.created_at_ms =>
                {
                    Some(handoff.claims_remaining)
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            successes.len() as u32,
            h.max_claims - h.claims_remaining,
            "claims of {}",
            h.handoff_id
        );
    }
    // Object keys: referenced or queued for deletion, never both; referenced by what stands on
    // them; and everything that stands on an object references it.
    let refs: BTreeMap<Vec<u8>, Vec<u8>> = raw(db, "refs").into_iter().collect();
    for (key, lease_id) in &refs {
        assert!(!gc.contains(key), "object both referenced and queued");
        assert!(
            leases.iter().any(|(k, _)| k == lease_id),
            "reference from a forgotten lease"
        );
    }
    for (_, lease) in &leases {
        let holding = lease.state == LeaseState::Active
            || timers
                .iter()
                .any(|(k, v)| &k[8..] == lease.lease_id.as_bytes() && v[..] == [Timer::Release as u8]);
        for key in lease.kind.object_keys() {
            if holding {
                assert_eq!(
                    refs.get(key.as_bytes()).map(Vec::as_slice),
                    Some(lease.lease_id.as_bytes()),
                    "unreferenced object of {}",
                    lease.lease_id
                );
            } else {
                assert!(
                    !refs.contains_key(key.as_bytes()),
                    "closed lease {} still references",
                    lease.lease_id
                );
            }
        }
    }
    for (key, m) in &messages {
        if let Some(object_key) = &m.body.object_key {
            let lease_id = &key[..key.iter().position(|b| *b == 0).unwrap()];
            assert_eq!(refs.get(object_key.as_bytes()).map(Vec::as_slice), Some(lease_id));
        }
    }
    // No two live checkpoints of one owner share a workflow id.
    let mut live_workflows = BTreeSet::new();
    for (_, lease) in &leases {
        if let (true, LeaseKind::Checkpoint(c)) = (lease.is_live_at(clock), &lease.kind) {
            assert!(
                live_workflows.insert((lease.owner.clone(), c.workflow_id.clone())),
                "duplicate workflow"
            );
        }
    }

    // x402: an authorization paid for one lease at most, for exactly its price; a failed
    // settlement left nothing active; every record has its age entry.
    let mut paid_by: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (request, response) in requests.iter().zip(responses) {
        if let (Command::PayX402(pay), Ok(Outcome::LeaseCreated(ops::LeaseCreated { lease, .. })), None) =
            (&request.command, response, &request.idempotency)
        {
            // (Keyed requests may replay another command's answer: the generator shares keys.)
            assert_eq!(lease.cost_micros, pay.payment.value_micros, "x402 paid another amount");
            assert!(
                request.now_ms < pay.payment.valid_before_ms,
                "expired authorization paid"
            );
            let key = format!("{}{}", pay.payment.from, pay.payment.nonce_hex);
            paid_by.entry(key).or_default().insert(lease.lease_id.clone());
        }
    }
    for (key, leases_paid) in &paid_by {
        assert_eq!(leases_paid.len(), 1, "authorization {key} paid for {leases_paid:?}");
    }
    let x402_rows = raw(db, "x402");
    let records: Vec<_> = x402_rows.iter().filter(|(k, _)| k[0] == b'p').collect();
    let ages = x402_rows.iter().filter(|(k, _)| k[0] == b't').count();
    let pending: BTreeSet<Vec<u8>> = x402_rows
        .iter()
        .filter(|(k, _)| k[0] == b'q')
        .map(|(k, _)| k[1..].to_vec())
        .collect();
    assert_eq!(records.len(), ages, "one age entry per x402 record");
    for (key, value) in records {
        let record: crate::model::X402Record = decode("x402", value).unwrap();
        let is_pending = record.settlement == crate::model::Settlement::Pending;
        assert_eq!(
            pending.contains(&key[1..]),
            is_pending,
            "pending index of an x402 record"
        );
        assert_eq!(
            record.settle_request.is_some(),
            is_pending,
            "settle request kept while pending"
        );
        if let crate::model::Settlement::Failed { .. } = record.settlement {
            let lease: Option<Lease> = all(db, "leases")
                .into_iter()
                .map(|(_, l): (Vec<u8>, Lease)| l)
                .find(|l| l.lease_id == record.lease_id);
            assert!(
                lease.is_none_or(|l| !l.is_live_at(clock)),
                "a failed settlement left its lease active"
            );
        }
    }

    // Money is conserved: what accounts lost is exactly what created leases cost.
    let mut charged: BTreeMap<String, u64> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    let responses = &flatten(responses);
    for r in responses {
        if let Ok(Outcome::LeaseCreated(ops::LeaseCreated { lease, .. })) = r {
            // An idempotent replay answers with the same lease: count it once.
            if seen.insert(lease.lease_id.clone()) {
                *charged.entry(lease.owner.clone()).or_default() += lease.cost_micros;
            }
        }
    }
    // One charge recorded per lease created, for what it cost.
    let charges: Vec<(Vec<u8>, Vec<u8>)> = raw(db, "charges").into_iter().filter(|(k, _)| k[0] == b'c').collect();
    assert_eq!(charges.len(), seen.len(), "one charge per created lease");
    let charged_total: u64 = charges
        .iter()
        .map(|(_, v)| decode::<crate::model::Charge>("charges", v).unwrap().amount_micros)
        .sum();
    let leases_total: u64 = responses
        .iter()
        .filter_map(|r| match r {
            Ok(Outcome::LeaseCreated(ops::LeaseCreated { lease, .. })) => {
                Some((lease.lease_id.clone(), lease.cost_micros))
            }
            _ => None,
        })
        .collect::<BTreeMap<_, _>>()
        .values()
        .sum();
    assert_eq!(charged_total, leases_total, "charges add up to what leases cost");
    for (_, account) in &accounts {
        let spent = charged.get(&account.account_id).copied().unwrap_or(0);
        assert_eq!(
            account.balance_micros + spent,
            OPENING_BALANCE,
            "money not conserved for {}",
            account.account_id
        );
    }

    // Every lease has exactly one timer of the right kind, and one listing entry.
    assert_eq!(timers.len(), leases.len(), "one timer per lease");
    assert_eq!(by_owner.len(), leases.len(), "one listing entry per lease");
    for (_, lease) in &leases {
        let mine: Vec<_> = timers
            .iter()
            .filter(|(k, _)| &k[8..] == lease.lease_id.as_bytes())
            .collect();
        assert_eq!(mine.len(), 1, "lease {} has {} timers", lease.lease_id, mine.len());
        let timer = Timer::from_byte(mine[0].1[0]);
        if lease.state == LeaseState::Active {
            assert_eq!(timer, Some(Timer::Expire));
        } else if timer == Some(Timer::Release) {
            // Bytes held for a stream: not yet queued, released by the hold's end at the latest.
            assert_eq!(keys::parse_u64(&mine[0].0), crate::sm::leases::hold_until_ms(lease));
            for key in lease.kind.object_keys() {
                assert!(!gc.contains(key.as_bytes()), "held bytes of {} queued", lease.lease_id);
            }
        } else {
            assert_eq!(timer, Some(Timer::Purge));
            // A tombstone's bytes are queued until the GC worker records their deletion.
        }
        // Inline bodies exist exactly for active inline checkpoints.
        let inline = matches!(&lease.kind, LeaseKind::Checkpoint(c) if c.body.object_key.is_none());
        assert_eq!(
            bodies.contains(lease.lease_id.as_bytes()),
            inline && lease.state == LeaseState::Active,
            "body of {}",
            lease.lease_id
        );
        if let LeaseKind::Mailbox(mb) = &lease.kind {
            // Occupancy matches the queued messages; only active mailboxes hold any.
            let mine: Vec<Message> = messages
                .iter()
                .filter(|(k, _)| k.starts_with(&keys::message_prefix(&lease.lease_id)))
                .map(|(_, m)| m.clone())
                .collect();
            if lease.state == LeaseState::Active {
                assert_eq!(mb.message_count, mine.len() as u64, "count of {}", lease.lease_id);
                assert_eq!(mb.used_bytes, mine.iter().map(|m| m.body.size_bytes).sum::<u64>());
                assert!(mb.message_count <= mb.max_messages && mb.used_bytes <= mb.capacity_bytes);
                assert!(mine.iter().all(|m| m.seq < mb.next_seq));
            } else if timer != Some(Timer::Release) {
                assert!(mine.is_empty(), "closed mailbox {} holds messages", lease.lease_id);
            }
            for m in &mine {
                let key = keys::message(&lease.lease_id, m.seq);
                assert_eq!(bodies.contains(&key), m.body.object_key.is_none());
                if let Some(object_key) = &m.body.object_key {
                    assert!(!gc.contains(object_key.as_bytes()), "queued message object");
                }
            }
        }
        if let LeaseKind::Checkpoint(c) = &lease.kind {
            assert!(c.version >= 1 && c.body.size_bytes <= c.max_body_bytes);
            if lease.is_live_at(clock) {
                // Every live checkpoint is the one its workflow id names.
                let index = checkpoints.get(&keys::checkpoint(&lease.owner, &c.workflow_id));
                assert_eq!(
                    index.map(Vec::as_slice),
                    Some(lease.lease_id.as_bytes()),
                    "index of {}",
                    lease.lease_id
                );
            }
        }
        if lease.state == LeaseState::Active {
            assert_eq!(keys::parse_u64(&mine[0].0), Some(lease.expires_at_ms));
            // Live leases never have their bytes queued for deletion.
            for key in lease.kind.object_keys() {
                assert!(
                    !gc.contains(key.as_bytes()),
                    "live lease {} queued for GC",
                    lease.lease_id
                );
            }
        }
        assert!(by_owner
            .iter()
            .any(|(k, _)| k == &keys::by_owner(&lease.owner, lease.created_at_ms, &lease.lease_id)));
        assert!(lease.recent_access.len() <= crate::sm::ACCESS_HISTORY_MAX);
    }

    // The clock never runs backwards and is the largest stamp seen.
    assert_eq!(Some(clock), requests.iter().map(|r| r.now_ms).max());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// Invariants hold after any sequence: money conserved (balances never negative by
    /// construction), one timer and one listing entry per lease, live leases never garbage.
    #[test]
    fn invariants_hold(requests in arb_requests()) {
        let (_dir, db) = fresh_db();
        let responses = apply_all(&db, &requests);
        check_invariants(&db, &responses, &requests);
    }

    /// Applying the same log to two fresh stores gives identical state and answers, and a
    /// snapshot restored into a third store is identical too.
    #[test]
    fn replay_and_snapshot_are_deterministic(requests in arb_requests()) {
        let (_d1, db1) = fresh_db();
        let (_d2, db2) = fresh_db();
        let r1 = apply_all(&db1, &requests);
        let r2 = apply_all(&db2, &requests);
        prop_assert_eq!(r1, r2);
        let state = dump(&db1);
        prop_assert_eq!(&state, &dump(&db2));

        let (_d3, db3) = fresh_db();
        let (_, _, data) = snapshot::capture(&db1).unwrap();
        snapshot::restore(&db3, &data).unwrap();
        prop_assert_eq!(&state, &dump(&db3));
    }

    /// Batches (group commit) keep every invariant, and applying a batch again after part of it
    /// was committed (a crash mid-entry) gives the same state and answer as applying it once.
    #[test]
    fn batches_hold_invariants_and_replay_exactly(
        requests in arb_requests(),
        cuts in proptest::collection::vec(1usize..6, 1..20),
        partial in any::<prop::sample::Index>(),
    ) {
        let entries = batched(requests, &cuts);
        let (_d1, db1) = fresh_db();
        let responses = apply_all(&db1, &entries);
        check_invariants(&db1, &responses, &entries);

        // Crash mid-entry: the first k requests of one batch were committed, then the whole
        // entry is applied again.
        let Some(at) = entries.iter().position(|e| matches!(e.command, Command::Batch(_))) else {
            return Ok(());
        };
        let (_d2, db2) = fresh_db();
        apply_all(&db2, &entries[..at]);
        if let Command::Batch(inner) = &entries[at].command {
            let k = partial.index(inner.len());
            let stamped: Vec<Request> = inner[..k].iter().map(|r| Request { now_ms: entries[at].now_ms, ..r.clone() }).collect();
            apply_all(&db2, &stamped);
        }
        let replayed = apply_all(&db2, &entries[at..]);
        prop_assert_eq!(&replayed[..], &responses[at..]);
        prop_assert_eq!(dump(&db1), dump(&db2));
    }

    /// A repeated idempotency key answers with the first answer and changes nothing.
    #[test]
    fn idempotent_retries_apply_once(requests in arb_requests(), idx in any::<prop::sample::Index>()) {
        let (_dir, db) = fresh_db();
        let mut requests = requests;
        for r in requests.iter_mut() { r.idempotency = None; }
        let i = idx.index(requests.len());
        requests[i].idempotency = Some(IdempotencyKey::internal("acct_a", "retry"));
        let responses = apply_all(&db, &requests[..=i]);
        let before = dump(&db);
        let mut retry = requests[i].clone();
        retry.now_ms = requests[..=i].iter().map(|r| r.now_ms).max().unwrap();
        let again = apply_all(&db, &[retry]);
        prop_assert_eq!(&again[0], &responses[i]);
        prop_assert_eq!(before, dump(&db));
    }
}

/// A key reused with another fingerprint is refused and applies nothing; the first request's
/// replay still gets the first answer.
#[test]
fn a_reused_key_with_another_request_is_refused() {
    let (_dir, db) = fresh_db();
    let keyed = |fingerprint: u8, balance_micros: u64| Request {
        now_ms: 1_000,
        idempotency: Some(IdempotencyKey {
            scope: "acct_a|POST /x".into(),
            key: "k".into(),
            fingerprint: [fingerprint; 32],
        }),
        command: Command::CreateAccount(ops::CreateAccount {
            account_id: format!("acct_{balance_micros}"),
            balance_micros,
        }),
    };
    let first = apply_all(&db, &[keyed(1, 5)]);
    let before = dump(&db);
    let other = apply_all(&db, &[keyed(2, 6)]);
    assert_eq!(other[0], Err(crate::Rejection::IdempotencyKeyReused));
    assert_eq!(before, dump(&db), "the refused request changed nothing");
    assert_eq!(apply_all(&db, &[keyed(1, 5)]), first);
}

/// A lease is served until `expires_at` and not one millisecond longer, whether or not the
/// sweeper has run; the sweep then tombstones it and queues its bytes.
#[test]
fn expiry_is_exact_and_sweep_queues_bytes() {
    let (_dir, db) = fresh_db();
    let t0 = 5_000_000;
    let create = |now_ms, command| Request {
        now_ms,
        idempotency: None,
        command,
    };
    apply_all(
        &db,
        &[
            create(
                t0,
                Command::CreateAccount(ops::CreateAccount {
                    account_id: "acct_a".into(),
                    balance_micros: 100,
                }),
            ),
            create(
                t0,
                Command::SetPricing(ops::SetPricing {
                    rate_micros_per_gb_day: Some(0),
                    min_charge_micros: Some(40),
                }),
            ),
            create(
                t0,
                Command::CreateLease(NewLease {
                    lease_id: lease_id(1),
                    ledger_id: "led_1".into(),
                    owner: "acct_a".into(),
                    kind: LeaseKind::Storage {
                        object_key: "blobs/1".into(),
                        file_name: "f".into(),
                        content_type: "text/plain".into(),
                        size_bytes: 1,
                        blake3_hex: "00".into(),
                    },
                    duration_seconds: 2,
                }),
            ),
        ],
    );
    let access = |now| {
        apply_all(
            &db,
            &[create(
                now,
                Command::RecordAccess(ops::RecordAccess {
                    lease_id: lease_id(1),
                    actor: AccessActor::Owner,
                    owner: None,
                }),
            )],
        )
        .remove(0)
    };
    assert!(matches!(access(t0 + 1_999), Ok(Outcome::AccessRecorded { .. })));
    assert_eq!(access(t0 + 2_000), Err(crate::Rejection::LeaseGone));
    let swept = apply_all(
        &db,
        &[create(t0 + 2_000, Command::ExpireDue(ops::ExpireDue { max: 10 }))],
    )
    .remove(0);
    assert_eq!(
        swept,
        Ok(Outcome::Swept(ops::Swept {
            expired: 1,
            purged: 0,
            dedup_pruned: 0
        }))
    );
    assert_eq!(raw(&db, "gc").len(), 1);
    let lease: Lease = all(&db, "leases").remove(0).1;
    assert_eq!(lease.state, LeaseState::Expired { at_ms: t0 + 2_000 });
    // Insufficient balance: nothing is created and nothing is charged.
    let set_min = |now, min| {
        create(
            now,
            Command::SetPricing(ops::SetPricing {
                rate_micros_per_gb_day: Some(0),
                min_charge_micros: Some(min),
            }),
        )
    };
    apply_all(&db, &[set_min(t0 + 3_000, 61)]);
    let rejected = apply_all(
        &db,
        &[create(
            t0 + 3_000,
            Command::CreateLease(NewLease {
                lease_id: lease_id(2),
                ledger_id: "led_2".into(),
                owner: "acct_a".into(),
                kind: LeaseKind::Storage {
                    object_key: "blobs/2".into(),
                    file_name: "f".into(),
                    content_type: "text/plain".into(),
                    size_bytes: 1,
                    blake3_hex: "00".into(),
                },
                duration_seconds: 10,
            }),
        )],
    )
    .remove(0);
    assert_eq!(
        rejected,
        Err(crate::Rejection::InsufficientBalance {
            balance_micros: 60,
            needed_micros: 61
        })
    );
    assert_eq!(all::<Lease>(&db, "leases").len(), 1);
    // Bytes queued for deletion can never back a new lease.
    apply_all(&db, &[set_min(t0 + 3_000, 1)]);
    let reused = apply_all(
        &db,
        &[create(
            t0 + 3_000,
            Command::CreateLease(NewLease {
                lease_id: lease_id(3),
                ledger_id: "led_3".into(),
                owner: "acct_a".into(),
                kind: lease.kind.clone(),
                duration_seconds: 10,
            }),
        )],
    )
    .remove(0);
    assert!(matches!(reused, Err(crate::Rejection::Invalid(_))), "{reused:?}");
}

/// The state machine charges by the prices in the ledger, not by anything the command says:
/// the same lease costs what the current prices make it, and a price change applies to the next
/// purchase only.
#[test]
fn charges_follow_the_ledgers_prices() {
    let (_dir, db) = fresh_db();
    let at = |now_ms, command| Request {
        now_ms,
        idempotency: None,
        command,
    };
    let lease = |n: u8| {
        Command::CreateLease(NewLease {
            lease_id: lease_id(n),
            ledger_id: format!("led_{n}"),
            owner: "acct_a".into(),
            kind: LeaseKind::Storage {
                object_key: format!("blobs/{n}"),
                file_name: "f".into(),
                content_type: "text/plain".into(),
                size_bytes: 1 << 30,
                blake3_hex: "00".into(),
            },
            duration_seconds: 86_400,
        })
    };
    let set = |rate, min| {
        Command::SetPricing(ops::SetPricing {
            rate_micros_per_gb_day: Some(rate),
            min_charge_micros: Some(min),
        })
    };
    let r = apply_all(
        &db,
        &[
            at(
                1,
                Command::CreateAccount(ops::CreateAccount {
                    account_id: "acct_a".into(),
                    balance_micros: 1_000_000,
                }),
            ),
            at(2, lease(1)),
            at(3, set(5_000, 10)),
            at(4, lease(2)),
            at(5, set(crate::sm::pricing::PRICE_MAX_MICROS + 1, 1)),
            at(6, lease(3)),
        ],
    );
    let cost = |r: &crate::command::Response| match r {
        Ok(Outcome::LeaseCreated(ops::LeaseCreated { lease, .. })) => lease.cost_micros,
        other => panic!("{other:?}"),
    };
    // One GiB-day: the default rate, then the new one.
    assert_eq!(cost(&r[1]), Pricing::default().rate_micros_per_gb_day);
    assert_eq!(cost(&r[3]), 5_000);
    assert!(matches!(r[4], Err(crate::Rejection::Invalid(_))), "{:?}", r[4]);
    assert_eq!(cost(&r[5]), 5_000, "a refused change leaves the prices as they were");
    let account: crate::model::Account = all(&db, "accounts").remove(0).1;
    assert_eq!(account.balance_micros, 1_000_000 - 1_000 - 5_000 - 5_000);
}

/// Batched accesses: each counts once, in order, even two of one lease in one batch; a lease
/// the ledger no longer holds is skipped; an expired one still records what was served.
#[test]
fn batched_accesses_count_each_once() {
    let (_dir, db) = fresh_db();
    let t0 = 7_000_000;
    let at = |now_ms, command| Request {
        now_ms,
        idempotency: None,
        command,
    };
    let storage = |n: u8| {
        Command::CreateLease(NewLease {
            lease_id: lease_id(n),
            ledger_id: format!("led_{n}"),
            owner: "acct_a".into(),
            kind: LeaseKind::Storage {
                object_key: format!("blobs/{n}"),
                file_name: "f".into(),
                content_type: "text/plain".into(),
                size_bytes: 1,
                blake3_hex: "00".into(),
            },
            duration_seconds: 2,
        })
    };
    let setup = apply_all(
        &db,
        &[
            at(
                t0,
                Command::CreateAccount(ops::CreateAccount {
                    account_id: "acct_a".into(),
                    balance_micros: 1_000_000,
                }),
            ),
            at(t0, storage(1)),
            at(t0, storage(2)),
        ],
    );
    assert!(setup.iter().all(|r| r.is_ok()), "{setup:?}");
    let served = |lease: u8, at_ms| ops::ServedAccess {
        lease_id: lease_id(lease),
        actor: AccessActor::Owner,
        at_ms,
    };
    let answer = apply_all(
        &db,
        &[at(
            t0 + 5_000,
            Command::RecordAccesses(ops::RecordAccesses {
                accesses: vec![
                    served(1, t0 + 10),
                    served(2, t0 + 11),
                    served(1, t0 + 12),
                    served(9, t0 + 13),
                ],
            }),
        )],
    );
    assert_eq!(answer, vec![Ok(Outcome::AccessesRecorded { recorded: 3 })]);
    let lease = |n: u8| -> crate::model::Lease {
        all::<crate::model::Lease>(&db, "leases")
            .into_iter()
            .find(|(k, _)| k == lease_id(n).as_bytes())
            .expect("lease")
            .1
    };
    assert_eq!(lease(1).access_count, 2);
    assert_eq!(
        lease(1).recent_access.iter().map(|a| a.at_ms).collect::<Vec<_>>(),
        vec![t0 + 10, t0 + 12]
    );
    assert_eq!(lease(2).access_count, 1);
    assert!(all::<crate::model::Lease>(&db, "leases")
        .iter()
        .all(|(k, _)| k != lease_id(9).as_bytes()));
}

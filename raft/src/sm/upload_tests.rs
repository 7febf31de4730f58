//! Uploads step by step: a paid create's content stays unreadable until its completion verifies
//! size and hash; an upload never completed is abandoned at its deadline with its bytes; tus
//! chunks only land at the upload's offset; the free scratch tier holds to its quota and ends
//! at its deadline. And a property test: any sequence keeps the indexes, the references and the
//! quota counts true.

use std::collections::BTreeSet;

use proptest::prelude::*;

use crate::command::{Command, NewLease, Outcome, Rejection, Request};
use crate::model::{Lease, LeaseKind, LeaseState};
use crate::ops::{self, NewUpload};
use crate::sm::tests::{all, apply_all, fresh_db, raw};
use crate::upload::{Chunk, Mode, ScratchQuota, ScratchUsage, Target, Upload, UploadState};

const T0: u64 = 90_000_000;
const OWNER: &str = "acct_u";
const QUOTA: ScratchQuota = ScratchQuota {
    max_count: 3,
    max_bytes: 1000,
};
const TUS_QUOTA: ScratchQuota = ScratchQuota {
    max_count: 4,
    max_bytes: 1000,
};

fn at(now_ms: u64, command: Command) -> Request {
    Request {
        now_ms,
        idempotency: None,
        command,
    }
}

fn account() -> Command {
    Command::CreateAccount(ops::CreateAccount {
        account_id: OWNER.into(),
        balance_micros: 1_000_000,
    })
}

fn new_upload(n: u32, owner: &str, size_bytes: u64, target: Target, mode: Mode) -> NewUpload {
    let object_key = match &target {
        Target::Scratch { input_key } => input_key.clone(),
        _ => format!("blobs/up{n}"),
    };
    NewUpload {
        upload_id: format!("upl_{n}"),
        owner: owner.into(),
        object_key,
        size_bytes,
        sha256_hex: None,
        ttl_seconds: 60,
        target,
        mode,
    }
}

fn presigned_create(n: u32, size_bytes: u64, sha256: Option<&str>) -> Command {
    let lease_id = format!("lease_{n}");
    let mut upload = new_upload(
        n,
        OWNER,
        size_bytes,
        Target::Lease {
            lease_id: lease_id.clone(),
        },
        Mode::S3Single,
    );
    upload.sha256_hex = sha256.map(String::from);
    Command::CreateWithUpload(ops::CreateWithUpload {
        purchase: Box::new(Command::CreateLease(NewLease {
            lease_id,
            ledger_id: format!("ldg_{n}"),
            owner: OWNER.into(),
            kind: LeaseKind::Storage {
                object_key: upload.object_key.clone(),
                file_name: "f".into(),
                content_type: "application/octet-stream".into(),
                size_bytes,
                blake3_hex: String::new(),
            },
            duration_seconds: 3600,
        })),
        upload,
    })
}

fn complete(n: u32, size_bytes: u64, sha256: &str, object_key: Option<&str>) -> Command {
    Command::CompleteUpload(ops::CompleteUpload {
        upload_id: format!("upl_{n}"),
        owner: Some(OWNER.into()),
        object_key: object_key.map(String::from),
        size_bytes,
        blake3_hex: format!("b3-{sha256}"),
        sha256_hex: sha256.into(),
    })
}

fn read(n: u32) -> Command {
    Command::RecordAccess(ops::RecordAccess {
        lease_id: format!("lease_{n}"),
        actor: crate::model::AccessActor::Owner,
        owner: Some(OWNER.into()),
    })
}

fn sweep() -> Command {
    Command::ExpireDue(ops::ExpireDue { max: 100 })
}

fn scratch(n: u32, owner: &str, size_bytes: u64) -> Command {
    let input_key = format!("scratch/{owner}/{n}");
    Command::BeginUpload(ops::BeginUpload {
        upload: new_upload(n, owner, size_bytes, Target::Scratch { input_key }, Mode::S3Single),
        quota: Some(QUOTA),
    })
}

fn tus(n: u32, size_bytes: u64) -> Command {
    Command::BeginUpload(ops::BeginUpload {
        upload: new_upload(
            n,
            OWNER,
            size_bytes,
            Target::NewStorage {
                file_name: "t".into(),
                content_type: "application/octet-stream".into(),
                duration_seconds: 3600,
            },
            Mode::Tus { offset: 0, chunks: 0 },
        ),
        quota: Some(TUS_QUOTA),
    })
}

fn chunk(n: u32, offset: u64, size_bytes: u64, i: u32) -> Command {
    Command::TusAppend(ops::TusAppend {
        upload_id: format!("upl_{n}"),
        owner: OWNER.into(),
        offset,
        chunk: Chunk {
            object_key: format!("blobs/tus{n}-{i}"),
            size_bytes,
        },
    })
}

fn finish(n: u32, size_bytes: u64) -> Command {
    Command::FinishTus(ops::FinishTus {
        upload_id: format!("upl_{n}"),
        sha256_hex: "s".into(),
        new: NewLease {
            lease_id: format!("lease_{n}"),
            ledger_id: format!("ldg_{n}"),
            owner: OWNER.into(),
            kind: LeaseKind::Storage {
                object_key: format!("blobs/joined{n}"),
                file_name: "t".into(),
                content_type: "application/octet-stream".into(),
                size_bytes,
                blake3_hex: "b3".into(),
            },
            duration_seconds: 3600,
        },
    })
}

/// The `uploads` rows of one tag, decoded.
fn tagged<T: serde::de::DeserializeOwned>(db: &rocksdb::DB, tag: u8) -> Vec<T> {
    raw(db, "uploads")
        .into_iter()
        .filter(|(k, _)| k[0] == tag)
        .map(|(_, v)| crate::store::decode("uploads", &v).unwrap())
        .collect()
}

fn refs(db: &rocksdb::DB) -> BTreeSet<String> {
    raw(db, "refs")
        .into_iter()
        .map(|(k, _)| String::from_utf8(k).unwrap())
        .collect()
}

fn gc(db: &rocksdb::DB) -> BTreeSet<String> {
    raw(db, "gc")
        .into_iter()
        .map(|(k, _)| String::from_utf8(k).unwrap())
        .collect()
}

#[test]
fn content_is_pending_until_completion_verifies_size_and_hash() {
    let (_dir, db) = fresh_db();
    let r = apply_all(
        &db,
        &[
            at(T0, account()),
            at(T0, presigned_create(1, 100, Some("aa"))),
            at(T0 + 1, read(1)),
            at(T0 + 2, complete(1, 99, "aa", None)),
            at(T0 + 3, complete(1, 100, "bb", None)),
            at(T0 + 4, read(1)),
            at(T0 + 5, complete(1, 100, "AA", None)),
            at(T0 + 6, read(1)),
            at(T0 + 7, complete(1, 100, "AA", None)),
            at(T0 + 8, complete(1, 100, "cc", None)),
        ],
    );
    assert!(matches!(&r[1], Ok(Outcome::LeaseCreated(_))), "{:?}", r[1]);
    assert_eq!(r[2], Err(Rejection::UploadPending));
    assert!(matches!(&r[3], Err(Rejection::UploadMismatch(m)) if m.contains("99 bytes")));
    assert!(matches!(&r[4], Err(Rejection::UploadMismatch(m)) if m.contains("SHA-256")));
    assert_eq!(
        r[5],
        Err(Rejection::UploadPending),
        "a refused completion changes nothing"
    );
    assert!(
        matches!(&r[6], Ok(Outcome::UploadChanged { upload }) if matches!(upload.state, UploadState::Complete { .. }))
    );
    let Ok(Outcome::AccessRecorded { lease }) = &r[7] else {
        panic!("{:?}", r[7]);
    };
    assert!(matches!(&lease.kind, LeaseKind::Storage { blake3_hex, .. } if blake3_hex == "b3-AA"));
    assert!(
        matches!(&r[8], Ok(Outcome::UploadChanged { .. })),
        "completing again: {:?}",
        r[8]
    );
    assert_eq!(
        r[9],
        Err(Rejection::UploadComplete),
        "other bytes cannot complete it again"
    );
}

#[test]
fn an_upload_never_completed_is_abandoned_with_its_lease_and_bytes() {
    let (_dir, db) = fresh_db();
    let deadline = T0 + 60_000;
    let r = apply_all(
        &db,
        &[
            at(T0, account()),
            at(T0, presigned_create(1, 100, None)),
            at(deadline - 1, sweep()),
            at(deadline - 1, read(1)),
            at(deadline, sweep()),
            at(deadline + 1, read(1)),
            at(deadline + 2, complete(1, 100, "aa", None)),
        ],
    );
    assert_eq!(r[3], Err(Rejection::UploadPending));
    assert_eq!(r[5], Err(Rejection::LeaseGone));
    assert_eq!(r[6], Err(Rejection::UploadGone));
    assert!(gc(&db).contains("blobs/up1"), "its bytes are queued for deletion");
    assert!(!refs(&db).contains("blobs/up1"));
    let leases: Vec<(Vec<u8>, Lease)> = all(&db, "leases");
    assert!(matches!(leases[0].1.state, LeaseState::Deleted { .. }));
}

#[test]
fn a_node_signed_put_completes_at_its_own_key_and_the_planned_key_goes() {
    let (_dir, db) = fresh_db();
    let r = apply_all(
        &db,
        &[
            at(T0, account()),
            at(T0, presigned_create(1, 100, None)),
            at(T0 + 1, complete(1, 100, "aa", Some("blobs/fresh"))),
            at(T0 + 2, complete(1, 100, "aa", Some("blobs/other"))),
            at(T0 + 3, read(1)),
        ],
    );
    assert!(matches!(&r[2], Ok(Outcome::UploadChanged { .. })));
    assert_eq!(
        r[3],
        Err(Rejection::UploadComplete),
        "a second PUT's bytes are not taken"
    );
    let Ok(Outcome::AccessRecorded { lease }) = &r[4] else {
        panic!("{:?}", r[4]);
    };
    assert!(matches!(&lease.kind, LeaseKind::Storage { object_key, .. } if object_key == "blobs/fresh"));
    assert!(refs(&db).contains("blobs/fresh") && !refs(&db).contains("blobs/up1"));
    assert!(gc(&db).contains("blobs/up1"));
}

#[test]
fn tus_chunks_land_only_at_the_offset_and_the_last_buys_the_lease() {
    let (_dir, db) = fresh_db();
    let r = apply_all(
        &db,
        &[
            at(T0, account()),
            at(T0, tus(1, 100)),
            at(T0 + 1, chunk(1, 0, 60, 0)),
            at(T0 + 2, chunk(1, 0, 40, 1)),
            at(T0 + 3, chunk(1, 60, 41, 2)),
            at(T0 + 4, finish(1, 100)),
            at(T0 + 5, chunk(1, 60, 40, 3)),
            at(T0 + 6, finish(1, 100)),
            at(T0 + 7, read(1)),
            at(T0 + 8, chunk(1, 100, 1, 4)),
        ],
    );
    assert!(matches!(&r[2], Ok(Outcome::UploadChanged { upload }) if upload.offset() == 60));
    assert_eq!(r[3], Err(Rejection::OffsetMismatch { offset: 60 }));
    assert!(matches!(&r[4], Err(Rejection::UploadMismatch(_))), "past the length");
    assert_eq!(r[5], Err(Rejection::OffsetMismatch { offset: 60 }), "not all in yet");
    assert!(matches!(&r[7], Ok(Outcome::LeaseCreated(c)) if c.lease.cost_micros > 0));
    assert!(matches!(&r[8], Ok(Outcome::AccessRecorded { .. })));
    assert_eq!(r[9], Err(Rejection::UploadComplete));
    let released = gc(&db);
    assert!(released.contains("blobs/tus1-0") && released.contains("blobs/tus1-3"));
    assert!(refs(&db).contains("blobs/joined1"));
}

#[test]
fn scratch_holds_its_quota_and_ends_at_its_deadline() {
    let (_dir, db) = fresh_db();
    let deadline = T0 + 60_000;
    let r = apply_all(
        &db,
        &[
            at(T0, scratch(1, OWNER, 600)),
            at(T0, scratch(2, OWNER, 401)),
            at(T0, scratch(3, OWNER, 400)),
            at(T0, scratch(4, OWNER, 0)),
            at(T0, scratch(5, "acct_other", 10)),
            at(T0, scratch(6, OWNER, 1)),
            at(T0 + 1, complete(1, 600, "aa", None)),
            at(deadline, sweep()),
            at(deadline, scratch(7, OWNER, 1000)),
        ],
    );
    assert!(matches!(&r[0], Ok(Outcome::UploadChanged { .. })));
    assert!(matches!(&r[1], Err(Rejection::ScratchQuota(m)) if m.contains("bytes")));
    assert!(matches!(&r[3], Err(Rejection::Invalid(_))));
    assert!(r[4].is_ok(), "another owner's quota is its own");
    assert!(matches!(&r[5], Err(Rejection::ScratchQuota(m)) if m.contains("objects")));
    assert!(r[8].is_ok(), "the quota is free again after the deadline: {:?}", r[8]);
    assert!(gc(&db).contains(&format!("scratch/{OWNER}/1")));
    let uploads: Vec<Upload> = tagged(&db, b'u');
    let first = uploads.iter().find(|u| u.upload_id == "upl_1").unwrap();
    assert!(matches!(first.state, UploadState::Expired { .. }));
}

fn arb_command() -> impl Strategy<Value = Command> {
    let n = 0u32..6;
    prop_oneof![
        (n.clone(), 1u64..300).prop_map(|(n, s)| presigned_create(n, s, None)),
        (n.clone(), 1u64..300, proptest::option::of(0u8..2)).prop_map(|(n, s, k)| complete(
            n,
            s,
            "aa",
            k.map(|k| if k == 0 { "blobs/k0" } else { "blobs/k1" })
        )),
        (n.clone(), 0u64..500).prop_map(|(n, s)| scratch(n, OWNER, s)),
        (n.clone(), 1u64..300).prop_map(|(n, s)| tus(n, s)),
        (n.clone(), 0u64..300, 1u64..200, 0u32..1000).prop_map(|(n, o, s, i)| chunk(n, o, s, i)),
        (n.clone(), 1u64..300).prop_map(|(n, s)| finish(n, s)),
        (n.clone(), n.clone(), 1u64..300).prop_map(|(n, t, s)| tus_fill(n, t, s)),
        (n.clone(), 1u64..300).prop_map(|(n, s)| fill(n, s)),
        n.clone().prop_map(|n| Command::EndUpload(ops::EndUpload {
            upload_id: format!("upl_{n}"),
            owner: OWNER.into()
        })),
        n.clone().prop_map(read),
        n.prop_map(|n| Command::DeleteLease(ops::DeleteLease {
            owner: OWNER.into(),
            lease_id: format!("lease_{n}")
        })),
        Just(sweep()),
    ]
}

fn check_invariants(db: &rocksdb::DB, now_ms: u64) {
    let uploads: Vec<Upload> = tagged(db, b'u');
    let refs = refs(db);
    let gc = gc(db);
    assert!(refs.is_disjoint(&gc), "a key is referenced or queued, never both");
    let mut usage = ScratchUsage::default();
    for u in &uploads {
        let live_scratch = u.is_scratch() && matches!(u.state, UploadState::Pending | UploadState::Complete { .. });
        if live_scratch {
            usage.count += 1;
            usage.bytes += u.size_bytes;
            assert!(refs.contains(&u.object_key), "a live scratch object is referenced");
        }
        let pieces: Vec<Chunk> = raw(db, "uploads")
            .into_iter()
            .filter(|(k, _)| {
                k[0] == b'c' && k[1..].starts_with(u.upload_id.as_bytes()) && k.get(1 + u.upload_id.len()) == Some(&0)
            })
            .map(|(_, v)| crate::store::decode("uploads", &v).unwrap())
            .collect();
        if let Mode::Tus { offset, chunks } = u.mode {
            if u.is_pending() {
                assert_eq!(pieces.len(), chunks as usize, "every recorded piece has its row");
                assert_eq!(pieces.iter().map(|c| c.size_bytes).sum::<u64>(), offset);
                assert!(
                    pieces.iter().all(|c| refs.contains(&c.object_key)),
                    "a pending upload's pieces are referenced"
                );
            } else {
                assert!(pieces.is_empty(), "an ended upload's pieces are let go");
            }
        }
        if u.is_pending() {
            if let Target::Scratch { .. } = u.target {
                assert!(refs.contains(&u.object_key));
            }
            assert!(u.offset() <= u.size_bytes);
        }
        if let (Target::Lease { lease_id }, true) = (&u.target, u.is_pending()) {
            let marker: Vec<u8> = [b"l".as_slice(), lease_id.as_bytes()].concat();
            let lease_live = all::<Lease>(db, "leases")
                .into_iter()
                .any(|(_, l)| &l.lease_id == lease_id && l.state == LeaseState::Active);
            let marked = raw(db, "uploads").iter().any(|(k, _)| *k == marker);
            assert!(marked || !lease_live, "a live lease with pending content is marked");
        }
    }
    let tus_rows = raw(db, "uploads").into_iter().filter(|(k, _)| k[0] == b't').count();
    let tus_pending = uploads
        .iter()
        .filter(|u| matches!(u.mode, Mode::Tus { .. }) && u.is_pending())
        .count();
    assert_eq!(tus_rows, tus_pending, "one held row per tus upload in progress");
    let stored = ScratchUsage {
        count: tagged::<u64>(db, b'o').len() as u64,
        bytes: raw(db, "uploads")
            .into_iter()
            .filter(|(k, _)| k[0] == b'o')
            .map(|(_, v)| u64::from_be_bytes(v[..8].try_into().unwrap()))
            .sum(),
    };
    assert_eq!(stored, usage, "the quota counts the live scratch objects");
    // Within the quota at any moment, counting what is alive then (swept or not).
    let live: Vec<&Upload> = uploads
        .iter()
        .filter(|u| {
            u.is_scratch()
                && now_ms < u.expires_at_ms
                && matches!(u.state, UploadState::Pending | UploadState::Complete { .. })
        })
        .collect();
    assert!(live.len() as u64 <= QUOTA.max_count);
    assert!(live.iter().map(|u| u.size_bytes).sum::<u64>() <= QUOTA.max_bytes);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// Any sequence of upload steps, with time passing, keeps references, markers and quotas
    /// true; and applying it twice gives the same answers.
    #[test]
    fn upload_invariants_hold(steps in proptest::collection::vec((arb_command(), 0u64..30_000), 1..40)) {
        let mut now = T0;
        let mut requests = vec![at(now, account())];
        for (command, delta) in steps {
            now += delta;
            requests.push(at(now, command));
        }
        let (_a, db) = fresh_db();
        let first = apply_all(&db, &requests);
        check_invariants(&db, now);
        let (_b, again) = fresh_db();
        prop_assert_eq!(first, apply_all(&again, &requests));
    }
}

fn tus_fill(n: u32, target: u32, size_bytes: u64) -> Command {
    Command::BeginUpload(ops::BeginUpload {
        upload: new_upload(
            n,
            OWNER,
            size_bytes,
            Target::Fill {
                upload_id: format!("upl_{target}"),
            },
            Mode::Tus { offset: 0, chunks: 0 },
        ),
        quota: Some(TUS_QUOTA),
    })
}

fn fill(n: u32, size_bytes: u64) -> Command {
    Command::FillFromTus(ops::FillFromTus {
        upload_id: format!("upl_{n}"),
        owner: OWNER.into(),
        object_key: format!("blobs/joined{n}"),
        size_bytes,
        blake3_hex: "b3".into(),
        sha256_hex: "aa".into(),
    })
}

#[test]
fn a_tus_upload_fills_a_pending_presigned_one() {
    let (_dir, db) = fresh_db();
    let r = apply_all(
        &db,
        &[
            at(T0, account()),
            at(T0, presigned_create(1, 100, Some("aa"))),
            at(T0, tus_fill(2, 1, 99)),
            at(T0, tus_fill(3, 1, 100)),
            at(T0 + 1, chunk(3, 0, 100, 0)),
            at(T0 + 2, fill(3, 100)),
            at(T0 + 3, read(1)),
            at(T0 + 4, fill(3, 100)),
        ],
    );
    assert!(
        matches!(&r[2], Err(Rejection::UploadMismatch(_))),
        "another length: {:?}",
        r[2]
    );
    assert!(matches!(&r[3], Ok(Outcome::UploadChanged { .. })), "{:?}", r[3]);
    assert!(
        matches!(&r[5], Ok(Outcome::UploadChanged { upload }) if upload.upload_id == "upl_1"),
        "{:?}",
        r[5]
    );
    let Ok(Outcome::AccessRecorded { lease }) = &r[6] else {
        panic!("{:?}", r[6]);
    };
    assert!(matches!(&lease.kind, LeaseKind::Storage { object_key, .. } if object_key == "blobs/joined3"));
    assert_eq!(r[7], Err(Rejection::UploadComplete));
    assert!(gc(&db).contains("blobs/tus3-0") && gc(&db).contains("blobs/up1"));
    let tus: Vec<Upload> = tagged(&db, b'u');
    let t = tus.iter().find(|u| u.upload_id == "upl_3").unwrap();
    assert!(matches!(&t.state, UploadState::Complete { lease_id: Some(l), .. } if l == "lease_1"));
}

#[test]
fn a_fill_that_can_never_land_ends_its_tus_upload() {
    let (_dir, db) = fresh_db();
    let delete = |n: u32| {
        Command::DeleteLease(ops::DeleteLease {
            owner: OWNER.into(),
            lease_id: format!("lease_{n}"),
        })
    };
    let r = apply_all(
        &db,
        &[
            at(T0, account()),
            at(T0, presigned_create(1, 100, None)),
            at(T0, tus_fill(2, 1, 100)),
            at(T0 + 1, chunk(2, 0, 100, 0)),
            at(T0 + 2, delete(1)),
            at(T0 + 3, fill(2, 100)),
            at(T0 + 4, fill(2, 100)),
            at(T0 + 5, tus_fill(3, 1, 100)),
        ],
    );
    assert_eq!(r[5], Err(Rejection::UploadGone), "deleting the lease ended its upload");
    assert_eq!(r[6], Err(Rejection::UploadGone), "ended with the first refusal");
    assert_eq!(
        r[7],
        Err(Rejection::UploadGone),
        "a fill of a deleted lease cannot begin"
    );
    let uploads: Vec<Upload> = tagged(&db, b'u');
    let presigned = uploads.iter().find(|u| u.upload_id == "upl_1").unwrap();
    assert!(
        matches!(presigned.state, UploadState::Abandoned { .. }),
        "a lease's upload ends with it"
    );
    assert!(gc(&db).contains("blobs/tus2-0"), "its pieces are let go");
    let tus: Vec<Upload> = tagged(&db, b'u');
    let t = tus.iter().find(|u| u.upload_id == "upl_2").unwrap();
    assert!(matches!(t.state, UploadState::Abandoned { .. }));
}

//! Golden files of format 1, written once by the build that introduced the formats and committed
//! (`raft/tests/golden/v1/`): encoded commands (what a log entry carries) and a snapshot of the
//! state they make. Every later build must read them back exactly; a change to an encoding shows
//! up here as a failure, to be answered by a new format version and a reader for the old one.
//!
//! `RELAY_WRITE_GOLDEN=1 cargo test -p relay-raft --test golden` writes missing files (never
//! overwrites: a golden file is history).

use std::path::{Path, PathBuf};

use relay_raft::command::{Command, IdempotencyKey, NewLease, Request};
use relay_raft::model::LeaseKind;
use relay_raft::ops;
use relay_raft::store::snapshot::{capture, decode_state, SnapshotData, STATE_FORMAT};
use relay_raft::store::{open_db, DATA_FORMAT};

fn golden(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/v1").join(file)
}

/// The committed bytes of `file`, written from `make` first if asked to and missing.
fn read_or_write(file: &str, make: impl FnOnce() -> Vec<u8>) -> Vec<u8> {
    let path = golden(file);
    if !path.exists() && std::env::var_os("RELAY_WRITE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, make()).unwrap();
    }
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (RELAY_WRITE_GOLDEN=1 writes it)", path.display()))
}

fn storage(lease_id: &str, owner: &str, size: u64) -> Command {
    Command::CreateLease(NewLease {
        lease_id: lease_id.into(),
        ledger_id: format!("led_{lease_id}"),
        owner: owner.into(),
        kind: LeaseKind::Storage {
            object_key: format!("blobs/{lease_id}"),
            file_name: "golden.bin".into(),
            content_type: "application/octet-stream".into(),
            size_bytes: size,
            blake3_hex: blake3::hash(lease_id.as_bytes()).to_hex().to_string(),
        },
        duration_seconds: 86_400,
    })
}

/// Format 1's commands: accounts, keys, prices, leases, a deletion, an expiry sweep, a batch.
fn requests() -> Vec<Request> {
    let at = |now_ms: u64, key: &str, command: Command| Request {
        now_ms,
        idempotency: Some(IdempotencyKey::internal("acct_golden", key)),
        command,
    };
    vec![
        at(
            1_790_000_000_000,
            "account",
            Command::CreateAccount(ops::CreateAccount {
                account_id: "acct_golden".into(),
                balance_micros: 50_000_000,
            }),
        ),
        at(
            1_790_000_000_100,
            "key",
            Command::AddApiKey(ops::AddApiKey {
                account_id: "acct_golden".into(),
                key_hash_hex: blake3::hash(b"rs_live_golden").to_hex().to_string(),
            }),
        ),
        at(
            1_790_000_000_200,
            "admin",
            Command::AddAdminKey(ops::AddAdminKey {
                key_hash_hex: blake3::hash(b"rs_admin_golden").to_hex().to_string(),
            }),
        ),
        at(
            1_790_000_000_300,
            "pricing",
            Command::SetPricing(ops::SetPricing {
                rate_micros_per_gb_day: Some(1_000),
                min_charge_micros: Some(29),
            }),
        ),
        at(
            1_790_000_001_000,
            "lease-1",
            storage("lse_golden1", "acct_golden", 1_000),
        ),
        at(
            1_790_000_002_000,
            "lease-2",
            storage("lse_golden2", "acct_golden", 2_000_000),
        ),
        at(
            1_790_000_003_000,
            "delete-2",
            Command::DeleteLease(ops::DeleteLease {
                owner: "acct_golden".into(),
                lease_id: "lse_golden2".into(),
            }),
        ),
        Request {
            now_ms: 1_790_000_004_000,
            idempotency: None,
            command: Command::Batch(vec![
                at(1_790_000_004_000, "lease-3", storage("lse_golden3", "acct_golden", 3)),
                at(
                    1_790_000_004_000,
                    "expire",
                    Command::ExpireDue(ops::ExpireDue { max: 16 }),
                ),
            ]),
        },
    ]
}

#[test]
fn format_1_commands_decode_exactly() {
    let made = requests();
    let bytes = read_or_write("commands.bin", || bincode::serialize(&made).unwrap());
    let read: Vec<Request> = relay_raft::grpc::decode(&bytes).expect("format 1 commands decode");
    assert_eq!(read, made);
    // And today's encoder writes the same bytes: the encoding did not drift.
    assert_eq!(bincode::serialize(&made).unwrap(), bytes);
}

#[test]
fn format_1_snapshot_reads_back_into_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(&dir.path().join("db")).unwrap();
    for request in requests() {
        let (_, txn) = relay_raft::sm::apply_entry(&db, &request).unwrap();
        db.write(txn.into_batch()).unwrap();
    }
    let (_, _, today) = capture(&db).unwrap();
    let bytes = read_or_write("snapshot.bin", || today.clone());
    let golden: SnapshotData = decode_state("golden snapshot", &bytes).expect("format 1 snapshot decodes");
    assert_eq!(golden.format, STATE_FORMAT);
    assert_eq!(decode_state("today's snapshot", &today).unwrap(), golden);
    assert!(golden.rows.len() > 10);

    // Installed into another database, it reads as the same state.
    let other = tempfile::tempdir().unwrap();
    let db2 = open_db(&other.path().join("db")).unwrap();
    relay_raft::store::snapshot::restore(&db2, &bytes).unwrap();
    let (_, _, again) = capture(&db2).unwrap();
    assert_eq!(decode_state("restored", &again).unwrap(), golden);
    let reader = relay_raft::reader::StateReader::new(db2);
    assert!(reader.account("acct_golden").unwrap().is_some());
}

#[test]
fn other_formats_are_refused_naming_both() {
    // A snapshot claiming format 2.
    let mut future = bincode::serialize(&SnapshotData::default()).unwrap();
    future[..4].copy_from_slice(&2u32.to_le_bytes());
    let e = decode_state("the snapshot", &future).unwrap_err().to_string();
    assert!(
        e.contains("format 2") && e.contains(&format!("reads format {STATE_FORMAT}")),
        "{e}"
    );

    // A data directory marked with another format.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    drop(open_db(&path).unwrap());
    {
        let mut opts = rocksdb::Options::default();
        opts.create_missing_column_families(true);
        let cfs = rocksdb::DB::list_cf(&opts, &path).unwrap();
        let db = rocksdb::DB::open_cf(&opts, &path, cfs).unwrap();
        db.put_cf(db.cf_handle("raft").unwrap(), b"data_format", 7u32.to_le_bytes())
            .unwrap();
    }
    let Err(e) = open_db(&path) else {
        panic!("a database in format 7 opened");
    };
    let e = e.to_string();
    assert!(
        e.contains("format 7") && e.contains(&format!("reads format {DATA_FORMAT}")),
        "{e}"
    );
    assert!(e.contains("newer"), "{e}");
}

/// A ledger database written by format 1 (the commands above applied, flushed to tables) opens
/// and reads as the same state.
#[test]
fn format_1_data_directory_opens_and_reads() {
    let golden_db = golden("db");
    if !golden_db.exists() && std::env::var_os("RELAY_WRITE_GOLDEN").is_some() {
        let db = open_db(&golden_db).unwrap();
        for request in requests() {
            let (_, txn) = relay_raft::sm::apply_entry(&db, &request).unwrap();
            db.write(txn.into_batch()).unwrap();
        }
        for name in relay_raft::store::STATE_CFS.iter().chain(relay_raft::store::LOG_CFS) {
            db.flush_cf(db.cf_handle(name).unwrap()).unwrap();
        }
        drop(db);
        // RocksDB's own logs say when and where they were written; they are not data.
        for entry in std::fs::read_dir(&golden_db).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().unwrap().to_string_lossy().starts_with("LOG") {
                std::fs::remove_file(path).unwrap();
            }
        }
    }
    assert!(
        golden_db.is_dir(),
        "{} missing (RELAY_WRITE_GOLDEN=1 writes it)",
        golden_db.display()
    );
    // Opened from a copy: RocksDB writes to a database it opens.
    let copy = tempfile::tempdir().unwrap();
    let path = copy.path().join("db");
    std::fs::create_dir(&path).unwrap();
    for entry in std::fs::read_dir(&golden_db).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), path.join(entry.file_name())).unwrap();
    }
    let db = open_db(&path).expect("a format 1 data directory opens");
    let (_, _, state) = capture(&db).unwrap();
    let golden_snapshot = decode_state("golden snapshot", &std::fs::read(golden("snapshot.bin")).unwrap()).unwrap();
    assert_eq!(decode_state("the data directory", &state).unwrap(), golden_snapshot);
    let reader = relay_raft::reader::StateReader::new(db);
    assert!(reader.account("acct_golden").unwrap().is_some());
}

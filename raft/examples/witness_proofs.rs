//! Proof size and time for the witness log at a given size, on the ledger's real storage
//! (RocksDB, the state machine's own append). BENCHMARKS.md runs it as
//! `cargo run --offline -p relay-raft --example witness_proofs -- 1000000 1000`: the leaves, then
//! the proofs to time. Prints one JSON line.

use std::time::Instant;

use relay_raft::reader::StateReader;
use relay_raft::sm::witness;
use relay_raft::store::open_db;
use relay_raft::store::txn::Txn;
use relay_raft::tlog::merkle::{self, leaf_hash};
use relay_raft::tlog::record::{Event, Record};
use relay_raft::tlog::{Checkpoint, Signer, TlogProof};

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let leaves: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let proofs: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let dir = tempfile::tempdir().expect("temp dir");
    let db = open_db(dir.path()).expect("open RocksDB");
    let start = Instant::now();
    for i in 0..leaves {
        let mut txn = Txn::new(&db);
        let record = Record {
            baton_id: format!("btn_{:026}", i / 100),
            event: Event::Entry,
            seq: i % 100 + 1,
            sha256: *blake3::hash(&i.to_le_bytes()).as_bytes(),
            chain: None,
            at_ms: 1_700_000_000_000 + i,
        };
        witness::append(&mut txn, 1_700_000_000_000 + i, "acct_bench", &record).expect("append");
        db.write(txn.into_batch()).expect("write");
    }
    let append_s = start.elapsed().as_secs_f64();
    let reader = StateReader::new(db.clone());
    let hashes = reader.witness_hashes();
    let t = Instant::now();
    let root = merkle::root(&hashes, leaves).expect("root");
    let root_us = t.elapsed().as_secs_f64() * 1e6;
    let signer = Signer::from_seed("bench.example/witness", &[9; 32]).expect("key");
    let note = signer
        .sign(
            &Checkpoint {
                origin: signer.name.clone(),
                size: leaves,
                root,
            }
            .text(),
        )
        .expect("sign");
    let (mut gen_us, mut verify_us, mut bytes, mut hashes_n) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..proofs {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let index = x % leaves;
        let t = Instant::now();
        let record = reader.witness_record(index).expect("read").expect("a record");
        let path = merkle::inclusion_proof(&hashes, index, leaves).expect("proof");
        let text = TlogProof {
            extra: Some(record.clone()),
            index,
            path: path.clone(),
            checkpoint: note.clone(),
        }
        .to_text();
        gen_us.push(t.elapsed().as_secs_f64() * 1e6);
        let t = Instant::now();
        merkle::verify_inclusion(&leaf_hash(&record), index, leaves, &path, &root).expect("verifies");
        verify_us.push(t.elapsed().as_secs_f64() * 1e6);
        bytes.push(text.len() as f64);
        hashes_n.push(path.len() as f64);
    }
    let (mut cons_us, mut cons_n) = (Vec::new(), Vec::new());
    for _ in 0..proofs.min(200) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let from = 1 + x % leaves;
        let t = Instant::now();
        let p = merkle::consistency_proof(&hashes, from, leaves).expect("proof");
        cons_us.push(t.elapsed().as_secs_f64() * 1e6);
        cons_n.push(p.len() as f64);
    }
    println!(
        "{}",
        serde_json::json!({
            "leaves": leaves,
            "append_leaves_per_s": (leaves as f64 / append_s).round(),
            "root_us": root_us.round(),
            "inclusion": {
                "proofs": proofs,
                "hashes_max": percentile(hashes_n.clone(), 1.0),
                "tlog_proof_bytes_p50": percentile(bytes.clone(), 0.5),
                "tlog_proof_bytes_max": percentile(bytes, 1.0),
                "make_us_p50": percentile(gen_us.clone(), 0.5).round(),
                "make_us_p99": percentile(gen_us, 0.99).round(),
                "verify_us_p50": percentile(verify_us.clone(), 0.5).round(),
                "verify_us_p99": percentile(verify_us, 0.99).round(),
            },
            "consistency": {
                "hashes_max": percentile(cons_n, 1.0),
                "make_us_p50": percentile(cons_us.clone(), 0.5).round(),
                "make_us_p99": percentile(cons_us, 0.99).round(),
            },
        })
    );
}

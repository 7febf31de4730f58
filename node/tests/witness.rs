//! The witness log on a real node: records of witnessed writes only, offline `relay verify` of
//! every proof (and its refusal of tampered content, proofs and keys), consistency between
//! checkpoints, who may read a baton's records (also after it is gone), rotation with old keys
//! still published, an operator's key and the witness secret (the key never at rest in the clear),
//! and a cross-check of notes and proofs with Go's golang.org/x/mod/sumdb (code nobody here wrote).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use common::{client, files_under, Relay, RelayExt};
use relay_testkit::{Client, Reply};
use serde_json::{json, Value};

const RELAY_BIN: &str = env!("CARGO_BIN_EXE_relay");

fn api(node: &Relay) -> Client {
    node.client(client())
}

fn anon(node: &Relay) -> Client {
    Client::new(client(), node.base())
}

async fn send(call: relay_testkit::Call) -> Reply {
    call.send().await.expect("request")
}

async fn create(node: &Relay, shape: Value) -> String {
    let r = send(api(node).baton_create(&shape)).await;
    assert_eq!(r.status, 201, "create {shape}: {}", r.text());
    r.json()["baton_id"].as_str().unwrap().to_string()
}

/// The baton's records once a checkpoint covers every one of them.
async fn proven(node: &Relay, client: &Client, baton: &str, want: usize) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let r = send(client.get(&format!("/v1/baton/{baton}/witness"))).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let records = r.json()["records"].as_array().unwrap().clone();
        if records.len() == want && records.iter().all(|r| r["proof"].is_string()) {
            return records;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never proven: {records:?}\n{}",
            node.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn well_known(node: &Relay) -> Value {
    let start = Instant::now();
    loop {
        let r = send(anon(node).get("/.well-known/relay-witness")).await;
        if r.status == 200 {
            return r.json();
        }
        assert_eq!(r.status, 503, "{}", r.text());
        assert!(start.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The latest checkpoint once it covers at least `size` leaves.
async fn checkpoint_at_least(node: &Relay, size: u64) -> String {
    let start = Instant::now();
    loop {
        let r = send(anon(node).get("/v1/witness/checkpoint")).await;
        if r.status == 200 {
            let text = r.text();
            let n: u64 = text.lines().nth(1).unwrap().parse().unwrap();
            if n >= size {
                assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
                return text;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no checkpoint of {size}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_string()
}

/// Runs `relay verify …`; its exit code and what it said.
fn verify(args: &[&str]) -> (i32, String) {
    let out = Command::new(RELAY_BIN).arg("verify").args(args).output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), said)
}

fn keygen(origin: &str) -> (String, String) {
    let out = Command::new(RELAY_BIN)
        .args(["witness", "keygen", "--origin", origin])
        .output()
        .unwrap();
    assert!(out.status.success());
    let private = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let verifier = String::from_utf8(out.stderr).unwrap();
    let verifier = verifier.trim().strip_prefix("verifier key: ").unwrap().to_string();
    (private, verifier)
}

#[tokio::test]
async fn witnessed_writes_verify_offline_and_tampering_fails() {
    let node = Relay::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let wk = well_known(&node).await;
    let origin = wk["origin"].as_str().unwrap().to_string();
    assert_eq!(wk["keys"].as_array().unwrap().len(), 1);
    assert_eq!(wk["retention_days"], 2557);
    let keys = write(d, "keys.json", wk.to_string().as_bytes());

    let ledger = create(&node, json!({"preconfig": "ledger"})).await;
    let entries = ["paid invoice 42", "paid invoice 43", "refund 42"];
    for e in entries {
        assert_eq!(send(api(&node).baton_append(&ledger, e)).await.status, 201);
    }
    let content = b"a witnessed file".to_vec();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&content);
    let single = create(
        &node,
        json!({"preconfig": "drop", "trust": {"witness": true}, "content_base64": b64}),
    )
    .await;
    assert_eq!(send(api(&node).baton_put(&single, "second version")).await.status, 200);
    let quiet = create(&node, json!({"preconfig": "drop", "content_base64": b64})).await;

    let records = proven(&node, &api(&node), &ledger, 3).await;
    for (i, r) in records.iter().enumerate() {
        assert_eq!(
            (r["event"].as_str(), r["seq"].as_u64()),
            (Some("entry"), Some(i as u64 + 1))
        );
        let record = base64::engine::general_purpose::STANDARD
            .decode(r["record_base64"].as_str().unwrap())
            .unwrap();
        let text = String::from_utf8(record).unwrap();
        assert!(
            text.starts_with(&format!("relay-witness/v1\nbaton {ledger}\nevent entry\n")),
            "{text}"
        );
        let proof = write(d, &format!("e{i}.tlog-proof"), r["proof"].as_str().unwrap().as_bytes());
        let file = write(d, &format!("e{i}.txt"), entries[i].as_bytes());
        let (code, said) = verify(&[&file, "--proof", &proof, "--key", &keys]);
        assert_eq!(code, 0, "{said}");
        assert!(
            said.contains(&format!("is record {} of {origin}", r["index"])),
            "{said}"
        );
        // Another entry's content does not verify against this proof.
        let other = write(d, "other.txt", entries[(i + 1) % 3].as_bytes());
        let (code, said) = verify(&[&other, "--proof", &proof, "--key", &keys]);
        assert_eq!(code, 1, "{said}");
        assert!(said.starts_with("invalid: mismatch"), "{said}");
    }
    let single_records = proven(&node, &api(&node), &single, 2).await;
    assert_eq!(single_records[0]["seq"], 1);
    assert_eq!(single_records[1]["seq"], 2);
    let proof_text = single_records[0]["proof"].as_str().unwrap().to_string();
    let proof = write(d, "s.tlog-proof", proof_text.as_bytes());
    let file = write(d, "s.bin", &content);
    assert_eq!(verify(&[&file, "--proof", &proof, "--key", &keys]).0, 0);
    let v2 = write(d, "v2.txt", b"second version");
    let proof2 = write(
        d,
        "s2.tlog-proof",
        single_records[1]["proof"].as_str().unwrap().as_bytes(),
    );
    assert_eq!(verify(&[&v2, "--proof", &proof2, "--key", &keys]).0, 0);
    // An unwitnessed baton has no records; its owner sees an empty list.
    let r = send(api(&node).get(&format!("/v1/baton/{quiet}/witness"))).await;
    assert_eq!((r.status, r.json()["records"].as_array().map(Vec::len)), (200, Some(0)));

    // Tampering: a flipped path hash, a changed index, a changed record, a changed checkpoint,
    // an unknown key, a key of the right name but another key.
    let lines: Vec<&str> = proof_text.split('\n').collect();
    let flip = |line: &str| {
        let mut b = base64::engine::general_purpose::STANDARD.decode(line).unwrap();
        b[0] ^= 1;
        base64::engine::general_purpose::STANDARD.encode(b)
    };
    let mut tampered = Vec::new();
    let path_line = lines.iter().position(|l| l.len() == 44).unwrap();
    let mut t = lines.clone();
    let flipped = flip(lines[path_line]);
    t[path_line] = &flipped;
    tampered.push(t.join("\n"));
    let index: u64 = lines[2].strip_prefix("index ").unwrap().parse().unwrap();
    tampered.push(proof_text.replacen(lines[2], &format!("index {}", index + 1), 1));
    let record = lines[1].strip_prefix("extra ").unwrap();
    let mut rec = base64::engine::general_purpose::STANDARD.decode(record).unwrap();
    let at = rec.len() - 2;
    rec[at] = if rec[at] == b'1' { b'2' } else { b'1' };
    let forged = format!("extra {}", base64::engine::general_purpose::STANDARD.encode(rec));
    tampered.push(proof_text.replacen(lines[1], &forged, 1));
    let cp_size = lines
        .iter()
        .rposition(|l| l.chars().all(|c| c.is_ascii_digit()) && !l.is_empty())
        .unwrap();
    tampered.push(
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                if i == cp_size {
                    format!("{}", l.parse::<u64>().unwrap() + 1)
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n"),
    );
    for (i, t) in tampered.iter().enumerate() {
        let p = write(d, &format!("t{i}.tlog-proof"), t.as_bytes());
        let (code, said) = verify(&[&file, "--proof", &p, "--key", &keys]);
        assert_eq!(code, 1, "tampered proof {i} verified: {said}");
        assert!(said.starts_with("invalid: "), "{said}");
    }
    let (_, stranger) = keygen(&origin);
    let (code, said) = verify(&[&file, "--proof", &proof, "--key", &stranger]);
    assert_eq!((code, said.trim()), (1, "invalid: no signature by a known key"));
    let (code, said) = verify(&[&file, "--proof", &proof, "--key", "not a key"]);
    assert_eq!(code, 2, "{said}");
    let (code, _) = verify(&[&file, "--proof", &d.join("missing").to_string_lossy(), "--key", &keys]);
    assert_eq!(code, 2);

    // Consistency: an older checkpoint is a prefix of a newer one, checked offline.
    let old = checkpoint_at_least(&node, 5).await;
    let old_size: u64 = old.lines().nth(1).unwrap().parse().unwrap();
    for i in 0..3 {
        assert_eq!(
            send(api(&node).baton_append(&ledger, format!("more {i}"))).await.status,
            201
        );
    }
    let new = checkpoint_at_least(&node, old_size + 3).await;
    let new_size: u64 = new.lines().nth(1).unwrap().parse().unwrap();
    let r = send(anon(&node).get(&format!("/v1/witness/consistency?from={old_size}&to={new_size}"))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let c = r.json();
    assert_eq!((c["from"].as_u64(), c["to"].as_u64()), (Some(old_size), Some(new_size)));
    let cpath = write(d, "c.json", c.to_string().as_bytes());
    let (oldp, newp) = (write(d, "old.cp", old.as_bytes()), write(d, "new.cp", new.as_bytes()));
    let (code, said) = verify(&["--consistency", &cpath, "--old", &oldp, "--new", &newp, "--key", &keys]);
    assert_eq!(code, 0, "{said}");
    let mut bad = c.clone();
    let first = bad["hashes"][0].as_str().unwrap().to_string();
    bad["hashes"][0] = json!(flip(&first));
    let bpath = write(d, "bad.json", bad.to_string().as_bytes());
    let (code, said) = verify(&["--consistency", &bpath, "--old", &oldp, "--new", &newp, "--key", &keys]);
    assert_eq!(code, 1, "{said}");
    let (code, said) = verify(&["--consistency", &cpath, "--old", &newp, "--new", &newp, "--key", &keys]);
    assert_eq!(code, 1, "{said}");
    // Old and new swapped: a log that went back.
    let (code, said) = verify(&["--consistency", &cpath, "--old", &newp, "--new", &oldp, "--key", &keys]);
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("went back"), "{said}");
    let mut junk = c.clone();
    junk["from"] = json!("x");
    let jpath = write(d, "junk.json", junk.to_string().as_bytes());
    let (code, said) = verify(&["--consistency", &jpath, "--old", &oldp, "--new", &newp, "--key", &keys]);
    assert_eq!(code, 2, "{said}");

    // Bad queries are clear errors.
    for (q, status) in [
        ("from=0&to=1", 422),
        ("from=3&to=2", 422),
        ("from=1&to=999999", 422),
        ("from=x&to=2", 422),
        ("from=1", 400),
        ("to=2", 400),
        ("from=1&to=2&extra=1", 400),
        ("from=1&from=1&to=2", 400),
        ("from=99999999999999999999999&to=2", 422),
    ] {
        let r = send(anon(&node).get(&format!("/v1/witness/consistency?{q}"))).await;
        assert_eq!(r.status, status, "{q}: {}", r.text());
        assert!(r.json()["error"]["code"].is_string(), "{q}");
    }
    for q in ["limit=0", "limit=101", "after=x", "bogus=1"] {
        let r = send(api(&node).get(&format!("/v1/baton/{ledger}/witness?{q}"))).await;
        assert!(r.status == 400 || r.status == 422, "{q}: {}", r.text());
    }
    // Paging.
    let page = send(api(&node).get(&format!("/v1/baton/{ledger}/witness?limit=2")))
        .await
        .json();
    assert_eq!(page["records"].as_array().unwrap().len(), 2);
    let after = page["next_after"].as_u64().unwrap();
    let rest = send(api(&node).get(&format!("/v1/baton/{ledger}/witness?after={after}")))
        .await
        .json();
    assert_eq!(rest["records"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn records_are_the_owners_and_outlive_the_baton() {
    let node = Relay::start(&[]);
    let ledger = create(&node, json!({"preconfig": "ledger"})).await;
    let r =
        send(api(&node).baton_create(
            &json!({"preconfig": "ledger", "sharing": {"tokens": [{"scope": "read"}, {"scope": "write"}]}}),
        ))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let b = r.json();
    let baton = b["baton_id"].as_str().unwrap().to_string();
    let (read, write_only) = (
        b["tokens"][0]["token"].as_str().unwrap(),
        b["tokens"][1]["token"].as_str().unwrap(),
    );
    assert_eq!(send(api(&node).baton_append(&baton, "one")).await.status, 201);
    proven(&node, &api(&node), &baton, 1).await;
    proven(&node, &api(&node).bearer(read), &baton, 1).await;
    // No credential, a write-only token, another baton's id, a malformed id.
    assert_eq!(
        send(anon(&node).get(&format!("/v1/baton/{baton}/witness")))
            .await
            .status,
        401
    );
    let r = send(api(&node).bearer(write_only).get(&format!("/v1/baton/{baton}/witness"))).await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = send(api(&node).bearer(read).get(&format!("/v1/baton/{ledger}/witness"))).await;
    assert_eq!(r.status, 404);
    assert_eq!(send(api(&node).get("/v1/baton/nope/witness")).await.status, 404);
    // Another account sees nothing.
    let admin = Client::new(client(), node.base()).bearer(&node.admin_key().unwrap());
    let acct = send(
        admin
            .call(reqwest::Method::POST, "/cluster/accounts")
            .body(r#"{"account_id":"acct_other","balance_micros":1000000}"#.into()),
    )
    .await;
    assert_eq!(acct.status, 201, "{}", acct.text());
    let key = send(
        admin
            .call(reqwest::Method::POST, "/cluster/accounts/acct_other/keys")
            .body("{}".into()),
    )
    .await;
    assert_eq!(key.status, 201, "{}", key.text());
    let other = key.json()["api_key"].as_str().unwrap().to_string();
    let r = send(anon(&node).bearer(&other).get(&format!("/v1/baton/{baton}/witness"))).await;
    assert_eq!(r.status, 404, "{}", r.text());
    // A read-capped token whose reads are spent learns no more hashes.
    let r = send(api(&node).baton_create(&json!({"preconfig": "drop", "trust": {"witness": true}, "content_base64": "aGk=", "sharing": {"tokens": [{"scope": "read", "read_cap": 1}]}}))).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let (capped, once) = (
        r.json()["baton_id"].as_str().unwrap().to_string(),
        r.json()["tokens"][0]["token"].as_str().unwrap().to_string(),
    );
    assert_eq!(
        send(api(&node).bearer(&once).get(&format!("/v1/baton/{capped}/witness")))
            .await
            .status,
        200
    );
    assert_eq!(send(api(&node).bearer(&once).baton_read(&capped)).await.status, 200);
    let r = send(api(&node).bearer(&once).get(&format!("/v1/baton/{capped}/witness"))).await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (410, Some("read_cap_exhausted"))
    );
    // Deleted for good: the owner still reads the records and their proofs.
    assert_eq!(send(api(&node).baton_delete(&baton, true)).await.status, 200);
    assert_eq!(send(api(&node).baton_meta(&baton)).await.json()["state"], "deleted");
    let records = proven(&node, &api(&node), &baton, 1).await;
    assert_eq!(records[0]["seq"], 1);
    // A token reads them only while its baton lives.
    let r = send(api(&node).bearer(read).get(&format!("/v1/baton/{baton}/witness"))).await;
    assert_eq!(r.status, 410, "{}", r.text());
}

#[tokio::test]
async fn rotation_keeps_old_keys_published_and_old_proofs_valid() {
    let node = Relay::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let before = well_known(&node).await;
    let ledger = create(&node, json!({"preconfig": "ledger"})).await;
    assert_eq!(send(api(&node).baton_append(&ledger, "before")).await.status, 201);
    let old_proof = proven(&node, &api(&node), &ledger, 1).await[0]["proof"]
        .as_str()
        .unwrap()
        .to_string();
    // Agents cannot rotate; the cluster secret can.
    let r = send(api(&node).call(reqwest::Method::POST, "/cluster/witness/rotate")).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let admin = Client::new(client(), node.base()).bearer(&node.admin_key().unwrap());
    let r = send(admin.call(reqwest::Method::POST, "/cluster/witness/rotate")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let active = r.json()["active_key"].as_str().unwrap().to_string();
    let after = well_known(&node).await;
    let keys: Vec<String> = after["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        keys,
        vec![before["keys"][0].as_str().unwrap().to_string(), active.clone()]
    );
    assert_eq!(after["origin"], before["origin"]);
    let history = after["key_history"].as_array().unwrap();
    assert!(history[0]["until_size"].as_u64().is_some());
    assert!(history[0]["until_root"].is_string());
    assert!(history[1]["until_size"].is_null());
    // The next checkpoint is the new key's, even with no new leaf.
    let start = Instant::now();
    let note = loop {
        let note = checkpoint_at_least(&node, 1).await;
        let p = write(d, "cp", note.as_bytes());
        let c = write(d, "c.json", br#"{"hashes": []}"#);
        if verify(&["--consistency", &c, "--old", &p, "--new", &p, "--key", &active]).0 == 0 {
            break note;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "never signed by the new key: {note}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(note.contains("\n\n\u{2014} "));
    // The old proof still verifies with the old key; the new proof with the new one.
    let file = write(d, "e.txt", b"before");
    let old_p = write(d, "old.tlog-proof", old_proof.as_bytes());
    assert_eq!(verify(&[&file, "--proof", &old_p, "--key", &keys[0]]).0, 0);
    let new_proof = proven(&node, &api(&node), &ledger, 1).await[0]["proof"]
        .as_str()
        .unwrap()
        .to_string();
    let new_p = write(d, "new.tlog-proof", new_proof.as_bytes());
    assert_eq!(verify(&[&file, "--proof", &new_p, "--key", &active]).0, 0);
    assert_eq!(verify(&[&file, "--proof", &new_p, "--key", &keys[0]]).0, 1);
}

#[tokio::test]
async fn an_operators_key_signs_and_no_key_rests_in_the_clear() {
    let dir = tempfile::tempdir().unwrap();
    let (private, verifier) = keygen("witness.example/log");
    let key_file = write(dir.path(), "witness.key", private.as_bytes());
    let secret_file = write(dir.path(), "witness.secret", b"an operator witness secret 0123");
    let mut node = Relay::start(&["--witness-key-file", &key_file, "--witness-secret-file", &secret_file]);
    let wk = well_known(&node).await;
    assert_eq!(wk["origin"], "witness.example/log");
    assert_eq!(wk["keys"], json!([verifier]));
    let admin = Client::new(client(), node.base()).bearer(&node.admin_key().unwrap());
    let r = send(admin.call(reqwest::Method::POST, "/cluster/witness/rotate")).await;
    assert_eq!(r.status, 409, "{}", r.text());
    let ledger = create(&node, json!({"preconfig": "ledger"})).await;
    assert_eq!(send(api(&node).baton_append(&ledger, "x")).await.status, 201);
    proven(&node, &api(&node), &ledger, 1).await;
    // The seed is nowhere in the data directory (ledger, log, snapshots) in the clear.
    let b64 = private.splitn(5, '+').nth(4).unwrap();
    let seed = base64::engine::general_purpose::STANDARD.decode(b64).unwrap()[1..].to_vec();
    for f in files_under(node.data_dir()) {
        let bytes = std::fs::read(&f).unwrap_or_default();
        assert!(
            !bytes.windows(32).any(|w| w == &seed[..]),
            "the seed is in {}",
            f.display()
        );
    }
    // Restarted without the key file, the node cannot sign (the key was never stored): it signs
    // nothing new, and says why.
    let size_before: u64 = checkpoint_at_least(&node, 1)
        .await
        .lines()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    node.remove_flag("--witness-key-file");
    node.terminate().expect("stop");
    node.restart().expect("restart");
    assert_eq!(send(api(&node).baton_append(&ledger, "y")).await.status, 201);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let note = send(anon(&node).get("/v1/witness/checkpoint")).await.text();
    assert_eq!(
        note.lines().nth(1).unwrap().parse::<u64>().unwrap(),
        size_before,
        "{note}"
    );
    assert!(node.logs().contains("no --witness-key-file holding it"));

    // A generated key sealed under one witness secret does not open under another.
    let mut node = Relay::start(&["--witness-secret-file", &secret_file]);
    let ledger = create(&node, json!({"preconfig": "ledger"})).await;
    assert_eq!(send(api(&node).baton_append(&ledger, "x")).await.status, 201);
    proven(&node, &api(&node), &ledger, 1).await;
    let other = write(dir.path(), "other.secret", b"another operator secret 456789");
    node.remove_flag("--witness-secret-file");
    node.terminate().expect("stop");
    node.add_flag("--witness-secret-file", &other);
    node.restart().expect("restart");
    assert_eq!(send(api(&node).baton_append(&ledger, "y")).await.status, 201);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let r = send(api(&node).get(&format!("/v1/baton/{ledger}/witness")))
        .await
        .json();
    assert!(r["records"][1]["proof"].is_null(), "{r}");
    assert!(node.logs().contains("does not open with this node's witness secret"));
}

#[tokio::test]
async fn operator_keys_rotate_forward_never_back_and_keep_the_origin() {
    let dir = tempfile::tempdir().unwrap();
    let (k1, _) = keygen("ops.example/log");
    let (k2, v2) = keygen("ops.example/log");
    let (k3, _) = keygen("other.example/log");
    let f1 = write(dir.path(), "k1", k1.as_bytes());
    let f2 = write(dir.path(), "k2", k2.as_bytes());
    let f3 = write(dir.path(), "k3", k3.as_bytes());
    let mut node = Relay::start(&["--witness-key-file", &f1]);
    let ledger = create(&node, json!({"preconfig": "ledger"})).await;
    assert_eq!(send(api(&node).baton_append(&ledger, "a")).await.status, 201);
    proven(&node, &api(&node), &ledger, 1).await;
    // The operator moves to k2: it signs from now on; k1's range closes.
    let restart = |node: &mut Relay, file: &str| {
        node.remove_flag("--witness-key-file");
        node.terminate().expect("stop");
        node.add_flag("--witness-key-file", file);
        node.restart().expect("restart");
    };
    restart(&mut node, &f2);
    let wk = well_known(&node).await;
    assert_eq!(wk["active_key"], json!(v2));
    assert!(wk["key_history"][0]["until_size"].as_u64().is_some());
    assert_eq!(wk["key_history"][1]["operator_held"], true);
    // Back to k1 (retired), or a key of another origin: refused, said, nothing signed.
    for file in [&f1, &f3] {
        restart(&mut node, file);
        let before = checkpoint_at_least(&node, 1).await;
        assert_eq!(send(api(&node).baton_append(&ledger, "b")).await.status, 201);
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(send(anon(&node).get("/v1/witness/checkpoint")).await.text(), before);
        assert_eq!(well_known(&node).await["active_key"], json!(v2));
    }
    let logs = node.logs();
    assert!(logs.contains("retired by a rotation"), "{logs}");
    assert!(logs.contains("names the origin"), "{logs}");
}

/// Relay's notes and proofs verify with Go's golang.org/x/mod/sumdb/note and …/tlog, and the
/// tampered ones fail there too.
#[tokio::test]
async fn go_sumdb_verifies_relays_notes_and_proofs() {
    let gopath = Path::new("/usr/share/gocode");
    let have_go = Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
        && gopath.join("src/golang.org/x/mod/sumdb/tlog").is_dir();
    if !have_go {
        assert!(
            std::env::var_os("RELAY_REQUIRE_GO").is_none(),
            "Go and golang-golang-x-mod-dev are required (scripts/test.sh installs them)"
        );
        eprintln!("skipped: no Go with golang.org/x/mod (scripts/test.sh installs it)");
        return;
    }
    let node = Relay::start(&[]);
    let wk = well_known(&node).await;
    let ledger = create(&node, json!({"preconfig": "ledger"})).await;
    for i in 0..7 {
        assert_eq!(
            send(api(&node).baton_append(&ledger, format!("entry {i}")))
                .await
                .status,
            201
        );
    }
    let records = proven(&node, &api(&node), &ledger, 7).await;
    let old = checkpoint_at_least(&node, 7).await;
    for i in 0..6 {
        assert_eq!(
            send(api(&node).baton_append(&ledger, format!("later {i}")))
                .await
                .status,
            201
        );
    }
    let new = checkpoint_at_least(&node, 13).await;
    let sizes: Vec<u64> = [&old, &new]
        .iter()
        .map(|n| n.lines().nth(1).unwrap().parse().unwrap())
        .collect();
    let c = send(anon(&node).get(&format!("/v1/witness/consistency?from={}&to={}", sizes[0], sizes[1])))
        .await
        .json();
    let mut cases = Vec::new();
    let mut expect = Vec::new();
    for r in &records {
        cases.push(json!({"kind": "inclusion", "proof": r["proof"]}));
        expect.push(true);
    }
    cases.push(json!({"kind": "consistency", "old_note": old, "new_note": new, "hashes": c["hashes"]}));
    expect.push(true);
    // Tampered: a record's text, a checkpoint's size, a consistency hash.
    let p = records[3]["proof"].as_str().unwrap();
    let extra = p.lines().nth(1).unwrap();
    let mut rec = base64::engine::general_purpose::STANDARD
        .decode(extra.strip_prefix("extra ").unwrap())
        .unwrap();
    rec[20] ^= 1;
    let forged = p.replacen(
        extra,
        &format!("extra {}", base64::engine::general_purpose::STANDARD.encode(rec)),
        1,
    );
    cases.push(json!({"kind": "inclusion", "proof": forged}));
    expect.push(false);
    let resized = new.replacen(&format!("\n{}\n", sizes[1]), &format!("\n{}\n", sizes[1] + 1), 1);
    cases.push(json!({"kind": "consistency", "old_note": old, "new_note": resized, "hashes": c["hashes"]}));
    expect.push(false);
    let mut hashes = c["hashes"].clone();
    hashes[0] = json!(base64::engine::general_purpose::STANDARD.encode([0u8; 32]));
    cases.push(json!({"kind": "consistency", "old_note": old, "new_note": new, "hashes": hashes}));
    expect.push(false);

    let dir = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "cases.json",
        json!({"keys": wk["keys"], "cases": cases}).to_string().as_bytes(),
    );
    let program = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/witnesscheck/main.go");
    let out = Command::new("go")
        .args(["run", program.to_str().unwrap(), &input])
        .env("GO111MODULE", "off")
        .env("GOPATH", gopath)
        .env("GOCACHE", dir.path().join("gocache"))
        .env("GOFLAGS", "")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "go: {said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines.len(), expect.len(), "{said}");
    for (i, (line, ok)) in lines.iter().zip(&expect).enumerate() {
        assert_eq!(*line == "ok", *ok, "case {i}: {line}");
    }
}

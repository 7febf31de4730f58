//! Batons on real processes: every preconfig charged its quote, read-cap and egress storms across
//! three nodes with exact counts, expiry, burn, soft and hard deletes, scopes and owners, chained
//! entries recomputed here from the entries alone, and kill -9 with nothing lost.

mod common;

use std::time::Duration;

use common::{client, files_under, Cluster, Relay, RelayExt, SECRET};
use relay_testkit::{Client, Reply};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn api(node: &Relay) -> Client {
    node.client(client())
}

/// The same node, acting with a sharing token.
fn with_token(node: &Relay, token: &str) -> Client {
    api(node).bearer(token)
}

async fn send(call: relay_testkit::Call) -> Reply {
    call.send().await.expect("request")
}

async fn create(node: &Relay, shape: Value) -> Value {
    let r = send(api(node).baton_create(&shape)).await;
    assert_eq!(r.status, 201, "create {shape}: {}", r.text());
    r.json()
}

fn id(v: &Value) -> String {
    v["baton_id"].as_str().expect("baton_id").to_string()
}

fn token(v: &Value, i: usize) -> String {
    v["tokens"][i]["token"].as_str().expect("token").to_string()
}

/// A client with the cluster secret and no agent's key.
fn admin(node: &Relay) -> Client {
    Client::new(client(), node.base()).secret(SECRET)
}

async fn balance(node: &Relay) -> u64 {
    let r = send(admin(node).get("/cluster/accounts/acct_bootstrap")).await;
    r.json()["balance_micros"].as_str().expect("balance").parse().unwrap()
}

fn code(r: &Reply) -> String {
    r.json()["error"]["code"].as_str().unwrap_or_default().to_string()
}

/// Recomputes a chain from its entries alone: SHA-256(prev_hash ‖ seq (8 bytes, big-endian) ‖
/// content), the first prev_hash 32 zero bytes.
fn check_chain(entries: &[Value]) {
    let mut prev = [0u8; 32];
    for (i, e) in entries.iter().enumerate() {
        let seq = e["seq"].as_u64().unwrap();
        assert_eq!(seq, i as u64 + 1, "entries in order");
        assert_eq!(e["prev_hash"].as_str().unwrap(), hex(&prev));
        let mut h = Sha256::new();
        h.update(prev);
        h.update(seq.to_be_bytes());
        h.update(e["content"].as_str().unwrap().as_bytes());
        prev = h.finalize().into();
        assert_eq!(e["hash"].as_str().unwrap(), hex(&prev), "entry {seq}");
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Each preconfig: the quote is the charge, the shape is the quoted one, and it behaves as named.
#[tokio::test]
async fn every_preconfig_is_charged_its_quote_and_behaves_as_named() {
    let cluster = Cluster::start(1, &[]).await;
    let node = &cluster.nodes[0];
    for preconfig in ["drop", "pass", "scratchpad", "checkpoint", "ledger"] {
        let shape = json!({"preconfig": preconfig, "capacity": {"size_bytes": 4096, "duration_seconds": 600}});
        let quote = send(api(node).baton_quote(&shape)).await;
        assert_eq!(quote.status, 200, "{}", quote.text());
        let quote = quote.json();
        let before = balance(node).await;
        let mut body = shape.clone();
        body["content_base64"] = json!("aGVsbG8=");
        let b = create(node, body).await;
        assert_eq!(
            b["price_micros"], quote["price_micros"],
            "{preconfig}: the quote is the charge"
        );
        assert_eq!(b["shape"], quote["shape"], "{preconfig}: the shape is the quoted one");
        assert_eq!(before - balance(node).await, quote["price_micros"].as_u64().unwrap());
        let baton = id(&b);
        match preconfig {
            "drop" => {
                for _ in 0..3 {
                    let r = send(api(node).baton_read(&baton)).await;
                    assert_eq!((r.status, r.text().as_str()), (200, "hello"));
                }
                assert_eq!(b["tokens"], json!([]));
            }
            "pass" => {
                let t = token(&b, 0);
                let r = send(with_token(node, &t).baton_read(&baton)).await;
                assert_eq!((r.status, r.text().as_str()), (200, "hello"));
                assert_eq!(r.header("x-baton-burned"), Some("true"));
                for c in [with_token(node, &t), api(node)] {
                    assert_eq!(
                        send(c.baton_read(&baton)).await.status,
                        410,
                        "burned after its one read"
                    );
                }
            }
            "scratchpad" => {
                let t = token(&b, 0);
                let r = send(with_token(node, &t).baton_append(&baton, " world")).await;
                assert_eq!(r.status, 201, "{}", r.text());
                assert_eq!(r.json()["seq"], 2);
                let r = send(with_token(node, &t).baton_read(&baton)).await;
                assert_eq!(r.text(), "hello world");
            }
            "checkpoint" => {
                let r = send(api(node).baton_put(&baton, "v2").if_match(1)).await;
                assert_eq!(r.status, 200, "{}", r.text());
                let r = send(api(node).baton_put(&baton, "v3").if_match(1)).await;
                assert_eq!((r.status, code(&r).as_str()), (412, "precondition_failed"));
                let r = send(api(node).baton_put(&baton, "x".repeat(4097))).await;
                assert_eq!(
                    (r.status, code(&r).as_str()),
                    (413, "payload_too_large"),
                    "past size_bytes"
                );
                let r = send(api(node).baton_read(&baton)).await;
                assert_eq!(
                    (r.text().as_str(), r.header("x-baton-version")),
                    ("v2", Some("2")),
                    "nothing changed"
                );
            }
            "ledger" => {
                assert_eq!(b["shape"]["trust"]["witness"], true);
                for e in ["debit 5", "credit 7"] {
                    assert_eq!(send(api(node).baton_append(&baton, e)).await.status, 201);
                }
                let r = send(api(node).baton_entries(&baton, 0, 100)).await;
                let entries = r.json()["entries"].as_array().unwrap().clone();
                assert_eq!(entries.len(), 3);
                check_chain(&entries);
            }
            _ => unreachable!(),
        }
    }
}

/// Concurrent readers of one capped token on three nodes get exactly its cap; concurrent reads
/// against the budget get exactly what it holds; nothing is served past either.
#[tokio::test]
async fn read_cap_and_egress_storms_count_exactly_across_three_nodes() {
    let cluster = Cluster::start(3, &[]).await;
    let nodes = &cluster.nodes;
    let content = "x".repeat(100);
    let b = create(
        &nodes[0],
        json!({
            "capacity": {"size_bytes": 100, "duration_seconds": 600, "egress_bytes": 1000},
            "sharing": {"tokens": [{"scope": "read", "read_cap": 4}]},
            "content_base64": base64(content.as_bytes()),
        }),
    )
    .await;
    let (baton, t) = (id(&b), token(&b, 0));
    let storm = (0..24).map(|i| {
        let c = with_token(&nodes[i % 3], &t);
        let baton = baton.clone();
        async move { send(c.baton_read(&baton)).await }
    });
    let replies = futures::future::join_all(storm).await;
    let ok: Vec<&Reply> = replies.iter().filter(|r| r.status == 200).collect();
    assert_eq!(
        ok.len(),
        4,
        "exactly the cap: {:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(ok.iter().all(|r| r.text() == content), "capped reads stream whole");
    assert!(replies
        .iter()
        .filter(|r| r.status != 200)
        .all(|r| r.status == 410 && code(r) == "read_cap_exhausted"));
    // Six more full reads fit the budget; the owner's storm gets exactly six.
    let storm = (0..20).map(|i| {
        let c = api(&nodes[i % 3]);
        let baton = baton.clone();
        async move { send(c.baton_read(&baton)).await }
    });
    let replies = futures::future::join_all(storm).await;
    assert_eq!(replies.iter().filter(|r| r.status == 200).count(), 6);
    assert!(replies
        .iter()
        .filter(|r| r.status != 200)
        .all(|r| r.status == 429 && code(r) == "egress_exhausted"));
    for node in nodes {
        let meta = send(api(node).baton_meta(&baton)).await.json();
        assert_eq!(meta["usage"]["egress_used_bytes"], 1000);
        assert_eq!(meta["usage"]["reads_per_token"][0]["reads"], 4);
    }
    // A limit was hit: no extension.
    let r = send(api(&nodes[1]).baton_action(&baton, "extend", &json!({"add_seconds": 60}))).await;
    assert_eq!((r.status, code(&r).as_str()), (410, "limit_reached"));
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Burn after reading streams the whole object, then its bytes are gone; expiry is 410 at once;
/// a soft delete is 410 until restored intact; a hard delete cannot be restored; a grace that
/// runs out deletes for good.
#[tokio::test]
async fn burn_expiry_and_deletes() {
    let node = &Relay::start(&["--inline-max-bytes", "256"]);
    let big: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
    let pass = create(node, json!({"preconfig": "pass", "content_base64": base64(&big)})).await;
    assert_eq!(files_under(&node.objects_dir()).len(), 1, "the content is an object");
    let r = send(with_token(node, &token(&pass, 0)).baton_read(&id(&pass))).await;
    assert_eq!((r.status, r.body.as_ref()), (200, big.as_slice()));
    wait_until("the burned object is deleted", || {
        files_under(&node.objects_dir()).is_empty()
    })
    .await;
    assert_eq!(send(api(node).baton_read(&id(&pass))).await.status, 410);

    let brief = create(
        node,
        json!({"capacity": {"duration_seconds": 2}, "content_base64": "aGk="}),
    )
    .await;
    let expires = common::parse_ms(brief["expires_at"].as_str().unwrap());
    tokio::time::sleep(Duration::from_millis(expires.saturating_sub(common::now_ms()) + 50)).await;
    assert_eq!(send(api(node).baton_read(&id(&brief))).await.status, 410, "expired");

    let kept = create(node, json!({"preconfig": "scratchpad", "content_base64": "b25l"})).await;
    let baton = id(&kept);
    send(api(node).baton_append(&baton, "two")).await;
    let r = send(api(node).baton_delete(&baton, false)).await;
    assert_eq!(r.json()["state"], "tombstoned", "{}", r.text());
    assert_eq!(send(api(node).baton_read(&baton)).await.status, 410);
    assert_eq!(
        send(with_token(node, &token(&kept, 0)).baton_read(&baton)).await.status,
        410
    );
    let r = send(api(node).baton_action(&baton, "restore", &json!({}))).await;
    assert_eq!(
        (r.status, r.json()["state"].as_str()),
        (200, Some("active")),
        "{}",
        r.text()
    );
    assert_eq!(
        send(api(node).baton_read(&baton)).await.text(),
        "onetwo",
        "restored intact"
    );
    let r = send(api(node).baton_delete(&baton, true)).await;
    assert_eq!(r.json()["state"], "deleted");
    assert_eq!(
        send(api(node).baton_action(&baton, "restore", &json!({}))).await.status,
        410
    );

    let short = create(
        node,
        json!({"lifecycle": {"grace_seconds": 1}, "content_base64": "aGk="}),
    )
    .await;
    send(api(node).baton_delete(&id(&short), false)).await;
    let meta = || async { send(api(node).baton_meta(&id(&short))).await.json()["state"].clone() };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while meta().await != "deleted" {
        assert!(
            std::time::Instant::now() < deadline,
            "the grace ran out but it was not deleted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        send(api(node).baton_action(&id(&short), "restore", &json!({})))
            .await
            .status,
        410
    );
}

async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A read token cannot write (403 `scope`); another owner sees 404; a revoked or expired token is
/// 401; a token of one baton opens no other.
#[tokio::test]
async fn scopes_owners_and_token_lifetimes() {
    let cluster = Cluster::start(1, &[]).await;
    let node = &cluster.nodes[0];
    let b = create(
        node,
        json!({
            "write": "overwrite",
            "sharing": {"tokens": [{"scope": "read"}, {"scope": "write"}, {"scope": "read", "ttl_seconds": 1}]},
            "content_base64": "djE=",
        }),
    )
    .await;
    let (baton, read, write, brief) = (id(&b), token(&b, 0), token(&b, 1), token(&b, 2));
    let r = send(with_token(node, &read).baton_put(&baton, "no")).await;
    assert_eq!((r.status, code(&r).as_str()), (403, "scope"));
    let r = send(with_token(node, &write).baton_read(&baton)).await;
    assert_eq!((r.status, code(&r).as_str()), (403, "scope"));
    assert_eq!(send(with_token(node, &write).baton_put(&baton, "v2")).await.status, 200);
    assert_eq!(send(with_token(node, &read).baton_read(&baton)).await.text(), "v2");

    let post = |path: &str, body: Value| {
        admin(node)
            .call(reqwest::Method::POST, path)
            .content_type("application/json")
            .body(body.to_string().into())
    };
    let r = send(post(
        "/cluster/accounts",
        json!({"account_id": "acct_other", "balance_micros": 1000000}),
    ))
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let key = send(post("/cluster/accounts/acct_other/keys", json!({}))).await.json()["api_key"]
        .as_str()
        .expect("a key")
        .to_string();
    let other = api(node).bearer(&key);
    for call in [
        other.baton_read(&baton),
        other.baton_meta(&baton),
        other.baton_delete(&baton, true),
    ] {
        let r = send(call).await;
        assert_eq!(r.status, 404, "another owner's baton: {}", r.text());
    }
    // Another owner learns nothing and the node reads no body: 404 before the upload.
    let r = send(other.baton_put(&baton, vec![b'x'; 32 << 10])).await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = send(other.baton_append(&baton, "x")).await;
    assert_eq!(r.status, 404, "{}", r.text());
    // A HEAD would be counted and serve nothing: refused.
    let r = send(with_token(node, &read).call(reqwest::Method::HEAD, &format!("/v1/baton/{baton}"))).await;
    assert_eq!(r.status, 405);
    let mine = create(node, json!({"content_base64": "aGk="})).await;
    let r = send(with_token(node, &read).baton_read(&id(&mine))).await;
    assert_eq!(r.status, 404, "a token opens only its own baton");

    tokio::time::sleep(Duration::from_millis(1200)).await;
    let r = send(with_token(node, &brief).baton_read(&baton)).await;
    assert_eq!((r.status, code(&r).as_str()), (401, "unauthorized"), "expired token");
    let tokens = send(api(node).get(&format!("/v1/baton/{baton}/tokens"))).await.json();
    let read_id = b["tokens"][0]["token_id"].as_str().unwrap().to_string();
    let listed = tokens["tokens"].as_array().unwrap();
    assert_eq!(listed.len(), 3);
    assert!(
        listed.iter().all(|t| t["token"].is_null()),
        "a listing never shows the secret"
    );
    let r = send(api(node).call(reqwest::Method::DELETE, &format!("/v1/baton/{baton}/tokens/{read_id}"))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        send(with_token(node, &read).baton_read(&baton)).await.status,
        401,
        "revoked token"
    );
}

/// Entries appended through every node form one chain every node serves alike; kill -9 of a
/// single node loses no entry, token read or byte of budget.
#[tokio::test]
async fn chained_entries_across_nodes_and_kill9_loses_nothing() {
    let cluster = Cluster::start(3, &[]).await;
    let nodes = &cluster.nodes;
    let b = create(
        &nodes[0],
        json!({"preconfig": "ledger", "capacity": {"egress_bytes": 1_000_000}}),
    )
    .await;
    let baton = id(&b);
    for i in 0..12 {
        let r = send(api(&nodes[i % 3]).baton_append(&baton, format!("entry {i}"))).await;
        assert_eq!((r.status, r.json()["seq"].as_u64()), (201, Some(i as u64 + 1)));
    }
    let mut seen = Vec::new();
    for node in nodes {
        let entries = send(api(node).baton_entries(&baton, 0, 1000)).await.json()["entries"].clone();
        check_chain(entries.as_array().unwrap());
        seen.push(entries);
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]));
    let page = send(api(&nodes[2]).baton_entries(&baton, 10, 1)).await.json();
    assert_eq!(
        (page["entries"][0]["seq"].as_u64(), page["has_more"].as_bool()),
        (Some(11), Some(true))
    );
    let one = send(api(&nodes[1]).get(&format!("/v1/baton/{baton}/entries/3"))).await;
    assert_eq!(
        (one.text().as_str(), one.header("x-entry-hash")),
        ("entry 2", seen[0][2]["hash"].as_str())
    );
    let r = send(api(&nodes[0]).baton_read(&baton).header("range", "bytes=7-13")).await;
    assert_eq!((r.status, r.text().as_str()), (206, "entry 1"));
    drop(cluster);

    let mut node = Relay::start(&["--snapshot-every-entries", "100"]);
    let b = create(
        &node,
        json!({"preconfig": "scratchpad", "sharing": {"tokens": [{"scope": "read_write", "read_cap": 5}]}, "content_base64": "MA=="}),
    )
    .await;
    let (baton, t) = (id(&b), token(&b, 0));
    // Enough writes to cross a snapshot and a log purge, so recovery uses both.
    for i in 1..130 {
        assert_eq!(
            send(with_token(&node, &t).baton_append(&baton, format!(",{i}")))
                .await
                .status,
            201
        );
    }
    for _ in 0..2 {
        assert_eq!(send(with_token(&node, &t).baton_read(&baton)).await.status, 200);
    }
    let before = send(api(&node).baton_meta(&baton)).await.json();
    node.kill9();
    node.restart().expect("restart");
    let after = send(api(&node).baton_meta(&baton)).await.json();
    assert_eq!(before["usage"], after["usage"]);
    assert_eq!(before["head_hash"], after["head_hash"]);
    let expected: String = std::iter::once("0".to_string())
        .chain((1..130).map(|i| format!(",{i}")))
        .collect();
    let r = send(with_token(&node, &t).baton_read(&baton)).await;
    assert_eq!((r.status, r.text()), (200, expected));
    assert_eq!(r.header("x-baton-reads-remaining"), Some("2"));
}

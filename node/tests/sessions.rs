//! Sessions against real processes: a wallet that paid with x402 signs in with Sign-In with
//! Ethereum and manages its leases; an account opens a dashboard session with its key; a session
//! ends on every node when revoked; rotation keeps open sessions working.

mod common;
#[path = "common/x402.rs"]
mod x402kit;

use common::{client, Cluster, Relay, RelayExt, SECRET};
use serde_json::{json, Value};
use x402kit::{Facilitator, Wallet};

const SIZE: usize = 1024;

/// The public URL sign-in messages must name (a node never trusts the request's Host for it).
const PUBLIC: &str = "http://relay.test";

fn node(f: &Facilitator) -> Relay {
    let mut args: Vec<String> = f.relay_args();
    args.extend(["--public-url".to_string(), PUBLIC.to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Relay::start(&args)
}

/// The domain a sign-in message must name.
fn domain(_relay: &Relay) -> String {
    PUBLIC.trim_start_matches("http://").to_string()
}

async fn nonce(relay: &Relay) -> String {
    x402kit::siwe_nonce(relay.base()).await
}

async fn sign_in(relay: &Relay, message: &str, signature: &str) -> reqwest::Response {
    x402kit::sign_in(relay.base(), message, signature).await
}

async fn paid_lease(relay: &Relay, wallet: &Wallet) -> String {
    let price = x402kit::price(relay.base(), SIZE).await;
    let r = client()
        .post(relay.url("/api/store"))
        .header("x-size-bytes", SIZE.to_string())
        .header("x-duration-seconds", "3600")
        .header("x-file-name", "mine.bin")
        .header("x-payment", wallet.v1(&wallet.terms(price)))
        .body(vec![3u8; SIZE])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    v["lease_id"].as_str().unwrap().to_string()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn a_wallet_that_paid_signs_in_and_manages_its_leases() {
    let f = Facilitator::start(&[]);
    let relay = node(&f);
    let wallet = Wallet::new("siwe wallet");
    let lease_id = paid_lease(&relay, &wallet).await;

    let message = wallet.siwe_message(&domain(&relay), &nonce(&relay).await, 84532);
    let r = sign_in(&relay, &message, &wallet.personal_sign(&message)).await;
    assert_eq!(r.status(), 200);
    let session: Value = r.json().await.unwrap();
    assert_eq!(session["subject"], wallet.address.checksummed());
    let token = bearer(session["token"].as_str().unwrap());

    let leases: Value = client()
        .get(relay.url("/api/leases"))
        .header("authorization", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = leases.to_string();
    assert!(listed.contains(&lease_id), "{listed}");
    let r = client()
        .get(relay.url(&format!("/api/download/{lease_id}")))
        .header("authorization", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().to_vec(), vec![3u8; SIZE]);
    let r = client()
        .post(relay.url(&format!("/api/handoff/{lease_id}")))
        .header("authorization", &token)
        .json(&json!({"max_claims": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // Another wallet's session sees nothing of it.
    let other = Wallet::new("another siwe wallet");
    let message = other.siwe_message(&domain(&relay), &nonce(&relay).await, 84532);
    let r = sign_in(&relay, &message, &other.personal_sign(&message)).await;
    let other_token = bearer(r.json::<Value>().await.unwrap()["token"].as_str().unwrap());
    let r = client()
        .get(relay.url(&format!("/api/download/{lease_id}")))
        .header("authorization", &other_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // The session has no balance: a create without a payment is offered the price, before any
    // byte is read.
    let r = client()
        .post(relay.url("/api/store"))
        .header("authorization", &token)
        .header("x-size-bytes", "10")
        .header("x-file-name", "a.bin")
        .header("x-duration-seconds", "3600")
        .body(vec![0u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 402);
    // A payment beside another wallet's session, or beside an API key: two payers, refused.
    let price = x402kit::price(relay.base(), SIZE).await;
    for auth in [other_token.clone(), relay.auth()] {
        let r = client()
            .post(relay.url("/api/store"))
            .header("authorization", auth)
            .header("x-size-bytes", SIZE.to_string())
            .header("x-file-name", "a.bin")
            .header("x-duration-seconds", "3600")
            .header("x-payment", wallet.v1(&wallet.terms(price)))
            .body(vec![3u8; SIZE])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
    }

    let r = client()
        .delete(relay.url(&format!("/api/store/{lease_id}")))
        .header("authorization", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn without_a_public_url_no_wallet_signs_in() {
    let f = Facilitator::start(&[]);
    let args: Vec<String> = f.relay_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let relay = Relay::start(&args);
    let wallet = Wallet::new("no public url");
    // A message for whatever Host the request names would be a message for any site.
    let d = relay.base().trim_start_matches("http://").to_string();
    let message = wallet.siwe_message(&d, &nonce(&relay).await, 84532);
    let r = sign_in(&relay, &message, &wallet.personal_sign(&message)).await;
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn sign_ins_that_do_not_hold_are_refused() {
    let f = Facilitator::start(&[]);
    let relay = node(&f);
    let wallet = Wallet::new("siwe wallet two");
    let other = Wallet::new("siwe impostor");
    let d = domain(&relay);

    let message = wallet.siwe_message(&d, &nonce(&relay).await, 84532);
    let signature = wallet.personal_sign(&message);
    assert_eq!(sign_in(&relay, &message, &signature).await.status(), 200);
    assert_eq!(
        sign_in(&relay, &message, &signature).await.status(),
        401,
        "a nonce signs in once"
    );

    let unauthorized: Vec<(&str, String, String)> = vec![
        {
            let m = wallet.siwe_message(&d, &"ab".repeat(24), 84532);
            let s = wallet.personal_sign(&m);
            ("a nonce this node never made", m, s)
        },
        {
            let m = wallet.siwe_message("evil.example", &nonce(&relay).await, 84532);
            let s = wallet.personal_sign(&m);
            ("another domain", m, s)
        },
        {
            let m = wallet.siwe_message(&d, &nonce(&relay).await, 8453);
            let s = wallet.personal_sign(&m);
            ("another chain", m, s)
        },
        {
            let m = wallet.siwe_message(&d, &nonce(&relay).await, 84532);
            let s = other.personal_sign(&m);
            ("signed by another key", m, s)
        },
        {
            let m = wallet.siwe_message(&d, &nonce(&relay).await, 84532) + "\nExpiration Time: 2020-01-01T00:00:00Z";
            let s = wallet.personal_sign(&m);
            ("expired", m, s)
        },
        {
            let m = wallet.siwe_message(&d, &nonce(&relay).await, 84532);
            ("not a signature", m, "0x1234".into())
        },
    ];
    for (what, message, signature) in &unauthorized {
        let r = sign_in(&relay, message, signature).await;
        assert_eq!(r.status(), 401, "{what}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized", "{what}");
    }
    for (what, body) in [
        ("not JSON", "hello".to_string()),
        ("not an object", "[1]".to_string()),
        ("fields missing", r#"{"message": "x"}"#.to_string()),
        (
            "not a sign-in message",
            r#"{"message": "hello", "signature": "0x00"}"#.to_string(),
        ),
    ] {
        let r = client()
            .post(relay.url("/api/auth/siwe"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{what}");
    }
    // Garbage and tampered tokens are 401.
    let message = wallet.siwe_message(&d, &nonce(&relay).await, 84532);
    let r = sign_in(&relay, &message, &wallet.personal_sign(&message)).await;
    let token = r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string();
    let mut tampered = token.clone().into_bytes();
    let at = token.find('.').unwrap() + 5;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    for bad in ["a.b.c".to_string(), String::from_utf8(tampered).unwrap()] {
        let r = client()
            .get(relay.url("/api/leases"))
            .header("authorization", bearer(&bad))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{bad}");
    }
}

#[tokio::test]
async fn a_session_ends_on_every_node_and_rotation_keeps_it_until_then() {
    let cluster = Cluster::start(3, &[]).await;
    let n = &cluster.nodes;
    let r = client()
        .post(n[0].url("/api/auth/session"))
        .header("authorization", n[0].auth())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let token = bearer(r.json::<Value>().await.unwrap()["token"].as_str().unwrap());
    let leases = |i: usize| {
        client()
            .get(n[i].url("/api/leases"))
            .header("authorization", token.clone())
            .send()
    };
    assert_eq!(leases(1).await.unwrap().status(), 200, "any node accepts it");

    // A session cannot open another, nor administer the cluster.
    let r = client()
        .post(n[1].url("/api/auth/session"))
        .header("authorization", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client()
        .get(n[1].url("/cluster/status"))
        .header("authorization", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // Rotation: the open session goes on.
    let r = client()
        .post(n[2].url("/cluster/session-keys/rotate"))
        .header("x-cluster-secret", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(leases(2).await.unwrap().status(), 200);

    let r = client()
        .delete(n[2].url("/api/auth/session"))
        .header("authorization", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for i in 0..3 {
        let mut status = 0;
        for _ in 0..40 {
            status = leases(i).await.unwrap().status().as_u16();
            if status == 401 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(status, 401, "revoked on node {i}");
    }
}

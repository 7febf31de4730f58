//! x402 end to end against real processes: a node with x402 on, the dev facilitator (which really
//! recovers signers and keeps balances), and wallets signing real EIP-3009 authorizations.

mod common;
#[path = "common/x402.rs"]
mod x402kit;

use common::{client, files_under, Cluster, Relay, RelayExt};
use serde_json::{json, Value};
use x402kit::{decode, encode, now_s, Facilitator, Terms, Wallet, ASSET, PAY_TO};

const SIZE: usize = 2048;
const DURATION: u64 = 3600;

fn node(f: &Facilitator, extra: &[&str]) -> Relay {
    let mut args: Vec<String> = f.relay_args();
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Relay::start(&args)
}

async fn price(relay: &Relay, size: usize) -> u64 {
    x402kit::price(relay.base(), size).await
}

/// `POST /api/store` of SIZE bytes with `headers`.
async fn store(relay: &Relay, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = client()
        .post(relay.url("/api/store"))
        .header("x-size-bytes", SIZE.to_string())
        .header("x-duration-seconds", DURATION.to_string())
        .header("x-file-name", "paid.bin")
        .header("content-type", "application/octet-stream");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(vec![7u8; SIZE]).send().await.unwrap()
}

fn objects(relay: &Relay) -> usize {
    files_under(&relay.objects_dir()).len()
}

#[tokio::test]
async fn an_unpaid_create_is_offered_its_exact_price_and_nothing_is_taken() {
    let f = Facilitator::start(&[]);
    let relay = node(&f, &[]);
    let want = price(&relay, SIZE).await;

    let r = store(&relay, &[]).await;
    assert_eq!(r.status(), 402);
    let v2 = decode(r.headers()["payment-required"].to_str().unwrap());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["x402Version"], 1);
    assert!(body["error"].as_str().unwrap().contains("payment required"), "{body}");
    let a = &body["accepts"][0];
    assert_eq!(a["scheme"], "exact");
    assert_eq!(a["network"], "base-sepolia");
    assert_eq!(a["maxAmountRequired"], want.to_string());
    assert_eq!(a["payTo"], PAY_TO);
    assert_eq!(a["asset"], ASSET);
    assert_eq!(a["extra"], json!({"name": "USDC", "version": "2"}));
    assert_eq!(a["resource"], relay.url("/api/store"));
    assert_eq!(a["maxTimeoutSeconds"], 300);
    assert_eq!(v2["x402Version"], 2);
    assert_eq!(v2["accepts"][0]["network"], "eip155:84532");
    assert_eq!(v2["accepts"][0]["amount"], want.to_string());
    assert_eq!(v2["resource"]["url"], relay.url("/api/store"));

    // The other paid creates are priced the same way, by what they reserve.
    let r = client()
        .post(relay.url("/api/mailbox"))
        .header("x-capacity-bytes", "1048576")
        .header("x-duration-seconds", "86400")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 402);
    let r = client()
        .post(relay.url("/api/checkpoint"))
        .header("x-workflow-id", "wf")
        .header("x-duration-seconds", "60")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 402);
    assert_eq!(objects(&relay), 0, "no bytes taken before payment");

    // Discovery names the same terms.
    let w: Value = client()
        .get(relay.url("/.well-known/x402.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(w["payTo"], PAY_TO);
    assert_eq!(w["network"], "base-sepolia");
    assert_eq!(w["x402Versions"], json!([1, 2]));
    let paths: Vec<&str> = w["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/api/store", "/api/mailbox", "/api/checkpoint", "/v1/baton"]);
    let p: Value = client()
        .get(relay.url("/api/pricing"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(p["walletAddress"], PAY_TO);
    assert_eq!(p["paymentMethods"], json!(["api_key", "x402"]));
}

#[tokio::test]
async fn v1_and_v2_payments_buy_leases_the_wallet_owns_once() {
    let f = Facilitator::start(&[]);
    let relay = node(&f, &[]);
    let wallet = Wallet::new("payer one");
    let want = price(&relay, SIZE).await;

    let terms = wallet.terms(want);
    let header = wallet.v1(&terms);
    let r = store(&relay, &[("x-payment", &header)]).await;
    assert_eq!(r.status(), 201);
    let settled = decode(r.headers()["x-payment-response"].to_str().unwrap());
    let receipt: Value = r.json().await.unwrap();
    assert_eq!(receipt["actor_type"], "wallet");
    assert_eq!(receipt["owner"], wallet.address.checksummed());
    assert_eq!(receipt["cost_micros"], want.to_string());
    assert_eq!(settled["success"], true);
    assert_eq!(settled["payer"], wallet.address.checksummed());
    assert_eq!(settled["network"], "base-sepolia");
    assert!(settled["transaction"].as_str().unwrap().starts_with("0x"));
    assert_eq!(objects(&relay), 1);

    // The same authorization again: refused, on its nonce, and nothing more is kept.
    let r = store(&relay, &[("x-payment", &header)]).await;
    assert_eq!(r.status(), 402);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("nonce_already_used"), "{body}");

    // v2: take the offer of a 402 and accept it.
    let r = client()
        .post(relay.url("/api/mailbox"))
        .header("x-capacity-bytes", "1048576")
        .header("x-duration-seconds", "86400")
        .send()
        .await
        .unwrap();
    let offer = decode(r.headers()["payment-required"].to_str().unwrap());
    let accepted = offer["accepts"][0].clone();
    let amount: u64 = accepted["amount"].as_str().unwrap().parse().unwrap();
    let header = wallet.v2(&wallet.terms(amount), &accepted);
    let r = client()
        .post(relay.url("/api/mailbox"))
        .header("x-capacity-bytes", "1048576")
        .header("x-duration-seconds", "86400")
        .header("payment-signature", &header)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let settled = decode(r.headers()["payment-response"].to_str().unwrap());
    assert_eq!(settled["success"], true);
    let receipt: Value = r.json().await.unwrap();
    assert_eq!(receipt["owner"], wallet.address.checksummed());
    assert!(receipt["drop_url"].as_str().is_some());

    // A checkpoint, paid with v1, at the price its reservation costs.
    let checkpoint_price = {
        let r = client()
            .post(relay.url("/api/checkpoint"))
            .header("x-workflow-id", "wf-paid")
            .header("x-duration-seconds", "60")
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        body["accepts"][0]["maxAmountRequired"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let r = client()
        .post(relay.url("/api/checkpoint"))
        .header("x-workflow-id", "wf-paid")
        .header("x-duration-seconds", "60")
        .header("content-type", "application/json")
        .header("x-payment", wallet.v1(&wallet.terms(checkpoint_price)))
        .body(r#"{"step": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let receipt: Value = r.json().await.unwrap();
    assert_eq!(receipt["actor_type"], "wallet");
    assert_eq!(receipt["workflow_id"], "wf-paid");
}

/// A payment whose JSON is taken apart and changed after signing.
fn tampered(wallet: &Wallet, terms: &Terms, change: impl FnOnce(&mut Value, &mut String)) -> String {
    let (mut authorization, mut signature) = wallet.sign(terms);
    change(&mut authorization, &mut signature);
    encode(&json!({
        "x402Version": 1,
        "scheme": "exact",
        "network": "base-sepolia",
        "payload": {"signature": signature, "authorization": authorization},
    }))
}

/// The secp256k1 group order, for making a high-S twin of a signature.
const N: [u8; 32] = [
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE, 0xBA, 0xAE, 0xDC,
    0xE6, 0xAF, 0x48, 0xA0, 0x3B, 0xBF, 0xD2, 0x5E, 0x8C, 0xD0, 0x36, 0x41, 0x41,
];

/// (r, n − s, v ^ 1): the same signature with a high S.
fn high_s(signature: &str) -> String {
    let mut b = hex::decode(&signature[2..]).unwrap();
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = N[i] as i16 - b[32 + i] as i16 - borrow;
        b[32 + i] = d.rem_euclid(256) as u8;
        borrow = (d < 0) as i16;
    }
    b[64] = if b[64] == 27 { 28 } else { 27 };
    format!("0x{}", hex::encode(b))
}

#[tokio::test]
async fn bad_payments_are_refused_with_a_reason_and_take_nothing() {
    let broke = Wallet::new("broke wallet");
    let fund_broke = format!("{}=0", broke.address.checksummed());
    let f = Facilitator::start(&["--fund", &fund_broke]);
    let relay = node(&f, &[]);
    let wallet = Wallet::new("payer two");
    let other = Wallet::new("someone else");
    let want = price(&relay, SIZE).await;
    let ok = || wallet.terms(want);

    let malformed: Vec<(&str, String)> = vec![
        ("not base64", "%%%".into()),
        ("not json", encode_raw("not json")),
        ("json but not an object", encode_raw("[1,2]")),
        (
            "unknown version",
            encode(&json!({"x402Version": 3, "scheme": "exact", "network": "base-sepolia", "payload": {}})),
        ),
        (
            "no payload",
            encode(&json!({"x402Version": 1, "scheme": "exact", "network": "base-sepolia"})),
        ),
        (
            "value not a string",
            tampered(&wallet, &ok(), |a, _| a["value"] = json!(29)),
        ),
        (
            "bad address",
            tampered(&wallet, &ok(), |a, _| a["to"] = json!("0x1234")),
        ),
        ("bad nonce", tampered(&wallet, &ok(), |a, _| a["nonce"] = json!("0x12"))),
    ];
    for (what, header) in &malformed {
        let r = store(&relay, &[("x-payment", header)]).await;
        assert_eq!(r.status(), 400, "{what}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_payment", "{what}: {body}");
    }
    let both = wallet.v1(&ok());
    let r = store(&relay, &[("x-payment", &both), ("payment-signature", &both)]).await;
    assert_eq!(r.status(), 400, "both headers");

    let refused: Vec<(&str, String, &str)> = vec![
        (
            "wrong network",
            wallet.v1(&Terms {
                network: "base".into(),
                ..ok()
            }),
            "invalid_network",
        ),
        (
            "wrong payTo",
            wallet.v1(&Terms {
                to: other.address.checksummed(),
                ..ok()
            }),
            "recipient_mismatch",
        ),
        (
            "one short",
            wallet.v1(&Terms {
                value: want as u128 - 1,
                ..ok()
            }),
            "authorization_value",
        ),
        (
            "one over",
            wallet.v1(&Terms {
                value: want as u128 + 1,
                ..ok()
            }),
            "authorization_value",
        ),
        (
            "expired",
            wallet.v1(&Terms {
                valid_before: now_s() + 3,
                ..ok()
            }),
            "valid_before",
        ),
        (
            "not yet valid",
            wallet.v1(&Terms {
                valid_after: now_s() + 60,
                ..ok()
            }),
            "valid_after",
        ),
        (
            "tampered value",
            {
                let t = Terms {
                    value: want as u128 - 1,
                    ..ok()
                };
                tampered(&wallet, &t, |a, _| a["value"] = json!(want.to_string()))
            },
            "signature",
        ),
        ("high S", tampered(&wallet, &ok(), |_, s| *s = high_s(s)), "signature"),
        (
            "signed by another key",
            tampered(&other, &ok(), |a, _| a["from"] = json!(wallet.address.checksummed())),
            "signature",
        ),
        (
            "another token domain",
            wallet.v1(&Terms {
                domain_name: "USD Coin".into(),
                ..ok()
            }),
            "signature",
        ),
        (
            "facilitator: no funds",
            broke.v1(&broke.terms(want)),
            "insufficient_funds",
        ),
    ];
    for (what, header, reason) in &refused {
        let r = store(&relay, &[("x-payment", header)]).await;
        assert_eq!(r.status(), 402, "{what}");
        assert!(r.headers().contains_key("payment-required"), "{what}");
        let body: Value = r.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains(reason), "{what}: {body}");
        assert_eq!(body["accepts"][0]["maxAmountRequired"], want.to_string(), "{what}");
    }
    assert_eq!(objects(&relay), 0, "no refused payment kept bytes");

    // An API key still works beside x402, and a wrong one is a 401, not a 402.
    let r = store(&relay, &[("authorization", "Bearer rs_live_wrong")]).await;
    assert_eq!(r.status(), 401);
    let auth = relay.auth();
    let r = store(&relay, &[("authorization", &auth)]).await;
    assert_eq!(r.status(), 201);
    let receipt: Value = r.json().await.unwrap();
    assert_eq!(receipt["actor_type"], "account");
}

fn encode_raw(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
async fn a_payment_that_does_not_settle_leaves_no_lease() {
    let wallet = Wallet::new("settles never");
    let refuse = wallet.address.checksummed();
    let f = Facilitator::start(&["--refuse-settle", &refuse]);
    let relay = node(&f, &["--sweep-interval-ms", "100"]);
    let want = price(&relay, SIZE).await;

    let r = store(&relay, &[("x-payment", &wallet.v1(&wallet.terms(want)))]).await;
    assert_eq!(r.status(), 402);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("settlement_refused"), "{body}");
    // The lease was voided in the ledger, so its bytes are collected.
    for _ in 0..100 {
        if objects(&relay) == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(objects(&relay), 0, "the voided lease's bytes are deleted");
}

#[tokio::test]
async fn a_facilitator_that_does_not_answer_is_a_503_and_nothing_is_written() {
    // A port nobody listens on: connection refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let relay = Relay::start(&[
        "--x402-facilitator-url",
        &dead,
        "--x402-pay-to",
        PAY_TO,
        "--x402-facilitator-timeout-ms",
        "500",
    ]);
    let wallet = Wallet::new("payer three");
    let want = price(&relay, SIZE).await;
    let r = store(&relay, &[("x-payment", &wallet.v1(&wallet.terms(want)))]).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(objects(&relay), 0);
}

#[tokio::test]
async fn three_nodes_take_payments_and_refuse_a_replay_on_every_node() {
    let f = Facilitator::start(&[]);
    let args = f.relay_args();
    let extra: Vec<&str> = args.iter().map(String::as_str).collect();
    let cluster = Cluster::start(3, &extra).await;
    let wallet = Wallet::new("payer four");
    let want = price(&cluster.nodes[0], SIZE).await;
    let mut headers = Vec::new();
    for node in &cluster.nodes {
        let header = wallet.v1(&wallet.terms(want));
        let r = store(node, &[("x-payment", &header)]).await;
        assert_eq!(r.status(), 201, "through {}", node.base());
        headers.push(header);
    }
    // Each authorization, replayed through every other node, is refused.
    for (i, header) in headers.iter().enumerate() {
        let other = &cluster.nodes[(i + 1) % 3];
        let r = store(other, &[("x-payment", header)]).await;
        assert_eq!(r.status(), 402, "replay through {}", other.base());
    }
}

/// `POST /api/store` paid by `header` under Idempotency-Key `key`, with a client timeout.
async fn keyed_store(
    relay: &Relay,
    header: &str,
    key: &str,
    timeout_ms: u64,
) -> Result<reqwest::Response, reqwest::Error> {
    client()
        .post(relay.url("/api/store"))
        .timeout(std::time::Duration::from_millis(timeout_ms))
        .header("x-size-bytes", SIZE.to_string())
        .header("x-duration-seconds", DURATION.to_string())
        .header("x-file-name", "paid.bin")
        .header("idempotency-key", key)
        .header("x-payment", header)
        .body(vec![7u8; SIZE])
        .send()
        .await
}

#[tokio::test]
async fn a_settlement_without_a_clear_answer_is_settled_later_never_voided() {
    // The facilitator moves the money at once but answers after 1.5 s; the node waits 0.5 s.
    let f = Facilitator::start(&["--settle-answer-delay-ms", "1500"]);
    let relay = node(
        &f,
        &[
            "--x402-facilitator-timeout-ms",
            "500",
            "--x402-settle-retry-seconds",
            "2",
        ],
    );
    let wallet = Wallet::new("payer five");
    let want = price(&relay, SIZE).await;
    let header = wallet.v1(&wallet.terms(want));
    let r = keyed_store(&relay, &header, "k-unknown", 30_000).await.unwrap();
    assert_eq!(r.status(), 503, "the settlement's outcome is not known yet");
    assert!(r.headers().contains_key("retry-after"));
    // The leader settles it again: "already used" after our own attempt is our settlement.
    let mut last = None;
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let r = keyed_store(&relay, &header, "k-unknown", 30_000).await.unwrap();
        if r.status() == 201 {
            last = Some(r);
            break;
        }
        assert_eq!(r.status(), 503);
    }
    let r = last.expect("settled by the reconciler");
    let settled = decode(r.headers()["x-payment-response"].to_str().unwrap());
    assert_eq!(settled["success"], true);
    assert_eq!(objects(&relay), 1, "the paid lease was kept");

    // The same key with another authorization is another request.
    let other = wallet.v1(&wallet.terms(want));
    let r = keyed_store(&relay, &other, "k-unknown", 30_000).await.unwrap();
    assert_eq!(r.status(), 422);
}

#[tokio::test]
async fn a_client_that_hangs_up_does_not_stop_the_settlement() {
    let f = Facilitator::start(&["--settle-answer-delay-ms", "800"]);
    let relay = node(&f, &[]);
    let wallet = Wallet::new("payer six");
    let want = price(&relay, SIZE).await;
    let header = wallet.v1(&wallet.terms(want));
    // Gone long before the settlement answers.
    assert!(keyed_store(&relay, &header, "k-gone", 300).await.is_err());
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    // The retry finds it settled by the request that took it: a receipt with its transaction.
    let r = keyed_store(&relay, &header, "k-gone", 30_000).await.unwrap();
    assert_eq!(r.status(), 201);
    let settled = decode(r.headers()["x-payment-response"].to_str().unwrap());
    assert!(settled["transaction"].as_str().unwrap().starts_with("0x"), "{settled}");
    assert_eq!(objects(&relay), 1);
}

#[tokio::test]
async fn junk_in_payment_headers_is_never_a_5xx() {
    let f = Facilitator::start(&[]);
    let relay = node(&f, &[]);
    let junk: Vec<String> = vec![
        String::new(),
        "=".into(),
        "a".repeat(20_000),
        encode_raw("{\"x402Version\": 1e400}"),
        encode_raw(&"[".repeat(5000)),
        encode_raw("{\"x402Version\":2,\"accepted\":{\"scheme\":\"exact\",\"network\":7}}"),
        encode_raw("{\"x402Version\":1,\"scheme\":\"exact\",\"network\":\"base-sepolia\",\"payload\":{\"signature\":\"0x\",\"authorization\":{\"from\":\"0x0000000000000000000000000000000000000000\",\"to\":\"0x0000000000000000000000000000000000000000\",\"value\":\"-1\",\"validAfter\":\"0\",\"validBefore\":\"0\",\"nonce\":\"0x00\"}}}"),
    ];
    let mut failures = Vec::new();
    for path in ["/api/store", "/api/mailbox", "/api/checkpoint"] {
        for header in ["x-payment", "payment-signature"] {
            for value in &junk {
                let r = client()
                    .post(relay.url(path))
                    .header("x-size-bytes", "10")
                    .header("x-capacity-bytes", "10")
                    .header("x-workflow-id", "wf")
                    .header("x-duration-seconds", "60")
                    .header(header, value)
                    .body("{}")
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                if status >= 500 || !(body["code"].is_string() || body["error"]["code"].is_string()) {
                    failures.push(format!("{path} {header} {:.40}: {status} {body}", value));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(objects(&relay), 0);
}

/// A baton bought with x402: the unpaid create is offered the quote's price; the paid one is the
/// wallet's, charged once, and a replayed authorization buys nothing.
#[tokio::test]
async fn a_wallet_buys_a_baton_at_its_quote() {
    let f = Facilitator::start(&[]);
    let relay = node(&f, &[]);
    let wallet = Wallet::new("baton buyer");
    // A pass that stays after its read, so it can be extended after.
    let shape = json!({
        "preconfig": "pass",
        "capacity": {"size_bytes": 4096, "duration_seconds": 3600},
        "lifecycle": {"burn_after_reading": false},
    });
    let quote: Value = client()
        .post(relay.url("/v1/baton/quote"))
        .json(&shape)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut body = shape.clone();
    body["content_base64"] = json!("c2VjcmV0");
    let r = client().post(relay.url("/v1/baton")).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 402);
    let offer: Value = r.json().await.unwrap();
    assert_eq!(
        offer["accepts"][0]["maxAmountRequired"],
        quote["price_micros"].to_string()
    );
    assert_eq!(offer["accepts"][0]["resource"], relay.url("/v1/baton"));
    let header = wallet.v1(&wallet.terms(quote["price_micros"].as_u64().unwrap()));
    let r = client()
        .post(relay.url("/v1/baton"))
        .header("x-payment", &header)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        decode(r.headers()["x-payment-response"].to_str().unwrap())["success"],
        true
    );
    let receipt: Value = r.json().await.unwrap();
    assert_eq!(receipt["owner"], wallet.address.checksummed());
    assert_eq!(receipt["price_micros"], quote["price_micros"]);
    let token = receipt["tokens"][0]["token"].as_str().unwrap();
    let baton = receipt["baton_id"].as_str().unwrap();
    let read = client()
        .get(relay.url(&format!("/v1/baton/{baton}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(read.text().await.unwrap(), "secret");
    let r = client()
        .post(relay.url("/v1/baton"))
        .header("x-payment", &header)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 402, "an authorization pays once");

    // The wallet grows its baton: offered the extension's price, then paid with x402.
    let extend = json!({"add_seconds": 3600});
    let url = relay.url(&format!("/v1/baton/{baton}/extend"));
    let r = client().post(&url).json(&extend).send().await.unwrap();
    assert_eq!(r.status(), 402);
    let offer: Value = r.json().await.unwrap();
    let price: u64 = offer["accepts"][0]["maxAmountRequired"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let paid = wallet.v1(&wallet.terms(price));
    let send = |payment: String| {
        client()
            .post(&url)
            .header("x-payment", payment)
            .header("idempotency-key", "grow-1")
            .json(&extend)
            .send()
    };
    let r = send(paid.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        decode(r.headers()["x-payment-response"].to_str().unwrap())["success"],
        true
    );
    let grown: Value = r.json().await.unwrap();
    assert_eq!(grown["price_micros"], price);
    assert_eq!(grown["shape"]["capacity"]["duration_seconds"], 7200);
    let before = x402kit_ms(receipt["expires_at"].as_str().unwrap());
    assert_eq!(x402kit_ms(grown["expires_at"].as_str().unwrap()), before + 3_600_000);
    // A retry with the same key and payment is the same extension, settled once; the same key
    // with another payment is refused, and that payment is never settled.
    let again = send(paid.clone()).await.unwrap();
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["expires_at"], grown["expires_at"]);
    let r = send(wallet.v1(&wallet.terms(price))).await.unwrap();
    assert_eq!(r.status(), 422, "{}", r.text().await.unwrap());
    // Another wallet's payment extends nothing of it.
    let other = Wallet::new("not the owner");
    let r = client()
        .post(&url)
        .header("x-payment", other.v1(&other.terms(price)))
        .json(&extend)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

fn x402kit_ms(ts: &str) -> u64 {
    common::parse_ms(ts)
}

//! Accounts through the admin API and `relay account`: create, top up, issue, list and revoke
//! keys; the billing history of an account and of a wallet.

mod common;
#[path = "common/x402.rs"]
mod x402kit;

use common::{client, Cluster, Relay, RelayExt, SECRET};
use serde_json::{json, Value};
use x402kit::{Facilitator, Wallet};

async fn admin(relay: &Relay, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = client()
        .request(method, relay.url(path))
        .header("x-cluster-secret", SECRET);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn store(relay: &Relay, auth: &str) -> reqwest::Response {
    client()
        .post(relay.url("/api/store"))
        .header("authorization", auth)
        .header("x-size-bytes", "100")
        .header("x-duration-seconds", "3600")
        .header("x-file-name", "a.bin")
        .body(vec![1u8; 100])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_operator_runs_accounts_and_their_keys_and_agents_see_their_bills() {
    let cluster = Cluster::start(1, &[]).await;
    let relay = &cluster.nodes[0];
    use reqwest::Method as M;

    let (s, a) = admin(
        relay,
        M::POST,
        "/cluster/accounts",
        Some(json!({"account_id": "acct_team", "balance_micros": 1000})),
    )
    .await;
    assert_eq!(s, 201, "{a}");
    assert_eq!(a["balance_micros"], "1000");
    let (s, _) = admin(
        relay,
        M::POST,
        "/cluster/accounts",
        Some(json!({"account_id": "acct_team"})),
    )
    .await;
    assert_eq!(s, 409, "an id is taken once");
    for bad in [
        json!({"account_id": "0xabc"}),
        json!({"account_id": "has space"}),
        json!({"account_id": ""}),
        json!({"balance_micros": -1}),
        json!({"nope": 1}),
        json!([1]),
    ] {
        let (s, v) = admin(relay, M::POST, "/cluster/accounts", Some(bad.clone())).await;
        assert!(s == 400 || s == 422, "{bad}: {s} {v}");
    }
    let (s, generated) = admin(relay, M::POST, "/cluster/accounts", Some(json!({}))).await;
    assert_eq!(s, 201);
    assert!(generated["account_id"].as_str().unwrap().starts_with("acct_"));

    // Only admins: no credentials 401, an agent's key 403.
    let r = client()
        .post(relay.url("/cluster/accounts"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client()
        .post(relay.url("/cluster/accounts"))
        .header("authorization", relay.auth())
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let (s, issued) = admin(relay, M::POST, "/cluster/accounts/acct_team/keys", None).await;
    assert_eq!(s, 201);
    let key = issued["api_key"].as_str().unwrap().to_string();
    assert!(key.starts_with("rs_live_"));
    let auth = format!("Bearer {key}");
    let r = store(relay, &auth).await;
    assert_eq!(r.status(), 201);
    let receipt: Value = r.json().await.unwrap();
    let cost: u64 = receipt["cost_micros"].as_str().unwrap().parse().unwrap();

    let bill: Value = client()
        .get(relay.url("/api/billing"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(bill["count"], 1, "{bill}");
    let item = &bill["items"][0];
    assert_eq!(item["lease_id"], receipt["lease_id"]);
    assert_eq!(item["amount_micros"], cost.to_string());
    assert_eq!(item["balance_after_micros"], (1000 - cost).to_string());
    assert_eq!(item["payment_method"], "balance");
    // Another account's bill is its own.
    let other: Value = client()
        .get(relay.url("/api/billing?limit=5"))
        .header("authorization", relay.auth())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!other.to_string().contains(receipt["lease_id"].as_str().unwrap()));
    for bad in ["limit=0", "limit=abc", "cursor=zz"] {
        let r = client()
            .get(relay.url(&format!("/api/billing?{bad}")))
            .header("authorization", &auth)
            .send()
            .await
            .unwrap();
        assert!(r.status() == 400 || r.status() == 422, "{bad}");
    }

    let (s, t) = admin(
        relay,
        M::POST,
        "/cluster/accounts/acct_team/topup",
        Some(json!({"amount_micros": 500})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(t["balance_micros"], (1500 - cost).to_string());
    let (s, _) = admin(
        relay,
        M::POST,
        "/cluster/accounts/acct_nobody/topup",
        Some(json!({"amount_micros": 5})),
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = admin(
        relay,
        M::POST,
        "/cluster/accounts/acct_team/topup",
        Some(json!({"amount_micros": 0})),
    )
    .await;
    assert_eq!(s, 422);
    let (s, b) = admin(relay, M::GET, "/cluster/accounts/acct_team", None).await;
    assert_eq!(
        (s, b["balance_micros"].clone()),
        (200, json!((1500 - cost).to_string()))
    );

    let (s, keys) = admin(relay, M::GET, "/cluster/accounts/acct_team/keys", None).await;
    assert_eq!(s, 200);
    assert_eq!(keys["items"][0]["key_id"], issued["key_id"]);
    assert!(!keys.to_string().contains(&key), "a listing never shows the key");
    let key_id = issued["key_id"].as_str().unwrap();
    let (s, _) = admin(
        relay,
        M::DELETE,
        &format!("/cluster/accounts/acct_other/keys/{key_id}"),
        None,
    )
    .await;
    assert_eq!(s, 404, "only under its own account");
    // A dashboard session the key opened ends with the key.
    let r = client()
        .post(relay.url("/api/auth/session"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    let session = format!("Bearer {}", r.json::<Value>().await.unwrap()["token"].as_str().unwrap());
    let bill = |who: String| {
        client()
            .get(relay.url("/api/billing"))
            .header("authorization", who)
            .send()
    };
    assert_eq!(bill(session.clone()).await.unwrap().status(), 200);
    let (s, _) = admin(
        relay,
        M::DELETE,
        &format!("/cluster/accounts/acct_team/keys/{key_id}"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(store(relay, &auth).await.status(), 401, "a revoked key acts for no one");
    assert_eq!(bill(session).await.unwrap().status(), 401, "nor do its sessions");

    // The founding node's own key is listed, so it can be revoked too.
    let (s, keys) = admin(relay, M::GET, "/cluster/accounts/acct_bootstrap/keys", None).await;
    assert_eq!(s, 200);
    assert_eq!(keys["items"].as_array().unwrap().len(), 1, "{keys}");
}

#[tokio::test]
async fn the_account_cli_speaks_to_the_admin_api() {
    let cluster = Cluster::start(1, &[]).await;
    let relay = &cluster.nodes[0];
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_relay"))
            .arg("account")
            .args(args)
            .args(["--url", relay.base(), "--cluster-secret", SECRET])
            .output()
            .unwrap()
    };
    let out = run(&["create", "--id", "acct_cli", "--balance-micros", "77"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["balance_micros"], "77");
    let out = run(&["topup", "acct_cli", "--micros", "3"]);
    assert!(out.status.success());
    let out = run(&["balance", "acct_cli"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["balance_micros"], "80");
    let out = run(&["issue-key", "acct_cli"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["api_key"].as_str().unwrap().starts_with("rs_live_"));
    let out = run(&["balance", "acct_missing"]);
    assert!(!out.status.success(), "a missing account fails the command");
}

#[tokio::test]
async fn a_wallet_sees_its_x402_charges() {
    let f = Facilitator::start(&[]);
    let mut args = f.relay_args();
    args.extend(["--public-url".to_string(), "http://relay.test".to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let relay = Relay::start(&args);
    let wallet = Wallet::new("billing wallet");
    let price = x402kit::price(relay.base(), 100).await;
    let r = client()
        .post(relay.url("/api/store"))
        .header("x-size-bytes", "100")
        .header("x-duration-seconds", "3600")
        .header("x-file-name", "w.bin")
        .header("x-payment", wallet.v1(&wallet.terms(price)))
        .body(vec![1u8; 100])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let nonce = x402kit::siwe_nonce(relay.base()).await;
    let message = wallet.siwe_message("relay.test", &nonce, 84532);
    let session: Value = x402kit::sign_in(relay.base(), &message, &wallet.personal_sign(&message))
        .await
        .json()
        .await
        .unwrap();
    let bill: Value = client()
        .get(relay.url("/api/billing"))
        .header(
            "authorization",
            format!("Bearer {}", session["token"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(bill["items"][0]["payment_method"], "x402", "{bill}");
    assert_eq!(bill["items"][0]["amount_micros"], price.to_string());
    assert_eq!(bill["items"][0]["balance_after_micros"], Value::Null);
}

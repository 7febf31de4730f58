//! Prices are the cluster's, in the ledger: nodes started with different rate flags still quote
//! and charge one rate, and an admin's `POST /cluster/pricing` changes it on every node at once.

mod common;

use common::{client, ok_json, Cluster, Relay, RelayExt};
use relay_testkit::Client;
use serde_json::{json, Value};

const GIB: u64 = 1 << 30;
const DAY_S: u64 = 86_400;

/// What every node says: its `/api/pricing` rate and its quote for one GiB-day.
async fn quotes(cluster: &Cluster, http: &reqwest::Client) -> Vec<(u64, String)> {
    let mut seen = Vec::new();
    for node in &cluster.nodes {
        let pricing = ok_json(node.client(http.clone()).pricing(), "GET /api/pricing").await;
        let quote = ok_json(node.client(http.clone()).quote(GIB, DAY_S), "GET /api/quote").await;
        seen.push((
            pricing["rateMicrosPerGbDay"].as_u64().unwrap(),
            quote["cost_micros"].as_str().unwrap().to_string(),
        ));
    }
    seen
}

/// Creates a checkpoint reserving 1 GiB for a day through each node; what each was charged.
async fn charges(cluster: &Cluster, http: &reqwest::Client, tag: &str) -> Vec<String> {
    let mut charged = Vec::new();
    for (i, node) in cluster.nodes.iter().enumerate() {
        let mailbox = http
            .post(node.url("/api/mailbox"))
            .header("authorization", node.auth())
            .header("x-capacity-bytes", "1073741824")
            .header("x-duration-seconds", "86400")
            .header("idempotency-key", format!("{tag}-{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(mailbox.status(), 201);
        let receipt: Value = mailbox.json().await.unwrap();
        charged.push(receipt["cost_micros"].as_str().unwrap().to_string());
    }
    charged
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_ledger_rate_on_every_node() {
    // The founder's flags set the cluster's prices; the others' flags say otherwise.
    let cluster = Cluster::start_each(3, &["--mailbox-max-capacity-bytes", "2147483648"], &mut |i, _| {
        vec!["--rate-micros-per-gb-day".into(), ["2000", "7000", "9000"][i].into()]
    })
    .await;
    let http = client();
    assert_eq!(quotes(&cluster, &http).await, vec![(2000, "2000".to_string()); 3]);
    assert_eq!(charges(&cluster, &http, "before").await, vec!["2000"; 3]);

    // Agents cannot change prices, and bad changes are refused whole.
    let founder = &cluster.nodes[0];
    let post = |auth: String, body: Value| {
        let call = Client::new(http.clone(), cluster.nodes[1].base())
            .set_pricing(&body)
            .header("authorization", &auth);
        async move {
            let r = call.send().await.unwrap();
            (r.status, serde_json::from_slice::<Value>(&r.body).unwrap())
        }
    };
    let (status, body) = post(founder.auth(), json!({"rate_micros_per_gb_day": 1})).await;
    assert_eq!(status, 403, "{body}");
    for bad in [
        json!({}),
        json!({"rate_micros_per_gb_day": -1}),
        json!({"rate_micros_per_gb_day": "5000"}),
        json!({"rate_micros_per_gb_day": 5000, "currency": "EUR"}),
        json!({"rate_micros_per_gb_day": 1_000_000_000_001u64}),
    ] {
        let (status, body) = post(founder.admin_auth(), bad.clone()).await;
        assert!(status == 400 || status == 422, "{bad} → {status} {body}");
        assert!(body["error"]["code"].is_string(), "{body}");
    }
    assert_eq!(quotes(&cluster, &http).await, vec![(2000, "2000".to_string()); 3]);

    // An admin changes the rate through a follower: every node quotes and charges it at once.
    let (status, body) = post(founder.admin_auth(), json!({"rate_micros_per_gb_day": 5000})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rate_micros_per_gb_day"], 5000);
    assert_eq!(body["min_charge_micros"], 29, "the figure not given is kept");
    assert_eq!(quotes(&cluster, &http).await, vec![(5000, "5000".to_string()); 3]);
    assert_eq!(charges(&cluster, &http, "after").await, vec!["5000"; 3]);
}

async fn set_prices(relay: &Relay, http: &reqwest::Client, body: Value) -> (u16, Value) {
    let admin = Client::new(http.clone(), relay.base()).bearer(&relay.admin_key().unwrap());
    let r = admin.set_pricing(&body).send().await.unwrap();
    (r.status, serde_json::from_slice(&r.body).unwrap())
}

/// Two admins changing different figures at once both land (the ledger merges them); a body that
/// is not a JSON object is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_changes_of_different_figures_both_land() {
    let relay = Relay::start(&[]);
    let http = client();
    for round in 0..10u64 {
        let (a, b) = tokio::join!(
            set_prices(&relay, &http, json!({"rate_micros_per_gb_day": 5000 + round})),
            set_prices(&relay, &http, json!({"min_charge_micros": 70 + round})),
        );
        assert_eq!((a.0, b.0), (200, 200));
        let pricing = relay.get_json(&http, "/api/pricing").await;
        assert_eq!(pricing["rateMicrosPerGbDay"], 5000 + round);
        assert_eq!(pricing["minChargeMicros"], 70 + round);
    }
    let (status, body) = set_prices(&relay, &http, json!([2000, 30])).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = set_prices(&relay, &http, json!({"min_charge_micros": 0})).await;
    assert_eq!(status, 422, "{body}");
}

/// `relay_bytes_uploaded_total` as the node's metrics say now.
async fn bytes_uploaded(relay: &Relay, http: &reqwest::Client) -> u64 {
    let text = relay.metrics(http).await;
    text.lines()
        .find(|l| l.starts_with("relay_bytes_uploaded_total"))
        .and_then(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .unwrap_or(0)
}

/// A key the ledger already answered does not let a different, unaffordable purchase skip the
/// balance check: it is refused before its body is read.
#[tokio::test]
async fn a_used_key_does_not_skip_the_balance_check() {
    let relay = Relay::start(&["--bootstrap-balance-usdc", "1"]);
    let http = client();
    let store = |size: usize| {
        http.post(relay.url("/api/store"))
            .header("authorization", relay.auth())
            .header("idempotency-key", "k1")
            .header("x-file-name", "a.bin")
            .header("x-size-bytes", size.to_string())
            .header("x-duration-seconds", "60")
            .body(vec![7u8; size])
            .send()
    };
    assert_eq!(store(3).await.unwrap().status(), 201);
    // A year-long day rate that one USDC cannot pay for 5 MB.
    let (status, _) = set_prices(&relay, &http, json!({"rate_micros_per_gb_day": 1_000_000_000_000u64})).await;
    assert_eq!(status, 200);
    let before = bytes_uploaded(&relay, &http).await;
    // Only the head is sent: the answer must come without the body.
    let head = format!(
        "POST /api/store HTTP/1.1\r\nhost: x\r\nauthorization: {}\r\nidempotency-key: k1\r\n\
         x-file-name: a.bin\r\nx-size-bytes: 5000000\r\nx-duration-seconds: 60\r\n\
         content-length: 5000000\r\n\r\n",
        relay.auth()
    );
    let answer = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(relay.http_addr()).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("answered without the body")
            .unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert!(answer.starts_with("HTTP/1.1 402"), "{answer}");
    let after = bytes_uploaded(&relay, &http).await;
    assert_eq!(after, before, "no bytes were taken");
    // The same purchase again is the replay, whatever the prices are now.
    assert_eq!(store(3).await.unwrap().status(), 201);
}

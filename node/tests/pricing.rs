//! Prices are the cluster's, in the ledger: nodes started with different rate flags still quote
//! and charge one rate, and an admin's `POST /cluster/pricing` changes it on every node at once.

mod common;

use common::{client, Cluster};
use serde_json::{json, Value};

const GIB_DAY: &str = "size_bytes=1073741824&duration_seconds=86400";

/// What every node says: its `/api/pricing` rate and its quote for one GiB-day.
async fn quotes(cluster: &Cluster, http: &reqwest::Client) -> Vec<(u64, String)> {
    let mut seen = Vec::new();
    for node in &cluster.nodes {
        let pricing = node.get_json(http, "/api/pricing").await;
        let quote = node.get_json(http, &format!("/api/quote?{GIB_DAY}")).await;
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
        let http = http.clone();
        let url = cluster.nodes[1].url("/cluster/pricing");
        async move {
            let r = http
                .post(url)
                .header("authorization", auth)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
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

//! `relay cluster status|promote|remove` and `relay account …`: call a member's `/cluster/…` API
//! and print its JSON answer.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::config::{AccountAction, AccountArgs, AdminConn, ClusterAction, ClusterArgs};
use crate::server::NodeError;

pub async fn run(args: ClusterArgs) -> Result<(), NodeError> {
    let (method, path, body) = match &args.action {
        ClusterAction::Status => (Method::GET, "/cluster/status".to_string(), None),
        ClusterAction::Promote { node_id } => (
            Method::POST,
            "/cluster/promote".to_string(),
            Some(json!({"node_id": node_id})),
        ),
        ClusterAction::Remove { node_id } => (
            Method::POST,
            "/cluster/remove".to_string(),
            Some(json!({"node_id": node_id})),
        ),
    };
    call(&args.conn, method, &path, body).await
}

pub async fn account(args: AccountArgs) -> Result<(), NodeError> {
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
    let (method, path, body) = match &args.action {
        AccountAction::Create { id, balance_micros } => (
            Method::POST,
            "/cluster/accounts".to_string(),
            Some(json!({"account_id": id, "balance_micros": balance_micros})),
        ),
        AccountAction::Balance { account_id } => (Method::GET, format!("/cluster/accounts/{}", enc(account_id)), None),
        AccountAction::Topup { account_id, micros } => (
            Method::POST,
            format!("/cluster/accounts/{}/topup", enc(account_id)),
            Some(json!({"amount_micros": micros})),
        ),
        AccountAction::IssueKey { account_id } => (
            Method::POST,
            format!("/cluster/accounts/{}/keys", enc(account_id)),
            None,
        ),
        AccountAction::Keys { account_id } => {
            (Method::GET, format!("/cluster/accounts/{}/keys", enc(account_id)), None)
        }
        AccountAction::RevokeKey { account_id, key_id } => (
            Method::DELETE,
            format!("/cluster/accounts/{}/keys/{}", enc(account_id), enc(key_id)),
            None,
        ),
    };
    call(&args.conn, method, &path, body).await
}

async fn call(conn: &AdminConn, method: Method, path: &str, body: Option<Value>) -> Result<(), NodeError> {
    // The cluster secret is a header reqwest would carry across a redirect, and a proxy would
    // see it: neither is followed nor used.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(70))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .map_err(|e| NodeError::Admin(e.to_string()))?;
    let base = conn.url.trim_end_matches('/');
    let mut request = client.request(method, format!("{base}{path}"));
    if let Some(body) = body {
        request = request.json(&body);
    }
    // The admin key first: it can be revoked, the cluster secret cannot.
    let request = match (&conn.admin_key, &conn.cluster_secret) {
        (Some(key), _) => request.bearer_auth(key),
        (None, Some(secret)) => request.header("x-cluster-secret", secret),
        (None, None) => return Err(NodeError::Admin("give --cluster-secret or --admin-key".into())),
    };
    let response = request
        .send()
        .await
        .map_err(|e| NodeError::Admin(format!("{base}: {e}")))?;
    let status = response.status();
    let body = response.text().await.map_err(|e| NodeError::Admin(e.to_string()))?;
    let pretty = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or(body);
    println!("{pretty}");
    if status.is_success() {
        Ok(())
    } else {
        Err(NodeError::Admin(format!("{base} answered {status}")))
    }
}

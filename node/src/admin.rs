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
    if let AccountAction::Balance { account_id: None } | AccountAction::Billing = &args.action {
        // The default URL defers to the profile file, as every other client command does.
        let url = Some(args.conn.url.clone()).filter(|u| u != crate::client::http::DEFAULT_URL);
        let conn = crate::client::ClientConn {
            url,
            key: args.key.clone(),
            ca: args.conn.ca.clone(),
            insecure_http: args.conn.insecure_http,
            json: args.json,
            ..Default::default()
        };
        let billing = matches!(args.action, AccountAction::Billing);
        return crate::client::commands::own_account(&conn, billing)
            .await
            .map_err(|e| NodeError::Client(e.exit_code(), e.to_string()));
    }
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
    let (method, path, body) = match &args.action {
        AccountAction::Create { id, balance_micros } => (
            Method::POST,
            "/cluster/accounts".to_string(),
            Some(json!({"account_id": id, "balance_micros": balance_micros})),
        ),
        AccountAction::Balance {
            account_id: Some(account_id),
        } => (Method::GET, format!("/cluster/accounts/{}", enc(account_id)), None),
        AccountAction::Balance { account_id: None } | AccountAction::Billing => unreachable!("the caller's own, above"),
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

/// An admin client of one member: its URL, the caller's credential, the CA it trusts.
pub struct Admin {
    client: reqwest::Client,
    base: String,
    conn: AdminConn,
}

impl Admin {
    pub fn connect(conn: &AdminConn, timeout: Duration) -> Result<Admin, NodeError> {
        if conn.admin_key.is_none() && conn.cluster_secret.is_none() {
            return Err(NodeError::Admin(
                "give --cluster-secret (or RELAY_CLUSTER_SECRET: the founding node keeps it in <data-dir>/cluster-secret) \
                 or --admin-key (RELAY_ADMIN_KEY: printed by the founding node, kept in <data-dir>/admin-api-key)"
                    .into(),
            ));
        }
        crate::net_args::check_secret_url(&conn.url, conn.insecure_http, "--insecure-http")
            .map_err(NodeError::Admin)?;
        let ca = match &conn.ca {
            Some(path) => {
                Some(std::fs::read(path).map_err(|e| NodeError::Admin(format!("--ca {}: {e}", path.display())))?)
            }
            None => None,
        };
        // The cluster secret is a header reqwest would carry across a redirect, and a proxy would
        // see it: neither is followed nor used.
        let client = crate::net_args::https_client(ca.as_deref())
            .map_err(NodeError::Admin)?
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| NodeError::Admin(e.to_string()))?;
        Ok(Admin {
            client,
            base: conn.url.trim_end_matches('/').to_string(),
            conn: conn.clone(),
        })
    }

    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.client.request(method, format!("{}{path}", self.base));
        // The admin key first: it can be revoked, the cluster secret cannot.
        match (&self.conn.admin_key, &self.conn.cluster_secret) {
            (Some(key), _) => request.bearer_auth(key),
            (_, Some(secret)) => request.header("x-cluster-secret", secret),
            (None, None) => request,
        }
    }

    /// A GET that must succeed; the error quotes the node's answer.
    pub async fn get(&self, path: &str) -> Result<reqwest::Response, NodeError> {
        self.get_optional(path)
            .await?
            .ok_or_else(|| NodeError::Admin(format!("{}{path}: 404", self.base)))
    }

    /// An object for a backup: `None` when it is gone (404: its lease ended since the state
    /// was copied) or missing from the store (502 integrity_error), so the backup records it and
    /// goes on; any other failure stops it.
    pub async fn get_object(&self, path: &str) -> Result<Option<reqwest::Response>, NodeError> {
        let response = self
            .request(Method::GET, path)
            .send()
            .await
            .map_err(|e| NodeError::Admin(format!("{}: {}", self.base, error_chain(&e))))?;
        match response.status().as_u16() {
            200..=299 => Ok(Some(response)),
            404 | 502 => Ok(None),
            s => {
                let body = response.text().await.unwrap_or_default();
                Err(NodeError::Admin(format!("{}{path} answered {s}: {body}", self.base)))
            }
        }
    }

    /// A GET that may answer 404 (`None`).
    pub async fn get_optional(&self, path: &str) -> Result<Option<reqwest::Response>, NodeError> {
        let response = self
            .request(Method::GET, path)
            .send()
            .await
            .map_err(|e| NodeError::Admin(format!("{}: {}", self.base, error_chain(&e))))?;
        match response.status() {
            s if s.is_success() => Ok(Some(response)),
            reqwest::StatusCode::NOT_FOUND => Ok(None),
            s => {
                let body = response.text().await.unwrap_or_default();
                Err(NodeError::Admin(format!("{}{path} answered {s}: {body}", self.base)))
            }
        }
    }
}

async fn call(conn: &AdminConn, method: Method, path: &str, body: Option<Value>) -> Result<(), NodeError> {
    let admin = Admin::connect(conn, Duration::from_secs(70))?;
    let mut request = admin.request(method, path);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let base = &admin.base;
    let response = request
        .send()
        .await
        .map_err(|e| NodeError::Admin(format!("{base}: {}", error_chain(&e))))?;
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

/// An error with its causes (`error sending request` says nothing; its source names the
/// untrusted certificate or the refused connection).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

//! What one client does per operation, for each scenario.

use std::sync::Arc;

use serde_json::Value;

use crate::LoadError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Create a small Storage lease.
    StoreSmall,
    /// Download a Storage lease created at setup.
    Download,
    /// Overwrite the client's own checkpoint.
    CheckpointPut,
    /// Compare-and-set write of the client's own checkpoint (If-Match: the version it last saw).
    CheckpointCas,
    /// Drop a message (no auth) into the client's own mailbox.
    MailboxDrop,
    /// Claim a small Storage lease through the client's own handoff token (no auth).
    Claim,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::StoreSmall => "store-small",
            Scenario::Download => "download",
            Scenario::CheckpointPut => "checkpoint-put",
            Scenario::CheckpointCas => "checkpoint-cas",
            Scenario::MailboxDrop => "mailbox-drop",
            Scenario::Claim => "claim",
        }
    }

    pub fn all() -> Vec<Scenario> {
        vec![
            Scenario::StoreSmall,
            Scenario::Download,
            Scenario::CheckpointPut,
            Scenario::CheckpointCas,
            Scenario::MailboxDrop,
            Scenario::Claim,
        ]
    }

    pub fn default_size(self) -> u64 {
        match self {
            Scenario::StoreSmall | Scenario::Download | Scenario::Claim => 1024,
            Scenario::CheckpointPut | Scenario::CheckpointCas | Scenario::MailboxDrop => 256,
        }
    }
}

/// What every client shares.
pub struct Ctx {
    pub http: reqwest::Client,
    pub targets: Vec<String>,
    pub auth: String,
    pub scenario: Scenario,
    pub size_bytes: u64,
    /// Distinguishes this run's workflow ids from earlier runs' on the same cluster.
    pub run_id: String,
    /// Mailboxes announce every drop here (mailbox-drop).
    pub webhook_url: Option<String>,
}

/// A failed operation: the HTTP status, or 0 for a transport error.
#[derive(Debug)]
pub struct OpError(pub u16);

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            0 => write!(f, "no answer (connection refused, reset or timed out: is the node up?)"),
            status => write!(f, "answered HTTP {status}"),
        }
    }
}

pub struct Client {
    ctx: Arc<Ctx>,
    target: String,
    /// The lease (download), workflow id (checkpoint), drop URL (mailbox) or claim URL (claim)
    /// this client works on.
    subject: String,
    /// The lease a claim client hands off (to issue a fresh token when one is claimed out).
    lease_id: String,
    version: u64,
    body: Vec<u8>,
}

impl Client {
    /// Prepares what the scenario needs (a lease to download, a checkpoint to write).
    pub async fn setup(ctx: Arc<Ctx>, index: usize) -> Result<Client, LoadError> {
        let target = ctx.targets[index % ctx.targets.len()].clone();
        let setup_err = {
            let target = target.clone();
            move |reason: String| LoadError::Setup {
                target: target.clone(),
                reason,
            }
        };
        let body = body(ctx.scenario, ctx.size_bytes, index);
        let mut client = Client {
            subject: format!("lt-{}-{index}", ctx.run_id),
            ctx,
            target,
            version: 0,
            body,
            lease_id: String::new(),
        };
        match client.ctx.scenario {
            Scenario::StoreSmall => {}
            Scenario::Download => {
                let receipt = client
                    .create_storage()
                    .await
                    .map_err(|e| setup_err(format!("store: {e}")))?;
                client.subject = receipt["lease_id"].as_str().unwrap_or_default().to_string();
            }
            Scenario::Claim => {
                let receipt = client
                    .create_storage()
                    .await
                    .map_err(|e| setup_err(format!("store: {e}")))?;
                client.lease_id = receipt["lease_id"].as_str().unwrap_or_default().to_string();
                client.subject = client.new_handoff().await.map_err(setup_err.clone())?;
            }
            Scenario::MailboxDrop => {
                let mut req = client
                    .ctx
                    .http
                    .post(format!("{}/api/mailbox", client.target))
                    .header("authorization", &client.ctx.auth)
                    .header("x-capacity-bytes", (1u64 << 30).to_string())
                    .header("x-max-messages", "10000")
                    .header("x-duration-seconds", "3600");
                if let Some(url) = &client.ctx.webhook_url {
                    req = req.header("x-webhook-url", url);
                }
                let resp = req.send().await.map_err(|e| setup_err(e.to_string()))?;
                if resp.status() != 201 {
                    let status = resp.status();
                    let text = resp.text().await.unwrap_or_default();
                    return Err(setup_err(format!("create mailbox: {status} {text}")));
                }
                let receipt: Value = resp.json().await.map_err(|e| setup_err(e.to_string()))?;
                let drop_url = receipt["drop_url"].as_str().unwrap_or_default();
                // The drop URL names the node that made it; drop through this client's node.
                let path = drop_url.find("/api/").map(|i| &drop_url[i..]).unwrap_or_default();
                client.subject = format!("{}{path}", client.target);
            }
            Scenario::CheckpointPut | Scenario::CheckpointCas => {
                let resp = client
                    .ctx
                    .http
                    .post(format!("{}/api/checkpoint", client.target))
                    .header("authorization", &client.ctx.auth)
                    .header("x-workflow-id", &client.subject)
                    .header("x-duration-seconds", "3600")
                    .header("x-max-body-bytes", (client.body.len() * 2).max(1024).to_string())
                    .body(client.body.clone())
                    .send()
                    .await
                    .map_err(|e| setup_err(e.to_string()))?;
                if resp.status() != 201 {
                    let status = resp.status();
                    let text = resp.text().await.unwrap_or_default();
                    return Err(setup_err(format!("create checkpoint: {status} {text}")));
                }
                client.version = 1;
            }
        }
        Ok(client)
    }

    pub async fn op(&mut self) -> Result<(), OpError> {
        match self.ctx.scenario {
            Scenario::StoreSmall => self.create_storage().await.map(|_| ()),
            Scenario::Download => {
                let resp = self
                    .ctx
                    .http
                    .get(format!("{}/api/download/{}", self.target, self.subject))
                    .header("authorization", &self.ctx.auth)
                    .send()
                    .await
                    .map_err(|_| OpError(0))?;
                check(resp.status().as_u16(), 200)?;
                let bytes = resp.bytes().await.map_err(|_| OpError(0))?;
                if bytes.len() != self.body.len() {
                    return Err(OpError(0));
                }
                Ok(())
            }
            Scenario::Claim => {
                for _ in 0..2 {
                    let resp = self.ctx.http.get(&self.subject).send().await.map_err(|_| OpError(0))?;
                    if resp.status() == 410 {
                        // Claimed out: issue a fresh token and claim again.
                        self.subject = self.new_handoff().await.map_err(|_| OpError(410))?;
                        continue;
                    }
                    check(resp.status().as_u16(), 200)?;
                    let bytes = resp.bytes().await.map_err(|_| OpError(0))?;
                    return if bytes.len() == self.body.len() {
                        Ok(())
                    } else {
                        Err(OpError(0))
                    };
                }
                Err(OpError(410))
            }
            Scenario::MailboxDrop => {
                let resp = self
                    .ctx
                    .http
                    .post(&self.subject)
                    .header("content-type", "application/json")
                    .body(self.body.clone())
                    .send()
                    .await
                    .map_err(|_| OpError(0))?;
                check(resp.status().as_u16(), 201)
            }
            Scenario::CheckpointPut | Scenario::CheckpointCas => {
                let mut req = self
                    .ctx
                    .http
                    .put(format!("{}/api/checkpoint/{}", self.target, self.subject))
                    .header("authorization", &self.ctx.auth)
                    .body(self.body.clone());
                if self.ctx.scenario == Scenario::CheckpointCas {
                    req = req.header("if-match", self.version.to_string());
                }
                let resp = req.send().await.map_err(|_| OpError(0))?;
                check(resp.status().as_u16(), 200)?;
                self.version = resp
                    .headers()
                    .get("x-checkpoint-version")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(self.version + 1);
                Ok(())
            }
        }
    }

    /// A handoff of this client's lease with as many claims as the server allows; its claim URL
    /// through this client's node.
    async fn new_handoff(&self) -> Result<String, String> {
        for max_claims in [1_000_000u64, 1000] {
            let resp = self
                .ctx
                .http
                .post(format!("{}/api/handoff/{}", self.target, self.lease_id))
                .header("authorization", &self.ctx.auth)
                .body(serde_json::json!({ "max_claims": max_claims }).to_string())
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if resp.status() == 422 {
                continue;
            }
            if resp.status() != 201 {
                return Err(format!("create handoff: {}", resp.status()));
            }
            let v: Value = resp.json().await.map_err(|e| e.to_string())?;
            let url = v["claim_url"].as_str().unwrap_or_default();
            let path = url.find("/api/").map(|i| &url[i..]).unwrap_or_default();
            return Ok(format!("{}{path}", self.target));
        }
        Err("create handoff: max_claims refused".into())
    }

    async fn create_storage(&self) -> Result<Value, OpError> {
        let resp = self
            .ctx
            .http
            .post(format!("{}/api/store", self.target))
            .header("authorization", &self.ctx.auth)
            .header("x-file-name", "loadtest.bin")
            .header("x-size-bytes", self.body.len().to_string())
            .header("x-duration-seconds", "3600")
            .body(self.body.clone())
            .send()
            .await
            .map_err(|_| OpError(0))?;
        check(resp.status().as_u16(), 201)?;
        resp.json().await.map_err(|_| OpError(0))
    }
}

fn check(status: u16, expected: u16) -> Result<(), OpError> {
    if status == expected {
        Ok(())
    } else {
        Err(OpError(status))
    }
}

/// Bytes for a store, or a JSON document of about `size` bytes for a checkpoint.
fn body(scenario: Scenario, size: u64, seed: usize) -> Vec<u8> {
    let size = size as usize;
    match scenario {
        Scenario::StoreSmall | Scenario::Download | Scenario::Claim => (0..size).map(|i| (i + seed) as u8).collect(),
        Scenario::CheckpointPut | Scenario::CheckpointCas | Scenario::MailboxDrop => {
            let pad = "x".repeat(size.saturating_sub(10));
            serde_json::json!({ "p": pad }).to_string().into_bytes()
        }
    }
}

//! What one client does per operation, for each scenario, through the test kit's typed client.

use std::sync::Arc;

use bytes::Bytes;
use relay_testkit::{api_path, Method, Reply};
use serde_json::Value;

use relay_api::x402::wallet::{Terms, Wallet};

use crate::LoadError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Create a small Storage lease.
    StoreSmall,
    /// Create a small Storage lease paid with x402 (a fresh signed authorization per create,
    /// verified and settled through the local facilitator).
    StoreX402,
    /// Download a Storage lease created at setup.
    Download,
    /// Read the client's own checkpoint (a linearizable read).
    CheckpointGet,
    /// Overwrite the client's own checkpoint.
    CheckpointPut,
    /// Compare-and-set write of the client's own checkpoint (If-Match: the version it last saw).
    CheckpointCas,
    /// Drop a message (no auth) into the client's own mailbox.
    MailboxDrop,
    /// List the client's own mailbox (a linearizable read; one message waits in it).
    MailboxPoll,
    /// Claim a small Storage lease through the client's own handoff token (no auth).
    Claim,
    /// Append an entry to the client's own append baton.
    BatonAppend,
    /// The same, to a witnessed baton: each entry also appends a leaf to the witness log.
    BatonAppendWitnessed,
    /// Read the client's own single baton whole (each read counts against its egress budget).
    BatonRead,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::StoreSmall => "store-small",
            Scenario::StoreX402 => "store-x402",
            Scenario::Download => "download",
            Scenario::CheckpointGet => "checkpoint-get",
            Scenario::CheckpointPut => "checkpoint-put",
            Scenario::CheckpointCas => "checkpoint-cas",
            Scenario::MailboxDrop => "mailbox-drop",
            Scenario::MailboxPoll => "mailbox-poll",
            Scenario::Claim => "claim",
            Scenario::BatonAppend => "baton-append",
            Scenario::BatonAppendWitnessed => "baton-append-witnessed",
            Scenario::BatonRead => "baton-read",
        }
    }

    pub fn all() -> Vec<Scenario> {
        vec![
            Scenario::StoreSmall,
            Scenario::StoreX402,
            Scenario::Download,
            Scenario::CheckpointGet,
            Scenario::MailboxPoll,
            Scenario::CheckpointPut,
            Scenario::CheckpointCas,
            Scenario::MailboxDrop,
            Scenario::Claim,
            Scenario::BatonAppend,
            Scenario::BatonAppendWitnessed,
            Scenario::BatonRead,
        ]
    }

    pub fn default_size(self) -> u64 {
        match self {
            Scenario::StoreSmall | Scenario::StoreX402 | Scenario::Download | Scenario::Claim | Scenario::BatonRead => {
                1024
            }
            Scenario::CheckpointGet
            | Scenario::CheckpointPut
            | Scenario::CheckpointCas
            | Scenario::MailboxDrop
            | Scenario::MailboxPoll
            | Scenario::BatonAppend
            | Scenario::BatonAppendWitnessed => 256,
        }
    }
}

/// What every client shares.
pub struct Ctx {
    /// One client per node, all sharing one connection pool and the run's key.
    pub targets: Vec<relay_testkit::Client>,
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
    api: relay_testkit::Client,
    /// The lease (download), workflow id (checkpoint), drop URL (mailbox) or claim URL (claim)
    /// this client works on.
    subject: String,
    /// The lease a claim client hands off (to issue a fresh token when one is claimed out).
    lease_id: String,
    version: u64,
    /// Shared, not copied, by every request that sends it.
    body: Bytes,
    /// store-x402: the client's wallet, where it pays, and what a create costs.
    wallet: Option<(Wallet, String, u64)>,
}

impl Client {
    /// Prepares what the scenario needs (a lease to download, a checkpoint to write).
    pub async fn setup(ctx: Arc<Ctx>, index: usize) -> Result<Client, LoadError> {
        let api = ctx.targets[index % ctx.targets.len()].clone();
        let setup_err = {
            let target = api.base().to_string();
            move |reason: String| LoadError::Setup {
                target: target.clone(),
                reason,
            }
        };
        let body = body(ctx.scenario, ctx.size_bytes, index).into();
        let mut client = Client {
            subject: format!("lt-{}-{index}", ctx.run_id),
            ctx,
            api,
            version: 0,
            body,
            lease_id: String::new(),
            wallet: None,
        };
        match client.ctx.scenario {
            Scenario::StoreSmall => {}
            Scenario::StoreX402 => {
                let pricing = client
                    .api
                    .pricing()
                    .send()
                    .await
                    .map_err(|e| setup_err(e.to_string()))?
                    .json();
                let pay_to = pricing["walletAddress"]
                    .as_str()
                    .ok_or_else(|| setup_err("the node takes no x402 payments (no walletAddress)".into()))?
                    .to_string();
                let quote = client
                    .api
                    .quote(client.body.len() as u64, 3600)
                    .send()
                    .await
                    .map_err(|e| setup_err(e.to_string()))?
                    .json();
                let price = quote["priceMicros"]
                    .as_str()
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(|| setup_err(format!("quote: {quote}")))?;
                let wallet = Wallet::from_seed(&format!("loadtest {} {index}", client.ctx.run_id));
                client.wallet = Some((wallet, pay_to, price));
            }
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
            Scenario::MailboxDrop | Scenario::MailboxPoll => {
                let mut call = client
                    .api
                    .mailbox_create(1 << 30, 3600)
                    .header("x-max-messages", "10000");
                if let Some(url) = &client.ctx.webhook_url {
                    call = call.header("x-webhook-url", url);
                }
                let reply = call.send().await.map_err(|e| setup_err(e.to_string()))?;
                let receipt = created(reply, "create mailbox").map_err(setup_err.clone())?;
                // The drop URL names the node that made it; drop through this client's node.
                let path = api_path(receipt["drop_url"].as_str().unwrap_or_default()).unwrap_or_default();
                client.subject = client.api.url(path).into_owned();
                if client.ctx.scenario == Scenario::MailboxPoll {
                    let reply = client
                        .api
                        .drop_message(&client.subject, client.body.clone())
                        .content_type("application/json")
                        .send()
                        .await
                        .map_err(|e| setup_err(e.to_string()))?;
                    created(reply, "drop").map_err(setup_err.clone())?;
                    client.subject = receipt["lease_id"].as_str().unwrap_or_default().to_string();
                }
            }
            Scenario::BatonAppend | Scenario::BatonAppendWitnessed | Scenario::BatonRead => {
                client.subject = client.new_baton().await.map_err(setup_err)?;
            }
            Scenario::CheckpointGet | Scenario::CheckpointPut | Scenario::CheckpointCas => {
                let max_body_bytes = (client.body.len() * 2).max(1024) as u64;
                let reply = client
                    .api
                    .checkpoint_create(&client.subject, 3600, Some(max_body_bytes), client.body.clone())
                    .send()
                    .await
                    .map_err(|e| setup_err(e.to_string()))?;
                created(reply, "create checkpoint").map_err(setup_err)?;
                client.version = 1;
            }
        }
        Ok(client)
    }

    pub async fn op(&mut self) -> Result<(), OpError> {
        match self.ctx.scenario {
            Scenario::StoreSmall => self.create_storage().await.map(|_| ()),
            Scenario::StoreX402 => {
                let Some((wallet, pay_to, price)) = &self.wallet else {
                    return Err(OpError(0));
                };
                let now_s = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let payment = wallet.v1(&Terms::base_sepolia(pay_to, *price, now_s));
                // The payment is the only credential: a key beside it would be a second payer.
                let call = self
                    .api
                    .anonymous(Method::POST, "/api/store")
                    .header("x-file-name", "loadtest.bin")
                    .header("x-size-bytes", &self.body.len().to_string())
                    .header("x-duration-seconds", "3600")
                    .header("x-payment", &payment)
                    .body(self.body.clone());
                answer(call.send().await, 201).map(|_| ())
            }
            Scenario::Download => {
                let reply = answer(self.api.download(&self.subject).send().await, 200)?;
                whole(&reply, &self.body)
            }
            Scenario::Claim => {
                for _ in 0..2 {
                    let reply = self
                        .api
                        .claim(Method::GET, &self.subject)
                        .send()
                        .await
                        .map_err(|_| OpError(0))?;
                    if reply.status == 410 {
                        // Claimed out: issue a fresh token and claim again.
                        self.subject = self.new_handoff().await.map_err(|_| OpError(410))?;
                        continue;
                    }
                    check(reply.status, 200)?;
                    return whole(&reply, &self.body);
                }
                Err(OpError(410))
            }
            Scenario::CheckpointGet => {
                let reply = answer(self.api.checkpoint_get(&self.subject).send().await, 200)?;
                whole(&reply, &self.body)
            }
            Scenario::MailboxPoll => {
                let reply = answer(self.api.mailbox_poll(&self.subject).send().await, 200)?;
                match serde_json::from_slice::<Value>(&reply.body) {
                    Ok(v) if v["count"] == 1 => Ok(()),
                    _ => Err(OpError(0)),
                }
            }
            Scenario::MailboxDrop => {
                let call = self
                    .api
                    .drop_message(&self.subject, self.body.clone())
                    .content_type("application/json");
                answer(call.send().await, 201).map(|_| ())
            }
            Scenario::BatonAppend | Scenario::BatonAppendWitnessed => {
                let reply = self
                    .api
                    .baton_append(&self.subject, self.body.clone())
                    .send()
                    .await
                    .map_err(|_| OpError(0))?;
                if reply.status == 409 || reply.status == 413 {
                    // Full (entries or size): carry on in a fresh baton.
                    self.subject = self.new_baton().await.map_err(|_| OpError(reply.status))?;
                    return Ok(());
                }
                check(reply.status, 201)
            }
            Scenario::BatonRead => {
                let reply = answer(self.api.baton_read(&self.subject).send().await, 200)?;
                whole(&reply, &self.body)
            }
            Scenario::CheckpointPut | Scenario::CheckpointCas => {
                let mut call = self.api.checkpoint_put(&self.subject, self.body.clone());
                if self.ctx.scenario == Scenario::CheckpointCas {
                    call = call.if_match(self.version);
                }
                let reply = answer(call.send().await, 200)?;
                self.version = reply.header_u64("x-checkpoint-version").unwrap_or(self.version + 1);
                Ok(())
            }
        }
    }

    /// A handoff of this client's lease with as many claims as the server allows; its claim URL
    /// through this client's node.
    async fn new_handoff(&self) -> Result<String, String> {
        for max_claims in [1_000_000u64, 1000] {
            let reply = self
                .api
                .handoff_create(&self.lease_id, &serde_json::json!({ "max_claims": max_claims }))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if reply.status == 422 {
                continue;
            }
            let v = created(reply, "create handoff")?;
            let path = api_path(v["claim_url"].as_str().unwrap_or_default()).unwrap_or_default();
            return Ok(self.api.url(path).into_owned());
        }
        Err("create handoff: max_claims refused".into())
    }

    /// A baton for this client: an append log with room for many entries (baton-append), or a
    /// single object holding the body with a budget for every read of the run (baton-read).
    async fn new_baton(&self) -> Result<String, String> {
        use base64::Engine;
        let shape = match self.ctx.scenario {
            Scenario::BatonAppend => serde_json::json!({
                "write": "append",
                "capacity": {"size_bytes": 1u64 << 28, "duration_seconds": 3600, "egress_bytes": 0},
            }),
            Scenario::BatonAppendWitnessed => serde_json::json!({
                "write": "append",
                "capacity": {"size_bytes": 1u64 << 28, "duration_seconds": 3600, "egress_bytes": 0},
                "trust": {"witness": true},
            }),
            _ => serde_json::json!({
                "write": "single",
                "capacity": {"size_bytes": self.body.len().max(1), "duration_seconds": 3600, "egress_bytes": 1u64 << 40},
                "content_base64": base64::engine::general_purpose::STANDARD.encode(&self.body),
            }),
        };
        let reply = self.api.baton_create(&shape).send().await.map_err(|e| e.to_string())?;
        let v = created(reply, "create baton")?;
        Ok(v["baton_id"].as_str().unwrap_or_default().to_string())
    }

    async fn create_storage(&self) -> Result<Value, OpError> {
        let call = self.api.store("loadtest.bin", 3600, self.body.clone());
        let reply = answer(call.send().await, 201)?;
        serde_json::from_slice(&reply.body).map_err(|_| OpError(0))
    }
}

fn check(status: u16, expected: u16) -> Result<(), OpError> {
    if status == expected {
        Ok(())
    } else {
        Err(OpError(status))
    }
}

/// The answer when it came with the `expected` status.
fn answer(sent: Result<Reply, relay_testkit::KitError>, expected: u16) -> Result<Reply, OpError> {
    let reply = sent.map_err(|_| OpError(0))?;
    check(reply.status, expected)?;
    Ok(reply)
}

/// Whether the bytes that came back are as many as were stored.
fn whole(reply: &Reply, stored: &Bytes) -> Result<(), OpError> {
    if reply.body.len() == stored.len() {
        Ok(())
    } else {
        Err(OpError(0))
    }
}

/// The JSON receipt of a 201, or why there was none.
fn created(reply: Reply, what: &str) -> Result<Value, String> {
    if reply.status != 201 {
        return Err(format!("{what}: {} {}", reply.status, reply.text()));
    }
    serde_json::from_slice(&reply.body).map_err(|e| format!("{what}: {e}"))
}

/// Bytes for a store, or a JSON document of about `size` bytes for a checkpoint.
fn body(scenario: Scenario, size: u64, seed: usize) -> Vec<u8> {
    let size = size as usize;
    match scenario {
        Scenario::StoreSmall | Scenario::StoreX402 | Scenario::Download | Scenario::Claim | Scenario::BatonRead => {
            (0..size).map(|i| (i + seed) as u8).collect()
        }
        // Entries are text.
        Scenario::BatonAppend | Scenario::BatonAppendWitnessed => {
            (0..size).map(|i| b'a' + ((i + seed) % 26) as u8).collect()
        }
        Scenario::CheckpointGet
        | Scenario::CheckpointPut
        | Scenario::CheckpointCas
        | Scenario::MailboxDrop
        | Scenario::MailboxPoll => {
            let pad = "x".repeat(size.saturating_sub(10));
            serde_json::json!({ "p": pad }).to_string().into_bytes()
        }
    }
}

//! Limits the API enforces, built from the node's flags (`relay_node::config::ServeArgs`), where
//! each one's default and meaning are written once. (Prices are the cluster's, in the ledger.)

use crate::error::{ApiError, ApiResult};

#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Shortest lease a client may buy.
    pub min_duration_seconds: u64,
    /// Longest lease a client may buy.
    pub max_duration_seconds: u64,
    /// Largest object a Storage lease may hold.
    pub max_object_bytes: u64,
    /// Caps on requests, uploads and buffered bodies (uploads each hold up to
    /// `single_put_max_bytes` or two multipart parts in memory).
    pub limits: crate::limits::LimitsConfig,
    /// The secret shared by cluster members; also accepted by `/cluster/…`.
    pub cluster_secret: String,
    /// Bodies (checkpoint states, messages) up to this size ride in the Raft entry; larger ones
    /// go to the object store.
    pub inline_max_bytes: u64,
    /// A checkpoint's reserved size when `X-Max-Body-Bytes` is not given.
    pub checkpoint_default_body_bytes: u64,
    /// The largest `X-Max-Body-Bytes` a checkpoint may reserve (bodies are held in memory).
    pub checkpoint_max_body_bytes: u64,
    /// The largest `X-Capacity-Bytes` a mailbox may reserve.
    pub mailbox_max_capacity_bytes: u64,
    /// The largest message a mailbox may accept (also the default `X-Max-Message-Bytes`, capped
    /// by the capacity); messages are held in memory while they pass through.
    pub mailbox_max_message_bytes: u64,
    /// The default and largest `X-Max-Messages`.
    pub mailbox_default_messages: u64,
    pub mailbox_max_messages: u64,
    /// Internal networks webhooks may reach anyway (`--webhook-allow-cidr`).
    pub webhook_policy: std::sync::Arc<crate::ssrf::Policy>,
    /// The largest `max_claims` a handoff may allow.
    pub handoff_max_claims: u32,
    /// The base of the `drop_url`/`poll_url`/`claim_url` handed out; by default taken from the request's
    /// `Host` header.
    pub public_url: Option<String>,
    /// x402 payments (`--x402-*`); `None`: paid creates need an API key.
    pub x402: Option<crate::x402::X402Config>,
    /// Ceilings on batons (`--baton-*`).
    pub baton: crate::baton::BatonLimits,
    /// Presigned, resumable and scratch uploads (`--upload-*`, `--scratch-*`, `--tus-*`).
    pub uploads: crate::uploads::UploadLimits,
    /// The witness log: origin, retention, the sealing key, the operator's key (`--witness-*`).
    pub witness: crate::witness::WitnessSettings,
}

impl ApiConfig {
    /// Refuses an object larger than a Storage lease may hold; `size_field` names the size.
    pub fn check_object_size(&self, size_field: &'static str, size_bytes: u64) -> ApiResult<()> {
        if size_bytes > self.max_object_bytes {
            return Err(ApiError::TooLarge {
                what: size_field,
                limit: self.max_object_bytes,
            });
        }
        Ok(())
    }
}

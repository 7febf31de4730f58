//! Standard Webhooks: the payload announcing a dropped message, its signature, and one delivery
//! attempt through the SSRF-guarded client.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use relay_raft::Delivery;
use serde_json::json;

use crate::render;
use crate::ssrf::{GuardedResolver, Policy};

pub const SECRET_PREFIX: &str = "whsec_";
/// The HTTP client deliveries are made with.
pub type HttpClient = webhook_http::Client;
/// How long one delivery attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// `webhook-id`: the same for every attempt at one message.
pub fn webhook_id(lease_id: &str, seq: u64) -> String {
    format!("{lease_id}_msg_{seq}")
}

/// The host a webhook URL delivers to (lowercase), the unit of fairness between receivers.
pub fn host_of(url: &str) -> Option<String> {
    webhook_http::Url::parse(url)
        .ok()?
        .host_str()
        .map(|h| h.to_ascii_lowercase())
}

/// The HMAC key inside a `whsec_…` secret.
pub fn secret_key(secret: &str) -> Option<Vec<u8>> {
    let key = STANDARD.decode(secret.strip_prefix(SECRET_PREFIX)?).ok()?;
    (16..=64).contains(&key.len()).then_some(key)
}

/// A fresh `whsec_` secret: 32 bytes from the OS RNG.
pub fn new_secret() -> Result<String, getrandom::Error> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key)?;
    Ok(format!("{SECRET_PREFIX}{}", STANDARD.encode(key)))
}

/// `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
pub fn sign(key: &[u8], id: &str, timestamp: u64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(id.as_bytes());
    ctx.update(b".");
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("v1,{}", STANDARD.encode(ctx.sign().as_ref()))
}

/// The JSON announcing one message. A JSON message rides as `data`, other inline bytes as
/// `data_base64`; object-backed messages, and messages picked up before the attempt, are
/// announced without their bytes.
pub fn payload(delivery: &Delivery, inline_body: Option<&[u8]>) -> Vec<u8> {
    let v = json!({
        "type": "mailbox.message",
        "lease_id": delivery.lease_id,
        "message_id": crate::mailbox::message_id(delivery.seq),
        "size_bytes": delivery.size_bytes,
        "content_type": delivery.content_type,
        "received_at": render::timestamp(delivery.received_at_ms),
    });
    render::with_data(v, inline_body).into_bytes()
}

/// The client every delivery goes through: guarded DNS, no redirects, no proxy, a timeout.
pub fn client(policy: Arc<Policy>) -> Result<webhook_http::Client, String> {
    webhook_http::Client::builder()
        .dns_resolver(GuardedResolver(policy))
        .redirect(webhook_http::redirect::Policy::none())
        .no_proxy()
        .timeout(ATTEMPT_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(4)
        .build()
        .map_err(|e| e.to_string())
}

/// One attempt; only a 2xx answer counts as delivered.
pub async fn attempt(
    client: &webhook_http::Client,
    policy: &Policy,
    url: &str,
    secret: &str,
    delivery: &Delivery,
    inline_body: Option<&[u8]>,
) -> Result<(), String> {
    let url = webhook_http::Url::parse(url).map_err(|e| e.to_string())?;
    // IP-literal hosts never reach the resolver, so they are checked here.
    if let Some(ip) = url
        .host_str()
        .and_then(|h| h.trim_start_matches('[').trim_end_matches(']').parse().ok())
    {
        if !policy.permits(ip) {
            return Err(format!("{ip} is an internal address"));
        }
    }
    let key = secret_key(secret).ok_or("stored webhook secret is malformed")?;
    let body = payload(delivery, inline_body);
    let id = webhook_id(&delivery.lease_id, delivery.seq);
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let signature = sign(&key, &id, timestamp, &body);
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("receiver answered {}", response.status()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Standard Webhooks specification's own test vector.
    #[test]
    fn signature_matches_the_spec_vector() {
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = sign(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    /// Generated secrets parse back to 32-byte keys; junk does not parse.
    #[test]
    fn secrets() {
        let s = new_secret().unwrap();
        assert_eq!(secret_key(&s).map(|k| k.len()), Some(32));
        assert!(secret_key("whsec_!!").is_none());
        assert!(secret_key("nope").is_none());
    }
}

//! The facilitator's `/verify` and `/settle`, bounded in time and in what is read back.
//!
//! Only a clear verdict counts: a 2xx with `isValid: true` / `success: true` (and a
//! transaction), or an explicit refusal with its reason. Anything else (no connection, a
//! timeout, a 5xx, an answer that is not one of those) is `Unknown`: for a verify, nothing is
//! written and the client hears 503; for a settle, the money may have moved, so the payment
//! stays pending and is settled again later, never voided on a guess.

use std::time::Duration;

use serde_json::{json, Value};

/// The most of a facilitator's answer that is read.
const ANSWER_MAX_BYTES: usize = 64 << 10;
/// The longest reason, transaction or network kept from an answer.
const TEXT_MAX_LEN: usize = 100;
/// The reason a facilitator gives for an authorization already used on chain.
pub const NONCE_USED: &str = "invalid_exact_evm_nonce_already_used";

#[derive(Debug, thiserror::Error)]
pub enum FacilitatorError {
    #[error("no clear answer from the facilitator: {0}")]
    Unknown(String),
    #[error("the facilitator refused the payment ({reason})")]
    Refused { reason: String },
}

/// A settled payment as the facilitator reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settled {
    pub transaction: String,
    pub network: String,
    pub payer: String,
}

#[derive(Clone)]
pub struct Facilitator {
    client: webhook_http::Client,
    url: String,
}

/// The body of `/verify` and `/settle`.
pub fn request(version: u8, payload: &Value, requirements: &Value) -> Vec<u8> {
    json!({
        "x402Version": version,
        "paymentPayload": payload,
        "paymentRequirements": requirements,
    })
    .to_string()
    .into_bytes()
}

impl Facilitator {
    pub fn new(url: &str, timeout: Duration) -> Result<Facilitator, String> {
        let client = webhook_http::Client::builder()
            .redirect(webhook_http::redirect::Policy::none())
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_max_idle_per_host(16)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Facilitator {
            client,
            url: url.trim_end_matches('/').to_string(),
        })
    }

    /// `POST /verify` with `body` (see [`request`]): whether the facilitator would settle it.
    pub async fn verify(&self, body: &[u8]) -> Result<(), FacilitatorError> {
        let (ok_status, answer) = self.call("verify", body).await?;
        match answer.get("isValid").and_then(Value::as_bool) {
            Some(true) if ok_status => Ok(()),
            Some(false) => Err(FacilitatorError::Refused {
                reason: text(&answer, "invalidReason").unwrap_or_else(|| "invalid_payment".into()),
            }),
            _ => Err(FacilitatorError::Unknown("verify gave no clear verdict".into())),
        }
    }

    /// `POST /settle` with `body`: the money moved, or why not.
    pub async fn settle(&self, body: &[u8]) -> Result<Settled, FacilitatorError> {
        let (ok_status, answer) = self.call("settle", body).await?;
        let transaction = text(&answer, "transaction").unwrap_or_default();
        match answer.get("success").and_then(Value::as_bool) {
            Some(true) if ok_status && !transaction.is_empty() => Ok(Settled {
                transaction,
                network: text(&answer, "network").unwrap_or_default(),
                payer: text(&answer, "payer").unwrap_or_default(),
            }),
            Some(false) => match text(&answer, "errorReason") {
                Some(reason) => Err(FacilitatorError::Refused { reason }),
                None => Err(FacilitatorError::Unknown("settle refused without a reason".into())),
            },
            _ => Err(FacilitatorError::Unknown("settle gave no clear verdict".into())),
        }
    }

    /// The answer's JSON, and whether its status was 2xx; `Unknown` without a JSON answer or on
    /// a 5xx.
    async fn call(&self, path: &str, body: &[u8]) -> Result<(bool, Value), FacilitatorError> {
        let unknown = |e: webhook_http::Error| FacilitatorError::Unknown(format!("{path}: {e}"));
        let mut response = self
            .client
            .post(format!("{}/{path}", self.url))
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .map_err(unknown)?;
        let status = response.status();
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unknown)? {
            if bytes.len() + chunk.len() > ANSWER_MAX_BYTES {
                return Err(FacilitatorError::Unknown(format!("{path}: answer too large")));
            }
            bytes.extend_from_slice(&chunk);
        }
        if status.is_server_error() {
            return Err(FacilitatorError::Unknown(format!("{path}: {status}")));
        }
        let answer: Value = serde_json::from_slice(&bytes)
            .map_err(|_| FacilitatorError::Unknown(format!("{path}: {status} without a JSON answer")))?;
        Ok((status.is_success(), answer))
    }
}

/// A string field of an answer, kept printable and short (so its bytes are its characters);
/// `None` when absent or empty.
fn text(answer: &Value, field: &str) -> Option<String> {
    let t: String = answer
        .get(field)?
        .as_str()?
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(TEXT_MAX_LEN)
        .collect();
    (!t.is_empty()).then_some(t)
}

//! The facilitator's `/verify` and `/settle`, bounded in time and in what is read back. Any
//! failure to get an answer is `Unavailable` (503, nothing written or charged); a refusal
//! carries the facilitator's reason.

use std::time::Duration;

use serde_json::{json, Value};

/// The most of a facilitator's answer that is read.
const ANSWER_MAX_BYTES: usize = 64 << 10;

#[derive(Debug, thiserror::Error)]
pub enum FacilitatorError {
    #[error("facilitator unavailable: {0}")]
    Unavailable(String),
    #[error("facilitator refused the payment ({reason})")]
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

    /// `POST /verify`: whether the facilitator would settle this payment.
    pub async fn verify(&self, version: u8, payload: &Value, requirements: &Value) -> Result<(), FacilitatorError> {
        let answer = self.call("verify", version, payload, requirements).await?;
        match answer.get("isValid").and_then(Value::as_bool) {
            Some(true) => Ok(()),
            Some(false) => Err(FacilitatorError::Refused {
                reason: reason(&answer, "invalidReason", "invalid_payment"),
            }),
            None => Err(FacilitatorError::Unavailable("verify answered without isValid".into())),
        }
    }

    /// `POST /settle`: moves the money, or says why not.
    pub async fn settle(
        &self,
        version: u8,
        payload: &Value,
        requirements: &Value,
    ) -> Result<Settled, FacilitatorError> {
        let answer = self.call("settle", version, payload, requirements).await?;
        match answer.get("success").and_then(Value::as_bool) {
            Some(true) => {
                let text = |name: &str| {
                    answer
                        .get(name)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .chars()
                        .take(200)
                        .collect::<String>()
                };
                Ok(Settled {
                    transaction: text("transaction"),
                    network: text("network"),
                    payer: text("payer"),
                })
            }
            Some(false) => Err(FacilitatorError::Refused {
                reason: reason(&answer, "errorReason", "settlement_failed"),
            }),
            None => Err(FacilitatorError::Unavailable("settle answered without success".into())),
        }
    }

    async fn call(
        &self,
        path: &str,
        version: u8,
        payload: &Value,
        requirements: &Value,
    ) -> Result<Value, FacilitatorError> {
        let body = json!({
            "x402Version": version,
            "paymentPayload": payload,
            "paymentRequirements": requirements,
        });
        let unavailable = |e: webhook_http::Error| FacilitatorError::Unavailable(format!("{path}: {e}"));
        let mut response = self
            .client
            .post(format!("{}/{path}", self.url))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(unavailable)?;
        let status = response.status();
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unavailable)? {
            if bytes.len() + chunk.len() > ANSWER_MAX_BYTES {
                return Err(FacilitatorError::Unavailable(format!("{path}: answer too large")));
            }
            bytes.extend_from_slice(&chunk);
        }
        // A 4xx with a JSON verdict is still a verdict; anything else is no answer.
        let answer: Value = serde_json::from_slice(&bytes)
            .map_err(|_| FacilitatorError::Unavailable(format!("{path}: {status} without a JSON answer")))?;
        if status.is_server_error() {
            return Err(FacilitatorError::Unavailable(format!("{path}: {status}")));
        }
        Ok(answer)
    }
}

/// The facilitator's reason code, kept short and printable.
fn reason(answer: &Value, field: &str, default: &str) -> String {
    let r: String = answer
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or(default)
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(100)
        .collect();
    if r.is_empty() {
        default.into()
    } else {
        r
    }
}

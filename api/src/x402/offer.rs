//! What a 402 offers (the requirements for this request's exact price, in v1 and v2 form), and
//! what a paid answer reports back.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

use super::X402Config;

/// One priced request: what it costs and where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    pub price_micros: u64,
    /// The request's URL.
    pub resource: String,
    pub description: String,
}

/// The v1 `PaymentRequirements` (amounts in atomic units: micro-USDC for USDC).
pub fn v1_requirements(cfg: &X402Config, offer: &Offer) -> Value {
    json!({
        "scheme": "exact",
        "network": cfg.network.v1_name,
        "maxAmountRequired": offer.price_micros.to_string(),
        "resource": offer.resource,
        "description": offer.description,
        "mimeType": "application/json",
        "payTo": cfg.pay_to.checksummed(),
        "maxTimeoutSeconds": cfg.max_timeout_seconds,
        "asset": cfg.asset.checksummed(),
        "extra": {"name": cfg.asset_name, "version": cfg.asset_version},
    })
}

/// The v2 requirements: a CAIP-2 network and `amount`.
pub fn v2_requirements(cfg: &X402Config, offer: &Offer) -> Value {
    json!({
        "scheme": "exact",
        "network": cfg.network.caip2(),
        "amount": offer.price_micros.to_string(),
        "asset": cfg.asset.checksummed(),
        "payTo": cfg.pay_to.checksummed(),
        "maxTimeoutSeconds": cfg.max_timeout_seconds,
        "extra": {"name": cfg.asset_name, "version": cfg.asset_version},
    })
}

/// The 402 body (x402 v1), with the project's `code` and `request_id` beside x402's `error`.
pub fn body_v1(cfg: &X402Config, offer: &Offer, error: &str, code: &str, request_id: &str) -> Value {
    json!({
        "x402Version": 1,
        "error": error,
        "accepts": [v1_requirements(cfg, offer)],
        "status": "error",
        "code": code,
        "request_id": request_id,
    })
}

/// The v2 `PAYMENT-REQUIRED` header: base64 of the v2 `PaymentRequired`.
pub fn header_v2(cfg: &X402Config, offer: &Offer, error: &str) -> String {
    let required = json!({
        "x402Version": 2,
        "error": error,
        "resource": {"url": offer.resource, "description": offer.description, "mimeType": "application/json"},
        "accepts": [v2_requirements(cfg, offer)],
    });
    STANDARD.encode(required.to_string())
}

/// A settled payment, as reported in `X-PAYMENT-RESPONSE` / `PAYMENT-RESPONSE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    pub version: u8,
    pub transaction: String,
    pub network: String,
    pub payer: String,
}

impl Receipt {
    /// The response header's name and value.
    pub fn header(&self) -> (&'static str, String) {
        let name = match self.version {
            1 => "x-payment-response",
            _ => "payment-response",
        };
        let value = json!({
            "success": true,
            "transaction": self.transaction,
            "network": self.network,
            "payer": self.payer,
        });
        (name, STANDARD.encode(value.to_string()))
    }
}

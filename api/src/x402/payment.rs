//! A client's payment header, decoded and checked offline against this request's price.
//!
//! Malformed input (not base64, not JSON, fields missing or of the wrong type, an unknown
//! version) is a 400; a well-formed payment that cannot pay for this request is refused with a
//! reason code (the facilitators' own codes where one exists) and a fresh 402.

use axum::http::HeaderMap;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use serde_json::Value;

use super::evm::{self, Address, TransferWithAuthorization};
use super::{X402Config, VALIDITY_MAX_SECONDS, VALID_BEFORE_MARGIN_SECONDS};

/// The largest decoded payment accepted; a real one is about 600 bytes.
const DECODED_MAX_BYTES: usize = 8 << 10;

/// A decoded payment: version, what it claims, and the signed authorization.
#[derive(Clone, Debug)]
pub struct SignedPayment {
    pub version: u8,
    pub scheme: String,
    pub network: String,
    /// v2: the requirements the client accepted.
    pub accepted: Option<Value>,
    pub authorization: TransferWithAuthorization,
    pub signature: String,
    /// The payload as the client sent it, forwarded to the facilitator unchanged.
    pub raw: Value,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// Not a payment at all: 400.
    #[error("malformed payment header: {0}")]
    Malformed(String),
    /// A payment that cannot pay for this request: 402 with `reason` (a facilitator-style code).
    #[error("payment refused ({reason}): {detail}")]
    Refused { reason: &'static str, detail: String },
}

fn malformed(what: impl Into<String>) -> PaymentError {
    PaymentError::Malformed(what.into())
}

fn refused(reason: &'static str, detail: impl Into<String>) -> PaymentError {
    PaymentError::Refused {
        reason,
        detail: detail.into(),
    }
}

/// The payment in `X-PAYMENT` (v1) or `PAYMENT-SIGNATURE` (v2), if the request carries one.
pub fn from_headers(headers: &HeaderMap) -> Result<Option<SignedPayment>, PaymentError> {
    let v1 = headers.get("x-payment");
    let v2 = headers.get("payment-signature");
    let (value, header_version) = match (v1, v2) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => return Err(malformed("send X-PAYMENT or PAYMENT-SIGNATURE, not both")),
        (Some(v), None) => (v, 1u8),
        (None, Some(v)) => (v, 2u8),
    };
    let text = value.to_str().map_err(|_| malformed("not ASCII"))?.trim();
    if text.len() > DECODED_MAX_BYTES * 4 / 3 + 4 {
        return Err(malformed("too long"));
    }
    let bytes = STANDARD
        .decode(text)
        .or_else(|_| STANDARD_NO_PAD.decode(text))
        .map_err(|_| malformed("not base64"))?;
    let raw: Value = serde_json::from_slice(&bytes).map_err(|_| malformed("not JSON"))?;
    decode(raw, header_version).map(Some)
}

fn str_field<'a>(v: &'a Value, name: &str) -> Result<&'a str, PaymentError> {
    v.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| malformed(format!("{name} must be a string")))
}

/// A decimal string of a uint256 below 2^128. Larger ones match no price or time Relay would
/// take, and hashing them as anything but themselves would check another authorization than the
/// one sent, so they are refused.
fn uint(v: &Value, name: &str) -> Result<u128, PaymentError> {
    let s = str_field(v, name)?;
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(format!("{name} must be a decimal string")));
    }
    s.parse::<u128>()
        .map_err(|_| malformed(format!("{name} is out of range")))
}

fn decode(raw: Value, header_version: u8) -> Result<SignedPayment, PaymentError> {
    let version = raw
        .get("x402Version")
        .and_then(Value::as_u64)
        .ok_or_else(|| malformed("x402Version must be a number"))?;
    if version != header_version as u64 {
        return Err(malformed(format!(
            "x402Version {version} in the header of version {header_version}"
        )));
    }
    let (scheme, network, accepted) = match version {
        1 => (str_field(&raw, "scheme")?, str_field(&raw, "network")?, None),
        2 => {
            let accepted = raw
                .get("accepted")
                .filter(|a| a.is_object())
                .ok_or_else(|| malformed("accepted must be an object"))?;
            (
                str_field(accepted, "scheme")?,
                str_field(accepted, "network")?,
                Some(accepted.clone()),
            )
        }
        _ => return Err(malformed(format!("unsupported x402Version {version}"))),
    };
    let payload = raw.get("payload").ok_or_else(|| malformed("payload missing"))?;
    let signature = str_field(payload, "signature")?.to_string();
    let a = payload
        .get("authorization")
        .filter(|a| a.is_object())
        .ok_or_else(|| malformed("authorization must be an object"))?;
    let address =
        |name: &str| Address::parse(str_field(a, name)?).ok_or_else(|| malformed(format!("{name} must be an address")));
    let authorization = TransferWithAuthorization {
        from: address("from")?,
        to: address("to")?,
        value: uint(a, "value")?,
        valid_after: uint(a, "validAfter")?,
        valid_before: uint(a, "validBefore")?,
        nonce: evm::parse_bytes32(str_field(a, "nonce")?).ok_or_else(|| malformed("nonce must be 32 bytes of hex"))?,
    };
    Ok(SignedPayment {
        version: version as u8,
        scheme: scheme.to_string(),
        network: network.to_string(),
        accepted,
        authorization,
        signature,
        raw,
    })
}

impl SignedPayment {
    /// The payer, proven by the signature over the authorization in this node's token domain.
    pub fn signer(&self, cfg: &X402Config) -> Result<Address, PaymentError> {
        let digest = self.authorization.digest(&cfg.domain());
        let signer = evm::recover(&digest, &self.signature)
            .map_err(|e| refused("invalid_exact_evm_payload_signature", e.to_string()))?;
        if signer != self.authorization.from {
            return Err(refused(
                "invalid_exact_evm_payload_signature",
                "the signature is not by the authorization's from",
            ));
        }
        Ok(signer)
    }

    /// Whether this payment pays `price_micros` to this node now (unix seconds), signature aside.
    pub fn check(&self, cfg: &X402Config, price_micros: u64, now_s: u64) -> Result<(), PaymentError> {
        if self.scheme != "exact" {
            return Err(refused("unsupported_scheme", format!("scheme {:?}", self.scheme)));
        }
        let network_ok = match self.version {
            1 => self.network == cfg.network.v1_name,
            _ => self.network == cfg.network.caip2(),
        };
        if !network_ok {
            return Err(refused("invalid_network", format!("network {:?}", self.network)));
        }
        if let Some(accepted) = &self.accepted {
            let same = |field: &str, want: &str| {
                accepted
                    .get(field)
                    .and_then(Value::as_str)
                    .is_some_and(|v| v.eq_ignore_ascii_case(want))
            };
            if !same("amount", &price_micros.to_string())
                || !same("payTo", &cfg.pay_to.checksummed())
                || !same("asset", &cfg.asset.checksummed())
            {
                return Err(refused(
                    "invalid_exact_evm_payload_requirements_mismatch",
                    "accepted requirements are not this request's",
                ));
            }
        }
        let a = &self.authorization;
        if a.to != cfg.pay_to {
            return Err(refused(
                "invalid_exact_evm_payload_recipient_mismatch",
                "to is not this node's payTo",
            ));
        }
        if a.value != price_micros as u128 {
            return Err(refused(
                "invalid_exact_evm_payload_authorization_value",
                format!("value must be exactly {price_micros}"),
            ));
        }
        if a.valid_after > now_s as u128 {
            return Err(refused(
                "invalid_exact_evm_payload_authorization_valid_after",
                "the authorization is not valid yet",
            ));
        }
        if a.valid_before < (now_s + VALID_BEFORE_MARGIN_SECONDS) as u128 {
            return Err(refused(
                "invalid_exact_evm_payload_authorization_valid_before",
                "the authorization expires too soon",
            ));
        }
        if a.valid_before > (now_s + VALIDITY_MAX_SECONDS) as u128 {
            return Err(refused(
                "invalid_exact_evm_payload_authorization_valid_before",
                "the authorization may be valid for a day at most",
            ));
        }
        Ok(())
    }

    /// `0x` + the nonce in lowercase hex.
    pub fn nonce_hex(&self) -> String {
        format!("0x{}", hex::encode(self.authorization.nonce))
    }

    /// validBefore in unix milliseconds, saturated.
    pub fn valid_before_ms(&self) -> u64 {
        u64::try_from(self.authorization.valid_before)
            .unwrap_or(u64::MAX)
            .saturating_mul(1000)
    }
}

//! A wallet's side of x402 and Sign-In with Ethereum: signing authorizations and messages and
//! encoding the payment headers. Relay never signs a payment; the tests and the load generator
//! act as wallets with it.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

use super::evm::{self, Address, Domain, SigningKey, TransferWithAuthorization};

pub struct Wallet {
    key: SigningKey,
    pub address: Address,
}

/// The fields of one authorization, before signing; tests bend them to make bad payments.
#[derive(Clone, Debug)]
pub struct Terms {
    pub to: String,
    pub value: u128,
    pub valid_after: u64,
    pub valid_before: u64,
    pub nonce: [u8; 32],
    /// As the header names it (v1 name).
    pub network: String,
    pub chain_id: u64,
    pub asset: String,
    pub domain_name: String,
    pub domain_version: String,
}

impl Terms {
    /// `value` to `to` in USDC on Base Sepolia, valid from a minute ago for ten minutes, with a
    /// fresh random nonce.
    pub fn base_sepolia(to: &str, value: u64, now_s: u64) -> Terms {
        let mut nonce = [0u8; 32];
        getrandom::fill(&mut nonce).expect("the OS random source");
        Terms {
            to: to.into(),
            value: value as u128,
            valid_after: now_s.saturating_sub(60),
            valid_before: now_s + 600,
            nonce,
            network: "base-sepolia".into(),
            chain_id: 84532,
            asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e".into(),
            domain_name: "USDC".into(),
            domain_version: "2".into(),
        }
    }
}

impl Wallet {
    /// A wallet whose key is the Keccak of `seed` (deterministic, for tests).
    pub fn from_seed(seed: &str) -> Wallet {
        let key = SigningKey::from_slice(&evm::keccak(seed.as_bytes())).expect("a 32-byte key");
        let address = evm::address_of(key.verifying_key());
        Wallet { key, address }
    }

    /// The authorization as JSON and its signature, made over `t`.
    pub fn sign(&self, t: &Terms) -> (Value, String) {
        let auth = TransferWithAuthorization {
            from: self.address,
            to: Address::parse(&t.to).unwrap_or(Address([0; 20])),
            value: t.value,
            valid_after: t.valid_after as u128,
            valid_before: t.valid_before as u128,
            nonce: t.nonce,
        };
        let domain = Domain {
            name: t.domain_name.clone(),
            version: t.domain_version.clone(),
            chain_id: t.chain_id,
            verifying_contract: Address::parse(&t.asset).unwrap_or(Address([0; 20])),
        };
        let signature = evm::sign(&self.key, &auth.digest(&domain));
        let json = json!({
            "from": self.address.checksummed(),
            "to": t.to,
            "value": t.value.to_string(),
            "validAfter": t.valid_after.to_string(),
            "validBefore": t.valid_before.to_string(),
            "nonce": format!("0x{}", hex::encode(t.nonce)),
        });
        (json, signature)
    }

    /// A v1 `X-PAYMENT` value.
    pub fn v1(&self, t: &Terms) -> String {
        let (authorization, signature) = self.sign(t);
        encode(&json!({
            "x402Version": 1,
            "scheme": "exact",
            "network": t.network,
            "payload": {"signature": signature, "authorization": authorization},
        }))
    }

    /// A v2 `PAYMENT-SIGNATURE` value accepting `accepted` (the requirements of a 402).
    pub fn v2(&self, t: &Terms, accepted: &Value) -> String {
        let (authorization, signature) = self.sign(t);
        encode(&json!({
            "x402Version": 2,
            "accepted": accepted,
            "payload": {"signature": signature, "authorization": authorization},
        }))
    }

    /// An EIP-191 `personal_sign` signature of `text` (a sign-in message).
    pub fn personal_sign(&self, text: &str) -> String {
        evm::sign(&self.key, &evm::personal_digest(text.as_bytes()))
    }
}

/// Base64 of a JSON value, as the payment headers carry it.
pub fn encode(v: &Value) -> String {
    STANDARD.encode(v.to_string())
}

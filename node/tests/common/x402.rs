//! x402 test kit: a real `relay dev-facilitator` process, and wallets (k256 keys) that sign real
//! EIP-3009 authorizations, encoded as v1 `X-PAYMENT` or v2 `PAYMENT-SIGNATURE` headers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use relay_api::x402::evm::{self, Address, Domain, SigningKey, TransferWithAuthorization};
use serde_json::{json, Value};

/// Where payments go in these tests.
pub const PAY_TO: &str = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";
/// USDC on Base Sepolia and its EIP-712 domain.
pub const ASSET: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";

pub struct Facilitator {
    child: Child,
    pub url: String,
}

impl Facilitator {
    /// A facilitator with `extra` flags (`--fund`, `--refuse-settle`, `--balance`).
    pub fn start(extra: &[&str]) -> Facilitator {
        let mut child = Command::new(env!("CARGO_BIN_EXE_relay"))
            .arg("dev-facilitator")
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn facilitator");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("facilitator address");
        assert!(line.starts_with("http://"), "facilitator said {line:?}");
        Facilitator {
            child,
            url: line.trim().to_string(),
        }
    }

    /// The flags that point a node at this facilitator.
    pub fn relay_args(&self) -> Vec<String> {
        vec![
            "--x402-facilitator-url".into(),
            self.url.clone(),
            "--x402-pay-to".into(),
            PAY_TO.into(),
        ]
    }
}

impl Drop for Facilitator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
    pub network: String,
    pub domain_name: String,
}

pub fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

impl Wallet {
    pub fn new(seed: &str) -> Wallet {
        let key = SigningKey::from_slice(&evm::keccak(seed.as_bytes())).unwrap();
        let address = evm::address_of(key.verifying_key());
        Wallet { key, address }
    }

    /// Terms that pay `value` to the test payTo, valid now for ten minutes, with a fresh nonce.
    pub fn terms(&self, value: u64) -> Terms {
        let mut nonce = [0u8; 32];
        getrandom::fill(&mut nonce).unwrap();
        Terms {
            to: PAY_TO.into(),
            value: value as u128,
            valid_after: now_s() - 60,
            valid_before: now_s() + 600,
            nonce,
            network: "base-sepolia".into(),
            domain_name: "USDC".into(),
        }
    }

    /// The authorization and its signature (made over `t`; a test may change `t` after signing).
    pub fn sign(&self, t: &Terms) -> (Value, String) {
        let auth = TransferWithAuthorization {
            from: self.address,
            to: Address::parse(&t.to).unwrap(),
            value: t.value,
            valid_after: t.valid_after as u128,
            valid_before: t.valid_before as u128,
            nonce: t.nonce,
        };
        let domain = Domain {
            name: t.domain_name.clone(),
            version: "2".into(),
            chain_id: 84532,
            verifying_contract: Address::parse(ASSET).unwrap(),
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

    /// An EIP-191 `personal_sign` signature of `text` (a sign-in message).
    pub fn personal_sign(&self, text: &str) -> String {
        evm::sign(&self.key, &evm::personal_digest(text.as_bytes()))
    }

    /// A Sign-In with Ethereum message for `domain` with `nonce`, issued now.
    pub fn siwe_message(&self, domain: &str, nonce: &str, chain_id: u64) -> String {
        let issued = chrono_now();
        format!(
            "{domain} wants you to sign in with your Ethereum account:\n{}\n\nSign in to Relay.\n\nURI: http://{domain}\nVersion: 1\nChain ID: {chain_id}\nNonce: {nonce}\nIssued At: {issued}",
            self.address.checksummed()
        )
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
}

pub fn encode(v: &Value) -> String {
    STANDARD.encode(v.to_string())
}

pub fn decode(header: &str) -> Value {
    serde_json::from_slice(&STANDARD.decode(header).expect("base64")).expect("json")
}

/// Now as RFC 3339 (UTC, seconds).
pub fn chrono_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

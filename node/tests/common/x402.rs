//! x402 test kit: a real `relay dev-facilitator` process, and wallets (k256 keys) that sign real
//! EIP-3009 authorizations, encoded as v1 `X-PAYMENT` or v2 `PAYMENT-SIGNATURE` headers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
pub use relay_api::x402::wallet::Terms;
use serde_json::Value;

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

pub fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A test wallet: relay_api's, with the tests' defaults (Base Sepolia USDC to [`PAY_TO`]).
pub struct Wallet(relay_api::x402::wallet::Wallet);

impl std::ops::Deref for Wallet {
    type Target = relay_api::x402::wallet::Wallet;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Wallet {
    pub fn new(seed: &str) -> Wallet {
        Wallet(relay_api::x402::wallet::Wallet::from_seed(seed))
    }

    /// Terms that pay `value` to the test payTo, valid now for ten minutes, with a fresh nonce.
    pub fn terms(&self, value: u64) -> Terms {
        Terms::base_sepolia(PAY_TO, value, now_s())
    }

    /// A Sign-In with Ethereum message for `domain` with `nonce`, issued now.
    pub fn siwe_message(&self, domain: &str, nonce: &str, chain_id: u64) -> String {
        let issued = chrono_now();
        format!(
            "{domain} wants you to sign in with your Ethereum account:\n{}\n\nSign in to Relay.\n\nURI: http://{domain}\nVersion: 1\nChain ID: {chain_id}\nNonce: {nonce}\nIssued At: {issued}",
            self.address.checksummed()
        )
    }
}

#[allow(unused_imports)]
pub use relay_api::x402::wallet::encode;

pub fn decode(header: &str) -> Value {
    serde_json::from_slice(&STANDARD.decode(header).expect("base64")).expect("json")
}

/// Now as RFC 3339 (UTC, seconds).
pub fn chrono_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The price the node at `base` quotes for `size` bytes for an hour.
pub async fn price(base: &str, size: usize) -> u64 {
    let q: Value = reqwest::Client::new()
        .get(format!("{base}/api/quote?size_bytes={size}&duration_seconds=3600"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    q["priceMicros"].as_str().unwrap().parse().unwrap()
}

/// A sign-in nonce from the node at `base`.
pub async fn siwe_nonce(base: &str) -> String {
    let v: Value = reqwest::Client::new()
        .post(format!("{base}/api/auth/siwe/nonce"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["nonce"].as_str().unwrap().to_string()
}

/// `POST /api/auth/siwe` to the node at `base`.
pub async fn sign_in(base: &str, message: &str, signature: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/api/auth/siwe"))
        .json(&serde_json::json!({"message": message, "signature": signature}))
        .send()
        .await
        .unwrap()
}

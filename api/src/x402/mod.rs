//! x402: paying for a create with a signed stablecoin authorization instead of an account.
//!
//! - [`evm`]: Keccak, addresses, the EIP-712 digest of `TransferWithAuthorization`, recovery.
//! - [`payment`]: decoding `X-PAYMENT` (v1) / `PAYMENT-SIGNATURE` (v2) and checking one offline
//!   against this request's price.
//! - [`facilitator`]: the `/verify` and `/settle` calls, bounded in time.
//! - [`offer`]: what a 402 carries (the v1 body and the v2 `PAYMENT-REQUIRED` header), and the
//!   `X-PAYMENT-RESPONSE` / `PAYMENT-RESPONSE` of a paid answer.
//!
//! The flow (in [`crate::purchase`]): decode and recover the signer, check the authorization
//! offline, have the facilitator verify it, write the lease with the payment (the ledger lets an
//! authorization pay once, for exactly its price), settle, record the settlement. A lease that
//! cannot be written is never settled; a settlement that fails voids the lease.

pub mod evm;
pub mod facilitator;
pub mod offer;
pub mod payment;
pub mod settle;
pub mod wallet;

use std::time::Duration;

use evm::{Address, Domain};

/// Seconds before `validBefore` under which an authorization is refused: it must still be valid
/// when the facilitator settles it.
pub const VALID_BEFORE_MARGIN_SECONDS: u64 = 6;
/// The longest validity window taken (the ledger keeps each spent authorization that long).
pub const VALIDITY_MAX_SECONDS: u64 = relay_raft::sm::x402::VALIDITY_MAX_MS / 1000;

/// How this node takes x402 payments (`--x402-*`).
#[derive(Clone, Debug)]
pub struct X402Config {
    /// Base URL of the facilitator, without a trailing slash.
    pub facilitator_url: String,
    pub pay_to: Address,
    pub network: Network,
    /// The token contract, and its EIP-712 domain name and version.
    pub asset: Address,
    pub asset_name: String,
    pub asset_version: String,
    /// How long a client may take to pay (`maxTimeoutSeconds` of the requirements).
    pub max_timeout_seconds: u64,
    /// How long a facilitator call may take before the request is answered 503.
    pub facilitator_timeout: Duration,
    /// A payment whose settlement is unknown is settled again once its last attempt is this old.
    pub settle_retry: Duration,
}

impl X402Config {
    pub fn domain(&self) -> Domain {
        Domain {
            name: self.asset_name.clone(),
            version: self.asset_version.clone(),
            chain_id: self.network.chain_id,
            verifying_contract: self.asset,
        }
    }
}

/// An EVM network by its v1 name and its CAIP-2 id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    /// The v1 name (`base-sepolia`), or the CAIP-2 id for a network v1 has no name for.
    pub v1_name: String,
    pub chain_id: u64,
}

impl Network {
    /// `eip155:<chain id>`.
    pub fn caip2(&self) -> String {
        format!("eip155:{}", self.chain_id)
    }
}

/// A network x402 names, and USDC on it.
pub struct Known {
    pub v1_name: &'static str,
    pub chain_id: u64,
    pub usdc: &'static str,
    pub usdc_name: &'static str,
    pub usdc_version: &'static str,
}

pub const KNOWN: &[Known] = &[
    Known {
        v1_name: "base-sepolia",
        chain_id: 84532,
        usdc: "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        usdc_name: "USDC",
        usdc_version: "2",
    },
    Known {
        v1_name: "base",
        chain_id: 8453,
        usdc: "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
        usdc_name: "USD Coin",
        usdc_version: "2",
    },
];

/// A network by its v1 name or CAIP-2 id (`base-sepolia`, `eip155:84532`); an `eip155:` id x402
/// v1 has no name for is accepted, but then the asset and its domain must be given.
pub fn network(text: &str) -> Option<(Network, Option<&'static Known>)> {
    if let Some(k) = KNOWN
        .iter()
        .find(|k| k.v1_name == text || format!("eip155:{}", k.chain_id) == text)
    {
        let net = Network {
            v1_name: k.v1_name.into(),
            chain_id: k.chain_id,
        };
        return Some((net, Some(k)));
    }
    let chain_id = text.strip_prefix("eip155:")?.parse::<u64>().ok().filter(|c| *c > 0)?;
    Some((
        Network {
            v1_name: text.into(),
            chain_id,
        },
        None,
    ))
}

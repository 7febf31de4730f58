//! `--x402-*`: how this node takes x402 payments. Without `--x402-facilitator-url`, x402 is off
//! and paid creates need an API key.

use std::time::Duration;

use clap::Args;
use relay_api::x402::evm::Address;
use relay_api::x402::{self, X402Config};

use crate::config::ConfigError;

#[derive(Args, Debug, Clone)]
pub struct X402Args {
    /// The x402 facilitator's base URL (it answers POST /verify and /settle); x402 is on only
    /// with it.
    #[arg(long, env = "RELAY_X402_FACILITATOR_URL")]
    pub x402_facilitator_url: Option<String>,
    /// The address x402 payments go to (required with --x402-facilitator-url).
    #[arg(long, env = "RELAY_X402_PAY_TO")]
    pub x402_pay_to: Option<String>,
    /// The network: base-sepolia, base, or a CAIP-2 id (eip155:84532).
    #[arg(long, env = "RELAY_X402_NETWORK", default_value = "base-sepolia")]
    pub x402_network: String,
    /// The token contract (default: USDC on the network).
    #[arg(long, env = "RELAY_X402_ASSET")]
    pub x402_asset: Option<String>,
    /// The token's EIP-712 domain name (default: USDC's on the network: "USDC" on Base Sepolia,
    /// "USD Coin" on Base).
    #[arg(long, env = "RELAY_X402_ASSET_NAME")]
    pub x402_asset_name: Option<String>,
    /// The token's EIP-712 domain version (default: USDC's, "2").
    #[arg(long, env = "RELAY_X402_ASSET_VERSION")]
    pub x402_asset_version: Option<String>,
    /// How long a client may take to pay after a 402 (maxTimeoutSeconds), seconds.
    #[arg(long, env = "RELAY_X402_MAX_TIMEOUT_SECONDS", default_value_t = 300)]
    pub x402_max_timeout_seconds: u64,
    /// How long one facilitator call may take before the request is answered 503, milliseconds.
    #[arg(long, env = "RELAY_X402_FACILITATOR_TIMEOUT_MS", default_value_t = 10_000)]
    pub x402_facilitator_timeout_ms: u64,
    /// A payment whose settlement is unknown (the facilitator did not answer) is settled again
    /// by the leader once its last attempt is this old, seconds; at least three facilitator
    /// timeouts, so an attempt still under way is never doubled.
    #[arg(long, env = "RELAY_X402_SETTLE_RETRY_SECONDS", default_value_t = 60)]
    pub x402_settle_retry_seconds: u64,
}

impl X402Args {
    /// The x402 settings, `None` when x402 is off; refuses values that cannot work.
    pub fn config(&self) -> Result<Option<X402Config>, ConfigError> {
        let bad = |msg: String| Err(ConfigError(msg));
        let Some(url) = &self.x402_facilitator_url else {
            if self.x402_pay_to.is_some() || self.x402_asset.is_some() {
                return bad("--x402-pay-to and --x402-asset need --x402-facilitator-url".into());
            }
            return Ok(None);
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() > 2048 {
            return bad(format!("--x402-facilitator-url {url:?} must be an http(s) URL"));
        }
        let Some(pay_to) = self.x402_pay_to.as_deref() else {
            return bad("--x402-facilitator-url needs --x402-pay-to".into());
        };
        let Some(pay_to) = Address::parse(pay_to) else {
            return bad(format!(
                "--x402-pay-to {pay_to:?} is not an address (0x + 40 hex digits)"
            ));
        };
        let Some((network, known)) = x402::network(&self.x402_network) else {
            return bad(format!(
                "--x402-network {:?}: use base-sepolia, base, or eip155:<chain id>",
                self.x402_network
            ));
        };
        let asset = match (&self.x402_asset, known) {
            (Some(a), _) => {
                Address::parse(a).ok_or_else(|| ConfigError(format!("--x402-asset {a:?} is not an address")))?
            }
            (None, Some(k)) => Address::parse(k.usdc).expect("known USDC addresses parse"),
            (None, None) => return bad("--x402-asset is required on a network without a known USDC".into()),
        };
        let default_domain = known.filter(|_| self.x402_asset.is_none());
        let (asset_name, asset_version) = match (&self.x402_asset_name, &self.x402_asset_version, default_domain) {
            (Some(n), Some(v), _) => (n.clone(), v.clone()),
            (n, v, Some(k)) => (
                n.clone().unwrap_or_else(|| k.usdc_name.into()),
                v.clone().unwrap_or_else(|| k.usdc_version.into()),
            ),
            _ => return bad("--x402-asset-name and --x402-asset-version are required with another asset".into()),
        };
        if asset_name.is_empty() || asset_name.len() > 64 || asset_version.is_empty() || asset_version.len() > 16 {
            return bad("--x402-asset-name (1..=64 bytes) and --x402-asset-version (1..=16 bytes)".into());
        }
        if !(10..=3600).contains(&self.x402_max_timeout_seconds) {
            return bad("--x402-max-timeout-seconds must be 10 to 3600".into());
        }
        if !(100..=60_000).contains(&self.x402_facilitator_timeout_ms) {
            return bad("--x402-facilitator-timeout-ms must be 100 to 60000".into());
        }
        if self.x402_settle_retry_seconds == 0
            || self.x402_settle_retry_seconds * 1000 < 3 * self.x402_facilitator_timeout_ms
            || self.x402_settle_retry_seconds > 3600
        {
            return bad("--x402-settle-retry-seconds: at least three facilitator timeouts, at most 3600".into());
        }
        Ok(Some(X402Config {
            facilitator_url: url.trim_end_matches('/').to_string(),
            pay_to,
            network,
            asset,
            asset_name,
            asset_version,
            max_timeout_seconds: self.x402_max_timeout_seconds,
            facilitator_timeout: Duration::from_millis(self.x402_facilitator_timeout_ms),
            settle_retry: Duration::from_secs(self.x402_settle_retry_seconds),
        }))
    }
}

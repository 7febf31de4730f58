//! `relay serve`'s baton ceilings (`--baton-*`): what one baton, and one owner, may hold.

use clap::Args;
use relay_api::baton::BatonLimits;

use crate::config::ConfigError;

#[derive(Args, Clone, Debug)]
pub struct BatonArgs {
    /// The largest size_bytes a baton may reserve.
    #[arg(long, env = "RELAY_BATON_MAX_SIZE_BYTES", default_value_t = 1 << 30)]
    pub baton_max_size_bytes: u64,
    /// The largest read budget (egress_bytes) a baton may buy.
    #[arg(long, env = "RELAY_BATON_MAX_EGRESS_BYTES", default_value_t = 1 << 40)]
    pub baton_max_egress_bytes: u64,
    /// Sharing tokens one baton may have at once (at most 100).
    #[arg(long, env = "RELAY_BATON_MAX_TOKENS", default_value_t = 100)]
    pub baton_max_tokens: u32,
    /// Entries one append baton may hold.
    #[arg(long, env = "RELAY_BATON_MAX_ENTRIES", default_value_t = 10_000)]
    pub baton_max_entries: u64,
    /// The largest entry (entries ride in the ledger: at most 1 MiB).
    #[arg(long, env = "RELAY_BATON_MAX_ENTRY_BYTES", default_value_t = 64 << 10)]
    pub baton_max_entry_bytes: u64,
    /// Live batons one owner may have.
    #[arg(long, env = "RELAY_BATON_MAX_PER_OWNER", default_value_t = 10_000)]
    pub baton_max_per_owner: u64,
}

impl BatonArgs {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let ok = self.baton_max_size_bytes >= 1
            && (1..=relay_raft::baton::TOKENS_MAX).contains(&self.baton_max_tokens)
            && (1..=relay_raft::baton::ENTRIES_MAX).contains(&self.baton_max_entries)
            && (1..=relay_raft::sm::INLINE_BODY_MAX as u64).contains(&self.baton_max_entry_bytes)
            && self.baton_max_per_owner >= 1;
        match ok {
            true => Ok(()),
            false => Err(ConfigError(format!(
                "baton limits: size >= 1, tokens 1..={}, entries 1..={}, entry bytes 1..={}, per owner >= 1",
                relay_raft::baton::TOKENS_MAX,
                relay_raft::baton::ENTRIES_MAX,
                relay_raft::sm::INLINE_BODY_MAX
            ))),
        }
    }

    pub fn limits(&self) -> BatonLimits {
        BatonLimits {
            max_size_bytes: self.baton_max_size_bytes,
            max_egress_bytes: self.baton_max_egress_bytes,
            max_tokens: self.baton_max_tokens,
            max_entries: self.baton_max_entries,
            max_entry_bytes: self.baton_max_entry_bytes,
            max_per_owner: self.baton_max_per_owner,
        }
    }
}

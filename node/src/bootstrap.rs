//! The first credentials, created once by the founding node, each printed once (labelled) and
//! kept in the data dir (mode 0600) so later starts reuse them:
//!
//! - `admin-api-key`: `rs_admin_…`, cluster administration only; it acts for no account.
//! - `bootstrap-api-key`: `rs_live_…`, the agents' key of the first account `acct_bootstrap`.
//!
//! The two are different keys of different kinds: the key handed to agents can never
//! administer the cluster.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use relay_api::auth::{key_hash, ADMIN_KEY_PREFIX, BOOTSTRAP_ACCOUNT_ID};
use relay_raft::ops::{AddAdminKey, AddApiKey, CreateAccount, SetPricing};
use relay_raft::pricing::Pricing;
use relay_raft::{IdempotencyKey, Ledger};
use tracing::{info, warn};

use crate::server::NodeError;

const AGENT_KEY_FILE: &str = "bootstrap-api-key";
const ADMIN_KEY_FILE: &str = "admin-api-key";

/// What the founding node (or an operator's flags) asks for.
pub struct Bootstrap<'a> {
    pub data_dir: &'a Path,
    pub agent_key: Option<&'a str>,
    pub admin_key: Option<&'a str>,
    pub balance_micros: u64,
    /// The prices the flags name: the cluster's, when this node founds it.
    pub pricing: Pricing,
    /// Make new keys where none is given or saved: only the node that founds the cluster does;
    /// a member (restarted with or without `--join`) registers only keys it was given or keeps.
    pub mint: bool,
}

/// Registers the admin key and the first account with its agent key, and the founder's prices,
/// unless already there.
pub async fn ensure(ledger: &Ledger, b: Bootstrap<'_>) -> Result<(), NodeError> {
    ensure_admin_key(ledger, b.data_dir, b.admin_key, b.mint).await?;
    ensure_pricing(ledger, b.pricing, b.mint).await?;
    ensure_account(ledger, b.data_dir, b.agent_key, b.balance_micros, b.mint).await
}

/// Seeds the cluster's prices from the founder's flags. Prices live in the ledger: a node whose
/// flags say otherwise charges the ledger's, and says so.
async fn ensure_pricing(ledger: &Ledger, flags: Pricing, founding: bool) -> Result<(), NodeError> {
    // A member may still be catching up: its own state is enough for a warning.
    let set = match founding {
        true => ledger.linearizable().await?.pricing_set()?,
        false => ledger.reader().pricing_set()?,
    };
    match set {
        None if founding => {
            let answer = ledger
                .run(
                    Some(IdempotencyKey::internal(BOOTSTRAP_ACCOUNT_ID, "bootstrap-pricing")),
                    SetPricing {
                        rate_micros_per_gb_day: Some(flags.rate_micros_per_gb_day),
                        min_charge_micros: Some(flags.min_charge_micros),
                    },
                )
                .await?;
            if let Err(rejection) = answer {
                return Err(NodeError::Bootstrap(format!("prices: {rejection}")));
            }
            info!(
                rate_micros_per_gb_day = flags.rate_micros_per_gb_day,
                min_charge_micros = flags.min_charge_micros,
                "bootstrap: cluster prices set"
            );
        }
        Some(cluster) if cluster != flags => warn!(
            cluster_rate_micros_per_gb_day = cluster.rate_micros_per_gb_day,
            cluster_min_charge_micros = cluster.min_charge_micros,
            flag_rate_micros_per_gb_day = flags.rate_micros_per_gb_day,
            flag_min_charge_micros = flags.min_charge_micros,
            "the cluster's prices (in the ledger) differ from this node's flags; the cluster's apply \
             (change them with POST /cluster/pricing)"
        ),
        _ => {}
    }
    Ok(())
}

/// The given key, else the saved one, else (when minting) a new one; and whether it is new.
fn choose_key(
    path: &Path,
    given: Option<&str>,
    mint: bool,
    make: impl FnOnce() -> Result<String, NodeError>,
) -> Result<Option<(String, bool)>, NodeError> {
    let stored = std::fs::read_to_string(path).ok().map(|s| s.trim().to_string());
    Ok(match (given, stored) {
        (Some(k), _) => Some((k.to_string(), false)),
        (None, Some(k)) if !k.is_empty() => Some((k, false)),
        (None, _) if mint => Some((make()?, true)),
        (None, _) => None,
    })
}

fn idem(step: &str, hash: &[u8; 32]) -> Option<IdempotencyKey> {
    Some(IdempotencyKey::internal(
        BOOTSTRAP_ACCOUNT_ID,
        format!("bootstrap-{step}-{}", hex::encode(&hash[..8])),
    ))
}

async fn ensure_admin_key(ledger: &Ledger, data_dir: &Path, given: Option<&str>, mint: bool) -> Result<(), NodeError> {
    let path = data_dir.join(ADMIN_KEY_FILE);
    let chosen = choose_key(&path, given, mint, || {
        relay_api::ids::secret_hex()
            .map(|s| format!("{ADMIN_KEY_PREFIX}{s}"))
            .map_err(|e| NodeError::Bootstrap(e.to_string()))
    })?;
    let Some((key, fresh)) = chosen else {
        return Ok(());
    };
    let hash = key_hash(&key);
    if !ledger.reader().is_admin_key_hash(&hash)? {
        let added = ledger
            .run(
                idem("admin-key", &hash),
                AddAdminKey {
                    key_hash_hex: hex::encode(hash),
                },
            )
            .await?;
        if let Err(rejection) = added {
            return Err(NodeError::Bootstrap(format!("admin key: {rejection}")));
        }
    }
    write_key_file(&path, &key)?;
    if fresh {
        println!(
            "relay: admin key (cluster administration only; never give it to agents; saved to {}): {key}",
            path.display()
        );
    }
    info!(path = %path.display(), "bootstrap: admin key registered");
    Ok(())
}

async fn ensure_account(
    ledger: &Ledger,
    data_dir: &Path,
    given: Option<&str>,
    balance_micros: u64,
    mint: bool,
) -> Result<(), NodeError> {
    let path = data_dir.join(AGENT_KEY_FILE);
    let chosen = choose_key(&path, given, mint, || {
        relay_api::ids::api_key().map_err(|e| NodeError::Bootstrap(e.to_string()))
    })?;
    let Some((key, fresh)) = chosen else {
        return Ok(());
    };
    let hash = key_hash(&key);
    if ledger.reader().account_for_key_hash(&hash)?.is_some() {
        info!("bootstrap: account and key already present");
        return Ok(());
    }
    let created = ledger
        .run(
            idem("account", &hash),
            CreateAccount {
                account_id: BOOTSTRAP_ACCOUNT_ID.into(),
                balance_micros,
            },
        )
        .await?;
    if let Ok(true) = created {
        info!(
            account = BOOTSTRAP_ACCOUNT_ID,
            balance_micros, "bootstrap: account created"
        );
    }
    let added = ledger
        .run(
            idem("key", &hash),
            AddApiKey {
                account_id: BOOTSTRAP_ACCOUNT_ID.into(),
                key_hash_hex: hex::encode(hash),
            },
        )
        .await?;
    if let Err(rejection) = added {
        return Err(NodeError::Bootstrap(format!("agent key: {rejection}")));
    }
    write_key_file(&path, &key)?;
    if fresh {
        println!(
            "relay: agent API key of account {BOOTSTRAP_ACCOUNT_ID} (for agents; saved to {}): {key}",
            path.display()
        );
    }
    info!(path = %path.display(), "bootstrap: agent API key registered");
    Ok(())
}

fn write_key_file(path: &Path, key: &str) -> Result<(), NodeError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| NodeError::Bootstrap(format!("{}: {e}", path.display())))?;
    writeln!(f, "{key}")
        .and_then(|_| f.sync_all())
        .map_err(|e| NodeError::Bootstrap(format!("{}: {e}", path.display())))
}

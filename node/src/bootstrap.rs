//! The first account: created once, its API key printed once and kept in
//! `<data-dir>/bootstrap-api-key` (mode 0600) so later starts reuse it.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use relay_api::auth::{key_hash, BOOTSTRAP_ACCOUNT_ID};
use relay_raft::{Command, IdempotencyKey, Ledger, Outcome};
use tracing::info;

use crate::server::NodeError;

const KEY_FILE: &str = "bootstrap-api-key";

pub async fn ensure_account(
    ledger: &Ledger,
    data_dir: &Path,
    given_key: Option<&str>,
    balance_micros: u64,
) -> Result<(), NodeError> {
    let key_path = data_dir.join(KEY_FILE);
    let stored_key = std::fs::read_to_string(&key_path).ok().map(|s| s.trim().to_string());
    let (key, fresh) = match (given_key, stored_key) {
        (Some(k), _) => (k.to_string(), false),
        (None, Some(k)) if !k.is_empty() => (k, false),
        (None, _) => (
            relay_api::ids::api_key().map_err(|e| NodeError::Bootstrap(e.to_string()))?,
            true,
        ),
    };
    let hash = key_hash(&key);
    if ledger.reader().account_for_key_hash(&hash)?.is_some() {
        info!("bootstrap: account and key already present");
        return Ok(());
    }
    let idem = |step: &str| {
        Some(IdempotencyKey {
            scope: BOOTSTRAP_ACCOUNT_ID.into(),
            key: format!("bootstrap-{step}-{}", hex::encode(&hash[..8])),
        })
    };
    let created = ledger
        .write(
            idem("account"),
            Command::CreateAccount {
                account_id: BOOTSTRAP_ACCOUNT_ID.into(),
                balance_micros,
            },
        )
        .await?;
    if let Ok(Outcome::AccountCreated { created: true }) = created {
        info!(
            account = BOOTSTRAP_ACCOUNT_ID,
            balance_micros, "bootstrap: account created"
        );
    }
    let added = ledger
        .write(
            idem("key"),
            Command::AddApiKey {
                account_id: BOOTSTRAP_ACCOUNT_ID.into(),
                key_hash_hex: hex::encode(hash),
            },
        )
        .await?;
    if let Err(rejection) = added {
        return Err(NodeError::Bootstrap(rejection.to_string()));
    }
    write_key_file(&key_path, &key)?;
    if fresh {
        println!(
            "relay: bootstrap API key (shown once, also saved to {}): {key}",
            key_path.display()
        );
    }
    info!(path = %key_path.display(), "bootstrap: API key registered");
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

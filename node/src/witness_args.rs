//! `relay serve`'s witness log settings (`--witness-*`): the log's origin, how long records are
//! kept, the secret that seals its signing key, and an operator-supplied key.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use relay_api::witness::{seal, WitnessSettings};
use relay_raft::tlog::{note, Signer};
use relay_raft::witness::{CHECKPOINT_INTERVAL_MIN_MS, RETENTION_MAX_MS, RETENTION_MIN_MS};

use crate::config::ConfigError;

/// The longest secret or key file read.
const FILE_MAX_BYTES: u64 = 4096;

#[derive(Args, Clone, Debug)]
pub struct WitnessArgs {
    /// The witness log's origin (checkpoint first line and key name), fixed when the cluster
    /// founds its log. Default: `relay.witness/<hash of the first key>`.
    #[arg(long, env = "RELAY_WITNESS_ORIGIN")]
    pub witness_origin: Option<String>,
    /// How long witness records are kept, in days (default seven years).
    #[arg(long, env = "RELAY_WITNESS_RETENTION_DAYS", default_value_t = 2557)]
    pub witness_retention_days: u64,
    /// A file holding the secret that seals the witness signing key in the ledger (every node
    /// needs the same one). Default: derived from the cluster secret.
    #[arg(long, env = "RELAY_WITNESS_SECRET_FILE", conflicts_with = "witness_secret")]
    pub witness_secret_file: Option<PathBuf>,
    /// The witness secret itself (prefer the file or the environment: flags show in `ps`).
    #[arg(long, env = "RELAY_WITNESS_SECRET", hide_env_values = true)]
    pub witness_secret: Option<String>,
    /// A file holding the operator's signing key (`PRIVATE+KEY+<origin>+<id>+<key>`, as
    /// `relay witness keygen` or Go's `note.GenerateKey` writes it): the cluster signs with it.
    #[arg(long, env = "RELAY_WITNESS_KEY_FILE")]
    pub witness_key_file: Option<PathBuf>,
    /// How often the leader signs a checkpoint while leaves arrive (at least 1000 ms).
    #[arg(long, env = "RELAY_WITNESS_CHECKPOINT_INTERVAL_MS", default_value_t = 1000)]
    pub witness_checkpoint_interval_ms: u64,
}

fn read_small(path: &PathBuf, what: &str) -> Result<String, ConfigError> {
    let bad = |why: String| ConfigError(format!("{what} {}: {why}", path.display()));
    let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
    if meta.len() > FILE_MAX_BYTES {
        return Err(bad(format!("larger than {FILE_MAX_BYTES} bytes")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    Ok(text.trim().to_string())
}

impl WitnessArgs {
    /// No witness secret and no key of the operator's: the key is sealed under the cluster secret.
    pub fn from_cluster_secret(&self) -> bool {
        self.witness_secret.is_none() && self.witness_secret_file.is_none() && self.witness_key_file.is_none()
    }

    /// Checks the flags and reads the files; `cluster_secret` seals the key when no witness
    /// secret is given.
    pub fn settings(&self, cluster_secret: &str) -> Result<WitnessSettings, ConfigError> {
        let retention_ms = self.witness_retention_days.saturating_mul(86_400_000);
        if !(RETENTION_MIN_MS..=RETENTION_MAX_MS).contains(&retention_ms) {
            return Err(ConfigError("--witness-retention-days must be 1 to 36525".into()));
        }
        if self.witness_checkpoint_interval_ms < CHECKPOINT_INTERVAL_MIN_MS
            || self.witness_checkpoint_interval_ms > 3_600_000
        {
            return Err(ConfigError(
                "--witness-checkpoint-interval-ms must be 1000 to 3600000".into(),
            ));
        }
        let secret = match (&self.witness_secret_file, &self.witness_secret) {
            (Some(path), _) => read_small(path, "--witness-secret-file")?,
            (None, Some(s)) => s.trim().to_string(),
            (None, None) => format!("cluster-secret:{cluster_secret}"),
        };
        if secret.len() < 16 {
            return Err(ConfigError("the witness secret must be at least 16 characters".into()));
        }
        let operator_key = match &self.witness_key_file {
            None => None,
            Some(path) => Some(
                Signer::parse(&read_small(path, "--witness-key-file")?)
                    .map_err(|e| ConfigError(format!("--witness-key-file: {e}")))?,
            ),
        };
        let origin = match (&self.witness_origin, &operator_key) {
            (Some(o), Some(k)) if *o != k.name => {
                return Err(ConfigError(format!(
                    "--witness-origin {o:?} differs from the key file's name {:?}",
                    k.name
                )))
            }
            (Some(o), _) => Some(o.clone()),
            (None, k) => k.as_ref().map(|k| k.name.clone()),
        };
        if let Some(o) = &origin {
            if !note::valid_name(o) {
                return Err(ConfigError(
                    "--witness-origin must be 1 to 256 characters without spaces or '+'".into(),
                ));
            }
        }
        Ok(WitnessSettings {
            origin,
            retention_ms,
            seal_key: seal::derive_key(secret.as_bytes()),
            operator_key,
            interval: Duration::from_millis(self.witness_checkpoint_interval_ms),
        })
    }
}

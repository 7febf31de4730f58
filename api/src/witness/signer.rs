//! The leader's checkpoint signer. Once a second (at most), the leader founds the log's key if
//! there is none (or installs the operator's), opens the active key with its witness secret, and
//! signs the checkpoint of the log's size whenever leaves arrived since the last one (or the key
//! changed). The size and root come from its applied state; the ledger checks both again.

use relay_raft::ops::{AddWitnessKey, SignCheckpoint};
use relay_raft::tlog::{merkle, Checkpoint, Signer};
use relay_raft::witness::WitnessLog;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::seal;
use crate::error::{ApiError, ApiResult};
use crate::ops;
use crate::state::AppState;

pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut key: Option<Signer> = None;
    let mut last_error = String::new();
    let interval = state.config.witness.interval;
    // After a failed round the next waits longer (up to a minute), so a refusal that persists
    // (a key the ledger will not take) costs at most one Raft entry a minute.
    let mut wait = interval;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        if !state.ledger.is_leader() {
            wait = interval;
            continue;
        }
        match tick(&state, &mut key).await {
            Ok(()) => {
                last_error.clear();
                wait = interval;
            }
            Err(e) => {
                wait = (wait * 2).min(std::time::Duration::from_secs(60));
                state.metrics.witness_signer_errors.inc();
                // Said once, not every second.
                let said = match &e {
                    ApiError::Internal(detail) => detail.clone(),
                    other => other.to_string(),
                };
                if said != last_error {
                    tracing::warn!(error = %said, "witness: no checkpoint signed");
                    last_error = said;
                }
            }
        }
    }
}

/// One round: found or rotate the key, or sign what is new.
pub async fn tick(state: &AppState, key: &mut Option<Signer>) -> ApiResult<()> {
    let settings = &state.config.witness;
    let reader = state.ledger.linearizable().await?;
    let log = reader.witness_log()?;
    let active = log.as_ref().and_then(WitnessLog::active).map(|k| k.public_key);
    if let Some(operator) = &settings.operator_key {
        if let Some(l) = &log {
            if operator.name != l.origin {
                return Err(ApiError::Internal(format!(
                    "--witness-key-file names the origin {:?}, but this cluster's witness log is {:?}",
                    operator.name, l.origin
                )));
            }
            if active != Some(operator.public_key()) && l.keys.len() >= relay_raft::witness::KEYS_MAX {
                return Err(ApiError::Internal(
                    "the witness log has had its maximum number of keys: it cannot take the key in --witness-key-file"
                        .into(),
                ));
            }
            if active != Some(operator.public_key()) && l.keys.iter().any(|k| k.public_key == operator.public_key()) {
                return Err(ApiError::Internal(
                    "the key in --witness-key-file was retired by a rotation, and a retired key never signs again: make a new one (relay witness keygen)".into(),
                ));
            }
        }
        if active != Some(operator.public_key()) {
            install(state, log.as_ref(), operator.clone(), true).await?;
        }
    } else if log.is_none() {
        install(state, None, generate()?, false).await?;
    }
    let reader = state.ledger.linearizable().await?;
    let log = reader
        .witness_log()?
        .ok_or_else(|| ApiError::Internal("no witness log after installing its key".into()))?;
    let Some(active) = log.active() else {
        return Err(ApiError::Internal("a witness log without a key".into()));
    };
    let signer = match key.take().filter(|k| k.public_key() == active.public_key) {
        Some(k) => k,
        None if active.operator_held() => settings
            .operator_key
            .clone()
            .filter(|k| k.public_key() == active.public_key)
            .ok_or_else(|| {
                ApiError::Internal(
                    "the active witness key is the operator's, and this node has no --witness-key-file holding it"
                        .into(),
                )
            })?,
        None => {
            let seed = seal::open(&settings.seal_key, &active.public_key, &active.sealed_seed).ok_or_else(|| {
                ApiError::Internal("the witness key does not open with this node's witness secret".into())
            })?;
            Signer::from_seed(&log.origin, &seed).map_err(|e| ApiError::Internal(e.to_string()))?
        }
    };
    let size = reader.witness_size()?;
    let latest = reader.witness_checkpoint()?;
    let due = match &latest {
        None => true,
        Some(c) => size > c.size || c.public_key != active.public_key,
    };
    if due {
        let root = merkle::root(&reader.witness_hashes(), size)?;
        let text = Checkpoint {
            origin: log.origin.clone(),
            size,
            root,
        }
        .text();
        let op = SignCheckpoint {
            size,
            root,
            public_key: active.public_key,
            signature: signer.signature(&text).to_vec(),
        };
        let signed = ops::run(state, None, op, "witness checkpoint").await?;
        state.metrics.witness_checkpoints.inc();
        state.metrics.witness_tree_size.set(signed.size as i64);
        tracing::debug!(size = signed.size, "witness checkpoint signed");
    }
    *key = Some(signer);
    Ok(())
}

fn generate() -> ApiResult<Signer> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| ApiError::Internal(format!("random key: {e}")))?;
    // The name is set when installed (the log's origin).
    Signer::from_seed("relay.witness", &seed).map_err(|e| ApiError::Internal(e.to_string()))
}

/// The default origin: named after the log's first key, so two clusters never share one.
pub fn default_origin(public_key: &[u8; 32]) -> String {
    format!("relay.witness/{}", hex::encode(&Sha256::digest(public_key)[..8]))
}

/// Installs `key`: as the founding key when the log has none, else as a rotation. An operator's
/// key is not stored (only its public half): it stays in the operator's file.
pub async fn install(state: &AppState, log: Option<&WitnessLog>, key: Signer, operator: bool) -> ApiResult<()> {
    let settings = &state.config.witness;
    let public_key = key.public_key();
    let origin = match log {
        Some(l) => l.origin.clone(),
        None => settings.origin.clone().unwrap_or_else(|| default_origin(&public_key)),
    };
    let sealed_seed = match operator {
        true => Vec::new(),
        false => seal::seal(&settings.seal_key, &public_key, &key.seed()).map_err(ApiError::Internal)?,
    };
    let op = AddWitnessKey {
        origin,
        public_key,
        sealed_seed,
        retention_ms: settings.retention_ms,
        first: log.is_none(),
    };
    let log = ops::run(state, None, op, "witness key").await?;
    tracing::info!(origin = %log.origin, keys = log.keys.len(), "witness signing key installed");
    Ok(())
}

/// An admin's rotation: a fresh key signs from now on; the old ones stay published.
pub async fn rotate(state: &AppState) -> ApiResult<String> {
    let log = state.ledger.linearizable().await?.witness_log()?;
    let key = generate()?;
    install(state, log.as_ref(), key.clone(), false).await?;
    let log = state
        .ledger
        .linearizable()
        .await?
        .witness_log()?
        .ok_or_else(|| ApiError::Internal("no witness log after a rotation".into()))?;
    Ok(relay_raft::tlog::Verifier::new(&log.origin, &key.public_key())
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .to_string())
}

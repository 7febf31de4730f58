//! Sessions and the keys that sign their tokens. A token is verified by any node from applied
//! state; a revocation or an expiry ends it everywhere.

use crate::command::{Outcome, Rejection, Response};
use crate::error::StoreError;
use crate::model::{Session, SessionKey};
use crate::ops::{AddSessionKey, OpenSession, RevokeSession};
use crate::store::keys::{self, META_SESSION_KEYS};
use crate::store::txn::Txn;

const CF: &str = "sessions";
/// Keys kept for verifying: a rotation leaves the previous ones valid for their sessions.
pub const SESSION_KEYS_KEPT: usize = 4;
/// The longest session.
pub const SESSION_MAX_MS: u64 = 24 * 3600 * 1000;
const ID_MAX_LEN: usize = 64;
const SUBJECT_MAX_LEN: usize = 128;

pub fn add_key(txn: &mut Txn<'_>, op: &AddSessionKey) -> Result<Response, StoreError> {
    let key = match hex::decode(&op.key_hex) {
        Ok(k) if k.len() == 32 => k,
        _ => return Ok(Err(Rejection::Invalid("a session key is 32 bytes of hex".into()))),
    };
    if op.kid.is_empty() || op.kid.len() > ID_MAX_LEN {
        return Ok(Err(Rejection::Invalid("key id must be 1 to 64 bytes".into())));
    }
    let mut all: Vec<SessionKey> = txn.get("meta", META_SESSION_KEYS)?.unwrap_or_default();
    if all.iter().any(|k| k.kid == op.kid) {
        // The same key again (a retried bootstrap) changes nothing.
        return Ok(Ok(Outcome::SessionKeyAdded));
    }
    all.push(SessionKey {
        kid: op.kid.clone(),
        key,
    });
    if all.len() > SESSION_KEYS_KEPT {
        all.remove(0);
    }
    txn.put("meta", META_SESSION_KEYS, &all)?;
    Ok(Ok(Outcome::SessionKeyAdded))
}

pub fn open(txn: &mut Txn<'_>, now_ms: u64, op: &OpenSession) -> Result<Response, StoreError> {
    let bad_id = |id: &str| id.is_empty() || id.len() > ID_MAX_LEN;
    if bad_id(&op.session_id) || op.subject.is_empty() || op.subject.len() > SUBJECT_MAX_LEN {
        return Ok(Err(Rejection::Invalid("session id or subject out of range".into())));
    }
    if op.nonce.as_deref().is_some_and(bad_id) || op.opened_by_key.as_ref().is_some_and(|k| k.len() != 64) {
        return Ok(Err(Rejection::Invalid("nonce out of range".into())));
    }
    if op.expires_at_ms <= now_ms || op.expires_at_ms - now_ms > SESSION_MAX_MS {
        return Ok(Err(Rejection::Invalid("a session lasts up to 24 hours".into())));
    }
    let session_key = session_key(&op.session_id);
    if txn.get_raw(CF, &session_key)?.is_some() {
        return Ok(Err(Rejection::Invalid("session id collision".into())));
    }
    if let Some(nonce) = &op.nonce {
        let nonce_key = nonce_key(nonce);
        if txn.get_raw(CF, &nonce_key)?.is_some() {
            return Ok(Err(Rejection::NonceReused));
        }
        txn.put_raw(CF, &nonce_key, op.session_id.as_bytes())?;
        txn.put_raw(CF, &keys::dedup_age(op.expires_at_ms, &nonce_key), &[])?;
    }
    let session = Session {
        session_id: op.session_id.clone(),
        subject: op.subject.clone(),
        created_at_ms: now_ms,
        expires_at_ms: op.expires_at_ms,
        revoked: false,
        opened_by_key: op.opened_by_key.clone(),
    };
    txn.put(CF, &session_key, &session)?;
    txn.put_raw(CF, &keys::dedup_age(op.expires_at_ms, &session_key), &[])?;
    Ok(Ok(Outcome::SessionOpened { session }))
}

pub fn revoke(txn: &mut Txn<'_>, op: &RevokeSession) -> Result<Response, StoreError> {
    let key = session_key(&op.session_id);
    let Some(mut session) = txn.get::<Session>(CF, &key)? else {
        return Ok(Err(Rejection::SessionNotFound));
    };
    // Another subject's session is indistinguishable from a missing one.
    if session.subject != op.subject {
        return Ok(Err(Rejection::SessionNotFound));
    }
    session.revoked = true;
    txn.put(CF, &key, &session)?;
    Ok(Ok(Outcome::SessionRevoked { session }))
}

/// Forgets sessions (and their sign-in nonces) that expired before `now_ms`, at most `max`.
pub fn prune(txn: &mut Txn<'_>, now_ms: u64, max: u32) -> Result<u32, StoreError> {
    crate::sm::sweep::prune_aged(txn, CF, now_ms, max, |_, _| Ok(()))
}

pub fn session_key(session_id: &str) -> Vec<u8> {
    [b"s", session_id.as_bytes()].concat()
}

pub fn nonce_key(nonce: &str) -> Vec<u8> {
    [b"n", nonce.as_bytes()].concat()
}

//! A baton's sharing tokens, and the one check every baton operation makes of who acts: the
//! owner, or a token's holder within its scope, expiry and read cap.

use crate::baton::{BatonToken, NewToken, TOKENS_MAX};
use crate::command::{Outcome, Rejection, Response};
use crate::error::StoreError;
use crate::model::Lease;
use crate::ops::{Actor, IssueTokens, RevokeToken};
use crate::sm::batons::{self, check, is_live, of_mut, owned};
use crate::store::keys;
use crate::store::txn::Txn;

type Checked<T> = Result<Result<T, Rejection>, StoreError>;

/// The longest token id.
const TOKEN_ID_MAX_LEN: usize = 64;

/// What an operation needs of its actor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    Read,
    Write,
}

/// The live baton `lease_id`, and the token it is used through, if `actor` may do what `need`
/// says: its owner, or a token of this baton, unexpired, whose scope allows it and (for a read)
/// whose cap is not consumed. An unknown or expired token is refused before anything else is
/// said about the baton.
pub fn access(
    txn: &Txn<'_>,
    now_ms: u64,
    lease_id: &str,
    actor: &Actor,
    need: Need,
) -> Checked<(Lease, Option<BatonToken>)> {
    let token = match actor {
        Actor::Owner(owner) => {
            let lease = check!(owned(txn, owner, lease_id));
            if !is_live(&lease, now_ms) {
                return Ok(Err(Rejection::LeaseGone));
            }
            return Ok(Ok((lease, None)));
        }
        Actor::Token(hash_hex) => {
            let Some(token) = token_by_hash(txn, hash_hex)? else {
                return Ok(Err(Rejection::TokenInvalid));
            };
            if token.expires_at_ms.is_some_and(|at| now_ms >= at) {
                return Ok(Err(Rejection::TokenInvalid));
            }
            // A token names one baton; for any other it proves nothing.
            if token.lease_id != lease_id {
                return Ok(Err(Rejection::LeaseNotFound));
            }
            token
        }
    };
    let Some(lease) = txn.get::<Lease>("leases", lease_id.as_bytes())? else {
        return Ok(Err(Rejection::LeaseNotFound));
    };
    if !is_live(&lease, now_ms) {
        return Ok(Err(Rejection::LeaseGone));
    }
    match need {
        Need::Read if !token.scope.reads() => return Ok(Err(Rejection::Scope("reading".into()))),
        Need::Write if !token.scope.writes() => return Ok(Err(Rejection::Scope("writing".into()))),
        Need::Read if token.spent() => return Ok(Err(Rejection::ReadCapExhausted)),
        _ => {}
    }
    Ok(Ok((lease, Some(token))))
}

fn token_by_hash(txn: &Txn<'_>, hash_hex: &str) -> Result<Option<BatonToken>, StoreError> {
    match hash_key(hash_hex) {
        Some(key) => txn.get("baton_tokens", &key),
        None => Ok(None),
    }
}

fn hash_key(hash_hex: &str) -> Option<Vec<u8>> {
    hex::decode(hash_hex).ok().filter(|h| h.len() == 32)
}

/// Writes a token's new count of reads.
pub fn save(txn: &mut Txn<'_>, hash_hex: &str, token: &BatonToken) -> Result<(), StoreError> {
    match hash_key(hash_hex) {
        Some(key) => txn.put("baton_tokens", &key, token),
        None => Ok(()),
    }
}

/// Checks new tokens for `lease_id`: well formed, and no id or token taken (here or earlier in
/// the list). Writes nothing, so a create can check before it pays.
pub fn validate(txn: &Txn<'_>, lease_id: &str, tokens: &[NewToken]) -> Checked<()> {
    let mut seen = std::collections::BTreeSet::new();
    for new in tokens {
        let Some(key) = hash_key(&new.token_hash_hex) else {
            return Ok(Err(Rejection::Invalid("token hash must be 32 bytes of hex".into())));
        };
        if new.token_id.is_empty() || new.token_id.len() > TOKEN_ID_MAX_LEN {
            return Ok(Err(Rejection::Invalid("token id must be 1 to 64 bytes".into())));
        }
        if new.read_cap == Some(0) || new.ttl_seconds == Some(0) {
            return Ok(Err(Rejection::Invalid(
                "read_cap and ttl_seconds must be at least 1".into(),
            )));
        }
        let id_key = keys::lease_handoff(lease_id, &new.token_id);
        let taken = txn.get_raw("baton_tokens", &key)?.is_some() || txn.get_raw("baton_token_ids", &id_key)?.is_some();
        if taken || !seen.insert(key) || !seen.insert(id_key) {
            return Ok(Err(Rejection::Invalid("token id or token collision".into())));
        }
    }
    Ok(Ok(()))
}

/// Checks and writes new tokens for `lease_id` (the caller keeps the baton's count).
pub fn put_new(txn: &mut Txn<'_>, now_ms: u64, lease_id: &str, tokens: &[NewToken]) -> Checked<Vec<BatonToken>> {
    check!(validate(txn, lease_id, tokens));
    let mut issued = Vec::with_capacity(tokens.len());
    for new in tokens {
        let key = hash_key(&new.token_hash_hex).expect("validated");
        let token = BatonToken {
            token_id: new.token_id.clone(),
            lease_id: lease_id.to_string(),
            prefix: new.prefix.chars().take(16).collect(),
            scope: new.scope,
            read_cap: new.read_cap,
            reads: 0,
            expires_at_ms: new
                .ttl_seconds
                .map(|ttl| now_ms.saturating_add(ttl.saturating_mul(1000))),
            created_at_ms: now_ms,
        };
        txn.put("baton_tokens", &key, &token)?;
        txn.put_raw("baton_token_ids", &keys::lease_handoff(lease_id, &new.token_id), &key)?;
        issued.push(token);
    }
    Ok(Ok(issued))
}

pub fn issue(txn: &mut Txn<'_>, now_ms: u64, op: &IssueTokens) -> Result<Response, StoreError> {
    let mut lease = check!(owned(txn, &op.owner, &op.lease_id));
    if !is_live(&lease, now_ms) {
        return Ok(Err(Rejection::LeaseGone));
    }
    let b = of_mut(&mut lease).expect("owned answers batons");
    if op.tokens.is_empty() {
        return Ok(Err(Rejection::Invalid("no tokens to issue".into())));
    }
    let max = op.tokens_max.min(TOKENS_MAX);
    if b.token_count as usize + op.tokens.len() > max as usize {
        return Ok(Err(Rejection::TooManyTokens(max)));
    }
    b.token_count += op.tokens.len() as u32;
    let tokens = check!(put_new(txn, now_ms, &op.lease_id, &op.tokens));
    txn.put("leases", lease.lease_id.as_bytes(), &lease)?;
    Ok(Ok(Outcome::TokensIssued { tokens }))
}

/// Revokes (forgets) a token: presenting it is then 401. Reads it made stand.
pub fn revoke(txn: &mut Txn<'_>, now_ms: u64, op: &RevokeToken) -> Result<Response, StoreError> {
    let mut lease = check!(owned(txn, &op.owner, &op.lease_id));
    let id_key = keys::lease_handoff(&op.lease_id, &op.token_id);
    let Some(key) = txn.get_raw("baton_token_ids", &id_key)? else {
        return Ok(Err(Rejection::TokenNotFound));
    };
    let Some(token) = txn.get::<BatonToken>("baton_tokens", &key)? else {
        return Ok(Err(Rejection::TokenNotFound));
    };
    txn.delete("baton_tokens", &key)?;
    txn.delete("baton_token_ids", &id_key)?;
    if let Some(b) = of_mut(&mut lease) {
        b.token_count = b.token_count.saturating_sub(1);
    }
    // Revoking the last unspent capped token leaves only spent ones: that is the burn.
    let others: Vec<BatonToken> = all(txn, &op.lease_id)?
        .into_iter()
        .filter(|t| t.token_id != token.token_id)
        .collect();
    batons::settle_burn(txn, now_ms, lease, &others)?;
    Ok(Ok(Outcome::TokenRevoked { token }))
}

/// Every token of a baton (at most [`TOKENS_MAX`]), in token id order.
pub fn all(txn: &Txn<'_>, lease_id: &str) -> Result<Vec<BatonToken>, StoreError> {
    let prefix = keys::message_prefix(lease_id);
    let mut tokens = Vec::new();
    for (_, key) in txn.range(
        "baton_token_ids",
        &prefix,
        &keys::prefix_end(&prefix),
        TOKENS_MAX as usize,
    )? {
        if let Some(token) = txn.get::<BatonToken>("baton_tokens", &key)? {
            tokens.push(token);
        }
    }
    Ok(tokens)
}

pub fn purge_for_lease(txn: &mut Txn<'_>, lease_id: &str) -> Result<(), StoreError> {
    let prefix = keys::message_prefix(lease_id);
    for (id_key, key) in txn.range("baton_token_ids", &prefix, &keys::prefix_end(&prefix), usize::MAX)? {
        txn.delete("baton_tokens", &key)?;
        txn.delete("baton_token_ids", &id_key)?;
    }
    Ok(())
}

//! Handoffs: claim tokens for any lease kind, with exact claim counts. A claim is one command,
//! so across any number of claimers on any nodes exactly `max_claims` succeed.

use crate::command::{Outcome, Rejection, Response, Served};
use crate::error::StoreError;
use crate::model::{Access, AccessActor, Handoff, Lease, LeaseKind, LeaseState};
use crate::ops::{Claim, Claimed, CreateHandoff, HandoffCreated};
use crate::sm::{leases, ACCESS_HISTORY_MAX};
use crate::store::keys;
use crate::store::txn::Txn;

/// Handoffs one lease may have had (spent and revoked ones included) until it is purged.
pub const HANDOFFS_PER_LEASE_MAX: u32 = 1000;
/// The most claims one handoff may allow, whatever the API is configured to accept.
pub const MAX_CLAIMS_MAX: u32 = 1_000_000;

#[allow(clippy::too_many_arguments)]
pub fn create(txn: &mut Txn<'_>, now_ms: u64, op: &CreateHandoff) -> Result<Response, StoreError> {
    let &CreateHandoff {
        ref owner,
        ref lease_id,
        ref handoff_id,
        ref token_hash_hex,
        ref token_prefix,
        max_claims,
        delete_on_claim,
        require_post,
        ttl_seconds,
    } = op;
    let Some(lease) = txn.get::<Lease>("leases", lease_id.as_bytes())? else {
        return Ok(Err(Rejection::LeaseNotFound));
    };
    if lease.owner != *owner {
        return Ok(Err(Rejection::LeaseNotFound));
    }
    if !lease.is_live_at(now_ms) {
        return Ok(Err(Rejection::LeaseGone));
    }
    if let LeaseKind::Baton(_) = lease.kind {
        return Ok(Err(Rejection::Invalid("a baton is shared by its own tokens".into())));
    }
    if !(1..=MAX_CLAIMS_MAX).contains(&max_claims) || ttl_seconds == 0 || handoff_id.is_empty() {
        return Ok(Err(Rejection::Invalid("max_claims or ttl_seconds out of range".into())));
    }
    let Some(token_hash) = hex::decode(token_hash_hex).ok().filter(|h| h.len() == 32) else {
        return Ok(Err(Rejection::Invalid("token hash must be 32 bytes of hex".into())));
    };
    if txn.get_raw("handoff_tokens", &token_hash)?.is_some()
        || txn.get_raw("handoffs", handoff_id.as_bytes())?.is_some()
    {
        return Ok(Err(Rejection::Invalid("handoff id or token collision".into())));
    }
    let prefix = keys::message_prefix(lease_id);
    let mut end = prefix.clone();
    *end.last_mut().expect("prefix ends with a separator") = 1;
    let existing = txn.range("handoffs_by_lease", &prefix, &end, HANDOFFS_PER_LEASE_MAX as usize)?;
    if existing.len() >= HANDOFFS_PER_LEASE_MAX as usize {
        return Ok(Err(Rejection::TooManyHandoffs(HANDOFFS_PER_LEASE_MAX)));
    }
    let expires_at_ms = now_ms
        .saturating_add(ttl_seconds.saturating_mul(1000))
        .min(lease.expires_at_ms);
    let handoff = Handoff {
        handoff_id: handoff_id.to_string(),
        lease_id: lease_id.to_string(),
        owner: owner.to_string(),
        token_hash_hex: token_hash_hex.to_string(),
        token_prefix: token_prefix.chars().take(16).collect(),
        max_claims,
        claims_remaining: max_claims,
        delete_on_claim,
        require_post,
        created_at_ms: now_ms,
        expires_at_ms,
        revoked: false,
    };
    txn.put("handoffs", handoff_id.as_bytes(), &handoff)?;
    txn.put_raw("handoff_tokens", &token_hash, handoff_id.as_bytes())?;
    txn.put_raw("handoffs_by_lease", &keys::lease_handoff(lease_id, handoff_id), &[])?;
    Ok(Ok(Outcome::HandoffCreated(HandoffCreated {
        handoff,
        lease_expires_at_ms: lease.expires_at_ms,
    })))
}

pub fn claim(txn: &mut Txn<'_>, now_ms: u64, op: &Claim) -> Result<Response, StoreError> {
    let &Claim {
        ref token_hash_hex,
        post,
        served,
    } = op;
    let mut handoff = match check(txn, now_ms, token_hash_hex, post)? {
        Ok(h) => h,
        Err(rejection) => return Ok(Err(rejection)),
    };
    let Some(mut lease) = txn.get::<Lease>("leases", handoff.lease_id.as_bytes())? else {
        return Ok(Err(Rejection::LeaseGone));
    };
    if !lease.is_live_at(now_ms) {
        return Ok(Err(Rejection::LeaseGone));
    }
    if crate::sm::uploads::pending(txn, &lease.lease_id)? {
        return Ok(Err(Rejection::UploadPending));
    }
    if let Err(rejection) = still_serves(&lease, served) {
        return Ok(Err(rejection));
    }
    handoff.claims_remaining -= 1;
    txn.put("handoffs", handoff.handoff_id.as_bytes(), &handoff)?;
    lease.access_count += 1;
    if lease.recent_access.len() >= ACCESS_HISTORY_MAX {
        lease.recent_access.remove(0);
    }
    lease.recent_access.push(Access {
        at_ms: now_ms,
        actor: AccessActor::Claim,
    });
    let claimed = lease.clone();
    let closed = handoff.delete_on_claim && handoff.claims_remaining == 0;
    if closed {
        txn.delete("expiry", &keys::timer(lease.expires_at_ms, &lease.lease_id))?;
        lease.state = LeaseState::Deleted { at_ms: now_ms };
        // The claimer is about to stream the content; it goes when the stream is done.
        leases::close(txn, now_ms, &lease, true)?;
    } else {
        txn.put("leases", lease.lease_id.as_bytes(), &lease)?;
    }
    Ok(Ok(Outcome::Claimed(Claimed {
        handoff,
        lease: claimed,
        closed,
        served,
    })))
}

/// Whether `served` is still what the lease holds, so the answer recorded for this claim (and
/// replayed under its idempotency key) names exactly what the claimer received.
fn still_serves(lease: &Lease, served: Served) -> Result<(), Rejection> {
    match (&lease.kind, served) {
        (LeaseKind::Storage { .. }, Served::Object) => Ok(()),
        (LeaseKind::Checkpoint(c), Served::Checkpoint { version }) if c.version == version => Ok(()),
        (LeaseKind::Checkpoint(_), Served::Checkpoint { .. }) => Err(Rejection::ContentChanged),
        (LeaseKind::Mailbox(mb), Served::Messages { upto_seq }) if upto_seq <= mb.next_seq => Ok(()),
        _ => Err(Rejection::Invalid(
            "claimed content does not match the lease's kind".into(),
        )),
    }
}

/// Whether a claim with this token would be counted now (everything but the lease's state).
pub fn check(
    txn: &Txn<'_>,
    now_ms: u64,
    token_hash_hex: &str,
    post: bool,
) -> Result<Result<Handoff, Rejection>, StoreError> {
    let Some(token_hash) = hex::decode(token_hash_hex).ok().filter(|h| h.len() == 32) else {
        return Ok(Err(Rejection::HandoffNotFound));
    };
    let Some(handoff_id) = txn.get_raw("handoff_tokens", &token_hash)? else {
        return Ok(Err(Rejection::HandoffNotFound));
    };
    let Some(handoff) = txn.get::<Handoff>("handoffs", &handoff_id)? else {
        return Ok(Err(Rejection::HandoffNotFound));
    };
    Ok(judge(handoff, now_ms, post))
}

/// The rules of a claim, shared by the ledger and by read-only previews.
pub fn judge(handoff: Handoff, now_ms: u64, post: bool) -> Result<Handoff, Rejection> {
    if handoff.revoked {
        return Err(Rejection::HandoffNotFound);
    }
    if handoff.require_post && !post {
        return Err(Rejection::PostRequired);
    }
    if now_ms >= handoff.expires_at_ms {
        return Err(Rejection::HandoffExpired);
    }
    if handoff.claims_remaining == 0 {
        return Err(Rejection::HandoffExhausted);
    }
    Ok(handoff)
}

pub fn revoke(txn: &mut Txn<'_>, owner: &str, handoff_id: &str) -> Result<Response, StoreError> {
    let Some(mut handoff) = txn.get::<Handoff>("handoffs", handoff_id.as_bytes())? else {
        return Ok(Err(Rejection::HandoffNotFound));
    };
    if handoff.owner != owner || handoff.revoked {
        return Ok(Err(Rejection::HandoffNotFound));
    }
    handoff.revoked = true;
    txn.put("handoffs", handoff_id.as_bytes(), &handoff)?;
    Ok(Ok(Outcome::HandoffRevoked { handoff }))
}

/// Forgets every handoff of a lease being purged.
pub fn purge_for_lease(txn: &mut Txn<'_>, lease_id: &str) -> Result<(), StoreError> {
    let prefix = keys::message_prefix(lease_id);
    let mut end = prefix.clone();
    *end.last_mut().expect("prefix ends with a separator") = 1;
    for (key, _) in txn.range("handoffs_by_lease", &prefix, &end, HANDOFFS_PER_LEASE_MAX as usize)? {
        let handoff_id = &key[prefix.len()..];
        if let Some(handoff) = txn.get::<Handoff>("handoffs", handoff_id)? {
            if let Ok(hash) = hex::decode(&handoff.token_hash_hex) {
                txn.delete("handoff_tokens", &hash)?;
            }
        }
        txn.delete("handoffs", handoff_id)?;
        txn.delete("handoffs_by_lease", &key)?;
    }
    Ok(())
}

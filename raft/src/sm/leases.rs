//! Lease lifecycle: create (debit and create together), record access, early delete.

use crate::command::{NewLease, Outcome, Rejection, Response};
use crate::error::StoreError;
use crate::model::{Access, AccessActor, Charge, Lease, LeaseKind, LeaseState};
use crate::ops::{LeaseCreated, ServedAccess, X402Payment};
use crate::sm::{
    accounts, batons, charges, handoffs, mailbox, objects, pricing, uploads, x402, ACCESS_HISTORY_MAX, BYTES_HOLD_MS,
    TOMBSTONE_RETENTION_MS,
};
use crate::store::keys::{self, Timer};
use crate::store::txn::Txn;

/// Creates `new`, paid by its owner's balance or, with `payment`, by that x402 payment.
pub fn create(
    txn: &mut Txn<'_>,
    now_ms: u64,
    new: &NewLease,
    payment: Option<&X402Payment>,
) -> Result<Response, StoreError> {
    if new.lease_id.is_empty() || new.duration_seconds == 0 {
        return Ok(Err(Rejection::Invalid("empty lease id or zero duration".into())));
    }
    let Some(expires_at_ms) = new
        .duration_seconds
        .checked_mul(1000)
        .and_then(|d| d.checked_add(now_ms))
    else {
        return Ok(Err(Rejection::Invalid("duration overflows the clock".into())));
    };
    if txn.get_raw("leases", new.lease_id.as_bytes())?.is_some() {
        return Ok(Err(Rejection::LeaseExists));
    }
    // The GC worker would delete these bytes out from under the new lease.
    for object_key in new.kind.object_keys() {
        if !objects::usable(txn, &object_key)? {
            return Ok(Err(Rejection::Invalid("object key is queued for deletion".into())));
        }
    }
    let cost_micros = pricing::charge(txn, &new.kind, new.duration_seconds)?;
    let paid = match payment {
        None => accounts::debit(txn, &new.owner, cost_micros)?,
        // A wallet keeps no balance here.
        Some(payment) => x402::take(txn, now_ms, payment, new, cost_micros)?.map(|()| 0),
    };
    let balance_micros = match paid {
        Ok(left) => left,
        Err(rejection) => return Ok(Err(rejection)),
    };
    let lease = Lease {
        lease_id: new.lease_id.clone(),
        ledger_id: new.ledger_id.clone(),
        owner: new.owner.clone(),
        kind: new.kind.clone(),
        created_at_ms: now_ms,
        expires_at_ms,
        duration_seconds: new.duration_seconds,
        cost_micros,
        state: LeaseState::Active,
        access_count: 0,
        recent_access: Vec::new(),
    };
    txn.put("leases", lease.lease_id.as_bytes(), &lease)?;
    let charge = Charge {
        ledger_id: lease.ledger_id.clone(),
        lease_id: lease.lease_id.clone(),
        amount_micros: cost_micros,
        balance_after_micros: payment.is_none().then_some(balance_micros),
        method: if payment.is_some() { "x402" } else { "balance" }.into(),
        at_ms: now_ms,
    };
    charges::record(txn, &lease.owner, &charge)?;
    for object_key in lease.kind.object_keys() {
        objects::reference(txn, &object_key, &lease.lease_id)?;
    }
    txn.put_raw(
        "by_owner",
        &keys::by_owner(&lease.owner, lease.created_at_ms, &lease.lease_id),
        &[],
    )?;
    txn.put_raw(
        "expiry",
        &keys::timer(expires_at_ms, &lease.lease_id),
        &[Timer::Expire as u8],
    )?;
    Ok(Ok(Outcome::LeaseCreated(LeaseCreated { lease, balance_micros })))
}

pub fn record_access(
    txn: &mut Txn<'_>,
    now_ms: u64,
    lease_id: &str,
    actor: AccessActor,
    owner: Option<&str>,
) -> Result<Response, StoreError> {
    let Some(mut lease) = txn.get::<Lease>("leases", lease_id.as_bytes())? else {
        return Ok(Err(Rejection::LeaseNotFound));
    };
    if owner.is_some_and(|o| o != lease.owner) {
        return Ok(Err(Rejection::LeaseNotFound));
    }
    if !lease.is_live_at(now_ms) {
        return Ok(Err(Rejection::LeaseGone));
    }
    if uploads::pending(txn, lease_id)? {
        return Ok(Err(Rejection::UploadPending));
    }
    lease.access_count += 1;
    if lease.recent_access.len() >= ACCESS_HISTORY_MAX {
        lease.recent_access.remove(0);
    }
    lease.recent_access.push(Access { at_ms: now_ms, actor });
    txn.put("leases", lease_id.as_bytes(), &lease)?;
    Ok(Ok(Outcome::AccessRecorded { lease }))
}

/// Records accesses that were served after a linearizable read (see [`crate::ops::RecordAccesses`]).
pub fn record_accesses(txn: &mut Txn<'_>, accesses: &[ServedAccess]) -> Result<Response, StoreError> {
    // A transaction reads the store, not its own batch: a lease read twice is changed in memory
    // and written once.
    let mut leases: std::collections::BTreeMap<&str, Option<Lease>> = std::collections::BTreeMap::new();
    let mut recorded = 0u32;
    for access in accesses {
        let id = access.lease_id.as_str();
        let lease = match leases.entry(id) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => e.insert(txn.get::<Lease>("leases", id.as_bytes())?),
        };
        let Some(lease) = lease else {
            continue;
        };
        lease.access_count += 1;
        if lease.recent_access.len() >= ACCESS_HISTORY_MAX {
            lease.recent_access.remove(0);
        }
        lease.recent_access.push(Access {
            at_ms: access.at_ms,
            actor: access.actor,
        });
        recorded += 1;
    }
    for (id, lease) in leases {
        if let Some(lease) = lease {
            txn.put("leases", id.as_bytes(), &lease)?;
        }
    }
    Ok(Ok(Outcome::AccessesRecorded { recorded }))
}

pub fn delete(txn: &mut Txn<'_>, now_ms: u64, owner: &str, lease_id: &str) -> Result<Response, StoreError> {
    let Some(mut lease) = txn.get::<Lease>("leases", lease_id.as_bytes())? else {
        return Ok(Err(Rejection::LeaseNotFound));
    };
    // Another owner's lease is indistinguishable from a missing one.
    if lease.owner != owner {
        return Ok(Err(Rejection::LeaseNotFound));
    }
    if !lease.is_live_at(now_ms) {
        return Ok(Err(Rejection::LeaseGone));
    }
    txn.delete("expiry", &keys::timer(lease.expires_at_ms, lease_id))?;
    lease.state = LeaseState::Deleted { at_ms: now_ms };
    tombstone(txn, now_ms, &lease)?;
    Ok(Ok(Outcome::LeaseDeleted { lease }))
}

/// Writes a lease that just stopped being active: drops its inline bodies, queues its object
/// bytes for deletion, and sets the timer that forgets it after the retention period.
pub fn tombstone(txn: &mut Txn<'_>, now_ms: u64, lease: &Lease) -> Result<(), StoreError> {
    close(txn, now_ms, lease, false)
}

/// [`tombstone`], except that with `hold_bytes` the lease's content (object bytes, a mailbox's
/// messages) stays until `ReleaseBytes` or [`hold_until_ms`], because a reader is streaming it
/// out right now.
pub fn close(txn: &mut Txn<'_>, now_ms: u64, lease: &Lease, hold_bytes: bool) -> Result<(), StoreError> {
    debug_assert!(lease.state != LeaseState::Active);
    txn.put("leases", lease.lease_id.as_bytes(), lease)?;
    match hold_until_ms(lease) {
        Some(until) if hold_bytes && has_content_outside_the_lease(lease) => {
            txn.put_raw("expiry", &keys::timer(until, &lease.lease_id), &[Timer::Release as u8])
        }
        _ => release(txn, now_ms, lease),
    }
}

/// Whether a reader may still need content the lease record does not carry.
fn has_content_outside_the_lease(lease: &Lease) -> bool {
    !lease.kind.object_keys().is_empty() || matches!(lease.kind, LeaseKind::Mailbox(_) | LeaseKind::Baton(_))
}

/// When the bytes of a lease closed with a hold are released at the latest: an hour after the
/// close, never later than the lease's own expiry.
pub fn hold_until_ms(lease: &Lease) -> Option<u64> {
    match lease.state {
        LeaseState::Deleted { at_ms } => Some(at_ms.saturating_add(BYTES_HOLD_MS).min(lease.expires_at_ms.max(at_ms))),
        _ => None,
    }
}

/// Deletes a closed lease's content: inline bodies and messages now, object bytes queued for the
/// GC worker; then sets its purge timer.
pub fn release(txn: &mut Txn<'_>, now_ms: u64, lease: &Lease) -> Result<(), StoreError> {
    uploads::end_for_lease(txn, now_ms, lease)?;
    txn.delete("bodies", lease.lease_id.as_bytes())?;
    match &lease.kind {
        LeaseKind::Mailbox(_) => mailbox::clear(txn, now_ms, &lease.lease_id)?,
        LeaseKind::Baton(_) => batons::clear(txn, lease)?,
        _ => {}
    }
    for object_key in lease.kind.object_keys() {
        objects::release(txn, &object_key, &lease.lease_id, now_ms)?;
    }
    let purge_at_ms = now_ms.saturating_add(TOMBSTONE_RETENTION_MS);
    txn.put_raw(
        "expiry",
        &keys::timer(purge_at_ms, &lease.lease_id),
        &[Timer::Purge as u8],
    )
}

/// `ReleaseBytes`: ends a hold early (the stream finished). A lease not on hold is left alone.
pub fn release_bytes(txn: &mut Txn<'_>, now_ms: u64, lease_id: &str) -> Result<Response, StoreError> {
    let Some(lease) = txn.get::<Lease>("leases", lease_id.as_bytes())? else {
        return Ok(Ok(Outcome::BytesReleased { released: false }));
    };
    let Some(until) = hold_until_ms(&lease) else {
        return Ok(Ok(Outcome::BytesReleased { released: false }));
    };
    let timer = keys::timer(until, lease_id);
    if txn.get_raw("expiry", &timer)?.as_deref() != Some(&[Timer::Release as u8]) {
        return Ok(Ok(Outcome::BytesReleased { released: false }));
    }
    txn.delete("expiry", &timer)?;
    release(txn, now_ms, &lease)?;
    Ok(Ok(Outcome::BytesReleased { released: true }))
}

/// Forgets a tombstone whose retention ended, with every index that names it.
pub fn purge(txn: &mut Txn<'_>, lease: &Lease) -> Result<(), StoreError> {
    txn.delete("leases", lease.lease_id.as_bytes())?;
    handoffs::purge_for_lease(txn, &lease.lease_id)?;
    txn.delete(
        "by_owner",
        &keys::by_owner(&lease.owner, lease.created_at_ms, &lease.lease_id),
    )?;
    match &lease.kind {
        LeaseKind::Checkpoint(c) => {
            let index = keys::checkpoint(&lease.owner, &c.workflow_id);
            // A newer checkpoint may have taken the workflow id over; its entry stays.
            if txn.get_raw("checkpoints", &index)?.as_deref() == Some(lease.lease_id.as_bytes()) {
                txn.delete("checkpoints", &index)?;
            }
        }
        LeaseKind::Mailbox(mb) => {
            if let Ok(hash) = hex::decode(&mb.drop_token_hash_hex) {
                txn.delete("drop_tokens", &hash)?;
            }
        }
        LeaseKind::Baton(_) => batons::purge(txn, lease)?,
        LeaseKind::Storage { .. } => {}
    }
    Ok(())
}

//! Lease lifecycle: create (debit and create together), record access, early delete.

use crate::command::{NewLease, Outcome, Rejection, Response};
use crate::error::StoreError;
use crate::model::{Access, AccessActor, Lease, LeaseState};
use crate::sm::{accounts, ACCESS_HISTORY_MAX, TOMBSTONE_RETENTION_MS};
use crate::store::keys::{self, Timer};
use crate::store::txn::Txn;

pub fn create(txn: &mut Txn<'_>, now_ms: u64, new: &NewLease) -> Result<Response, StoreError> {
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
        if txn.get_raw("gc", object_key.as_bytes())?.is_some() {
            return Ok(Err(Rejection::Invalid("object key is queued for deletion".into())));
        }
    }
    let balance_micros = match accounts::debit(txn, &new.owner, new.cost_micros)? {
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
        cost_micros: new.cost_micros,
        state: LeaseState::Active,
        access_count: 0,
        recent_access: Vec::new(),
    };
    txn.put("leases", lease.lease_id.as_bytes(), &lease)?;
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
    Ok(Ok(Outcome::LeaseCreated { lease, balance_micros }))
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
    lease.access_count += 1;
    if lease.recent_access.len() >= ACCESS_HISTORY_MAX {
        lease.recent_access.remove(0);
    }
    lease.recent_access.push(Access { at_ms: now_ms, actor });
    txn.put("leases", lease_id.as_bytes(), &lease)?;
    Ok(Ok(Outcome::AccessRecorded { lease }))
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

/// Writes a lease that just stopped being active: queues its bytes for deletion and sets the
/// timer that forgets it after the retention period.
pub fn tombstone(txn: &mut Txn<'_>, now_ms: u64, lease: &Lease) -> Result<(), StoreError> {
    debug_assert!(lease.state != LeaseState::Active);
    txn.put("leases", lease.lease_id.as_bytes(), lease)?;
    for object_key in lease.kind.object_keys() {
        txn.put("gc", object_key.as_bytes(), &(lease.lease_id.as_str(), now_ms))?;
    }
    let purge_at_ms = now_ms.saturating_add(TOMBSTONE_RETENTION_MS);
    txn.put_raw(
        "expiry",
        &keys::timer(purge_at_ms, &lease.lease_id),
        &[Timer::Purge as u8],
    )?;
    Ok(())
}

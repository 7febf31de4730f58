//! Time-driven cleanup: expiring leases, forgetting tombstones, pruning idempotency records, and
//! recording that the GC worker deleted bytes.

use crate::command::{Outcome, Rejection, Response};
use crate::error::StoreError;
use crate::model::{Lease, LeaseState};
use crate::ops::Swept;
use crate::sm::{batons, charges, leases, sessions, uploads, witness, x402, DEDUP_WINDOW_MS, GC_BATCH_MAX};
use crate::store::keys::{self, Timer};
use crate::store::txn::Txn;

pub fn expire_due(txn: &mut Txn<'_>, now_ms: u64, max: u32) -> Result<Response, StoreError> {
    let (mut expired, mut purged) = (0u32, 0u32);
    // Timers with due_ms <= now sort before (now + 1) ‖ "".
    let end = (now_ms.saturating_add(1)).to_be_bytes();
    for (key, value) in txn.range("expiry", &[], &end, max as usize)? {
        txn.delete("expiry", &key)?;
        let lease_id = String::from_utf8_lossy(&key[8..]).into_owned();
        // Upload timers are keyed by upload id, not a lease's.
        match value.first().copied().and_then(Timer::from_byte) {
            Some(Timer::UploadDue) => {
                expired += u32::from(uploads::due(txn, now_ms, &lease_id)?);
                continue;
            }
            Some(Timer::UploadPurge) => {
                uploads::purge(txn, &lease_id)?;
                purged += 1;
                continue;
            }
            Some(Timer::WitnessPurge) => {
                witness::purge(txn, &lease_id)?;
                purged += 1;
                continue;
            }
            _ => {}
        }
        let Some(mut lease) = txn.get::<Lease>("leases", lease_id.as_bytes())? else {
            continue;
        };
        match value.first().copied().and_then(Timer::from_byte) {
            Some(Timer::Expire) if lease.state == LeaseState::Active => {
                lease.state = LeaseState::Expired {
                    at_ms: lease.expires_at_ms,
                };
                leases::tombstone(txn, now_ms, &lease)?;
                expired += 1;
            }
            Some(Timer::Purge) if lease.state != LeaseState::Active => {
                leases::purge(txn, &lease)?;
                purged += 1;
            }
            Some(Timer::Release) if lease.state != LeaseState::Active => {
                leases::release(txn, now_ms, &lease)?;
            }
            Some(Timer::Dispose) => expired += u32::from(batons::dispose(txn, now_ms, lease)?),
            _ => {}
        }
    }
    // Idempotency records, spent x402 authorizations, sessions and old charges all expire by an
    // age index.
    let dedup_pruned = prune_dedup(txn, now_ms, max)?
        + x402::prune(txn, now_ms, max)?
        + sessions::prune(txn, now_ms, max)?
        + charges::prune(txn, now_ms, max)?
        + batons::collect_retired(txn, now_ms, max)?;
    Ok(Ok(Outcome::Swept(Swept {
        expired,
        purged,
        dedup_pruned,
    })))
}

fn prune_dedup(txn: &mut Txn<'_>, now_ms: u64, max: u32) -> Result<u32, StoreError> {
    prune_aged(txn, "dedup", now_ms.saturating_sub(DEDUP_WINDOW_MS), max, |_, _| Ok(()))
}

/// Forgets, at most `max`, the records of `cf` whose age entry (`t` ‖ ms ‖ record key, see
/// [`keys::dedup_age`]) is before `until_ms`; `each` sees every record key before it goes.
pub(crate) fn prune_aged(
    txn: &mut Txn<'_>,
    cf: &'static str,
    until_ms: u64,
    max: u32,
    mut each: impl FnMut(&mut Txn<'_>, &[u8]) -> Result<(), StoreError>,
) -> Result<u32, StoreError> {
    let end = keys::dedup_age(until_ms, &[]);
    let mut pruned = 0;
    for (age_key, _) in txn.range(cf, b"t", &end, max as usize)? {
        each(txn, &age_key[9..])?;
        txn.delete(cf, &age_key)?;
        txn.delete(cf, &age_key[9..])?;
        pruned += 1;
    }
    Ok(pruned)
}

pub fn record_objects_deleted(txn: &mut Txn<'_>, object_keys: &[String]) -> Result<Response, StoreError> {
    if object_keys.len() > GC_BATCH_MAX {
        return Ok(Err(Rejection::Invalid(format!(
            "at most {GC_BATCH_MAX} object keys per command"
        ))));
    }
    let mut count = 0;
    let unique: std::collections::BTreeSet<&String> = object_keys.iter().collect();
    for key in unique {
        if txn.get_raw("gc", key.as_bytes())?.is_some() {
            txn.delete("gc", key.as_bytes())?;
            count += 1;
        }
    }
    Ok(Ok(Outcome::ObjectsDeleted { count }))
}

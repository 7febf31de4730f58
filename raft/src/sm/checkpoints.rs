//! Checkpoint leases: one versioned body per `(owner, workflow_id)`, replaced by writes
//! (optionally compare-and-set on the version), read and deleted in one step by a consume.

use crate::command::{NewLease, Outcome, Rejection, Response};
use crate::error::StoreError;
use crate::model::{Checkpoint, Lease, LeaseKind, LeaseState};
use crate::ops::{CheckpointConsumed, WriteCheckpoint, X402Payment};
use crate::sm::bodies::check_body;
use crate::sm::{leases, objects};
use crate::store::keys;
use crate::store::txn::Txn;

/// Longest workflow id; the API also checks the alphabet.
pub const WORKFLOW_ID_MAX_LEN: usize = 128;

pub fn create(
    txn: &mut Txn<'_>,
    now_ms: u64,
    new: &NewLease,
    inline_body: Option<&[u8]>,
    payment: Option<&X402Payment>,
) -> Result<Response, StoreError> {
    let LeaseKind::Checkpoint(cell) = &new.kind else {
        return Ok(Err(Rejection::Invalid("not a checkpoint".into())));
    };
    if cell.workflow_id.is_empty() || cell.workflow_id.len() > WORKFLOW_ID_MAX_LEN {
        return Ok(Err(Rejection::Invalid("workflow id must be 1 to 128 bytes".into())));
    }
    if let Err(rejection) = check_body(&cell.body, inline_body, cell.max_body_bytes) {
        return Ok(Err(rejection));
    }
    let index = keys::checkpoint(&new.owner, &cell.workflow_id);
    if let Some(existing) = txn.get_raw("checkpoints", &index)? {
        let lease: Option<Lease> = txn.get("leases", &existing)?;
        if lease.is_some_and(|l| l.is_live_at(now_ms)) {
            return Ok(Err(Rejection::WorkflowExists));
        }
    }
    let mut new = new.clone();
    new.kind = LeaseKind::Checkpoint(Checkpoint {
        version: 1,
        updated_at_ms: now_ms,
        ..cell.clone()
    });
    let response = leases::create(txn, now_ms, &new, payment)?;
    if response.is_ok() {
        txn.put_raw("checkpoints", &index, new.lease_id.as_bytes())?;
        if let Some(bytes) = inline_body {
            txn.put_raw("bodies", new.lease_id.as_bytes(), bytes)?;
        }
    }
    Ok(response)
}

pub fn write(txn: &mut Txn<'_>, now_ms: u64, op: &WriteCheckpoint) -> Result<Response, StoreError> {
    let WriteCheckpoint {
        owner,
        workflow_id,
        if_version,
        body,
        inline_body,
    } = op;
    let (if_version, inline_body) = (*if_version, inline_body.as_deref());
    let mut lease = match live(txn, now_ms, owner, workflow_id)? {
        Ok(lease) => lease,
        Err(rejection) => return Ok(Err(rejection)),
    };
    let LeaseKind::Checkpoint(cell) = &mut lease.kind else {
        return Ok(Err(Rejection::LeaseNotFound));
    };
    if let Err(rejection) = check_body(body, inline_body, cell.max_body_bytes) {
        return Ok(Err(rejection));
    }
    if let Some(expected) = if_version {
        if expected != cell.version {
            return Ok(Err(Rejection::VersionMismatch { current: cell.version }));
        }
    }
    if let Some(key) = &body.object_key {
        if !objects::usable(txn, key)? {
            return Ok(Err(Rejection::Invalid("object key is queued for deletion".into())));
        }
    }
    // The superseded body is deleted now: only the latest version exists.
    if let Some(old) = &cell.body.object_key {
        if body.object_key.as_ref() != Some(old) {
            objects::release(txn, old, &lease.lease_id, now_ms)?;
        }
    }
    match inline_body {
        Some(bytes) => txn.put_raw("bodies", lease.lease_id.as_bytes(), bytes)?,
        None => txn.delete("bodies", lease.lease_id.as_bytes())?,
    }
    if let Some(key) = &body.object_key {
        objects::reference(txn, key, &lease.lease_id)?;
    }
    cell.version += 1;
    cell.updated_at_ms = now_ms;
    cell.body = body.clone();
    txn.put("leases", lease.lease_id.as_bytes(), &lease)?;
    Ok(Ok(Outcome::CheckpointWritten { lease }))
}

pub fn consume(txn: &mut Txn<'_>, now_ms: u64, owner: &str, workflow_id: &str) -> Result<Response, StoreError> {
    let mut lease = match live(txn, now_ms, owner, workflow_id)? {
        Ok(lease) => lease,
        Err(rejection) => return Ok(Err(rejection)),
    };
    let inline_body = txn.get_raw("bodies", lease.lease_id.as_bytes())?;
    txn.delete("expiry", &keys::timer(lease.expires_at_ms, &lease.lease_id))?;
    lease.state = LeaseState::Deleted { at_ms: now_ms };
    // Object bytes are being streamed to the consumer; they go when it is done.
    leases::close(txn, now_ms, &lease, true)?;
    Ok(Ok(Outcome::CheckpointConsumed(CheckpointConsumed {
        lease,
        inline_body,
    })))
}

pub fn delete(txn: &mut Txn<'_>, now_ms: u64, owner: &str, workflow_id: &str) -> Result<Response, StoreError> {
    match live(txn, now_ms, owner, workflow_id)? {
        Ok(lease) => leases::delete(txn, now_ms, owner, &lease.lease_id),
        Err(rejection) => Ok(Err(rejection)),
    }
}

/// The owner's checkpoint for `workflow_id`, if it may be used at `now_ms`.
fn live(txn: &Txn<'_>, now_ms: u64, owner: &str, workflow_id: &str) -> Result<Result<Lease, Rejection>, StoreError> {
    let Some(lease_id) = txn.get_raw("checkpoints", &keys::checkpoint(owner, workflow_id))? else {
        return Ok(Err(Rejection::LeaseNotFound));
    };
    let Some(lease) = txn.get::<Lease>("leases", &lease_id)? else {
        return Ok(Err(Rejection::LeaseNotFound));
    };
    if lease.owner != owner {
        return Ok(Err(Rejection::LeaseNotFound));
    }
    if !lease.is_live_at(now_ms) {
        return Ok(Err(Rejection::LeaseGone));
    }
    Ok(Ok(lease))
}

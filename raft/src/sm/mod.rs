//! `apply`: the deterministic heart of the ledger.
//!
//! [`apply_request`] is a pure function of the stored state and the [`Request`]: it reads no clock,
//! no randomness and no network. Time is the cluster clock, `max(stored clock, request.now_ms)`, so
//! it never runs backwards across leader changes. One file per command family:
//! [`accounts`], [`charges`], [`leases`], [`checkpoints`], [`mailbox`], [`handoffs`], [`batons`]
//! ([`baton_reads`], [`baton_tokens`]), [`pricing`], [`sessions`], [`sweep`], [`uploads`], [`x402`]; [`dedup`] answers retried commands.

pub mod accounts;
pub mod baton_reads;
pub mod baton_tokens;
pub mod batons;
pub mod bodies;
pub mod charges;
pub mod checkpoints;
pub mod dedup;
pub mod handoffs;
pub mod leases;
pub mod mailbox;
pub mod objects;
pub mod pricing;
pub mod sessions;
pub mod sweep;
pub mod uploads;
pub mod witness;
pub mod x402;

use crate::command::{Command, Outcome, Rejection, Request, Response, BATCH_MAX};
use crate::error::StoreError;
use crate::store::keys;
use crate::store::txn::Txn;

/// How many recent accesses a lease remembers (the count is kept in full).
pub const ACCESS_HISTORY_MAX: usize = 16;
/// How long a tombstone (expired or deleted lease) stays listed before it is forgotten.
pub const TOMBSTONE_RETENTION_MS: u64 = 7 * 24 * 3600 * 1000;
/// How long an idempotency key is remembered.
pub const DEDUP_WINDOW_MS: u64 = 10 * 60 * 1000;
/// The most object keys one `RecordObjectsDeleted` may carry.
pub const GC_BATCH_MAX: usize = 1024;
/// The most timers one `ExpireDue` may process (per kind).
pub const SWEEP_BATCH_MAX: u32 = 4096;
/// How long a closed lease's bytes may be held for a stream in progress (consume, final claim).
pub const BYTES_HOLD_MS: u64 = 3600 * 1000;
/// The largest body that may ride inside a Raft entry, whatever the API is configured to send.
pub const INLINE_BODY_MAX: usize = 1 << 20;

/// Applies one Raft entry's request against `db`. Returns its answer and the transaction holding
/// its (last) effects, for the caller to commit together with `last_applied`.
///
/// A [`Command::Batch`] applies each inner request in its own transaction, committed before the
/// next one reads, so later requests see earlier ones' effects. If the node crashes part-way, the
/// entry is applied again from the log: the requests already committed answer from their
/// idempotency records (written in the same transaction as their effects) and change nothing, so
/// a batch is all-or-nothing in effect.
pub fn apply_entry<'a>(db: &'a rocksdb::DB, req: &Request) -> Result<(Response, Txn<'a>), StoreError> {
    let Command::Batch(inner) = &req.command else {
        let mut txn = Txn::new(db);
        let response = apply_request(&mut txn, req)?;
        return Ok((response, txn));
    };
    let invalid = |why: &str| Ok((Err(Rejection::Invalid(why.into())), Txn::new(db)));
    if inner.len() > BATCH_MAX {
        return invalid("batch too large");
    }
    if inner
        .iter()
        .any(|r| matches!(r.command, Command::Batch(_)) || r.idempotency.is_none())
    {
        return invalid("a batch holds only keyed, unbatched requests");
    }
    let mut responses = Vec::with_capacity(inner.len());
    let mut txn = Txn::new(db);
    for (i, r) in inner.iter().enumerate() {
        if i > 0 {
            db.write(std::mem::replace(&mut txn, Txn::new(db)).into_batch())?;
        }
        let stamped = Request {
            now_ms: req.now_ms,
            idempotency: r.idempotency.clone(),
            command: r.command.clone(),
        };
        responses.push(apply_request(&mut txn, &stamped)?);
    }
    Ok((Ok(Outcome::Batch(responses)), txn))
}

/// Applies one request, writing its effects (and the advanced clock) into `txn`.
pub fn apply_request(txn: &mut Txn<'_>, req: &Request) -> Result<Response, StoreError> {
    let now_ms = advance_clock(txn, req.now_ms)?;
    if let Some(idem) = &req.idempotency {
        if let Some(first) = dedup::lookup(txn, idem)? {
            return Ok(first);
        }
    }
    let response = apply_command(txn, now_ms, &req.command)?;
    if let Some(idem) = &req.idempotency {
        // "Nothing happened, prepare again" is not an answer to remember: the retry under the
        // same key must be able to apply.
        if response != Err(Rejection::ContentChanged) {
            dedup::remember(txn, idem, now_ms, &response)?;
        }
    }
    Ok(response)
}

fn apply_command(txn: &mut Txn<'_>, now_ms: u64, command: &Command) -> Result<Response, StoreError> {
    match command {
        Command::Batch(_) => Ok(Err(Rejection::Invalid("a batch must be a whole entry".into()))),
        Command::CreateAccount(op) => accounts::create(txn, now_ms, &op.account_id, op.balance_micros),
        Command::AddApiKey(op) => accounts::add_key(txn, &op.account_id, &op.key_hash_hex),
        Command::AddAdminKey(op) => accounts::add_admin_key(txn, &op.key_hash_hex),
        Command::SetPricing(op) => pricing::set(txn, op.rate_micros_per_gb_day, op.min_charge_micros),
        Command::CreateLease(new) => leases::create(txn, now_ms, new, None),
        Command::RecordAccess(op) => leases::record_access(txn, now_ms, &op.lease_id, op.actor, op.owner.as_deref()),
        Command::DeleteLease(op) => leases::delete(txn, now_ms, &op.owner, &op.lease_id),
        Command::ExpireDue(op) => sweep::expire_due(txn, now_ms, op.max.min(SWEEP_BATCH_MAX)),
        Command::RecordObjectsDeleted(op) => sweep::record_objects_deleted(txn, &op.object_keys),
        Command::ReleaseBytes(op) => leases::release_bytes(txn, now_ms, &op.lease_id),
        Command::CreateCheckpoint(op) => checkpoints::create(txn, now_ms, &op.new, op.inline_body.as_deref(), None),
        Command::WriteCheckpoint(op) => checkpoints::write(txn, now_ms, op),
        Command::ConsumeCheckpoint(op) => checkpoints::consume(txn, now_ms, &op.owner, &op.workflow_id),
        Command::DeleteCheckpoint(op) => checkpoints::delete(txn, now_ms, &op.owner, &op.workflow_id),
        Command::CreateMailbox(op) => mailbox::create(txn, now_ms, &op.new, None),
        Command::DropMessage(op) => mailbox::drop_message(txn, now_ms, op),
        Command::PickupMessage(op) => mailbox::pickup(txn, now_ms, &op.owner, &op.lease_id, op.seq),
        Command::DeleteMessage(op) => mailbox::delete_message(txn, now_ms, &op.owner, &op.lease_id, op.seq),
        Command::WebhooksAttempted(op) => mailbox::webhooks_attempted(txn, &op.results),
        Command::CreateHandoff(op) => handoffs::create(txn, now_ms, op),
        Command::Claim(op) => handoffs::claim(txn, now_ms, op),
        Command::RevokeHandoff(op) => handoffs::revoke(txn, &op.owner, &op.handoff_id),
        Command::PayX402(op) => {
            let payment = Some(&op.payment);
            match &*op.purchase {
                Command::CreateLease(new) => leases::create(txn, now_ms, new, payment),
                Command::CreateCheckpoint(c) => {
                    checkpoints::create(txn, now_ms, &c.new, c.inline_body.as_deref(), payment)
                }
                Command::CreateMailbox(c) => mailbox::create(txn, now_ms, &c.new, payment),
                Command::CreateBaton(c) => batons::create(txn, now_ms, c, payment),
                Command::CreateWithUpload(c) => uploads::create_with(txn, now_ms, c, payment),
                // PayX402 answers the lease it paid for; a wallet keeps no balance here.
                Command::ExtendBaton(e) => Ok(match batons::extend(txn, now_ms, e, payment)? {
                    Ok(Outcome::BatonExtended(x)) => Ok(Outcome::LeaseCreated(crate::ops::LeaseCreated {
                        lease: x.lease,
                        balance_micros: 0,
                    })),
                    other => other,
                }),
                _ => Ok(Err(Rejection::Invalid(
                    "x402 pays only for a create or an extension".into(),
                ))),
            }
        }
        Command::SettleX402(op) => x402::settle(txn, now_ms, op),
        Command::AddSessionKey(op) => sessions::add_key(txn, op),
        Command::OpenSession(op) => sessions::open(txn, now_ms, op),
        Command::RevokeSession(op) => sessions::revoke(txn, op),
        Command::TopUp(op) => accounts::top_up(txn, &op.account_id, op.amount_micros),
        Command::IssueApiKey(op) => accounts::issue_key(txn, now_ms, op),
        Command::RevokeApiKey(op) => accounts::revoke_key(txn, op),
        Command::CreateBaton(op) => batons::create(txn, now_ms, op, None),
        Command::WriteBaton(op) => batons::write(txn, now_ms, op),
        Command::AppendEntry(op) => batons::append(txn, now_ms, op),
        Command::ReadBaton(op) => baton_reads::read(txn, now_ms, op),
        Command::IssueTokens(op) => baton_tokens::issue(txn, now_ms, op),
        Command::RevokeToken(op) => baton_tokens::revoke(txn, now_ms, op),
        Command::ExtendBaton(op) => batons::extend(txn, now_ms, op, None),
        Command::DeleteBaton(op) => batons::delete(txn, now_ms, op),
        Command::RestoreBaton(op) => batons::restore(txn, now_ms, op),
        Command::SetLifecycle(op) => batons::set_lifecycle(txn, now_ms, op),
        Command::SetBatonRates(op) => pricing::set_rates(txn, op.egress_micros_per_gb, op.witness_fee_micros),
        Command::BeginUpload(op) => uploads::begin(txn, now_ms, op),
        Command::CreateWithUpload(op) => uploads::create_with(txn, now_ms, op, None),
        Command::CompleteUpload(op) => uploads::complete(txn, now_ms, op),
        Command::TusAppend(op) => uploads::tus_append(txn, now_ms, op),
        Command::FinishTus(op) => uploads::finish_tus(txn, now_ms, op),
        Command::EndUpload(op) => uploads::end(txn, now_ms, op),
        Command::FillFromTus(op) => uploads::fill_from_tus(txn, now_ms, op),
        Command::AddWitnessKey(op) => witness::add_key(txn, now_ms, op),
        Command::SignCheckpoint(op) => witness::sign(txn, now_ms, op),
        Command::RecordAccesses(op) => leases::record_accesses(txn, &op.accesses),
    }
}

/// The cluster clock: the largest leader timestamp seen so far.
fn advance_clock(txn: &mut Txn<'_>, proposed_ms: u64) -> Result<u64, StoreError> {
    let stored = read_clock(txn)?;
    let now = stored.max(proposed_ms);
    if now != stored {
        txn.put_raw("meta", keys::META_CLOCK_MS, &now.to_be_bytes())?;
    }
    Ok(now)
}

fn read_clock(txn: &Txn<'_>) -> Result<u64, StoreError> {
    Ok(txn
        .get_raw("meta", keys::META_CLOCK_MS)?
        .as_deref()
        .and_then(keys::parse_u64)
        .unwrap_or(0))
}

#[cfg(test)]
mod baton_tests;
#[cfg(test)]
mod checkpoint_tests;
#[cfg(test)]
mod handoff_tests;
#[cfg(test)]
mod mailbox_tests;
#[cfg(test)]
mod sessions_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod upload_tests;
#[cfg(test)]
mod witness_tests;
#[cfg(test)]
mod x402_tests;

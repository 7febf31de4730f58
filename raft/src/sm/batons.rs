//! Batons: create (paid once, by its whole shape), replace and append, delete (soft or hard),
//! restore, lifecycle changes and extensions. Reads, which draw the budgets down, are in
//! [`baton_reads`]; sharing tokens in [`baton_tokens`]. Every rule of the baton lives here.
//!
//! [`baton_reads`]: crate::sm::baton_reads
//! [`baton_tokens`]: crate::sm::baton_tokens

use crate::baton::{
    self, chain_hash, sha256_hex, Baton, Disposal, Entry, CHAIN_GENESIS, CONTENT_TYPE_MAX_LEN, ENTRIES_MAX,
    GRACE_MAX_SECONDS, RETIRED_HOLD_MS, TOKENS_MAX,
};
use crate::command::{NewLease, Outcome, Rejection, Response};
use crate::error::StoreError;
use crate::model::{Charge, Lease, LeaseKind, LeaseState};
use crate::ops::{
    AppendEntry, BatonExtended, Content, CreateBaton, DeleteBaton, EntryAppended, ExtendBaton, RestoreBaton,
    SetLifecycle, WriteBaton, X402Payment,
};
use crate::sm::baton_tokens::{self, Need};
use crate::sm::bodies::check_body;
use crate::sm::{accounts, charges, leases, objects, pricing, witness, x402, INLINE_BODY_MAX};
use crate::store::keys::{self, Timer};
use crate::store::txn::Txn;
use crate::tlog::record::Event;

type Checked<T> = Result<Result<T, Rejection>, StoreError>;

macro_rules! check {
    ($e:expr) => {
        match $e? {
            Ok(v) => v,
            Err(rejection) => return Ok(Err(rejection)),
        }
    };
}
pub(crate) use check;

/// The baton inside a lease, or `None` for another kind.
pub fn of(lease: &Lease) -> Option<&Baton> {
    match &lease.kind {
        LeaseKind::Baton(b) => Some(b),
        _ => None,
    }
}

pub fn of_mut(lease: &mut Lease) -> Option<&mut Baton> {
    match &mut lease.kind {
        LeaseKind::Baton(b) => Some(b),
        _ => None,
    }
}

/// Served at `now_ms`: active, unexpired, not tombstoned.
pub fn is_live(lease: &Lease, now_ms: u64) -> bool {
    lease.is_live_at(now_ms) && of(lease).is_some_and(|b| b.tombstoned_at_ms.is_none())
}

/// `active`, `tombstoned`, `deleted` or `expired`, at `now_ms`.
pub fn state_name(lease: &Lease, now_ms: u64) -> &'static str {
    match lease.status_at(now_ms) {
        "active" if of(lease).is_some_and(|b| b.tombstoned_at_ms.is_some()) => "tombstoned",
        other => other,
    }
}

pub fn create(
    txn: &mut Txn<'_>,
    now_ms: u64,
    op: &CreateBaton,
    payment: Option<&X402Payment>,
) -> Result<Response, StoreError> {
    let LeaseKind::Baton(shape) = &op.new.kind else {
        return Ok(Err(Rejection::Invalid("not a baton".into())));
    };
    if let Err(why) = check_shape(shape) {
        return Ok(Err(Rejection::Invalid(why)));
    }
    if op.tokens.len() > TOKENS_MAX as usize {
        return Ok(Err(Rejection::TooManyTokens(TOKENS_MAX)));
    }
    check!(baton_tokens::validate(txn, &op.new.lease_id, &op.tokens));
    let owned = txn.range(
        "baton_owners",
        &keys::owner_prefix(&op.new.owner),
        &keys::prefix_end(&keys::owner_prefix(&op.new.owner)),
        op.batons_max as usize,
    )?;
    if owned.len() as u64 >= op.batons_max {
        return Ok(Err(Rejection::TooManyBatons(op.batons_max)));
    }
    let mut b = Baton::empty(&pricing::shape_of(shape, op.new.duration_seconds));
    b.entries_max = shape.entries_max;
    b.entry_max_bytes = shape.entry_max_bytes;
    b.updated_at_ms = now_ms;
    b.token_count = op.tokens.len() as u32;
    // The type of content still to come (an upload); a first content given here sets its own.
    b.content_type.clone_from(&shape.content_type);
    // The first content is checked as a write would check it, then laid into the new baton.
    let first = match &op.content {
        None => None,
        Some(content) if b.write.appends() => {
            let Some(bytes) = content.inline.as_deref() else {
                return Ok(Err(Rejection::Invalid("an entry rides inline".into())));
            };
            let entry = check!(next_entry(&b, now_ms, bytes));
            b.entry_count = 1;
            b.used_bytes = entry.size_bytes;
            b.head_hash = Some(entry.hash.clone());
            Some(First::Entry(entry, bytes.to_vec()))
        }
        Some(content) => {
            check!(check_content(txn, &b, content));
            b.content = Some(content.body.clone());
            b.content_sha256 = Some(content.sha256_hex.clone());
            b.content_type = content.content_type.clone();
            b.used_bytes = content.body.size_bytes;
            content.inline.clone().map(First::Inline)
        }
    };
    let new = NewLease {
        kind: LeaseKind::Baton(Box::new(b)),
        ..op.new.clone()
    };
    let response = leases::create(txn, now_ms, &new, payment)?;
    if response.is_err() {
        return Ok(response);
    }
    let lease_id = &new.lease_id;
    let witnessed = shape.witness;
    match first {
        Some(First::Entry(entry, bytes)) => {
            put_entry(txn, lease_id, &entry, &bytes)?;
            if witnessed {
                witness_entry(txn, now_ms, lease_id, &new.owner, &entry, &bytes)?;
            }
        }
        Some(First::Inline(bytes)) => txn.put_raw("bodies", lease_id.as_bytes(), &bytes)?,
        None => {}
    }
    if let (true, Some(content)) = (witnessed, op.content.as_ref().filter(|_| !shape.write.appends())) {
        let w = witness::Write {
            baton_id: lease_id,
            owner: &new.owner,
            event: Event::Version,
            seq: 1,
            sha256_hex: &content.sha256_hex,
            chain_hex: None,
        };
        witness::witness(txn, now_ms, w)?;
    }
    // Checked before paying, so this cannot refuse.
    baton_tokens::put_new(txn, now_ms, lease_id, &op.tokens)?.ok();
    txn.put_raw("baton_owners", &keys::baton_owner(&new.owner, lease_id), &[])?;
    Ok(response)
}

enum First {
    Entry(Entry, Vec<u8>),
    Inline(Vec<u8>),
}

/// A shape's own rules (the API checks the configured ceilings before proposing).
fn check_shape(b: &Baton) -> Result<(), String> {
    if b.size_bytes == 0 {
        return Err("size_bytes must be at least 1".into());
    }
    if b.write == baton::WriteKind::AppendChained && !b.witness {
        return Err("an append_chained baton is always witnessed".into());
    }
    if let Disposal::Soft { grace_seconds } = b.disposal {
        if !(1..=GRACE_MAX_SECONDS).contains(&grace_seconds) {
            return Err(format!("grace_seconds must be 1 to {GRACE_MAX_SECONDS}"));
        }
    }
    if !(1..=ENTRIES_MAX).contains(&b.entries_max) || !(1..=INLINE_BODY_MAX as u64).contains(&b.entry_max_bytes) {
        return Err("entry limits out of range".into());
    }
    Ok(())
}

pub fn write(txn: &mut Txn<'_>, now_ms: u64, op: &WriteBaton) -> Result<Response, StoreError> {
    let (mut lease, _) = check!(baton_tokens::access(txn, now_ms, &op.lease_id, &op.actor, Need::Write));
    if crate::sm::uploads::pending(txn, &op.lease_id)? {
        return Ok(Err(Rejection::UploadPending));
    }
    let (lease_id, owner) = (lease.lease_id.clone(), lease.owner.clone());
    let b = of_mut(&mut lease).expect("access answers batons");
    if b.write.appends() {
        return Ok(Err(Rejection::WrongWriteKind(format!(
            "a {} baton is appended to, not replaced",
            b.write.name()
        ))));
    }
    if let Some(expected) = op.if_version {
        if expected != b.version {
            return Ok(Err(Rejection::VersionMismatch { current: b.version }));
        }
    }
    check!(check_content(txn, b, &op.content));
    // Every witnessed version is a record kept for the retention: bounded like entries.
    if b.witness && b.version >= b.entries_max {
        return Ok(Err(Rejection::TooManyVersions(b.entries_max)));
    }
    let Content {
        body,
        inline,
        sha256_hex,
        content_type,
    } = &op.content;
    // A read counted just before this write may still be fetching the old object: it is held
    // for a minute, then collected.
    if let Some(old) = b.content.as_ref().and_then(|c| c.object_key.clone()) {
        if body.object_key.as_ref() != Some(&old) {
            txn.put_raw(
                "baton_retired",
                &keys::retired(now_ms.saturating_add(RETIRED_HOLD_MS), &old),
                lease_id.as_bytes(),
            )?;
        }
    }
    match inline {
        Some(bytes) => txn.put_raw("bodies", lease_id.as_bytes(), bytes)?,
        None => txn.delete("bodies", lease_id.as_bytes())?,
    }
    if let Some(key) = &body.object_key {
        objects::reference(txn, key, &lease_id)?;
    }
    b.content = Some(body.clone());
    b.content_sha256 = Some(sha256_hex.clone());
    b.content_type = content_type.clone();
    b.used_bytes = body.size_bytes;
    b.version += 1;
    b.updated_at_ms = now_ms;
    if b.witness {
        let w = witness::Write {
            baton_id: &lease_id,
            owner: &owner,
            event: Event::Version,
            seq: b.version,
            sha256_hex,
            chain_hex: None,
        };
        witness::witness(txn, now_ms, w)?;
    }
    txn.put("leases", lease.lease_id.as_bytes(), &lease)?;
    Ok(Ok(Outcome::BatonChanged { lease }))
}

/// A replacement content fits the baton: its size, its bytes' hashes, text where text is due.
fn check_content(txn: &Txn<'_>, b: &Baton, content: &Content) -> Checked<()> {
    if let Err(rejection) = check_body(&content.body, content.inline.as_deref(), b.size_bytes) {
        return Ok(Err(rejection));
    }
    if !witness::valid_sha256_hex(&content.sha256_hex) {
        return Ok(Err(Rejection::Invalid(
            "the SHA-256 must be 64 lowercase hex digits".into(),
        )));
    }
    if content.content_type.len() > CONTENT_TYPE_MAX_LEN {
        return Ok(Err(Rejection::Invalid("content type too long".into())));
    }
    if let Some(bytes) = &content.inline {
        if sha256_hex(bytes) != content.sha256_hex {
            return Ok(Err(Rejection::Invalid("content does not match its SHA-256".into())));
        }
        if b.write.is_text() && std::str::from_utf8(bytes).is_err() {
            return Ok(Err(Rejection::Invalid(format!(
                "a {} baton holds UTF-8 text",
                b.write.name()
            ))));
        }
    }
    if let Some(key) = &content.body.object_key {
        if !objects::usable(txn, key)? {
            return Ok(Err(Rejection::Invalid("object key is queued for deletion".into())));
        }
    }
    Ok(Ok(()))
}

pub fn append(txn: &mut Txn<'_>, now_ms: u64, op: &AppendEntry) -> Result<Response, StoreError> {
    let (mut lease, _) = check!(baton_tokens::access(txn, now_ms, &op.lease_id, &op.actor, Need::Write));
    let b = of_mut(&mut lease).expect("access answers batons");
    let witnessed = b.witness;
    if !b.write.appends() {
        return Ok(Err(Rejection::WrongWriteKind(format!(
            "a {} baton is replaced, not appended to",
            b.write.name()
        ))));
    }
    let entry = check!(next_entry(b, now_ms, &op.content));
    b.entry_count = entry.seq;
    b.used_bytes += entry.size_bytes;
    b.head_hash = Some(entry.hash.clone());
    b.version += 1;
    b.updated_at_ms = now_ms;
    put_entry(txn, &lease.lease_id, &entry, &op.content)?;
    if witnessed {
        witness_entry(txn, now_ms, &lease.lease_id, &lease.owner, &entry, &op.content)?;
    }
    txn.put("leases", lease.lease_id.as_bytes(), &lease)?;
    Ok(Ok(Outcome::EntryAppended(EntryAppended { lease, entry })))
}

/// The entry `content` would be appended as, if it fits the baton's limits.
fn next_entry(b: &Baton, now_ms: u64, content: &[u8]) -> Checked<Entry> {
    let size = content.len() as u64;
    if size > b.entry_max_bytes {
        return Ok(Err(Rejection::TooLarge {
            size_bytes: size,
            limit: b.entry_max_bytes,
        }));
    }
    if b.used_bytes + size > b.size_bytes {
        return Ok(Err(Rejection::TooLarge {
            size_bytes: b.used_bytes + size,
            limit: b.size_bytes,
        }));
    }
    if b.entry_count >= b.entries_max {
        return Ok(Err(Rejection::TooManyEntries(b.entries_max)));
    }
    if std::str::from_utf8(content).is_err() {
        return Ok(Err(Rejection::Invalid(format!(
            "a {} baton holds UTF-8 text",
            b.write.name()
        ))));
    }
    let seq = b.entry_count + 1;
    let (hash, prev_hash) = match b.write {
        baton::WriteKind::AppendChained => {
            let prev = match &b.head_hash {
                Some(head) => hex::decode(head)
                    .ok()
                    .and_then(|h| <[u8; 32]>::try_from(h).ok())
                    .unwrap_or(CHAIN_GENESIS),
                None => CHAIN_GENESIS,
            };
            (hex::encode(chain_hash(&prev, seq, content)), Some(hex::encode(prev)))
        }
        _ => (sha256_hex(content), None),
    };
    Ok(Ok(Entry {
        seq,
        at_ms: now_ms,
        size_bytes: size,
        hash,
        prev_hash,
    }))
}

/// An entry's witness record: the SHA-256 of its content, and its chain hash when chained.
fn witness_entry(
    txn: &mut Txn<'_>,
    now_ms: u64,
    lease_id: &str,
    owner: &str,
    entry: &Entry,
    bytes: &[u8],
) -> Result<(), StoreError> {
    let sha = sha256_hex(bytes);
    let w = witness::Write {
        baton_id: lease_id,
        owner,
        event: Event::Entry,
        seq: entry.seq,
        sha256_hex: &sha,
        chain_hex: entry.prev_hash.as_ref().map(|_| entry.hash.as_str()),
    };
    witness::witness(txn, now_ms, w)
}

fn put_entry(txn: &mut Txn<'_>, lease_id: &str, entry: &Entry, bytes: &[u8]) -> Result<(), StoreError> {
    let key = keys::message(lease_id, entry.seq);
    txn.put("baton_entries", &key, entry)?;
    txn.put_raw("bodies", &key, bytes)
}

pub fn delete(txn: &mut Txn<'_>, now_ms: u64, op: &DeleteBaton) -> Result<Response, StoreError> {
    let mut lease = check!(owned(txn, &op.owner, &op.lease_id));
    // A tombstone may still be deleted for good; anything else must be live.
    if !lease.is_live_at(now_ms) {
        return Ok(Err(Rejection::LeaseGone));
    }
    let b = of_mut(&mut lease).expect("owned answers batons");
    match (b.disposal, op.hard, b.tombstoned_at_ms) {
        (Disposal::Soft { grace_seconds }, false, None) => {
            b.tombstoned_at_ms = Some(now_ms);
            let due = now_ms.saturating_add(grace_seconds.saturating_mul(1000));
            txn.put_raw("expiry", &keys::timer(due, &lease.lease_id), &[Timer::Dispose as u8])?;
            txn.put("leases", lease.lease_id.as_bytes(), &lease)?;
        }
        (_, false, Some(_)) => return Ok(Err(Rejection::LeaseGone)),
        _ => {
            txn.delete("expiry", &keys::timer(lease.expires_at_ms, &lease.lease_id))?;
            lease.state = LeaseState::Deleted { at_ms: now_ms };
            leases::tombstone(txn, now_ms, &lease)?;
        }
    }
    Ok(Ok(Outcome::BatonChanged { lease }))
}

pub fn restore(txn: &mut Txn<'_>, now_ms: u64, op: &RestoreBaton) -> Result<Response, StoreError> {
    let mut lease = check!(owned(txn, &op.owner, &op.lease_id));
    if !lease.is_live_at(now_ms) {
        return Ok(Err(Rejection::LeaseGone));
    }
    let b = of_mut(&mut lease).expect("owned answers batons");
    let (Some(at_ms), Disposal::Soft { grace_seconds }) = (b.tombstoned_at_ms, b.disposal) else {
        return Ok(Err(Rejection::Invalid("the baton is not deleted".into())));
    };
    let due = at_ms.saturating_add(grace_seconds.saturating_mul(1000));
    // The grace ends at `due` whether or not the sweep has come by.
    if now_ms >= due {
        return Ok(Err(Rejection::LeaseGone));
    }
    b.tombstoned_at_ms = None;
    txn.delete("expiry", &keys::timer(due, &lease.lease_id))?;
    // The dispose timer may have shared the expiry timer's key: set that one again.
    txn.put_raw(
        "expiry",
        &keys::timer(lease.expires_at_ms, &lease.lease_id),
        &[Timer::Expire as u8],
    )?;
    txn.put("leases", lease.lease_id.as_bytes(), &lease)?;
    Ok(Ok(Outcome::BatonChanged { lease }))
}

/// A `Dispose` timer: the grace of a tombstoned baton ended (a restored one is left alone).
pub fn dispose(txn: &mut Txn<'_>, now_ms: u64, mut lease: Lease) -> Result<bool, StoreError> {
    if lease.state != LeaseState::Active || of(&lease).is_none_or(|b| b.tombstoned_at_ms.is_none()) {
        return Ok(false);
    }
    txn.delete("expiry", &keys::timer(lease.expires_at_ms, &lease.lease_id))?;
    lease.state = LeaseState::Deleted { at_ms: now_ms };
    leases::tombstone(txn, now_ms, &lease)?;
    Ok(true)
}

pub fn set_lifecycle(txn: &mut Txn<'_>, now_ms: u64, op: &SetLifecycle) -> Result<Response, StoreError> {
    let mut lease = check!(owned(txn, &op.owner, &op.lease_id));
    if !is_live(&lease, now_ms) {
        return Ok(Err(Rejection::LeaseGone));
    }
    let b = of_mut(&mut lease).expect("owned answers batons");
    if let Some(burn) = op.burn_after_reading {
        b.burn_after_reading = burn;
    }
    if let Some(disposal) = op.disposal {
        b.disposal = disposal;
    }
    if let Err(why) = check_shape(b) {
        return Ok(Err(Rejection::Invalid(why)));
    }
    // Burn switched on after the caps were spent: it burns now.
    let tokens = baton_tokens::all(txn, &lease.lease_id)?;
    let lease = settle_burn(txn, now_ms, lease, &tokens)?;
    Ok(Ok(Outcome::BatonChanged { lease }))
}

/// Writes `lease` back, burning it first if it burns after reading and every capped token among
/// `tokens` (its tokens now) has used its cap. Answers the lease as written.
pub fn settle_burn(
    txn: &mut Txn<'_>,
    now_ms: u64,
    mut lease: Lease,
    tokens: &[crate::baton::BatonToken],
) -> Result<Lease, StoreError> {
    let mut capped = tokens.iter().filter(|t| t.read_cap.is_some()).peekable();
    let burns = of(&lease).is_some_and(|b| b.burn_after_reading)
        && lease.state == LeaseState::Active
        && capped.peek().is_some()
        && capped.all(|t| t.spent());
    if !burns {
        txn.put("leases", lease.lease_id.as_bytes(), &lease)?;
        return Ok(lease);
    }
    if let Some(b) = of_mut(&mut lease) {
        b.burned = true;
    }
    txn.delete("expiry", &keys::timer(lease.expires_at_ms, &lease.lease_id))?;
    lease.state = LeaseState::Deleted { at_ms: now_ms };
    leases::tombstone(txn, now_ms, &lease)?;
    Ok(lease)
}

/// Grows the owner's baton, paid from its balance or, with `payment`, by that x402 payment.
pub fn extend(
    txn: &mut Txn<'_>,
    now_ms: u64,
    op: &ExtendBaton,
    payment: Option<&X402Payment>,
) -> Result<Response, StoreError> {
    let mut lease = check!(owned(txn, &op.owner, &op.lease_id));
    if !is_live(&lease, now_ms) {
        return Ok(Err(Rejection::LeaseGone));
    }
    if op.add_seconds == 0 && op.add_size_bytes == 0 && op.add_egress_bytes == 0 {
        return Ok(Err(Rejection::Invalid("nothing to add".into())));
    }
    let b = of(&lease).expect("owned answers batons");
    if b.burned || b.egress_exhausted() {
        return Ok(Err(Rejection::LimitReached(
            "the baton's read budget is spent; it can no longer be extended".into(),
        )));
    }
    let before = pricing::shape_of(b, lease.duration_seconds);
    let grown = (
        before.duration_seconds.checked_add(op.add_seconds),
        before.size_bytes.checked_add(op.add_size_bytes),
        before.egress_bytes.checked_add(op.add_egress_bytes),
        lease.expires_at_ms.checked_add(op.add_seconds.saturating_mul(1000)),
    );
    let (Some(duration), Some(size), Some(egress), Some(expires_at_ms)) = grown else {
        return Ok(Err(Rejection::Invalid("the extension overflows".into())));
    };
    if duration > op.max_duration_seconds || size > op.max_size_bytes || egress > op.max_egress_bytes {
        return Ok(Err(Rejection::Invalid(format!(
            "a baton may last at most {} seconds, hold at most {} bytes and read at most {} bytes",
            op.max_duration_seconds, op.max_size_bytes, op.max_egress_bytes
        ))));
    }
    let after = baton::Shape {
        duration_seconds: duration,
        size_bytes: size,
        egress_bytes: egress,
        ..before
    };
    let cost = baton::extension_price(&pricing::current(txn)?, &pricing::rates(txn)?, &before, &after);
    let balance_micros = match payment {
        None => check!(accounts::debit(txn, &op.owner, cost)),
        Some(payment) => {
            let extension = crate::baton::Extension {
                lease_id: op.lease_id.clone(),
                add_seconds: op.add_seconds,
                add_size_bytes: op.add_size_bytes,
                add_egress_bytes: op.add_egress_bytes,
            };
            check!(x402::take_extension(txn, now_ms, payment, &extension, &op.owner, cost));
            0
        }
    };
    if op.add_seconds > 0 {
        txn.delete("expiry", &keys::timer(lease.expires_at_ms, &lease.lease_id))?;
        txn.put_raw(
            "expiry",
            &keys::timer(expires_at_ms, &lease.lease_id),
            &[Timer::Expire as u8],
        )?;
    }
    lease.expires_at_ms = expires_at_ms;
    lease.duration_seconds = duration;
    lease.cost_micros = lease.cost_micros.saturating_add(cost);
    let b = of_mut(&mut lease).expect("owned answers batons");
    b.size_bytes = size;
    b.egress_bytes = egress;
    txn.put("leases", lease.lease_id.as_bytes(), &lease)?;
    let charge = Charge {
        ledger_id: lease.ledger_id.clone(),
        lease_id: lease.lease_id.clone(),
        amount_micros: cost,
        balance_after_micros: payment.is_none().then_some(balance_micros),
        method: if payment.is_some() { "x402" } else { "balance" }.into(),
        at_ms: now_ms,
    };
    charges::record(txn, &lease.owner, &charge)?;
    Ok(Ok(Outcome::BatonExtended(BatonExtended {
        lease,
        charged_micros: cost,
        balance_micros,
    })))
}

/// Takes back an extension whose x402 payment failed to settle: the time, size and read budget it
/// added (never below what is already used) and its price. A baton already closed is left alone.
pub fn take_back(
    txn: &mut Txn<'_>,
    _now_ms: u64,
    extension: &crate::baton::Extension,
    paid_micros: u64,
) -> Result<(), StoreError> {
    let Some(mut lease) = txn.get::<Lease>("leases", extension.lease_id.as_bytes())? else {
        return Ok(());
    };
    if lease.state != LeaseState::Active {
        return Ok(());
    }
    let expires_at_ms = lease
        .expires_at_ms
        .saturating_sub(extension.add_seconds.saturating_mul(1000))
        .max(lease.created_at_ms);
    if expires_at_ms != lease.expires_at_ms {
        txn.delete("expiry", &keys::timer(lease.expires_at_ms, &lease.lease_id))?;
        // Due already if the extension was all that kept it: the next sweep expires it.
        txn.put_raw(
            "expiry",
            &keys::timer(expires_at_ms, &lease.lease_id),
            &[Timer::Expire as u8],
        )?;
    }
    lease.expires_at_ms = expires_at_ms;
    lease.duration_seconds = lease.duration_seconds.saturating_sub(extension.add_seconds).max(1);
    lease.cost_micros = lease.cost_micros.saturating_sub(paid_micros);
    if let Some(b) = of_mut(&mut lease) {
        b.size_bytes = b
            .size_bytes
            .saturating_sub(extension.add_size_bytes)
            .max(b.used_bytes)
            .max(1);
        b.egress_bytes = b
            .egress_bytes
            .saturating_sub(extension.add_egress_bytes)
            .max(b.egress_used);
    }
    txn.put("leases", lease.lease_id.as_bytes(), &lease)
}

/// The owner's baton `lease_id`, in whatever state.
pub(crate) fn owned(txn: &Txn<'_>, owner: &str, lease_id: &str) -> Checked<Lease> {
    match txn.get::<Lease>("leases", lease_id.as_bytes())? {
        Some(lease) if lease.owner == owner && of(&lease).is_some() => Ok(Ok(lease)),
        _ => Ok(Err(Rejection::LeaseNotFound)),
    }
}

/// Deletes a closed baton's entries and drops it from its owner's count (its inline content
/// went with the lease's `bodies` row).
pub fn clear(txn: &mut Txn<'_>, lease: &Lease) -> Result<(), StoreError> {
    let prefix = keys::message_prefix(&lease.lease_id);
    let end = keys::prefix_end(&prefix);
    for (key, _) in txn.range("baton_entries", &prefix, &end, usize::MAX)? {
        txn.delete("baton_entries", &key)?;
        txn.delete("bodies", &key)?;
    }
    txn.delete("baton_owners", &keys::baton_owner(&lease.owner, &lease.lease_id))
}

/// Forgets a purged baton's tokens.
pub fn purge(txn: &mut Txn<'_>, lease: &Lease) -> Result<(), StoreError> {
    baton_tokens::purge_for_lease(txn, &lease.lease_id)
}

/// Collects replaced objects whose hold ended, at most `max`.
pub fn collect_retired(txn: &mut Txn<'_>, now_ms: u64, max: u32) -> Result<u32, StoreError> {
    let end = now_ms.saturating_add(1).to_be_bytes();
    let mut collected = 0;
    for (key, lease_id) in txn.range("baton_retired", &[], &end, max as usize)? {
        txn.delete("baton_retired", &key)?;
        let object_key = String::from_utf8_lossy(&key[8..]).into_owned();
        // Written back as content since (the same bytes again): still in use.
        let in_use = txn
            .get::<Lease>("leases", &lease_id)?
            .is_some_and(|l| l.kind.object_keys().contains(&object_key) && l.state == LeaseState::Active);
        if !in_use {
            objects::release(txn, &object_key, &String::from_utf8_lossy(&lease_id), now_ms)?;
            collected += 1;
        }
    }
    Ok(collected)
}

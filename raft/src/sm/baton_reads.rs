//! Reading a baton is a ledger step: it resolves what will be served against the content as it
//! stands, refuses the read whole if it would pass the read budget, counts the bytes and the
//! token's read, and burns the baton on the final capped read. So across any number of readers
//! on any nodes, no byte is served past the budget and no token reads past its cap.

use crate::baton::{BatonToken, Entry};
use crate::command::{Outcome, Rejection, Response};
use crate::error::StoreError;
use crate::model::{Access, AccessActor, LeaseState};
use crate::ops::{BatonRead, RangeSpec, ReadBaton, ReadTarget};
use crate::sm::baton_tokens::{self, Need};
use crate::sm::batons::{check, of, of_mut};
use crate::sm::{leases, ACCESS_HISTORY_MAX};
use crate::store::keys;
use crate::store::txn::Txn;

/// The most entries one listing serves.
pub const ENTRIES_PAGE_MAX: u32 = 1000;

pub fn read(txn: &mut Txn<'_>, now_ms: u64, op: &ReadBaton) -> Result<Response, StoreError> {
    let (mut lease, mut token) = check!(baton_tokens::access(txn, now_ms, &op.lease_id, &op.actor, Need::Read));
    if crate::sm::uploads::pending(txn, &op.lease_id)? {
        return Ok(Err(Rejection::UploadPending));
    }
    let b = of(&lease).expect("access answers batons");
    let total = b.used_bytes;
    let mut read = BatonRead {
        lease: lease.clone(),
        start: 0,
        end: total,
        total,
        inline: None,
        upto_seq: b.entry_count,
        entries: Vec::new(),
        closed: false,
        token: None,
    };
    let needed = match &op.target {
        ReadTarget::Content { range } => {
            let (start, end) = match resolve(*range, total) {
                Ok(r) => r,
                Err(rejection) => return Ok(Err(rejection)),
            };
            (read.start, read.end) = (start, end);
            end - start
        }
        ReadTarget::Entries { after, limit } => {
            if b.write.appends() {
                let limit = (*limit).clamp(1, ENTRIES_PAGE_MAX) as usize;
                read.entries = entries(txn, &lease.lease_id, *after, limit)?;
            } else {
                return Ok(Err(not_a_log(b.write.name())));
            }
            read.entries.iter().map(|e| e.size_bytes).sum()
        }
        ReadTarget::Entry { seq } => {
            if !b.write.appends() {
                return Ok(Err(not_a_log(b.write.name())));
            }
            let key = keys::message(&lease.lease_id, *seq);
            let Some(entry) = txn.get::<Entry>("baton_entries", &key)? else {
                return Ok(Err(Rejection::EntryNotFound));
            };
            let size = entry.size_bytes;
            read.entries.push(entry);
            size
        }
    };
    let remaining = b.egress_bytes.saturating_sub(b.egress_used);
    if needed > remaining {
        return Ok(Err(Rejection::EgressExhausted { remaining, needed }));
    }
    // A read that serves nothing (past the last entry, an empty baton) is answered but not
    // counted: it uses no cap and burns nothing.
    if needed == 0 {
        return Ok(Ok(Outcome::BatonRead(read)));
    }
    if matches!(op.target, ReadTarget::Content { .. }) && !b.write.appends() {
        read.inline = txn.get_raw("bodies", lease.lease_id.as_bytes())?;
    }
    if let Some(t) = token.as_mut() {
        t.reads = t.reads.saturating_add(1);
        if let crate::ops::Actor::Token(hash_hex) = &op.actor {
            baton_tokens::save(txn, hash_hex, t)?;
        }
    }
    let burns = match &token {
        Some(t) if b.burn_after_reading && t.read_cap.is_some() => all_caps_spent(txn, &lease.lease_id, t)?,
        _ => false,
    };
    let b = of_mut(&mut lease).expect("access answers batons");
    b.egress_used += needed;
    lease.access_count += 1;
    if lease.recent_access.len() >= ACCESS_HISTORY_MAX {
        lease.recent_access.remove(0);
    }
    let actor = if token.is_some() {
        AccessActor::Claim
    } else {
        AccessActor::Owner
    };
    lease.recent_access.push(Access { at_ms: now_ms, actor });
    read.lease = lease.clone();
    read.token = token;
    if burns {
        of_mut(&mut lease).expect("a baton").burned = true;
        read.lease = lease.clone();
        txn.delete("expiry", &keys::timer(lease.expires_at_ms, &lease.lease_id))?;
        lease.state = LeaseState::Deleted { at_ms: now_ms };
        // This reader streams the content now; it goes when the stream is done.
        leases::close(txn, now_ms, &lease, true)?;
        read.closed = true;
    } else {
        txn.put("leases", lease.lease_id.as_bytes(), &lease)?;
    }
    Ok(Ok(Outcome::BatonRead(read)))
}

fn not_a_log(kind: &str) -> Rejection {
    Rejection::WrongWriteKind(format!("a {kind} baton has no entries"))
}

/// Whether every read-capped token of the baton has used its cap, counting `current` (this
/// read's token, not yet written back) as it is now.
fn all_caps_spent(txn: &Txn<'_>, lease_id: &str, current: &BatonToken) -> Result<bool, StoreError> {
    Ok(baton_tokens::all(txn, lease_id)?
        .iter()
        .map(|t| if t.token_id == current.token_id { current } else { t })
        .filter(|t| t.read_cap.is_some())
        .all(BatonToken::spent))
}

/// Up to `limit` entries after `after`, in order.
pub fn entries(txn: &Txn<'_>, lease_id: &str, after: u64, limit: usize) -> Result<Vec<Entry>, StoreError> {
    let start = keys::message(lease_id, after.saturating_add(1));
    let end = keys::prefix_end(&keys::message_prefix(lease_id));
    txn.range("baton_entries", &start, &end, limit)?
        .into_iter()
        .map(|(_, v)| crate::store::decode("baton_entries", &v))
        .collect()
}

/// The half-open byte range a [`RangeSpec`] asks of content `size` bytes long; the whole content
/// without one (or when it is empty).
pub fn resolve(range: Option<RangeSpec>, size: u64) -> Result<(u64, u64), Rejection> {
    let unsatisfiable = Rejection::RangeNotSatisfiable { size };
    match range {
        None => Ok((0, size)),
        Some(_) if size == 0 => Ok((0, 0)),
        Some(RangeSpec::Suffix(0)) => Err(unsatisfiable),
        Some(RangeSpec::Suffix(n)) => Ok((size.saturating_sub(n), size)),
        Some(RangeSpec::From(first)) if first < size => Ok((first, size)),
        Some(RangeSpec::FromTo(first, last)) if first < size && first <= last => {
            Ok((first, last.saturating_add(1).min(size)))
        }
        Some(_) => Err(unsatisfiable),
    }
}

//! Mailbox leases: drops by token holders, pickups and deletes by the owner, and the replicated
//! webhook delivery queue.

use crate::command::{NewLease, Outcome, Rejection, Response, WebhookResult};
use crate::error::StoreError;
use crate::model::{Delivery, Lease, LeaseKind, Mailbox, Message};
use crate::ops::{DropMessage, MessageDropped, MessagePicked, X402Payment};
use crate::sm::bodies::check_body;
use crate::sm::{leases, objects};
use crate::store::keys;
use crate::store::txn::Txn;

/// The most messages one mailbox may hold, whatever the API allows.
pub const MESSAGES_MAX: u64 = 100_000;
/// Webhook attempts per message before the delivery is given up.
pub const WEBHOOK_ATTEMPTS_MAX: u32 = 10;
/// The most webhook results one command may carry.
pub const WEBHOOK_BATCH_MAX: usize = 1024;
/// Longest accepted content type.
pub const CONTENT_TYPE_MAX_LEN: usize = 255;
/// Webhook deliveries one mailbox may have queued; further drops are refused (429) until the
/// receiver catches up or the deliveries are given up.
pub const WEBHOOKS_PENDING_PER_MAILBOX_MAX: u64 = 1_000;
/// Webhook deliveries one owner's mailboxes may have queued, together (a tenth of the cluster's,
/// so no one owner can fill the queue for everyone).
pub const WEBHOOKS_PENDING_PER_OWNER_MAX: u64 = 10_000;
/// Webhook deliveries the whole cluster may have queued.
pub const WEBHOOKS_PENDING_MAX: u64 = 100_000;
/// `meta` key of the number of queued webhook deliveries.
pub const META_WEBHOOKS_PENDING: &[u8] = b"webhooks_pending";

/// `meta` key of the number of webhook deliveries queued for one owner's mailboxes.
pub fn owner_pending_key(owner: &str) -> Vec<u8> {
    let mut k = META_WEBHOOKS_PENDING.to_vec();
    k.push(b'/');
    k.extend_from_slice(owner.as_bytes());
    k
}

pub fn create(
    txn: &mut Txn<'_>,
    now_ms: u64,
    new: &NewLease,
    payment: Option<&X402Payment>,
) -> Result<Response, StoreError> {
    let LeaseKind::Mailbox(mb) = &new.kind else {
        return Ok(Err(Rejection::Invalid("not a mailbox".into())));
    };
    if mb.capacity_bytes == 0
        || mb.max_message_bytes == 0
        || mb.max_message_bytes > mb.capacity_bytes
        || !(1..=MESSAGES_MAX).contains(&mb.max_messages)
    {
        return Ok(Err(Rejection::Invalid("mailbox limits out of range".into())));
    }
    let Some(token_hash) = token_hash(&mb.drop_token_hash_hex) else {
        return Ok(Err(Rejection::Invalid(
            "drop token hash must be 32 bytes of hex".into(),
        )));
    };
    if txn.get_raw("drop_tokens", &token_hash)?.is_some() {
        return Ok(Err(Rejection::Invalid("drop token collision".into())));
    }
    let mut new = new.clone();
    new.kind = LeaseKind::Mailbox(Mailbox {
        used_bytes: 0,
        message_count: 0,
        next_seq: 1,
        webhooks_pending: 0,
        ..mb.clone()
    });
    let response = leases::create(txn, now_ms, &new, payment)?;
    if response.is_ok() {
        txn.put_raw("drop_tokens", &token_hash, new.lease_id.as_bytes())?;
    }
    Ok(response)
}

pub fn drop_message(txn: &mut Txn<'_>, now_ms: u64, op: &DropMessage) -> Result<Response, StoreError> {
    let DropMessage {
        token_hash_hex,
        content_type,
        body,
        inline_body,
    } = op;
    let inline_body = inline_body.as_deref();
    let Some(lease_id) = token_hash(token_hash_hex)
        .map(|h| txn.get_raw("drop_tokens", &h))
        .transpose()?
        .flatten()
    else {
        return Ok(Err(Rejection::LeaseNotFound));
    };
    let Some(mut lease) = txn.get::<Lease>("leases", &lease_id)? else {
        return Ok(Err(Rejection::LeaseNotFound));
    };
    if !lease.is_live_at(now_ms) {
        return Ok(Err(Rejection::LeaseGone));
    }
    if content_type.len() > CONTENT_TYPE_MAX_LEN {
        return Ok(Err(Rejection::Invalid("content type too long".into())));
    }
    let lease_id = lease.lease_id.clone();
    let LeaseKind::Mailbox(mb) = &mut lease.kind else {
        return Ok(Err(Rejection::LeaseNotFound));
    };
    if let Err(rejection) = check_body(body, inline_body, mb.max_message_bytes) {
        return Ok(Err(rejection));
    }
    if mb.message_count >= mb.max_messages {
        return Ok(Err(Rejection::MailboxFull(format!(
            "it holds its maximum of {} messages",
            mb.max_messages
        ))));
    }
    if mb.used_bytes.saturating_add(body.size_bytes) > mb.capacity_bytes {
        return Ok(Err(Rejection::MailboxFull(format!(
            "{} of {} capacity bytes are used",
            mb.used_bytes, mb.capacity_bytes
        ))));
    }
    let owner_key = owner_pending_key(&lease.owner);
    let (webhooks_total, webhooks_owner) = (pending(txn, META_WEBHOOKS_PENDING)?, pending(txn, &owner_key)?);
    if mb.webhook.is_some() {
        if mb.webhooks_pending >= WEBHOOKS_PENDING_PER_MAILBOX_MAX {
            return Ok(Err(Rejection::WebhookBacklog(format!(
                "this mailbox has {} webhook deliveries waiting for its receiver",
                mb.webhooks_pending
            ))));
        }
        if webhooks_owner >= WEBHOOKS_PENDING_PER_OWNER_MAX {
            return Ok(Err(Rejection::WebhookBacklog(format!(
                "this owner's mailboxes have {webhooks_owner} webhook deliveries waiting"
            ))));
        }
        if webhooks_total >= WEBHOOKS_PENDING_MAX {
            return Ok(Err(Rejection::WebhookBacklog(
                "the cluster's webhook queue is full".into(),
            )));
        }
    }
    if let Some(key) = &body.object_key {
        if !objects::usable(txn, key)? {
            return Ok(Err(Rejection::Invalid("object key is queued for deletion".into())));
        }
    }
    let message = Message {
        seq: mb.next_seq,
        received_at_ms: now_ms,
        content_type: content_type.to_string(),
        body: body.clone(),
    };
    let key = keys::message(&lease_id, message.seq);
    txn.put("messages", &key, &message)?;
    if let Some(bytes) = inline_body {
        txn.put_raw("bodies", &key, bytes)?;
    }
    if let Some(object_key) = &body.object_key {
        objects::reference(txn, object_key, &lease_id)?;
    }
    if mb.webhook.is_some() {
        let delivery = Delivery {
            lease_id: lease_id.clone(),
            seq: message.seq,
            due_ms: now_ms,
            attempts: 0,
            received_at_ms: now_ms,
            size_bytes: body.size_bytes,
            content_type: message.content_type.clone(),
            owner: lease.owner.clone(),
        };
        txn.put("webhooks", &keys::delivery(now_ms, &lease_id, message.seq), &delivery)?;
        mb.webhooks_pending += 1;
        set_pending(txn, META_WEBHOOKS_PENDING, webhooks_total + 1)?;
        set_pending(txn, &owner_key, webhooks_owner + 1)?;
    }
    mb.next_seq += 1;
    mb.message_count += 1;
    mb.used_bytes += body.size_bytes;
    txn.put("leases", lease_id.as_bytes(), &lease)?;
    Ok(Ok(Outcome::MessageDropped(MessageDropped { lease_id, message })))
}

pub fn pickup(txn: &mut Txn<'_>, now_ms: u64, owner: &str, lease_id: &str, seq: u64) -> Result<Response, StoreError> {
    let (lease, message) = match owned_message(txn, now_ms, owner, lease_id, seq)? {
        Ok(found) => found,
        Err(rejection) => return Ok(Err(rejection)),
    };
    let inline_body = txn.get_raw("bodies", &keys::message(lease_id, seq))?;
    let keep = matches!(&lease.kind, LeaseKind::Mailbox(mb) if mb.keep_on_read);
    if !keep {
        remove(txn, now_ms, lease, &message)?;
    }
    Ok(Ok(Outcome::MessagePicked(MessagePicked {
        message,
        inline_body,
        removed: !keep,
    })))
}

pub fn delete_message(
    txn: &mut Txn<'_>,
    now_ms: u64,
    owner: &str,
    lease_id: &str,
    seq: u64,
) -> Result<Response, StoreError> {
    match owned_message(txn, now_ms, owner, lease_id, seq)? {
        Ok((lease, message)) => {
            remove(txn, now_ms, lease, &message)?;
            Ok(Ok(Outcome::MessageDeleted))
        }
        Err(rejection) => Ok(Err(rejection)),
    }
}

/// Removes every message of a mailbox that stopped being active (its bytes go with it).
pub fn clear(txn: &mut Txn<'_>, now_ms: u64, lease_id: &str) -> Result<(), StoreError> {
    let prefix = keys::message_prefix(lease_id);
    let mut end = prefix.clone();
    *end.last_mut().expect("prefix ends with a separator") = 1;
    for (key, value) in txn.range("messages", &prefix, &end, MESSAGES_MAX as usize)? {
        let message: Message = crate::store::decode("messages", &value)?;
        forget(txn, now_ms, lease_id, &key, &message)?;
    }
    Ok(())
}

pub fn webhooks_attempted(txn: &mut Txn<'_>, results: &[WebhookResult]) -> Result<Response, StoreError> {
    if results.len() > WEBHOOK_BATCH_MAX {
        return Ok(Err(Rejection::Invalid(format!(
            "at most {WEBHOOK_BATCH_MAX} webhook results per command"
        ))));
    }
    // Reads see the state before this command, so a repeated result must not apply twice, and
    // each mailbox's count is read once and written once.
    let mut seen = std::collections::BTreeSet::new();
    let mut done_per_mailbox = std::collections::BTreeMap::<&str, u64>::new();
    let mut done_per_owner = std::collections::BTreeMap::<String, u64>::new();
    let mut found = 0;
    for r in results {
        let key = keys::delivery(r.due_ms, &r.lease_id, r.seq);
        if !seen.insert(key.clone()) {
            continue;
        }
        let Some(mut delivery) = txn.get::<Delivery>("webhooks", &key)? else {
            continue;
        };
        found += 1;
        txn.delete("webhooks", &key)?;
        match r.retry_at_ms {
            Some(at) if delivery.attempts + 1 < WEBHOOK_ATTEMPTS_MAX => {
                delivery.attempts += 1;
                delivery.due_ms = at.max(r.due_ms.saturating_add(1));
                // A retry lands on a new key; deduplicated above, so it cannot collide with
                // another result's key in this batch except by being that key's retry.
                seen.insert(keys::delivery(delivery.due_ms, &r.lease_id, r.seq));
                txn.put(
                    "webhooks",
                    &keys::delivery(delivery.due_ms, &r.lease_id, r.seq),
                    &delivery,
                )?;
            }
            _ => {
                *done_per_mailbox.entry(r.lease_id.as_str()).or_default() += 1;
                *done_per_owner.entry(delivery.owner).or_default() += 1;
            }
        }
    }
    let done: u64 = done_per_mailbox.values().sum();
    if done > 0 {
        let total = pending(txn, META_WEBHOOKS_PENDING)?;
        set_pending(txn, META_WEBHOOKS_PENDING, total.saturating_sub(done))?;
    }
    for (owner, n) in done_per_owner {
        let key = owner_pending_key(&owner);
        let held = pending(txn, &key)?;
        set_pending(txn, &key, held.saturating_sub(n))?;
    }
    for (lease_id, n) in done_per_mailbox {
        // The mailbox may be closed (its tombstone still counts) or already forgotten.
        if let Some(mut lease) = txn.get::<Lease>("leases", lease_id.as_bytes())? {
            if let LeaseKind::Mailbox(mb) = &mut lease.kind {
                mb.webhooks_pending = mb.webhooks_pending.saturating_sub(n);
                txn.put("leases", lease_id.as_bytes(), &lease)?;
            }
        }
    }
    Ok(Ok(Outcome::WebhooksRecorded { found }))
}

/// A count of queued webhook deliveries (`meta` key: the cluster's, or one owner's).
fn pending(txn: &Txn<'_>, key: &[u8]) -> Result<u64, StoreError> {
    Ok(txn
        .get_raw("meta", key)?
        .as_deref()
        .and_then(keys::parse_u64)
        .unwrap_or(0))
}

/// Sets a count; a count of zero is removed, so owners with nothing queued leave no record.
fn set_pending(txn: &mut Txn<'_>, key: &[u8], n: u64) -> Result<(), StoreError> {
    if n == 0 {
        txn.delete("meta", key)
    } else {
        txn.put_raw("meta", key, &n.to_be_bytes())
    }
}

/// The owner's live mailbox and one of its messages.
fn owned_message(
    txn: &Txn<'_>,
    now_ms: u64,
    owner: &str,
    lease_id: &str,
    seq: u64,
) -> Result<Result<(Lease, Message), Rejection>, StoreError> {
    let Some(lease) = txn.get::<Lease>("leases", lease_id.as_bytes())? else {
        return Ok(Err(Rejection::LeaseNotFound));
    };
    if lease.owner != owner || !matches!(lease.kind, LeaseKind::Mailbox(_)) {
        return Ok(Err(Rejection::LeaseNotFound));
    }
    if !lease.is_live_at(now_ms) {
        return Ok(Err(Rejection::LeaseGone));
    }
    match txn.get::<Message>("messages", &keys::message(lease_id, seq))? {
        Some(message) => Ok(Ok((lease, message))),
        None => Ok(Err(Rejection::MessageNotFound)),
    }
}

/// Takes a message out of a live mailbox and gives its capacity back.
fn remove(txn: &mut Txn<'_>, now_ms: u64, mut lease: Lease, message: &Message) -> Result<(), StoreError> {
    let key = keys::message(&lease.lease_id, message.seq);
    forget(txn, now_ms, &lease.lease_id, &key, message)?;
    if let LeaseKind::Mailbox(mb) = &mut lease.kind {
        mb.message_count = mb.message_count.saturating_sub(1);
        mb.used_bytes = mb.used_bytes.saturating_sub(message.body.size_bytes);
    }
    txn.put("leases", lease.lease_id.as_bytes(), &lease)
}

fn forget(txn: &mut Txn<'_>, now_ms: u64, lease_id: &str, key: &[u8], message: &Message) -> Result<(), StoreError> {
    txn.delete("messages", key)?;
    txn.delete("bodies", key)?;
    if let Some(object_key) = &message.body.object_key {
        objects::release(txn, object_key, lease_id, now_ms)?;
    }
    Ok(())
}

fn token_hash(hex_str: &str) -> Option<Vec<u8>> {
    hex::decode(hex_str).ok().filter(|b| b.len() == 32)
}

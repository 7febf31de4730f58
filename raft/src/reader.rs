//! Read-only queries against the applied state. Callers that decide access first make the read
//! linearizable with [`crate::Ledger::linearizable`].

use std::sync::Arc;

use rocksdb::DB;

use crate::error::StoreError;
use crate::model::{Account, Delivery, Handoff, Lease, Message};
use crate::sm::DEDUP_WINDOW_MS;
use crate::store::keys::{self, META_CLOCK_MS, META_LAST_APPLIED};
use crate::store::txn::scan_range;
use crate::store::{cf, decode};
use crate::NodeId;

/// A baton entry and its bytes (`None` once they are gone).
pub type EntryWithBytes = (crate::baton::Entry, Option<Vec<u8>>);

/// The most `by_owner` rows one page of batons scans.
pub const BATON_SCAN_MAX: usize = 4096;

#[derive(Clone)]
pub struct StateReader {
    db: Arc<DB>,
}

/// One page of an owner's leases, newest first.
pub struct LeasePage {
    pub leases: Vec<Lease>,
    /// Pass back to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

impl StateReader {
    pub fn new(db: Arc<DB>) -> Self {
        StateReader { db }
    }

    pub(crate) fn db(&self) -> Arc<DB> {
        self.db.clone()
    }

    /// The lease standing on `object_key`, if any (the `refs` index).
    pub fn object_referrer(&self, object_key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .db
            .get_cf(cf(&self.db, "refs")?, object_key.as_bytes())?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    fn get<T: serde::de::DeserializeOwned>(&self, name: &'static str, key: &[u8]) -> Result<Option<T>, StoreError> {
        match self.db.get_cf(cf(&self.db, name)?, key)? {
            Some(bytes) => Ok(Some(decode(name, &bytes)?)),
            None => Ok(None),
        }
    }

    /// The cluster clock as of the last applied entry.
    pub fn clock_ms(&self) -> Result<u64, StoreError> {
        Ok(self
            .db
            .get_cf(cf(&self.db, "meta")?, META_CLOCK_MS)?
            .as_deref()
            .and_then(keys::parse_u64)
            .unwrap_or(0))
    }

    pub fn last_applied_index(&self) -> Result<Option<u64>, StoreError> {
        let id: Option<Option<openraft::LogId<NodeId>>> = self.get("meta", META_LAST_APPLIED)?;
        Ok(id.flatten().map(|l| l.index))
    }

    pub fn lease(&self, lease_id: &str) -> Result<Option<Lease>, StoreError> {
        self.get("leases", lease_id.as_bytes())
    }

    /// The rule an access is judged by, on applied state at cluster time `now_ms` (the same
    /// checks, in the same order, as [`crate::ops::RecordAccess`] applies): the lease exists and,
    /// with `owner`, is that owner's; it is live; its content is not waiting for an upload.
    pub fn accessible(
        &self,
        lease_id: &str,
        owner: Option<&str>,
        now_ms: u64,
    ) -> Result<Result<Lease, crate::Rejection>, StoreError> {
        use crate::Rejection;
        let Some(lease) = self.lease(lease_id)? else {
            return Ok(Err(Rejection::LeaseNotFound));
        };
        if owner.is_some_and(|o| o != lease.owner) {
            return Ok(Err(Rejection::LeaseNotFound));
        }
        if !lease.is_live_at(now_ms) {
            return Ok(Err(Rejection::LeaseGone));
        }
        if self.pending_upload(lease_id)?.is_some() {
            return Ok(Err(Rejection::UploadPending));
        }
        Ok(Ok(lease))
    }

    pub fn account(&self, account_id: &str) -> Result<Option<Account>, StoreError> {
        self.get("accounts", account_id.as_bytes())
    }

    /// The account an API key (by its blake3 hash) acts for.
    pub fn account_for_key_hash(&self, key_hash: &[u8; 32]) -> Result<Option<String>, StoreError> {
        let raw = self.db.get_cf(cf(&self.db, "api_keys")?, key_hash)?;
        Ok(raw.map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// Whether an admin key (by its blake3 hash) is known.
    pub fn is_admin_key_hash(&self, key_hash: &[u8; 32]) -> Result<bool, StoreError> {
        Ok(self.db.get_cf(cf(&self.db, "admin_keys")?, key_hash)?.is_some())
    }

    /// Whether any admin key has been registered (a cluster whose founder has finished bootstrapping).
    pub fn has_admin_key(&self) -> Result<bool, StoreError> {
        Ok(!scan_range(&self.db, "admin_keys", &[], &[0xff; 33], 1)?.is_empty())
    }

    /// What the ledger remembers of an idempotency key in `scope`, if anything.
    pub fn idempotency_record(&self, scope: &str, key: &str) -> Result<Option<crate::sm::dedup::Record>, StoreError> {
        self.get("dedup", &keys::dedup_record(scope, key))
    }

    /// Up to `limit` x402 payments whose settlement is not known yet, as (from, nonce, record).
    pub fn x402_pending(&self, limit: usize) -> Result<Vec<(String, String, crate::model::X402Record)>, StoreError> {
        let mut out = Vec::new();
        for (key, _) in scan_range(&self.db, "x402", b"q", b"r", limit)? {
            let record_key = [b"p", &key[1..]].concat();
            if let (Some(record), 53) = (self.get::<crate::model::X402Record>("x402", &record_key)?, key.len()) {
                let from = format!("0x{}", hex::encode(&key[1..21]));
                let nonce = format!("0x{}", hex::encode(&key[21..53]));
                out.push((from, nonce, record));
            }
        }
        Ok(out)
    }

    /// Up to `limit` of the owner's charges, newest first, after `cursor` (the key of the last
    /// one of a previous page, hex).
    pub fn charges(&self, owner: &str, cursor: Option<&str>, limit: usize) -> Result<ChargePage, StoreError> {
        let prefix = crate::sm::charges::owner_prefix(owner);
        let mut start = prefix.clone();
        if let Some(c) = cursor
            .and_then(|c| hex::decode(c).ok())
            .filter(|c| c.starts_with(&prefix))
        {
            start = c;
            start.push(0); // strictly after the cursor's key
        }
        let mut end = prefix.clone();
        *end.last_mut().expect("prefix ends with a separator") = 1;
        let rows = scan_range(&self.db, "charges", &start, &end, limit + 1)?;
        let more = rows.len() > limit;
        let mut items = Vec::new();
        let mut last = None;
        for (key, value) in rows.into_iter().take(limit) {
            items.push(decode::<crate::model::Charge>("charges", &value)?);
            last = Some(key);
        }
        Ok(ChargePage {
            items,
            next_cursor: if more { last.map(hex::encode) } else { None },
        })
    }

    /// An account's API keys (ids and first characters only).
    pub fn api_keys(&self, account_id: &str) -> Result<Vec<crate::model::ApiKeyInfo>, StoreError> {
        let prefix = crate::sm::accounts::account_key(account_id, "");
        let mut end = prefix.clone();
        *end.last_mut().expect("prefix ends with a separator") = 1;
        scan_range(&self.db, "account_keys", &prefix, &end, 1000)?
            .into_iter()
            .map(|(_, v)| decode::<(crate::model::ApiKeyInfo, String)>("account_keys", &v).map(|(k, _)| k))
            .collect()
    }

    /// A session by its id, as applied here (revoked or expired ones included).
    pub fn session(&self, session_id: &str) -> Result<Option<crate::model::Session>, StoreError> {
        self.get("sessions", &crate::sm::sessions::session_key(session_id))
    }

    /// Whether a sign-in nonce already opened a session (as applied here).
    pub fn nonce_used(&self, nonce: &str) -> Result<bool, StoreError> {
        Ok(self
            .db
            .get_cf(cf(&self.db, "sessions")?, crate::sm::sessions::nonce_key(nonce))?
            .is_some())
    }

    /// The keys that sign session tokens, oldest first (the last signs new tokens).
    pub fn session_keys(&self) -> Result<Vec<crate::model::SessionKey>, StoreError> {
        Ok(self.get("meta", keys::META_SESSION_KEYS)?.unwrap_or_default())
    }

    /// What the ledger keeps of the x402 payment `(from, nonce)`, if anything.
    pub fn x402_record(&self, from: &str, nonce_hex: &str) -> Result<Option<crate::model::X402Record>, StoreError> {
        match crate::sm::x402::record_key(from, nonce_hex) {
            Some(key) => self.get("x402", &key),
            None => Ok(None),
        }
    }

    /// Up to `limit` of the owner's leases after `cursor` (as returned by a previous page).
    pub fn leases_by_owner(&self, owner: &str, cursor: Option<&str>, limit: usize) -> Result<LeasePage, StoreError> {
        let prefix = keys::owner_prefix(owner);
        let mut start = prefix.clone();
        if let Some(c) = cursor.and_then(|c| hex::decode(c).ok()) {
            start.extend_from_slice(&c);
            start.push(0); // strictly after the cursor's key
        }
        let mut end = prefix.clone();
        *end.last_mut().expect("prefix ends with a separator") = 1;
        let rows = scan_range(&self.db, "by_owner", &start, &end, limit + 1)?;
        let more = rows.len() > limit;
        let mut leases = Vec::with_capacity(limit.min(rows.len()));
        let mut last_key = None;
        for (k, _) in rows.into_iter().take(limit) {
            let lease_id = String::from_utf8_lossy(&k[prefix.len() + 8..]).into_owned();
            if let Some(lease) = self.lease(&lease_id)? {
                leases.push(lease);
            }
            last_key = Some(k[prefix.len()..].to_vec());
        }
        let next_cursor = if more { last_key.map(hex::encode) } else { None };
        Ok(LeasePage { leases, next_cursor })
    }

    /// Up to `limit` of the owner's batons after `cursor`, newest first. Other leases are skipped
    /// (at most [`BATON_SCAN_MAX`] rows per page; the cursor then resumes the scan).
    pub fn batons_by_owner(&self, owner: &str, cursor: Option<&str>, limit: usize) -> Result<LeasePage, StoreError> {
        let prefix = keys::owner_prefix(owner);
        let end = keys::prefix_end(&prefix);
        let mut start = prefix.clone();
        if let Some(c) = cursor.and_then(|c| hex::decode(c).ok()) {
            start.extend_from_slice(&c);
            start.push(0);
        }
        let (mut leases, mut scanned, mut last_key) = (Vec::new(), 0, None);
        loop {
            let rows = scan_range(&self.db, "by_owner", &start, &end, 256)?;
            let exhausted = rows.len() < 256;
            for (k, _) in rows {
                scanned += 1;
                let lease_id = String::from_utf8_lossy(&k[prefix.len() + 8..]).into_owned();
                start = k.clone();
                start.push(0);
                if lease_id.starts_with(crate::baton::ID_PREFIX) {
                    if leases.len() == limit {
                        return Ok(LeasePage {
                            leases,
                            next_cursor: last_key.map(hex::encode),
                        });
                    }
                    if let Some(lease) = self.lease(&lease_id)? {
                        leases.push(lease);
                    }
                }
                last_key = Some(k[prefix.len()..].to_vec());
                if scanned >= BATON_SCAN_MAX {
                    return Ok(LeasePage {
                        leases,
                        next_cursor: last_key.map(hex::encode),
                    });
                }
            }
            if exhausted {
                return Ok(LeasePage {
                    leases,
                    next_cursor: None,
                });
            }
        }
    }

    /// The owner's checkpoint for `workflow_id` (live or a tombstone) and its inline body, read
    /// from one consistent view so the body matches the version.
    pub fn checkpoint(&self, owner: &str, workflow_id: &str) -> Result<Option<(Lease, Option<Vec<u8>>)>, StoreError> {
        let view = self.db.snapshot();
        let Some(lease_id) = view.get_cf(cf(&self.db, "checkpoints")?, keys::checkpoint(owner, workflow_id))? else {
            return Ok(None);
        };
        let Some(raw) = view.get_cf(cf(&self.db, "leases")?, &lease_id)? else {
            return Ok(None);
        };
        let lease: Lease = decode("leases", &raw)?;
        let body = view.get_cf(cf(&self.db, "bodies")?, &lease_id)?;
        Ok(Some((lease, body)))
    }

    /// The mailbox a drop token (by its blake3 hash) opens, live or not.
    pub fn mailbox_by_token_hash(&self, hash: &[u8; 32]) -> Result<Option<Lease>, StoreError> {
        match self.db.get_cf(cf(&self.db, "drop_tokens")?, hash)? {
            Some(lease_id) => self.get("leases", &lease_id),
            None => Ok(None),
        }
    }

    /// Up to `limit` queued messages of a mailbox, in arrival order.
    pub fn messages(&self, lease_id: &str, limit: usize) -> Result<Vec<Message>, StoreError> {
        let prefix = keys::message_prefix(lease_id);
        let mut end = prefix.clone();
        *end.last_mut().expect("prefix ends with a separator") = 1;
        scan_range(&self.db, "messages", &prefix, &end, limit)?
            .into_iter()
            .map(|(_, v)| decode("messages", &v))
            .collect()
    }

    /// A checkpoint's inline body, by lease id.
    pub fn checkpoint_body(&self, lease_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(cf(&self.db, "bodies")?, lease_id.as_bytes())?)
    }

    /// A message's inline bytes.
    pub fn message_body(&self, lease_id: &str, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(cf(&self.db, "bodies")?, keys::message(lease_id, seq))?)
    }

    pub fn message(&self, lease_id: &str, seq: u64) -> Result<Option<Message>, StoreError> {
        self.get("messages", &keys::message(lease_id, seq))
    }

    /// The handoff a claim token (by its blake3 hash) names.
    pub fn handoff_by_token_hash(&self, hash: &[u8; 32]) -> Result<Option<Handoff>, StoreError> {
        match self.db.get_cf(cf(&self.db, "handoff_tokens")?, hash)? {
            Some(id) => self.get("handoffs", &id),
            None => Ok(None),
        }
    }

    /// Every handoff issued for a lease (revoked and spent ones included), oldest id first.
    pub fn handoffs_for_lease(&self, lease_id: &str) -> Result<Vec<Handoff>, StoreError> {
        let prefix = keys::message_prefix(lease_id);
        let mut end = prefix.clone();
        *end.last_mut().expect("prefix ends with a separator") = 1;
        let rows = scan_range(
            &self.db,
            "handoffs_by_lease",
            &prefix,
            &end,
            crate::sm::handoffs::HANDOFFS_PER_LEASE_MAX as usize,
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for (k, _) in rows {
            if let Some(h) = self.get("handoffs", &k[prefix.len()..])? {
                out.push(h);
            }
        }
        Ok(out)
    }

    /// Webhook deliveries due at `now_ms`, oldest first.
    pub fn due_deliveries(&self, now_ms: u64, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let mut out = Vec::new();
        let mut failed = None;
        self.scan_due_deliveries(now_ms, None, limit, |_, value| match Self::delivery(value) {
            Ok(d) => {
                out.push(d);
                true
            }
            Err(e) => {
                failed = Some(e);
                false
            }
        })?;
        match failed {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Walks the webhook deliveries due at `now_ms` in key order (oldest first), starting after
    /// the key `after` (or at the first), at most `scan_max` of them, while `visit` returns true.
    /// `visit` gets the raw key (see [`keys::delivery_parts`]) and value (see
    /// [`StateReader::delivery`]), so a caller can pass over entries without decoding them.
    /// Returns whether the walk reached the last due delivery.
    pub fn scan_due_deliveries(
        &self,
        now_ms: u64,
        after: Option<&[u8]>,
        scan_max: usize,
        mut visit: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<bool, StoreError> {
        let end = now_ms.saturating_add(1).to_be_bytes();
        let mode = match after {
            Some(key) => rocksdb::IteratorMode::From(key, rocksdb::Direction::Forward),
            None => rocksdb::IteratorMode::Start,
        };
        let mut walked = 0;
        for item in self.db.iterator_cf(cf(&self.db, "webhooks")?, mode) {
            let (k, v) = item?;
            if k.as_ref() >= end.as_slice() {
                return Ok(true);
            }
            if after == Some(k.as_ref()) {
                continue;
            }
            if walked >= scan_max || !visit(&k, &v) {
                return Ok(false);
            }
            walked += 1;
        }
        Ok(true)
    }

    /// The cluster's prices: the ones set in the ledger, or the defaults before any were.
    pub fn pricing(&self) -> Result<crate::pricing::Pricing, StoreError> {
        Ok(self.pricing_set()?.unwrap_or_default())
    }

    /// The baton rates in force.
    pub fn baton_rates(&self) -> Result<crate::baton::BatonRates, StoreError> {
        Ok(self.get("meta", keys::META_BATON_RATES)?.unwrap_or_default())
    }

    /// The sharing token whose blake3 is `hash`.
    pub fn baton_token(&self, hash: &[u8; 32]) -> Result<Option<crate::baton::BatonToken>, StoreError> {
        self.get("baton_tokens", hash)
    }

    /// Every sharing token of a baton, in issue order.
    pub fn baton_tokens(&self, lease_id: &str) -> Result<Vec<crate::baton::BatonToken>, StoreError> {
        let prefix = keys::message_prefix(lease_id);
        let ids = scan_range(
            &self.db,
            "baton_token_ids",
            &prefix,
            &keys::prefix_end(&prefix),
            crate::baton::TOKENS_MAX as usize,
        )?;
        let mut tokens = Vec::with_capacity(ids.len());
        for (_, hash) in ids {
            if let Some(token) = self.get("baton_tokens", &hash)? {
                tokens.push(token);
            }
        }
        Ok(tokens)
    }

    /// Up to `limit` entries of a baton after `after`, each with its bytes, in order.
    pub fn baton_entries(&self, lease_id: &str, after: u64, limit: usize) -> Result<Vec<EntryWithBytes>, StoreError> {
        let start = keys::message(lease_id, after.saturating_add(1));
        let end = keys::prefix_end(&keys::message_prefix(lease_id));
        let view = self.db.snapshot();
        let mut out = Vec::new();
        for (key, value) in scan_range(&self.db, "baton_entries", &start, &end, limit)? {
            let entry = decode("baton_entries", &value)?;
            let body = view.get_cf(cf(&self.db, "bodies")?, &key)?;
            out.push((entry, body));
        }
        Ok(out)
    }

    /// The prices set in the ledger, if any have been.
    pub fn pricing_set(&self) -> Result<Option<crate::pricing::Pricing>, StoreError> {
        self.get("meta", crate::store::keys::META_PRICING)
    }

    /// Whether a webhook delivery is still queued under `key` (read now, not from a scan's view).
    pub fn delivery_queued(&self, key: &[u8]) -> Result<bool, StoreError> {
        Ok(self.db.get_pinned_cf(cf(&self.db, "webhooks")?, key)?.is_some())
    }

    /// Decodes a delivery's stored value.
    pub fn delivery(value: &[u8]) -> Result<Delivery, StoreError> {
        decode("webhooks", value)
    }

    /// Webhook deliveries queued in the whole cluster (the ledger's own count).
    pub fn webhooks_pending(&self) -> Result<u64, StoreError> {
        Ok(self
            .db
            .get_cf(cf(&self.db, "meta")?, crate::sm::mailbox::META_WEBHOOKS_PENDING)?
            .as_deref()
            .and_then(keys::parse_u64)
            .unwrap_or(0))
    }

    /// An upload's record.
    pub fn upload(&self, upload_id: &str) -> Result<Option<crate::upload::Upload>, StoreError> {
        let mut key = vec![b'u'];
        key.extend_from_slice(upload_id.as_bytes());
        self.get("uploads", &key)
    }

    /// The upload a lease's content is waiting for, if any.
    pub fn pending_upload(&self, lease_id: &str) -> Result<Option<String>, StoreError> {
        let mut key = vec![b'l'];
        key.extend_from_slice(lease_id.as_bytes());
        Ok(self
            .db
            .get_cf(cf(&self.db, "uploads")?, &key)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// A tus upload's recorded pieces, in order.
    pub fn tus_chunks(&self, upload_id: &str) -> Result<Vec<crate::upload::Chunk>, StoreError> {
        let mut prefix = vec![b'c'];
        prefix.extend_from_slice(upload_id.as_bytes());
        prefix.push(0);
        scan_range(
            &self.db,
            "uploads",
            &prefix,
            &keys::prefix_end(&prefix),
            crate::upload::TUS_CHUNKS_MAX,
        )?
        .into_iter()
        .map(|(_, v)| decode("uploads", &v))
        .collect()
    }

    /// The upload behind a scratch `input_key`.
    pub fn scratch(&self, input_key: &str) -> Result<Option<crate::upload::Upload>, StoreError> {
        let mut key = vec![b's'];
        key.extend_from_slice(input_key.as_bytes());
        match self.db.get_cf(cf(&self.db, "uploads")?, &key)? {
            Some(id) => self.upload(&String::from_utf8_lossy(&id)),
            None => Ok(None),
        }
    }

    /// An owner's free-tier use: live scratch objects and their bytes.
    pub fn scratch_usage(&self, owner: &str) -> Result<crate::upload::ScratchUsage, StoreError> {
        let mut prefix = vec![b'o'];
        prefix.extend_from_slice(owner.as_bytes());
        prefix.push(0);
        let rows = scan_range(&self.db, "uploads", &prefix, &keys::prefix_end(&prefix), 100_000)?;
        let now = self.clock_ms()?;
        let live: Vec<u64> = rows
            .iter()
            .filter(|(_, v)| v.get(8..).and_then(keys::parse_u64).is_some_and(|until| now < until))
            .filter_map(|(_, v)| keys::parse_u64(v))
            .collect();
        Ok(crate::upload::ScratchUsage {
            count: live.len() as u64,
            bytes: live.iter().sum(),
        })
    }

    /// Whether the ledger knows `object_key`: something stands on it or it is queued for deletion.
    pub fn object_known(&self, object_key: &str) -> Result<bool, StoreError> {
        Ok(self.db.get_cf(cf(&self.db, "refs")?, object_key.as_bytes())?.is_some()
            || self.db.get_cf(cf(&self.db, "gc")?, object_key.as_bytes())?.is_some())
    }

    /// Object keys whose bytes must be deleted, in key order from `start` on (a collector that
    /// resumes after its last batch does not step over the deleted rows before it again).
    pub fn gc_pending_from(&self, start: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        let rows = scan_range(&self.db, "gc", start.as_bytes(), &[0xff; 16], limit)?;
        Ok(rows
            .into_iter()
            .map(|(k, _)| String::from_utf8_lossy(&k).into_owned())
            .collect())
    }

    /// When the sweeper next has work: the earliest lease timer or idempotency record to prune.
    /// The witness log's settings and keys (`None` until the first key is installed).
    pub fn witness_log(&self) -> Result<Option<crate::witness::WitnessLog>, StoreError> {
        self.get("meta", crate::sm::witness::META_WITNESS)
    }

    /// Leaves in the witness log.
    pub fn witness_size(&self) -> Result<u64, StoreError> {
        Ok(self
            .db
            .get_cf(cf(&self.db, crate::sm::witness::CF)?, b"n")?
            .as_deref()
            .and_then(keys::parse_u64)
            .unwrap_or(0))
    }

    pub fn witness_checkpoint(&self) -> Result<Option<crate::witness::SignedCheckpoint>, StoreError> {
        self.get(crate::sm::witness::CF, b"k")
    }

    /// The witness tree's stored hashes, for roots and proofs (`size` at most [`Self::witness_size`]).
    pub fn witness_hashes(&self) -> impl crate::tlog::Hashes<Error = StoreError> + '_ {
        crate::sm::witness::StoredHashes(move |k: &[u8]| {
            Ok(self.db.get_cf(cf(&self.db, crate::sm::witness::CF)?, k)?)
        })
    }

    /// The witness record at `index` (`None` past the size or after its retention).
    pub fn witness_record(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let cf = cf(&self.db, crate::sm::witness::CF)?;
        Ok(self.db.get_cf(cf, crate::sm::witness::record_key(index))?)
    }

    /// A baton's witness records from index `after` on (exclusive), oldest first: index, owner,
    /// and the record's bytes.
    pub fn witness_records(
        &self,
        baton_id: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, String, Vec<u8>)>, StoreError> {
        use crate::sm::witness::{baton_key, baton_prefix, record_key, CF};
        let start = match after {
            Some(i) => baton_key(baton_id, i.saturating_add(1)),
            None => baton_prefix(baton_id),
        };
        let end = keys::prefix_end(&baton_prefix(baton_id));
        let mut out = Vec::new();
        for (k, owner) in scan_range(&self.db, CF, &start, &end, limit)? {
            let Some(index) = k.len().checked_sub(8).and_then(|at| keys::parse_u64(&k[at..])) else {
                continue;
            };
            if let Some(record) = self.db.get_cf(cf(&self.db, CF)?, record_key(index))? {
                out.push((index, String::from_utf8_lossy(&owner).into_owned(), record));
            }
        }
        Ok(out)
    }

    pub fn next_timer_due_ms(&self) -> Result<Option<u64>, StoreError> {
        let timer = scan_range(&self.db, "expiry", &[], &[0xff; 9], 1)?
            .first()
            .and_then(|(k, _)| keys::parse_u64(k));
        let dedup = scan_range(&self.db, "dedup", b"t", b"u", 1)?
            .first()
            .and_then(|(k, _)| keys::parse_u64(&k[1..]))
            .map(|at| at.saturating_add(DEDUP_WINDOW_MS));
        Ok(match (timer, dedup) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }
}

/// One page of an owner's charges.
pub struct ChargePage {
    pub items: Vec<crate::model::Charge>,
    pub next_cursor: Option<String>,
}

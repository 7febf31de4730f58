//! Uploads: begin, a paid create whose bytes come later, tus chunks, completion, termination, and
//! the deadline that abandons an upload never finished (or ends a scratch object's life).
//!
//! Keys in `uploads`: `u` ‖ upload_id → [`Upload`]; `l` ‖ lease_id → upload_id while a lease's
//! content is pending; `o` ‖ owner ‖ 0 ‖ upload_id → size ‖ deadline per live scratch object, `t`
//! the same per tus upload in progress; `c` ‖ upload_id ‖ 0 ‖ index → a tus piece; `s` ‖ input_key
//! → upload_id.

use crate::command::{Command, Outcome, Rejection, Response};
use crate::error::StoreError;
use crate::model::{BodyRef, Lease, LeaseKind, LeaseState};
use crate::ops::{
    BeginUpload, CompleteUpload, CreateWithUpload, EndUpload, FillFromTus, FinishTus, NewUpload, TusAppend, X402Payment,
};
use crate::sm::{batons, leases, objects, witness, TOMBSTONE_RETENTION_MS};
use crate::store::keys::{self, Timer};
use crate::store::txn::Txn;
use crate::tlog::record::Event;
use crate::upload::{Chunk, Mode, ScratchQuota, ScratchUsage, Target, Upload, UploadState, ID_PREFIX, TUS_CHUNKS_MAX};

type Checked<T> = Result<Result<T, Rejection>, StoreError>;

fn key(tag: u8, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + id.len());
    k.push(tag);
    k.extend_from_slice(id.as_bytes());
    k
}

pub fn get(txn: &Txn<'_>, upload_id: &str) -> Result<Option<Upload>, StoreError> {
    txn.get("uploads", &key(b'u', upload_id))
}

fn put(txn: &mut Txn<'_>, upload: &Upload) -> Result<(), StoreError> {
    txn.put("uploads", &key(b'u', &upload.upload_id), upload)
}

/// Whether `lease_id`'s content is still being uploaded (its reads answer `UploadPending`).
pub fn pending(txn: &Txn<'_>, lease_id: &str) -> Result<bool, StoreError> {
    Ok(txn.get_raw("uploads", &key(b'l', lease_id))?.is_some())
}

/// The upload behind a scratch `input_key`.
pub fn scratch_upload_id(txn: &Txn<'_>, input_key: &str) -> Result<Option<String>, StoreError> {
    Ok(txn
        .get_raw("uploads", &key(b's', input_key))?
        .map(|v| String::from_utf8_lossy(&v).into_owned()))
}

/// `o` ‖ owner ‖ 0 ‖ upload_id → size: one row per live scratch object, so ending one never
/// reads a counter another ending in the same sweep also changes.
fn scratch_row(owner: &str, upload_id: &str) -> Vec<u8> {
    held_row(b'o', owner, upload_id)
}

/// `o` (scratch) or `t` (tus in progress) ‖ owner ‖ 0 ‖ upload_id → size ‖ deadline.
fn held_row(tag: u8, owner: &str, upload_id: &str) -> Vec<u8> {
    let mut k = key(tag, owner);
    k.push(0);
    k.extend_from_slice(upload_id.as_bytes());
    k
}

/// An owner's live scratch objects and their bytes at `now_ms`, counting at most about `max`
/// objects. Life is judged here, like a lease's: one past its deadline counts for nothing, swept
/// or not.
pub fn usage(txn: &Txn<'_>, owner: &str, max: u64, now_ms: u64) -> Result<ScratchUsage, StoreError> {
    held(txn, b'o', owner, max, now_ms)
}

fn held(txn: &Txn<'_>, tag: u8, owner: &str, max: u64, now_ms: u64) -> Result<ScratchUsage, StoreError> {
    let mut prefix = key(tag, owner);
    prefix.push(0);
    let limit = max.saturating_mul(2).saturating_add(16) as usize;
    let rows = txn.range("uploads", &prefix, &keys::prefix_end(&prefix), limit)?;
    let mut used = ScratchUsage::default();
    for (_, v) in rows {
        let size = keys::parse_u64(&v).unwrap_or(0);
        let until = v.get(8..).and_then(keys::parse_u64).unwrap_or(0);
        if now_ms < until {
            used.count += 1;
            used.bytes += size;
        }
    }
    Ok(used)
}

/// `c` ‖ upload_id ‖ 0 ‖ index (8 bytes, big-endian) → [`Chunk`]: a tus upload's pieces in order.
fn chunk_row(upload_id: &str, index: u32) -> Vec<u8> {
    let mut k = key(b'c', upload_id);
    k.push(0);
    k.extend_from_slice(&u64::from(index).to_be_bytes());
    k
}

/// A tus upload's recorded pieces, in order.
pub fn chunks(txn: &Txn<'_>, upload_id: &str) -> Result<Vec<Chunk>, StoreError> {
    let mut prefix = key(b'c', upload_id);
    prefix.push(0);
    txn.range("uploads", &prefix, &keys::prefix_end(&prefix), TUS_CHUNKS_MAX)?
        .into_iter()
        .map(|(_, v)| crate::store::decode("uploads", &v))
        .collect()
}

/// Lets go of a tus upload's pieces: their records now, their bytes by the GC worker.
fn release_chunks(txn: &mut Txn<'_>, upload: &Upload, now_ms: u64) -> Result<(), StoreError> {
    for (i, chunk) in chunks(txn, &upload.upload_id)?.iter().enumerate() {
        objects::release(txn, &chunk.object_key, &upload.upload_id, now_ms)?;
        txn.delete("uploads", &chunk_row(&upload.upload_id, i as u32))?;
    }
    Ok(())
}

/// The record a [`NewUpload`] makes, after the checks that need no lease.
fn record(txn: &Txn<'_>, now_ms: u64, new: &NewUpload) -> Checked<Upload> {
    if !new.upload_id.starts_with(ID_PREFIX) || new.owner.is_empty() || new.object_key.is_empty() {
        return Ok(Err(Rejection::Invalid("malformed upload".into())));
    }
    if new.size_bytes == 0 || new.ttl_seconds == 0 {
        return Ok(Err(Rejection::Invalid(
            "an upload has at least one byte and a deadline".into(),
        )));
    }
    if get(txn, &new.upload_id)?.is_some() {
        return Ok(Err(Rejection::Invalid("an upload with this id exists".into())));
    }
    if !objects::usable(txn, &new.object_key)? {
        return Ok(Err(Rejection::Invalid("object key is queued for deletion".into())));
    }
    let Some(expires_at_ms) = new.ttl_seconds.checked_mul(1000).and_then(|t| t.checked_add(now_ms)) else {
        return Ok(Err(Rejection::Invalid("deadline overflows the clock".into())));
    };
    if matches!(&new.mode, Mode::Tus { offset, chunks } if *offset != 0 || *chunks != 0) {
        return Ok(Err(Rejection::Invalid("a tus upload starts empty".into())));
    }
    Ok(Ok(Upload {
        upload_id: new.upload_id.clone(),
        owner: new.owner.clone(),
        object_key: new.object_key.clone(),
        size_bytes: new.size_bytes,
        sha256_hex: new.sha256_hex.clone(),
        created_at_ms: now_ms,
        expires_at_ms,
        target: new.target.clone(),
        mode: new.mode.clone(),
        state: UploadState::Pending,
    }))
}

fn start(txn: &mut Txn<'_>, upload: &Upload) -> Result<(), StoreError> {
    put(txn, upload)?;
    txn.put_raw(
        "expiry",
        &keys::timer(upload.expires_at_ms, &upload.upload_id),
        &[Timer::UploadDue as u8],
    )
}

/// `BeginUpload`: a scratch object (within the owner's quota) or a tus upload of a new lease.
pub fn begin(txn: &mut Txn<'_>, now_ms: u64, op: &BeginUpload) -> Result<Response, StoreError> {
    let upload = match record(txn, now_ms, &op.upload)? {
        Ok(u) => u,
        Err(rejection) => return Ok(Err(rejection)),
    };
    match (&upload.target, &upload.mode) {
        (Target::Scratch { input_key }, Mode::Local | Mode::S3Single | Mode::S3Multipart { .. }) => {
            let Some(quota) = op.quota else {
                return Ok(Err(Rejection::Invalid("a scratch upload carries its quota".into())));
            };
            if input_key != &upload.object_key || !input_key.starts_with(&format!("scratch/{}/", upload.owner)) {
                return Ok(Err(Rejection::Invalid("a scratch key is scratch/<owner>/<id>".into())));
            }
            let used = usage(txn, &upload.owner, quota.max_count, now_ms)?;
            if let Err(why) = within(quota, used, upload.size_bytes) {
                return Ok(Err(Rejection::ScratchQuota(why)));
            }
            txn.put_raw(
                "uploads",
                &scratch_row(&upload.owner, &upload.upload_id),
                &[upload.size_bytes.to_be_bytes(), upload.expires_at_ms.to_be_bytes()].concat(),
            )?;
            txn.put_raw("uploads", &key(b's', input_key), upload.upload_id.as_bytes())?;
            objects::reference(txn, &upload.object_key, &upload.upload_id)?;
        }
        (Target::Fill { upload_id }, Mode::Tus { .. }) => {
            if let Err(rejection) = fillable(txn, now_ms, upload_id, &upload)? {
                return Ok(Err(rejection));
            }
            if let Err(rejection) = hold_tus(txn, now_ms, op.quota, &upload)? {
                return Ok(Err(rejection));
            }
        }
        (Target::NewStorage { duration_seconds, .. }, Mode::Tus { .. }) if *duration_seconds > 0 => {
            if let Err(rejection) = hold_tus(txn, now_ms, op.quota, &upload)? {
                return Ok(Err(rejection));
            }
        }
        _ => return Ok(Err(Rejection::Invalid("this target cannot begin alone".into()))),
    }
    start(txn, &upload)?;
    Ok(Ok(Outcome::UploadChanged { upload }))
}

fn within(quota: ScratchQuota, used: ScratchUsage, size_bytes: u64) -> Result<(), String> {
    if used.count >= quota.max_count {
        return Err(format!("at most {} scratch objects at once", quota.max_count));
    }
    if used.bytes.saturating_add(size_bytes) > quota.max_bytes {
        return Err(format!(
            "scratch objects may hold at most {} bytes at once ({} in use)",
            quota.max_bytes, used.bytes
        ));
    }
    Ok(())
}

/// Whether a tus upload may bring the bytes of `target_id`: the same owner's pending single
/// upload (one PUT or a node-signed URL) of the same length.
fn fillable(txn: &Txn<'_>, now_ms: u64, target_id: &str, tus: &Upload) -> Result<Result<(), Rejection>, StoreError> {
    let target = match pending_for(txn, now_ms, target_id, Some(&tus.owner))? {
        Ok(t) => t,
        Err(rejection) => return Ok(Err(rejection)),
    };
    if !matches!(target.mode, Mode::Local | Mode::S3Single) || !matches!(target.target, Target::Lease { .. }) {
        return Ok(Err(Rejection::Invalid(
            "only a pending single upload of a lease can be filled by tus".into(),
        )));
    }
    if target.size_bytes != tus.size_bytes {
        return Ok(Err(Rejection::UploadMismatch(format!(
            "the pending upload is {} bytes",
            target.size_bytes
        ))));
    }
    if let Target::Lease { lease_id } = &target.target {
        let live = txn
            .get::<Lease>("leases", lease_id.as_bytes())?
            .is_some_and(|l| l.state == LeaseState::Active && now_ms < l.expires_at_ms);
        if !live {
            return Ok(Err(Rejection::LeaseGone));
        }
    }
    Ok(Ok(()))
}

/// Counts a tus upload in its owner's uploads in progress, within `quota`.
fn hold_tus(txn: &mut Txn<'_>, now_ms: u64, quota: Option<ScratchQuota>, upload: &Upload) -> Checked<()> {
    let Some(quota) = quota else {
        return Ok(Err(Rejection::Invalid("a tus upload carries its quota".into())));
    };
    let used = held(txn, b't', &upload.owner, quota.max_count, now_ms)?;
    if let Err(why) = within_tus(quota, used, upload.size_bytes) {
        return Ok(Err(Rejection::TusQuota(why)));
    }
    txn.put_raw(
        "uploads",
        &held_row(b't', &upload.owner, &upload.upload_id),
        &[upload.size_bytes.to_be_bytes(), upload.expires_at_ms.to_be_bytes()].concat(),
    )?;
    Ok(Ok(()))
}

fn within_tus(quota: ScratchQuota, used: ScratchUsage, size_bytes: u64) -> Result<(), String> {
    if used.count >= quota.max_count {
        return Err(format!("at most {} tus uploads in progress at once", quota.max_count));
    }
    if used.bytes.saturating_add(size_bytes) > quota.max_bytes {
        return Err(format!(
            "tus uploads in progress may declare at most {} bytes at once ({} declared)",
            quota.max_bytes, used.bytes
        ));
    }
    Ok(())
}

/// `CreateWithUpload`: the paid create and its pending upload, together or not at all.
pub fn create_with(
    txn: &mut Txn<'_>,
    now_ms: u64,
    op: &CreateWithUpload,
    payment: Option<&X402Payment>,
) -> Result<Response, StoreError> {
    let (lease_id, object_in_lease) = match &*op.purchase {
        Command::CreateLease(new) => match &new.kind {
            LeaseKind::Storage {
                object_key, size_bytes, ..
            } if *object_key == op.upload.object_key && *size_bytes == op.upload.size_bytes => {
                (new.lease_id.clone(), true)
            }
            _ => {
                return Ok(Err(Rejection::Invalid(
                    "the upload is the storage lease's object".into(),
                )))
            }
        },
        Command::CreateBaton(c) if c.content.is_none() => (c.new.lease_id.clone(), false),
        _ => {
            return Ok(Err(Rejection::Invalid(
                "an upload comes with a storage lease or a baton".into(),
            )))
        }
    };
    if op.upload.target
        != (Target::Lease {
            lease_id: lease_id.clone(),
        })
        || !matches!(op.upload.mode, Mode::Local | Mode::S3Single | Mode::S3Multipart { .. })
    {
        return Ok(Err(Rejection::Invalid(
            "the upload targets the lease it comes with".into(),
        )));
    }
    let upload = match record(txn, now_ms, &op.upload)? {
        Ok(u) => u,
        Err(rejection) => return Ok(Err(rejection)),
    };
    let created = match &*op.purchase {
        Command::CreateLease(new) => leases::create(txn, now_ms, new, payment)?,
        Command::CreateBaton(c) => batons::create(txn, now_ms, c, payment)?,
        _ => unreachable!("matched above"),
    };
    if created.is_err() {
        return Ok(created);
    }
    if !object_in_lease {
        objects::reference(txn, &upload.object_key, &lease_id)?;
    }
    txn.put_raw("uploads", &key(b'l', &lease_id), upload.upload_id.as_bytes())?;
    start(txn, &upload)?;
    Ok(created)
}

/// Loads `upload_id` for `owner` (`None`: any), refusing one that is gone or past its deadline.
fn pending_for(txn: &Txn<'_>, now_ms: u64, upload_id: &str, owner: Option<&str>) -> Checked<Upload> {
    let Some(upload) = get(txn, upload_id)? else {
        return Ok(Err(Rejection::UploadNotFound));
    };
    if owner.is_some_and(|o| o != upload.owner) {
        return Ok(Err(Rejection::UploadNotFound));
    }
    match upload.state {
        UploadState::Pending if now_ms < upload.expires_at_ms => Ok(Ok(upload)),
        UploadState::Complete { .. } => Ok(Err(Rejection::UploadComplete)),
        _ => Ok(Err(Rejection::UploadGone)),
    }
}

/// Checks what the store holds against what was declared.
fn verify(upload: &Upload, size_bytes: u64, sha256_hex: &str) -> Result<(), Rejection> {
    if size_bytes != upload.size_bytes {
        return Err(Rejection::UploadMismatch(format!(
            "the store holds {size_bytes} bytes but {} were declared",
            upload.size_bytes
        )));
    }
    if upload
        .sha256_hex
        .as_deref()
        .is_some_and(|d| !d.eq_ignore_ascii_case(sha256_hex))
    {
        return Err(Rejection::UploadMismatch(
            "the bytes' SHA-256 is not the declared X-Content-SHA256".into(),
        ));
    }
    Ok(())
}

/// `CompleteUpload`: verify, then make the content readable (or the scratch object usable).
pub fn complete(txn: &mut Txn<'_>, now_ms: u64, op: &CompleteUpload) -> Result<Response, StoreError> {
    let mut upload = match pending_for(txn, now_ms, &op.upload_id, op.owner.as_deref())? {
        Ok(u) => u,
        Err(Rejection::UploadComplete) => {
            let upload = get(txn, &op.upload_id)?.expect("just read");
            // The same bytes completed again (a retried completion) answer as the first did.
            return Ok(match &upload.state {
                UploadState::Complete { blake3_hex, .. }
                    if *blake3_hex == op.blake3_hex
                        && op.object_key.as_ref().is_none_or(|k| *k == upload.object_key) =>
                {
                    Ok(Outcome::UploadChanged { upload })
                }
                _ => Err(Rejection::UploadComplete),
            });
        }
        Err(rejection) => return Ok(Err(rejection)),
    };
    if matches!(upload.mode, Mode::Tus { .. }) {
        return Ok(Err(Rejection::Invalid(
            "a tus upload completes with its last PATCH".into(),
        )));
    }
    if let Err(rejection) = verify(&upload, op.size_bytes, &op.sha256_hex) {
        return Ok(Err(rejection));
    }
    let new_key = op.object_key.clone().filter(|k| *k != upload.object_key);
    if let Some(k) = &new_key {
        if !objects::usable(txn, k)? {
            return Ok(Err(Rejection::Invalid("object key is queued for deletion".into())));
        }
    }
    let mut lease_id = None;
    match upload.target.clone() {
        Target::Lease { lease_id: id } => {
            let Some(mut lease) = txn.get::<Lease>("leases", id.as_bytes())? else {
                return Ok(Err(Rejection::LeaseGone));
            };
            if lease.state != LeaseState::Active || now_ms >= lease.expires_at_ms {
                return Ok(Err(Rejection::LeaseGone));
            }
            let body = BodyRef {
                size_bytes: op.size_bytes,
                blake3_hex: op.blake3_hex.clone(),
                object_key: Some(new_key.clone().unwrap_or_else(|| upload.object_key.clone())),
            };
            match &mut lease.kind {
                LeaseKind::Storage {
                    object_key,
                    size_bytes,
                    blake3_hex,
                    ..
                } => {
                    *size_bytes = op.size_bytes;
                    blake3_hex.clone_from(&op.blake3_hex);
                    if let Some(k) = &new_key {
                        object_key.clone_from(k);
                    }
                }
                LeaseKind::Baton(b) => {
                    // Nothing is written yet: a witnessed baton's record needs a real SHA-256.
                    if b.witness && !witness::valid_sha256_hex(&op.sha256_hex) {
                        return Ok(Err(Rejection::Invalid(
                            "the SHA-256 must be 64 lowercase hex digits".into(),
                        )));
                    }
                    b.content = Some(body);
                    b.content_sha256 = Some(op.sha256_hex.clone());
                    b.used_bytes = op.size_bytes;
                    b.updated_at_ms = now_ms;
                    if b.witness {
                        let w = witness::Write {
                            baton_id: &id,
                            owner: &upload.owner,
                            event: Event::Version,
                            seq: b.version,
                            sha256_hex: &op.sha256_hex,
                            chain_hex: None,
                        };
                        witness::witness(txn, now_ms, w)?;
                    }
                }
                _ => {
                    return Ok(Err(Rejection::Invalid(
                        "an upload fills a storage lease or a baton".into(),
                    )))
                }
            }
            if let Some(k) = &new_key {
                objects::release(txn, &upload.object_key, &id, now_ms)?;
                objects::reference(txn, k, &id)?;
            }
            txn.put("leases", id.as_bytes(), &lease)?;
            txn.delete("uploads", &key(b'l', &id))?;
            lease_id = Some(id);
        }
        Target::Scratch { .. } => {
            if let Some(k) = &new_key {
                objects::release(txn, &upload.object_key, &upload.upload_id, now_ms)?;
                objects::reference(txn, k, &upload.upload_id)?;
            }
        }
        Target::NewStorage { .. } | Target::Fill { .. } => {
            return Ok(Err(Rejection::Invalid(
                "a tus upload completes with its last PATCH".into(),
            )))
        }
    }
    if let Some(k) = new_key {
        upload.object_key = k;
    }
    upload.state = UploadState::Complete {
        at_ms: now_ms,
        blake3_hex: op.blake3_hex.clone(),
        sha256_hex: op.sha256_hex.to_ascii_lowercase(),
        lease_id,
    };
    put(txn, &upload)?;
    Ok(Ok(Outcome::UploadChanged { upload }))
}

/// `TusAppend`: one stored chunk at the upload's offset.
pub fn tus_append(txn: &mut Txn<'_>, now_ms: u64, op: &TusAppend) -> Result<Response, StoreError> {
    let mut upload = match pending_for(txn, now_ms, &op.upload_id, Some(&op.owner))? {
        Ok(u) => u,
        Err(rejection) => return Ok(Err(rejection)),
    };
    let size_bytes = upload.size_bytes;
    let Mode::Tus { offset, chunks } = &mut upload.mode else {
        return Ok(Err(Rejection::Invalid("not a tus upload".into())));
    };
    if op.offset != *offset {
        return Ok(Err(Rejection::OffsetMismatch { offset: *offset }));
    }
    if op.chunk.size_bytes == 0 || offset.saturating_add(op.chunk.size_bytes) > size_bytes {
        return Ok(Err(Rejection::UploadMismatch(format!(
            "a chunk of {} bytes at offset {offset} does not fit the upload's {size_bytes}",
            op.chunk.size_bytes
        ))));
    }
    if *chunks as usize >= TUS_CHUNKS_MAX {
        return Ok(Err(Rejection::Invalid(format!(
            "a tus upload is at most {TUS_CHUNKS_MAX} chunks"
        ))));
    }
    if !objects::usable(txn, &op.chunk.object_key)? {
        return Ok(Err(Rejection::Invalid("object key is queued for deletion".into())));
    }
    txn.put("uploads", &chunk_row(&op.upload_id, *chunks), &op.chunk)?;
    *offset += op.chunk.size_bytes;
    *chunks += 1;
    objects::reference(txn, &op.chunk.object_key, &op.upload_id)?;
    put(txn, &upload)?;
    Ok(Ok(Outcome::UploadChanged { upload }))
}

/// `FinishTus`: every byte is in and joined at `new`'s object; buy the lease, let the chunks go.
pub fn finish_tus(txn: &mut Txn<'_>, now_ms: u64, op: &FinishTus) -> Result<Response, StoreError> {
    let mut upload = match pending_for(txn, now_ms, &op.upload_id, Some(&op.new.owner))? {
        Ok(u) => u,
        Err(rejection) => return Ok(Err(rejection)),
    };
    let (Mode::Tus { offset, .. }, Target::NewStorage { duration_seconds, .. }) = (&upload.mode, &upload.target) else {
        return Ok(Err(Rejection::Invalid("not a tus upload of a new lease".into())));
    };
    if *offset != upload.size_bytes {
        return Ok(Err(Rejection::OffsetMismatch { offset: *offset }));
    }
    let LeaseKind::Storage {
        size_bytes, object_key, ..
    } = &op.new.kind
    else {
        return Ok(Err(Rejection::Invalid("a tus upload buys a storage lease".into())));
    };
    if op.new.duration_seconds != *duration_seconds {
        return Ok(Err(Rejection::Invalid(
            "the lease is the one the upload declared".into(),
        )));
    }
    if let Err(rejection) = verify(&upload, *size_bytes, &op.sha256_hex) {
        return Ok(Err(rejection));
    }
    let joined = object_key.clone();
    let created = leases::create(txn, now_ms, &op.new, None)?;
    let Ok(Outcome::LeaseCreated(lease)) = &created else {
        return Ok(created);
    };
    release_chunks(txn, &upload, now_ms)?;
    txn.delete("uploads", &held_row(b't', &upload.owner, &upload.upload_id))?;
    let LeaseKind::Storage { blake3_hex, .. } = &lease.lease.kind else {
        unreachable!("checked above")
    };
    upload.state = UploadState::Complete {
        at_ms: now_ms,
        blake3_hex: blake3_hex.clone(),
        sha256_hex: op.sha256_hex.to_ascii_lowercase(),
        lease_id: Some(lease.lease.lease_id.clone()),
    };
    upload.object_key = joined;
    upload.mode = Mode::Tus {
        offset: upload.size_bytes,
        chunks: 0,
    };
    put(txn, &upload)?;
    Ok(created)
}

/// `FillFromTus`: the tus upload's joined bytes complete the upload it fills.
pub fn fill_from_tus(txn: &mut Txn<'_>, now_ms: u64, op: &FillFromTus) -> Result<Response, StoreError> {
    let mut tus = match pending_for(txn, now_ms, &op.upload_id, Some(&op.owner))? {
        Ok(u) => u,
        Err(rejection) => return Ok(Err(rejection)),
    };
    let (Mode::Tus { offset, .. }, Target::Fill { upload_id: target_id }) = (&tus.mode, &tus.target) else {
        return Ok(Err(Rejection::Invalid("not a tus upload that fills another".into())));
    };
    if *offset != tus.size_bytes {
        return Ok(Err(Rejection::OffsetMismatch { offset: *offset }));
    }
    let target_id = target_id.clone();
    let completion = CompleteUpload {
        upload_id: target_id,
        owner: Some(op.owner.clone()),
        object_key: Some(op.object_key.clone()),
        size_bytes: op.size_bytes,
        blake3_hex: op.blake3_hex.clone(),
        sha256_hex: op.sha256_hex.clone(),
    };
    let filled = match complete(txn, now_ms, &completion)? {
        Ok(Outcome::UploadChanged { upload }) => upload,
        // The upload it was to fill can never take these bytes now (completed by another, gone,
        // its lease gone, or not the declared bytes): this one ends too, its pieces with it, so
        // nothing joins them again. (`complete` refuses before it writes anything.)
        Err(
            rejection @ (Rejection::UploadComplete
            | Rejection::UploadGone
            | Rejection::UploadNotFound
            | Rejection::UploadMismatch(_)
            | Rejection::LeaseGone),
        ) => {
            abandon(txn, now_ms, &mut tus)?;
            return Ok(Err(rejection));
        }
        other => return Ok(other),
    };
    release_chunks(txn, &tus, now_ms)?;
    txn.delete("uploads", &held_row(b't', &tus.owner, &tus.upload_id))?;
    let lease_id = match &filled.state {
        UploadState::Complete { lease_id, .. } => lease_id.clone(),
        _ => None,
    };
    tus.state = UploadState::Complete {
        at_ms: now_ms,
        blake3_hex: op.blake3_hex.clone(),
        sha256_hex: op.sha256_hex.to_ascii_lowercase(),
        lease_id,
    };
    tus.object_key.clone_from(&op.object_key);
    tus.mode = Mode::Tus {
        offset: tus.size_bytes,
        chunks: 0,
    };
    put(txn, &tus)?;
    Ok(Ok(Outcome::UploadChanged { upload: filled }))
}

/// `EndUpload`: the owner abandons a pending upload or deletes a scratch object.
pub fn end(txn: &mut Txn<'_>, now_ms: u64, op: &EndUpload) -> Result<Response, StoreError> {
    let Some(mut upload) = get(txn, &op.upload_id)? else {
        return Ok(Err(Rejection::UploadNotFound));
    };
    if upload.owner != op.owner {
        return Ok(Err(Rejection::UploadNotFound));
    }
    match upload.state {
        UploadState::Pending if now_ms < upload.expires_at_ms => abandon(txn, now_ms, &mut upload)?,
        UploadState::Complete { .. } if upload.is_scratch() && now_ms < upload.expires_at_ms => {
            expire(txn, now_ms, &mut upload)?
        }
        UploadState::Complete { .. } => return Ok(Err(Rejection::UploadComplete)),
        _ => return Ok(Err(Rejection::UploadGone)),
    }
    Ok(Ok(Outcome::UploadChanged { upload }))
}

/// Ends a pending upload: its bytes go, and a lease waiting for them is deleted.
fn abandon(txn: &mut Txn<'_>, now_ms: u64, upload: &mut Upload) -> Result<(), StoreError> {
    if let Target::Lease { lease_id } = upload.target.clone() {
        let lease = txn.get::<Lease>("leases", lease_id.as_bytes())?;
        if let Some(mut live) = lease.clone().filter(|l| l.state == LeaseState::Active) {
            // Deleting the lease ends its upload with it ([`end_for_lease`], from its release).
            txn.delete("expiry", &keys::timer(live.expires_at_ms, &lease_id))?;
            live.state = LeaseState::Deleted { at_ms: now_ms };
            leases::tombstone(txn, now_ms, &live)?;
            upload.state = UploadState::Abandoned { at_ms: now_ms };
            return Ok(());
        }
        return end_pending_for_lease(txn, now_ms, upload, lease.as_ref());
    }
    upload.state = UploadState::Abandoned { at_ms: now_ms };
    abort_multipart(txn, now_ms, upload)?;
    match upload.target.clone() {
        Target::Lease { .. } => unreachable!("handled above"),
        Target::Scratch { .. } => {
            objects::release(txn, &upload.object_key, &upload.upload_id, now_ms)?;
            unuse(txn, upload)?;
        }
        Target::NewStorage { .. } | Target::Fill { .. } => {
            release_chunks(txn, upload, now_ms)?;
            txn.delete("uploads", &held_row(b't', &upload.owner, &upload.upload_id))?;
            if let Mode::Tus { chunks, .. } = &mut upload.mode {
                *chunks = 0;
            }
        }
    }
    finish_record(txn, now_ms, upload)
}

/// Parts uploaded to a multipart upload never completed are not an object: the GC worker aborts
/// the multipart upload itself.
fn abort_multipart(txn: &mut Txn<'_>, now_ms: u64, upload: &Upload) -> Result<(), StoreError> {
    if let Mode::S3Multipart { multipart_id, .. } = &upload.mode {
        let key = multipart_gc_key(multipart_id, &upload.object_key);
        txn.put("gc", key.as_bytes(), &(upload.upload_id.as_str(), now_ms))?;
    }
    Ok(())
}

/// A lease whose content was still to be uploaded closed (deleted, expired, voided, abandoned):
/// its upload ends with it, so no completion can land on it and its planned bytes go.
pub fn end_for_lease(txn: &mut Txn<'_>, now_ms: u64, lease: &Lease) -> Result<(), StoreError> {
    let Some(id) = txn.get_raw("uploads", &key(b'l', &lease.lease_id))? else {
        return Ok(());
    };
    let Some(mut upload) = get(txn, &String::from_utf8_lossy(&id))? else {
        return Ok(());
    };
    if !upload.is_pending() {
        return Ok(());
    }
    end_pending_for_lease(txn, now_ms, &mut upload, Some(lease))
}

/// Ends a lease's pending upload (the lease is closed, or being closed, by the caller).
fn end_pending_for_lease(
    txn: &mut Txn<'_>,
    now_ms: u64,
    upload: &mut Upload,
    lease: Option<&Lease>,
) -> Result<(), StoreError> {
    upload.state = UploadState::Abandoned { at_ms: now_ms };
    abort_multipart(txn, now_ms, upload)?;
    if let Target::Lease { lease_id } = &upload.target {
        txn.delete("uploads", &key(b'l', lease_id))?;
        // A baton's pending object is not its content yet: the lease does not release it.
        if lease.is_some_and(|l| matches!(l.kind, LeaseKind::Baton(_))) {
            objects::release(txn, &upload.object_key, lease_id, now_ms)?;
        }
    }
    finish_record(txn, now_ms, upload)
}

/// The GC queue's name for an S3 multipart upload to abort: `multipart/<hex id>/<object key>`.
pub fn multipart_gc_key(multipart_id: &str, object_key: &str) -> String {
    format!("{MULTIPART_GC_PREFIX}{}/{object_key}", hex::encode(multipart_id))
}

/// The prefix of [`multipart_gc_key`]s (no object key starts with it).
pub const MULTIPART_GC_PREFIX: &str = "multipart/";

/// Ends a complete scratch object's life.
fn expire(txn: &mut Txn<'_>, now_ms: u64, upload: &mut Upload) -> Result<(), StoreError> {
    upload.state = UploadState::Expired { at_ms: now_ms };
    objects::release(txn, &upload.object_key, &upload.upload_id, now_ms)?;
    unuse(txn, upload)?;
    finish_record(txn, now_ms, upload)
}

fn unuse(txn: &mut Txn<'_>, upload: &Upload) -> Result<(), StoreError> {
    txn.delete("uploads", &scratch_row(&upload.owner, &upload.upload_id))
}

/// Writes an ended upload and sets the timer that forgets it.
fn finish_record(txn: &mut Txn<'_>, now_ms: u64, upload: &Upload) -> Result<(), StoreError> {
    txn.delete("expiry", &keys::timer(upload.expires_at_ms, &upload.upload_id))?;
    put(txn, upload)?;
    txn.put_raw(
        "expiry",
        &keys::timer(now_ms.saturating_add(TOMBSTONE_RETENTION_MS), &upload.upload_id),
        &[Timer::UploadPurge as u8],
    )
}

/// An upload's deadline passed: abandon it if pending; end a scratch object's life; forget the
/// others' records later. Answers whether something ended.
pub fn due(txn: &mut Txn<'_>, now_ms: u64, upload_id: &str) -> Result<bool, StoreError> {
    let Some(mut upload) = get(txn, upload_id)? else {
        return Ok(false);
    };
    match upload.state {
        UploadState::Pending => abandon(txn, now_ms, &mut upload)?,
        UploadState::Complete { .. } if upload.is_scratch() => expire(txn, now_ms, &mut upload)?,
        UploadState::Complete { .. } => {
            finish_record(txn, now_ms, &upload)?;
            return Ok(false);
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Forgets an ended upload's record.
pub fn purge(txn: &mut Txn<'_>, upload_id: &str) -> Result<(), StoreError> {
    let Some(upload) = get(txn, upload_id)? else {
        return Ok(());
    };
    if upload.is_pending() {
        return Ok(());
    }
    if let Target::Scratch { input_key } = &upload.target {
        txn.delete("uploads", &key(b's', input_key))?;
    }
    txn.delete("uploads", &key(b'u', upload_id))
}

//! Idempotency: a retried command answers with the first answer instead of applying again, and a
//! key reused for a different request (another fingerprint) is refused without applying anything.

use serde::{Deserialize, Serialize};

use crate::command::{IdempotencyKey, Rejection, Response};
use crate::error::StoreError;
use crate::store::keys;
use crate::store::txn::Txn;

/// What the ledger remembers of a keyed request: when, what it was, what it answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub at_ms: u64,
    pub fingerprint: [u8; 32],
    pub response: Response,
}

/// The answer to give instead of applying: the first answer for the same request, a refusal for
/// a different one, or `None` when the key is new.
pub fn lookup(txn: &Txn<'_>, idem: &IdempotencyKey) -> Result<Option<Response>, StoreError> {
    let record: Option<Record> = txn.get("dedup", &keys::dedup_record(&idem.scope, &idem.key))?;
    Ok(record.map(|r| replay(&r, idem)))
}

/// The answer a remembered record gives to `idem`.
pub fn replay(record: &Record, idem: &IdempotencyKey) -> Response {
    if record.fingerprint == idem.fingerprint {
        record.response.clone()
    } else {
        Err(Rejection::IdempotencyKeyReused)
    }
}

pub fn remember(txn: &mut Txn<'_>, idem: &IdempotencyKey, now_ms: u64, response: &Response) -> Result<(), StoreError> {
    let record_key = keys::dedup_record(&idem.scope, &idem.key);
    let record = Record {
        at_ms: now_ms,
        fingerprint: idem.fingerprint,
        response: response.clone(),
    };
    txn.put("dedup", &record_key, &record)?;
    txn.put_raw("dedup", &keys::dedup_age(now_ms, &record_key), &[])?;
    Ok(())
}

//! Idempotency: a retried command answers with the first answer instead of applying again.

use crate::command::{IdempotencyKey, Response};
use crate::error::StoreError;
use crate::store::keys;
use crate::store::txn::Txn;

pub fn lookup(txn: &Txn<'_>, idem: &IdempotencyKey) -> Result<Option<Response>, StoreError> {
    let record: Option<(u64, Response)> = txn.get("dedup", &keys::dedup_record(&idem.scope, &idem.key))?;
    Ok(record.map(|(_, response)| response))
}

pub fn remember(txn: &mut Txn<'_>, idem: &IdempotencyKey, now_ms: u64, response: &Response) -> Result<(), StoreError> {
    let record_key = keys::dedup_record(&idem.scope, &idem.key);
    txn.put("dedup", &record_key, &(now_ms, response))?;
    txn.put_raw("dedup", &keys::dedup_age(now_ms, &record_key), &[])?;
    Ok(())
}

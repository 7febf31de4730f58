//! Accounts and API keys.

use crate::command::{Outcome, Rejection, Response};
use crate::error::StoreError;
use crate::model::{Account, ApiKeyInfo};
use crate::ops::{IssueApiKey, RevokeApiKey};
use crate::store::txn::Txn;

pub fn create(txn: &mut Txn<'_>, now_ms: u64, account_id: &str, balance_micros: u64) -> Result<Response, StoreError> {
    if account_id.is_empty() {
        return Ok(Err(Rejection::Invalid("empty account id".into())));
    }
    if txn.get_raw("accounts", account_id.as_bytes())?.is_some() {
        return Ok(Ok(Outcome::AccountCreated { created: false }));
    }
    let account = Account {
        account_id: account_id.to_string(),
        balance_micros,
        created_at_ms: now_ms,
    };
    txn.put("accounts", account_id.as_bytes(), &account)?;
    Ok(Ok(Outcome::AccountCreated { created: true }))
}

pub fn add_key(txn: &mut Txn<'_>, account_id: &str, key_hash_hex: &str) -> Result<Response, StoreError> {
    let hash = match key_hash(key_hash_hex) {
        Ok(hash) => hash,
        Err(rejection) => return Ok(Err(rejection)),
    };
    if txn.get_raw("accounts", account_id.as_bytes())?.is_none() {
        return Ok(Err(Rejection::AccountNotFound));
    }
    // A key is an agent's or an admin's, never both.
    if txn.get_raw("admin_keys", &hash)?.is_some() {
        return Ok(Err(Rejection::Invalid("this key is an admin key".into())));
    }
    txn.put_raw("api_keys", &hash, account_id.as_bytes())?;
    // Listed under its account like an issued key, so the operator can see and revoke it.
    let hash_hex = hex::encode(&hash);
    let index = account_key(account_id, &hash_hex[..16]);
    if txn.get_raw("account_keys", &index)?.is_none() {
        let key = ApiKeyInfo {
            key_id: hash_hex[..16].to_string(),
            prefix: String::new(),
            created_at_ms: 0,
        };
        txn.put("account_keys", &index, &(key, hash_hex))?;
    }
    Ok(Ok(Outcome::ApiKeyAdded))
}

pub fn add_admin_key(txn: &mut Txn<'_>, key_hash_hex: &str) -> Result<Response, StoreError> {
    let hash = match key_hash(key_hash_hex) {
        Ok(hash) => hash,
        Err(rejection) => return Ok(Err(rejection)),
    };
    if txn.get_raw("api_keys", &hash)?.is_some() {
        return Ok(Err(Rejection::Invalid("this key acts for an account".into())));
    }
    txn.put_raw("admin_keys", &hash, &[])?;
    Ok(Ok(Outcome::AdminKeyAdded))
}

fn key_hash(key_hash_hex: &str) -> Result<Vec<u8>, Rejection> {
    if key_hash_hex.len() != 64 {
        return Err(Rejection::Invalid("key hash must be 32 bytes of hex".into()));
    }
    match hex::decode(key_hash_hex) {
        Ok(hash) if hash.len() == 32 => Ok(hash),
        Ok(_) => Err(Rejection::Invalid("key hash must be 32 bytes".into())),
        Err(_) => Err(Rejection::Invalid("key hash is not hex".into())),
    }
}

/// Takes `amount` from the account, or rejects without writing anything.
pub fn debit(txn: &mut Txn<'_>, account_id: &str, amount_micros: u64) -> Result<Result<u64, Rejection>, StoreError> {
    let Some(mut account) = txn.get::<Account>("accounts", account_id.as_bytes())? else {
        return Ok(Err(Rejection::AccountNotFound));
    };
    let Some(left) = account.balance_micros.checked_sub(amount_micros) else {
        return Ok(Err(Rejection::InsufficientBalance {
            balance_micros: account.balance_micros,
            needed_micros: amount_micros,
        }));
    };
    account.balance_micros = left;
    txn.put("accounts", account_id.as_bytes(), &account)?;
    Ok(Ok(left))
}

/// The largest balance an account may hold (10^15 micro-USDC = 1 billion USDC): sums never wrap.
pub const BALANCE_MAX_MICROS: u64 = 1_000_000_000_000_000;

pub fn top_up(txn: &mut Txn<'_>, account_id: &str, amount_micros: u64) -> Result<Response, StoreError> {
    let Some(mut account) = txn.get::<Account>("accounts", account_id.as_bytes())? else {
        return Ok(Err(Rejection::AccountNotFound));
    };
    match account.balance_micros.checked_add(amount_micros) {
        Some(b) if amount_micros > 0 && b <= BALANCE_MAX_MICROS => account.balance_micros = b,
        _ => {
            return Ok(Err(Rejection::Invalid(format!(
                "a top-up is positive and leaves at most {BALANCE_MAX_MICROS} micros"
            ))))
        }
    }
    txn.put("accounts", account_id.as_bytes(), &account)?;
    Ok(Ok(Outcome::ToppedUp { account }))
}

/// Lets a key act for an account and lists it under the account.
pub fn issue_key(txn: &mut Txn<'_>, now_ms: u64, op: &IssueApiKey) -> Result<Response, StoreError> {
    if op.prefix.len() > 32 {
        return Ok(Err(Rejection::Invalid("key prefix too long".into())));
    }
    match add_key(txn, &op.account_id, &op.key_hash_hex)? {
        Ok(_) => {}
        Err(rejection) => return Ok(Err(rejection)),
    }
    let hash_hex = op.key_hash_hex.to_ascii_lowercase();
    let key = ApiKeyInfo {
        key_id: hash_hex[..16].to_string(),
        prefix: op.prefix.clone(),
        created_at_ms: now_ms,
    };
    txn.put(
        "account_keys",
        &account_key(&op.account_id, &key.key_id),
        &(key.clone(), hash_hex),
    )?;
    Ok(Ok(Outcome::ApiKeyIssued { key }))
}

pub fn revoke_key(txn: &mut Txn<'_>, op: &RevokeApiKey) -> Result<Response, StoreError> {
    let index = account_key(&op.account_id, &op.key_id);
    let Some((key, hash_hex)) = txn.get::<(ApiKeyInfo, String)>("account_keys", &index)? else {
        return Ok(Err(Rejection::KeyNotFound));
    };
    if let Ok(hash) = hex::decode(&hash_hex) {
        txn.delete("api_keys", &hash)?;
    }
    txn.delete("account_keys", &index)?;
    Ok(Ok(Outcome::ApiKeyRevoked { key }))
}

/// `account ‖ 0 ‖ key id`: an account's keys sort together.
pub fn account_key(account_id: &str, key_id: &str) -> Vec<u8> {
    [account_id.as_bytes(), &[0], key_id.as_bytes()].concat()
}

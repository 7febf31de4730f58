//! Identifiers and secrets. IDs are ULIDs (sortable, unique); secrets come from the OS RNG.

use crate::auth::API_KEY_PREFIX;

pub fn lease_id() -> String {
    format!("lse_{}", ulid::Ulid::new())
}

/// A baton's id: a lease id of its own prefix, so the two are never confused.
pub fn baton_id() -> String {
    format!("{}{}", relay_raft::baton::ID_PREFIX, ulid::Ulid::new())
}

pub fn token_id() -> String {
    format!("tok_{}", ulid::Ulid::new())
}

/// Whether `id` has the shape of a baton id.
pub fn is_baton_id(id: &str) -> bool {
    id.strip_prefix(relay_raft::baton::ID_PREFIX)
        .is_some_and(|rest| rest.len() == 26 && rest.parse::<ulid::Ulid>().is_ok())
}

pub fn session_id() -> String {
    format!("ses_{}", ulid::Ulid::new())
}

pub fn ledger_id() -> String {
    format!("led_{}", ulid::Ulid::new())
}

pub fn account_id() -> String {
    format!("acct_{}", ulid::Ulid::new())
}

/// A fresh object key: every upload gets its own, so a retried or failed upload never overwrites
/// bytes a lease points at.
pub fn blob_key() -> String {
    format!(
        "{}/{}",
        crate::objects::BLOB_PREFIX,
        ulid::Ulid::new().to_string().to_lowercase()
    )
}

/// 160 bits from the OS RNG, hex.
pub fn secret_hex() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

pub fn api_key() -> Result<String, getrandom::Error> {
    Ok(format!("{API_KEY_PREFIX}{}", secret_hex()?))
}

/// Whether `id` has the shape of a lease id; anything else cannot exist.
pub fn is_lease_id(id: &str) -> bool {
    id.strip_prefix("lse_")
        .is_some_and(|rest| rest.parse::<ulid::Ulid>().is_ok() && rest.len() == 26)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Generated ids have the documented prefixes and pass their own shape checks.
    #[test]
    fn generated_ids_have_their_shape() {
        assert!(is_lease_id(&lease_id()));
        assert!(!is_lease_id("lse_"));
        assert!(!is_lease_id("lse_../../etc/passwd"));
        assert!(ledger_id().starts_with("led_"));
        assert!(is_baton_id(&baton_id()));
        assert!(!is_baton_id(&lease_id()));
        assert!(!is_lease_id(&baton_id()));
        let key = api_key().unwrap();
        assert!(crate::auth::is_well_formed_key(&key), "{key}");
        assert_ne!(key, api_key().unwrap());
    }
}

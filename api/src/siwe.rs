//! Sign-In with Ethereum (EIP-4361): the message a wallet signs with `personal_sign` to prove it is
//! itself, and the nonces Relay hands out for it.
//!
//! Nonces are stateless: random bytes, an expiry and a MAC under a key derived from the cluster
//! secret, so any node checks any node's nonce and handing one out writes nothing. The ledger
//! makes each one sign in once (`OpenSession` refuses a used nonce).

use crate::x402::evm::{self, Address};

/// How long a nonce may be used after it is handed out.
pub const NONCE_TTL_SECONDS: u64 = 600;
/// How far `Issued At` may lie from now.
const ISSUED_AT_SKEW_MS: i64 = 10 * 60 * 1000;
/// The longest message looked at.
pub const MESSAGE_MAX_LEN: usize = 4096;

/// The parts of a sign-in message Relay checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The scheme before the domain, when the first line gives one.
    pub scheme: Option<String>,
    pub domain: String,
    pub address: Address,
    pub uri: String,
    pub version: String,
    pub chain_id: u64,
    pub nonce: String,
    pub issued_at_ms: u64,
    pub expiration_ms: Option<u64>,
    pub not_before_ms: Option<u64>,
}

const PREAMBLE: &str = " wants you to sign in with your Ethereum account:";

/// Parses the EIP-4361 text: `domain` line, address, a blank line, an optional statement and
/// blank line, then `Key: value` fields.
pub fn parse(text: &str) -> Result<Message, String> {
    if text.len() > MESSAGE_MAX_LEN {
        return Err("message too long".into());
    }
    let mut lines = text.split('\n');
    let first = lines.next().unwrap_or_default();
    let domain = first
        .strip_suffix(PREAMBLE)
        .ok_or("the first line must be `<domain> wants you to sign in with your Ethereum account:`")?;
    let (scheme, domain) = match domain.split_once("://") {
        Some((scheme, domain)) => (Some(scheme.to_string()), domain),
        None => (None, domain),
    };
    let address_line = lines.next().ok_or("the address line is missing")?;
    let address = Address::parse(address_line).ok_or("the second line must be an address")?;
    // EIP-4361 wants the EIP-55 form; a wallet shows the message as a sign-in only then.
    if address.checksummed() != address_line {
        return Err("the address must be in its EIP-55 checksummed form".into());
    }
    let mut fields = std::collections::HashMap::new();
    let mut in_resources = false;
    for line in lines {
        if in_resources && line.starts_with("- ") {
            continue;
        }
        in_resources = false;
        if line == "Resources:" {
            in_resources = true;
            continue;
        }
        if let Some((key, value)) = line.split_once(": ") {
            if matches!(
                key,
                "URI"
                    | "Version"
                    | "Chain ID"
                    | "Nonce"
                    | "Issued At"
                    | "Expiration Time"
                    | "Not Before"
                    | "Request ID"
            ) && fields.insert(key, value).is_some()
            {
                return Err(format!("{key} is given twice"));
            }
        }
    }
    let field = |key: &str| fields.get(key).copied().ok_or(format!("{key} is missing"));
    let time = |key: &str| -> Result<Option<u64>, String> {
        match fields.get(key) {
            None => Ok(None),
            Some(v) => chrono::DateTime::parse_from_rfc3339(v)
                .map(|t| Some(t.timestamp_millis().max(0) as u64))
                .map_err(|_| format!("{key} must be an RFC 3339 time")),
        }
    };
    Ok(Message {
        scheme,
        domain: domain.to_string(),
        address,
        uri: field("URI")?.to_string(),
        version: field("Version")?.to_string(),
        chain_id: field("Chain ID")?.parse().map_err(|_| "Chain ID must be a number")?,
        nonce: field("Nonce")?.to_string(),
        issued_at_ms: time("Issued At")?.ok_or("Issued At is missing")?,
        expiration_ms: time("Expiration Time")?,
        not_before_ms: time("Not Before")?,
    })
}

impl Message {
    /// Whether this message signs in to `origin` (`scheme://host[:port]`, the node's public URL)
    /// now (unix ms), on `chain_id` if one is required.
    pub fn check(&self, origin: &str, chain_id: Option<u64>, now_ms: u64) -> Result<(), String> {
        let (scheme, domain) = origin.split_once("://").unwrap_or(("https", origin));
        if !self.domain.eq_ignore_ascii_case(domain) {
            return Err(format!("the message is for {}, not {domain}", self.domain));
        }
        if self.scheme.as_deref().is_some_and(|s| !s.eq_ignore_ascii_case(scheme)) {
            return Err("the message names another scheme".into());
        }
        let uri_origin: String = self.uri.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
        if !uri_origin.eq_ignore_ascii_case(origin) {
            return Err(format!("URI must be on {origin}"));
        }
        if self.version != "1" {
            return Err("Version must be 1".into());
        }
        if chain_id.is_some_and(|c| c != self.chain_id) {
            return Err("Chain ID is not this node's network".into());
        }
        if (self.issued_at_ms as i64 - now_ms as i64).abs() > ISSUED_AT_SKEW_MS {
            return Err("Issued At is too far from now".into());
        }
        if self.expiration_ms.is_some_and(|t| t <= now_ms) {
            return Err("the message has expired".into());
        }
        if self.not_before_ms.is_some_and(|t| t > now_ms) {
            return Err("the message is not valid yet".into());
        }
        Ok(())
    }
}

/// The wallet that signed `text` (EIP-191 `personal_sign`).
pub fn signer(text: &str, signature: &str) -> Result<Address, evm::SignatureError> {
    evm::recover(&evm::personal_digest(text.as_bytes()), signature)
}

/// The key nonces are MACed with: derived from the cluster secret, which every node holds.
pub fn nonce_key(cluster_secret: &str) -> [u8; 32] {
    blake3::derive_key("relay 2026-11 siwe nonce", cluster_secret.as_bytes())
}

/// A fresh nonce valid until `now_s + NONCE_TTL_SECONDS`: 48 hex digits (random ‖ expiry ‖ MAC).
pub fn mint_nonce(key: &[u8; 32], now_s: u64) -> Result<(String, u64), getrandom::Error> {
    let mut random = [0u8; 8];
    getrandom::fill(&mut random)?;
    let expires = now_s + NONCE_TTL_SECONDS;
    let mut body = random.to_vec();
    body.extend_from_slice(&expires.to_be_bytes());
    let mac = blake3::keyed_hash(key, &body);
    body.extend_from_slice(&mac.as_bytes()[..8]);
    Ok((hex::encode(body), expires))
}

/// Whether `nonce` was made with `key` and has not expired at `now_s`.
pub fn nonce_valid(key: &[u8; 32], nonce: &str, now_s: u64) -> bool {
    let mut bytes = [0u8; 24];
    // Lowercase only: one nonce has one spelling, so it signs in once.
    let lowercase = nonce.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if nonce.len() != 48 || !lowercase || hex::decode_to_slice(nonce, &mut bytes).is_err() {
        return false;
    }
    let expires = u64::from_be_bytes(bytes[8..16].try_into().expect("eight bytes"));
    let mac = blake3::keyed_hash(key, &bytes[..16]);
    // blake3::Hash compares in constant time.
    let same = blake3::hash(&mac.as_bytes()[..8]) == blake3::hash(&bytes[16..]);
    same && now_s < expires
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn an_eth_account_signed_message_parses_and_recovers() {
        let v: Value = serde_json::from_str(include_str!("x402/vectors.json")).unwrap();
        let s = &v["siwe"][0];
        let text = s["message"].as_str().unwrap();
        let m = parse(text).unwrap();
        assert_eq!(m.domain, "relay.example");
        assert_eq!(m.address.checksummed(), s["address"].as_str().unwrap());
        assert_eq!(m.chain_id, 84532);
        assert_eq!(m.nonce, "abcdef0123456789");
        let issued = m.issued_at_ms;
        assert!(m.check("https://relay.example", Some(84532), issued + 1000).is_ok());
        assert!(m.check("https://evil.example", Some(84532), issued).is_err());
        assert!(
            m.check("http://relay.example", Some(84532), issued).is_err(),
            "URI on another origin"
        );
        assert!(m.check("https://relay.example", Some(8453), issued).is_err());
        assert!(m.check("https://relay.example", None, issued + 11 * 60 * 1000).is_err());
        assert_eq!(signer(text, s["signature"].as_str().unwrap()).unwrap(), m.address);
        assert_ne!(
            signer(&text.replace("Sign in", "Sign In"), s["signature"].as_str().unwrap()).unwrap(),
            m.address
        );
    }

    #[test]
    fn malformed_messages_are_refused() {
        assert!(parse("hello").is_err());
        assert!(parse("x wants you to sign in with your Ethereum account:\nnot an address\n").is_err());
        let base = "x wants you to sign in with your Ethereum account:\n0x51d49d6D9e05F42a0117b104955f05b7b827232e\n\nURI: https://x\nVersion: 1\nChain ID: 1\nNonce: n\nIssued At: 2026-11-26T00:00:00Z";
        assert!(parse(base).is_ok());
        assert!(parse(&base.replace("Chain ID: 1", "Chain ID: one")).is_err());
        assert!(parse(&format!("{base}\nNonce: again")).is_err());
        assert!(parse(&base.replace("Issued At: 2026-11-26T00:00:00Z", "Issued At: yesterday")).is_err());
        assert!(
            parse(&base.replace(
                "0x51d49d6D9e05F42a0117b104955f05b7b827232e",
                "0x51d49d6d9e05f42a0117b104955f05b7b827232e"
            ))
            .is_err(),
            "not checksummed"
        );
    }

    #[test]
    fn nonces_are_checked_statelessly() {
        let key = nonce_key("cluster-secret-0123456789");
        let (nonce, expires) = mint_nonce(&key, 1000).unwrap();
        assert_eq!(expires, 1000 + NONCE_TTL_SECONDS);
        assert!(nonce_valid(&key, &nonce, 1001));
        assert!(!nonce_valid(&key, &nonce, expires));
        assert!(!nonce_valid(&nonce_key("another-secret-0123456789"), &nonce, 1001));
        let mut forged = nonce.clone().into_bytes();
        forged[20] = if forged[20] == b'0' { b'1' } else { b'0' };
        assert!(!nonce_valid(&key, &String::from_utf8(forged).unwrap(), 1001));
        assert!(!nonce_valid(&key, "short", 1001));
        assert!(!nonce_valid(&key, &nonce.to_uppercase(), 1001), "one spelling only");
    }
}

//! The Ethereum arithmetic x402 and Sign-In with Ethereum need, and no more: Keccak-256, EIP-55
//! addresses, the EIP-712 digest of EIP-3009's one `TransferWithAuthorization` struct, the
//! EIP-191 digest of a signed text, and signer recovery that refuses high-S signatures (USDC's
//! on-chain `ecrecover` reverts on them, so accepting one would accept a payment that can never
//! settle). Checked against vectors made by eth-account (`vectors.json`).

pub use k256::ecdsa::SigningKey;
use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
use sha3::{Digest, Keccak256};

pub fn keccak(bytes: &[u8]) -> [u8; 32] {
    Keccak256::digest(bytes).into()
}

/// A 20-byte account address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address(pub [u8; 20]);

impl Address {
    /// Parses `0x` + 40 hex digits, in any case: the EIP-55 mixed case is a typing aid for people,
    /// not part of the value, and wallets and facilitators send either.
    pub fn parse(text: &str) -> Option<Address> {
        let hex_digits = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X"))?;
        if hex_digits.len() != 40 {
            return None;
        }
        let mut out = [0u8; 20];
        hex::decode_to_slice(hex_digits, &mut out).ok()?;
        Some(Address(out))
    }

    /// The EIP-55 checksummed form, `0x` + mixed-case hex.
    pub fn checksummed(&self) -> String {
        let lower = hex::encode(self.0);
        let hash = keccak(lower.as_bytes());
        let mut out = String::with_capacity(42);
        out.push_str("0x");
        for (i, c) in lower.chars().enumerate() {
            let nibble = (hash[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0x0f;
            out.push(if c.is_ascii_alphabetic() && nibble >= 8 {
                c.to_ascii_uppercase()
            } else {
                c
            });
        }
        out
    }

    fn word(&self) -> [u8; 32] {
        let mut w = [0u8; 32];
        w[12..].copy_from_slice(&self.0);
        w
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.checksummed())
    }
}

/// The EIP-712 domain of a token (`extra.name`/`extra.version` of the requirements).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Domain {
    pub name: String,
    pub version: String,
    pub chain_id: u64,
    pub verifying_contract: Address,
}

impl Domain {
    pub fn separator(&self) -> [u8; 32] {
        let type_hash = keccak(b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
        let mut enc = Vec::with_capacity(5 * 32);
        enc.extend_from_slice(&type_hash);
        enc.extend_from_slice(&keccak(self.name.as_bytes()));
        enc.extend_from_slice(&keccak(self.version.as_bytes()));
        enc.extend_from_slice(&u256(self.chain_id as u128));
        enc.extend_from_slice(&self.verifying_contract.word());
        keccak(&enc)
    }
}

/// EIP-3009's authorization, as signed. Amounts and times are below 2^128 here: Relay refuses
/// larger ones before they get this far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferWithAuthorization {
    pub from: Address,
    pub to: Address,
    pub value: u128,
    pub valid_after: u128,
    pub valid_before: u128,
    pub nonce: [u8; 32],
}

impl TransferWithAuthorization {
    pub fn struct_hash(&self) -> [u8; 32] {
        let type_hash = keccak(
            b"TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)",
        );
        let mut enc = Vec::with_capacity(7 * 32);
        enc.extend_from_slice(&type_hash);
        enc.extend_from_slice(&self.from.word());
        enc.extend_from_slice(&self.to.word());
        enc.extend_from_slice(&u256(self.value));
        enc.extend_from_slice(&u256(self.valid_after));
        enc.extend_from_slice(&u256(self.valid_before));
        enc.extend_from_slice(&self.nonce);
        keccak(&enc)
    }

    /// `keccak256(0x19 0x01 ‖ domainSeparator ‖ hashStruct(message))`.
    pub fn digest(&self, domain: &Domain) -> [u8; 32] {
        let mut enc = Vec::with_capacity(66);
        enc.extend_from_slice(&[0x19, 0x01]);
        enc.extend_from_slice(&domain.separator());
        enc.extend_from_slice(&self.struct_hash());
        keccak(&enc)
    }
}

/// EIP-191 `personal_sign`: `keccak256("\x19Ethereum Signed Message:\n" ‖ len ‖ message)`.
pub fn personal_digest(message: &[u8]) -> [u8; 32] {
    let mut enc = format!("\x19Ethereum Signed Message:\n{}", message.len()).into_bytes();
    enc.extend_from_slice(message);
    keccak(&enc)
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature must be 0x followed by 65 bytes of hex")]
    Malformed,
    #[error("signature recovery id must be 27 or 28")]
    RecoveryId,
    #[error("signature has a high S value")]
    HighS,
    #[error("signature does not recover to a key")]
    Unrecoverable,
}

/// The address whose key signed `digest`: `signature` is `0x` + r ‖ s ‖ v, v ∈ {27, 28}, low S.
pub fn recover(digest: &[u8; 32], signature: &str) -> Result<Address, SignatureError> {
    let hex_digits = signature.strip_prefix("0x").ok_or(SignatureError::Malformed)?;
    let mut bytes = [0u8; 65];
    hex::decode_to_slice(hex_digits, &mut bytes).map_err(|_| SignatureError::Malformed)?;
    let recovery = match bytes[64] {
        27 | 28 => RecoveryId::from_byte(bytes[64] - 27).ok_or(SignatureError::RecoveryId)?,
        _ => return Err(SignatureError::RecoveryId),
    };
    let sig = Signature::from_slice(&bytes[..64]).map_err(|_| SignatureError::Malformed)?;
    if sig.normalize_s().is_some() {
        return Err(SignatureError::HighS);
    }
    let key = VerifyingKey::recover_from_prehash(digest, &sig, recovery).map_err(|_| SignatureError::Unrecoverable)?;
    Ok(address_of(&key))
}

/// The last 20 bytes of the Keccak-256 of the uncompressed public key without its 0x04 prefix.
pub fn address_of(key: &VerifyingKey) -> Address {
    let point = key.to_encoded_point(false);
    let hash = keccak(&point.as_bytes()[1..]);
    let mut out = [0u8; 20];
    out.copy_from_slice(&hash[12..]);
    Address(out)
}

/// `0x` + 32 bytes of hex (an authorization nonce).
pub fn parse_bytes32(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text.strip_prefix("0x")?, &mut out).ok()?;
    Some(out)
}

fn u256(value: u128) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[16..].copy_from_slice(&value.to_be_bytes());
    w
}

/// Signs like a wallet (tests and the load generator; Relay itself never signs a payment).
pub fn sign(key: &SigningKey, digest: &[u8; 32]) -> String {
    let (sig, recovery) = key.sign_prehash_recoverable(digest).expect("a 32-byte prehash signs");
    let mut bytes = sig.to_bytes().to_vec();
    bytes.push(27 + recovery.to_byte());
    format!("0x{}", hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn vectors() -> Value {
        serde_json::from_str(include_str!("vectors.json")).unwrap()
    }

    fn hex32(v: &Value) -> [u8; 32] {
        parse_bytes32(v.as_str().unwrap()).unwrap()
    }

    fn transfer_of(v: &Value) -> (Domain, TransferWithAuthorization) {
        let d = &v["domain"];
        let a = &v["authorization"];
        let num = |x: &Value| x.as_str().unwrap().parse::<u128>().unwrap();
        (
            Domain {
                name: d["name"].as_str().unwrap().into(),
                version: d["version"].as_str().unwrap().into(),
                chain_id: d["chainId"].as_u64().unwrap(),
                verifying_contract: Address::parse(d["verifyingContract"].as_str().unwrap()).unwrap(),
            },
            TransferWithAuthorization {
                from: Address::parse(a["from"].as_str().unwrap()).unwrap(),
                to: Address::parse(a["to"].as_str().unwrap()).unwrap(),
                value: num(&a["value"]),
                valid_after: num(&a["validAfter"]),
                valid_before: num(&a["validBefore"]),
                nonce: hex32(&a["nonce"]),
            },
        )
    }

    #[test]
    fn transfer_digests_and_signers_match_eth_account() {
        for v in vectors()["transfers"].as_array().unwrap() {
            let (domain, auth) = transfer_of(v);
            assert_eq!(domain.separator(), hex32(&v["domain_separator"]));
            assert_eq!(auth.struct_hash(), hex32(&v["struct_hash"]));
            let digest = auth.digest(&domain);
            assert_eq!(digest, hex32(&v["digest"]));
            let signer = recover(&digest, v["signature"].as_str().unwrap()).unwrap();
            assert_eq!(signer.checksummed(), v["authorization"]["from"].as_str().unwrap());
            assert_eq!(
                recover(&digest, v["signature_high_s"].as_str().unwrap()),
                Err(SignatureError::HighS)
            );
            // Our own signing (used by tests as the wallet) makes the same signature: RFC 6979
            // is deterministic, and both sides emit low S.
            let key = k256::ecdsa::SigningKey::from_slice(&hex32(&v["private_key"])).unwrap();
            assert_eq!(sign(&key, &digest), v["signature"].as_str().unwrap());
        }
    }

    #[test]
    fn another_domain_name_yields_another_signer() {
        let v = &vectors()["transfers"][0];
        let (mut domain, auth) = transfer_of(v);
        domain.name = "USD Coin".into();
        let signer = recover(&auth.digest(&domain), v["signature"].as_str().unwrap()).unwrap();
        assert_ne!(signer, auth.from);
    }

    #[test]
    fn personal_sign_matches_eth_account() {
        for v in vectors()["siwe"].as_array().unwrap() {
            let digest = personal_digest(v["message"].as_str().unwrap().as_bytes());
            assert_eq!(digest, hex32(&v["digest"]));
            let signer = recover(&digest, v["signature"].as_str().unwrap()).unwrap();
            assert_eq!(signer.checksummed(), v["address"].as_str().unwrap());
        }
    }

    #[test]
    fn eip712_mail_example() {
        // EIP-712's own example: the signer is keccak256("cow").
        let key = k256::ecdsa::SigningKey::from_slice(&keccak(b"cow")).unwrap();
        assert_eq!(
            address_of(key.verifying_key()).checksummed(),
            "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"
        );
    }

    #[test]
    fn malformed_signatures_are_refused() {
        let d = [7u8; 32];
        assert_eq!(recover(&d, "abc"), Err(SignatureError::Malformed));
        assert_eq!(recover(&d, "0x1234"), Err(SignatureError::Malformed));
        let mut s = format!("0x{}", "11".repeat(64));
        s.push_str("1d");
        assert_eq!(recover(&d, &s), Err(SignatureError::RecoveryId));
        assert!(Address::parse("0x123").is_none());
        assert!(Address::parse("0xzz9693Bc6afc0C5328bA36FaF03C514EF312287C").is_none());
    }

    #[test]
    fn checksums_round_trip() {
        for a in [
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        ] {
            assert_eq!(Address::parse(&a.to_lowercase()).unwrap().checksummed(), a);
        }
    }
}

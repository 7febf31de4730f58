//! The witness signing key at rest: its Ed25519 seed, sealed with AES-256-GCM under a key derived
//! (HKDF-SHA256) from the operator's witness secret, and bound to its public key as associated
//! data. The ledger, its log and its snapshots only ever hold the sealed form.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hkdf::{Salt, HKDF_SHA256};

const SALT: &[u8] = b"relay witness seal v1";

/// The sealing key for a witness secret.
pub fn derive_key(secret: &[u8]) -> [u8; 32] {
    let prk = Salt::new(HKDF_SHA256, SALT).extract(secret);
    let okm = prk
        .expand(&[b"aes-256-gcm key"], HKDF_SHA256)
        .expect("32 bytes is a valid length");
    let mut out = [0u8; 32];
    okm.fill(&mut out).expect("32 bytes is a valid length");
    out
}

fn cipher(key: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte key"))
}

/// nonce ‖ ciphertext ‖ tag.
pub fn seal(key: &[u8; 32], public_key: &[u8; 32], seed: &[u8; 32]) -> Result<Vec<u8>, String> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|e| format!("random nonce: {e}"))?;
    let mut buf = seed.to_vec();
    cipher(key)
        .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(public_key), &mut buf)
        .map_err(|_| "sealing failed".to_string())?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    Ok(out)
}

/// The seed, if `sealed` was sealed under `key` for `public_key`.
pub fn open(key: &[u8; 32], public_key: &[u8; 32], sealed: &[u8]) -> Option<[u8; 32]> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut buf = body.to_vec();
    let plain = cipher(key).open_in_place(nonce, Aad::from(public_key), &mut buf).ok()?;
    <[u8; 32]>::try_from(&plain[..]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_their_secret_and_public_key() {
        let key = derive_key(b"operator secret");
        let sealed = seal(&key, &[1; 32], &[7; 32]).unwrap();
        assert_ne!(&sealed[NONCE_LEN..NONCE_LEN + 32], &[7; 32]);
        assert_eq!(open(&key, &[1; 32], &sealed), Some([7; 32]));
        assert_eq!(open(&derive_key(b"another secret"), &[1; 32], &sealed), None);
        assert_eq!(open(&key, &[2; 32], &sealed), None);
        let mut flipped = sealed.clone();
        flipped[20] ^= 1;
        assert_eq!(open(&key, &[1; 32], &flipped), None);
        assert_eq!(open(&key, &[1; 32], &sealed[..5]), None);
    }
}

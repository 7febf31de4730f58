//! C2SP signed-note with Ed25519: key ids, verifier and private key strings, signing and opening.
//!
//! A note is UTF-8 text ending in a newline, a blank line, then signature lines
//! `— <key name> <base64(key id ‖ signature)>`. The signature covers the text (with its final
//! newline). Key names hold no spaces or `+`; a key id is the first four bytes of
//! SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use sha2::{Digest, Sha256};

use super::TlogError;

/// The signature algorithm byte of Ed25519 keys.
pub const ALG_ED25519: u8 = 0x01;
/// The dash that starts a signature line (U+2014) and its space.
const SIG_PREFIX: &str = "\u{2014} ";
/// A note with more signatures than this is refused unread (Go's `note` package agrees).
pub const SIGNATURES_MAX: usize = 100;
/// The longest note opened.
pub const NOTE_MAX_BYTES: usize = 1 << 20;

pub fn key_id(name: &str, public: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ALG_ED25519]);
    h.update(public);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// A key name: printable, no space and no `+`, 1 to 256 bytes.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 256 && name.chars().all(|c| !c.is_whitespace() && !c.is_control() && c != '+')
}

/// A public key that checks notes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verifier {
    pub name: String,
    pub id: [u8; 4],
    key: VerifyingKey,
}

impl Verifier {
    pub fn new(name: &str, public: &[u8; 32]) -> Result<Verifier, TlogError> {
        if !valid_name(name) {
            return Err(TlogError::Malformed(format!("key name {name:?} is not valid")));
        }
        let key =
            VerifyingKey::from_bytes(public).map_err(|_| TlogError::Malformed("not an Ed25519 public key".into()))?;
        Ok(Verifier {
            name: name.to_string(),
            id: key_id(name, public),
            key,
        })
    }

    /// Parses `<name>+<hex key id>+<base64(0x01 ‖ public key)>`.
    pub fn parse(s: &str) -> Result<Verifier, TlogError> {
        let bad = |why: &str| TlogError::Malformed(format!("verifier key: {why}"));
        let mut parts = s.trim().splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected name+id+key"));
        };
        let id = hex::decode(id_hex).map_err(|_| bad("the key id is not hex"))?;
        let key = B64.decode(key_b64).map_err(|_| bad("the key is not base64"))?;
        let [alg, public @ ..] = key.as_slice() else {
            return Err(bad("the key is empty"));
        };
        if *alg != ALG_ED25519 {
            return Err(bad("not an Ed25519 key"));
        }
        let public: [u8; 32] = public.try_into().map_err(|_| bad("not a 32-byte key"))?;
        let v = Verifier::new(name, &public)?;
        if id.len() != 4 || id[..] != v.id[..] {
            return Err(bad("the key id does not match the name and key"));
        }
        Ok(v)
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Ok(sig) = Signature::from_slice(sig) else {
            return false;
        };
        self.key.verify(msg, &sig).is_ok()
    }
}

impl std::fmt::Display for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut key = vec![ALG_ED25519];
        key.extend_from_slice(self.key.as_bytes());
        write!(f, "{}+{}+{}", self.name, hex::encode(self.id), B64.encode(key))
    }
}

/// A private key that signs notes.
#[derive(Clone)]
pub struct Signer {
    pub name: String,
    key: SigningKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.verifier())
    }
}

impl Signer {
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Signer, TlogError> {
        if !valid_name(name) {
            return Err(TlogError::Malformed(format!("key name {name:?} is not valid")));
        }
        Ok(Signer {
            name: name.to_string(),
            key: SigningKey::from_bytes(seed),
        })
    }

    /// Parses `PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 ‖ seed)>` (the format of Go's
    /// `note.GenerateKey`).
    pub fn parse(s: &str) -> Result<Signer, TlogError> {
        let bad = |why: &str| TlogError::Malformed(format!("private key: {why}"));
        let rest = s
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| bad("expected PRIVATE+KEY+…"))?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected PRIVATE+KEY+name+id+key"));
        };
        let key = B64.decode(key_b64).map_err(|_| bad("the key is not base64"))?;
        let [alg, seed @ ..] = key.as_slice() else {
            return Err(bad("the key is empty"));
        };
        if *alg != ALG_ED25519 {
            return Err(bad("not an Ed25519 key"));
        }
        let seed: [u8; 32] = seed.try_into().map_err(|_| bad("not a 32-byte seed"))?;
        let signer = Signer::from_seed(name, &seed)?;
        if hex::decode(id_hex).ok().as_deref() != Some(&signer.verifier().id[..]) {
            return Err(bad("the key id does not match the name and key"));
        }
        Ok(signer)
    }

    pub fn private_string(&self) -> String {
        let mut key = vec![ALG_ED25519];
        key.extend_from_slice(self.key.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{}+{}",
            self.name,
            hex::encode(self.verifier().id),
            B64.encode(key)
        )
    }

    pub fn seed(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    pub fn verifier(&self) -> Verifier {
        Verifier::new(&self.name, &self.public_key()).expect("the name was checked")
    }

    /// The raw Ed25519 signature of `text`.
    pub fn signature(&self, text: &str) -> [u8; 64] {
        self.key.sign(text.as_bytes()).to_bytes()
    }

    /// The signed note of `text` (which must be valid note text).
    pub fn sign(&self, text: &str) -> Result<String, TlogError> {
        check_text(text)?;
        Ok(assemble(text, &self.name, &self.verifier().id, &self.signature(text)))
    }
}

/// `text` followed by one signature line.
pub fn assemble(text: &str, name: &str, id: &[u8; 4], sig: &[u8; 64]) -> String {
    let mut blob = id.to_vec();
    blob.extend_from_slice(sig);
    format!("{text}\n{SIG_PREFIX}{name} {}\n", B64.encode(blob))
}

/// Note text: non-empty UTF-8 ending in a newline, no blank line at its end, no control
/// characters but newlines.
pub fn check_text(text: &str) -> Result<(), TlogError> {
    if !text.ends_with('\n') || text.ends_with("\n\n") || text == "\n" {
        return Err(TlogError::Malformed("note text must end in one newline".into()));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(TlogError::Malformed("note text holds a control character".into()));
    }
    Ok(())
}

/// One signature line of a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub id: [u8; 4],
    pub sig: Vec<u8>,
}

/// Splits a note into its text and signatures, checking the format only.
pub fn split(note: &str) -> Result<(&str, Vec<NoteSignature>), TlogError> {
    let bad = |why: &str| TlogError::Malformed(format!("note: {why}"));
    if note.len() > NOTE_MAX_BYTES {
        return Err(bad("too large"));
    }
    let cut = note
        .rfind("\n\n")
        .ok_or_else(|| bad("no blank line before the signatures"))?;
    let (text, sigs) = (&note[..cut + 1], &note[cut + 2..]);
    check_text(text)?;
    if !sigs.ends_with('\n') {
        return Err(bad("the signatures must end in a newline"));
    }
    let mut out = Vec::new();
    for line in sigs[..sigs.len() - 1].split('\n') {
        if out.len() >= SIGNATURES_MAX {
            return Err(bad("too many signatures"));
        }
        let rest = line
            .strip_prefix(SIG_PREFIX)
            .ok_or_else(|| bad("a signature line must start with '— '"))?;
        let (name, b64) = rest
            .split_once(' ')
            .ok_or_else(|| bad("a signature line is 'name base64'"))?;
        if !valid_name(name) {
            return Err(bad("a signature names an invalid key"));
        }
        let blob = B64.decode(b64).map_err(|_| bad("a signature is not base64"))?;
        if blob.len() < 5 {
            return Err(bad("a signature is too short"));
        }
        out.push(NoteSignature {
            name: name.to_string(),
            id: [blob[0], blob[1], blob[2], blob[3]],
            sig: blob[4..].to_vec(),
        });
    }
    if out.is_empty() {
        return Err(bad("no signature"));
    }
    Ok((text, out))
}

/// Opens a note: at least one signature by a known key verifies, and none by a known key fails.
/// Signatures by unknown keys are ignored. Answers the text.
pub fn open<'a>(note: &'a str, known: &[Verifier]) -> Result<&'a str, TlogError> {
    let (text, sigs) = split(note)?;
    let mut verified = 0;
    for s in &sigs {
        let Some(v) = known.iter().find(|v| v.name == s.name && v.id == s.id) else {
            continue;
        };
        if !v.verify(text.as_bytes(), &s.sig) {
            return Err(TlogError::BadSignature(format!(
                "the signature by {} does not verify",
                s.name
            )));
        }
        verified += 1;
    }
    match verified {
        0 => Err(TlogError::UnknownKey),
        _ => Ok(text),
    }
}

//! C2SP tlog-proof: an offline-verifiable inclusion proof, the checkpoint it leads to, and
//! optional extra data (Relay puts the witness record there, so the leaf can be rebuilt).
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! extra <base64>
//! index <N>
//! <base64 hash, one per line, leaf side first>
//!
//! <the checkpoint note, signatures included>
//! ```

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::merkle::{hash_b64, parse_hash, Hash, PROOF_MAX_HASHES};
use super::TlogError;

pub const HEADER: &str = "c2sp.org/tlog-proof@v1";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlogProof {
    pub extra: Option<Vec<u8>>,
    pub index: u64,
    pub path: Vec<Hash>,
    /// The signed checkpoint note, verbatim.
    pub checkpoint: String,
}

impl TlogProof {
    pub fn to_text(&self) -> String {
        let mut out = format!("{HEADER}\n");
        if let Some(extra) = &self.extra {
            out.push_str(&format!("extra {}\n", B64.encode(extra)));
        }
        out.push_str(&format!("index {}\n", self.index));
        for h in &self.path {
            out.push_str(&hash_b64(h));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint);
        out
    }

    pub fn parse(text: &str) -> Result<TlogProof, TlogError> {
        let bad = |why: &str| TlogError::Malformed(format!("tlog-proof: {why}"));
        let (head, checkpoint) = text
            .split_once("\n\n")
            .ok_or_else(|| bad("no blank line before the checkpoint"))?;
        let mut lines = head.split('\n');
        if lines.next() != Some(HEADER) {
            return Err(bad(&format!("the first line must be {HEADER}")));
        }
        let mut line = lines.next().ok_or_else(|| bad("no index line"))?;
        let mut extra = None;
        if let Some(b64) = line.strip_prefix("extra ") {
            extra = Some(B64.decode(b64).map_err(|_| bad("extra is not base64"))?);
            line = lines.next().ok_or_else(|| bad("no index line"))?;
        }
        let index = line
            .strip_prefix("index ")
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && (*n == "0" || !n.starts_with('0')))
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| bad("expected 'index <N>' without leading zeros"))?;
        let mut path = Vec::new();
        for l in lines {
            if path.len() >= PROOF_MAX_HASHES {
                return Err(bad("too many hashes"));
            }
            path.push(parse_hash(l)?);
        }
        Ok(TlogProof {
            extra,
            index,
            path,
            checkpoint: checkpoint.to_string(),
        })
    }
}

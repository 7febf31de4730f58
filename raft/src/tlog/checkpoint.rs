//! C2SP tlog-checkpoint: the body of a signed tree head.
//!
//! ```text
//! <origin>
//! <tree size, decimal>
//! <root hash, base64>
//! ```

use super::merkle::{hash_b64, parse_hash, Hash};
use super::note::valid_name;
use super::TlogError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The note text, byte for byte.
    pub fn text(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, hash_b64(&self.root))
    }

    /// Parses a checkpoint's text (extension lines after the root are allowed and ignored).
    pub fn parse(text: &str) -> Result<Checkpoint, TlogError> {
        let bad = |why: &str| TlogError::Malformed(format!("checkpoint: {why}"));
        let body = text.strip_suffix('\n').ok_or_else(|| bad("must end in a newline"))?;
        let mut lines = body.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next()) else {
            return Err(bad("expected origin, size and root lines"));
        };
        if !valid_name(origin) {
            return Err(bad("the origin holds a space or '+'"));
        }
        let size_ok =
            !size.is_empty() && size.bytes().all(|b| b.is_ascii_digit()) && (size == "0" || !size.starts_with('0'));
        let size = size
            .parse::<u64>()
            .ok()
            .filter(|_| size_ok)
            .ok_or_else(|| bad("the size is not a decimal without leading zeros"))?;
        if lines.any(str::is_empty) {
            return Err(bad("an empty extension line"));
        }
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root: parse_hash(root)?,
        })
    }
}

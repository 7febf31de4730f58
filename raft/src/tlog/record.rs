//! The witness record: the exact bytes of one leaf of Relay's witness log. A leaf's hash is the
//! RFC 6962 leaf hash of these bytes. The record is text, one `key value` per line, in this
//! order:
//!
//! ```text
//! relay-witness/v1
//! baton <baton id>
//! event version|entry
//! seq <the content version, or the entry's sequence number>
//! sha256 <SHA-256 of the content, lowercase hex>
//! chain <the entry's chain hash, lowercase hex; append_chained entries only>
//! at_ms <the cluster clock, Unix milliseconds>
//! ```

use super::TlogError;

pub const HEADER: &str = "relay-witness/v1";
/// The longest record (a baton id is short; this bounds what a verifier reads).
pub const RECORD_MAX_BYTES: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A single or overwrite baton's content: created or replaced.
    Version,
    /// An append baton's entry.
    Entry,
}

impl Event {
    pub fn name(self) -> &'static str {
        match self {
            Event::Version => "version",
            Event::Entry => "entry",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub baton_id: String,
    pub event: Event,
    pub seq: u64,
    pub sha256: [u8; 32],
    pub chain: Option<[u8; 32]>,
    pub at_ms: u64,
}

impl Record {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = format!(
            "{HEADER}\nbaton {}\nevent {}\nseq {}\nsha256 {}\n",
            self.baton_id,
            self.event.name(),
            self.seq,
            hex::encode(self.sha256)
        );
        if let Some(chain) = &self.chain {
            s.push_str(&format!("chain {}\n", hex::encode(chain)));
        }
        s.push_str(&format!("at_ms {}\n", self.at_ms));
        s.into_bytes()
    }

    /// Parses a record; only the exact encoding [`Record::to_bytes`] makes is accepted.
    pub fn parse(bytes: &[u8]) -> Result<Record, TlogError> {
        let bad = |why: &str| TlogError::Malformed(format!("witness record: {why}"));
        if bytes.len() > RECORD_MAX_BYTES {
            return Err(bad("too long"));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?;
        let mut lines = text
            .strip_suffix('\n')
            .ok_or_else(|| bad("must end in a newline"))?
            .split('\n');
        if lines.next() != Some(HEADER) {
            return Err(bad(&format!("the first line must be {HEADER}")));
        }
        let mut field = |name: &str| -> Result<String, TlogError> {
            let line = lines.next().ok_or_else(|| bad(&format!("no {name} line")))?;
            line.strip_prefix(name)
                .and_then(|v| v.strip_prefix(' '))
                .map(str::to_string)
                .ok_or_else(|| bad(&format!("expected '{name} …'")))
        };
        let hash32 = |v: &str| -> Result<[u8; 32], TlogError> {
            hex::decode(v)
                .ok()
                .and_then(|h| <[u8; 32]>::try_from(h).ok())
                .ok_or_else(|| bad("a hash is not 64 hex digits"))
        };
        let baton_id = field("baton")?;
        let event = match field("event")?.as_str() {
            "version" => Event::Version,
            "entry" => Event::Entry,
            _ => return Err(bad("event is version or entry")),
        };
        let seq = field("seq")?.parse().map_err(|_| bad("seq is not a number"))?;
        let sha256 = hash32(&field("sha256")?)?;
        let mut next = lines.next().ok_or_else(|| bad("no at_ms line"))?;
        let mut chain = None;
        if let Some(v) = next.strip_prefix("chain ") {
            chain = Some(hash32(v)?);
            next = lines.next().ok_or_else(|| bad("no at_ms line"))?;
        }
        let at_ms = next
            .strip_prefix("at_ms ")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad("expected 'at_ms <N>'"))?;
        let record = Record {
            baton_id,
            event,
            seq,
            sha256,
            chain,
            at_ms,
        };
        if lines.next().is_some() || record.to_bytes() != bytes {
            return Err(bad("not in its exact encoding"));
        }
        Ok(record)
    }
}

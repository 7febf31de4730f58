//! The recorded history: every client operation with its invocation and completion times.
//!
//! Times are wall-clock microseconds since the epoch on this machine (the same clock the nodes
//! stamp `expires_at` with, before any skew), so expiry can be judged against them.

use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// How an operation ended, as far as the client can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Acknowledged: it happened.
    Ok,
    /// Refused definitely (a 4xx, or a connection that was never made): it did not happen.
    Fail,
    /// Timed out, reset or a 5xx: it may have happened, at any time after its invocation.
    Unknown,
}

/// What an operation did and what it saw. `None` fields were not learned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "snake_case")]
pub enum Op {
    /// Checkpoint read: the version and the written value (`{"w": value}`) it returned.
    Read {
        key: String,
        version: Option<u64>,
        value: Option<u64>,
    },
    /// Checkpoint compare-and-set: `If-Match: expect`, body `{"w": value}`.
    Cas {
        key: String,
        expect: u64,
        value: u64,
        new_version: Option<u64>,
    },
    /// Claim through handoff token number `token` (of `max_claims`); the `X-Claims-Remaining` it
    /// returned and whether the body was the lease's bytes.
    Claim {
        token: usize,
        max_claims: u32,
        remaining: Option<u32>,
        body_ok: Option<bool>,
    },
    /// After the run: how many claims token `token` still had (0 once claimed out).
    ClaimProbe {
        token: usize,
        max_claims: u32,
        remaining: Option<u32>,
    },
    /// Storage create of body number `body`; the lease and expiry it was given.
    Create {
        body: u64,
        lease_id: Option<String>,
        expires_at_ms: Option<u64>,
    },
    /// After the run: body numbers the account holds more than one Storage lease of (each create
    /// and its retry carry one Idempotency-Key, so one body must make at most one lease).
    Census { duplicated: Vec<(u64, u32)> },
    /// Storage download; whether the bytes were exactly the created body.
    Download {
        lease_id: String,
        body: u64,
        body_ok: Option<bool>,
    },
    /// Storage delete.
    Delete { lease_id: String },
    /// Mailbox drop of `{"d": drop}` into mailbox number `mailbox`; the message id it was given.
    Drop {
        mailbox: usize,
        drop: u64,
        message_id: Option<String>,
    },
    /// Mailbox pickup of one message; the drop number its body carried.
    Pickup {
        mailbox: usize,
        message_id: String,
        drop: Option<u64>,
    },
    /// Append of entry `"<value>;"` to log baton number `baton`; the sequence number it was given.
    BatonAppend { baton: usize, value: u64, seq: Option<u64> },
    /// Whole read of log baton `baton`, by read-capped token number `token` (`None`: the owner);
    /// the values it held in order (`parsed` false when the bytes were not a log of ours) and the
    /// reads the token had left.
    BatonRead {
        baton: usize,
        token: Option<usize>,
        values: Option<Vec<u64>>,
        parsed: Option<bool>,
        reads_remaining: Option<u32>,
    },
    /// Whole read of budget baton `baton` (`size` bytes, a read budget of `budget` bytes, expiring
    /// at `expires_at_ms`); whether the bytes were its content.
    BudgetRead {
        baton: usize,
        size: u64,
        budget: u64,
        expires_at_ms: u64,
        body_ok: Option<bool>,
    },
    /// After the run: log baton `baton` read whole, and each token's reads as the ledger counts them.
    BatonFinal {
        baton: usize,
        values: Option<Vec<u64>>,
        reads: Vec<(usize, u32)>,
    },
    /// After the run: budget baton `baton`'s egress as the ledger counts it.
    BudgetFinal {
        baton: usize,
        egress_used: Option<u64>,
        budget: u64,
    },
    /// The witness log's verifier keys (`/.well-known/relay-witness`), read at setup.
    WitnessKeys { keys: Vec<String> },
    /// A witness checkpoint a node served: the signed note, verbatim.
    WitnessCheckpoint { note: Option<String> },
    /// A consistency proof between two tree sizes, as a node served it.
    WitnessConsistency {
        from: u64,
        to: u64,
        hashes: Option<Vec<String>>,
    },
}

/// One operation as recorded.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the history (order of completion).
    pub index: usize,
    /// The client that ran it (one operation at a time per client).
    pub client: String,
    /// The node (1-based) it was sent to.
    pub node: usize,
    pub invoke_us: u64,
    pub complete_us: u64,
    pub outcome: Outcome,
    /// HTTP status, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(flatten)]
    pub op: Op,
}

/// A clock anchored to the wall clock once, then advanced monotonically.
#[derive(Clone, Copy)]
pub struct Clock {
    start: Instant,
    start_wall_us: u64,
}

impl Clock {
    pub fn new() -> Clock {
        let start_wall_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        Clock {
            start: Instant::now(),
            start_wall_us,
        }
    }

    pub fn now_us(&self) -> u64 {
        self.start_wall_us + self.start.elapsed().as_micros() as u64
    }

    /// Seconds since the run began, for logs.
    pub fn elapsed_s(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
}

/// Shared, append-only.
#[derive(Clone, Default)]
pub struct History {
    entries: Arc<Mutex<Vec<Entry>>>,
}

/// What a client knows when an operation ends.
pub struct Completed {
    pub outcome: Outcome,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub op: Op,
}

impl History {
    pub fn record(&self, client: &str, node: usize, invoke_us: u64, complete_us: u64, done: Completed) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let index = entries.len();
        entries.push(Entry {
            index,
            client: client.to_string(),
            node,
            invoke_us,
            complete_us,
            outcome: done.outcome,
            status: done.status,
            error: done.error,
            op: done.op,
        });
    }

    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn snapshot(&self) -> Vec<Entry> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

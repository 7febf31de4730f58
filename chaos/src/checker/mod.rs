//! Checks a recorded history against Relay's promises. Each checker returns the violations it
//! found, each with the smallest slice of history that shows it.

pub mod baton;
pub mod checkpoint;
pub mod claims;
pub mod linear;
pub mod mailbox;
pub mod storage;
pub mod witness;

use serde::Serialize;

use crate::history::Entry;

#[derive(Clone, Debug, Serialize)]
pub struct Violation {
    pub checker: &'static str,
    /// The register, token, lease or mailbox it concerns.
    pub key: String,
    pub message: String,
    /// The operations that show it, in invocation order.
    pub slice: Vec<Entry>,
}

/// What the checkers need to know about the run.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    /// The largest clock offset any node had (plus rounding slack), milliseconds: how far a lease
    /// may be served past, or refused before, its `expires_at` by the wall clock.
    pub skew_bound_ms: u64,
    /// Step budget of the linearizability search per register.
    pub search_budget: u64,
}

pub fn check_all(history: &[Entry], params: Params) -> Vec<Violation> {
    let mut v = checkpoint::check(history, params);
    v.extend(claims::check(history));
    v.extend(storage::check(history, params));
    v.extend(mailbox::check(history));
    v.extend(baton::check(history, params, crate::workload::baton::READ_CAP));
    v.extend(witness::check(history));
    v
}

/// Entries by index, sorted by invocation.
pub(crate) fn slice(history: &[Entry], mut indexes: Vec<usize>) -> Vec<Entry> {
    indexes.sort_unstable();
    indexes.dedup();
    let mut out: Vec<Entry> = indexes.into_iter().map(|i| history[i].clone()).collect();
    out.sort_by_key(|e| (e.invoke_us, e.index));
    out
}

#[cfg(test)]
pub(crate) mod testing {
    use crate::history::{Entry, Op, Outcome};

    /// A hand-made history: entries get indexes in the order given.
    #[derive(Default)]
    pub struct Builder(pub Vec<Entry>);

    impl Builder {
        pub fn op(
            &mut self,
            invoke_us: u64,
            complete_us: u64,
            outcome: Outcome,
            status: Option<u16>,
            op: Op,
        ) -> &mut Self {
            let index = self.0.len();
            self.0.push(Entry {
                index,
                client: "t".into(),
                node: 1,
                invoke_us,
                complete_us,
                outcome,
                status,
                error: None,
                op,
            });
            self
        }
        pub fn ok(&mut self, invoke_us: u64, complete_us: u64, op: Op) -> &mut Self {
            self.op(invoke_us, complete_us, Outcome::Ok, Some(200), op)
        }
        pub fn fail(&mut self, invoke_us: u64, complete_us: u64, status: u16, op: Op) -> &mut Self {
            self.op(invoke_us, complete_us, Outcome::Fail, Some(status), op)
        }
        pub fn unknown(&mut self, invoke_us: u64, complete_us: u64, op: Op) -> &mut Self {
            self.op(invoke_us, complete_us, Outcome::Unknown, None, op)
        }
    }
}

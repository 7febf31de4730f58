//! Every checkpoint register's history must be linearizable (compare-and-set register model).
//! A write and its retry (one Idempotency-Key, one value) are one operation, from the first
//! attempt's invocation to the answer that settled it: the service promises one effect for both.

use std::collections::BTreeMap;

use super::linear::{self, LinOp, RegOp, State, Verdict};
use super::{slice, Params, Violation};
use crate::history::{Entry, Op, Outcome};

/// Every register is created holding `{"w": 0}` at version 1.
pub const INITIAL: State = (1, 0);

/// How many operations of the shortest failing prefix are shown.
const SLICE_TAIL: usize = 12;

pub fn check(history: &[Entry], params: Params) -> Vec<Violation> {
    let merged = merge_retries(history);
    let mut by_key: BTreeMap<&str, Vec<(usize, LinOp)>> = BTreeMap::new();
    let mut vanished = Vec::new();
    for e in &merged {
        let (key, op) = match (&e.op, e.outcome) {
            (
                Op::Read {
                    key,
                    version: Some(v),
                    value: Some(w),
                },
                Outcome::Ok,
            ) => (key, RegOp::Read((*v, *w))),
            (Op::Read { key, .. }, Outcome::Fail) if matches!(e.status, Some(404 | 410)) => {
                // Registers live for a day and are never deleted.
                vanished.push(Violation {
                    checker: "checkpoint",
                    key: key.clone(),
                    message: format!("register answered {} (it is never deleted)", e.status.unwrap_or(0)),
                    slice: slice(history, vec![e.index]),
                });
                continue;
            }
            (Op::Read { .. }, _) => continue,
            (Op::Cas { key, expect, value, .. }, Outcome::Ok | Outcome::Unknown) => (
                key,
                RegOp::Cas {
                    expect: *expect,
                    value: *value,
                },
            ),
            (Op::Cas { key, expect, .. }, Outcome::Fail) if e.status == Some(412) => {
                (key, RegOp::CasRefused { expect: *expect })
            }
            _ => continue,
        };
        let complete = (e.outcome != Outcome::Unknown).then_some(e.complete_us);
        by_key.entry(key).or_default().push((
            e.index,
            LinOp {
                invoke: e.invoke_us,
                complete,
                op,
            },
        ));
    }
    let mut violations = vanished;
    for (key, ops) in by_key {
        // An acknowledged CAS must report the version it made.
        for (i, _) in &ops {
            if let Op::Cas {
                expect,
                new_version: Some(nv),
                ..
            } = &history[*i].op
            {
                if history[*i].outcome == Outcome::Ok && *nv != expect + 1 {
                    violations.push(Violation {
                        checker: "checkpoint",
                        key: key.to_string(),
                        message: format!("CAS from version {expect} reported version {nv}"),
                        slice: slice(history, vec![*i]),
                    });
                }
            }
        }
        let lin: Vec<LinOp> = ops.iter().map(|(_, o)| o.clone()).collect();
        match linear::check(INITIAL, &lin, params.search_budget) {
            Verdict::Linearizable => {}
            Verdict::GaveUp => violations.push(Violation {
                checker: "checkpoint",
                key: key.to_string(),
                message: format!(
                    "linearizability undecided after {} search steps ({} operations)",
                    params.search_budget,
                    ops.len()
                ),
                slice: Vec::new(),
            }),
            Verdict::NotLinearizable => {
                let shown = shortest_failing_prefix(&ops, params.search_budget);
                violations.push(Violation {
                    checker: "checkpoint",
                    key: key.to_string(),
                    message: format!(
                        "not linearizable: no order of these operations explains what they returned \
                         (the shortest failing prefix has {} operations; its last {} are shown)",
                        shown.1,
                        shown.0.len()
                    ),
                    slice: slice(history, shown.0),
                });
            }
        }
    }
    violations
}

/// The history with each write's attempts (same register, same value) folded into one entry:
/// invoked when the first was, and settled by an acknowledgement, else by a 412 (a retry refused
/// by the ledger means the key's one effect was that refusal), else unknown if any attempt was.
fn merge_retries(history: &[Entry]) -> Vec<Entry> {
    let mut attempts: std::collections::HashMap<(&str, u64), Vec<&Entry>> = std::collections::HashMap::new();
    for e in history {
        if let Op::Cas { key, value, .. } = &e.op {
            attempts.entry((key.as_str(), *value)).or_default().push(e);
        }
    }
    let mut out = Vec::with_capacity(history.len());
    for e in history {
        let Op::Cas { key, value, .. } = &e.op else {
            out.push(e.clone());
            continue;
        };
        let all = &attempts[&(key.as_str(), *value)];
        if all.len() == 1 {
            out.push(e.clone());
            continue;
        }
        // Emitted once, at the first attempt's place.
        if all[0].index != e.index {
            continue;
        }
        let settled = all
            .iter()
            .find(|a| a.outcome == Outcome::Ok)
            .or_else(|| all.iter().find(|a| a.outcome == Outcome::Fail && a.status == Some(412)))
            .or_else(|| all.iter().find(|a| a.outcome == Outcome::Unknown))
            .unwrap_or(&all[0]);
        let mut one = (*settled).clone();
        one.index = e.index;
        one.invoke_us = all.iter().map(|a| a.invoke_us).min().unwrap_or(e.invoke_us);
        out.push(one);
    }
    out
}

/// The prefix of the history (operations invoked before some instant, those still running then
/// treated as unknown) that first fails; returns its last operations and its length.
fn shortest_failing_prefix(ops: &[(usize, LinOp)], budget: u64) -> (Vec<usize>, usize) {
    let mut sorted: Vec<&(usize, LinOp)> = ops.iter().collect();
    sorted.sort_by_key(|(_, o)| o.invoke);
    let mut cuts: Vec<u64> = ops.iter().filter_map(|(_, o)| o.complete).collect();
    cuts.sort_unstable();
    let prefix =
        |cut: u64| -> Vec<&(usize, LinOp)> { sorted.iter().copied().filter(|(_, o)| o.invoke <= cut).collect() };
    let fails = |cut: u64| -> bool {
        let lin: Vec<LinOp> = prefix(cut)
            .iter()
            .filter_map(|(_, o)| match o.complete {
                Some(c) if c <= cut => Some(o.clone()),
                // Still running at the cut: a read has shown nothing yet, a write may yet happen.
                _ => match o.op {
                    RegOp::Cas { .. } => Some(LinOp {
                        complete: None,
                        ..o.clone()
                    }),
                    _ => None,
                },
            })
            .collect();
        linear::check(INITIAL, &lin, budget) == Verdict::NotLinearizable
    };
    let (mut lo, mut hi) = (0usize, cuts.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if fails(cuts[mid]) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let cut = cuts.get(lo).copied().unwrap_or(u64::MAX);
    let ops = prefix(cut);
    let len = ops.len();
    let tail = ops.iter().rev().take(SLICE_TAIL).map(|(i, _)| *i).collect();
    (tail, len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::testing::Builder;

    const P: Params = Params {
        skew_bound_ms: 0,
        search_budget: 1_000_000,
    };

    fn read(v: u64, w: u64) -> Op {
        Op::Read {
            key: "r".into(),
            version: Some(v),
            value: Some(w),
        }
    }
    fn cas(expect: u64, value: u64, nv: Option<u64>) -> Op {
        Op::Cas {
            key: "r".into(),
            expect,
            value,
            new_version: nv,
        }
    }

    #[test]
    fn good_history_passes() {
        let mut h = Builder::default();
        h.ok(0, 10, read(1, 0))
            .ok(20, 30, cas(1, 5, Some(2)))
            .fail(40, 50, 412, cas(1, 6, None))
            .unknown(60, 70, cas(2, 7, None))
            .ok(80, 90, read(3, 7));
        assert!(check(&h.0, P).is_empty());
    }

    #[test]
    fn lost_acknowledged_write_is_caught_with_its_slice() {
        let mut h = Builder::default();
        h.ok(0, 10, read(1, 0)).ok(20, 30, cas(1, 5, Some(2)));
        for i in 0..30 {
            h.ok(40 + i * 10, 45 + i * 10, read(2, 5));
        }
        // After a restart the register is back at the old value.
        h.ok(1000, 1010, read(1, 0));
        let v = check(&h.0, P);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].message.contains("not linearizable"));
        assert_eq!(
            v[0].slice.last().unwrap().index,
            32,
            "the offending read ends the slice"
        );
        assert!(v[0].slice.len() <= SLICE_TAIL);
    }

    #[test]
    fn double_cas_success_and_bad_version_are_caught() {
        let mut h = Builder::default();
        h.ok(0, 100, cas(1, 5, Some(2))).ok(10, 90, cas(1, 6, Some(2)));
        assert_eq!(check(&h.0, P).len(), 1);
        let mut h = Builder::default();
        h.ok(0, 100, cas(1, 5, Some(3)));
        let v = check(&h.0, P);
        assert!(v.iter().any(|v| v.message.contains("reported version 3")), "{v:?}");
    }

    /// A lost answer, a read that sees the write, then the retry's replayed acknowledgement:
    /// one write, linearizable. Two effects of one key (the value written twice) are not.
    #[test]
    fn a_retry_is_one_write_with_its_first_attempt() {
        let mut h = Builder::default();
        h.unknown(0, 10, cas(1, 5, None))
            .ok(20, 30, read(2, 5))
            .ok(40, 50, cas(1, 5, Some(2)));
        assert!(check(&h.0, P).is_empty(), "{:?}", check(&h.0, P));
        let mut h = Builder::default();
        h.unknown(0, 10, cas(1, 5, None))
            .ok(20, 30, read(2, 5))
            .ok(40, 50, cas(2, 5, Some(3)))
            .ok(60, 70, read(3, 5));
        assert!(!check(&h.0, P).is_empty());
    }

    #[test]
    fn vanished_register_is_caught() {
        let mut h = Builder::default();
        h.fail(
            0,
            10,
            404,
            Op::Read {
                key: "r".into(),
                version: None,
                value: None,
            },
        );
        assert!(check(&h.0, P)[0].message.contains("never deleted"));
    }
}

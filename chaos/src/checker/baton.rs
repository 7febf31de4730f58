//! Batons: no acknowledged entry lost, none duplicated or reordered (each at the sequence number it
//! was given, every read a prefix of the final log holding every entry acknowledged before it
//! began); no token reading past its cap (a read that served nothing counts nothing), and the
//! ledger counting every acknowledged read; no
//! budget baton serving past its read budget, or after its `expires_at` beyond the skew bound.

use std::collections::{BTreeMap, BTreeSet};

use super::{slice, Params, Violation};
use crate::history::{Entry, Op, Outcome};

fn violation(key: String, message: String, slice: Vec<Entry>) -> Violation {
    Violation {
        checker: "baton",
        key,
        message,
        slice,
    }
}

/// The final read of a log: its index, its values, each token's count of reads.
type Final = (usize, Option<Vec<u64>>, Vec<(usize, u32)>);
/// A budget baton's successful reads, and its final count (index, egress used).
type Budget = (Vec<usize>, Option<(usize, Option<u64>)>);

#[derive(Default)]
struct Log {
    /// (index, value, seq) of acknowledged appends.
    acked: Vec<(usize, u64, Option<u64>)>,
    /// Values whose append may have happened (acknowledged or unknown).
    maybe: BTreeSet<u64>,
    reads: Vec<usize>,
    /// Per token: acknowledged reads, unknown reads.
    tokens: BTreeMap<usize, (Vec<usize>, usize)>,
    last: Option<Final>,
}

pub fn check(history: &[Entry], params: Params, read_cap: u32) -> Vec<Violation> {
    let mut logs: BTreeMap<usize, Log> = BTreeMap::new();
    let mut budgets: BTreeMap<usize, Budget> = BTreeMap::new();
    let mut violations = Vec::new();
    for e in history {
        match &e.op {
            Op::BatonAppend { baton, value, seq } => {
                let l = logs.entry(*baton).or_default();
                match e.outcome {
                    Outcome::Ok => {
                        l.acked.push((e.index, *value, *seq));
                        l.maybe.insert(*value);
                    }
                    Outcome::Unknown => {
                        l.maybe.insert(*value);
                    }
                    Outcome::Fail => {}
                }
            }
            Op::BatonRead {
                baton,
                token,
                parsed,
                values,
                ..
            } => {
                let l = logs.entry(*baton).or_default();
                if e.outcome == Outcome::Ok {
                    l.reads.push(e.index);
                    if *parsed == Some(false) {
                        violations.push(violation(
                            format!("log {baton}"),
                            "a read served bytes that are not the log's entries".into(),
                            slice(history, vec![e.index]),
                        ));
                    }
                }
                // A read that served nothing (an empty log) counts nothing.
                let served_nothing = values.as_ref().is_some_and(Vec::is_empty);
                if let (Some(t), false) = (token, served_nothing) {
                    let c = l.tokens.entry(*t).or_default();
                    match e.outcome {
                        Outcome::Ok => c.0.push(e.index),
                        Outcome::Unknown => c.1 += 1,
                        Outcome::Fail => {}
                    }
                }
            }
            Op::BatonFinal { baton, values, reads } => {
                logs.entry(*baton).or_default().last = Some((e.index, values.clone(), reads.clone()));
            }
            Op::BudgetRead {
                baton,
                expires_at_ms,
                body_ok,
                ..
            } => {
                let b = budgets.entry(*baton).or_default();
                if e.outcome == Outcome::Ok {
                    b.0.push(e.index);
                    if *body_ok == Some(false) {
                        violations.push(violation(
                            format!("budget {baton}"),
                            "a read served bytes that are not the baton's".into(),
                            slice(history, vec![e.index]),
                        ));
                    }
                    let late_us = (expires_at_ms + params.skew_bound_ms) * 1000;
                    if e.invoke_us > late_us {
                        violations.push(violation(
                            format!("budget {baton}"),
                            format!(
                                "served {} ms after expires_at (skew bound {} ms)",
                                (e.invoke_us - expires_at_ms * 1000) / 1000,
                                params.skew_bound_ms
                            ),
                            slice(history, vec![e.index]),
                        ));
                    }
                }
            }
            Op::BudgetFinal { baton, egress_used, .. } => {
                budgets.entry(*baton).or_default().1 = Some((e.index, *egress_used));
            }
            _ => {}
        }
    }
    for (baton, l) in &logs {
        violations.extend(check_log(history, *baton, l, read_cap));
    }
    for (baton, (reads, last)) in budgets {
        let key = format!("budget {baton}");
        let Some(first) = reads.first() else { continue };
        let Op::BudgetRead { size, budget, .. } = &history[*first].op else {
            continue;
        };
        let served = reads.len() as u64 * size;
        if served > *budget {
            violations.push(violation(
                key.clone(),
                format!(
                    "{} whole reads of {size} bytes served past a budget of {budget}",
                    reads.len()
                ),
                slice(history, reads.clone()),
            ));
        }
        if let Some((i, Some(used))) = last {
            if used > *budget || used < served {
                violations.push(violation(
                    key,
                    format!("the ledger counts {used} bytes of egress; {served} were served, the budget is {budget}"),
                    slice(history, vec![i]),
                ));
            }
        }
    }
    violations
}

fn check_log(history: &[Entry], baton: usize, l: &Log, read_cap: u32) -> Vec<Violation> {
    let key = format!("log {baton}");
    let mut v = Vec::new();
    for (t, (ok, _)) in &l.tokens {
        if ok.len() > read_cap as usize {
            v.push(violation(
                key.clone(),
                format!("token {t} read {} times with a cap of {read_cap}", ok.len()),
                slice(history, ok.clone()),
            ));
        }
    }
    let Some((last, Some(values), reads)) = &l.last else {
        if let Some((last, None, _)) = &l.last {
            v.push(violation(
                key,
                "the final read found no log".into(),
                slice(history, vec![*last]),
            ));
        }
        return v;
    };
    for (t, counted) in reads {
        let (ok, unknown) = l.tokens.get(t).cloned().unwrap_or_default();
        if (*counted as usize) < ok.len() || *counted as usize > ok.len() + unknown {
            v.push(violation(
                key.clone(),
                format!(
                    "token {t}: the ledger counts {counted} reads; {} were acknowledged, {unknown} unknown",
                    ok.len()
                ),
                slice(history, vec![*last]),
            ));
        }
    }
    let mut position: BTreeMap<u64, usize> = BTreeMap::new();
    for (i, value) in values.iter().enumerate() {
        if position.insert(*value, i).is_some() {
            v.push(violation(
                key.clone(),
                format!("value {value} appears twice in the log"),
                slice(history, vec![*last]),
            ));
        }
        if !l.maybe.contains(value) {
            v.push(violation(
                key.clone(),
                format!("value {value} was never appended"),
                slice(history, vec![*last]),
            ));
        }
    }
    for (i, value, seq) in &l.acked {
        match (position.get(value), seq) {
            (None, _) => v.push(violation(
                key.clone(),
                format!("acknowledged entry {value} is lost"),
                slice(history, vec![*i, *last]),
            )),
            (Some(p), Some(s)) if *p as u64 + 1 != *s => v.push(violation(
                key.clone(),
                format!("entry {value} was acknowledged as seq {s} but is at {}", p + 1),
                slice(history, vec![*i, *last]),
            )),
            _ => {}
        }
    }
    for &r in &l.reads {
        let Op::BatonRead { values: Some(seen), .. } = &history[r].op else {
            continue;
        };
        if seen.len() > values.len() || seen[..] != values[..seen.len()] {
            v.push(violation(
                key.clone(),
                "a read is not a prefix of the final log (lost or reordered entries)".into(),
                slice(history, vec![r, *last]),
            ));
            continue;
        }
        // Every entry acknowledged before the read began is in it.
        for (i, value, _) in &l.acked {
            if history[*i].complete_us < history[r].invoke_us && !seen.contains(value) {
                v.push(violation(
                    key.clone(),
                    format!("a read missed entry {value}, acknowledged before it began"),
                    slice(history, vec![*i, r]),
                ));
                break;
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::testing::Builder;

    fn params() -> Params {
        Params {
            skew_bound_ms: 100,
            search_budget: 1000,
        }
    }

    fn append(value: u64, seq: Option<u64>) -> Op {
        Op::BatonAppend { baton: 0, value, seq }
    }

    fn read(token: Option<usize>, values: Vec<u64>) -> Op {
        Op::BatonRead {
            baton: 0,
            token,
            values: Some(values),
            parsed: Some(true),
            reads_remaining: None,
        }
    }

    fn last(values: Vec<u64>, reads: Vec<(usize, u32)>) -> Op {
        Op::BatonFinal {
            baton: 0,
            values: Some(values),
            reads,
        }
    }

    #[test]
    fn good_history_passes() {
        let mut h = Builder::default();
        h.ok(0, 10, append(7, Some(1)))
            .ok(20, 30, read(Some(0), vec![7]))
            .unknown(40, 50, append(8, None))
            .ok(60, 70, read(None, vec![7, 8]))
            .ok(100, 110, last(vec![7, 8], vec![(0, 1)]));
        assert!(check(&h.0, params(), 2).is_empty(), "{:?}", check(&h.0, params(), 2));
    }

    #[test]
    fn lost_reordered_and_missed_entries_are_caught() {
        let mut h = Builder::default();
        h.ok(0, 10, append(7, Some(1))).ok(100, 110, last(vec![], vec![]));
        assert!(check(&h.0, params(), 2).iter().any(|v| v.message.contains("lost")));
        let mut h = Builder::default();
        h.ok(0, 10, append(7, Some(1)))
            .ok(0, 10, append(8, Some(2)))
            .ok(100, 110, last(vec![8, 7], vec![]));
        assert!(check(&h.0, params(), 2)
            .iter()
            .any(|v| v.message.contains("acknowledged as seq")));
        let mut h = Builder::default();
        h.ok(0, 10, append(7, Some(1)))
            .ok(20, 30, read(None, vec![]))
            .ok(100, 110, last(vec![7], vec![]));
        assert!(check(&h.0, params(), 2)
            .iter()
            .any(|v| v.message.contains("missed entry")));
    }

    #[test]
    fn reads_past_a_cap_or_a_budget_or_expiry_are_caught() {
        let mut h = Builder::default();
        h.ok(0, 5, append(5, Some(1)))
            .ok(10, 15, read(Some(0), vec![5]))
            .ok(20, 30, read(Some(0), vec![5]))
            .ok(40, 50, read(Some(0), vec![5]))
            .ok(60, 70, read(Some(0), vec![]))
            .ok(100, 110, last(vec![5], vec![(0, 3)]));
        assert!(check(&h.0, params(), 2).iter().any(|v| v.message.contains("cap of 2")));
        let budget = |expires_at_ms| Op::BudgetRead {
            baton: 0,
            size: 10,
            budget: 20,
            expires_at_ms,
            body_ok: Some(true),
        };
        let mut h = Builder::default();
        h.ok(0, 10, budget(1_000))
            .ok(0, 10, budget(1_000))
            .ok(0, 10, budget(1_000));
        assert!(check(&h.0, params(), 2)
            .iter()
            .any(|v| v.message.contains("past a budget")));
        let mut h = Builder::default();
        h.ok(2_000_000, 2_000_010, budget(1_000));
        assert!(check(&h.0, params(), 2)
            .iter()
            .any(|v| v.message.contains("after expires_at")));
    }
}

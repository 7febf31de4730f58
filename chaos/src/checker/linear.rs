//! Linearizability of one compare-and-set register, by the Wing–Gong search with Lowe's
//! memoisation (the algorithm Porcupine and Knossos use).
//!
//! Calls and returns are laid out in time order; the search repeatedly linearizes the earliest
//! call that the model accepts, and backtracks when it meets the return of an operation it has not
//! linearized. Each (set of linearized operations, register state) pair is explored once.
//! Operations of unknown outcome never return: they may take effect at any point after their call,
//! or never.

use std::collections::HashSet;

/// The register: its version and the value (the unique number a write stored).
pub type State = (u64, u64);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegOp {
    /// A read that returned this state.
    Read(State),
    /// A compare-and-set that was acknowledged (or may have been): version `expect` → `expect + 1`
    /// holding `value`.
    Cas { expect: u64, value: u64 },
    /// A compare-and-set refused with 412: the version was not `expect`.
    CasRefused { expect: u64 },
}

#[derive(Clone, Debug)]
pub struct LinOp {
    pub invoke: u64,
    /// `None`: the outcome is unknown and the operation may still take effect.
    pub complete: Option<u64>,
    pub op: RegOp,
}

fn step(s: State, op: &RegOp) -> Option<State> {
    match *op {
        RegOp::Read(seen) => (seen == s).then_some(s),
        RegOp::Cas { expect, value } => (s.0 == expect).then_some((expect + 1, value)),
        RegOp::CasRefused { expect } => (s.0 != expect).then_some(s),
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    NotLinearizable,
    /// The search exceeded its step budget without an answer.
    GaveUp,
}

const NONE: usize = usize::MAX;

struct Ev {
    op: usize,
    call: bool,
    /// The matching return of a call (NONE for pending operations and for returns).
    ret: usize,
    prev: usize,
    next: usize,
}

/// Decides whether `ops`, starting from `init`, has a linearization; at most `budget` steps.
pub fn check(init: State, ops: &[LinOp], budget: u64) -> Verdict {
    // Events in time order; at equal times calls come first (the more permissive reading).
    let mut order: Vec<(u64, bool, usize)> = Vec::with_capacity(ops.len() * 2);
    for (i, op) in ops.iter().enumerate() {
        order.push((op.invoke, false, i));
        if let Some(c) = op.complete {
            order.push((c.max(op.invoke), true, i));
        }
    }
    order.sort();
    // Index 0 is the list head sentinel.
    let mut ev: Vec<Ev> = vec![Ev {
        op: NONE,
        call: false,
        ret: NONE,
        prev: NONE,
        next: NONE,
    }];
    let mut call_at = vec![NONE; ops.len()];
    for (_, is_return, op) in &order {
        let idx = ev.len();
        ev.push(Ev {
            op: *op,
            call: !is_return,
            ret: NONE,
            prev: idx - 1,
            next: NONE,
        });
        ev[idx - 1].next = idx;
        if *is_return {
            let c = call_at[*op];
            ev[c].ret = idx;
        } else {
            call_at[*op] = idx;
        }
    }
    let mut returns_left = ops.iter().filter(|o| o.complete.is_some()).count();
    let words = ops.len().div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut cache: HashSet<(Vec<u64>, State)> = HashSet::new();
    let mut stack: Vec<(usize, State)> = Vec::new();
    let mut state = init;
    let mut cur = ev[0].next;
    let mut steps = 0u64;

    fn unlink(ev: &mut [Ev], i: usize) {
        let (p, n) = (ev[i].prev, ev[i].next);
        ev[p].next = n;
        if n != NONE {
            ev[n].prev = p;
        }
    }
    fn relink(ev: &mut [Ev], i: usize) {
        let (p, n) = (ev[i].prev, ev[i].next);
        ev[p].next = i;
        if n != NONE {
            ev[n].prev = i;
        }
    }

    while returns_left > 0 {
        steps += 1;
        if steps > budget {
            return Verdict::GaveUp;
        }
        if cur != NONE && ev[cur].call {
            let op = ev[cur].op;
            if let Some(next_state) = step(state, &ops[op].op) {
                let mut set = linearized.clone();
                set[op / 64] |= 1 << (op % 64);
                if cache.insert((set.clone(), next_state)) {
                    stack.push((cur, state));
                    state = next_state;
                    linearized = set;
                    unlink(&mut ev, cur);
                    if ev[cur].ret != NONE {
                        let r = ev[cur].ret;
                        unlink(&mut ev, r);
                        returns_left -= 1;
                    }
                    cur = ev[0].next;
                    continue;
                }
            }
            cur = ev[cur].next;
        } else {
            // A return (or the end) reached with its operation not linearized: undo the latest choice.
            let Some((c, s)) = stack.pop() else {
                return Verdict::NotLinearizable;
            };
            state = s;
            let op = ev[c].op;
            linearized[op / 64] &= !(1 << (op % 64));
            if ev[c].ret != NONE {
                let r = ev[c].ret;
                relink(&mut ev, r);
                returns_left += 1;
            }
            relink(&mut ev, c);
            cur = ev[c].next;
        }
    }
    Verdict::Linearizable
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(invoke: u64, complete: Option<u64>, op: RegOp) -> LinOp {
        LinOp { invoke, complete, op }
    }

    #[test]
    fn sequential_history_is_linearizable() {
        let ops = vec![
            op(0, Some(1), RegOp::Read((1, 0))),
            op(2, Some(3), RegOp::Cas { expect: 1, value: 7 }),
            op(4, Some(5), RegOp::Read((2, 7))),
            op(6, Some(7), RegOp::CasRefused { expect: 1 }),
        ];
        assert_eq!(check((1, 0), &ops, 1_000_000), Verdict::Linearizable);
    }

    #[test]
    fn stale_read_after_acknowledged_write_is_rejected() {
        let ops = vec![
            op(0, Some(1), RegOp::Cas { expect: 1, value: 7 }),
            op(2, Some(3), RegOp::Read((1, 0))),
        ];
        assert_eq!(check((1, 0), &ops, 1_000_000), Verdict::NotLinearizable);
    }

    #[test]
    fn concurrent_operations_may_reorder() {
        // The read overlaps the write, so it may see either state.
        let ops = vec![
            op(0, Some(10), RegOp::Cas { expect: 1, value: 7 }),
            op(1, Some(2), RegOp::Read((2, 7))),
            op(3, Some(4), RegOp::Read((2, 7))),
        ];
        assert_eq!(check((1, 0), &ops, 1_000_000), Verdict::Linearizable);
    }

    #[test]
    fn two_successful_cas_from_one_version_are_rejected() {
        let ops = vec![
            op(0, Some(10), RegOp::Cas { expect: 1, value: 7 }),
            op(1, Some(11), RegOp::Cas { expect: 1, value: 8 }),
        ];
        assert_eq!(check((1, 0), &ops, 1_000_000), Verdict::NotLinearizable);
    }

    #[test]
    fn unknown_writes_may_or_may_not_happen() {
        let happened = vec![
            op(0, None, RegOp::Cas { expect: 1, value: 7 }),
            op(5, Some(6), RegOp::Read((2, 7))),
        ];
        assert_eq!(check((1, 0), &happened, 1_000_000), Verdict::Linearizable);
        let did_not = vec![
            op(0, None, RegOp::Cas { expect: 1, value: 7 }),
            op(5, Some(6), RegOp::Read((1, 0))),
        ];
        assert_eq!(check((1, 0), &did_not, 1_000_000), Verdict::Linearizable);
        // But once seen it cannot be unseen.
        let flicker = vec![
            op(0, None, RegOp::Cas { expect: 1, value: 7 }),
            op(5, Some(6), RegOp::Read((2, 7))),
            op(7, Some(8), RegOp::Read((1, 0))),
        ];
        assert_eq!(check((1, 0), &flicker, 1_000_000), Verdict::NotLinearizable);
    }

    #[test]
    fn refused_cas_must_have_seen_another_version() {
        let ops = vec![
            op(0, Some(1), RegOp::CasRefused { expect: 1 }),
            op(2, Some(3), RegOp::Read((1, 0))),
        ];
        assert_eq!(check((1, 0), &ops, 1_000_000), Verdict::NotLinearizable);
    }

    #[test]
    fn a_value_never_written_is_rejected() {
        let ops = vec![op(0, Some(1), RegOp::Read((2, 99)))];
        assert_eq!(check((1, 0), &ops, 1_000_000), Verdict::NotLinearizable);
    }

    #[test]
    fn budget_is_honoured() {
        let ops: Vec<LinOp> = (0..40)
            .map(|i| {
                op(
                    0,
                    Some(1000),
                    RegOp::Cas {
                        expect: 1 + i,
                        value: i + 100,
                    },
                )
            })
            .collect();
        assert_eq!(check((1, 0), &ops, 1_000_000), Verdict::Linearizable);
        assert_eq!(check((1, 0), &ops, 3), Verdict::GaveUp);
    }
}

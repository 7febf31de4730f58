//! Handoff claims: never more successes than `max_claims`, each success a distinct claim (its
//! `X-Claims-Remaining` unique and below the maximum), the right bytes, and after the final
//! restart the ledger still counts every acknowledged claim.

use std::collections::BTreeMap;

use super::{slice, Violation};
use crate::history::{Entry, Op, Outcome};

#[derive(Default)]
struct Token {
    max: u32,
    ok: Vec<usize>,
    unknown: usize,
    probe: Option<(usize, u32)>,
}

pub fn check(history: &[Entry]) -> Vec<Violation> {
    let mut tokens: BTreeMap<usize, Token> = BTreeMap::new();
    let mut violations = Vec::new();
    for e in history {
        match &e.op {
            Op::Claim {
                token,
                max_claims,
                remaining,
                body_ok,
            } => {
                let t = tokens.entry(*token).or_default();
                t.max = *max_claims;
                match e.outcome {
                    Outcome::Ok => {
                        t.ok.push(e.index);
                        if *body_ok == Some(false) {
                            violations.push(Violation {
                                checker: "claims",
                                key: format!("token {token}"),
                                message: "a claim served bytes that are not the lease's".into(),
                                slice: slice(history, vec![e.index]),
                            });
                        }
                        let _ = remaining;
                    }
                    Outcome::Unknown => t.unknown += 1,
                    Outcome::Fail => {}
                }
            }
            Op::ClaimProbe {
                token,
                max_claims,
                remaining: Some(r),
            } => {
                let t = tokens.entry(*token).or_default();
                t.max = *max_claims;
                t.probe = Some((e.index, *r));
            }
            _ => {}
        }
    }
    for (token, t) in tokens {
        let key = format!("token {token}");
        if t.ok.len() > t.max as usize {
            violations.push(Violation {
                checker: "claims",
                key: key.clone(),
                message: format!("{} successful claims of a token allowing {}", t.ok.len(), t.max),
                slice: slice(history, t.ok.clone()),
            });
        }
        let mut seen: BTreeMap<u32, usize> = BTreeMap::new();
        for &i in &t.ok {
            let Op::Claim { remaining, .. } = &history[i].op else {
                continue;
            };
            match remaining {
                Some(r) if *r >= t.max => violations.push(Violation {
                    checker: "claims",
                    key: key.clone(),
                    message: format!("a claim reported {r} claims remaining of {}", t.max),
                    slice: slice(history, vec![i]),
                }),
                Some(r) => {
                    if let Some(first) = seen.insert(*r, i) {
                        violations.push(Violation {
                            checker: "claims",
                            key: key.clone(),
                            message: format!("two successful claims both left {r} remaining: one claim counted twice"),
                            slice: slice(history, vec![first, i]),
                        });
                    }
                }
                None => {}
            }
        }
        if let Some((probe, remaining)) = t.probe {
            let used = t.max.saturating_sub(remaining) as usize;
            if used < t.ok.len() {
                let mut s = t.ok.clone();
                s.push(probe);
                violations.push(Violation {
                    checker: "claims",
                    key: key.clone(),
                    message: format!(
                        "after the final restart the ledger counts {used} claims, but {} were acknowledged",
                        t.ok.len()
                    ),
                    slice: slice(history, s),
                });
            }
            if used > t.ok.len() + t.unknown {
                violations.push(Violation {
                    checker: "claims",
                    key,
                    message: format!(
                        "the ledger counts {used} claims, more than the {} acknowledged and {} unknown",
                        t.ok.len(),
                        t.unknown
                    ),
                    slice: slice(history, vec![probe]),
                });
            }
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::testing::Builder;

    fn claim(remaining: Option<u32>) -> Op {
        Op::Claim {
            token: 0,
            max_claims: 2,
            remaining,
            body_ok: Some(true),
        }
    }
    fn probe(remaining: u32) -> Op {
        Op::ClaimProbe {
            token: 0,
            max_claims: 2,
            remaining: Some(remaining),
        }
    }

    #[test]
    fn good_history_passes() {
        let mut h = Builder::default();
        h.ok(0, 10, claim(Some(1)))
            .ok(5, 15, claim(Some(0)))
            .fail(20, 30, 410, claim(None))
            .ok(100, 110, probe(0));
        assert!(check(&h.0).is_empty());
    }

    #[test]
    fn over_claiming_is_caught() {
        let mut h = Builder::default();
        h.ok(0, 10, claim(Some(1)))
            .ok(5, 15, claim(Some(0)))
            .ok(20, 30, claim(None));
        let v = check(&h.0);
        assert!(v.iter().any(|v| v.message.contains("3 successful claims")), "{v:?}");
    }

    #[test]
    fn duplicate_remaining_is_caught() {
        let mut h = Builder::default();
        h.ok(0, 10, claim(Some(1))).ok(5, 15, claim(Some(1)));
        let v = check(&h.0);
        assert!(v.iter().any(|v| v.message.contains("counted twice")), "{v:?}");
    }

    #[test]
    fn forgotten_claim_and_wrong_bytes_are_caught() {
        let mut h = Builder::default();
        h.ok(0, 10, claim(Some(1))).ok(100, 110, probe(2));
        let v = check(&h.0);
        assert!(v.iter().any(|v| v.message.contains("counts 0 claims")), "{v:?}");
        let mut h = Builder::default();
        h.ok(
            0,
            10,
            Op::Claim {
                token: 0,
                max_claims: 2,
                remaining: Some(1),
                body_ok: Some(false),
            },
        );
        assert_eq!(check(&h.0).len(), 1);
    }

    #[test]
    fn invented_claims_are_caught() {
        let mut h = Builder::default();
        h.ok(0, 10, claim(Some(1))).ok(100, 110, probe(0));
        let v = check(&h.0);
        assert!(v.iter().any(|v| v.message.contains("more than")), "{v:?}");
    }
}

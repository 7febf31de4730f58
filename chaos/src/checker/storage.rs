//! Storage leases: an acknowledged create is readable, with its exact bytes, from its
//! acknowledgement until its `expires_at` unless deleted; nothing is served after `expires_at`
//! (beyond the skew bound) or after an acknowledged delete. A create and its retry (one
//! Idempotency-Key, one body) make one lease: every acknowledgement names the same lease, and the
//! final census finds no body with two.

use std::collections::HashMap;

use super::{slice, Params, Violation};
use crate::history::{Entry, Op, Outcome};

struct Lease {
    create: usize,
    created_us: u64,
    expires_us: u64,
    /// Deletes that may have happened: (index, invoke, complete, acknowledged).
    deletes: Vec<(usize, u64, u64, bool)>,
}

pub fn check(history: &[Entry], params: Params) -> Vec<Violation> {
    let bound_us = params.skew_bound_ms * 1000;
    let mut leases: HashMap<&str, Lease> = HashMap::new();
    for e in history {
        if let (
            Op::Create {
                lease_id: Some(id),
                expires_at_ms: Some(exp),
                ..
            },
            Outcome::Ok,
        ) = (&e.op, e.outcome)
        {
            leases.insert(
                id,
                Lease {
                    create: e.index,
                    created_us: e.complete_us,
                    expires_us: exp * 1000,
                    deletes: Vec::new(),
                },
            );
        }
    }
    for e in history {
        if let Op::Delete { lease_id } = &e.op {
            // A refused delete removed nothing (and is judged like a read below).
            if e.outcome != Outcome::Fail {
                if let Some(l) = leases.get_mut(lease_id.as_str()) {
                    l.deletes
                        .push((e.index, e.invoke_us, e.complete_us, e.outcome == Outcome::Ok));
                }
            }
        }
    }
    let mut violations = once(history);
    for e in history {
        let (lease_id, body_ok) = match &e.op {
            Op::Download { lease_id, body_ok, .. } => (lease_id, *body_ok),
            Op::Delete { lease_id } if e.outcome == Outcome::Fail => (lease_id, None),
            _ => continue,
        };
        let Some(l) = leases.get(lease_id.as_str()) else {
            continue;
        };
        let key = lease_id.clone();
        let mut show = |message: String, extra: Vec<usize>| {
            let mut s = vec![l.create, e.index];
            s.extend(extra);
            violations.push(Violation {
                checker: "storage",
                key: key.clone(),
                message,
                slice: slice(history, s),
            });
        };
        match e.outcome {
            Outcome::Ok => {
                if body_ok == Some(false) {
                    show("a download served bytes that are not the ones stored".into(), vec![]);
                }
                if e.invoke_us > l.expires_us + bound_us {
                    show(
                        format!(
                            "served {} ms after expires_at (skew bound {} ms)",
                            (e.invoke_us - l.expires_us) / 1000,
                            params.skew_bound_ms
                        ),
                        vec![],
                    );
                }
                if let Some(d) = l.deletes.iter().find(|d| d.3 && d.2 < e.invoke_us) {
                    show("served after an acknowledged delete".into(), vec![d.0]);
                }
            }
            Outcome::Fail if matches!(e.status, Some(404 | 410)) => {
                let deleted_before = l.deletes.iter().any(|d| d.1 < e.complete_us);
                if !deleted_before && e.invoke_us >= l.created_us && e.complete_us + bound_us < l.expires_us {
                    show(
                        format!(
                            "acknowledged lease answered {} {} ms before its expires_at, never deleted",
                            e.status.unwrap_or(0),
                            (l.expires_us - e.complete_us) / 1000
                        ),
                        vec![],
                    );
                }
            }
            _ => {}
        }
    }
    violations
}

/// One effect per body: acknowledged creates of a body agree on its lease, and the census found
/// no body with more than one.
fn once(history: &[Entry]) -> Vec<Violation> {
    let mut violations = Vec::new();
    let mut first: HashMap<u64, (usize, &str)> = HashMap::new();
    for e in history {
        match (&e.op, e.outcome) {
            (
                Op::Create {
                    body,
                    lease_id: Some(id),
                    ..
                },
                Outcome::Ok,
            ) => match first.get(body) {
                Some((at, other)) if *other != id.as_str() => violations.push(Violation {
                    checker: "storage",
                    key: format!("body {body}"),
                    message: format!("one Idempotency-Key acknowledged two leases: {other} and {id}"),
                    slice: slice(history, vec![*at, e.index]),
                }),
                Some(_) => {}
                None => {
                    first.insert(*body, (e.index, id));
                }
            },
            (Op::Census { duplicated }, _) => {
                for (body, leases) in duplicated {
                    let mut s = vec![e.index];
                    s.extend(
                        history
                            .iter()
                            .filter(|c| matches!(&c.op, Op::Create { body: b, .. } if b == body))
                            .map(|c| c.index),
                    );
                    violations.push(Violation {
                        checker: "storage",
                        key: format!("body {body}"),
                        message: format!("one Idempotency-Key made {leases} leases"),
                        slice: slice(history, s),
                    });
                }
            }
            _ => {}
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::testing::Builder;

    const P: Params = Params {
        skew_bound_ms: 100,
        search_budget: 1,
    };

    fn create(exp_ms: u64) -> Op {
        Op::Create {
            body: 1,
            lease_id: Some("L".into()),
            expires_at_ms: Some(exp_ms),
        }
    }
    fn download(ok: bool) -> Op {
        Op::Download {
            lease_id: "L".into(),
            body: 1,
            body_ok: Some(ok),
        }
    }
    fn delete() -> Op {
        Op::Delete { lease_id: "L".into() }
    }

    #[test]
    fn good_history_passes() {
        let mut h = Builder::default();
        h.ok(0, 1_000, create(5_000))
            .ok(2_000, 3_000, download(true))
            // Expired: refused after expiry, also within the skew bound either side.
            .fail(4_950_000, 4_960_000, 410, download(false))
            .ok(5_050_000, 5_060_000, download(true))
            .fail(6_000_000, 6_001_000, 404, download(false));
        assert!(check(&h.0, P).is_empty(), "{:?}", check(&h.0, P));
    }

    #[test]
    fn serving_after_expiry_is_caught() {
        let mut h = Builder::default();
        h.ok(0, 1_000, create(5_000)).ok(5_200_000, 5_201_000, download(true));
        let v = check(&h.0, P);
        assert_eq!(v.len(), 1);
        assert!(v[0].message.contains("after expires_at"));
        assert_eq!(v[0].slice.len(), 2);
    }

    #[test]
    fn lost_lease_and_corrupt_bytes_are_caught() {
        let mut h = Builder::default();
        h.ok(0, 1_000, create(5_000))
            .fail(2_000, 3_000, 404, download(false))
            .ok(4_000, 5_000, download(false));
        let v = check(&h.0, P);
        assert_eq!(v.len(), 2, "{v:?}");
        // A delete refused as unknown before expiry also means the lease was lost.
        let mut h = Builder::default();
        h.ok(0, 1_000, create(5_000)).fail(2_000, 3_000, 404, delete());
        assert_eq!(check(&h.0, P).len(), 1);
    }

    #[test]
    fn two_effects_of_one_key_are_caught() {
        let other = Op::Create {
            body: 1,
            lease_id: Some("M".into()),
            expires_at_ms: Some(5_000),
        };
        let mut h = Builder::default();
        h.unknown(0, 1_000, create(5_000)).ok(1_000, 2_000, create(5_000));
        assert!(check(&h.0, P).is_empty());
        h.ok(2_000, 3_000, other);
        assert!(check(&h.0, P)[0].message.contains("two leases"));
        let mut h = Builder::default();
        h.unknown(0, 1_000, create(5_000)).ok(1_000, 2_000, create(5_000)).ok(
            9_000,
            9_000,
            Op::Census {
                duplicated: vec![(1, 2)],
            },
        );
        let v = check(&h.0, P);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].message.contains("made 2 leases"));
    }

    #[test]
    fn deletes_excuse_absence_but_not_serving() {
        let mut h = Builder::default();
        h.ok(0, 1_000, create(5_000))
            .unknown(2_000, 3_000, delete())
            .fail(4_000, 5_000, 404, download(false))
            .ok(6_000, 7_000, delete());
        assert!(check(&h.0, P).is_empty());
        let mut h = Builder::default();
        h.ok(0, 1_000, create(5_000))
            .ok(2_000, 3_000, delete())
            .ok(4_000, 5_000, download(true));
        let v = check(&h.0, P);
        assert!(v[0].message.contains("acknowledged delete"), "{v:?}");
    }
}

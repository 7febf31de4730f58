//! Mailboxes: every picked-up message was dropped (never invented), into that mailbox, and is
//! picked up at most once; every acknowledged drop is picked up by the end (the run drains every
//! mailbox after the final restart) unless a pickup of it had an unknown outcome. A drop and its
//! retry (one Idempotency-Key, one body) make one message: it is picked up once, under the id
//! any acknowledgement gave.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{slice, Violation};
use crate::history::{Entry, Op, Outcome};

pub fn check(history: &[Entry]) -> Vec<Violation> {
    let mut violations = Vec::new();
    // drop number → the attempt that speaks for it: an acknowledged one, else one that may have
    // happened, else the refused first (a retry refused as in flight does not undo the first).
    let mut drops: HashMap<u64, &Entry> = HashMap::new();
    let mut picked: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    let mut unknown_pickups: HashSet<(usize, &str)> = HashSet::new();
    for e in history {
        if let Op::Drop { drop, .. } = &e.op {
            let rank = |e: &Entry| match e.outcome {
                Outcome::Ok => 2,
                Outcome::Unknown => 1,
                Outcome::Fail => 0,
            };
            let speaks = drops.get(drop).is_none_or(|prev| rank(e) > rank(prev));
            if speaks {
                drops.insert(*drop, e);
            }
        }
    }
    for e in history {
        let Op::Pickup {
            mailbox,
            message_id,
            drop,
        } = &e.op
        else {
            continue;
        };
        match e.outcome {
            Outcome::Unknown => {
                unknown_pickups.insert((*mailbox, message_id.as_str()));
            }
            Outcome::Ok => {
                let Some(d) = drop else {
                    violations.push(Violation {
                        checker: "mailbox",
                        key: format!("mailbox {mailbox}"),
                        message: "picked up a message whose body no client dropped".into(),
                        slice: slice(history, vec![e.index]),
                    });
                    continue;
                };
                picked.entry(*d).or_default().push(e.index);
                match drops.get(d) {
                    None => violations.push(Violation {
                        checker: "mailbox",
                        key: format!("mailbox {mailbox}"),
                        message: format!("picked up drop {d}, which was never attempted"),
                        slice: slice(history, vec![e.index]),
                    }),
                    Some(src) => {
                        let Op::Drop {
                            mailbox: m,
                            message_id: id,
                            ..
                        } = &src.op
                        else {
                            continue;
                        };
                        let wrong = if src.outcome == Outcome::Fail {
                            Some("a drop that was refused".to_string())
                        } else if m != mailbox {
                            Some(format!("a drop made into mailbox {m}"))
                        } else if id.as_ref().is_some_and(|id| id != message_id) {
                            Some(format!(
                                "under id {message_id}, but the drop was acknowledged as {}",
                                id.as_deref().unwrap_or("")
                            ))
                        } else if src.invoke_us > e.complete_us {
                            Some("before it was dropped".into())
                        } else {
                            None
                        };
                        if let Some(what) = wrong {
                            violations.push(Violation {
                                checker: "mailbox",
                                key: format!("mailbox {mailbox}"),
                                message: format!("picked up drop {d}: {what}"),
                                slice: slice(history, vec![src.index, e.index]),
                            });
                        }
                    }
                }
            }
            Outcome::Fail => {}
        }
    }
    for (d, pickups) in &picked {
        if pickups.len() > 1 {
            let mut s = pickups.clone();
            if let Some(src) = drops.get(d) {
                s.push(src.index);
            }
            violations.push(Violation {
                checker: "mailbox",
                key: format!("drop {d}"),
                message: format!("one message picked up {} times", pickups.len()),
                slice: slice(history, s),
            });
        }
    }
    let mut lost: Vec<&&Entry> = drops
        .values()
        .filter(|e| e.outcome == Outcome::Ok)
        .filter(|e| {
            let Op::Drop {
                mailbox,
                drop,
                message_id,
            } = &e.op
            else {
                return false;
            };
            !picked.contains_key(drop)
                && !message_id
                    .as_deref()
                    .is_some_and(|id| unknown_pickups.contains(&(*mailbox, id)))
        })
        .collect();
    lost.sort_by_key(|e| e.index);
    for e in lost {
        let Op::Drop { mailbox, drop, .. } = &e.op else {
            continue;
        };
        violations.push(Violation {
            checker: "mailbox",
            key: format!("mailbox {mailbox}"),
            message: format!("acknowledged drop {drop} was never picked up, not even after the final drain"),
            slice: slice(history, vec![e.index]),
        });
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::testing::Builder;

    fn drop_op(drop: u64, id: &str) -> Op {
        Op::Drop {
            mailbox: 0,
            drop,
            message_id: Some(id.into()),
        }
    }
    fn pickup(id: &str, drop: u64) -> Op {
        Op::Pickup {
            mailbox: 0,
            message_id: id.into(),
            drop: Some(drop),
        }
    }

    #[test]
    fn good_history_passes() {
        let mut h = Builder::default();
        h.ok(0, 10, drop_op(1, "msg_1"))
            .unknown(
                5,
                15,
                Op::Drop {
                    mailbox: 0,
                    drop: 2,
                    message_id: None,
                },
            )
            .ok(20, 30, pickup("msg_2", 2))
            .ok(40, 50, pickup("msg_1", 1))
            .ok(60, 70, drop_op(3, "msg_3"))
            .unknown(
                80,
                90,
                Op::Pickup {
                    mailbox: 0,
                    message_id: "msg_3".into(),
                    drop: None,
                },
            );
        assert!(check(&h.0).is_empty(), "{:?}", check(&h.0));
    }

    #[test]
    fn duplicate_and_invented_pickups_are_caught() {
        let mut h = Builder::default();
        h.ok(0, 10, drop_op(1, "msg_1"))
            .ok(20, 30, pickup("msg_1", 1))
            .ok(40, 50, pickup("msg_1", 1));
        let v = check(&h.0);
        assert!(v.iter().any(|v| v.message.contains("picked up 2 times")), "{v:?}");
        let mut h = Builder::default();
        h.ok(20, 30, pickup("msg_9", 9));
        assert!(check(&h.0)[0].message.contains("never attempted"));
        let mut h = Builder::default();
        h.fail(
            0,
            10,
            429,
            Op::Drop {
                mailbox: 0,
                drop: 1,
                message_id: None,
            },
        )
        .ok(20, 30, pickup("msg_1", 1));
        assert!(check(&h.0)[0].message.contains("refused"));
    }

    #[test]
    fn lost_drop_is_caught() {
        let mut h = Builder::default();
        h.ok(0, 10, drop_op(1, "msg_1"))
            .ok(0, 10, drop_op(2, "msg_2"))
            .ok(20, 30, pickup("msg_2", 2));
        let v = check(&h.0);
        assert_eq!(v.len(), 1);
        assert!(v[0].message.contains("acknowledged drop 1"));
    }
}

//! Faults, one at a time: start one, hold it, lift it, rest, repeat; every step logged with its
//! time. All random choices come from the run's seeded generator (thread timing is not, so a
//! replay repeats the faults and the operation mix, not the exact interleaving).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use serde::Serialize;
use tokio::sync::Mutex as AsyncMutex;
use tokio::time::Instant;

use crate::cluster::Cluster;
use crate::history::Clock;
use crate::ChaosError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Nemesis {
    /// SIGKILL a node (often the leader), restart it with its data.
    Kill,
    /// SIGSTOP a node, SIGCONT it later.
    Pause,
    /// Cut links: isolate the leader, split majority/minority, one-way, or a bridge.
    Partition,
    /// A multi-region profile: 1 ms within a region, 40–80 ms between.
    Latency,
    /// Move node clocks by up to ±max-skew.
    Skew,
}

#[derive(Clone, Debug, Serialize)]
pub struct Event {
    pub at_s: f64,
    pub nemesis: String,
    pub action: &'static str,
    pub detail: String,
}

#[derive(Clone)]
pub struct EventLog {
    clock: Clock,
    events: Arc<Mutex<Vec<Event>>>,
    json: bool,
}

impl EventLog {
    pub fn new(clock: Clock, json: bool) -> EventLog {
        EventLog {
            clock,
            events: Arc::default(),
            json,
        }
    }

    pub fn log(&self, nemesis: &str, action: &'static str, detail: String) {
        let e = Event {
            at_s: (self.clock.elapsed_s() * 1000.0).round() / 1000.0,
            nemesis: nemesis.to_string(),
            action,
            detail,
        };
        if self.json {
            eprintln!("{}", serde_json::json!({ "event": e }));
        } else {
            eprintln!("[{:>8.3}s] nemesis {} {}: {}", e.at_s, e.nemesis, e.action, e.detail);
        }
        self.events.lock().unwrap_or_else(|e| e.into_inner()).push(e);
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

pub struct Schedule {
    pub nemeses: Vec<Nemesis>,
    /// Faults last 1–2 intervals, with 0.5–1.5 intervals of calm between.
    pub interval: Duration,
    pub max_skew_ms: i64,
}

/// Runs faults until `until`, then lifts whatever is active.
pub async fn run(
    cluster: Arc<AsyncMutex<Cluster>>,
    schedule: Schedule,
    mut rng: StdRng,
    log: EventLog,
    until: Instant,
) -> Result<(), ChaosError> {
    if schedule.nemeses.is_empty() {
        return Ok(());
    }
    let iv = schedule.interval.as_secs_f64();
    // Nemeses are drawn from a shuffled bag, refilled when empty, so every one gets its turn.
    let mut bag: Vec<Nemesis> = Vec::new();
    loop {
        let calm = Duration::from_secs_f64(rng.random_range(0.5 * iv..1.5 * iv));
        if Instant::now() + calm >= until {
            break;
        }
        tokio::time::sleep(calm).await;
        if bag.is_empty() {
            bag = schedule.nemeses.clone();
            bag.shuffle(&mut rng);
        }
        let nemesis = bag.pop().expect("refilled");
        let hold = Duration::from_secs_f64(rng.random_range(iv..2.0 * iv));
        let name = format!("{nemesis:?}").to_lowercase();
        let lift = start(&cluster, nemesis, &schedule, &mut rng, &log, &name).await?;
        tokio::time::sleep_until((Instant::now() + hold).min(until)).await;
        let mut c = cluster.lock().await;
        lift(&mut c)?;
        log.log(&name, "stop", "lifted".into());
        drop(c);
    }
    Ok(())
}

type Lift = Box<dyn FnOnce(&mut Cluster) -> Result<(), ChaosError> + Send>;

/// Starts one fault and returns how to lift it.
async fn start(
    cluster: &AsyncMutex<Cluster>,
    nemesis: Nemesis,
    schedule: &Schedule,
    rng: &mut StdRng,
    log: &EventLog,
    name: &str,
) -> Result<Lift, ChaosError> {
    let leader = cluster.lock().await.leader().await;
    let mut c = cluster.lock().await;
    let n = c.len();
    // Half the time the fault aims at the leader, where it hurts most.
    let target = match leader {
        Some(l) if rng.random_bool(0.5) => l,
        _ => rng.random_range(0..n),
    };
    let role = |i: usize| if Some(i) == leader { " (leader)" } else { "" };
    let lift: Lift = match nemesis {
        Nemesis::Kill => {
            c.kill(target);
            log.log(name, "start", format!("SIGKILL node {}{}", target + 1, role(target)));
            Box::new(move |c: &mut Cluster| c.restart(target))
        }
        Nemesis::Pause => {
            c.pause(target);
            log.log(name, "start", format!("SIGSTOP node {}{}", target + 1, role(target)));
            Box::new(move |c: &mut Cluster| {
                c.resume(target);
                Ok(())
            })
        }
        Nemesis::Partition => {
            let mut order: Vec<usize> = (0..n).collect();
            order.shuffle(rng);
            let detail = match rng.random_range(0..4) {
                0 => {
                    let l = leader.unwrap_or(target);
                    for j in (0..n).filter(|&j| j != l) {
                        cut(&c, l, j);
                    }
                    format!("isolate node {}{}", l + 1, role(l))
                }
                1 => {
                    let minority = &order[..(n - 1) / 2];
                    for &a in minority {
                        for b in (0..n).filter(|b| !minority.contains(b)) {
                            cut(&c, a, b);
                        }
                    }
                    format!("split minority {:?} from the rest", ids(minority))
                }
                2 => {
                    let (a, b) = (target, order.iter().copied().find(|&b| b != target).unwrap_or(0));
                    one_way(&c, a, b);
                    format!("one-way: node {}{} → node {} dropped", a + 1, role(a), b + 1)
                }
                _ => {
                    let bridge = order[0];
                    let rest = &order[1..];
                    let (left, right) = rest.split_at(rest.len() / 2);
                    for &a in left {
                        for &b in right {
                            cut(&c, a, b);
                        }
                    }
                    format!("bridge: {:?} | node {} | {:?}", ids(left), bridge + 1, ids(right))
                }
            };
            log.log(name, "start", detail);
            Box::new(|c: &mut Cluster| {
                for row in &c.links {
                    for l in row {
                        l.block_fwd.store(false, Ordering::SeqCst);
                        l.block_back.store(false, Ordering::SeqCst);
                    }
                }
                Ok(())
            })
        }
        Nemesis::Latency => {
            let regions: Vec<usize> = (0..n).map(|_| rng.random_range(0..3)).collect();
            let mut worst = 0;
            for a in 0..n {
                for b in a + 1..n {
                    let us = if regions[a] == regions[b] {
                        1_000
                    } else {
                        rng.random_range(40_000..=80_000)
                    };
                    worst = worst.max(us);
                    c.links[a][b].delay_us.store(us, Ordering::SeqCst);
                    c.links[b][a].delay_us.store(us, Ordering::SeqCst);
                }
            }
            log.log(
                name,
                "start",
                format!(
                    "regions {regions:?}: 1 ms within, 40-80 ms between (worst one-way {} ms)",
                    worst / 1000
                ),
            );
            Box::new(|c: &mut Cluster| {
                for row in &c.links {
                    for l in row {
                        l.delay_us.store(0, Ordering::SeqCst);
                    }
                }
                Ok(())
            })
        }
        Nemesis::Skew => {
            let max = schedule.max_skew_ms;
            let offsets: Vec<i64> = (0..n).map(|_| rng.random_range(-max..=max)).collect();
            for (i, o) in offsets.iter().enumerate() {
                c.set_clock_offset(i, *o)?;
            }
            log.log(name, "start", format!("clock offsets (ms) {offsets:?}"));
            Box::new(move |c: &mut Cluster| {
                for i in 0..n {
                    c.set_clock_offset(i, 0)?;
                }
                Ok(())
            })
        }
    };
    Ok(lift)
}

fn ids(nodes: &[usize]) -> Vec<usize> {
    nodes.iter().map(|i| i + 1).collect()
}

/// No bytes either way between a and b.
fn cut(c: &Cluster, a: usize, b: usize) {
    for (x, y) in [(a, b), (b, a)] {
        c.links[x][y].block_fwd.store(true, Ordering::SeqCst);
        c.links[x][y].block_back.store(true, Ordering::SeqCst);
    }
}

/// Nothing a sends reaches b: a's requests to b, and a's answers to b's requests.
fn one_way(c: &Cluster, a: usize, b: usize) {
    c.links[a][b].block_fwd.store(true, Ordering::SeqCst);
    c.links[b][a].block_back.store(true, Ordering::SeqCst);
}

//! The cluster's health as gauges for `/metrics` (refreshed at each scrape, from state this node
//! already holds), and a watcher that counts leader changes as they happen, not only those a
//! scrape happens to see.

use std::sync::Arc;

use relay_raft::Ledger;
use tokio::sync::watch;

use crate::Metrics;

/// Sets the gauges from this node's Raft status and applied state.
pub fn refresh(metrics: &Metrics, ledger: &Ledger) {
    let s = ledger.status();
    let as_gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    metrics.raft_term.set(as_gauge(s.term));
    metrics.raft_is_leader.set(i64::from(s.leader_id == Some(s.node_id)));
    metrics.raft_last_log_index.set(as_gauge(s.last_log_index.unwrap_or(0)));
    metrics.raft_applied_index.set(as_gauge(s.last_applied.unwrap_or(0)));
    let reader = ledger.reader();
    let now = ledger.now_ms();
    let lag_s = match reader.next_timer_due_ms() {
        Ok(Some(due)) if due < now => (now - due) / 1000,
        _ => 0,
    };
    metrics.expiry_lag_seconds.set(as_gauge(lag_s));
    if let Ok(pending) = reader.webhooks_pending() {
        metrics.webhooks_pending.set(as_gauge(pending));
    }
}

/// Counts each change of (term, leader) this node observes, until `stop`.
pub async fn watch_leader(ledger: Arc<Ledger>, metrics: Arc<Metrics>, mut stop: watch::Receiver<bool>) {
    let mut raft = ledger.raft().metrics();
    let mut seen = {
        let m = raft.borrow();
        (m.current_term, m.current_leader)
    };
    loop {
        tokio::select! {
            changed = raft.changed() => if changed.is_err() { return },
            _ = stop.changed() => return,
        }
        let now = {
            let m = raft.borrow_and_update();
            (m.current_term, m.current_leader)
        };
        if now.1.is_some() && now != seen {
            metrics.raft_leader_changes.inc();
            tracing::info!(term = now.0, leader = ?now.1, "leader changed");
        }
        seen = now;
    }
}

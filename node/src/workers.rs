//! Background work on the leader: expire due leases and, beside that, delete the bytes of closed
//! ones ([`relay_api::blobs::gc`]).

use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use relay_api::Metrics;
use relay_raft::ops::{ExpireDue, Swept};
use relay_raft::Ledger;
use tokio::sync::watch;
use tracing::{debug, warn};

/// Runs until `stop`: on the leader, the sweeper turns due timers into tombstones and, beside
/// it, the garbage collector deletes the bytes they queued, so a mass expiry's deletions start
/// with its first sweep entry rather than after its last.
pub async fn run_sweeper(
    ledger: Arc<Ledger>,
    store: Arc<dyn ObjectStore>,
    s3: Option<Arc<object_store::aws::AmazonS3>>,
    metrics: Arc<Metrics>,
    interval: Duration,
    stop: watch::Receiver<bool>,
) {
    // Deletes on a local disk run on low-priority threads; an S3 store's are network requests,
    // which stay on the node's runtime (its connection pool is shared with the foreground).
    let background = Background(if s3.is_some() {
        None
    } else {
        background_runtime()
            .inspect_err(|e| warn!(error = %e, "gc: no low-priority runtime; deleting on the node's"))
            .ok()
    });
    let expire = async {
        let (mut tick, mut stop) = (ticker(interval), stop.clone());
        while leading_tick(&mut tick, &mut stop, &ledger).await {
            if let Err(e) = expire_due(&ledger, &metrics).await {
                warn!(error = %e, "sweeper: expiring leases");
            }
        }
    };
    let collect = async {
        let (mut tick, mut stop) = (ticker(interval), stop.clone());
        let mut collector = relay_api::blobs::gc::Collector::new(background.0.as_ref().map(|rt| rt.handle().clone()));
        while leading_tick(&mut tick, &mut stop, &ledger).await {
            if let Err(e) = collector.collect(&ledger, &store, s3.as_ref(), &metrics).await {
                warn!(error = %e, "gc: deleting objects");
            }
        }
    };
    tokio::join!(expire, collect);
}

/// The GC's runtime, shut down without waiting when dropped: dropping a runtime the ordinary
/// way inside another's task panics, and this one is dropped in one however the sweeper ends.
struct Background(Option<tokio::runtime::Runtime>);

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// CPU priority (nice) of the threads that delete collected bytes on a local disk: when the
/// foreground wants the cores too, they get about a tenth of a core's time against its threads'
/// (the kernel's weights: 110 against 1024); on idle cores, all of it.
const GC_NICE: i32 = 10;

/// A small runtime whose threads, blocking ones included, run at [`GC_NICE`].
fn background_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(64)
        .thread_name("relay-gc")
        .on_thread_start(|| lower_priority(GC_NICE))
        .enable_all()
        .build()
}

/// Lowers the calling thread's CPU priority (on Linux nice is per thread, and `who = 0` names
/// the calling one).
fn lower_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority reads its three integer arguments and nothing else.
        if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) } != 0 {
            warn!(error = %std::io::Error::last_os_error(), "gc: could not lower a thread's priority");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

fn ticker(interval: Duration) -> tokio::time::Interval {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

/// Waits for the next tick at which this node leads; `false` once `stop` fires.
async fn leading_tick(tick: &mut tokio::time::Interval, stop: &mut watch::Receiver<bool>, ledger: &Ledger) -> bool {
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return false,
        }
        if ledger.is_leader() {
            return true;
        }
    }
}

/// Timers one sweep entry processes. Smaller than the ledger's cap (`SWEEP_BATCH_MAX`): every
/// node applies the entry in one go, and reads waiting on the apply queue wait for it, so a mass
/// expiry goes as many short entries rather than a few long ones (measured with
/// `relay-loadtest expiry`: BENCHMARKS.md).
const EXPIRE_PER_ENTRY: u32 = 512;
/// Sweep entries per tick at most, so a backlog drains over several ticks.
const ENTRIES_PER_TICK: usize = 64;

async fn expire_due(ledger: &Ledger, metrics: &Metrics) -> Result<(), relay_raft::LedgerError> {
    for _ in 0..ENTRIES_PER_TICK {
        let due = ledger.reader().next_timer_due_ms()?;
        if due.is_none_or(|d| d > ledger.now_ms()) {
            return Ok(());
        }
        match ledger.run(None, ExpireDue { max: EXPIRE_PER_ENTRY }).await? {
            Ok(Swept {
                expired,
                purged,
                dedup_pruned,
            }) => {
                metrics.leases_expired.inc_by(expired as u64);
                debug!(expired, purged, dedup_pruned, "sweeper: swept");
                if expired < EXPIRE_PER_ENTRY && purged < EXPIRE_PER_ENTRY && dedup_pruned < EXPIRE_PER_ENTRY {
                    return Ok(());
                }
            }
            Err(rejection) => {
                warn!(%rejection, "sweeper: refused");
                return Ok(());
            }
        }
    }
    Ok(())
}

//! Filling a cluster with leases for `scale` and `expiry`, and what a node's footprint is.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::LoadError;

/// One lease made by a fill.
#[derive(Clone, Debug)]
pub struct Made {
    pub lease_id: String,
    pub expires_at_ms: u64,
}

/// How each lease of a fill is made.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Percent of leases that are Storage leases (16 bytes of object each); the rest are small
    /// checkpoints (64 bytes, inline in the ledger).
    pub storage_percent: u64,
    /// The lease duration in seconds, or `None` to end every lease in the same second (`at`).
    pub duration_s: Option<u64>,
    /// With `duration_s: None`: the wall-clock second (ms since the epoch) every lease ends in.
    pub at_ms: u64,
}

/// Creates `count` leases with `concurrency` clients spread over `clients`; the leases made
/// (when `keep`) and the creates per second.
pub async fn fill(
    clients: &[relay_testkit::Client],
    concurrency: usize,
    count: u64,
    shape: Shape,
    run_id: &str,
    keep: bool,
) -> Result<(Vec<Made>, f64), LoadError> {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let client = clients[w % clients.len()].clone();
        let next = next.clone();
        let run_id = run_id.to_string();
        tasks.push(tokio::spawn(async move {
            let mut made = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<_, LoadError>(made);
                }
                let m = create(&client, i, shape, &run_id).await?;
                if keep {
                    made.push(m);
                }
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.map_err(|e| LoadError::Local(e.to_string()))??);
    }
    let rate = count as f64 / started.elapsed().as_secs_f64().max(1e-9);
    Ok((all, rate))
}

/// One create, retried a few times on a busy or unavailable node.
async fn create(client: &relay_testkit::Client, i: u64, shape: Shape, run_id: &str) -> Result<Made, LoadError> {
    // Spread evenly: every hundred leases hold exactly `storage_percent` Storage leases.
    let storage = (i % 100) < shape.storage_percent;
    let mut last = String::new();
    for _ in 0..20 {
        let duration_s = match shape.duration_s {
            Some(d) => d,
            None => {
                let left = shape.at_ms.saturating_sub(now_ms());
                if left < 2_000 {
                    return Err(LoadError::Local(format!(
                        "the fill is too slow to end every lease at the chosen second (lease {i})"
                    )));
                }
                left.div_ceil(1000)
            }
        };
        let call = if storage {
            client.store("scale.bin", duration_s, Bytes::from(format!("{:016x}", i)))
        } else {
            let body = Bytes::from(format!("{{\"i\":{i},\"p\":\"{}\"}}", "x".repeat(48)));
            client.checkpoint_create(&format!("sc-{run_id}-{i}"), duration_s, Some(256), body)
        };
        match call.idempotency_key(&format!("fill-{run_id}-{i}")).send().await {
            Ok(r) if r.status == 201 => {
                let v = r.json();
                let expires_at_ms = v["expires_at"]
                    .as_str()
                    .and_then(parse_rfc3339_ms)
                    .ok_or_else(|| LoadError::Local(format!("no expires_at in {v}")))?;
                return Ok(Made {
                    lease_id: v["lease_id"].as_str().unwrap_or_default().to_string(),
                    expires_at_ms,
                });
            }
            Ok(r) if r.status == 429 || r.status == 503 || r.status == 409 => last = r.text(),
            Ok(r) => return Err(LoadError::Local(format!("create answered {}: {}", r.status, r.text()))),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(LoadError::Local(format!("create kept failing: {last}")))
}

/// `2026-11-26T20:00:00.123Z` (the form Relay renders) as ms since the epoch.
pub fn parse_rfc3339_ms(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let ms = match b[19] {
        b'.' => {
            let frac = s.get(20..)?.trim_end_matches('Z');
            let digits: String = frac.chars().take(3).collect();
            digits.parse::<i64>().ok()? * 10i64.pow(3 - digits.len() as u32)
        }
        b'Z' => 0,
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(((days * 24 + h) * 60 + mi) * 60_000 + sec * 1000 + ms).ok()
}

/// This machine's clock, ms since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A process's resident set now (`VmRSS`), in bytes.
pub fn rss(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Bytes of the files under `dir` and how many there are.
pub fn dir_size(dir: &Path) -> (u64, u64) {
    walk(dir, true)
}

/// How many files are under `dir`, without a `stat` of each: sampled often during a sweep, a
/// `stat` per file was a tenth of the machine's CPU (perf), load the cluster would not have.
pub fn count_files(dir: &Path) -> u64 {
    walk(dir, false).1
}

fn walk(dir: &Path, sizes: bool) -> (u64, u64) {
    let mut bytes = 0;
    let mut files = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(_) => {
                    files += 1;
                    if sizes {
                        bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
                    }
                }
                Err(_) => {}
            }
        }
    }
    (bytes, files)
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_relay_timestamps() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:01.250Z"), Some(1250));
        assert_eq!(parse_rfc3339_ms("2026-11-26T20:00:00Z"), Some(1_795_723_200_000));
        assert_eq!(parse_rfc3339_ms("2000-03-01T00:00:00.5Z"), Some(951_868_800_500));
        assert_eq!(parse_rfc3339_ms("nonsense"), None);
    }

    #[test]
    fn sizes_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/x"), b"12345").unwrap();
        std::fs::write(dir.path().join("y"), b"123").unwrap();
        assert_eq!(dir_size(dir.path()), (8, 2));
    }
}

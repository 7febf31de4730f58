//! A local webhook receiver: answers 204 and records how long each announcement took from the
//! drop's commit (`received_at` in the payload) to its arrival here.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::StatusCode;
use hdrhistogram::Histogram;

use crate::LoadError;

pub struct Receiver {
    pub url: String,
    latency_us: Arc<Mutex<Histogram<u64>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start(listen: &str) -> Result<Receiver, LoadError> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| LoadError::Args(format!("--webhook-listen {listen}: {e}")))?;
        let addr = listener.local_addr().map_err(|e| LoadError::Args(e.to_string()))?;
        let latency_us = Arc::new(Mutex::new(
            Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds"),
        ));
        let recorded = latency_us.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: Bytes| {
                let recorded = recorded.clone();
                async move {
                    if let Some(received_ms) = received_at_ms(&body) {
                        let now_us = now_micros();
                        let us = now_us.saturating_sub(received_ms * 1000).max(1);
                        recorded.lock().expect("histogram").saturating_record(us);
                    }
                    StatusCode::NO_CONTENT
                }
            }),
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Receiver {
            url: format!("http://{addr}/hook"),
            latency_us,
            task,
        })
    }

    pub fn snapshot(&self) -> Histogram<u64> {
        self.latency_us.lock().expect("histogram").clone()
    }

    pub fn reset(&self) {
        self.latency_us.lock().expect("histogram").reset();
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn received_at_ms(body: &[u8]) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    parse_rfc3339_ms(v["received_at"].as_str()?)
}

/// `2026-04-19T22:00:00.123Z` → ms since the epoch.
fn parse_rfc3339_ms(ts: &str) -> Option<u64> {
    let n = |a: usize, b: usize| ts.get(a..b)?.parse::<i64>().ok();
    let (y, m, d) = (n(0, 4)?, n(5, 7)?, n(8, 10)?);
    let (hh, mm, ss, ms) = (n(11, 13)?, n(14, 16)?, n(17, 19)?, n(20, 23)?);
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = if y2 >= 0 { y2 } else { y2 - 399 } / 400;
    let yoe = y2 - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1000 + ms).ok()
}

fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(parse_rfc3339_ms("2026-04-19T22:00:00.123Z"), Some(1_776_636_000_123));
        assert_eq!(parse_rfc3339_ms("junk"), None);
    }
}

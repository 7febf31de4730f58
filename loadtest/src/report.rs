//! The outcome of one run: counts, throughput and latency percentiles, as text or JSON.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

pub struct Report {
    pub scenario: &'static str,
    pub targets: Vec<String>,
    pub concurrency: u64,
    pub rate: Option<u64>,
    pub duration_s: f64,
    pub ops: u64,
    /// Failed operations by HTTP status (0: transport error).
    pub errors: BTreeMap<u16, u64>,
    pub latency_us: Histogram<u64>,
    /// Drop → webhook arrival, when a receiver ran.
    pub webhook_latency_us: Option<Histogram<u64>>,
}

impl Report {
    pub fn throughput(&self) -> f64 {
        if self.duration_s > 0.0 {
            self.ops as f64 / self.duration_s
        } else {
            0.0
        }
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn percentile_us(&self, q: f64) -> u64 {
        self.latency_us.value_at_quantile(q)
    }

    pub fn to_json(&self) -> Value {
        let h = &self.latency_us;
        let mut v = json!({
            "scenario": self.scenario,
            "targets": self.targets,
            "concurrency": self.concurrency,
            "rate": self.rate,
            "duration_s": self.duration_s,
            "ops": self.ops,
            "errors": self.errors.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "throughput_ops_per_s": self.throughput(),
            "latency_us": {
                "p50": h.value_at_quantile(0.50),
                "p90": h.value_at_quantile(0.90),
                "p99": h.value_at_quantile(0.99),
                "p999": h.value_at_quantile(0.999),
                "max": h.max(),
            },
        });
        if let Some(w) = &self.webhook_latency_us {
            v["webhooks_received"] = json!(w.len());
            v["webhook_latency_us"] = json!({
                "p50": w.value_at_quantile(0.50),
                "p90": w.value_at_quantile(0.90),
                "p99": w.value_at_quantile(0.99),
                "max": w.max(),
            });
        }
        v
    }

    pub fn summary(&self) -> String {
        let h = &self.latency_us;
        let webhooks = match &self.webhook_latency_us {
            Some(w) => format!(
                "; {} webhooks, delivery ms p50 {:.2} p99 {:.2} max {:.2}",
                w.len(),
                ms(w.value_at_quantile(0.50)),
                ms(w.value_at_quantile(0.99)),
                ms(w.max())
            ),
            None => String::new(),
        };
        format!(
            "{} x{}: {} ops in {:.1} s = {:.0} ops/s, {} errors {:?}; latency ms p50 {:.2} p90 {:.2} p99 {:.2} p99.9 {:.2} max {:.2}{}",
            self.scenario,
            self.concurrency,
            self.ops,
            self.duration_s,
            self.throughput(),
            self.error_count(),
            self.errors,
            ms(h.value_at_quantile(0.50)),
            ms(h.value_at_quantile(0.90)),
            ms(h.value_at_quantile(0.99)),
            ms(h.value_at_quantile(0.999)),
            ms(h.max()),
            webhooks,
        )
    }
}

pub fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

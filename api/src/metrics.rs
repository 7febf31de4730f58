//! Prometheus metrics: every request path is counted and timed, plus the ledger's background work.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::state::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<RouteLabels, Histogram>,
    pub bytes_uploaded: Counter,
    pub bytes_downloaded: Counter,
    pub leases_expired: Counter,
    pub objects_deleted: Counter,
    pub object_delete_failures: Counter,
    pub integrity_failures: Counter,
    pub gc_pending: Gauge,
    pub messages_dropped: Counter,
    pub orphans_deleted: Counter,
    pub webhooks_delivered: Counter,
    pub webhook_attempt_failures: Counter,
    pub webhooks_abandoned: Counter,
    /// Witness checkpoints this node signed as leader, and rounds that signed nothing for an error.
    pub witness_checkpoints: Counter,
    pub witness_signer_errors: Counter,
    /// Leaves in the witness log at the last checkpoint this node signed.
    pub witness_tree_size: Gauge,
    /// From the drop being committed to the receiver's 2xx.
    pub webhook_delivery_latency: Histogram,
    /// The cluster as this node sees it, refreshed at each scrape ([`crate::cluster_metrics`]).
    pub raft_term: Gauge,
    pub raft_is_leader: Gauge,
    pub raft_last_log_index: Gauge,
    pub raft_applied_index: Gauge,
    /// Times this node saw the leader change (a new term or a new leader id).
    pub raft_leader_changes: Counter,
    /// A client write from the handler's call to the ledger's answer: commit and apply.
    pub ledger_commit: Histogram,
    /// How far the oldest due timer (an expiry, a purge) is behind the clock, seconds.
    pub expiry_lag_seconds: Gauge,
    /// Webhook deliveries queued in the cluster.
    pub webhooks_pending: Gauge,
    /// Accesses served and recorded in the ledger (in batches, after the read).
    pub accesses_recorded: Counter,
    /// Accesses served and waiting on this node to be recorded.
    pub accesses_pending: Gauge,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("relay");
        let requests = Family::<RequestLabels, Counter>::default();
        // 100 µs .. ~52 s in 20 doublings.
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 20))
        });
        let m = Metrics {
            requests,
            latency,
            bytes_uploaded: Counter::default(),
            bytes_downloaded: Counter::default(),
            leases_expired: Counter::default(),
            objects_deleted: Counter::default(),
            object_delete_failures: Counter::default(),
            integrity_failures: Counter::default(),
            gc_pending: Gauge::default(),
            messages_dropped: Counter::default(),
            orphans_deleted: Counter::default(),
            webhooks_delivered: Counter::default(),
            webhook_attempt_failures: Counter::default(),
            webhooks_abandoned: Counter::default(),
            witness_checkpoints: Counter::default(),
            witness_signer_errors: Counter::default(),
            witness_tree_size: Gauge::default(),
            webhook_delivery_latency: Histogram::new(exponential_buckets(0.001, 2.0, 20)),
            raft_term: Gauge::default(),
            raft_is_leader: Gauge::default(),
            raft_last_log_index: Gauge::default(),
            raft_applied_index: Gauge::default(),
            raft_leader_changes: Counter::default(),
            ledger_commit: Histogram::new(exponential_buckets(0.0001, 2.0, 20)),
            expiry_lag_seconds: Gauge::default(),
            webhooks_pending: Gauge::default(),
            accesses_recorded: Counter::default(),
            accesses_pending: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register("http_requests", "HTTP requests by route and status", m.requests.clone());
        registry.register("raft_term", "The Raft term this node is in", m.raft_term.clone());
        registry.register(
            "raft_is_leader",
            "1 on the leader, 0 elsewhere",
            m.raft_is_leader.clone(),
        );
        registry.register(
            "raft_last_log_index",
            "The last log index on this node",
            m.raft_last_log_index.clone(),
        );
        registry.register(
            "raft_applied_index",
            "The last log index this node applied",
            m.raft_applied_index.clone(),
        );
        registry.register(
            "raft_leader_changes",
            "Times this node saw the leader change",
            m.raft_leader_changes.clone(),
        );
        registry.register(
            "ledger_commit_duration_seconds",
            "Client writes: from the call to the ledger to its answer (commit and apply)",
            m.ledger_commit.clone(),
        );
        registry.register(
            "expiry_lag_seconds",
            "How far the oldest due timer (lease expiry, purge) is behind the clock",
            m.expiry_lag_seconds.clone(),
        );
        registry.register(
            "webhooks_pending",
            "Webhook deliveries queued in the cluster",
            m.webhooks_pending.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency",
            m.latency.clone(),
        );
        registry.register("bytes_uploaded", "Object bytes accepted", m.bytes_uploaded.clone());
        registry.register(
            "bytes_downloaded",
            "Object bytes served (declared sizes)",
            m.bytes_downloaded.clone(),
        );
        registry.register(
            "leases_expired",
            "Leases expired by the sweeper",
            m.leases_expired.clone(),
        );
        registry.register(
            "objects_deleted",
            "Objects deleted by the GC worker",
            m.objects_deleted.clone(),
        );
        registry.register(
            "object_delete_failures",
            "Failed object deletions (retried)",
            m.object_delete_failures.clone(),
        );
        registry.register(
            "accesses_recorded",
            "Accesses served and then recorded in the ledger in batches",
            m.accesses_recorded.clone(),
        );
        registry.register(
            "accesses_pending",
            "Accesses served by this node and not yet recorded",
            m.accesses_pending.clone(),
        );
        registry.register(
            "integrity_failures",
            "Objects that failed their blake3 check",
            m.integrity_failures.clone(),
        );
        registry.register(
            "gc_pending_objects",
            "Objects waiting for deletion",
            m.gc_pending.clone(),
        );
        registry.register(
            "mailbox_messages_dropped",
            "Messages accepted by mailboxes",
            m.messages_dropped.clone(),
        );
        registry.register(
            "orphans_deleted",
            "Unreferenced objects deleted by the orphan sweeper",
            m.orphans_deleted.clone(),
        );
        registry.register(
            "webhooks_delivered",
            "Webhooks answered 2xx",
            m.webhooks_delivered.clone(),
        );
        registry.register(
            "webhook_attempt_failures",
            "Webhook attempts that failed (retried with backoff)",
            m.webhook_attempt_failures.clone(),
        );
        registry.register(
            "webhooks_abandoned",
            "Webhooks given up after the last attempt",
            m.webhooks_abandoned.clone(),
        );
        registry.register(
            "witness_checkpoints_signed",
            "Witness checkpoints this node signed as leader",
            m.witness_checkpoints.clone(),
        );
        registry.register(
            "witness_signer_errors",
            "Witness signing rounds that failed (no key, a key that does not open, no quorum)",
            m.witness_signer_errors.clone(),
        );
        registry.register(
            "witness_tree_size",
            "Leaves in the witness log at the last checkpoint this node signed",
            m.witness_tree_size.clone(),
        );
        registry.register(
            "webhook_delivery_latency_seconds",
            "From a drop's commit to its webhook's 2xx",
            m.webhook_delivery_latency.clone(),
        );
        Arc::new(Metrics { registry, ..m })
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "encoding metrics");
        }
        out
    }
}

/// The `method` label: the methods Relay serves, everything else `other`, so invented methods
/// cannot grow the series.
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts and times every request by its route template (never the raw path), a method from a
/// fixed set and the status, so every label takes a bounded set of values.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method()).to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let seconds = started.elapsed().as_secs_f64();
    // One line a request, with the id the client got in X-Request-Id.
    tracing::info!(
        target: "relay::access",
        method = %method,
        route = %route,
        status,
        duration_ms = (seconds * 1000.0 * 1000.0).round() / 1000.0,
        request_id = %crate::request_id::current(),
        "request"
    );
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            method: method.clone(),
            route: route.clone(),
            status,
        })
        .inc();
    state
        .metrics
        .latency
        .get_or_create(&RouteLabels { method, route })
        .observe(seconds);
    response
}

/// Prometheus metrics in the OpenMetrics text format.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics_serve", tag = "meta", responses(
    (status = 200, description = "Every request path's counters and latencies, and the Raft gauges",
        content_type = "application/openmetrics-text"),
    crate::openapi::Common,
))]
pub async fn serve(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        {
            crate::cluster_metrics::refresh(&state.metrics, &state.ledger);
            state.metrics.encode()
        },
    )
}

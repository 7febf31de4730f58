//! Relay's HTTP API. The map:
//!
//! - [`router`]: every route, the metrics middleware and the JSON fallbacks.
//! - One module per resource: [`store`] (create, download, delete), [`checkpoint`], [`mailbox`],
//!   [`baton`] (the configurable object: quote, create, content, entries, tokens, lifecycle),
//!   [`handoff`] (issue, list, revoke) and [`claim`] (redeem), [`leases`] (listing),
//!   [`pricing`] (pricing and quotes), [`health`], [`cluster`] (membership admin), [`backup`]
//!   (a consistent copy of the state, and the objects it references).
//! - [`auth`]: `Authorization: Bearer rs_live_…` → [`auth::Caller`]; admin keys and the cluster
//!   secret → [`auth::Admin`].
//! - [`listener`]: the HTTP server loop and its time bounds, plain or over [`tls`] (HTTPS with
//!   a certificate reloaded on SIGHUP); [`limits`]: caps on requests in flight (global, per
//!   address, per account), uploads and buffered bodies.
//! - [`idempotency`]: `Idempotency-Key`, scoped by route and bound to the request's fingerprint.
//! - [`ops`]: the one ledger call handlers make (an operation's own typed output, or the error its
//!   rejection means); [`purchase`]: the path every paid create walks, and its receipt.
//! - [`metrics`]: Prometheus counters for every request path; [`cluster_metrics`]: the Raft and
//!   backlog gauges refreshed at each scrape, and the leader-change watcher.
//! - [`error`]: [`ApiError`] and its one mapping to status codes and JSON bodies;
//!   [`request_id`]: the id every answer and log line carries.
//! - [`blobs`]: an uploaded object's whole life (staged; then kept, deleted, or left to the
//!   orphan sweeper by the ledger's answer; collected once closed); [`objects`]: streaming,
//!   hashing object store I/O;
//!   [`bodies`]: small bodies read within the body buffer.
//! - [`uploads`]: bytes that do not come in the create request: presigned (S3) and node-signed
//!   PUTs, completion, resumable tus uploads, and the free scratch tier.
//! - [`webhook`] (Standard Webhooks signing and delivery) behind [`ssrf`] (where they may go).
//! - [`headers`], [`range`], [`render`], [`ids`]: parsing in, formatting out.
//!
//! Handlers parse, run one ledger command ([`ops::run`]), render; business rules live in the
//! ledger.

pub mod accounts;
pub mod auth;
pub mod backup;
pub mod baton;
pub mod billing;
pub mod blobs;
pub mod bodies;
pub mod checkpoint;
pub mod claim;
pub mod cluster;
pub mod cluster_metrics;
pub mod config;
pub mod error;
pub mod handoff;
pub mod headers;
pub mod health;
pub mod idempotency;
pub mod ids;
pub mod leases;
pub mod limits;
pub mod listener;
pub mod mailbox;
pub mod metrics;
pub mod objects;
pub mod ops;
pub mod pricing;
pub mod purchase;
pub mod range;
#[cfg(test)]
mod readme_routes;
pub mod render;
pub mod request_id;
pub mod session_token;
pub mod sessions;
pub mod siwe;
pub mod ssrf;
pub mod state;
pub mod store;
pub mod tls;
pub mod uploads;
pub mod webhook;
pub mod witness;
pub mod x402;

#[cfg(test)]
mod parser_props;

use std::any::Any;

use axum::extract::DefaultBodyLimit;
use axum::http::{Response, StatusCode};
use axum::routing::{delete, get, head, post, put};
use axum::{middleware, Router};
use tower_http::catch_panic::CatchPanicLayer;

pub use config::ApiConfig;
pub use error::ApiError;
pub use metrics::Metrics;
pub use state::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/store", post(store::create))
        .route("/api/store/{lease_id}", delete(store::delete))
        .route("/api/download/{lease_id}", get(store::download))
        .route("/api/leases", get(leases::list))
        .route("/api/mailbox", post(mailbox::create))
        .route("/api/mailbox/drop/{token}", post(mailbox::drop_message))
        .route("/api/mailbox/{lease_id}", delete(mailbox::delete))
        .route("/api/mailbox/{lease_id}/messages", get(mailbox::poll))
        .route(
            "/api/mailbox/{lease_id}/messages/{message_id}",
            get(mailbox::pickup).delete(mailbox::delete_message),
        )
        .route("/api/handoff/{lease_id}", post(handoff::create))
        .route("/api/claim/{token}", get(claim::claim).post(claim::claim))
        .route("/api/handoffs/{id}", get(handoff::list).delete(handoff::revoke))
        .route("/api/checkpoint", post(checkpoint::create))
        .route(
            "/api/checkpoint/{workflow_id}",
            get(checkpoint::read).put(checkpoint::write).delete(checkpoint::delete),
        )
        .route("/v1/baton/quote", post(baton::create::quote))
        .route("/v1/baton", post(baton::create::create))
        .route(
            "/v1/baton/{id}",
            get(baton::content::read)
                .put(baton::content::write)
                .delete(baton::manage::delete),
        )
        .route(
            "/v1/baton/{id}/entries",
            get(baton::content::entries).post(baton::content::append),
        )
        .route("/v1/baton/{id}/entries/{seq}", get(baton::content::entry))
        .route("/v1/baton/{id}/meta", get(baton::manage::meta))
        .route("/v1/baton/{id}/witness", get(witness::routes::baton_records))
        .route("/v1/witness/checkpoint", get(witness::routes::checkpoint))
        .route("/v1/witness/consistency", get(witness::routes::consistency))
        .route("/.well-known/relay-witness", get(witness::routes::well_known))
        .route(
            "/v1/baton/{id}/tokens",
            get(baton::manage::list_tokens).post(baton::manage::issue_tokens),
        )
        .route("/v1/baton/{id}/tokens/{token_id}", delete(baton::manage::revoke_token))
        .route("/v1/baton/{id}/extend", post(baton::manage::extend))
        .route("/v1/baton/{id}/restore", post(baton::manage::restore))
        .route("/v1/baton/{id}/lifecycle", post(baton::manage::lifecycle))
        .route("/v1/batons", get(baton::manage::list))
        .route("/uploads/{upload_id}", put(uploads::local::put))
        .route("/api/uploads/{upload_id}", get(uploads::complete::status))
        .route("/api/uploads/{upload_id}/complete", post(uploads::complete::complete))
        .route(
            "/api/uploads/tus",
            post(uploads::tus::create).options(uploads::tus::options),
        )
        .route(
            "/api/uploads/tus/{upload_id}",
            head(uploads::tus::head)
                .patch(uploads::tus::patch)
                .delete(uploads::tus::delete)
                .options(uploads::tus::options),
        )
        .route("/v1/scratch/upload-url", post(uploads::scratch::upload_url))
        .route("/api/pricing", get(pricing::pricing))
        .route("/api/quote", get(pricing::quote))
        .route("/.well-known/x402.json", get(pricing::well_known))
        .route("/.well-known/x402", get(pricing::well_known))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::serve))
        .route("/cluster/status", get(cluster::status))
        .route("/cluster/backup", get(backup::snapshot))
        .route("/cluster/backup/object", get(backup::object))
        .route("/cluster/join", post(cluster::join).layer(admin_body_limit()))
        .route("/cluster/promote", post(cluster::promote).layer(admin_body_limit()))
        .route("/cluster/remove", post(cluster::remove).layer(admin_body_limit()))
        .route("/cluster/pricing", post(cluster::set_pricing).layer(admin_body_limit()))
        .route("/cluster/session-keys/rotate", post(cluster::rotate_session_key))
        .route("/cluster/witness/rotate", post(witness::routes::rotate))
        .route("/cluster/accounts", post(accounts::create).layer(admin_body_limit()))
        .route("/cluster/accounts/{id}", get(accounts::get))
        .route(
            "/cluster/accounts/{id}/topup",
            post(accounts::top_up).layer(admin_body_limit()),
        )
        .route(
            "/cluster/accounts/{id}/keys",
            post(accounts::issue_key).get(accounts::list_keys),
        )
        .route("/cluster/accounts/{id}/keys/{key_id}", delete(accounts::revoke_key))
        .route("/api/billing", get(billing::list))
        .route("/api/auth/siwe/nonce", post(sessions::nonce))
        .route(
            "/api/auth/siwe",
            post(sessions::sign_in).layer(DefaultBodyLimit::max(sessions::BODY_MAX_BYTES)),
        )
        .route(
            "/api/auth/session",
            post(sessions::open_for_account).delete(sessions::revoke),
        )
        .fallback(|| async { ApiError::NotFound("route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        // Innermost first: a panic still gets the JSON shape; the caps answer before any handler
        // runs; metrics count every answer (refusals by the caps too) by its matched route; every
        // answer carries its request id.
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn_with_state(state.clone(), limits::enforce))
        .layer(middleware::from_fn_with_state(state.clone(), metrics::track))
        .layer(middleware::from_fn(request_id::assign))
        .with_state(state)
}

fn admin_body_limit() -> DefaultBodyLimit {
    DefaultBodyLimit::max(cluster::BODY_MAX_BYTES)
}

/// A panic is a bug; the client still gets the JSON error shape, and the log the request id.
fn panic_response(_: Box<dyn Any + Send + 'static>) -> Response<axum::body::Body> {
    let request_id = request_id::current();
    tracing::error!(%request_id, "handler panicked");
    let body = serde_json::json!({"status": "error", "error": {
        "code": "internal", "message": "internal error", "request_id": request_id,
    }});
    Response::builder()
        .status(StatusCode::INTERNAL_SERVER_ERROR)
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_string()))
        .unwrap_or_else(|_| Response::new(axum::body::Body::empty()))
}

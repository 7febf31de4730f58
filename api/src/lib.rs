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
//! - [`accesses`]: the access history of reads served after a read index, written to the
//!   ledger in batches off the read's path.
//! - [`ops`]: the one ledger call handlers make (an operation's own typed output, or the error its
//!   rejection means); [`purchase`]: the path every paid create walks, and its receipt.
//! - [`metrics`]: Prometheus counters for every request path; [`cluster_metrics`]: the Raft and
//!   backlog gauges refreshed at each scrape, and the leader-change watcher.
//! - [`dashboard`]: the web dashboard at `/dashboard`, embedded, speaking only the public API.
//! - [`openapi`]: the OpenAPI 3.1 document built from the same route list as the router
//!   ([`api_routes`]), served at `/openapi.json` and rendered at `/docs`.
//! - [`error`]: [`ApiError`] and its one mapping to status codes and JSON bodies;
//!   [`request_id`]: the id every answer and log line carries.
//! - [`blobs`]: an uploaded object's whole life (staged; then kept, deleted, or left to the
//!   orphan sweeper by the ledger's answer; collected once closed); [`objects`]: streaming,
//!   hashing object store I/O; [`object_cache`]: small verified objects kept in memory (bounded);
//!   [`bodies`]: small bodies read within the body buffer.
//! - [`uploads`]: bytes that do not come in the create request: presigned (S3) and node-signed
//!   PUTs, completion, resumable tus uploads, and the free scratch tier.
//! - [`webhook`] (Standard Webhooks signing and delivery) behind [`ssrf`] (where they may go).
//! - [`headers`], [`range`], [`render`], [`ids`]: parsing in, formatting out.
//!
//! Handlers parse, run one ledger command ([`ops::run`]), render; business rules live in the
//! ledger.

pub mod accesses;
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
pub mod dashboard;
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
pub mod object_cache;
pub mod objects;
pub mod openapi;
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
use axum::{middleware, Router};
use tower_http::catch_panic::CatchPanicLayer;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::routes;

pub use config::ApiConfig;
pub use error::ApiError;
pub use metrics::Metrics;
pub use state::AppState;

/// Every route, each registered through its handler's `#[utoipa::path]`: the router and
/// [`openapi::document`] come from this one list.
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(store::create))
        .routes(routes!(store::delete))
        .routes(routes!(store::download))
        .routes(routes!(leases::list))
        .routes(routes!(mailbox::create))
        .routes(routes!(mailbox::drop_message))
        .routes(routes!(mailbox::delete))
        .routes(routes!(mailbox::poll))
        .routes(routes!(mailbox::pickup, mailbox::delete_message))
        .routes(routes!(handoff::create))
        .routes(routes!(claim::claim_get, claim::claim_post))
        .routes(routes!(handoff::list, handoff::revoke))
        .routes(routes!(checkpoint::create))
        .routes(routes!(checkpoint::read, checkpoint::write, checkpoint::delete))
        .routes(routes!(baton::create::quote))
        .routes(routes!(baton::create::create))
        .routes(routes!(
            baton::content::read,
            baton::content::write,
            baton::manage::delete
        ))
        .routes(routes!(baton::content::entries, baton::content::append))
        .routes(routes!(baton::content::entry))
        .routes(routes!(baton::manage::meta))
        .routes(routes!(witness::routes::baton_records))
        .routes(routes!(witness::routes::checkpoint))
        .routes(routes!(witness::routes::consistency))
        .routes(routes!(witness::routes::well_known))
        .routes(routes!(baton::manage::list_tokens, baton::manage::issue_tokens))
        .routes(routes!(baton::manage::revoke_token))
        .routes(routes!(baton::manage::extend))
        .routes(routes!(baton::manage::restore))
        .routes(routes!(baton::manage::lifecycle))
        .routes(routes!(baton::manage::list))
        .routes(routes!(uploads::local::put))
        .routes(routes!(uploads::complete::status))
        .routes(routes!(uploads::complete::complete))
        .routes(routes!(uploads::tus::create, uploads::tus::options))
        .routes(routes!(
            uploads::tus::head,
            uploads::tus::patch,
            uploads::tus::delete,
            uploads::tus::options_upload
        ))
        .routes(routes!(uploads::scratch::upload_url))
        .routes(routes!(pricing::pricing))
        .routes(routes!(pricing::quote))
        .routes(routes!(pricing::well_known_json))
        .routes(routes!(pricing::well_known))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(metrics::serve))
        .routes(routes!(openapi::spec))
        .routes(routes!(openapi::docs))
        .routes(routes!(openapi::docs_js))
        .routes(routes!(dashboard::index))
        .routes(routes!(dashboard::script))
        .routes(routes!(dashboard::styles))
        .routes(routes!(cluster::status))
        .routes(routes!(backup::snapshot))
        .routes(routes!(backup::object))
        .routes(admin_body(routes!(cluster::join)))
        .routes(admin_body(routes!(cluster::promote)))
        .routes(admin_body(routes!(cluster::remove)))
        .routes(admin_body(routes!(cluster::set_pricing)))
        .routes(routes!(cluster::rotate_session_key))
        .routes(routes!(witness::routes::rotate))
        .routes(admin_body(routes!(accounts::create)))
        .routes(routes!(accounts::get))
        .routes(admin_body(routes!(accounts::top_up)))
        .routes(routes!(accounts::issue_key, accounts::list_keys))
        .routes(routes!(accounts::revoke_key))
        .routes(routes!(accounts::me))
        .routes(routes!(billing::list))
        .routes(routes!(sessions::nonce))
        .routes(with_layer(
            routes!(sessions::sign_in),
            DefaultBodyLimit::max(sessions::BODY_MAX_BYTES),
        ))
        .routes(routes!(sessions::open_for_account, sessions::revoke))
}

pub fn router(state: AppState) -> Router {
    let (routes, _) = api_routes().split_for_parts();
    routes
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

/// The admin routes' small JSON bodies.
fn admin_body(routes: UtoipaMethodRouter<AppState>) -> UtoipaMethodRouter<AppState> {
    with_layer(routes, DefaultBodyLimit::max(cluster::BODY_MAX_BYTES))
}

fn with_layer(
    (schemas, paths, methods): UtoipaMethodRouter<AppState>,
    layer: DefaultBodyLimit,
) -> UtoipaMethodRouter<AppState> {
    (schemas, paths, methods.layer(layer))
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

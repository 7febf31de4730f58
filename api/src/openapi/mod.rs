//! The API's OpenAPI 3.1 document. Every route is registered through `utoipa_axum::routes!`, which
//! takes its method and path from the handler's own `#[utoipa::path]`, so the router and the spec
//! are built from one definition and cannot disagree. This module adds what no single route owns:
//! the security schemes, the shared error shapes ([`responses`], [`schemas`]), and the two routes
//! that serve the result: `GET /openapi.json` and `GET /docs` (a small page, embedded, no CDN).

pub mod responses;
pub mod schemas;

use std::sync::LazyLock;

use axum::http::header::{self, HeaderValue};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi;
use utoipa::Modify;

pub use responses::*;

/// Security scheme names, as operations name them in `security(...)`.
pub const API_KEY: &str = "api_key";
pub const SESSION: &str = "session";
pub const X402: &str = "x402";
pub const ADMIN: &str = "admin_key";
pub const CLUSTER_SECRET: &str = "cluster_secret";
pub const BATON_TOKEN: &str = "baton_token";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Relay",
        description = "Paid, bounded-time storage, mailboxes, checkpoints and batons for software agents, with one-shot claim links. Every error answers `{\"status\": \"error\", \"error\": {\"code\", \"message\", \"request_id\"}}`.",
        license(name = "Apache-2.0"),
    ),
    components(schemas(schemas::Error, schemas::ErrorDetail, schemas::PaymentRequired, schemas::Payment402, schemas::Lease, schemas::Receipt, schemas::AccessEvent, schemas::Binary, schemas::LeasePage, schemas::Account, schemas::Charge, schemas::BillingPage, schemas::HandoffCreated, schemas::HandoffEntry, schemas::HandoffList, schemas::MessageEntry, schemas::MailboxQueue, schemas::CheckpointWritten, schemas::LeaseDeleted, schemas::Quote, schemas::UploadView, schemas::Session, schemas::BatonSummary, schemas::BatonPage, schemas::Entry, schemas::EntryPage, schemas::TokenEntry, schemas::TokenList, schemas::BatonWritten, schemas::EntryAppended)),
    modifiers(&Security),
    tags(
        (name = "storage", description = "Storage leases: upload once, download until expiry"),
        (name = "mailbox", description = "Bounded queues that others drop messages into"),
        (name = "checkpoint", description = "One JSON document per workflow, versioned"),
        (name = "handoff", description = "One-shot claim links for a lease"),
        (name = "baton", description = "Configurable objects: blob, log or document, shared with scoped tokens"),
        (name = "witness", description = "The signed, append-only record of baton events"),
        (name = "uploads", description = "Bytes that arrive apart from the create: presigned, resumable (tus), scratch"),
        (name = "pricing", description = "Prices, quotes and the x402 discovery documents"),
        (name = "accounts", description = "Sessions, billing and account administration"),
        (name = "cluster", description = "Membership, backups and operators' routes"),
        (name = "meta", description = "Health, metrics and this document"),
    )
)]
struct Base;

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let bearer = |format: &str, description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format(format)
                    .description(Some(description))
                    .build(),
            )
        };
        let header = |name: &str, description: &str| {
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(name, description)))
        };
        components.add_security_scheme(API_KEY, bearer("rs_live_…", "An account's API key"));
        components.add_security_scheme(
            SESSION,
            bearer("JWT", "A session token from /api/auth/siwe or /api/auth/session"),
        );
        components.add_security_scheme(
            X402,
            header("PAYMENT-SIGNATURE", "An x402 payment for this exact request (v2; v1 clients send X-PAYMENT). Without one, a paid route answers 402 with the offer."),
        );
        components.add_security_scheme(ADMIN, bearer("rs_admin_…", "An operator's admin key"));
        components.add_security_scheme(
            CLUSTER_SECRET,
            header("X-Cluster-Secret", "The cluster's shared secret"),
        );
        components.add_security_scheme(
            BATON_TOKEN,
            bearer("bt_…", "A baton sharing token, with the scopes it was issued"),
        );
        for (name, response) in responses::components() {
            components.responses.insert(name, response);
        }
    }
}

/// The whole document: the base above plus every route's path item.
pub fn document() -> OpenApi {
    let mut doc = crate::api_routes().into_openapi();
    doc.merge(<Base as utoipa::OpenApi>::openapi());
    let base = <Base as utoipa::OpenApi>::openapi();
    doc.info = base.info;
    doc.tags = base.tags;
    doc
}

static SPEC: LazyLock<String> = LazyLock::new(|| document().to_json().unwrap_or_default());

/// This API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/openapi.json", operation_id = "openapi_spec", tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object), Common))]
pub async fn spec() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], SPEC.as_str()).into_response()
}

const DOCS_HTML: &str = include_str!("docs.html");
const DOCS_JS: &str = include_str!("docs.js");

/// A page that renders `/openapi.json`: operations by tag, their parameters, bodies and answers.
#[utoipa::path(get, path = "/docs", operation_id = "openapi_docs", tag = "meta",
    responses((status = 200, description = "The reference page", content_type = "text/html"), Common))]
pub async fn docs() -> Response {
    page(DOCS_HTML, "text/html; charset=utf-8", true)
}

/// The reference page's script.
#[utoipa::path(get, path = "/docs/docs.js", operation_id = "openapi_docs_js", tag = "meta",
    responses((status = 200, description = "The reference page's script", content_type = "text/javascript"), Common))]
pub async fn docs_js() -> Response {
    page(DOCS_JS, "text/javascript; charset=utf-8", true)
}

/// Static pages run only their own script and fetch only this origin; `inline_styles` for a page
/// that carries its `<style>` inline (the reference page; the dashboard does not).
pub fn page(body: &'static str, content_type: &'static str, inline_styles: bool) -> Response {
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    let headers = response.headers_mut();
    let csp = match inline_styles {
        true => "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        false => "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    };
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

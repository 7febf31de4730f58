//! `/dashboard`: a page every node serves from files embedded in the binary (no CDN, no build
//! step). It speaks only the public API: an agent signs in with an API key, exchanged at once for
//! a session token (`POST /api/auth/session`) kept in the tab's session storage; an operator signs
//! in with an admin key, kept in memory only, for `/cluster/status`.

use axum::response::Response;

use crate::openapi::{page, Common};

const INDEX: &str = include_str!("index.html");
const APP_JS: &str = include_str!("app.js");
const APP_CSS: &str = include_str!("app.css");

/// The dashboard page.
#[utoipa::path(get, path = "/dashboard", operation_id = "dashboard_index", tag = "meta",
    responses((status = 200, description = "The dashboard", content_type = "text/html"), Common))]
pub async fn index() -> Response {
    page(INDEX, "text/html; charset=utf-8", false)
}

/// The dashboard's script.
#[utoipa::path(get, path = "/dashboard/app.js", operation_id = "dashboard_js", tag = "meta",
    responses((status = 200, description = "The dashboard's script", content_type = "text/javascript"), Common))]
pub async fn script() -> Response {
    page(APP_JS, "text/javascript; charset=utf-8", false)
}

/// The dashboard's styles.
#[utoipa::path(get, path = "/dashboard/app.css", operation_id = "dashboard_css", tag = "meta",
    responses((status = 200, description = "The dashboard's styles", content_type = "text/css"), Common))]
pub async fn styles() -> Response {
    page(APP_CSS, "text/css; charset=utf-8", false)
}

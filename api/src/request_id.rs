//! Every request gets an id: sent back in `X-Request-Id`, written into every error body, and put
//! on every log line about the request, so a client's report leads to the log.

use std::future::Future;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled, or `-` outside of one.
pub fn current() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_else(|_| "-".into())
}

/// Runs `fut` as the handling of request `id`.
pub async fn scope<F: Future>(id: String, fut: F) -> F::Output {
    REQUEST_ID.scope(id, fut).await
}

/// A fresh id: `req_` and a ULID (sortable by time).
pub fn new_id() -> String {
    format!("req_{}", ulid::Ulid::new())
}

/// Middleware: gives the request an id (ours, never the client's: a client-chosen id could forge
/// log lines) and returns it in `X-Request-Id`.
pub async fn assign(request: Request, next: Next) -> Response {
    let id = new_id();
    let header = HeaderValue::from_str(&id).ok();
    let mut response = scope(id, next.run(request)).await;
    if let Some(v) = header {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

//! `GET /api/leases`: every lease of the caller — active, expired and deleted — newest first.

use axum::extract::{RawQuery, State};
use axum::Json;
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::headers::query_map;
use crate::render;
use crate::state::AppState;

pub const PAGE_DEFAULT: usize = 50;
pub const PAGE_MAX: usize = 200;
const CURSOR_MAX_LEN: usize = 256;

#[utoipa::path(
    get,
    path = "/api/leases",
    operation_id = "leases_list",
    tag = "storage",
    security(("api_key" = []), ("session" = [])),
    params(
        ("limit" = Option<u32>, Query, description = "Page size, 1–200 (default 50)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "The caller's leases, newest first", content_type = "application/json", body = crate::openapi::schemas::LeasePage),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E422,
    )
)]
pub async fn list(State(state): State<AppState>, caller: Caller, RawQuery(raw): RawQuery) -> ApiResult<Json<Value>> {
    let (limit, cursor) = page(raw.as_deref())?;
    let reader = state.ledger.linearizable().await?;
    let page = reader.leases_by_owner(&caller.account_id, cursor.as_deref(), limit)?;
    let now_ms = state.ledger.now_ms();
    let leases: Vec<Value> = page.leases.iter().map(|l| render::lease(l, now_ms)).collect();
    Ok(Json(json!({
        "status": "ok",
        "count": leases.len(),
        "leases": leases,
        "next_cursor": page.next_cursor,
    })))
}

/// `?limit=&cursor=` of a paginated listing: the page size and where to go on from.
pub fn page(raw: Option<&str>) -> ApiResult<(usize, Option<String>)> {
    let q = query_map(raw)?;
    let limit = match q.get("limit") {
        None => PAGE_DEFAULT,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=PAGE_MAX).contains(&n) => n,
            _ => {
                return Err(ApiError::InvalidValue {
                    field: "limit",
                    reason: format!("must be an integer from 1 to {PAGE_MAX}"),
                })
            }
        },
    };
    let cursor = q.get("cursor").cloned();
    if let Some(c) = &cursor {
        if c.len() > CURSOR_MAX_LEN || hex::decode(c).is_err() {
            return Err(ApiError::BadRequest("malformed cursor".into()));
        }
    }
    Ok((limit, cursor))
}

//! `GET /api/billing?limit=&cursor=`: the caller's charges, newest first: what each create cost,
//! how it was paid, and the balance it left.

use axum::extract::{RawQuery, State};
use axum::Json;
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::state::AppState;
use crate::{leases, render};

#[utoipa::path(
    get,
    path = "/api/billing",
    operation_id = "billing_list",
    tag = "accounts",
    security(("api_key" = []), ("session" = [])),
    params(
        ("limit" = Option<u32>, Query, description = "Page size, 1–200 (default 50)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "`{status, count, items: [{ledger_id, lease_id, amount_micros, amount_usdc, balance_after_micros, payment_method, created_at}], next_cursor}`", content_type = "application/json", body = crate::openapi::schemas::BillingPage),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E422,
    )
)]
pub async fn list(State(state): State<AppState>, caller: Caller, RawQuery(raw): RawQuery) -> ApiResult<Json<Value>> {
    let (limit, cursor) = leases::page(raw.as_deref())?;
    let page = state
        .ledger
        .linearizable()
        .await?
        .charges(&caller.account_id, cursor.as_deref(), limit)?;
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|c| {
            json!({
                "ledger_id": c.ledger_id,
                "lease_id": c.lease_id,
                "amount_micros": c.amount_micros.to_string(),
                "amount_usdc": render::usdc(c.amount_micros),
                "balance_after_micros": c.balance_after_micros.map(|b| b.to_string()),
                "payment_method": c.method,
                "created_at": render::timestamp(c.at_ms),
            })
        })
        .collect();
    Ok(Json(json!({
        "status": "ok",
        "count": items.len(),
        "items": items,
        "next_cursor": page.next_cursor,
    })))
}

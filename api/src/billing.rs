//! `GET /api/billing?limit=&cursor=`: the caller's charges, newest first: what each create cost,
//! how it was paid, and the balance it left.

use axum::extract::{RawQuery, State};
use axum::Json;
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::state::AppState;
use crate::{leases, render};

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

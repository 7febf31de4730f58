//! `GET /api/pricing` and `GET /api/quote`: the cluster's prices, read from the ledger after a
//! read barrier (so every node answers alike, and a price just changed shows at once), by the same
//! formula the ledger charges with.

use axum::extract::{RawQuery, State};
use axum::Json;
use serde_json::{json, Value};

use crate::error::ApiResult;
use crate::headers::{check_duration, query_map, query_u64};
use crate::render;
use crate::state::AppState;

pub async fn pricing(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let cfg = &state.config;
    let p = state.ledger.linearizable().await?.pricing()?;
    Ok(Json(json!({
        "status": "ok",
        "currency": "USDC",
        "rateUsdcPerGbDay": render::usdc(p.rate_micros_per_gb_day),
        "rateMicrosPerGbDay": p.rate_micros_per_gb_day,
        "minChargeMicros": p.min_charge_micros,
        "minChargeUsdc": render::usdc(p.min_charge_micros),
        "minDurationSeconds": cfg.min_duration_seconds,
        "maxDurationSeconds": cfg.max_duration_seconds,
        "maxSizeBytes": cfg.max_object_bytes,
        "walletAddress": null,
        "formula": "max(minChargeMicros, ceil(size_bytes * duration_seconds * rateMicrosPerGbDay / (1073741824 * 86400)))",
        "paymentMethods": ["api_key"],
        "endpoints": {
            "store": "POST /api/store",
            "download": "GET /api/download/{lease_id}",
            "delete": "DELETE /api/store/{lease_id}",
            "leases": "GET /api/leases",
            "quote": "GET /api/quote?size_bytes={n}&duration_seconds={s}",
            "pricing": "GET /api/pricing",
        },
    })))
}

pub async fn quote(State(state): State<AppState>, RawQuery(raw): RawQuery) -> ApiResult<Json<Value>> {
    let q = query_map(raw.as_deref())?;
    let size_bytes = query_u64(&q, "size_bytes")?;
    let duration_seconds = query_u64(&q, "duration_seconds")?;
    let cfg = &state.config;
    cfg.check_object_size("size_bytes", size_bytes)?;
    check_duration(duration_seconds, cfg.min_duration_seconds, cfg.max_duration_seconds)?;
    let pricing = state.ledger.linearizable().await?.pricing()?;
    let micros = pricing.price_micros(size_bytes, duration_seconds);
    let expires_at_ms = state
        .ledger
        .now_ms()
        .saturating_add(duration_seconds.saturating_mul(1000));
    Ok(Json(json!({
        "status": "ok",
        "priceUsdc": render::usdc(micros),
        "priceMicros": micros.to_string(),
        "cost_micros": micros.to_string(),
        "expiresAt": render::timestamp(expires_at_ms),
        "size_bytes": size_bytes,
        "duration_seconds": duration_seconds,
        "duration_human": render::duration_human(duration_seconds),
    })))
}

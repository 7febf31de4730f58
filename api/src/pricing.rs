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

/// The cluster's prices, the formulas they follow, and how to pay.
#[utoipa::path(get, path = "/api/pricing", operation_id = "pricing_pricing", tag = "pricing", responses(
    (status = 200, description = "Rates, limits, formulas, payment methods and the paid endpoints", body = Object),
    crate::openapi::Common,
))]
pub async fn pricing(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let cfg = &state.config;
    let reader = state.ledger.linearizable().await?;
    let p = reader.pricing()?;
    let rates = reader.baton_rates()?;
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
        "walletAddress": cfg.x402.as_ref().map(|x| x.pay_to.checksummed()),
        "formula": "max(minChargeMicros, ceil(size_bytes * duration_seconds * rateMicrosPerGbDay / (1073741824 * 86400)))",
        "baton": {
            "egressMicrosPerGb": rates.egress_micros_per_gb,
            "witnessFeeMicros": rates.witness_fee_micros,
            "formula": BATON_FORMULA,
            "quote": "POST /v1/baton/quote",
        },
        "paymentMethods": payment_methods(&state),
        "endpoints": {
            "store": "POST /api/store",
            "download": "GET /api/download/{lease_id}",
            "delete": "DELETE /api/store/{lease_id}",
            "leases": "GET /api/leases",
            "quote": "GET /api/quote?size_bytes={n}&duration_seconds={s}",
            "pricing": "GET /api/pricing",
            "baton": "POST /v1/baton",
            "batonQuote": "POST /v1/baton/quote",
        },
    })))
}

/// What a storage lease of this size and duration costs now.
#[utoipa::path(get, path = "/api/quote", operation_id = "pricing_quote", tag = "pricing",
    params(
        ("size_bytes" = u64, Query, description = "The object's size, up to the node's maximum"),
        ("duration_seconds" = u64, Query, description = "The lease's duration, within the node's bounds"),
    ),
    responses(
        (status = 200, description = "The price (`cost_micros`, `priceUsdc`) and when such a lease would expire", body = crate::openapi::schemas::Quote),
        crate::openapi::Common,
        crate::openapi::E413,
        crate::openapi::E422,
    ))]
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

/// A baton's price, as `/api/pricing` publishes it.
const BATON_FORMULA: &str = "max(minChargeMicros, ceil(size_bytes * duration_seconds * rateMicrosPerGbDay / (1073741824 * 86400)) + ceil(egress_bytes * egressMicrosPerGb / 1073741824) + (witness ? witnessFeeMicros : 0))";

/// How this node takes payment: an API key always; x402 (both versions) when configured.
fn payment_methods(state: &AppState) -> Vec<&'static str> {
    match state.config.x402 {
        Some(_) => vec!["api_key", "x402"],
        None => vec!["api_key"],
    }
}

/// The paid endpoints: method, path, and what the price is of.
const PAID: &[(&str, &str, &str)] = &[
    (
        "POST",
        "/api/store",
        "size_bytes = X-Size-Bytes, duration_seconds = X-Duration-Seconds",
    ),
    (
        "POST",
        "/api/mailbox",
        "size_bytes = X-Capacity-Bytes, duration_seconds = X-Duration-Seconds",
    ),
    (
        "POST",
        "/api/checkpoint",
        "size_bytes = X-Max-Body-Bytes, duration_seconds = X-Duration-Seconds",
    ),
    (
        "POST",
        "/v1/baton",
        "the body's shape: price it with POST /v1/baton/quote (the baton formula of /api/pricing)",
    ),
];

/// The same document as `/.well-known/x402`.
#[utoipa::path(get, path = "/.well-known/x402.json", operation_id = "pricing_well_known_json", tag = "pricing", responses(
    (status = 200, description = "The paid endpoints, their prices and the x402 terms", body = Object),
    crate::openapi::Common,
))]
pub async fn well_known_json(state: State<AppState>, headers: axum::http::HeaderMap) -> ApiResult<Json<Value>> {
    well_known(state, headers).await
}

/// `GET /.well-known/x402.json` (and `/.well-known/x402`): what can be bought here and how to
/// pay for it. No standard exists yet; this carries the de-facto `version`/`resources` keys and
/// everything a client needs to build a payment without a 402 round trip first.
#[utoipa::path(get, path = "/.well-known/x402", operation_id = "pricing_well_known", tag = "pricing", responses(
    (status = 200, description = "The paid endpoints, their prices and the x402 terms", body = Object),
    crate::openapi::Common,
))]
pub async fn well_known(State(state): State<AppState>, headers: axum::http::HeaderMap) -> ApiResult<Json<Value>> {
    let p = state.ledger.reader().pricing()?;
    let base = crate::mailbox::base_url(&state, &headers);
    let x402 = state.config.x402.as_ref();
    let endpoints: Vec<Value> = PAID
        .iter()
        .map(|(method, path, price_of)| {
            json!({
                "method": method,
                "path": path,
                "resource": format!("{base}{path}"),
                "price": {
                    "formula": "max(minChargeMicros, ceil(size_bytes * duration_seconds * rateMicrosPerGbDay / (1073741824 * 86400)))",
                    "of": price_of,
                    "rateMicrosPerGbDay": p.rate_micros_per_gb_day,
                    "minChargeMicros": p.min_charge_micros,
                },
            })
        })
        .collect();
    Ok(Json(json!({
        "version": 1,
        "x402": x402.is_some(),
        "x402Versions": if x402.is_some() { vec![1, 2] } else { vec![] },
        "resources": PAID.iter().map(|(_, path, _)| format!("{base}{path}")).collect::<Vec<_>>(),
        "scheme": "exact",
        "network": x402.map(|x| x.network.v1_name.clone()),
        "networkCaip2": x402.map(|x| x.network.caip2()),
        "asset": x402.map(|x| x.asset.checksummed()),
        "assetName": x402.map(|x| x.asset_name.clone()),
        "assetVersion": x402.map(|x| x.asset_version.clone()),
        "payTo": x402.map(|x| x.pay_to.checksummed()),
        "maxTimeoutSeconds": x402.map(|x| x.max_timeout_seconds),
        "paymentMethods": payment_methods(&state),
        "endpoints": endpoints,
        "instructions": "POST without credentials to get a 402 with this request's exact price; pay with X-PAYMENT (x402 v1) or PAYMENT-SIGNATURE (v2).",
    })))
}

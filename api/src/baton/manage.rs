//! The owner's side of a baton: meta, sharing tokens, extensions, delete and restore, lifecycle
//! changes, and the listing of the owner's batons.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use relay_raft::baton::{BatonToken, Disposal};
use relay_raft::ops::{DeleteBaton, ExtendBaton, IssueTokens, RestoreBaton, RevokeToken, SetLifecycle};
use relay_raft::sm::batons::state_name;
use relay_raft::{Lease, LeaseKind};
use serde::Deserialize;
use serde_json::{json, Value};

use super::create::{issue, parse, token_json, QUOTE_BODY_MAX};
use super::shape::{self, TokenSpec};
use super::{baton_of, id_param, render_time, shape_of};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::headers::query_map;
use crate::idempotency::{self, Part};
use crate::purchase::{self, Payer, Reservation};
use crate::state::AppState;
use crate::{bodies, ops, render};

const EXTEND_ROUTE: &str = "POST /v1/baton/{id}/extend";
const LIST_DEFAULT: usize = 50;
const LIST_MAX: usize = 200;

/// A small JSON body (at most 64 KiB, empty meaning `{}`) and its blake3, for a request's
/// fingerprint.
async fn small_json<T: for<'de> Deserialize<'de> + Default>(
    state: &AppState,
    body: Body,
    headers: &HeaderMap,
) -> ApiResult<(T, blake3::Hash)> {
    let raw = bodies::read(state, body, headers, QUOTE_BODY_MAX, "body").await?;
    Ok((parse(&raw.bytes)?, blake3::hash(&raw.bytes)))
}

/// A token as its owner lists it: never the secret.
pub fn token_listing(t: &BatonToken) -> Value {
    json!({
        "token_id": t.token_id,
        "token": null,
        "prefix": t.prefix,
        "scope": t.scope.name(),
        "read_cap": t.read_cap,
        "reads": t.reads,
        "reads_remaining": t.read_cap.map(|cap| cap.saturating_sub(t.reads)),
        "expires_at": t.expires_at_ms.map(render_time),
        "created_at": render_time(t.created_at_ms),
    })
}

/// The owner's live or closed baton, read after a barrier.
async fn owned(state: &AppState, caller: &Caller, lease_id: &str) -> ApiResult<Lease> {
    match state.ledger.linearizable().await?.lease(lease_id)? {
        Some(lease) if lease.owner == caller.account_id && matches!(lease.kind, LeaseKind::Baton(_)) => Ok(lease),
        _ => Err(ApiError::NotFound("baton")),
    }
}

/// `GET /v1/baton/{id}/meta`: shape, usage, state, price, expiry.
#[utoipa::path(
    get,
    path = "/v1/baton/{id}/meta",
    operation_id = "baton_manage_meta",
    tag = "baton",
    security(("api_key" = []), ("session" = [])),
    params(
        ("id" = String, Path, description = "A baton id (`btn_…`)"),
    ),
    responses(
        (status = 200, description = "`{status, baton_id, owner, state, shape, usage, version, content_sha256, head_hash, burned, price_micros, paid_usdc, created_at, expires_at, tombstoned_at, restorable_until, ledger_id}`", content_type = "application/json", body = Object),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E404,
    )
)]
pub async fn meta(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let lease_id = id_param(path)?;
    let lease = owned(&state, &caller, &lease_id).await?;
    let tokens = state.ledger.reader().baton_tokens(&lease_id)?;
    Ok(Json(describe(&state, &lease, &tokens)?))
}

/// Until when a tombstoned baton may be restored (while it is one).
fn restorable_until(lease: &Lease) -> Option<String> {
    match lease.kind {
        LeaseKind::Baton(ref b) if lease.state == relay_raft::LeaseState::Active => {
            match (b.tombstoned_at_ms, b.disposal) {
                (Some(at), Disposal::Soft { grace_seconds }) => {
                    Some(render_time(at.saturating_add(grace_seconds * 1000)))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

pub fn describe(state: &AppState, lease: &Lease, tokens: &[BatonToken]) -> ApiResult<Value> {
    let b = baton_of(lease)?;
    let now = state.ledger.now_ms();
    let token_shapes: Vec<Value> = tokens
        .iter()
        .map(|t| json!({"scope": t.scope.name(), "read_cap": t.read_cap}))
        .collect();
    Ok(json!({
        "status": "ok",
        "baton_id": lease.lease_id,
        "owner": lease.owner,
        "state": state_name(lease, now),
        "shape": shape::render(None, &shape_of(lease, b), &token_shapes),
        "usage": {
            "size_used_bytes": b.used_bytes,
            "size_bytes": b.size_bytes,
            "egress_used_bytes": b.egress_used,
            "egress_remaining_bytes": b.egress_bytes.saturating_sub(b.egress_used),
            "entries": b.entry_count,
            "reads": lease.access_count,
            "reads_per_token": tokens.iter().map(|t| json!({
                "token_id": t.token_id, "reads": t.reads, "read_cap": t.read_cap,
            })).collect::<Vec<_>>(),
        },
        "version": b.version,
        "content_sha256": b.content_sha256,
        "head_hash": b.head_hash,
        "burned": b.burned,
        "price_micros": lease.cost_micros,
        "paid_usdc": render::usdc(lease.cost_micros),
        "created_at": render_time(lease.created_at_ms),
        "expires_at": render_time(lease.expires_at_ms),
        "tombstoned_at": b.tombstoned_at_ms.map(render_time),
        "restorable_until": restorable_until(lease),
        "ledger_id": lease.ledger_id,
    }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensBody {
    tokens: Option<Vec<TokenSpec>>,
    scope: Option<String>,
    read_cap: Option<u32>,
    ttl_seconds: Option<u64>,
}

/// `POST /v1/baton/{id}/tokens`: `{tokens: [{scope, read_cap?, ttl_seconds?}]}`, or one token's
/// fields at the top level. Each secret is shown once.
#[utoipa::path(
    post,
    path = "/v1/baton/{id}/tokens",
    operation_id = "baton_manage_issue_tokens",
    tag = "baton",
    security(("api_key" = []), ("session" = [])),
    params(
        ("id" = String, Path, description = "A baton id (`btn_…`)"),
    ),
    request_body(content = Object, content_type = "application/json", description = "`{tokens: [{scope, read_cap, ttl_seconds}]}` or one `{scope, read_cap, ttl_seconds}`"),
    responses(
        (status = 201, description = "`{status, baton_id, tokens: [{token_id, token, scope, read_cap, expires_at}]}`; each token shown once", content_type = "application/json", body = Object),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E404,
        crate::openapi::E410,
        crate::openapi::E413,
        crate::openapi::E422,
    )
)]
pub async fn issue_tokens(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let lease_id = id_param(path)?;
    let (b, _): (TokensBody, _) = small_json(&state, body, &headers).await?;
    let specs = match (b.tokens, b.scope) {
        (Some(list), None) if b.read_cap.is_none() && b.ttl_seconds.is_none() => list,
        (None, Some(scope)) => vec![TokenSpec {
            scope,
            read_cap: b.read_cap,
            ttl_seconds: b.ttl_seconds,
        }],
        _ => {
            return Err(ApiError::InvalidValue {
                field: "tokens",
                reason: "give tokens: [...] or one token's scope".into(),
            })
        }
    };
    if specs.is_empty() {
        return Err(ApiError::InvalidValue {
            field: "tokens",
            reason: "at least one token".into(),
        });
    }
    let shapes = shape::token_shapes(&state, &specs)?;
    let (tokens, shown) = issue(&shapes)?;
    let op = IssueTokens {
        owner: caller.account_id,
        lease_id: lease_id.clone(),
        tokens,
        tokens_max: state.config.baton.max_tokens,
    };
    let issued = ops::run(&state, None, op, "baton").await?;
    let at = issued.first().map_or(0, |t| t.created_at_ms);
    let tokens: Vec<Value> = shown
        .iter()
        .map(|(t, secret)| token_json(t, Some(secret), at))
        .collect();
    Ok((
        StatusCode::CREATED,
        Json(json!({"status": "ok", "baton_id": lease_id, "tokens": tokens})),
    )
        .into_response())
}

/// `GET /v1/baton/{id}/tokens`.
#[utoipa::path(
    get,
    path = "/v1/baton/{id}/tokens",
    operation_id = "baton_manage_list_tokens",
    tag = "baton",
    security(("api_key" = []), ("session" = [])),
    params(
        ("id" = String, Path, description = "A baton id (`btn_…`)"),
    ),
    responses(
        (status = 200, description = "`{status, baton_id, tokens: [{token_id, prefix, scope, read_cap, reads, reads_remaining, expires_at, created_at}]}`", content_type = "application/json", body = crate::openapi::schemas::TokenList),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E404,
    )
)]
pub async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let lease_id = id_param(path)?;
    owned(&state, &caller, &lease_id).await?;
    let tokens = state.ledger.reader().baton_tokens(&lease_id)?;
    let listed: Vec<Value> = tokens.iter().map(token_listing).collect();
    Ok(Json(json!({"status": "ok", "baton_id": lease_id, "tokens": listed})))
}

/// `DELETE /v1/baton/{id}/tokens/{token_id}`.
#[utoipa::path(
    delete,
    path = "/v1/baton/{id}/tokens/{token_id}",
    operation_id = "baton_manage_revoke_token",
    tag = "baton",
    security(("api_key" = []), ("session" = [])),
    params(
        ("id" = String, Path, description = "A baton id (`btn_…`)"),
        ("token_id" = String, Path, description = "A token id (`tok_…`)"),
    ),
    responses(
        (status = 200, description = "`{status, baton_id, token_id, revoked, reads}`", content_type = "application/json", body = Object),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E404,
    )
)]
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let Ok(Path((id, token_id))) = path else {
        return Err(ApiError::NotFound("token"));
    };
    let lease_id = id_param(Ok(Path(id)))?;
    if token_id.is_empty() || token_id.len() > 64 {
        return Err(ApiError::NotFound("token"));
    }
    let op = RevokeToken {
        owner: caller.account_id,
        lease_id: lease_id.clone(),
        token_id,
    };
    let token = ops::run(&state, None, op, "baton").await?;
    Ok(Json(json!({
        "status": "ok",
        "baton_id": lease_id,
        "token_id": token.token_id,
        "revoked": true,
        "reads": token.reads,
    })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExtendBody {
    add_seconds: Option<u64>,
    add_size_bytes: Option<u64>,
    add_egress_bytes: Option<u64>,
}

/// `POST /v1/baton/{id}/extend`: charged the price of what is added: from the account's balance,
/// or (a wallet's baton) with an x402 payment, offered at that price in a 402 first.
#[utoipa::path(
    post,
    path = "/v1/baton/{id}/extend",
    operation_id = "baton_manage_extend",
    tag = "baton",
    security(("api_key" = []), ("session" = []), ("x402" = [])),
    params(
        ("id" = String, Path, description = "A baton id (`btn_…`)"),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, description = "1–128 visible ASCII characters; a retry with the same key and the same request gets the first answer, another request with it a 422"),
    ),
    request_body(content = Object, content_type = "application/json", description = "`{add_seconds, add_size_bytes, add_egress_bytes}`"),
    responses(
        (status = 200, description = "`{status, baton_id, price_micros, paid_usdc, balance_micros, expires_at, total_price_micros, shape}`", content_type = "application/json", body = Object, headers(("PAYMENT-RESPONSE" = String, description = "x402 v2 settlement (X-PAYMENT-RESPONSE for v1), when paid by x402"))),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E402,
        crate::openapi::E404,
        crate::openapi::E409,
        crate::openapi::E410,
        crate::openapi::E413,
        crate::openapi::E422,
    )
)]
pub async fn extend(
    State(state): State<AppState>,
    payer: Payer,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let lease_id = id_param(path)?;
    let keyed = idempotency::begin(&state, &headers, payer.scope(), EXTEND_ROUTE)?;
    let (b, hash): (ExtendBody, _) = small_json(&state, body, &headers).await?;
    // The payment is part of what the request is: the same key with another payment is refused,
    // never answered with the first one's extension after settling the second.
    let paid_with = match &payer {
        Payer::Wallet(w) => format!("{}:{}", w.address, w.payment.nonce_hex()),
        _ => String::new(),
    };
    let idem = keyed.as_ref().map(|k| {
        k.seal(&[
            Part::Value(lease_id.as_bytes()),
            Part::Value(hash.as_bytes()),
            Part::Value(paid_with.as_bytes()),
        ])
    });
    let cfg = &state.config;
    let op = ExtendBaton {
        owner: payer.account_id().to_string(),
        lease_id: lease_id.clone(),
        add_seconds: b.add_seconds.unwrap_or(0),
        add_size_bytes: b.add_size_bytes.unwrap_or(0),
        add_egress_bytes: b.add_egress_bytes.unwrap_or(0),
        max_duration_seconds: cfg.max_duration_seconds,
        max_size_bytes: cfg.baton.max_size_bytes,
        max_egress_bytes: cfg.baton.max_egress_bytes,
    };
    if let Payer::Account(_) = payer {
        let extended = ops::run(&state, idem, op, "baton").await?;
        let balance = Some(extended.balance_micros);
        return Ok(Json(extended_json(&extended.lease, extended.charged_micros, balance)?).into_response());
    }
    // A wallet's baton, grown by an x402 payment: priced by this node's view of it (the ledger
    // prices again and refuses a payment that does not match).
    let lease = super::lease_anywhere(&state, &lease_id).await?;
    let wallet_owned = |l: &Lease| match &payer {
        Payer::Wallet(w) => l.owner.eq_ignore_ascii_case(&w.address),
        _ => crate::x402::evm::Address::parse(&l.owner).is_some(),
    };
    let lease = lease
        .filter(|l| matches!(l.kind, LeaseKind::Baton(_)) && wallet_owned(l))
        .ok_or(ApiError::NotFound("baton"))?;
    if !relay_raft::sm::batons::is_live(&lease, state.ledger.now_ms()) {
        return Err(ApiError::Gone("lease has expired or was deleted"));
    }
    let before = shape_of(&lease, baton_of(&lease)?);
    let grown = (
        before.duration_seconds.checked_add(op.add_seconds),
        before.size_bytes.checked_add(op.add_size_bytes),
        before.egress_bytes.checked_add(op.add_egress_bytes),
    );
    let (Some(duration_seconds), Some(size_bytes), Some(egress_bytes)) = grown else {
        return Err(ApiError::InvalidValue {
            field: "extend",
            reason: "the extension overflows".into(),
        });
    };
    let after = relay_raft::baton::Shape {
        duration_seconds,
        size_bytes,
        egress_bytes,
        ..before
    };
    // An offer names what is added, never the baton's own size or term.
    let reservation = Reservation {
        billable_bytes: op.add_size_bytes,
        duration_seconds: op.add_seconds,
        product: "Baton extension",
        baton: None,
        extension: Some((before, after)),
    };
    let purchase = purchase::begin(&state, &payer, keyed.as_ref(), reservation).await?;
    let committed = purchase.commit_x402(&state, idem, op.into()).await;
    let (lease, paid) = purchase.answer(&state, committed, "baton")?;
    let response = Json(extended_json(&lease, purchase.cost_micros, None)?).into_response();
    Ok(purchase::with_receipt(response, paid))
}

fn extended_json(lease: &Lease, charged: u64, balance: Option<u64>) -> ApiResult<Value> {
    let bt = baton_of(lease)?;
    Ok(json!({
        "status": "ok",
        "baton_id": lease.lease_id,
        "price_micros": charged,
        "paid_usdc": render::usdc(charged),
        "balance_micros": balance.map(|b| b.to_string()),
        "expires_at": render_time(lease.expires_at_ms),
        "total_price_micros": lease.cost_micros,
        "shape": shape::render(None, &shape_of(lease, bt), &[]),
    }))
}

/// `DELETE /v1/baton/{id}`: by the baton's disposal (a restorable tombstone), or `?hard=true`
/// gone now.
#[utoipa::path(
    delete,
    path = "/v1/baton/{id}",
    operation_id = "baton_manage_delete",
    tag = "baton",
    security(("api_key" = []), ("session" = [])),
    params(
        ("id" = String, Path, description = "A baton id (`btn_…`)"),
        ("hard" = Option<String>, Query, description = "`true`: no tombstone, no restore"),
    ),
    responses(
        (status = 200, description = "`{status, baton_id, state, restorable_until, refund_micros}`", content_type = "application/json", body = Object),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E404,
        crate::openapi::E410,
        crate::openapi::E422,
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let lease_id = id_param(path)?;
    let hard = match query_map(raw.as_deref())?.get("hard").map(String::as_str) {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(other) => {
            return Err(ApiError::InvalidValue {
                field: "hard",
                reason: format!("{other:?}: expected true or false"),
            })
        }
    };
    let op = DeleteBaton {
        owner: caller.account_id,
        lease_id,
        hard,
    };
    let lease = ops::run(&state, None, op, "baton").await?;
    Ok(Json(json!({
        "status": "ok",
        "baton_id": lease.lease_id,
        "state": state_name(&lease, state.ledger.now_ms()),
        "restorable_until": restorable_until(&lease),
        "refund_micros": "0",
    })))
}

/// `POST /v1/baton/{id}/restore`: within the grace period, intact.
#[utoipa::path(
    post,
    path = "/v1/baton/{id}/restore",
    operation_id = "baton_manage_restore",
    tag = "baton",
    security(("api_key" = []), ("session" = [])),
    params(
        ("id" = String, Path, description = "A baton id (`btn_…`)"),
    ),
    responses(
        (status = 200, description = "The restored baton, as /meta describes it", content_type = "application/json", body = Object),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E404,
        crate::openapi::E410,
        crate::openapi::E422,
    )
)]
pub async fn restore(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let lease_id = id_param(path)?;
    let op = RestoreBaton {
        owner: caller.account_id,
        lease_id,
    };
    let lease = ops::run(&state, None, op, "baton").await?;
    let tokens = state.ledger.reader().baton_tokens(&lease.lease_id)?;
    describe(&state, &lease, &tokens).map(Json)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LifecycleBody {
    burn_after_reading: Option<bool>,
    disposal: Option<String>,
    grace_seconds: Option<u64>,
}

/// `POST /v1/baton/{id}/lifecycle`: change burn-after-reading or the disposal.
#[utoipa::path(
    post,
    path = "/v1/baton/{id}/lifecycle",
    operation_id = "baton_manage_lifecycle",
    tag = "baton",
    security(("api_key" = []), ("session" = [])),
    params(
        ("id" = String, Path, description = "A baton id (`btn_…`)"),
    ),
    request_body(content = Object, content_type = "application/json", description = "`{burn_after_reading, disposal, grace_seconds}`; at least one"),
    responses(
        (status = 200, description = "The baton, as /meta describes it", content_type = "application/json", body = Object),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E404,
        crate::openapi::E410,
        crate::openapi::E413,
        crate::openapi::E422,
    )
)]
pub async fn lifecycle(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let lease_id = id_param(path)?;
    let (b, _): (LifecycleBody, _) = small_json(&state, body, &headers).await?;
    let disposal = shape::disposal(b.disposal.as_deref(), b.grace_seconds)?;
    if disposal.is_none() && b.burn_after_reading.is_none() {
        return Err(ApiError::InvalidValue {
            field: "lifecycle",
            reason: "give burn_after_reading, disposal or grace_seconds".into(),
        });
    }
    let op = SetLifecycle {
        owner: caller.account_id,
        lease_id,
        burn_after_reading: b.burn_after_reading,
        disposal,
    };
    let lease = ops::run(&state, None, op, "baton").await?;
    let tokens = state.ledger.reader().baton_tokens(&lease.lease_id)?;
    describe(&state, &lease, &tokens).map(Json)
}

/// `GET /v1/batons?limit=&cursor=`: the owner's batons, newest first.
#[utoipa::path(
    get,
    path = "/v1/batons",
    operation_id = "baton_manage_list",
    tag = "baton",
    security(("api_key" = []), ("session" = [])),
    params(
        ("limit" = Option<u32>, Query, description = "Page size, 1–200 (default 50)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "`{status, batons: [{baton_id, write, state, size_bytes, used_bytes, egress_remaining_bytes, version, price_micros, created_at, expires_at}], next_cursor}`", content_type = "application/json", body = crate::openapi::schemas::BatonPage),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E422,
    )
)]
pub async fn list(State(state): State<AppState>, caller: Caller, RawQuery(raw): RawQuery) -> ApiResult<Json<Value>> {
    let q = query_map(raw.as_deref())?;
    let limit = match q.get("limit") {
        None => LIST_DEFAULT,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=LIST_MAX).contains(n))
            .ok_or_else(|| ApiError::InvalidValue {
                field: "limit",
                reason: format!("must be 1 to {LIST_MAX}"),
            })?,
    };
    let cursor = q.get("cursor").map(String::as_str);
    if cursor.is_some_and(|c| c.len() > 256 || hex::decode(c).is_err()) {
        return Err(ApiError::InvalidValue {
            field: "cursor",
            reason: "not a cursor from a previous page".into(),
        });
    }
    let page = state
        .ledger
        .linearizable()
        .await?
        .batons_by_owner(&caller.account_id, cursor, limit)?;
    let now = state.ledger.now_ms();
    let batons: Vec<Value> = page
        .leases
        .iter()
        .filter_map(|lease| {
            let LeaseKind::Baton(b) = &lease.kind else {
                return None;
            };
            Some(json!({
                "baton_id": lease.lease_id,
                "write": b.write.name(),
                "state": state_name(lease, now),
                "size_bytes": b.size_bytes,
                "used_bytes": b.used_bytes,
                "egress_remaining_bytes": b.egress_bytes.saturating_sub(b.egress_used),
                "version": b.version,
                "price_micros": lease.cost_micros,
                "created_at": render_time(lease.created_at_ms),
                "expires_at": render_time(lease.expires_at_ms),
            }))
        })
        .collect();
    Ok(Json(
        json!({"status": "ok", "batons": batons, "next_cursor": page.next_cursor}),
    ))
}

//! `/cluster/accounts…`: accounts and their API keys, for operators (guarded by [`Admin`]); and
//! `GET /api/account`, an agent's own balance.
//!
//! - `POST /cluster/accounts` `{account_id?, balance_micros?}` → 201 the account
//! - `GET /cluster/accounts/{id}` → its balance
//! - `POST /cluster/accounts/{id}/topup` `{amount_micros}` → the balance after
//! - `POST /cluster/accounts/{id}/keys` → 201 a new API key, shown once
//! - `GET /cluster/accounts/{id}/keys` → its keys' ids and first characters
//! - `DELETE /cluster/accounts/{id}/keys/{key_id}` → the key stops working on every node
//!
//! Money moves in integers (micro-USDC) only.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use relay_raft::ops::{CreateAccount, IssueApiKey, RevokeApiKey, TopUp};
use relay_raft::Account;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{key_hash, Admin, Caller};
use crate::cluster::json_object;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::{ids, ops, render};

const ACCOUNT_ID_MAX_LEN: usize = 64;
/// The characters of a key shown in listings.
const SHOWN_PREFIX_LEN: usize = 12;

/// An account id: 1–64 of `[A-Za-z0-9_-]`, never shaped like a wallet's address.
fn account_id(id: &str) -> ApiResult<String> {
    let ok = !id.is_empty()
        && id.len() <= ACCOUNT_ID_MAX_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && !id.to_ascii_lowercase().starts_with("0x");
    match ok {
        true => Ok(id.to_string()),
        false => Err(ApiError::InvalidValue {
            field: "account_id",
            reason: "1 to 64 of A-Z a-z 0-9 _ -, not starting with 0x".into(),
        }),
    }
}

fn path_id(path: Result<Path<String>, PathRejection>) -> ApiResult<String> {
    match path {
        Ok(Path(id)) => account_id(&id).map_err(|_| ApiError::NotFound("account")),
        Err(_) => Err(ApiError::NotFound("account")),
    }
}

fn render(account: &Account) -> Value {
    json!({
        "status": "ok",
        "account_id": account.account_id,
        "balance_micros": account.balance_micros.to_string(),
        "balance_usdc": render::usdc(account.balance_micros),
        "created_at": render::timestamp(account.created_at_ms),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAccount {
    account_id: Option<String>,
    balance_micros: Option<u64>,
}

#[utoipa::path(
    post,
    path = "/cluster/accounts",
    operation_id = "accounts_create",
    tag = "accounts",
    security(("cluster_secret" = []), ("admin_key" = [])),
    request_body(content = Object, content_type = "application/json", description = "`{account_id, balance_micros}`, both optional"),
    responses(
        (status = 201, description = "`{status, account_id, balance_micros, balance_usdc, created_at}`", content_type = "application/json", body = crate::openapi::schemas::Account),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E409,
        crate::openapi::E413,
        crate::openapi::E422,
    )
)]
pub async fn create(
    State(state): State<AppState>,
    _: Admin,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let b: NewAccount = json_object(body)?;
    let id = match b.account_id {
        Some(id) => account_id(&id)?,
        None => ids::account_id(),
    };
    let balance_micros = b.balance_micros.unwrap_or(0);
    if balance_micros > relay_raft::sm::accounts::BALANCE_MAX_MICROS {
        return Err(ApiError::InvalidValue {
            field: "balance_micros",
            reason: format!("at most {}", relay_raft::sm::accounts::BALANCE_MAX_MICROS),
        });
    }
    let op = CreateAccount {
        account_id: id.clone(),
        balance_micros,
    };
    if !ops::run(&state, None, op, "account").await? {
        return Err(ApiError::Conflict("an account with this id exists"));
    }
    let account = state
        .ledger
        .linearizable()
        .await?
        .account(&id)?
        .ok_or(ApiError::NotFound("account"))?;
    Ok((StatusCode::CREATED, Json(render(&account))))
}

#[utoipa::path(
    get,
    path = "/cluster/accounts/{id}",
    operation_id = "accounts_get",
    tag = "accounts",
    security(("cluster_secret" = []), ("admin_key" = [])),
    params(
        ("id" = String, Path, description = "An account id"),
    ),
    responses(
        (status = 200, description = "`{status, account_id, balance_micros, balance_usdc, created_at}`", content_type = "application/json", body = crate::openapi::schemas::Account),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E404,
    )
)]
pub async fn get(
    State(state): State<AppState>,
    _: Admin,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let id = path_id(path)?;
    let account = state
        .ledger
        .linearizable()
        .await?
        .account(&id)?
        .ok_or(ApiError::NotFound("account"))?;
    Ok(Json(render(&account)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopUpBody {
    amount_micros: u64,
}

#[utoipa::path(
    post,
    path = "/cluster/accounts/{id}/topup",
    operation_id = "accounts_top_up",
    tag = "accounts",
    security(("cluster_secret" = []), ("admin_key" = [])),
    params(
        ("id" = String, Path, description = "An account id"),
    ),
    request_body(content = Object, content_type = "application/json", description = "`{amount_micros}`"),
    responses(
        (status = 200, description = "The account, with its balance after", content_type = "application/json", body = crate::openapi::schemas::Account),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E404,
        crate::openapi::E413,
        crate::openapi::E422,
    )
)]
pub async fn top_up(
    State(state): State<AppState>,
    _: Admin,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let id = path_id(path)?;
    let b: TopUpBody = json_object(body)?;
    let op = TopUp {
        account_id: id,
        amount_micros: b.amount_micros,
    };
    let account = ops::run(&state, None, op, "account").await.map_err(|e| match e {
        ApiError::Unauthorized(_) => ApiError::NotFound("account"),
        other => other,
    })?;
    tracing::info!(account = %account.account_id, amount_micros = b.amount_micros, "account topped up");
    Ok(Json(render(&account)))
}

#[utoipa::path(
    post,
    path = "/cluster/accounts/{id}/keys",
    operation_id = "accounts_issue_key",
    tag = "accounts",
    security(("cluster_secret" = []), ("admin_key" = [])),
    params(
        ("id" = String, Path, description = "An account id"),
    ),
    responses(
        (status = 201, description = "`{status, account_id, api_key, key_id, prefix, created_at}`; the key is shown once", content_type = "application/json", body = Object),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E404,
    )
)]
pub async fn issue_key(
    State(state): State<AppState>,
    _: Admin,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let id = path_id(path)?;
    let key = ids::api_key().map_err(|e| ApiError::Internal(format!("random key: {e}")))?;
    let op = IssueApiKey {
        account_id: id.clone(),
        key_hash_hex: hex::encode(key_hash(&key)),
        prefix: key[..SHOWN_PREFIX_LEN].to_string(),
    };
    let info = ops::run(&state, None, op, "account").await.map_err(|e| match e {
        ApiError::Unauthorized(_) => ApiError::NotFound("account"),
        other => other,
    })?;
    tracing::info!(account = %id, key_id = %info.key_id, "API key issued");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "status": "ok",
            "account_id": id,
            "api_key": key,
            "key_id": info.key_id,
            "prefix": info.prefix,
            "created_at": render::timestamp(info.created_at_ms),
        })),
    ))
}

#[utoipa::path(
    get,
    path = "/cluster/accounts/{id}/keys",
    operation_id = "accounts_list_keys",
    tag = "accounts",
    security(("cluster_secret" = []), ("admin_key" = [])),
    params(
        ("id" = String, Path, description = "An account id"),
    ),
    responses(
        (status = 200, description = "`{status, account_id, items: [{key_id, prefix, created_at}]}`", content_type = "application/json", body = Object),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E404,
    )
)]
pub async fn list_keys(
    State(state): State<AppState>,
    _: Admin,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let id = path_id(path)?;
    let reader = state.ledger.linearizable().await?;
    if reader.account(&id)?.is_none() {
        return Err(ApiError::NotFound("account"));
    }
    let items: Vec<Value> = reader
        .api_keys(&id)?
        .iter()
        .map(|k| {
            json!({
                "key_id": k.key_id,
                "prefix": k.prefix,
                "created_at": render::timestamp(k.created_at_ms),
            })
        })
        .collect();
    Ok(Json(json!({"status": "ok", "account_id": id, "items": items})))
}

#[utoipa::path(
    delete,
    path = "/cluster/accounts/{id}/keys/{key_id}",
    operation_id = "accounts_revoke_key",
    tag = "accounts",
    security(("cluster_secret" = []), ("admin_key" = [])),
    params(
        ("id" = String, Path, description = "An account id"),
        ("key_id" = String, Path, description = "A key id (16 hex)"),
    ),
    responses(
        (status = 200, description = "`{status, key_id, revoked}`", content_type = "application/json", body = Object),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E404,
    )
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    _: Admin,
    path: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let Ok(Path((id, key_id))) = path else {
        return Err(ApiError::NotFound("API key"));
    };
    let id = account_id(&id).map_err(|_| ApiError::NotFound("API key"))?;
    if key_id.len() != 16 || !key_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::NotFound("API key"));
    }
    let op = RevokeApiKey {
        account_id: id.clone(),
        key_id: key_id.to_ascii_lowercase(),
    };
    let info = ops::run(&state, None, op, "API key").await?;
    tracing::info!(account = %id, key_id = %info.key_id, "API key revoked");
    Ok(Json(json!({"status": "ok", "key_id": info.key_id, "revoked": true})))
}

/// The caller's own account: its balance, as an agent (or its dashboard) sees it.
#[utoipa::path(
    get,
    path = "/api/account",
    operation_id = "accounts_me",
    tag = "accounts",
    security(("api_key" = []), ("session" = [])),
    responses(
        (status = 200, description = "`{status, account_id, balance_micros, balance_usdc, created_at}`", content_type = "application/json", body = crate::openapi::schemas::Account),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E404,
    )
)]
pub async fn me(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    // A wallet's session has no account here: it pays each purchase by x402.
    let account = state
        .ledger
        .linearizable()
        .await?
        .account(&caller.account_id)?
        .ok_or(ApiError::NotFound("account"))?;
    Ok(Json(render(&account)))
}

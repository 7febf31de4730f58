//! Backups, for operators holding the cluster secret (an admin key is not enough: the copy holds
//! the session signing keys and webhook secrets); `relay backup` is the client. One at a time.
//!
//! - `GET /cluster/backup`: a consistent copy of the ledger's state, at least as new as every write
//!   acknowledged before the request (a linearizable read), as `application/octet-stream`; headers
//!   name the log index and term it stands at, its state format and its blake3.
//! - `GET /cluster/backup/object?key=K`: the bytes of one object the state references (any other
//!   key is 404, so the route reads nothing else in the bucket).

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use object_store::path::Path;
use object_store::ObjectStoreExt;
use serde::Deserialize;

use crate::auth::ClusterSecret;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The longest object key the object route takes.
const KEY_MAX_BYTES: usize = 1024;

/// One state copy at a time: each holds the whole state in memory.
static COPYING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

#[utoipa::path(
    get,
    path = "/cluster/backup",
    operation_id = "backup_snapshot",
    tag = "cluster",
    security(("cluster_secret" = [])),
    responses(
        (status = 200, description = "A consistent copy of the whole state", content_type = "application/octet-stream", body = crate::openapi::schemas::Binary, headers(("relay-backup-index" = String, description = "The log index it reflects"), ("relay-backup-blake3" = String, description = "Its blake3"))),
        crate::openapi::Common,
        crate::openapi::Authed,
    )
)]
pub async fn snapshot(State(state): State<AppState>, _: ClusterSecret) -> ApiResult<Response> {
    let _copying = COPYING
        .try_acquire()
        .map_err(|_| ApiError::Overloaded("a backup is already being copied on this node"))?;
    let (last_applied, data) = state.ledger.backup().await?;
    let (index, term) = last_applied.map_or((0, 0), |id| (id.index, id.leader_id.term));
    let (data, blake3) = tokio::task::spawn_blocking(move || {
        let hash = blake3::hash(&data).to_hex().to_string();
        (data, hash)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("hashing the backup: {e}")))?;
    tracing::info!(index, term, bytes = data.len(), "backup: state copied");
    Ok((
        [
            (CONTENT_TYPE, "application/octet-stream".to_string()),
            (CONTENT_LENGTH, data.len().to_string()),
        ],
        [
            ("relay-backup-index", index.to_string()),
            ("relay-backup-term", term.to_string()),
            ("relay-state-format", relay_raft::backup::STATE_FORMAT.to_string()),
            ("relay-backup-blake3", blake3),
        ],
        data,
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectQuery {
    key: String,
}

#[utoipa::path(
    get,
    path = "/cluster/backup/object",
    operation_id = "backup_object",
    tag = "cluster",
    security(("cluster_secret" = [])),
    params(
        ("key" = String, Query, description = "An object key the state references"),
    ),
    responses(
        (status = 200, description = "The object's bytes", content_type = "application/octet-stream", body = crate::openapi::schemas::Binary),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E404,
        crate::openapi::E422,
        crate::openapi::E502,
    )
)]
pub async fn object(
    State(state): State<AppState>,
    _: ClusterSecret,
    query: Result<Query<ObjectQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(format!("query: {}", e.body_text())))?;
    if q.key.is_empty() || q.key.len() > KEY_MAX_BYTES {
        return Err(ApiError::InvalidValue {
            field: "key",
            reason: format!("1 to {KEY_MAX_BYTES} bytes"),
        });
    }
    if state.ledger.reader().object_referrer(&q.key)?.is_none() {
        return Err(ApiError::NotFound("referenced object"));
    }
    let got = match state.objects.get(&Path::from(q.key.as_str())).await {
        Ok(got) => got,
        Err(object_store::Error::NotFound { .. }) => {
            state.metrics.integrity_failures.inc();
            tracing::error!(object_key = %q.key, "backup: a referenced object is missing");
            return Err(ApiError::Integrity);
        }
        Err(e) => return Err(e.into()),
    };
    let size = got.meta.size;
    Ok((
        [
            (CONTENT_TYPE, "application/octet-stream".to_string()),
            (CONTENT_LENGTH, size.to_string()),
        ],
        Body::from_stream(got.into_stream()),
    )
        .into_response())
}

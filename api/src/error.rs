//! The API's errors and their one mapping to HTTP:
//! `{"status":"error","error":{"code","message","request_id"}}`.
//!
//! A message is written for the client and never carries internal state: a 500 says
//! "internal error" and the request id, and the detail goes to the log under that id; errors from
//! the ledger's transport or the object store are summed up the same way.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use relay_raft::{LedgerError, Rejection, StoreError};
use serde_json::json;

use crate::request_id;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing required header {0}")]
    MissingHeader(&'static str),
    #[error("invalid header {name}: {reason}")]
    InvalidHeader { name: &'static str, reason: String },
    #[error("invalid {field}: {reason}")]
    InvalidValue { field: &'static str, reason: String },
    #[error("{0}")]
    BadRequest(String),
    #[error("body has {received} bytes but X-Size-Bytes declared {declared}")]
    SizeMismatch { declared: u64, received: u64 },
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The caller proved who it is, and that is not enough for this route.
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("insufficient balance: {balance_micros} micro-USDC available, {needed_micros} needed")]
    InsufficientBalance { balance_micros: u64, needed_micros: u64 },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Gone(&'static str),
    #[error("{what} exceeds the limit of {limit} bytes")]
    TooLarge { what: &'static str, limit: u64 },
    #[error("range not satisfiable for an object of {size} bytes")]
    RangeNotSatisfiable { size: u64 },
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(&'static str),
    #[error("version precondition failed: the current version is {current}")]
    PreconditionFailed { current: u64 },
    #[error("body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("mailbox is full: {0}")]
    MailboxFull(String),
    #[error("webhook backlog full: {0}")]
    WebhookBacklog(String),
    #[error("this handoff must be claimed with POST")]
    PostRequired,
    /// The same `Idempotency-Key` came with a different request.
    #[error("this Idempotency-Key was already used for a different request")]
    IdempotencyKeyReused,
    /// A request with the same `Idempotency-Key` is still being processed.
    #[error("a request with this Idempotency-Key is still in progress; retry when it has finished")]
    IdempotencyInFlight,
    /// The request body came too slowly or stopped.
    #[error("{0}")]
    RequestTimeout(&'static str),
    /// A per-client cap is reached: `what` (requests, uploads, buffered bytes) for this `scope`
    /// (address, account).
    #[error("too many {what} in flight from this {scope}; retry shortly")]
    TooManyRequests { what: &'static str, scope: &'static str },
    /// The node is at a global bound (requests, uploads, buffered bytes).
    #[error("the server is busy ({0}); retry shortly")]
    Overloaded(&'static str),
    /// A node asked to join failed its checks.
    #[error("join refused: {0}")]
    JoinRefused(String),
    /// No leader, no quorum, or a timeout: written for the client (details are logged).
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("object store unavailable")]
    ObjectStore(#[source] object_store::Error),
    #[error("stored object failed its integrity check")]
    Integrity,
    /// The payment header is not a payment (bad base64 or JSON, fields missing, unknown version).
    #[error("{0}")]
    PaymentMalformed(String),
    /// Payment is required, or the one given cannot pay for this request: an x402 402 with
    /// this request's requirements.
    #[error("{}", .0.message)]
    PaymentRequired(Box<PaymentDemand>),
    /// A baton token's scope does not allow this (403 `scope`).
    #[error("{0}")]
    Scope(String),
    /// A read would pass a baton's read budget; nothing was served.
    #[error("the read needs {needed} bytes of egress but {remaining} remain")]
    EgressExhausted { remaining: u64, needed: u64 },
    /// A baton limit was already hit (410 `limit_reached`), or a token's reads are spent.
    #[error("{message}")]
    LimitReached { code: &'static str, message: String },
    /// The operation does not apply to this baton's write kind.
    #[error("{0}")]
    WrongWriteKind(String),
    /// The lease's content is still being uploaded (409 `upload_pending`).
    #[error("the content is still being uploaded; it is readable once the upload completes")]
    UploadPending,
    /// The upload completed already; its bytes cannot change (409 `upload_complete`).
    #[error("the upload is already complete")]
    UploadComplete,
    /// The store does not hold the upload's bytes yet, or not all of them (409).
    #[error("{0}")]
    UploadIncomplete(String),
    /// What the store holds is not what was declared (422 `upload_mismatch`).
    #[error("{0}")]
    UploadMismatch(String),
    /// A tus PATCH at another offset than the upload's (409 `offset_mismatch`).
    #[error("the upload's offset is {offset}, not the Upload-Offset sent")]
    OffsetMismatch { offset: u64 },
    /// The owner's free scratch tier is full (429 `scratch_quota_exceeded`).
    #[error("{0}")]
    ScratchQuota(String),
    /// The owner has as many tus uploads in progress as it may (429 `tus_quota_exceeded`).
    #[error("{0}")]
    TusQuota(String),
    /// A tus PATCH whose body does not match its `Upload-Checksum` (tus: 460); nothing was kept.
    #[error("the PATCH body does not match its Upload-Checksum; nothing of it was kept")]
    ChecksumMismatch,
    /// A tus request without the protocol version this server speaks (412).
    #[error("this server speaks tus 1.0.0 (Tus-Resumable: 1.0.0)")]
    TusVersion,
    /// A body of another type than the route takes (415).
    #[error("{0}")]
    UnsupportedMediaType(&'static str),
    /// A bug or a broken store. The detail is logged, never sent.
    #[error("internal error")]
    Internal(String),
}

/// What an x402 402 carries, built where the node's x402 settings are at hand.
#[derive(Debug)]
pub struct PaymentDemand {
    /// Why: "payment required", or the reason a payment was refused.
    pub message: String,
    /// A reason code (the facilitators' own where one exists).
    pub reason: String,
    /// The 402 body without the request id (x402 v1 `accepts`).
    pub offer: crate::x402::offer::Offer,
    pub config: crate::x402::X402Config,
}

impl From<object_store::Error> for ApiError {
    fn from(e: object_store::Error) -> Self {
        ApiError::ObjectStore(e)
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            MissingHeader(_)
            | InvalidHeader { .. }
            | BadRequest(_)
            | SizeMismatch { .. }
            | InvalidJson(_)
            | PaymentMalformed(_) => StatusCode::BAD_REQUEST,
            Conflict(_) | IdempotencyInFlight | UploadPending | UploadComplete | UploadIncomplete(_) => {
                StatusCode::CONFLICT
            }
            OffsetMismatch { .. } => StatusCode::CONFLICT,
            UploadMismatch(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ScratchQuota(_) | TusQuota(_) => StatusCode::TOO_MANY_REQUESTS,
            TusVersion => StatusCode::PRECONDITION_FAILED,
            ChecksumMismatch => StatusCode::from_u16(460).unwrap_or(StatusCode::BAD_REQUEST),
            UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            MailboxFull(_) | WebhookBacklog(_) | TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            PostRequired | WrongWriteKind(_) => StatusCode::METHOD_NOT_ALLOWED,
            Scope(_) => StatusCode::FORBIDDEN,
            EgressExhausted { .. } => StatusCode::TOO_MANY_REQUESTS,
            LimitReached { .. } => StatusCode::GONE,
            PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            InvalidValue { .. } | IdempotencyKeyReused | JoinRefused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Forbidden(_) => StatusCode::FORBIDDEN,
            InsufficientBalance { .. } | PaymentRequired(_) => StatusCode::PAYMENT_REQUIRED,
            NotFound(_) => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Gone(_) => StatusCode::GONE,
            TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Unavailable(_) | ObjectStore(_) | Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            Integrity => StatusCode::BAD_GATEWAY,
            Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            MissingHeader(_) => "missing_header",
            InvalidHeader { .. } => "invalid_header",
            InvalidValue { .. } => "invalid_value",
            BadRequest(_) => "bad_request",
            SizeMismatch { .. } => "size_mismatch",
            Unauthorized(_) => "unauthorized",
            Forbidden(_) => "forbidden",
            InsufficientBalance { .. } => "insufficient_balance",
            NotFound(_) => "not_found",
            MethodNotAllowed => "method_not_allowed",
            Conflict(_) => "conflict",
            MailboxFull(_) => "mailbox_full",
            WebhookBacklog(_) => "webhook_backlog",
            PostRequired => "post_required",
            Scope(_) => "scope",
            EgressExhausted { .. } => "egress_exhausted",
            LimitReached { code, .. } => code,
            WrongWriteKind(_) => "wrong_write_kind",
            PreconditionFailed { .. } => "precondition_failed",
            InvalidJson(_) => "invalid_json",
            IdempotencyKeyReused => "idempotency_key_reused",
            IdempotencyInFlight => "idempotency_key_in_flight",
            RequestTimeout(_) => "request_timeout",
            TooManyRequests { .. } => "rate_limited",
            Overloaded(_) => "overloaded",
            JoinRefused(_) => "join_refused",
            Gone(_) => "gone",
            TooLarge { .. } => "payload_too_large",
            RangeNotSatisfiable { .. } => "range_not_satisfiable",
            Unavailable(_) => "unavailable",
            ObjectStore(_) => "object_store_unavailable",
            Integrity => "integrity_error",
            PaymentMalformed(_) => "invalid_payment",
            PaymentRequired(_) => "payment_required",
            UploadPending => "upload_pending",
            UploadComplete => "upload_complete",
            UploadIncomplete(_) => "upload_incomplete",
            UploadMismatch(_) => "upload_mismatch",
            OffsetMismatch { .. } => "offset_mismatch",
            ScratchQuota(_) => "scratch_quota_exceeded",
            TusQuota(_) => "tus_quota_exceeded",
            TusVersion => "tus_version",
            ChecksumMismatch => "checksum_mismatch",
            UnsupportedMediaType(_) => "unsupported_media_type",
            Internal(_) => "internal",
        }
    }

    /// How long a client should wait before trying again, for the errors that say "retry".
    fn retry_after(&self) -> Option<Duration> {
        use ApiError::*;
        match self {
            Unavailable(_) | ObjectStore(_) | Overloaded(_) | TooManyRequests { .. } | IdempotencyInFlight => {
                Some(Duration::from_secs(1))
            }
            WebhookBacklog(_) => Some(Duration::from_secs(5)),
            _ => None,
        }
    }

    /// Maps a domain rejection from the ledger. `what` names the resource in 404/410 messages.
    pub fn from_rejection(rejection: Rejection, what: &'static str) -> ApiError {
        match rejection {
            Rejection::AccountNotFound => ApiError::Unauthorized("account not found"),
            Rejection::LeaseNotFound => ApiError::NotFound(what),
            Rejection::LeaseGone => ApiError::Gone("lease has expired or was deleted"),
            Rejection::LeaseExists => ApiError::Internal("lease id collision".into()),
            Rejection::InsufficientBalance {
                balance_micros,
                needed_micros,
            } => ApiError::InsufficientBalance {
                balance_micros,
                needed_micros,
            },
            Rejection::Invalid(reason) => ApiError::InvalidValue {
                field: "request",
                reason,
            },
            Rejection::WorkflowExists => ApiError::Conflict("a live checkpoint with this workflow id already exists"),
            Rejection::VersionMismatch { current } => ApiError::PreconditionFailed { current },
            Rejection::TooLarge { limit, .. } => ApiError::TooLarge { what: "body", limit },
            Rejection::MailboxFull(reason) => ApiError::MailboxFull(reason),
            Rejection::WebhookBacklog(reason) => ApiError::WebhookBacklog(reason),
            Rejection::MessageNotFound => ApiError::NotFound("message"),
            Rejection::HandoffNotFound => ApiError::NotFound("handoff"),
            Rejection::HandoffExpired => ApiError::Gone("handoff token has expired"),
            Rejection::HandoffExhausted => ApiError::Gone("handoff token has no claims left"),
            Rejection::PostRequired => ApiError::PostRequired,
            Rejection::NonceReused => ApiError::Unauthorized("this sign-in message was already used"),
            Rejection::SessionNotFound => ApiError::NotFound("session"),
            Rejection::KeyNotFound => ApiError::NotFound("API key"),
            // The purchase path answers these with a 402 and a fresh offer.
            r @ (Rejection::PaymentReused | Rejection::PriceMismatch { .. } | Rejection::PaymentExpired) => {
                ApiError::InvalidValue {
                    field: "payment",
                    reason: r.to_string(),
                }
            }
            Rejection::TooManyHandoffs(_) => {
                ApiError::Conflict("this lease has reached its maximum number of handoffs")
            }
            Rejection::IdempotencyKeyReused => ApiError::IdempotencyKeyReused,
            Rejection::ContentChanged => {
                ApiError::Unavailable("the content changed while it was being read; retry".into())
            }
            Rejection::RangeNotSatisfiable { size } => ApiError::RangeNotSatisfiable { size },
            Rejection::EgressExhausted { remaining, needed } => ApiError::EgressExhausted { remaining, needed },
            Rejection::ReadCapExhausted => ApiError::LimitReached {
                code: "read_cap_exhausted",
                message: "this token has no reads left".into(),
            },
            Rejection::Scope(what) => ApiError::Scope(format!("this token's scope does not allow {what}")),
            Rejection::TokenInvalid => ApiError::Unauthorized("invalid, revoked or expired baton token"),
            Rejection::TooManyTokens(max) => ApiError::InvalidValue {
                field: "sharing.tokens",
                reason: format!("a baton may have at most {max} tokens"),
            },
            Rejection::TooManyEntries(_) => ApiError::Conflict("the baton holds its maximum number of entries"),
            Rejection::TooManyBatons(_) => ApiError::Conflict("this owner has its maximum number of live batons"),
            Rejection::LimitReached(message) => ApiError::LimitReached {
                code: "limit_reached",
                message,
            },
            Rejection::WrongWriteKind(why) => ApiError::WrongWriteKind(why),
            Rejection::EntryNotFound => ApiError::NotFound("entry"),
            Rejection::TokenNotFound => ApiError::NotFound("token"),
            Rejection::UploadNotFound => ApiError::NotFound("upload"),
            Rejection::UploadGone => ApiError::Gone("the upload was abandoned, ended or is past its deadline"),
            Rejection::UploadPending => ApiError::UploadPending,
            Rejection::UploadComplete => ApiError::UploadComplete,
            Rejection::UploadMismatch(why) => ApiError::UploadMismatch(why),
            Rejection::OffsetMismatch { offset } => ApiError::OffsetMismatch { offset },
            Rejection::ScratchQuota(why) => ApiError::ScratchQuota(why),
            Rejection::TusQuota(why) => ApiError::TusQuota(why),
            Rejection::TooManyVersions(_) => ApiError::Conflict(
                "a witnessed baton takes at most its entry limit of versions (each is kept for the witness retention)",
            ),
        }
    }
}

impl From<LedgerError> for ApiError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::NotLeader { .. } | LedgerError::Unavailable(_) => {
                tracing::warn!(request_id = %request_id::current(), error = %e, "ledger unavailable");
                ApiError::Unavailable("the cluster has no leader or quorum right now".into())
            }
            LedgerError::TooLarge { limit_bytes, .. } => ApiError::TooLarge {
                what: "request",
                limit: limit_bytes,
            },
            LedgerError::Store(_) | LedgerError::Fatal(_) | LedgerError::Mismatch(_) => {
                ApiError::Internal(e.to_string())
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let request_id = request_id::current();
        match &self {
            ApiError::Internal(detail) => {
                tracing::error!(%request_id, code = self.code(), detail = %detail, "request failed")
            }
            ApiError::ObjectStore(e) => {
                tracing::error!(%request_id, code = self.code(), error = %e, "object store failed")
            }
            _ if status.is_server_error() => {
                tracing::error!(%request_id, code = self.code(), error = %self, "request failed")
            }
            _ => tracing::debug!(%request_id, code = self.code(), error = %self, "request rejected"),
        }
        if let ApiError::PaymentRequired(demand) = &self {
            return payment_required(demand, &request_id);
        }
        let body = json!({"status": "error", "error": {
            "code": self.code(),
            "message": self.to_string(),
            "request_id": request_id,
        }});
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(after) = self.retry_after() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(after.as_secs()));
        }
        match &self {
            ApiError::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::PostRequired => {
                headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
            }
            ApiError::RangeNotSatisfiable { size } => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    headers.insert(header::CONTENT_RANGE, v);
                }
            }
            ApiError::RequestTimeout(_) => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        response
    }
}

/// The x402 402: the v1 body (x402's `error` is a string, so the project's code and request id sit
/// beside it) and the v2 `PAYMENT-REQUIRED` header, both for this request's exact price.
fn payment_required(demand: &PaymentDemand, request_id: &str) -> Response {
    use crate::x402::offer;
    let message = format!("{} ({})", demand.message, demand.reason);
    let body = offer::body_v1(&demand.config, &demand.offer, &message, "payment_required", request_id);
    let mut response = (StatusCode::PAYMENT_REQUIRED, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&offer::header_v2(&demand.config, &demand.offer, &message)) {
        response.headers_mut().insert("payment-required", v);
    }
    response
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {

    /// Every error code the API can answer is one the README's error list names: the codes are
    /// read from this file's own source (`code()` and the `code:` fields), so a new code without
    /// its line in the README fails here.
    #[test]
    fn the_readme_names_every_error_code() {
        let source = include_str!("error.rs");
        let readme = include_str!("../../README.md");
        let body = &source[source.find("pub fn code(&self)").unwrap()..];
        let body = &body[..body.find("\n    }\n").unwrap()];
        let mut codes: Vec<&str> = body
            .split("=> \"")
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .collect();
        codes.extend(source.split("code: \"").skip(1).filter_map(|s| s.split('"').next()));
        assert!(codes.len() > 40, "{codes:?}");
        for code in codes {
            assert!(
                readme.contains(&format!("`{code}`")),
                "README's error list lacks `{code}`"
            );
        }
    }

    use super::*;

    /// A 500 carries "internal error" and a request id, never the detail it was made from.
    #[tokio::test]
    async fn internal_errors_keep_their_detail_in_the_log() {
        let secret = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0";
        let response = request_id::scope("req-1".into(), async {
            ApiError::Internal(format!("Outcome::LeaseCreated {{ webhook_secret: {secret} }}")).into_response()
        })
        .await;
        assert_eq!(response.status(), 500);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(!text.contains("whsec_") && !text.contains("LeaseCreated"), "{text}");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["message"], "internal error");
        assert_eq!(v["error"]["request_id"], "req-1");
    }

    /// Transport errors of the ledger are summed up for the client; the detail stays in the log.
    #[tokio::test]
    async fn unavailable_hides_the_transport_detail() {
        let e: ApiError = LedgerError::Unavailable("rpc to 10.1.2.3:9080: h2 protocol error".into()).into();
        let response = e.into_response();
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["retry-after"], "1");
        let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        assert!(!String::from_utf8_lossy(&body).contains("10.1.2.3"));
    }
}

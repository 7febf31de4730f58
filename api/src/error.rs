//! The API's errors and their one mapping to HTTP: `{"status":"error","error":{"code","message"}}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use relay_raft::{LedgerError, Rejection, StoreError};
use serde_json::json;

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
    #[error("this handoff must be claimed with POST")]
    PostRequired,
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("object store unavailable: {0}")]
    ObjectStore(#[from] object_store::Error),
    #[error("stored object failed its integrity check")]
    Integrity,
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            MissingHeader(_) | InvalidHeader { .. } | BadRequest(_) | SizeMismatch { .. } | InvalidJson(_) => {
                StatusCode::BAD_REQUEST
            }
            Conflict(_) => StatusCode::CONFLICT,
            MailboxFull(_) => StatusCode::TOO_MANY_REQUESTS,
            PostRequired => StatusCode::METHOD_NOT_ALLOWED,
            PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            InvalidValue { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Unauthorized(_) => StatusCode::UNAUTHORIZED,
            InsufficientBalance { .. } => StatusCode::PAYMENT_REQUIRED,
            NotFound(_) => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Gone(_) => StatusCode::GONE,
            TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            Unavailable(_) | ObjectStore(_) => StatusCode::SERVICE_UNAVAILABLE,
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
            InsufficientBalance { .. } => "insufficient_balance",
            NotFound(_) => "not_found",
            MethodNotAllowed => "method_not_allowed",
            Conflict(_) => "conflict",
            MailboxFull(_) => "mailbox_full",
            PostRequired => "post_required",
            PreconditionFailed { .. } => "precondition_failed",
            InvalidJson(_) => "invalid_json",
            Gone(_) => "gone",
            TooLarge { .. } => "payload_too_large",
            RangeNotSatisfiable { .. } => "range_not_satisfiable",
            Unavailable(_) => "unavailable",
            ObjectStore(_) => "object_store_unavailable",
            Integrity => "integrity_error",
            Internal(_) => "internal",
        }
    }

    /// The ledger answered a command with an outcome of another command: a bug, never input.
    pub fn unexpected(outcome: relay_raft::Outcome) -> ApiError {
        ApiError::Internal(format!("unexpected ledger outcome {outcome:?}"))
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
            Rejection::MessageNotFound => ApiError::NotFound("message"),
            Rejection::HandoffNotFound => ApiError::NotFound("handoff"),
            Rejection::HandoffExpired => ApiError::Gone("handoff token has expired"),
            Rejection::HandoffExhausted => ApiError::Gone("handoff token has no claims left"),
            Rejection::PostRequired => ApiError::PostRequired,
            Rejection::TooManyHandoffs(_) => {
                ApiError::Conflict("this lease has reached its maximum number of handoffs")
            }
        }
    }
}

impl From<LedgerError> for ApiError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::NotLeader { .. } | LedgerError::Unavailable(_) => ApiError::Unavailable(e.to_string()),
            LedgerError::Store(_) | LedgerError::Fatal(_) => ApiError::Internal(e.to_string()),
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
        if status.is_server_error() {
            tracing::error!(code = self.code(), error = %self, "request failed");
        } else {
            tracing::debug!(code = self.code(), error = %self, "request rejected");
        }
        let body = json!({"status": "error", "error": {"code": self.code(), "message": self.to_string()}});
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        match &self {
            ApiError::Unavailable(_) | ApiError::ObjectStore(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
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
            _ => {}
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

//! A typed client of Relay's HTTP API: each method builds one well-formed request (path,
//! required headers, credentials) as a [`Call`]; the caller adds what is optional and either
//! sends it for a [`Reply`] (status, headers, whole body) or takes the raw request, so tests can
//! still assert status codes and bodies exactly.

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, RequestBuilder};
use serde_json::Value;

use crate::KitError;

/// Listing pages [`Client::all_leases`] follows at most.
const LEASE_PAGES_MAX: usize = 100;

/// The path (from `/api/`) of a URL the API handed out (a drop or claim URL names the node that
/// made it), to send it through any node.
pub fn api_path(url: &str) -> Option<&str> {
    url.find("/api/").map(|i| &url[i..])
}

/// One node's API, with the credential its calls carry.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    auth: Option<(HeaderName, HeaderValue)>,
    timeout: Option<Duration>,
}

impl Client {
    /// Calls to `base` (`http://IP:port`) without credentials.
    pub fn new(http: reqwest::Client, base: &str) -> Client {
        Client {
            http,
            base: base.trim_end_matches('/').to_string(),
            auth: None,
            timeout: None,
        }
    }

    /// Calls carry `Authorization: Bearer <key>` (an agent's or the admin key). A key that
    /// cannot be a header value is sent as no credential at all, which the node answers 401.
    pub fn bearer(mut self, key: &str) -> Client {
        self.auth = HeaderValue::try_from(format!("Bearer {key}"))
            .ok()
            .map(|v| (AUTHORIZATION, v));
        self
    }

    /// Calls carry the cluster secret (`X-Cluster-Secret`), which the admin routes accept.
    pub fn secret(mut self, secret: &str) -> Client {
        self.auth = HeaderValue::try_from(secret)
            .ok()
            .map(|v| (HeaderName::from_static("x-cluster-secret"), v));
        self
    }

    /// Every call gives up after `timeout` (connecting, sending and reading the whole answer).
    pub fn timeout(mut self, timeout: Duration) -> Client {
        self.timeout = Some(timeout);
        self
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// `path` on this node; a URL the API handed out (a drop or claim URL naming whichever node
    /// made it) is used as it is.
    pub fn url<'a>(&self, path: &'a str) -> Cow<'a, str> {
        if path.starts_with("http://") || path.starts_with("https://") {
            Cow::Borrowed(path)
        } else {
            Cow::Owned(format!("{}{path}", self.base))
        }
    }

    /// Any request with this client's credential.
    pub fn call(&self, method: Method, path: &str) -> Call {
        let call = self.anonymous(method, path);
        match &self.auth {
            Some((name, value)) => call.with(|r| r.header(name.clone(), value.clone())),
            None => call,
        }
    }

    /// Any request without credentials (drops and claims: their token is the credential).
    pub fn anonymous(&self, method: Method, path: &str) -> Call {
        let mut req = self.http.request(method, self.url(path).as_ref());
        if let Some(t) = self.timeout {
            req = req.timeout(t);
        }
        Call { req }
    }

    pub fn get(&self, path: &str) -> Call {
        self.call(Method::GET, path)
    }

    // Storage.

    /// `POST /api/store`: `body` kept for `duration_s` under `file_name`.
    pub fn store(&self, file_name: &str, duration_s: u64, body: impl Into<Bytes>) -> Call {
        let body = body.into();
        self.call(Method::POST, "/api/store")
            .with(|r| {
                r.header("x-file-name", file_name)
                    .header("x-size-bytes", body.len().to_string())
                    .header("x-duration-seconds", duration_s.to_string())
            })
            .body(body)
    }

    pub fn download(&self, lease_id: &str) -> Call {
        self.get(&format!("/api/download/{lease_id}"))
    }

    /// `DELETE /api/store/:lease_id`.
    pub fn delete_lease(&self, lease_id: &str) -> Call {
        self.call(Method::DELETE, &format!("/api/store/{lease_id}"))
    }

    /// One page of `GET /api/leases` (the first without a cursor).
    pub fn leases(&self, limit: Option<usize>, cursor: Option<&str>) -> Call {
        let mut query = Vec::new();
        if let Some(l) = limit {
            query.push(format!("limit={l}"));
        }
        if let Some(c) = cursor {
            query.push(format!("cursor={c}"));
        }
        match query.is_empty() {
            true => self.get("/api/leases"),
            false => self.get(&format!("/api/leases?{}", query.join("&"))),
        }
    }

    /// Every lease row, following `next_cursor` (`limit` rows a page, at most 100 pages).
    pub async fn all_leases(&self, limit: usize) -> Result<Vec<Value>, KitError> {
        let mut rows = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..LEASE_PAGES_MAX {
            let page = self
                .leases(Some(limit), cursor.as_deref())
                .send()
                .await?
                .expect_status("lease listing", 200)?
                .json();
            let Some(leases) = page["leases"].as_array() else {
                return Err(KitError::Malformed {
                    what: "lease listing".into(),
                    body: page.to_string(),
                });
            };
            rows.extend(leases.iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return Ok(rows),
            }
        }
        Err(KitError::Malformed {
            what: "lease listing".into(),
            body: format!("more than {LEASE_PAGES_MAX} pages"),
        })
    }

    // Checkpoints.

    /// `POST /api/checkpoint`: a JSON state under `workflow_id`, optionally reserving
    /// `max_body_bytes`.
    pub fn checkpoint_create(
        &self,
        workflow_id: &str,
        duration_s: u64,
        max_body_bytes: Option<u64>,
        body: impl Into<Bytes>,
    ) -> Call {
        self.call(Method::POST, "/api/checkpoint")
            .with(|r| {
                let r = r
                    .header("x-workflow-id", workflow_id)
                    .header("x-duration-seconds", duration_s.to_string());
                match max_body_bytes {
                    Some(m) => r.header("x-max-body-bytes", m.to_string()),
                    None => r,
                }
            })
            .json_body(body)
    }

    pub fn checkpoint_get(&self, workflow_id: &str) -> Call {
        self.get(&format!("/api/checkpoint/{workflow_id}"))
    }

    /// Read and delete in one step.
    pub fn checkpoint_consume(&self, workflow_id: &str) -> Call {
        self.get(&format!("/api/checkpoint/{workflow_id}?consume=true"))
    }

    /// `PUT /api/checkpoint/:workflow_id`; add [`Call::if_match`] for compare-and-set.
    pub fn checkpoint_put(&self, workflow_id: &str, body: impl Into<Bytes>) -> Call {
        self.call(Method::PUT, &format!("/api/checkpoint/{workflow_id}"))
            .json_body(body)
    }

    // Batons.

    /// `POST /v1/baton/quote` for a shape (free, no credentials).
    pub fn baton_quote(&self, shape: &Value) -> Call {
        self.anonymous(Method::POST, "/v1/baton/quote")
            .json_body(shape.to_string())
    }

    /// `POST /v1/baton`: a shape, with `content_base64` for a first write.
    pub fn baton_create(&self, shape: &Value) -> Call {
        self.call(Method::POST, "/v1/baton").json_body(shape.to_string())
    }

    /// `GET /v1/baton/:id` with this client's credential (the owner's, or a `bt_` token's).
    pub fn baton_read(&self, baton_id: &str) -> Call {
        self.get(&format!("/v1/baton/{baton_id}"))
    }

    /// `PUT /v1/baton/:id`: replace the content; add [`Call::if_match`] for compare-and-set.
    pub fn baton_put(&self, baton_id: &str, body: impl Into<Bytes>) -> Call {
        self.call(Method::PUT, &format!("/v1/baton/{baton_id}"))
            .body(body.into())
    }

    /// `POST /v1/baton/:id/entries`: append one entry.
    pub fn baton_append(&self, baton_id: &str, entry: impl Into<Bytes>) -> Call {
        self.call(Method::POST, &format!("/v1/baton/{baton_id}/entries"))
            .content_type("text/plain")
            .body(entry.into())
    }

    /// `GET /v1/baton/:id/entries?after=&limit=`.
    pub fn baton_entries(&self, baton_id: &str, after: u64, limit: u32) -> Call {
        self.get(&format!("/v1/baton/{baton_id}/entries?after={after}&limit={limit}"))
    }

    /// `GET /v1/baton/:id/meta` (the owner's).
    pub fn baton_meta(&self, baton_id: &str) -> Call {
        self.get(&format!("/v1/baton/{baton_id}/meta"))
    }

    /// Any other baton route: `POST /v1/baton/:id/<action>` with a JSON body.
    pub fn baton_action(&self, baton_id: &str, action: &str, body: &Value) -> Call {
        self.call(Method::POST, &format!("/v1/baton/{baton_id}/{action}"))
            .json_body(body.to_string())
    }

    /// `DELETE /v1/baton/:id` (`hard`: gone now, not a tombstone).
    pub fn baton_delete(&self, baton_id: &str, hard: bool) -> Call {
        self.call(Method::DELETE, &format!("/v1/baton/{baton_id}?hard={hard}"))
    }

    // Mailboxes.

    /// `POST /api/mailbox` reserving `capacity_bytes`; limits and webhooks are optional headers.
    pub fn mailbox_create(&self, capacity_bytes: u64, duration_s: u64) -> Call {
        self.call(Method::POST, "/api/mailbox").with(|r| {
            r.header("x-capacity-bytes", capacity_bytes.to_string())
                .header("x-duration-seconds", duration_s.to_string())
        })
    }

    /// A drop to the `drop_url` (or its path) a mailbox create answered; no credentials.
    pub fn drop_message(&self, drop_url: &str, body: impl Into<Bytes>) -> Call {
        self.anonymous(Method::POST, drop_url).body(body.into())
    }

    /// The queued messages (`poll_url`).
    pub fn mailbox_poll(&self, lease_id: &str) -> Call {
        self.get(&format!("/api/mailbox/{lease_id}/messages"))
    }

    /// One message, removed unless the mailbox keeps messages on read.
    pub fn mailbox_pickup(&self, lease_id: &str, message_id: &str) -> Call {
        self.get(&format!("/api/mailbox/{lease_id}/messages/{message_id}"))
    }

    // Handoffs.

    /// `POST /api/handoff/:lease_id` with its JSON options (`max_claims`, `delete_on_claim`, …).
    pub fn handoff_create(&self, lease_id: &str, options: &Value) -> Call {
        self.call(Method::POST, &format!("/api/handoff/{lease_id}"))
            .json_body(options.to_string())
    }

    /// A claim of the `claim_url` (or its path) a handoff answered with `method` (GET, POST, or
    /// HEAD, which counts nothing); no credentials.
    pub fn claim(&self, method: Method, claim_url: &str) -> Call {
        self.anonymous(method, claim_url)
    }

    /// The outstanding tokens of a lease.
    pub fn handoffs(&self, lease_id: &str) -> Call {
        self.get(&format!("/api/handoffs/{lease_id}"))
    }

    pub fn revoke(&self, handoff_id: &str) -> Call {
        self.call(Method::DELETE, &format!("/api/handoffs/{handoff_id}"))
    }

    // Prices and the cluster.

    pub fn pricing(&self) -> Call {
        self.anonymous(Method::GET, "/api/pricing")
    }

    pub fn quote(&self, size_bytes: u64, duration_s: u64) -> Call {
        let path = format!("/api/quote?size_bytes={size_bytes}&duration_seconds={duration_s}");
        self.anonymous(Method::GET, &path)
    }

    /// `GET /cluster/status` (admin key or cluster secret).
    pub fn cluster_status(&self) -> Call {
        self.get("/cluster/status")
    }

    /// `POST /cluster/pricing` with `changes` as the JSON body (admin key or cluster secret).
    pub fn set_pricing(&self, changes: &Value) -> Call {
        self.call(Method::POST, "/cluster/pricing")
            .json_body(changes.to_string())
    }
}

/// A request ready to go; optional headers are added before it is sent.
pub struct Call {
    req: RequestBuilder,
}

impl Call {
    /// Any other header (an optional limit, a webhook URL, a content type).
    pub fn header(self, name: &str, value: &str) -> Call {
        self.with(|r| r.header(name, value))
    }

    fn with(self, f: impl FnOnce(RequestBuilder) -> RequestBuilder) -> Call {
        Call { req: f(self.req) }
    }

    /// `Idempotency-Key`: a retry with the same key and request gets the first answer back.
    pub fn idempotency_key(self, key: &str) -> Call {
        self.with(|r| r.header("idempotency-key", key))
    }

    /// `If-Match: <version>`: write only if nobody wrote since.
    pub fn if_match(self, version: u64) -> Call {
        self.with(|r| r.header("if-match", version.to_string()))
    }

    pub fn content_type(self, content_type: &str) -> Call {
        self.with(|r| r.header(CONTENT_TYPE, content_type))
    }

    /// The request body.
    pub fn body(self, body: Bytes) -> Call {
        self.with(|r| r.body(body))
    }

    fn json_body(self, body: impl Into<Bytes>) -> Call {
        self.content_type("application/json").body(body.into())
    }

    /// The request as reqwest's, for a caller that wants the raw response.
    pub fn request(self) -> RequestBuilder {
        self.req
    }

    /// Sends it and reads the whole answer. A connection never made is [`KitError::Refused`];
    /// anything lost after (timeout, reset, a body cut short) is [`KitError::Lost`], as its
    /// effect is unknown.
    pub async fn send(self) -> Result<Reply, KitError> {
        let mut resp = self.req.send().await.map_err(|e| {
            if e.is_connect() {
                KitError::Refused(e.to_string())
            } else {
                KitError::Lost(e.to_string())
            }
        })?;
        let status = resp.status().as_u16();
        // Moved, not copied: load generators call this in their hot loop.
        let headers = std::mem::take(resp.headers_mut());
        let body = resp
            .bytes()
            .await
            .map_err(|e| KitError::Lost(format!("reading the body: {e}")))?;
        Ok(Reply { status, headers, body })
    }
}

/// A whole answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON; `Null` when it is not JSON, so callers may index it freely.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    pub fn header_u64(&self, name: &str) -> Option<u64> {
        self.header(name)?.parse().ok()
    }

    /// The body as text (lossy), for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Itself when the status is `want`; else an error naming `what`, the status and the body.
    pub fn expect_status(self, what: &str, want: u16) -> Result<Reply, KitError> {
        if self.status == want {
            Ok(self)
        } else {
            Err(KitError::Status {
                what: what.to_string(),
                status: self.status,
                body: self.text(),
            })
        }
    }
}

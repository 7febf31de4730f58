//! One API call: the connection (URL, key, CA), retries on an unknown outcome, and the error an
//! answer means.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::args::ClientConn;

/// Attempts for one request: the first and three retries.
const ATTEMPTS: u32 = 4;
const BACKOFF_MAX: Duration = Duration::from_secs(5);
const TIMEOUT: Duration = Duration::from_secs(600);
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// What can go wrong, each with its own exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("{status} {code}: {message}")]
    Api { status: u16, code: String, message: String },
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{0}")]
    Io(String),
}

impl CliError {
    /// 0 ok; 1 any other failure; 2 usage; 3 not found; 4 gone (expired, deleted, used up);
    /// 5 payment required; 6 unavailable (no quorum, overloaded, unreachable: try again);
    /// 7 not allowed (the key is missing, wrong or not enough).
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Api { status: 404, .. } => 3,
            CliError::Api { status: 410, .. } => 4,
            CliError::Api { status: 402, .. } => 5,
            CliError::Api { status: 503, .. } | CliError::Api { status: 429, .. } => 6,
            CliError::Unreachable { .. } => 6,
            CliError::Api { status: 401, .. } | CliError::Api { status: 403, .. } => 7,
            _ => 1,
        }
    }
}

/// The profile file's fields.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Profile {
    url: Option<String>,
    key: Option<String>,
    ca: Option<PathBuf>,
}

fn profile(conn: &ClientConn) -> Result<Profile, CliError> {
    let (path, required) = match &conn.profile {
        Some(p) => (p.clone(), true),
        None => match std::env::var_os("HOME") {
            Some(home) => (Path::new(&home).join(".config/relay/profile.toml"), false),
            None => return Ok(Profile::default()),
        },
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => return Ok(Profile::default()),
        Err(e) => return Err(CliError::Usage(format!("profile {}: {e}", path.display()))),
    };
    let profile: Profile =
        toml::from_str(&text).map_err(|e| CliError::Usage(format!("profile {}: {e}", path.display())))?;
    if profile.key.is_some() {
        use std::os::unix::fs::PermissionsExt;
        if std::fs::metadata(&path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0) {
            eprintln!(
                "relay: warning: {} holds a key and others can read it; chmod 600 it",
                path.display()
            );
        }
    }
    Ok(profile)
}

/// A client of one node.
pub struct Conn {
    http: reqwest::Client,
    pub base: String,
    key: Option<String>,
    insecure_http: bool,
    /// Whether a request was sent again after an unknown outcome.
    retried: std::sync::atomic::AtomicBool,
    pub json: bool,
    pub quiet: bool,
}

/// A request body that can be sent again on a retry.
pub enum Body {
    Empty,
    Json(Value),
    Bytes(Vec<u8>),
    /// A file streamed with a progress bar; `None` is stdin, read whole first.
    File(PathBuf),
}

impl Conn {
    pub fn new(conn: &ClientConn) -> Result<Conn, CliError> {
        let profile = profile(conn)?;
        let base = conn
            .url
            .clone()
            .or(profile.url)
            .unwrap_or_else(|| DEFAULT_URL.to_string())
            .trim_end_matches('/')
            .to_string();
        if !base.starts_with("http://") && !base.starts_with("https://") {
            return Err(CliError::Usage(format!(
                "--url {base}: give an http:// or https:// URL"
            )));
        }
        let key = conn.key.clone().or(profile.key).filter(|k| !k.is_empty());
        let mut builder = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("relay-cli/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = conn.ca.clone().or(profile.ca) {
            let pem = std::fs::read(&ca).map_err(|e| CliError::Usage(format!("--ca {}: {e}", ca.display())))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| CliError::Usage(format!("--ca {}: {e}", ca.display())))?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().map_err(|e| CliError::Io(format!("HTTP client: {e}")))?;
        Ok(Conn {
            http,
            base,
            key,
            insecure_http: conn.insecure_http,
            retried: Default::default(),
            json: conn.json,
            quiet: conn.quiet,
        })
    }

    /// Whether any request so far was sent more than once.
    pub fn retried(&self) -> bool {
        self.retried.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn url(&self, path: &str) -> String {
        match path.starts_with("http://") || path.starts_with("https://") {
            true => path.to_string(),
            false => format!("{}{path}", self.base),
        }
    }

    /// Sends one request, retrying what may not have happened: a connection that failed or
    /// timed out, 503 and 429 (after `Retry-After`), and 409 `idempotency_key_in_flight`. Writes
    /// carry an `Idempotency-Key`, the same on every attempt, so a retried write is applied once.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: &Body,
        authed: bool,
    ) -> Result<reqwest::Response, CliError> {
        let url = self.url(path);
        if authed {
            // Checked on the URL this request goes to, which a claim or drop link may name.
            crate::net_args::check_secret_url(&url, self.insecure_http, "--insecure-http").map_err(CliError::Usage)?;
        }
        for (name, value) in headers {
            if value.chars().any(char::is_control) {
                return Err(CliError::Usage(format!("{name}: no control characters")));
            }
        }
        let key = match method == Method::POST || method == Method::PUT {
            true => Some(format!("cli-{}", ulid::Ulid::new())),
            false => None,
        };
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                self.retried.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            let mut req = self.http.request(method.clone(), &url);
            if authed {
                let key = self.key.as_deref().ok_or_else(|| {
                    CliError::Usage("give --key (or RELAY_API_KEY, or `key` in the profile file)".into())
                })?;
                req = req.bearer_auth(key);
            }
            if let Some(k) = &key {
                req = req.header("idempotency-key", k);
            }
            for (name, value) in headers {
                req = req.header(*name, value);
            }
            req = match body {
                Body::Empty => req,
                Body::Json(v) => req.header("content-type", "application/json").body(v.to_string()),
                Body::Bytes(b) => req.body(b.clone()),
                Body::File(path) => {
                    let (len, stream) = super::transfer::upload_stream(path, self.quiet).await?;
                    req.header("content-length", len)
                        .body(reqwest::Body::wrap_stream(stream))
                }
            };
            let wait = match req.send().await {
                Ok(resp) => {
                    let retry = match resp.status() {
                        StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => true,
                        StatusCode::CONFLICT => resp.headers().get("retry-after").is_some_and(|_| key.is_some()),
                        _ => false,
                    };
                    if !retry || attempt + 1 == ATTEMPTS {
                        return Ok(resp);
                    }
                    let after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                        .map(Duration::from_secs);
                    last = Some(CliError::Api {
                        status: resp.status().as_u16(),
                        code: String::new(),
                        message: "retrying".into(),
                    });
                    after
                }
                // Refused before anything was sent, or sent with no answer: with the same key the
                // retry is the same request.
                Err(e) if e.is_connect() || e.is_timeout() || e.is_request() => {
                    last = Some(CliError::Unreachable {
                        url: url.clone(),
                        reason: error_chain(&e),
                    });
                    None
                }
                Err(e) => {
                    return Err(CliError::Unreachable {
                        url,
                        reason: error_chain(&e),
                    })
                }
            };
            let backoff = Duration::from_millis(250 << attempt).min(BACKOFF_MAX);
            let wait = wait.unwrap_or(backoff).min(BACKOFF_MAX);
            if !self.quiet {
                eprintln!("relay: no answer yet from {url}; retrying in {} ms", wait.as_millis());
            }
            tokio::time::sleep(wait).await;
        }
        Err(last.unwrap_or(CliError::Unreachable {
            url,
            reason: "no answer".into(),
        }))
    }

    /// A call whose answer is JSON: the JSON on success, the API's error otherwise.
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Body,
        authed: bool,
    ) -> Result<Value, CliError> {
        let resp = self.send(method, path, headers, &body, authed).await?;
        ok(resp)
            .await?
            .json()
            .await
            .map_err(|e| CliError::Io(format!("the answer is not JSON: {e}")))
    }
}

/// The response if it succeeded, else the error its body names.
pub async fn ok(resp: reqwest::Response) -> Result<reqwest::Response, CliError> {
    if resp.status().is_success() || resp.status() == StatusCode::NOT_MODIFIED {
        return Ok(resp);
    }
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    let (code, message) = match (&body["error"], &body["code"]) {
        (Value::Object(e), _) => (
            e.get("code").and_then(Value::as_str).unwrap_or(""),
            e.get("message").and_then(Value::as_str).unwrap_or(""),
        ),
        // x402's 402 carries its code beside a string `error`.
        (Value::String(message), Value::String(code)) => (code.as_str(), message.as_str()),
        _ => ("", ""),
    };
    Err(CliError::Api {
        status,
        code: printable(code),
        message: printable(message),
    })
}

/// Server text made safe for a terminal: control characters (escape sequences) become `?`.
pub fn printable(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

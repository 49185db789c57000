//! The generic HTTP executor: canonical arguments -> Smartcar request -> send with the retry
//! policy -> outcome. Knows nothing about MCP.

use std::sync::Arc;
use std::time::{Duration, Instant};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value, json};

use crate::auth::{AuthError, Clock, SystemClock, TokenManager};
use crate::catalogue::{Api, Location, Method, ToolSpec};
use crate::config::Settings;
use crate::upstream_error::UpstreamError;

/// RFC 3986 unreserved characters stay as they are; everything else in a path segment is encoded,
/// so `/`, `?`, `#` and `%` in an id can never reach another endpoint.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Query values additionally keep nothing reserved; keys keep `[`, `]` and `.` as Smartcar writes
/// them (`filter[vehicle.mode]`).
const QUERY_KEY: &AsciiSet = &SEGMENT.remove(b'[').remove(b']');

/// The exact HTTP request a tool call becomes (without the Authorization header).
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedRequest {
    pub method: Method,
    /// Full URL: base URL (keeping its path, e.g. `/v3`) + encoded path + encoded query.
    pub url: String,
    /// The encoded path below the base URL.
    pub path: String,
    /// Query pairs, not encoded.
    pub query: Vec<(String, String)>,
    /// Headers other than Authorization and Content-Type.
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
}

impl PreparedRequest {
    /// The request as JSON, for dry runs and logs; holds no credential.
    pub fn to_json(&self) -> Value {
        let query: Map<String, Value> = self
            .query
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let headers: Map<String, Value> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        json!({
            "method": self.method.as_str(),
            "url": self.url,
            "path": self.path,
            "query": query,
            "headers": headers,
            "body": self.body,
        })
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn encode_segment(raw: &str) -> String {
    let enc = utf8_percent_encode(raw, SEGMENT).to_string();
    // `.` and `..` are refused by the id schema; encoding them too keeps the executor safe alone.
    match enc.as_str() {
        "." => "%2E".into(),
        ".." => "%2E%2E".into(),
        _ => enc,
    }
}

fn insert_dotted(body: &mut Map<String, Value>, path: &str, value: Value) {
    let mut parts = path.split('.').peekable();
    let mut cur = body;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            cur.insert(part.to_string(), value);
            return;
        }
        let next = cur
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        cur = next.as_object_mut().expect("just made an object");
    }
}

/// Builds the request for validated, canonical arguments.
pub fn build_request(
    spec: &ToolSpec,
    args: &Map<String, Value>,
    api_url: &str,
    management_api_url: &str,
) -> PreparedRequest {
    let mut path = String::new();
    for seg in spec.segments {
        path.push('/');
        match seg {
            crate::catalogue::Segment::Literal(l) => path.push_str(l),
            crate::catalogue::Segment::Param(i) => {
                let p = &spec.params[*i];
                path.push_str(&encode_segment(
                    &args.get(p.name).map(scalar).unwrap_or_default(),
                ));
            }
        }
    }
    let mut query = Vec::new();
    let mut headers = Vec::new();
    let mut body: Option<Map<String, Value>> = None;
    for p in spec.params {
        let Some(v) = args.get(p.name).filter(|v| !v.is_null()) else {
            continue;
        };
        match p.location {
            Location::Path | Location::Local => {}
            Location::Query => query.push((p.wire.to_string(), scalar(v))),
            Location::Header => headers.push((p.wire.to_string(), scalar(v))),
            Location::Body => insert_dotted(body.get_or_insert_with(Map::new), p.wire, v.clone()),
        }
    }
    let base = match spec.api {
        Api::Vehicle => api_url,
        Api::Management => management_api_url,
    };
    let mut url = format!("{}{}", base.trim_end_matches('/'), path);
    if !query.is_empty() {
        url.push('?');
        let q: Vec<String> = query
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    utf8_percent_encode(k, QUERY_KEY),
                    utf8_percent_encode(v, SEGMENT)
                )
            })
            .collect();
        url.push_str(&q.join("&"));
    }
    PreparedRequest {
        method: spec.method,
        url,
        path,
        query,
        headers,
        body: body.map(Value::Object),
    }
}

/// A retry the executor made, reported to the client in `_meta`.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryNote {
    pub attempt: u32,
    pub reason: String,
    pub waited_ms: u64,
}

/// What a call produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    Upstream(UpstreamError),
    Auth(AuthError),
    /// A 2xx answer whose body is not usable JSON.
    BadBody {
        status: u16,
        detail: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Success {
    pub status: u16,
    /// `None` for an empty body (204 after a delete).
    pub body: Option<Value>,
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub result: Result<Success, Failure>,
    /// HTTP requests sent (token requests not counted).
    pub attempts: u32,
    pub retries: Vec<RetryNote>,
}

/// Smartcar's id for an answer, which support asks for.
pub fn request_id(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get("sc-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Describes a reqwest error without its URL (URLs carry ids, never secrets, but stay short).
pub fn describe_transport(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else if e.is_body() || e.is_decode() {
        "the answer was cut off".into()
    } else {
        "request failed".into()
    }
}

pub struct Executor {
    http: reqwest::Client,
    pub auth: TokenManager,
    settings: Arc<Settings>,
}

impl Executor {
    pub fn new(settings: Arc<Settings>) -> anyhow::Result<Self> {
        Self::with_clock(settings, Arc::new(SystemClock))
    }

    pub fn with_clock(settings: Arc<Settings>, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .user_agent(concat!("smartcar-mcp/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(90))
            .build()?;
        let auth = TokenManager::new(
            http.clone(),
            &settings.auth_url,
            settings.client_id.clone(),
            settings.client_secret.clone(),
            clock,
        );
        Ok(Executor {
            http,
            auth,
            settings,
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn prepare(&self, spec: &ToolSpec, args: &Map<String, Value>) -> PreparedRequest {
        build_request(
            spec,
            args,
            &self.settings.api_url,
            &self.settings.management_api_url,
        )
    }

    fn backoff(attempt: u32) -> Duration {
        let base = 200u64.saturating_mul(1 << attempt.min(5)).min(4_000);
        // Full jitter between half and the whole step spreads retries of many clients apart.
        Duration::from_millis(base / 2 + fastrand::u64(0..=base / 2))
    }

    /// Sends the request under the retry policy: reads retry 429, 5xx (not 501) and transport
    /// errors within the budget; writes are re-sent only after a 401 (token refresh) or one 429,
    /// because after a 5xx or a timeout the car may already have acted.
    pub async fn send(&self, spec: &ToolSpec, req: &PreparedRequest) -> Outcome {
        let is_read = spec.method == Method::Get;
        let timeout = if is_read {
            self.settings.read_timeout
        } else {
            self.settings.command_timeout
        };
        let deadline = Instant::now() + self.settings.retry_budget;
        let mut attempts = 0u32;
        let mut retries = Vec::new();
        let mut reauthed = false;
        let mut rate_limit_resent = false;
        let done = |result, attempts, retries| Outcome {
            result,
            attempts,
            retries,
        };
        loop {
            let token = match self.auth.token().await {
                Ok(t) => t,
                Err(e) => return done(Err(Failure::Auth(e)), attempts, retries),
            };
            let method = match req.method {
                Method::Get => reqwest::Method::GET,
                Method::Post => reqwest::Method::POST,
                Method::Put => reqwest::Method::PUT,
                Method::Patch => reqwest::Method::PATCH,
                Method::Delete => reqwest::Method::DELETE,
            };
            let mut rb = self
                .http
                .request(method, &req.url)
                .timeout(timeout)
                .bearer_auth(token.expose())
                .header(reqwest::header::ACCEPT, "application/json");
            for (k, v) in &req.headers {
                rb = rb.header(k.as_str(), v.as_str());
            }
            if let Some(b) = &req.body {
                rb = rb.json(b);
            }
            attempts += 1;
            tracing::debug!(tool = spec.name, method = req.method.as_str(), path = %req.path, attempt = attempts, "sending");
            let sent = rb.send().await;
            let resp = match sent {
                Ok(r) => r,
                Err(e) => {
                    let why = describe_transport(&e);
                    let wait = Self::backoff(attempts);
                    if is_read && attempts < 4 && Instant::now() + wait < deadline {
                        retries.push(RetryNote {
                            attempt: attempts,
                            reason: format!("transport: {why}"),
                            waited_ms: wait.as_millis() as u64,
                        });
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    let mut err = UpstreamError::transport(why);
                    if !is_read {
                        err.detail = err.detail.map(|d| {
                            format!("{d}; not re-sent because the vehicle may already have acted")
                        });
                    }
                    return done(Err(Failure::Upstream(err)), attempts, retries);
                }
            };
            let status = resp.status().as_u16();
            let request_id = request_id(&resp);
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|s| s.trim().parse::<u64>().ok());
            let bytes = match resp.bytes().await {
                Ok(b) => b,
                Err(e) => {
                    let err = UpstreamError::transport(describe_transport(&e));
                    return done(Err(Failure::Upstream(err)), attempts, retries);
                }
            };
            if (200..300).contains(&status) {
                if bytes.iter().all(u8::is_ascii_whitespace) {
                    return done(
                        Ok(Success {
                            status,
                            body: None,
                            request_id,
                        }),
                        attempts,
                        retries,
                    );
                }
                return match serde_json::from_slice::<Value>(&bytes) {
                    Ok(body) => done(
                        Ok(Success {
                            status,
                            body: Some(body),
                            request_id,
                        }),
                        attempts,
                        retries,
                    ),
                    Err(_) => done(
                        Err(Failure::BadBody {
                            status,
                            detail: format!(
                                "Smartcar answered HTTP {status} with a body that is not JSON ({} bytes)",
                                bytes.len()
                            ),
                        }),
                        attempts,
                        retries,
                    ),
                };
            }
            let err = UpstreamError::parse(status, &bytes, request_id.as_deref(), retry_after);
            if status == 401 && !reauthed {
                // Smartcar refused before acting, so even a command is safe to send again.
                reauthed = true;
                self.auth.invalidate(&token);
                retries.push(RetryNote {
                    attempt: attempts,
                    reason: "401: fetched a new token".into(),
                    waited_ms: 0,
                });
                continue;
            }
            let retry_wait = match status {
                // A Retry-After beyond the cap is Smartcar asking for a pause longer than a
                // model should sit through: report it rather than sleep.
                429 => {
                    let wait = retry_after
                        .map(Duration::from_secs)
                        .unwrap_or_else(|| Self::backoff(attempts));
                    (wait <= self.settings.max_retry_after && (is_read || !rate_limit_resent))
                        .then_some(wait)
                }
                500 | 502 | 503 | 504 if is_read => Some(Self::backoff(attempts)),
                _ => None,
            };
            if let Some(wait) = retry_wait
                && attempts < 4
                && Instant::now() + wait < deadline
            {
                if status == 429 {
                    rate_limit_resent = true;
                }
                retries.push(RetryNote {
                    attempt: attempts,
                    reason: format!("{status} {}", err.error_type.clone().unwrap_or_default())
                        .trim()
                        .to_string(),
                    waited_ms: wait.as_millis() as u64,
                });
                tokio::time::sleep(wait).await;
                continue;
            }
            return done(Err(Failure::Upstream(err)), attempts, retries);
        }
    }
}

/// The status a command's answer reports in its body (`data.attributes.status.value`, or a plain
/// string), upper-cased; `None` when the body says nothing.
pub fn command_status(body: &Value) -> Option<String> {
    let candidates = [
        body.pointer("/data/attributes/status"),
        body.pointer("/status"),
    ];
    for c in candidates.into_iter().flatten() {
        let s = match c {
            Value::String(s) => Some(s.as_str()),
            Value::Object(o) => o.get("value").and_then(Value::as_str),
            _ => None,
        };
        if let Some(s) = s {
            return Some(s.to_ascii_uppercase());
        }
    }
    None
}

/// Removes every key named in `redact` (ignoring case, `_` and `-`) at any depth.
pub fn redact(value: &mut Value, redact: &[&str]) {
    if redact.is_empty() {
        return;
    }
    fn norm(s: &str) -> String {
        s.chars()
            .filter(|c| *c != '_' && *c != '-')
            .map(|c| c.to_ascii_lowercase())
            .collect()
    }
    let keys: Vec<String> = redact.iter().map(|k| norm(k)).collect();
    fn walk(v: &mut Value, keys: &[String], norm: fn(&str) -> String) {
        match v {
            Value::Object(o) => {
                o.retain(|k, _| !keys.contains(&norm(k)));
                for child in o.values_mut() {
                    walk(child, keys, norm);
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|c| walk(c, keys, norm)),
            _ => {}
        }
    }
    walk(value, &keys, norm);
}

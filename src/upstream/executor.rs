//! Sends a prepared request to Smartcar under the retry policy, with the cached token, and
//! reports what came back. Knows nothing about tools' results or MCP.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::auth::{AuthError, Clock, SystemClock, TokenManager};
use super::error::{UpstreamError, describe_transport, request_id};
use super::request::{PreparedRequest, build_request_at};
use crate::catalogue::{Api, Method, Shape, ToolSpec, Toolset};
use crate::settings::UpstreamSettings;

/// A retry the executor made, reported to the client in `_meta`.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryNote {
    pub attempt: u32,
    pub reason: String,
    pub waited_ms: u64,
}

/// Why a call produced no usable answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Upstream(UpstreamError),
    #[error(transparent)]
    Auth(AuthError),
    /// A 2xx answer whose body is not usable JSON.
    #[error("{detail}")]
    BadResponse { status: u16, detail: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Success {
    pub status: u16,
    /// `None` for an empty body (204 after a delete).
    pub body: Option<Value>,
    pub request_id: Option<String>,
}

/// What a call produced, with the retries it took.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub result: Result<Success, Failure>,
    /// HTTP requests sent (token requests not counted).
    pub attempts: u32,
    pub retries: Vec<RetryNote>,
}

pub struct Executor {
    http: reqwest::Client,
    pub auth: TokenManager,
    settings: Arc<UpstreamSettings>,
}

impl Executor {
    pub fn new(settings: Arc<UpstreamSettings>) -> Result<Self, reqwest::Error> {
        Self::with_clock(settings, Arc::new(SystemClock))
    }

    pub fn with_clock(
        settings: Arc<UpstreamSettings>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .user_agent(concat!("smartcar-mcp/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(90))
            // reqwest's default today; said here because Nagle on a kept-alive connection costs
            // a small request a delayed ACK (about 40 ms).
            .tcp_nodelay(true)
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

    pub fn settings(&self) -> &UpstreamSettings {
        &self.settings
    }

    /// The request a call with these canonical arguments sends, against the configured hosts.
    pub fn request(&self, spec: &ToolSpec, args: &Map<String, Value>) -> PreparedRequest {
        let s = &self.settings;
        let base = match spec.api {
            Api::Vehicle => &s.api_url,
            Api::Management => &s.management_api_url,
            Api::Compatibility => &s.compatibility_api_url,
        };
        build_request_at(spec, args, base)
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
        let is_read = spec.is_read();
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
            let mut rb = self
                .http
                .request(http_method(req.method), &req.url)
                .timeout(timeout)
                .header(reqwest::header::ACCEPT, "application/json");
            // Smartcar's Compatibility API is public: its official example sends no credentials.
            let mut token = None;
            if spec.api != Api::Compatibility {
                let t = match self.auth.token().await {
                    Ok(t) => t,
                    Err(e) => return done(Err(Failure::Auth(e)), attempts, retries),
                };
                rb = rb.bearer_auth(t.expose());
                token = Some(t);
            }
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
                    // A refused connection carried nothing; anything later may have.
                    let err = about(spec, err, !e.is_connect());
                    return done(Err(Failure::Upstream(err)), attempts, retries);
                }
            };
            let status = resp.status().as_u16();
            let request_id = request_id(&resp);
            // At info, one line per answer; with --log-format json it carries the MCP request's
            // span, so Smartcar's id and the client's id meet on one line.
            tracing::info!(
                tool = spec.name,
                status,
                sc_request_id = request_id.as_deref().unwrap_or(""),
                attempt = attempts,
                "smartcar answered"
            );
            if status == 429
                && let Some(n) = RATE_LIMITED.hit()
            {
                tracing::warn!(
                    count = n,
                    sc_request_id = request_id.as_deref().unwrap_or(""),
                    "Smartcar answered 429 (rate limited) {n} time(s) since the last such line"
                );
            }
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|s| s.trim().parse::<u64>().ok());
            let bytes = match resp.bytes().await {
                Ok(b) => b,
                Err(e) => {
                    let err = UpstreamError::transport(describe_transport(&e));
                    let err = about(spec, err, true);
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
                        Err(Failure::BadResponse {
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
            let err = about(spec, err, status == 504);
            if let Some(token) = token.as_ref().filter(|_| status == 401 && !reauthed) {
                // Smartcar refused before acting, so even a command is safe to send again.
                reauthed = true;
                self.auth.invalidate(token);
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

/// What the failure means for this tool: a command whose request may have reached the vehicle
/// (`maybe_acted`) has an unknown outcome; the `/applications` tools are undocumented by Smartcar.
fn about(spec: &ToolSpec, mut err: UpstreamError, maybe_acted: bool) -> UpstreamError {
    if spec.output == Shape::Command && maybe_acted {
        err.outcome_unknown = true;
        err.confirm_signal = spec.confirm_signal;
    }
    err.undocumented = spec.toolset == Toolset::Management;
    err
}

/// Smartcar's 429s, logged as one line per 10 s with their count.
static RATE_LIMITED: crate::logging::Repeated = crate::logging::Repeated::new();

fn http_method(m: Method) -> reqwest::Method {
    match m {
        Method::Get => reqwest::Method::GET,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Patch => reqwest::Method::PATCH,
        Method::Delete => reqwest::Method::DELETE,
    }
}

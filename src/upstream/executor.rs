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
    pub cause: RetryCause,
    pub waited_ms: u64,
}

/// Why a request was sent again; its text is what `_meta` reports.
#[derive(Debug, Clone, PartialEq)]
pub enum RetryCause {
    /// 401: the token was refreshed (Smartcar refused before acting).
    Unauthorized,
    /// 429, with Smartcar's error type.
    RateLimited { error_type: Option<String> },
    /// A 5xx a read may retry, with Smartcar's error type.
    ServerError {
        status: u16,
        error_type: Option<String>,
    },
    /// No answer: the connection failed or timed out.
    Transport(String),
}

impl std::fmt::Display for RetryCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let with_type = |f: &mut std::fmt::Formatter<'_>, status: u16, t: &Option<String>| match t {
            Some(t) if !t.is_empty() => write!(f, "{status} {t}"),
            _ => write!(f, "{status}"),
        };
        match self {
            RetryCause::Unauthorized => f.write_str("401: fetched a new token"),
            RetryCause::RateLimited { error_type } => with_type(f, 429, error_type),
            RetryCause::ServerError { status, error_type } => with_type(f, *status, error_type),
            RetryCause::Transport(why) => write!(f, "transport: {why}"),
        }
    }
}

/// Most HTTP requests one call sends.
pub const MAX_ATTEMPTS: u32 = 4;

/// What an attempt came to, as far as sending it again goes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Attempted {
    /// No answer: the connection failed or timed out.
    NoAnswer,
    /// An answer with this status (401s are handled before: a new token, once).
    Status(u16),
}

/// Where a call stands when an attempt fails.
#[derive(Debug, Clone, Copy)]
pub struct RetryState {
    pub is_read: bool,
    /// Requests sent so far, this one included.
    pub attempts: u32,
    /// A write was already sent again after a 429.
    pub rate_limit_resent: bool,
    pub max_retry_after: Duration,
}

/// The retry policy, pure: how long to wait before sending again, or `None` to give up. Reads
/// retry 429, 5xx (not 501) and no answer; writes are sent again only after one 429, because
/// after a 5xx or no answer the car may already have acted. A Retry-After beyond the cap is
/// Smartcar asking for a pause longer than a model should sit through: reported, not slept.
/// `backoff` is the jittered step for this attempt; the caller checks the wait against its
/// deadline.
pub fn retry_wait(
    attempted: Attempted,
    retry_after: Option<Duration>,
    backoff: Duration,
    s: RetryState,
) -> Option<Duration> {
    if s.attempts >= MAX_ATTEMPTS {
        return None;
    }
    match attempted {
        Attempted::NoAnswer => s.is_read.then_some(backoff),
        Attempted::Status(429) => {
            let wait = retry_after.unwrap_or(backoff);
            (wait <= s.max_retry_after && (s.is_read || !s.rate_limit_resent)).then_some(wait)
        }
        Attempted::Status(500 | 502 | 503 | 504) if s.is_read => Some(backoff),
        Attempted::Status(_) => None,
    }
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
                    let state = RetryState {
                        is_read,
                        attempts,
                        rate_limit_resent,
                        max_retry_after: self.settings.max_retry_after,
                    };
                    if let Some(wait) =
                        retry_wait(Attempted::NoAnswer, None, Self::backoff(attempts), state)
                        && Instant::now() + wait < deadline
                    {
                        retries.push(RetryNote {
                            attempt: attempts,
                            cause: RetryCause::Transport(why),
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
                    cause: RetryCause::Unauthorized,
                    waited_ms: 0,
                });
                continue;
            }
            let state = RetryState {
                is_read,
                attempts,
                rate_limit_resent,
                max_retry_after: self.settings.max_retry_after,
            };
            let wait = retry_wait(
                Attempted::Status(status),
                retry_after.map(Duration::from_secs),
                Self::backoff(attempts),
                state,
            );
            if let Some(wait) = wait
                && Instant::now() + wait < deadline
            {
                let error_type = err.error_type.clone();
                let cause = if status == 429 {
                    rate_limit_resent = true;
                    RetryCause::RateLimited { error_type }
                } else {
                    RetryCause::ServerError { status, error_type }
                };
                retries.push(RetryNote {
                    attempt: attempts,
                    cause,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// (read, attempts, resent after a 429, what came back, Retry-After) -> wait
    type Row = (
        bool,
        u32,
        bool,
        Attempted,
        Option<Duration>,
        Option<Duration>,
    );

    #[test]
    fn the_retry_policy_table() {
        let step = Duration::from_millis(400);
        let cap = Duration::from_secs(10);
        let ms = |n| Some(Duration::from_millis(n));
        let secs = |n| Some(Duration::from_secs(n));
        let none: Option<Duration> = None;
        let table: &[Row] = &[
            (true, 1, false, Attempted::NoAnswer, none, ms(400)),
            (false, 1, false, Attempted::NoAnswer, none, none),
            (true, 1, false, Attempted::Status(429), secs(2), secs(2)),
            (true, 1, false, Attempted::Status(429), none, ms(400)),
            (true, 1, false, Attempted::Status(429), secs(60), none),
            (false, 1, false, Attempted::Status(429), secs(1), secs(1)),
            (false, 2, true, Attempted::Status(429), secs(1), none),
            (true, 2, true, Attempted::Status(429), secs(1), secs(1)),
            (true, 1, false, Attempted::Status(500), none, ms(400)),
            (true, 1, false, Attempted::Status(502), secs(9), ms(400)),
            (true, 1, false, Attempted::Status(503), none, ms(400)),
            (true, 1, false, Attempted::Status(504), none, ms(400)),
            (true, 1, false, Attempted::Status(501), none, none),
            (false, 1, false, Attempted::Status(500), none, none),
            (false, 1, false, Attempted::Status(504), none, none),
            (true, 1, false, Attempted::Status(404), none, none),
            (true, 1, false, Attempted::Status(430), none, none),
            (true, 1, false, Attempted::Status(409), none, none),
            (true, 3, false, Attempted::Status(503), none, ms(400)),
            (true, 4, false, Attempted::Status(503), none, none),
            (true, 4, false, Attempted::NoAnswer, none, none),
            (true, 4, false, Attempted::Status(429), secs(1), none),
        ];
        for &(is_read, attempts, rate_limit_resent, attempted, retry_after, want) in table {
            let state = RetryState {
                is_read,
                attempts,
                rate_limit_resent,
                max_retry_after: cap,
            };
            assert_eq!(
                retry_wait(attempted, retry_after, step, state),
                want,
                "read {is_read}, attempt {attempts}, resent {rate_limit_resent}, {attempted:?}, Retry-After {retry_after:?}"
            );
        }
    }

    #[test]
    fn retry_causes_read_as_before() {
        let t = |c: RetryCause| c.to_string();
        assert_eq!(t(RetryCause::Unauthorized), "401: fetched a new token");
        let error_type = Some("RATE_LIMIT".into());
        assert_eq!(t(RetryCause::RateLimited { error_type }), "429 RATE_LIMIT");
        assert_eq!(t(RetryCause::RateLimited { error_type: None }), "429");
        let server = RetryCause::ServerError {
            status: 503,
            error_type: Some(String::new()),
        };
        assert_eq!(t(server), "503");
        assert_eq!(t(RetryCause::Transport("reset".into())), "transport: reset");
    }
}

//! Client-credentials token for Smartcar: cached, refreshed early, fetched once for many callers,
//! dropped after a 401. The clock is injectable so tests never wait.

use crate::sync::Locked;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::error::{UpstreamError, describe_transport, request_id};
use crate::secret::Secret;

/// Time source for token expiry.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Instant;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock tests move by hand.
pub struct ManualClock {
    base: Instant,
    offset: Mutex<Duration>,
}

impl ManualClock {
    pub fn new() -> Arc<Self> {
        Arc::new(ManualClock {
            base: Instant::now(),
            offset: Mutex::new(Duration::ZERO),
        })
    }
    pub fn advance(&self, by: Duration) {
        *self.offset.locked() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.base + *self.offset.locked()
    }
}

/// Why no token could be had; never carries the secret.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", self.message())]
pub enum AuthError {
    /// Names the missing environment variables.
    MissingCredentials(Vec<&'static str>),
    /// The token endpoint answered with an error status.
    Rejected(UpstreamError),
    /// The token endpoint answered 2xx with something that is not a token.
    Unreadable(String),
    /// No answer from the token endpoint.
    Transport(String),
}

impl AuthError {
    pub fn message(&self) -> String {
        match self {
            AuthError::MissingCredentials(vars) => format!(
                "Smartcar credentials are not configured: set {} in the MCP server's environment (the server starts without them so it can list its tools).",
                vars.join(" and ")
            ),
            AuthError::Rejected(e) if matches!(e.status, 400 | 401 | 403) => format!(
                "Smartcar's token endpoint refused the client credentials (HTTP {}{}{}): check SMARTCAR_CLIENT_ID and SMARTCAR_CLIENT_SECRET.",
                e.status,
                e.code
                    .as_deref()
                    .map(|c| format!(" {c}"))
                    .unwrap_or_default(),
                e.detail
                    .as_deref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default(),
            ),
            AuthError::Rejected(e) => format!(
                "Smartcar's token endpoint failed with HTTP {}{}; try again later.",
                e.status,
                e.detail
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default(),
            ),
            AuthError::Unreadable(why) => format!(
                "Smartcar's token endpoint answered without a usable token ({why}); check SMARTCAR_AUTH_URL."
            ),
            AuthError::Transport(why) => format!(
                "Smartcar's token endpoint could not be reached ({why}); check SMARTCAR_AUTH_URL and the network."
            ),
        }
    }

    /// The code a tool error reports for it.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::MissingCredentials(_) => "MISSING_CREDENTIALS",
            AuthError::Rejected(_) => "TOKEN_REFUSED",
            AuthError::Unreadable(_) => "TOKEN_UNREADABLE",
            AuthError::Transport(_) => "TOKEN_UNREACHABLE",
        }
    }

    /// The HTTP status to report, 0 when there was none.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::Rejected(e) => e.status,
            _ => 0,
        }
    }
}

/// An access token as handed to a request; Debug never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(Arc<str>);

impl AccessToken {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken([redacted])")
    }
}

struct Cached {
    token: AccessToken,
    refresh_at: Instant,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<f64>,
}

/// When to fetch a new token: 60 s before expiry, or at half the life of a token living 60 s or less.
pub fn refresh_after(expires_in: Duration) -> Duration {
    let margin = Duration::from_secs(60);
    if expires_in > margin {
        expires_in - margin
    } else {
        expires_in / 2
    }
}

pub struct TokenManager {
    http: reqwest::Client,
    token_url: String,
    client_id: Option<String>,
    client_secret: Option<Secret>,
    clock: Arc<dyn Clock>,
    cached: RwLock<Option<Cached>>,
    /// Held while one request fetches a token, so concurrent callers share its answer.
    fetching: tokio::sync::Mutex<()>,
}

impl TokenManager {
    pub fn new(
        http: reqwest::Client,
        auth_url: &str,
        client_id: Option<String>,
        client_secret: Option<Secret>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        TokenManager {
            http,
            token_url: format!("{}/oauth2/token", auth_url.trim_end_matches('/')),
            client_id,
            client_secret,
            clock,
            cached: RwLock::new(None),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    fn fresh(&self) -> Option<AccessToken> {
        let now = self.clock.now();
        let guard = self.cached.read().unwrap_or_else(|p| p.into_inner());
        guard
            .as_ref()
            .filter(|c| now < c.refresh_at)
            .map(|c| c.token.clone())
    }

    /// A valid token, fetching one only when none is cached or it is due for refresh.
    pub async fn token(&self) -> Result<AccessToken, AuthError> {
        if let Some(t) = self.fresh() {
            return Ok(t);
        }
        let _one_fetch = self.fetching.lock().await;
        // Another caller may have fetched while this one waited for the lock.
        if let Some(t) = self.fresh() {
            return Ok(t);
        }
        let (token, life) = self.fetch().await?;
        let refresh_at = self.clock.now() + refresh_after(life);
        *self.cached.write().unwrap_or_else(|p| p.into_inner()) = Some(Cached {
            token: token.clone(),
            refresh_at,
        });
        Ok(token)
    }

    /// Forgets `used` after Smartcar rejected it, unless a newer token already replaced it.
    pub fn invalidate(&self, used: &AccessToken) {
        let mut guard = self.cached.write().unwrap_or_else(|p| p.into_inner());
        if guard.as_ref().is_some_and(|c| &c.token == used) {
            *guard = None;
        }
    }

    /// A token fetched now, past the cache, with its lifetime: what `doctor` times and reports.
    pub async fn fetch_uncached(&self) -> Result<(AccessToken, Duration), AuthError> {
        self.fetch().await
    }

    async fn fetch(&self) -> Result<(AccessToken, Duration), AuthError> {
        let mut missing = Vec::new();
        if self.client_id.is_none() {
            missing.push("SMARTCAR_CLIENT_ID");
        }
        if self.client_secret.is_none() {
            missing.push("SMARTCAR_CLIENT_SECRET");
        }
        let (Some(id), Some(secret)) = (&self.client_id, &self.client_secret) else {
            return Err(AuthError::MissingCredentials(missing));
        };
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", id.as_str()),
            ("client_secret", secret.expose()),
        ];
        let body = serde_urlencoded_pairs(&form);
        tracing::debug!(url = %self.token_url, "fetching a Smartcar access token");
        let resp = self
            .http
            .post(&self.token_url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| AuthError::Transport(describe_transport(&e)))?;
        let status = resp.status().as_u16();
        let request_id = request_id(&resp);
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| AuthError::Transport(describe_transport(&e)))?;
        if !(200..300).contains(&status) {
            return Err(AuthError::Rejected(UpstreamError::parse(
                status,
                &bytes,
                request_id.as_deref(),
                None,
            )));
        }
        let parsed: TokenResponse = serde_json::from_slice(&bytes).map_err(|_| {
            AuthError::Unreadable(format!("HTTP {status}, body is not a token JSON object"))
        })?;
        if parsed.access_token.is_empty() {
            return Err(AuthError::Unreadable("empty access_token".into()));
        }
        if let Some(t) = &parsed.token_type
            && !t.eq_ignore_ascii_case("bearer")
        {
            return Err(AuthError::Unreadable(format!(
                "token_type is {t}, not Bearer"
            )));
        }
        // A missing or nonsensical lifetime is read as Smartcar's documented hour.
        let secs = parsed
            .expires_in
            .filter(|s| s.is_finite() && *s > 0.0)
            .unwrap_or(3600.0);
        Ok((
            AccessToken(Arc::from(parsed.access_token)),
            Duration::from_secs_f64(secs.min(86_400.0 * 365.0)),
        ))
    }
}

fn serde_urlencoded_pairs(pairs: &[(&str, &str)]) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    // application/x-www-form-urlencoded leaves `*-._` alone and encodes everything else.
    const FORM: &percent_encoding::AsciiSet = &NON_ALPHANUMERIC
        .remove(b'*')
        .remove(b'-')
        .remove(b'.')
        .remove(b'_');
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, FORM),
                utf8_percent_encode(v, FORM)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_sixty_seconds_early_or_at_half_life() {
        assert_eq!(
            refresh_after(Duration::from_secs(3600)),
            Duration::from_secs(3540)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(61)),
            Duration::from_secs(1)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(60)),
            Duration::from_secs(30)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(10)),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn form_body_is_percent_encoded() {
        assert_eq!(serde_urlencoded_pairs(&[("a", "b c&d")]), "a=b%20c%26d");
    }
}

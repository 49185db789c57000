//! The session store of Streamable HTTP: rmcp's `LocalSessionManager`, bounded and expiring.
//!
//! Only pre-2026-07-28 clients (the `initialize` handshake) get sessions; 2026-07-28 requests
//! are served statelessly and never reach this store. Each session holds one permit of a
//! semaphore of `max_sessions`; without a free permit `initialize` is refused, and the HTTP
//! layer turns that refusal into 503 with `Retry-After` (`answer_refusals`). The store also holds
//! the rules of a session rmcp does not: one `initialize` per session, one request per id in
//! flight (`mcp::flight`), and 404 for the `DELETE` of a session it does not hold.
//!
//! A session ends once it has had no request in flight and no message from its client for
//! `session_idle`; its permit is then released. A request in flight keeps its session: a command
//! may take up to the command timeout (310 s), longer than the default idle time (300 s), and
//! rmcp's own keep-alive would end the session under it, losing the answer, because rmcp counts
//! only messages, not requests still running. So rmcp's keep-alive is off and this store expires
//! sessions itself. Freed sessions are handed back to the operating system (glibc's
//! `malloc_trim`), so resident memory returns near idle instead of staying at its peak.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use rmcp::model::{ClientJsonRpcMessage, RequestId, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::SessionManager;
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionManager, LocalSessionManagerError, SessionConfig,
};
use rmcp::transport::streamable_http_server::session::{
    EventStore, RestoreOutcome, ServerSseMessage, SessionId,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::flight::{self, Flights};

/// What a refused client is told to wait before trying again, in seconds.
pub const RETRY_AFTER_S: u64 = 10;

/// Refused sessions, logged as one line per 10 s with their count.
static REFUSED_SESSIONS: crate::logging::Repeated = crate::logging::Repeated::new();

tokio::task_local! {
    /// Set by `create_session` when the store turned out full after `session_rules` let the
    /// request through (two clients racing for the last slot), read by `session_rules` around
    /// the same request: rmcp turns every session-manager error into a bare 500.
    static FULL: Cell<bool>;
}

/// A `LocalSessionManager` holding at most `max` sessions, each ending after `idle` unused.
pub struct BoundedSessions {
    inner: LocalSessionManager,
    permits: Arc<Semaphore>,
    held: Arc<Mutex<HashMap<SessionId, Held>>>,
    idle: Duration,
    /// A session ended since the last trim.
    freed: Arc<AtomicBool>,
    /// Request ids in flight on each session.
    flights: Flights,
}

/// What the store keeps of one open session.
struct Held {
    _permit: OwnedSemaphorePermit,
    /// Requests whose answer stream is still open.
    in_flight: usize,
    /// When the last request ended or the last message arrived.
    last_active: Instant,
}

/// Counts one request in flight until its answer stream is dropped (answered, or the client
/// went away), then starts the session's idle time afresh.
struct InFlight {
    held: Arc<Mutex<HashMap<SessionId, Held>>>,
    id: SessionId,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut held) = self.held.lock()
            && let Some(h) = held.get_mut(&self.id)
        {
            h.in_flight = h.in_flight.saturating_sub(1);
            h.last_active = Instant::now();
        }
    }
}

/// Refused: every session slot is taken, or a request broke a session rule.
#[derive(Debug, thiserror::Error)]
pub enum SessionsError {
    #[error("{}", crate::logging::SESSIONS_FULL)]
    Full,
    #[error(transparent)]
    Local(#[from] LocalSessionManagerError),
}

impl BoundedSessions {
    pub fn new(max: usize, idle: Duration) -> Arc<Self> {
        let mut inner = LocalSessionManager::default();
        inner.session_config = session_config(idle);
        let freed = Arc::new(AtomicBool::new(false));
        let sessions = Arc::new(BoundedSessions {
            inner,
            permits: Arc::new(Semaphore::new(max)),
            held: Arc::new(Mutex::new(HashMap::new())),
            idle,
            freed: freed.clone(),
            flights: Flights::default(),
        });
        tokio::spawn(trim_after_frees(Arc::downgrade(&sessions), freed));
        tokio::spawn(expire_idle(Arc::downgrade(&sessions)));
        sessions
    }

    /// Sessions open now.
    pub fn open(&self) -> usize {
        self.held.lock().map(|h| h.len()).unwrap_or(0)
    }

    /// A message from the client: the session is in use.
    fn touch(&self, id: &SessionId) {
        if let Ok(mut held) = self.held.lock()
            && let Some(h) = held.get_mut(id)
        {
            h.last_active = Instant::now();
        }
    }

    /// Sessions with nothing in flight and no message for `idle`.
    fn idle_sessions(&self) -> Vec<SessionId> {
        let Ok(held) = self.held.lock() else {
            return Vec::new();
        };
        held.iter()
            .filter(|(_, h)| h.in_flight == 0 && h.last_active.elapsed() >= self.idle)
            .map(|(id, _)| id.clone())
            .collect()
    }
}

fn session_config(idle: Duration) -> SessionConfig {
    let mut c = SessionConfig::default();
    // Idle expiry is this store's (`expire_idle`), which knows about requests in flight.
    c.keep_alive = None;
    // An `initialize` that never comes should not hold a slot for a minute.
    c.init_timeout = Some(Duration::from_secs(10).min(idle));
    c
}

/// Ends the sessions that have been idle for `idle`, looking four times per idle period (at
/// most every 10 s), so a session ends between `idle` and 1.25 × `idle` after its last use.
async fn expire_idle(sessions: std::sync::Weak<BoundedSessions>) {
    let every = match sessions.upgrade() {
        Some(s) => (s.idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(10)),
        None => return,
    };
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let Some(s) = sessions.upgrade() else {
            return;
        };
        for id in s.idle_sessions() {
            tracing::debug!(session = %id, "MCP session idle for {:?}: ending it", s.idle);
            let _ = s.close_session(&id).await;
        }
    }
}

/// Every 10 s, if sessions ended since the last look, returns freed memory to the system.
async fn trim_after_frees(sessions: std::sync::Weak<BoundedSessions>, freed: Arc<AtomicBool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tick.tick().await;
        if sessions.strong_count() == 0 {
            return;
        }
        if freed.swap(false, Ordering::Relaxed) {
            crate::listen::release_free_memory();
        }
    }
}

impl SessionManager for BoundedSessions {
    type Error = SessionsError;
    type Transport = <LocalSessionManager as SessionManager>::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            // `session_rules` answers (and logs) it.
            let _ = FULL.try_with(|f| f.set(true));
            return Err(SessionsError::Full);
        };
        let (id, transport) = self.inner.create_session().await?;
        if let Ok(mut held) = self.held.lock() {
            held.insert(
                id.clone(),
                Held {
                    _permit: permit,
                    in_flight: 0,
                    last_active: Instant::now(),
                },
            );
        }
        Ok((id, transport))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.touch(id);
        Ok(self.inner.initialize_session(id, message).await?)
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        Ok(self.inner.has_session(id).await?)
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        let result = self.inner.close_session(id).await;
        let released = self.held.lock().ok().and_then(|mut h| h.remove(id));
        if released.is_some() {
            self.freed.store(true, Ordering::Relaxed);
        }
        Ok(result?)
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        // Counted before rmcp sees the request, so the session cannot expire between the two.
        if let Ok(mut held) = self.held.lock()
            && let Some(h) = held.get_mut(id)
        {
            h.in_flight += 1;
        }
        let in_flight = InFlight {
            held: self.held.clone(),
            id: id.clone(),
        };
        let stream = self.inner.create_stream(id, message).await?;
        Ok(stream.map(move |m| {
            let _in_flight = &in_flight;
            m
        }))
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        self.touch(id);
        Ok(self.inner.accept_message(id, message).await?)
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.touch(id);
        Ok(self.inner.create_standalone_stream(id).await?)
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.touch(id);
        Ok(self.inner.resume(id, last_event_id).await?)
    }

    /// Called by rmcp only when a session store is set (a shared store, `mcp::session_store`):
    /// a session another replica created takes a slot here like a new one.
    async fn restore_session(
        &self,
        id: SessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            let _ = FULL.try_with(|f| f.set(true));
            return Err(SessionsError::Full);
        };
        let outcome = self.inner.restore_session(id.clone()).await?;
        if matches!(outcome, RestoreOutcome::Restored(_))
            && let Ok(mut held) = self.held.lock()
        {
            held.insert(
                id,
                Held {
                    _permit: permit,
                    in_flight: 0,
                    last_active: Instant::now(),
                },
            );
        }
        Ok(outcome)
    }

    fn event_store(&self) -> Option<Arc<dyn EventStore>> {
        None
    }
}

impl BoundedSessions {
    /// Whether this store holds the session.
    fn holds(&self, id: &str) -> bool {
        self.held
            .lock()
            .map(|h| h.contains_key(id))
            .unwrap_or(false)
    }

    fn is_full(&self) -> bool {
        self.permits.available_permits() == 0
    }
}

/// What `session_rules` reads of a body: its id and method, skipping the rest.
#[derive(serde::Deserialize)]
struct Head {
    id: Option<RequestId>,
    method: Option<String>,
    #[serde(default)]
    params: Option<CancelParams>,
}

#[derive(serde::Deserialize)]
struct CancelParams {
    #[serde(rename = "requestId")]
    request_id: Option<RequestId>,
}

/// The session rules rmcp does not hold, checked in front of it (from `mcp::http`'s one
/// middleware, which reads a POST's body once for these rules and for its own) and answered
/// here so that rmcp, which logs every session-manager refusal as an internal error, never sees
/// them:
/// - `initialize` while every session slot is taken: 503 with `Retry-After` and a JSON-RPC error;
/// - a second `initialize` on a session: 400, -32600;
/// - a request whose id is still in flight on its session: 400, -32600; the id is taken until
///   the request's answer stream ends, or stays taken once cancelled (`mcp::flight`);
/// - `DELETE` of a session this store does not hold: 404.
///
/// This is the part for requests other than POST; `post_rules` takes a POST with its body read.
pub async fn session_rules(sessions: &BoundedSessions, req: Request, next: Next) -> Response {
    if req.method() == axum::http::Method::DELETE {
        let unknown = session_header(&req).is_some_and(|id| !sessions.holds(id));
        if unknown {
            return not_found();
        }
    }
    next.run(req).await
}

fn session_header(req: &Request) -> Option<&str> {
    req.headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
}

/// `session_rules` for a POST whose body, `bytes`, is already read whole and bounded.
pub async fn post_rules(
    sessions: Arc<BoundedSessions>,
    parts: Parts,
    bytes: Bytes,
    next: Next,
) -> Response {
    let session = parts
        .headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let head = serde_json::from_slice::<Head>(&bytes).ok();
    let req = Request::from_parts(parts, axum::body::Body::from(bytes));
    let Some(head) = head else {
        return next.run(req).await;
    };
    let initialize = head.method.as_deref() == Some("initialize");
    let Some(session) = session else {
        if initialize && sessions.is_full() {
            return full(&sessions);
        }
        return FULL
            .scope(Cell::new(false), async move {
                let response = next.run(req).await;
                if FULL.with(Cell::get) {
                    full(&sessions)
                } else {
                    response
                }
            })
            .await;
    };
    if head.method.as_deref() == Some("notifications/cancelled") {
        if let Some(id) = head.params.and_then(|p| p.request_id) {
            sessions.flights.cancel(&session, id);
        }
        return next.run(req).await;
    }
    let (Some(id), Some(_)) = (head.id, head.method) else {
        return next.run(req).await;
    };
    if initialize && sessions.holds(&session) {
        return invalid(flight::reinitialize(Some(&id)));
    }
    if !sessions.holds(&session) {
        // rmcp answers an unknown session itself (404).
        return next.run(req).await;
    }
    let Some(landing) = sessions.flights.begin(&session, id.clone()) else {
        return invalid(flight::duplicate(&id));
    };
    let response = next.run(req).await;
    let (parts, body) = response.into_parts();
    // The id stays taken until the answer stream ends (answered, or the client went away).
    let body = axum::body::Body::from_stream(body.into_data_stream().map(move |chunk| {
        let _landing = &landing;
        chunk
    }));
    Response::from_parts(parts, body)
}

fn full(sessions: &BoundedSessions) -> Response {
    if let Some(n) = REFUSED_SESSIONS.hit() {
        tracing::warn!(
            open = sessions.open(),
            refused = n,
            "refused new MCP sessions: the maximum number of sessions is open (--max-sessions)"
        );
    }
    let body = super::malformed::error_response(
        serde_json::Value::Null,
        -32000,
        "this server holds its maximum number of MCP sessions; retry later, or use the stateless 2026-07-28 protocol, which needs no session",
    );
    let mut r = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_S));
    r
}

fn invalid(error: serde_json::Value) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(error)).into_response()
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "Not Found: Session not found").into_response()
}

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

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use rmcp::model::{
    ClientJsonRpcMessage, ClientNotification, ClientRequest, JsonRpcMessage, ServerJsonRpcMessage,
};
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

/// Why the store refused a request, for the HTTP answer (`answer_refusals`): rmcp turns every
/// session-manager error into a bare 500.
#[derive(Debug, Clone)]
enum Refusal {
    /// Every session slot is taken: 503 with `Retry-After`.
    Full,
    /// A request breaking a session rule (a second `initialize`, an id in flight): 400 with
    /// this JSON-RPC error.
    Invalid(serde_json::Value),
    /// `DELETE` of a session this store does not hold: 404.
    UnknownSession,
}

tokio::task_local! {
    /// Set by the store when it refuses, read by `answer_refusals` around the same request.
    static REFUSED: Cell<Option<Refusal>>;
}

fn refuse(r: Refusal) {
    let _ = REFUSED.try_with(|f| f.set(Some(r)));
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
    #[error("the server holds its maximum number of sessions")]
    Full,
    #[error("the request breaks a rule of its session")]
    Refused,
    #[error("no such session")]
    Unknown,
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
            release_free_memory();
        }
    }
}

/// Asks glibc to give freed heap pages back to the system. Without it, the memory of thousands
/// of ended sessions stays resident (glibc keeps it in its per-thread arenas).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn release_free_memory() {
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    // SAFETY: malloc_trim takes no pointers and is safe to call at any time from any thread.
    unsafe {
        malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_memory() {}

impl SessionManager for BoundedSessions {
    type Error = SessionsError;
    type Transport = <LocalSessionManager as SessionManager>::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            refuse(Refusal::Full);
            tracing::warn!(
                open = self.open(),
                "refused a new MCP session: the maximum number of sessions is open (--max-sessions)"
            );
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
        let known = self.inner.has_session(id).await?;
        let result = self.inner.close_session(id).await;
        let released = self.held.lock().ok().and_then(|mut h| h.remove(id));
        if released.is_some() {
            self.freed.store(true, Ordering::Relaxed);
        } else if !known {
            // Only a client's DELETE runs inside `answer_refusals`, so only it hears of this.
            refuse(Refusal::UnknownSession);
            return Err(SessionsError::Unknown);
        }
        Ok(result?)
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let landing = match &message {
            JsonRpcMessage::Request(r) => {
                // rmcp would hand a second `initialize` to the running session, which replaced
                // the client's declared capabilities mid-session.
                if matches!(r.request, ClientRequest::InitializeRequest(_)) {
                    refuse(Refusal::Invalid(flight::reinitialize(Some(&r.id))));
                    return Err(SessionsError::Refused);
                }
                match self.flights.begin(id, r.id.clone()) {
                    Some(landing) => Some(landing),
                    None => {
                        refuse(Refusal::Invalid(flight::duplicate(&r.id)));
                        return Err(SessionsError::Refused);
                    }
                }
            }
            _ => None,
        };
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
        // The request's id stays taken until its answer stream ends.
        Ok(stream.map(move |m| {
            let _in_flight = (&in_flight, &landing);
            m
        }))
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        self.touch(id);
        // MCP answers a cancelled request with nothing; its id stays taken (`mcp::flight`).
        if let JsonRpcMessage::Notification(n) = &message
            && let ClientNotification::CancelledNotification(c) = &n.notification
            && let Some(request) = &c.params.request_id
        {
            self.flights.cancel(id, request.clone());
        }
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

    async fn restore_session(
        &self,
        _id: SessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        Ok(RestoreOutcome::NotSupported)
    }

    fn event_store(&self) -> Option<Arc<dyn EventStore>> {
        None
    }
}

/// Middleware: a request the store refused gets its proper answer instead of rmcp's bare 500: a
/// full store 503 with `Retry-After` (and a JSON-RPC error body), a broken session rule 400
/// with the JSON-RPC error, an unknown session's DELETE 404.
pub async fn answer_refusals(req: Request, next: Next) -> Response {
    REFUSED
        .scope(Cell::new(None), async move {
            let response = next.run(req).await;
            match REFUSED.with(Cell::take) {
                None => response,
                Some(Refusal::Full) => {
                    let body = super::malformed::error_response(
                        serde_json::Value::Null,
                        -32000,
                        "this server holds its maximum number of MCP sessions; retry later, or use the stateless 2026-07-28 protocol, which needs no session",
                    );
                    let mut r =
                        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
                    r.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_S));
                    r
                }
                Some(Refusal::Invalid(error)) => {
                    (StatusCode::BAD_REQUEST, axum::Json(error)).into_response()
                }
                Some(Refusal::UnknownSession) => {
                    (StatusCode::NOT_FOUND, "Not Found: Session not found").into_response()
                }
            }
        })
        .await
}

//! Serving an axum `Router` on a TCP listener with what an exposed listener needs: header-read,
//! body-read and idle keep-alive timeouts, a connection cap answered with 503, TCP_NODELAY on
//! every connection, and accept errors (EMFILE...) logged and retried without spinning. Every HTTP
//! listener uses it: MCP (`mcp::http`), the webhook receiver (`mcp::webhook`) and the simulator.
//!
//! The header and idle timeouts are this module's own timer, not hyper's `header_read_timeout`:
//! hyper (1.12) starts that timer whenever it waits for a head, including between requests on a
//! kept-alive connection, so it would close idle connections at the header timeout and leave
//! no room for a longer idle timeout.

use crate::logging::Tally;
use crate::sync::Locked;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Request, Response, StatusCode, header};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use crate::settings::ListenLimits;

/// Pause after an accept error that is not one connection's own (EMFILE, ENFILE, ENOBUFS...):
/// retrying at once would spin a core while the process is out of descriptors.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Repeated accept errors and refusals are logged at most once per this, with a count.
pub const LOG_EVERY: Duration = crate::logging::SUMMARY_EVERY;
/// What a client beyond the cap is told to wait before it tries again.
pub const RETRY_AFTER_S: u64 = 5;
/// How long a refused connection is kept to read what the client sends after the 503: closing
/// with unread data sends a reset, which can make the client lose the 503.
const REFUSED_LINGER: Duration = Duration::from_secs(1);
/// After this many connections have closed, freed heap pages are handed back to the system
/// (checked every `LOG_EVERY`): each connection's buffers are small allocations that glibc
/// otherwise keeps in its per-thread arenas, so a burst of thousands stays resident.
const TRIM_AFTER_CLOSES: usize = 256;
/// Descriptors left to everything but connections when the cap is lowered to fit the limit:
/// the upstream pool, the audit database, the other listener, refusals in progress.
const RESERVED_FDS: usize = 128;
/// Refused connections lingering at once; beyond it they are closed right after the 503, so a
/// flood cannot hold descriptors through the refusal path.
const MAX_LINGERING: usize = 64;

const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
Retry-After: 5\r\n\
Connection: close\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Length: 54\r\n\
\r\n\
too many connections are open; try again in a moment.\n";

/// Accepts one connection and sets it up as every listener here wants it: TCP_NODELAY, because
/// a small response on a kept-alive connection otherwise waits for the client's delayed ACK
/// (Nagle), about 40 ms on Linux.
pub async fn accept(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
    let (stream, peer) = listener.accept().await?;
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!("cannot set TCP_NODELAY on a connection from {peer}: {e}");
    }
    Ok((stream, peer))
}

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting, lets every
/// connection finish its requests in flight (idle ones close at once) and returns when all are
/// closed. Dropping the returned future closes every connection at once.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ListenLimits,
    shutdown: impl Future<Output = ()>,
) {
    // `true` asks connections to finish; the sender's drop (this future dropped) ends them.
    let (stop_tx, stop_rx) = watch::channel(false);
    let open = Arc::new(AtomicUsize::new(0));
    let lingering = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(AtomicUsize::new(0));
    let mut trim = tokio::time::interval(LOG_EVERY);
    trim.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut accept_errors = Tally::new();
    let mut refusals = Tally::new();
    let cap = effective_cap(limits.max_connections);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            r = accept(&listener) => r,
            _ = trim.tick() => {
                if closed.load(Ordering::Relaxed) >= TRIM_AFTER_CLOSES {
                    closed.store(0, Ordering::Relaxed);
                    release_free_memory();
                }
                continue;
            }
        };
        match accepted {
            Ok((stream, peer)) => {
                if let Some(n) = accept_errors.settle() {
                    tracing::warn!("accepting connections again after {n} more failures");
                }
                let now_open = open.load(Ordering::Relaxed);
                if now_open >= cap {
                    if let Some(n) = refusals.note() {
                        tracing::warn!(
                            "refused {n} connection(s) with 503: {now_open} are open, the cap \
                             (--max-connections); latest from {peer}"
                        );
                    }
                    refuse(stream, &lingering);
                    continue;
                }
                if let Some(n) = refusals.settle() {
                    tracing::warn!(
                        "refused {n} more connection(s) with 503 before slots came free"
                    );
                }
                let slot = Slot::take(&open);
                tokio::spawn(connection(
                    stream,
                    app.clone(),
                    limits,
                    stop_rx.clone(),
                    (slot, Ended(closed.clone())),
                ));
            }
            // One client's failure (it reset before we accepted): nothing to wait for.
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                if let Some(n) = accept_errors.note() {
                    tracing::warn!(
                        "cannot accept connections: {e} ({n} failure(s) since the last report; \
                         retrying every {ACCEPT_BACKOFF:?}, reported at most every {LOG_EVERY:?})"
                    );
                }
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                }
            }
        }
    }
    drop(listener);
    drop(stop_rx);
    let _ = stop_tx.send(true);
    // Every connection task holds a receiver until it ends.
    stop_tx.closed().await;
}

/// The cap only helps below the descriptor limit: above it, accept fails (EMFILE) before the
/// cap is reached and clients wait instead of getting a 503. So the cap is lowered to leave
/// `RESERVED_FDS` free when the limit (Linux: /proc/self/limits) is lower than asked.
fn effective_cap(max_connections: usize) -> usize {
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse::<usize>().ok())
        });
    match soft {
        Some(soft) if max_connections > soft.saturating_sub(RESERVED_FDS) => {
            let cap = soft.saturating_sub(RESERVED_FDS).max(1);
            tracing::info!(
                "serving at most {cap} connections at once: --max-connections {max_connections} \
                 is above what the descriptor limit ({soft}, `ulimit -n`) leaves"
            );
            cap
        }
        _ => max_connections,
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Answers a connection beyond the cap with a fixed 503 and closes it.
fn refuse(stream: TcpStream, lingering: &Arc<AtomicUsize>) {
    // A fresh socket's send buffer is empty, so the short answer goes out whole without waiting.
    let _ = stream.try_write(REFUSAL);
    if lingering.load(Ordering::Relaxed) >= MAX_LINGERING {
        return;
    }
    let slot = Slot::take(lingering);
    tokio::spawn(async move {
        let _slot = slot;
        let mut stream = stream;
        let _ = stream.shutdown().await;
        let mut sink = [0u8; 1024];
        let _ = tokio::time::timeout(REFUSED_LINGER, async {
            while let Ok(1..) = stream.read(&mut sink).await {}
        })
        .await;
    });
}

/// One place in a counter, given back on drop.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(counter: &Arc<AtomicUsize>) -> Slot {
        counter.fetch_add(1, Ordering::Relaxed);
        Slot(counter.clone())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts a connection closed, on drop.
struct Ended(Arc<AtomicUsize>);

impl Drop for Ended {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Asks glibc to give freed heap pages back to the system, after many connections (here) or
/// sessions (`mcp::sessions`) ended. Without it their memory stays resident (glibc keeps it in
/// its per-thread arenas).
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

/// Serves one connection and closes it when a head or an idle period outlasts its limit, or
/// when the server stops.
async fn connection(
    stream: TcpStream,
    app: Router,
    limits: ListenLimits,
    mut stop: watch::Receiver<bool>,
    _held: (Slot, Ended),
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        stream,
        activity: activity.clone(),
    });
    let for_requests = activity.clone();
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        request(app.clone(), req, limits.body_timeout, for_requests.clone())
    });
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
    tokio::pin!(conn);
    loop {
        let deadline = activity.deadline(&limits);
        let changed = activity.changed.notified();
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!("HTTP connection ended: {e}");
                }
                return;
            }
            _ = changed => {}
            _ = sleep_until(deadline) => {
                if let Some(why) = activity.expired(&limits) {
                    tracing::debug!("closing an HTTP connection: {why}");
                    return;
                }
            }
            r = stop.changed() => {
                if r.is_err() {
                    return;
                }
                // Closes the connection once its requests in flight are answered; at once if idle.
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// What a connection is doing, for its header and idle timeouts.
struct Activity {
    state: Mutex<ActivityState>,
    /// Woken when a head starts or the last request in flight ends: the deadline moves.
    changed: Notify,
}

struct ActivityState {
    /// Requests whose response has not ended; an SSE stream counts until it closes.
    in_flight: usize,
    /// When the head now awaited began: the connection's opening for its first request, then
    /// the first byte read with no request in flight.
    head_since: Option<Instant>,
    /// When the last request in flight ended.
    idle_since: Instant,
}

impl Activity {
    fn new() -> Activity {
        let now = Instant::now();
        Activity {
            state: Mutex::new(ActivityState {
                in_flight: 0,
                head_since: Some(now),
                idle_since: now,
            }),
            changed: Notify::new(),
        }
    }

    /// A poisoned lock only means a panic elsewhere mid-update of plain counters; still usable.
    fn lock(&self) -> MutexGuard<'_, ActivityState> {
        self.state.locked()
    }

    fn read_some(&self) {
        let mut s = self.lock();
        if s.in_flight == 0 && s.head_since.is_none() {
            s.head_since = Some(Instant::now());
            drop(s);
            self.changed.notify_one();
        }
    }

    fn request_started(&self) {
        let mut s = self.lock();
        s.in_flight += 1;
        s.head_since = None;
    }

    fn request_ended(&self) {
        let mut s = self.lock();
        s.in_flight -= 1;
        if s.in_flight == 0 {
            s.idle_since = Instant::now();
            drop(s);
            self.changed.notify_one();
        }
    }

    fn deadline(&self, limits: &ListenLimits) -> Option<Instant> {
        let s = self.lock();
        if s.in_flight > 0 {
            return None;
        }
        Some(match s.head_since {
            Some(h) => h + limits.header_timeout,
            None => s.idle_since + limits.idle_timeout,
        })
    }

    fn expired(&self, limits: &ListenLimits) -> Option<&'static str> {
        let deadline = self.deadline(limits)?;
        if deadline > Instant::now() {
            return None;
        }
        Some(if self.lock().head_since.is_some() {
            "the request head did not arrive within the header timeout"
        } else {
            "idle for the idle timeout"
        })
    }
}

/// The connection's socket, telling `Activity` when bytes arrive.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.read_some();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// One request through the router, its body held to `body_timeout` from its head.
async fn request(
    app: Router,
    req: Request<Incoming>,
    body_timeout: Duration,
    activity: Arc<Activity>,
) -> Result<Response<Tracked>, Infallible> {
    let in_flight = InFlight::start(activity);
    let timed_out = Arc::new(AtomicBool::new(false));
    let req = if http_body::Body::is_end_stream(req.body()) {
        req.map(Body::new)
    } else {
        let flag = timed_out.clone();
        req.map(|inner| {
            Body::new(Deadline {
                inner,
                sleep: Box::pin(tokio::time::sleep(body_timeout)),
                timed_out: flag,
            })
        })
    };
    let response = match app.oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    // The handler saw the cut body as an error of its own (400, 413...); the client is told why.
    let response = if timed_out.load(Ordering::Relaxed) {
        body_timed_out(body_timeout)
    } else {
        response
    };
    Ok(response.map(|body| Tracked {
        body,
        _in_flight: in_flight,
    }))
}

fn body_timed_out(limit: Duration) -> Response<Body> {
    let mut r = Response::new(Body::from(format!(
        "the request body did not arrive within {} s\n",
        limit.as_secs_f64()
    )));
    *r.status_mut() = StatusCode::REQUEST_TIMEOUT;
    let headers = r.headers_mut();
    // The rest of the body may still be on its way; the connection cannot be reused.
    headers.insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// A request in flight until its response body is dropped (ended, or the client gone).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: Arc<Activity>) -> InFlight {
        activity.request_started();
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

/// The response body, keeping its request in flight while it streams.
struct Tracked {
    body: Body,
    _in_flight: InFlight,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The request body, failing once `sleep` ends before the body does.
struct Deadline {
    inner: Incoming,
    sleep: Pin<Box<Sleep>>,
    timed_out: Arc<AtomicBool>,
}

#[derive(Debug)]
struct BodyTimedOut;

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive within the body timeout")
    }
}

impl std::error::Error for BodyTimedOut {}

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
        }
        if this.sleep.as_mut().poll(cx).is_ready() {
            this.timed_out.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(BodyTimedOut.into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_one_whole_http_response() {
        let text = std::str::from_utf8(REFUSAL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("Retry-After: {RETRY_AFTER_S}\r\n")));
        assert!(head.contains("Connection: close"));
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
    }

    #[tokio::test]
    async fn accepted_connections_have_nodelay() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = TcpStream::connect(addr).await.unwrap();
        let (stream, _) = accept(&listener).await.unwrap();
        assert!(stream.nodelay().unwrap());
    }
}

//! Streamable HTTP serving: rmcp's `StreamableHttpService` at `/mcp` behind a bearer token, Host and
//! Origin allow-lists and a body limit, plus an open `GET /healthz`.
//!
//! Pre-2026-07-28 clients get sessions (`mcp::sessions`: bounded, expiring) so the server can ask
//! them for a confirmation over SSE; 2026-07-28 requests carry everything in `_meta` and rmcp serves them
//! statelessly. Every session and request shares one `Arc<Shared>`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;

use super::guard::Guard;
use super::malformed::{self, Incoming};
use super::server::{Shared, SmartcarServer};
use super::sessions::{self, BoundedSessions};
use crate::secret::Secret;

/// Where MCP is served.
pub const MCP_PATH: &str = "/mcp";
/// Largest accepted request body: tool arguments are small, so anything near this is abuse.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Host names accepted without `--allowed-hosts` (any port).
pub const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
/// How long open SSE streams get to close after a shutdown signal before the process stops anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves MCP over Streamable HTTP on `addr` (HOST:PORT) until SIGINT or SIGTERM.
pub async fn serve(
    shared: Arc<Shared>,
    addr: &str,
    allowed_hosts: &[String],
) -> anyhow::Result<()> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(addr)
        .await
        .with_context(|| {
            format!("cannot serve on `{addr}`: expected HOST:PORT, for example 127.0.0.1:8765")
        })?
        .collect();
    // Checked before binding, so an exposed address is never open even for a moment.
    let serving = &shared.app.serving;
    for a in &addrs {
        check_exposure(a, serving.http_token.is_some() || serving.oauth.is_some())?;
    }
    let listener = TcpListener::bind(&addrs[..])
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    serve_on(listener, shared, allowed_hosts, shutdown_signal()).await
}

/// Serves MCP on an already bound listener until `shutdown` completes (tests bind 127.0.0.1:0).
pub async fn serve_on(
    listener: TcpListener,
    shared: Arc<Shared>,
    allowed_hosts: &[String],
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let token = shared.app.serving.http_token.clone();
    let guard = resource_server(&shared)?;
    check_exposure(&addr, token.is_some() || guard.is_some())?;
    let hosts = host_allow_list(allowed_hosts)?;
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts.clone())
        .with_allowed_origins(origin_allow_list(&hosts))
        .with_max_request_body_bytes(MAX_BODY_BYTES)
        // A stateless answer that is one message goes out as plain JSON: one write with a length
        // instead of a chunked SSE stream and its keep-alive timer. rmcp keeps SSE whenever the
        // handler sends anything before its answer, and sessions always get SSE.
        .with_json_response(true);
    let mut config = config;
    // Replicas sharing a store share handshake sessions: another replica restores one by
    // replaying its `initialize`.
    if shared.app.store.is_shared() {
        config.session_store = Some(Arc::new(super::session_store::SharedSessions(
            shared.app.store.clone(),
        )));
    }
    let sessions_and_streams = config.cancellation_token.clone();
    let shared_for_log = shared.clone();
    let app = router(shared, token.clone(), guard.clone(), config);

    tracing::info!(
        %addr,
        bearer_token_required = token.is_some(),
        oauth = guard.is_some(),
        allowed_hosts = %hosts.join(","),
        "serving MCP over Streamable HTTP"
    );
    crate::logging::banner(&format!("listening on http://{addr}{MCP_PATH}"));
    if let Some(g) = &guard {
        tracing::info!("{}", super::guard::describe(g));
        reload_tenants_on_sighup(g.clone());
    }
    super::webhook::announce(
        &shared_for_log,
        &format!("http://{addr}{}", super::webhook::WEBHOOK_PATH),
    );
    if !addr.ip().to_canonical().is_loopback() && allowed_hosts.is_empty() {
        tracing::warn!(
            "only Host headers naming localhost, 127.0.0.1 or ::1 are accepted; add the names clients use with --allowed-hosts"
        );
    }

    let stop = {
        let ct = sessions_and_streams.clone();
        async move {
            shutdown.await;
            tracing::info!("shutting down: finishing open requests");
            // Ends every session and SSE stream; without it graceful shutdown waits for them forever.
            ct.cancel();
        }
    };
    let limits = shared_for_log.app.serving.listen;
    let server = crate::listen::serve(listener, app, limits, stop);
    tokio::select! {
        () = server => {}
        _ = async {
            sessions_and_streams.cancelled().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => tracing::warn!("connections still open {SHUTDOWN_GRACE:?} after shutdown began; closing them"),
    }
    tracing::info!("HTTP server stopped");
    Ok(())
}

/// The OAuth resource server, when `--oauth-issuer` asks for one.
fn resource_server(shared: &Shared) -> anyhow::Result<Option<Arc<Guard>>> {
    let serving = &shared.app.serving;
    let Some(oauth) = &serving.oauth else {
        return Ok(None);
    };
    let guard = Guard::new(
        shared.app.store.clone(),
        oauth,
        serving.http_token.is_some(),
        serving.max_sessions,
        MAX_BODY_BYTES,
    )?;
    Ok(Some(Arc::new(guard)))
}

/// SIGHUP reads the tenants table again (the webhook VERIFY window listens for it too).
fn reload_tenants_on_sighup(guard: Arc<Guard>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("cannot listen for SIGHUP: the tenants table is read once");
            return;
        };
        while hup.recv().await.is_some() {
            guard.verifier().reload_tenants();
        }
    });
    #[cfg(not(unix))]
    let _ = guard;
}

fn router(
    shared: Arc<Shared>,
    token: Option<Secret>,
    guard: Option<Arc<Guard>>,
    config: StreamableHttpServerConfig,
) -> Router {
    let health = serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "tools": shared.tool_count(),
    });
    // The webhook route answers to the same names as /mcp: a rebound name must not reach it.
    let webhooks = super::webhook::routes(shared.clone(), config.allowed_hosts.clone());
    let factory_state = shared.clone();
    let serving = &shared.app.serving;
    let sessions = BoundedSessions::new(serving.max_sessions, serving.session_idle);
    let mcp = McpService(Arc::new(StreamableHttpService::new(
        move || Ok(SmartcarServer::new(factory_state.clone())),
        sessions.clone(),
        config,
    )));
    // One middleware for both checks in front of rmcp: each `from_fn` layer clones the service
    // stack under it for every request, and each read the body again.
    let mut app = Router::new()
        .route_service(MCP_PATH, mcp)
        .route_layer(middleware::from_fn_with_state(sessions, mcp_rules));
    if let Some(guard) = &guard {
        app = app.route_layer(middleware::from_fn_with_state(
            guard.clone(),
            super::guard::require_token,
        ));
    } else if let Some(token) = token {
        app = app.route_layer(middleware::from_fn_with_state(
            Arc::new(token),
            require_bearer,
        ));
    }
    // RFC 9728 metadata, public like /healthz: a client reads it before it holds a token.
    if let Some(guard) = guard {
        let mut metadata = Router::new();
        for path in super::guard::METADATA_PATHS {
            metadata = metadata.route(path, get(super::guard::metadata));
        }
        app = app.merge(metadata.with_state(guard));
    }
    // Added after the auth layer so load balancers and probes need no token, and Smartcar, which
    // cannot send one, reaches the (signed) webhook route.
    app.route(
        "/healthz",
        get(move || {
            let health = health.clone();
            async move { axum::Json(health) }
        }),
    )
    .merge(webhooks)
}

/// rmcp's service behind an `Arc`: axum clones a route's service for every request (and rmcp
/// clones itself again in `call`), and a `StreamableHttpService` clone copies its config with
/// the host and origin lists; callgrind counted about 23,000 instructions a request for those
/// clones and their drops.
#[derive(Clone)]
struct McpService(Arc<StreamableHttpService<SmartcarServer, BoundedSessions>>);

impl tower::Service<Request> for McpService {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = futures::future::BoxFuture<'static, Result<Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let service = self.0.clone();
        Box::pin(async move { Ok(service.handle(req).await.into_response()) })
    }
}

/// The session rules (`sessions::session_rules`), and a POST body that is not one JSON-RPC
/// message answered as a client error: 400 with a JSON-RPC error (-32700 or -32600) in place of
/// rmcp's 415, which would tell the client its Content-Type was wrong. The body is read once for
/// both and bounded here as rmcp bounds it (413 beyond `MAX_BODY_BYTES`).
async fn mcp_rules(
    State(sessions): State<Arc<BoundedSessions>>,
    req: Request,
    next: Next,
) -> Response {
    if req.method() != axum::http::Method::POST {
        return sessions::session_rules(&sessions, req, next).await;
    }
    let json_typed = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("Payload Too Large: request body exceeds {MAX_BODY_BYTES} bytes"),
            )
                .into_response();
        }
    };
    let response = sessions::post_rules(sessions, parts, bytes.clone(), next).await;
    if response.status() != StatusCode::UNSUPPORTED_MEDIA_TYPE || !json_typed {
        return response;
    }
    // rmcp answers 415 both for a wrong Content-Type and for a body it cannot deserialize; only
    // the second is rewritten (with the right Content-Type, the body is at fault).
    match malformed::classify(&bytes) {
        Incoming::Refuse(error) => (StatusCode::BAD_REQUEST, axum::Json(error)).into_response(),
        Incoming::Ignore => (
            StatusCode::BAD_REQUEST,
            axum::Json(malformed::error_response(
                serde_json::Value::Null,
                malformed::INVALID_REQUEST,
                "Invalid request: the body is not a JSON-RPC message",
            )),
        )
            .into_response(),
        // It reads as a message when parsed on its own, yet rmcp could not read it: a member
        // given twice, which the two readers resolve differently. Still the body's fault.
        Incoming::Message(_) => (
            StatusCode::BAD_REQUEST,
            axum::Json(malformed::error_response(
                serde_json::Value::Null,
                malformed::INVALID_REQUEST,
                "Invalid request: the body is not one JSON-RPC message MCP defines (is a member given twice?)",
            )),
        )
            .into_response(),
    }
}

/// Refuses to expose the server beyond this machine without a bearer token or OAuth.
fn check_exposure(addr: &SocketAddr, authenticated: bool) -> anyhow::Result<()> {
    if !authenticated && !addr.ip().to_canonical().is_loopback() {
        anyhow::bail!(
            "refusing to serve MCP on {addr} without SMARTCAR_MCP_HTTP_TOKEN: that address is reachable \
             from other machines, and anyone reaching it could drive the vehicles. Set \
             SMARTCAR_MCP_HTTP_TOKEN to a long random value (clients send `Authorization: Bearer <token>`), \
             serve as an OAuth resource server (--oauth-issuer), or serve on 127.0.0.1"
        );
    }
    Ok(())
}

/// Loopback names first, then the operator's names, without duplicates or blanks.
pub fn host_allow_list(extra: &[String]) -> anyhow::Result<Vec<String>> {
    let mut hosts: Vec<String> = LOOPBACK_HOSTS.iter().map(|h| h.to_string()).collect();
    for h in extra.iter().map(|h| h.trim().to_ascii_lowercase()) {
        // A URL here would never match a Host header, and every request would get a puzzling 403.
        if h.contains(['/', '@', ' ']) {
            anyhow::bail!(
                "--allowed-hosts takes host names such as mcp.example.com or mcp.example.com:8443, not `{h}`"
            );
        }
        if !h.is_empty() && !hosts.contains(&h) {
            hosts.push(h);
        }
    }
    Ok(hosts)
}

/// Browser origins allowed to call: pages served from an allowed host (any port unless the host
/// entry names one). Requests without `Origin` (every non-browser client) are unaffected.
fn origin_allow_list(hosts: &[String]) -> Vec<String> {
    let mut origins = Vec::new();
    for host in hosts {
        let bracketed = if host.contains(':')
            && !host.starts_with('[')
            && host.parse::<std::net::Ipv6Addr>().is_ok()
        {
            format!("[{host}]")
        } else {
            host.clone()
        };
        let has_port = axum::http::uri::Authority::try_from(bracketed.as_str())
            .ok()
            .and_then(|a| a.port_u16())
            .is_some();
        for scheme in ["http", "https"] {
            origins.push(if has_port {
                format!("{scheme}://{bracketed}")
            } else {
                format!("{scheme}://{bracketed}:*")
            });
        }
    }
    origins
}

/// Wrong bearer tokens, logged as one line per 10 s with their count.
static WRONG_TOKENS: crate::logging::Repeated = crate::logging::Repeated::new();

async fn require_bearer(State(token): State<Arc<Secret>>, req: Request, next: Next) -> Response {
    match super::guard::bearer(&req) {
        Some(p) if constant_time_eq(token.expose().as_bytes(), p.as_bytes()) => next.run(req).await,
        Some(_) => {
            if let Some(n) = WRONG_TOKENS.hit() {
                tracing::warn!(
                    count = n,
                    "refused {n} MCP request(s) with a wrong bearer token since the last such line"
                );
            }
            unauthorized(true)
        }
        None => {
            tracing::info!("refused an MCP request without a bearer token");
            unauthorized(false)
        }
    }
}

fn unauthorized(token_was_presented: bool) -> Response {
    // RFC 6750: no error code when the request carried no credentials at all.
    let challenge = if token_was_presented {
        r#"Bearer realm="smartcar-mcp", error="invalid_token""#
    } else {
        r#"Bearer realm="smartcar-mcp""#
    };
    let body = serde_json::json!({
        "error": if token_was_presented { "invalid_token" } else { "unauthorized" },
        "error_description": "this MCP server requires `Authorization: Bearer <token>` with the token its operator set in SMARTCAR_MCP_HTTP_TOKEN",
    });
    let mut response = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

/// Compares without an early exit, so the time taken says nothing about how much of a guess
/// matched; it depends only on the length of `expected`.
fn constant_time_eq(expected: &[u8], presented: &[u8]) -> bool {
    let mut diff = expected.len() ^ presented.len();
    for (i, e) in expected.iter().enumerate() {
        diff |= usize::from(e ^ presented.get(i).copied().unwrap_or(0));
    }
    std::hint::black_box(diff) == 0
}

/// Completes on SIGINT (ctrl-c) or SIGTERM (what container runtimes and systemd send).
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!("cannot listen for ctrl-c: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => tracing::info!("SIGINT received"),
        _ = terminate => tracing::info!("SIGTERM received"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_equal_only_when_identical() {
        assert!(constant_time_eq(b"s3cret-token", b"s3cret-token"));
        assert!(!constant_time_eq(b"s3cret-token", b"s3cret-tokeN"));
        assert!(!constant_time_eq(b"s3cret-token", b"s3cret-token-and-more"));
        assert!(!constant_time_eq(b"s3cret-token", b"s3cret"));
        assert!(!constant_time_eq(b"s3cret-token", b""));
        // A prefix padded with NULs must not pass for the missing bytes.
        assert!(!constant_time_eq(b"ab", b"a"));
        assert!(!constant_time_eq(b"a\0", b"a"));
    }

    #[test]
    fn only_loopback_may_go_without_a_token() {
        for ok in ["127.0.0.1:1", "[::1]:1", "[::ffff:127.0.0.1]:1"] {
            let a: SocketAddr = ok.parse().unwrap();
            assert!(check_exposure(&a, false).is_ok(), "{ok}");
        }
        for exposed in ["0.0.0.0:1", "[::]:1", "192.168.1.20:1"] {
            let a: SocketAddr = exposed.parse().unwrap();
            let e = check_exposure(&a, false).unwrap_err().to_string();
            assert!(e.contains("SMARTCAR_MCP_HTTP_TOKEN"), "{e}");
            assert!(check_exposure(&a, true).is_ok());
        }
    }

    #[test]
    fn allowed_hosts_extend_loopback_and_become_origins() {
        let hosts = host_allow_list(&[
            " MCP.example.com ".into(),
            "localhost".into(),
            "".into(),
            "gw.example.net:8443".into(),
        ])
        .unwrap();
        assert_eq!(
            hosts,
            [
                "localhost",
                "127.0.0.1",
                "::1",
                "mcp.example.com",
                "gw.example.net:8443"
            ]
        );
        let e = host_allow_list(&["https://mcp.example.com".into()]).unwrap_err();
        assert!(
            e.to_string().contains("not `https://mcp.example.com`"),
            "{e}"
        );
        let origins = origin_allow_list(&hosts);
        for o in [
            "http://localhost:*",
            "https://[::1]:*",
            "https://mcp.example.com:*",
            "https://gw.example.net:8443",
        ] {
            assert!(origins.contains(&o.to_string()), "{o} in {origins:?}");
        }
    }
}

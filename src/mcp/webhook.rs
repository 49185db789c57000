//! The webhook receiver: `POST /webhooks/smartcar` on the Streamable HTTP server, or alone on
//! `--webhook-addr` beside stdio serving. Checks `SC-Signature` (HMAC-SHA256 of the raw body with
//! the Application Management Token) before it stores anything, answers VERIFY only while the
//! verification window is open, and answers in well under Smartcar's 15 s because the work is in
//! memory.
//!
//! The route needs no MCP bearer token (Smartcar cannot send one) but every state-changing event
//! must be signed. It applies the Host and Origin allow-lists of `/mcp`, so a page whose name
//! rebinds to this machine cannot reach it.

use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::server::Shared;
use crate::store::Ingested;
use crate::upstream::webhook::{self as smartcar, MAX_BODY_BYTES};

pub const WEBHOOK_PATH: &str = "/webhooks/smartcar";

/// The receiver, answering only to requests whose Host is in `allowed_hosts` (the full list, as
/// `/mcp` gets it) and whose Origin, if any, is a page on one of them.
pub fn routes(shared: Arc<Shared>, allowed_hosts: Vec<String>) -> Router {
    Router::new()
        .route(WEBHOOK_PATH, post(receive))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .route_layer(middleware::from_fn_with_state(
            Arc::new(allowed_hosts),
            allowed_host_and_origin,
        ))
        .with_state(shared)
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// A host entry or header as (lowercase host without brackets, port).
fn authority(text: &str) -> Option<(String, Option<u16>)> {
    let text = text.trim();
    let (host, port) = match axum::http::uri::Authority::try_from(text) {
        Ok(a) => (a.host().to_string(), a.port_u16()),
        // `::1` alone does not parse as an authority; it is a host all the same.
        Err(_) => (text.to_string(), None),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then(|| (host.to_ascii_lowercase(), port))
}

/// Whether `host` (and `port`) is named by an entry; an entry without a port allows any.
fn named(allowed: &[String], host: &str, port: Option<u16>) -> bool {
    allowed
        .iter()
        .filter_map(|a| authority(a))
        .any(|(h, p)| h == host && p.is_none_or(|p| Some(p) == port))
}

fn host_is_allowed(allowed: &[String], header: &str) -> bool {
    // A full authority only: `localhost.evil.example` or `localhost@evil` must not pass as localhost.
    if header.contains(['@', '/', ' ']) {
        return false;
    }
    authority(header).is_some_and(|(h, p)| named(allowed, &h, p))
}

/// A browser's Origin: a page served over http(s) from an allowed host (`null` never is).
fn origin_is_allowed(allowed: &[String], origin: &str) -> bool {
    let Ok(uri) = origin.trim().parse::<axum::http::Uri>() else {
        return false;
    };
    let default_port = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
        Some("http") => 80,
        Some("https") => 443,
        _ => return false,
    };
    let Some((host, port)) = uri.authority().and_then(|a| authority(a.as_str())) else {
        return false;
    };
    named(allowed, &host, Some(port.unwrap_or(default_port)))
}

async fn allowed_host_and_origin(
    State(allowed): State<Arc<Vec<String>>>,
    req: Request,
    next: Next,
) -> Response {
    let headers = req.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    if !host.is_some_and(|h| host_is_allowed(&allowed, &h)) {
        // The name is not echoed: it is the sender's text, of any length.
        tracing::info!("refused a webhook request with a Host not in the allow-list");
        return answer(
            StatusCode::FORBIDDEN,
            json!({ "error": "this Host is not accepted: add the public name Smartcar sends to with --allowed-hosts (SMARTCAR_ALLOWED_HOSTS); loopback names are always accepted" }),
        );
    }
    if let Some(origin) = headers.get(header::ORIGIN)
        && !origin
            .to_str()
            .is_ok_and(|o| origin_is_allowed(&allowed, o))
    {
        tracing::info!("refused a webhook request from a browser Origin not in the allow-list");
        return answer(
            StatusCode::FORBIDDEN,
            json!({ "error": "this Origin is not accepted: Smartcar sends no Origin, and browser pages may call only from an allowed host" }),
        );
    }
    next.run(req).await
}

async fn receive(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(token) = shared.app.serving.management_token.as_ref() else {
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "error": "webhooks are off: this server was started without SMARTCAR_MANAGEMENT_TOKEN (the Application Management Token from Smartcar's dashboard)" }),
        );
    };
    let signed = headers
        .get("sc-signature")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|sig| smartcar::verify(token.expose(), &body, sig));
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        if !signed {
            return unsigned();
        }
        return answer(
            StatusCode::BAD_REQUEST,
            json!({ "error": "the body is not JSON" }),
        );
    };
    if !event.is_object() {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({ "error": "the body must be a JSON object: one Smartcar event" }),
        );
    }
    if smartcar::is_verify(&event) {
        return verify(&shared, token.expose(), &event);
    }
    if !signed {
        return unsigned();
    }
    let kind = event
        .get("eventType")
        .and_then(Value::as_str)
        .unwrap_or("?");
    // A signed event may tell of a connection made or removed: OAuth callers' ownership is read
    // again from Smartcar on their next call.
    shared.app.owners.forget();
    match shared.app.store.ingest(&event).await {
        Ingested::Updated { vehicle_id } => {
            tracing::info!(event = %crate::text::clip(kind), vehicle = %vehicle_id, "webhook stored");
            answer(StatusCode::OK, json!({ "status": "stored" }))
        }
        Ingested::Unchanged => answer(StatusCode::OK, json!({ "status": "unchanged" })),
        Ingested::Test => {
            tracing::info!(event = %crate::text::clip(kind), "webhook test event received: delivery and signature work; its sample values are not kept");
            answer(StatusCode::OK, json!({ "status": "test" }))
        }
        Ingested::Ignored => {
            tracing::info!(event = %crate::text::clip(kind), "webhook event not kept");
            answer(StatusCode::OK, json!({ "status": "ignored" }))
        }
        Ingested::Refused(why) => {
            tracing::info!(event = %crate::text::clip(kind), "webhook event refused: {why}");
            answer(StatusCode::BAD_REQUEST, json!({ "error": why }))
        }
    }
}

/// Smartcar's VERIFY, signed or not. The answer is HMAC(token, challenge), the very function that
/// signs events, so it is given only for a challenge that cannot be an event body, and only while
/// the operator expects Smartcar to ask.
fn verify(shared: &Shared, token: &str, event: &Value) -> Response {
    let Some(challenge) =
        smartcar::challenge(event).filter(|c| smartcar::challenge_is_well_formed(c))
    else {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({ "error": format!(
                "a VERIFY challenge must be 1 to {} characters of A-Z, a-z, 0-9, _ and -",
                smartcar::MAX_CHALLENGE_CHARS
            ) }),
        );
    };
    let window = &shared.app.verify_window;
    if !window.is_open() {
        let length = window.length().as_secs();
        if window.first_refusal() {
            tracing::warn!(
                "refused Smartcar's webhook VERIFY: the verification window is closed. Restart the server or send it SIGHUP (kill -HUP <pid>) to answer VERIFY for {length} s, then click Verify in Smartcar's dashboard (--webhook-verify-window-s; 0 never answers)"
            );
        }
        return answer(
            StatusCode::FORBIDDEN,
            json!({ "error": format!(
                "the webhook verification window is closed: restart the server or send it SIGHUP to answer VERIFY for the next {length} s, then verify again (--webhook-verify-window-s, SMARTCAR_MCP_WEBHOOK_VERIFY_WINDOW_S; 0 never answers)"
            ) }),
        );
    }
    tracing::info!("answered Smartcar's webhook VERIFY challenge");
    answer(
        StatusCode::OK,
        json!({ "challenge": smartcar::sign(token, challenge.as_bytes()) }),
    )
}

/// Webhooks without a valid signature, logged as one line per 10 s with their count.
static UNSIGNED: crate::logging::Repeated = crate::logging::Repeated::new();

fn unsigned() -> Response {
    if let Some(n) = UNSIGNED.hit() {
        tracing::warn!(
            count = n,
            "refused {n} webhook(s) without a valid SC-Signature since the last such line"
        );
    }
    answer(
        StatusCode::UNAUTHORIZED,
        json!({ "error": "missing or wrong SC-Signature: the body must be signed with the Application Management Token" }),
    )
}

/// Opens the verification window again on each SIGHUP, for as long as it was open at start.
#[cfg(unix)]
pub fn reopen_verify_window_on_sighup(shared: Arc<Shared>) {
    use tokio::signal::unix::{SignalKind, signal};
    // Registered now, not in the task: a SIGHUP right after start must not end the process.
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(
                "cannot listen for SIGHUP (which reopens the webhook VERIFY window): {e}"
            );
            return;
        }
    };
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            let window = &shared.app.verify_window;
            window.open();
            tracing::warn!(
                "SIGHUP: answering Smartcar's webhook VERIFY for the next {} s",
                window.length().as_secs()
            );
        }
    });
}

/// Without unix signals the window opens only at start.
#[cfg(not(unix))]
pub fn reopen_verify_window_on_sighup(_shared: Arc<Shared>) {}

/// Says at start-up whether webhooks are received.
pub fn announce(shared: &Shared, at: &str) {
    if shared.app.serving.management_token.is_none() {
        tracing::warn!(
            "webhooks are off: set SMARTCAR_MANAGEMENT_TOKEN to receive Smartcar's webhooks at {at}"
        );
    } else {
        let window = shared.app.verify_window.length().as_secs();
        tracing::info!(
            "receiving Smartcar's webhooks at {at}; its VERIFY is answered for the first {window} s, and again for as long after each SIGHUP"
        );
    }
}

/// The receiver alone on `addr`, for stdio serving; returns the URL it receives at. `hosts` is
/// the whole allow-list, as `http::host_allow_list` makes it for `/mcp`.
pub async fn listen(shared: Arc<Shared>, addr: &str, hosts: Vec<String>) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot receive webhooks on `{addr}`"))?;
    let local = listener.local_addr()?;
    let url = format!("http://{local}{WEBHOOK_PATH}");
    announce(&shared, &url);
    crate::logging::banner(&format!("receiving webhooks on {url}"));
    let limits = shared.app.serving.listen;
    let app = routes(shared, hosts);
    tokio::spawn(crate::listen::serve(
        listener,
        app,
        limits,
        std::future::pending(),
    ));
    Ok(url)
}

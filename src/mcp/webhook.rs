//! The webhook receiver: `POST /webhooks/smartcar` on the Streamable HTTP server, or alone on
//! `--webhook-addr` beside stdio serving. Answers VERIFY, checks `SC-Signature` (HMAC-SHA256 of
//! the raw body with the Application Management Token) before it stores anything, and answers in
//! well under Smartcar's 15 s because the work is in memory.
//!
//! The route needs no MCP bearer token (Smartcar cannot send one) but every state-changing event
//! must be signed; it sits beside `/mcp`, whose Host and Origin checks it does not touch.

use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::server::Shared;
use crate::tool::pushed::{self, Ingested, MAX_BODY_BYTES};

pub const WEBHOOK_PATH: &str = "/webhooks/smartcar";

pub fn routes(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(WEBHOOK_PATH, post(receive))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(shared)
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
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
        .is_some_and(|sig| pushed::verify(token.expose(), &body, sig));
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        if !signed {
            return unsigned();
        }
        return answer(
            StatusCode::BAD_REQUEST,
            json!({ "error": "the body is not JSON" }),
        );
    };
    // VERIFY may come unsigned; answering it proves we hold the token and changes nothing.
    if let Some(challenge) = pushed::challenge(&event) {
        tracing::info!("answered Smartcar's webhook VERIFY challenge");
        return answer(
            StatusCode::OK,
            json!({ "challenge": pushed::sign(token.expose(), challenge.as_bytes()) }),
        );
    }
    if !signed {
        return unsigned();
    }
    let kind = event
        .get("eventType")
        .and_then(Value::as_str)
        .unwrap_or("?");
    match shared.app.pushed.ingest(&event) {
        Ingested::Updated { vehicle_id } => {
            tracing::info!(event = kind, vehicle = %vehicle_id, "webhook stored");
            answer(StatusCode::OK, json!({ "status": "stored" }))
        }
        Ingested::Unchanged => answer(StatusCode::OK, json!({ "status": "unchanged" })),
        Ingested::Ignored => {
            tracing::info!(event = kind, "webhook event not kept");
            answer(StatusCode::OK, json!({ "status": "ignored" }))
        }
    }
}

fn unsigned() -> Response {
    tracing::warn!("refused a webhook without a valid SC-Signature");
    answer(
        StatusCode::UNAUTHORIZED,
        json!({ "error": "missing or wrong SC-Signature: the body must be signed with the Application Management Token" }),
    )
}

/// Says at start-up whether webhooks are received.
pub fn announce(shared: &Shared, at: &str) {
    if shared.app.serving.management_token.is_none() {
        tracing::warn!(
            "webhooks are off: set SMARTCAR_MANAGEMENT_TOKEN to receive Smartcar's webhooks at {at}"
        );
    } else {
        tracing::info!("receiving Smartcar's webhooks at {at}");
    }
}

/// The receiver alone on `addr`, for stdio serving; returns the URL it receives at.
pub async fn listen(shared: Arc<Shared>, addr: &str) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot receive webhooks on `{addr}`"))?;
    let local = listener.local_addr()?;
    let url = format!("http://{local}{WEBHOOK_PATH}");
    announce(&shared, &url);
    eprintln!("smartcar-mcp: receiving webhooks on {url}");
    let limits = shared.app.serving.listen;
    let app = routes(shared);
    tokio::spawn(crate::listen::serve(
        listener,
        app,
        limits,
        std::future::pending(),
    ));
    Ok(url)
}

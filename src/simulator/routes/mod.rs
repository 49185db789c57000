//! The simulator's HTTP surface: one fallback handler that records each request, answers it from
//! a queued fault if one matches, checks the bearer token and dispatches on the raw path.
//!
//! Routing by hand (rather than with axum's router) keeps the path exactly as received for
//! recording, lets faults pre-empt any route, and means no extractor can reject a request with
//! a body that is not Smartcar-shaped.
//!
//! One file per API area, as tools.yaml's toolsets are: `connections`, `signals`, `commands`,
//! `schedules`, `management`, `webhooks` (with `push`, the events the simulator sends) and
//! `compatibility`; `token` and `paging` serve them all.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State as AxumState};
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str};
use serde_json::Value;

mod commands;
mod compatibility;
mod connections;
mod management;
mod paging;
mod push;
mod schedules;
mod signals;
mod token;
pub(crate) mod webhooks;

use commands::command;
use connections::{delete_connection, delete_user, get_connection, list_connections};
use management::management;
use push::deliver;
use schedules::{delete_schedule, set_schedule};
use signals::{get_signal, get_vehicle, list_signals};
use token::token;

use super::reply::{self, ApiError, oauth_error};
use super::state::{State, TokenProblem};
use super::{Fault, Inner, RecordedRequest};
use crate::catalogue::{SIGNALS, Signal};

const MAX_BODY: usize = 1 << 20;
const PAGE_SIZE_DEFAULT: usize = 10;
const PAGE_SIZE_MAX: usize = 100;

/// Characters escaped in filter values echoed into pagination links.
const LINK_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

pub(crate) fn router(inner: Arc<Inner>) -> Router {
    Router::new().fallback(handle).with_state(inner)
}

async fn handle(AxumState(inner): AxumState<Arc<Inner>>, req: Request) -> Response {
    let request_id = reply::request_id();
    let (parts, body) = req.into_parts();
    let (body, body_too_large) = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => (String::from_utf8_lossy(&bytes).into_owned(), false),
        Err(_) => (String::new(), true),
    };
    let raw_path = parts.uri.path().to_string();
    let (api, rest) = classify(&raw_path);
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_string())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let recorded = RecordedRequest {
        method: parts.method.as_str().to_string(),
        path: rest,
        api,
        query: parse_pairs(parts.uri.query().unwrap_or("")),
        headers,
        body,
    };
    tracing::debug!(method = %recorded.method, path = %raw_path, "simulator request");

    let is_token = api == "auth";
    let (fault, format) = {
        let mut st = inner.lock();
        if is_token {
            st.token_requests.push(recorded.clone());
        } else {
            st.requests.push(recorded.clone());
        }
        (
            st.take_fault(&recorded.method, &raw_path, is_token),
            st.error_format,
        )
    };

    let _flight = (!is_token).then(|| InFlight::enter(&inner));
    let latency = inner.latency_ms.load(Ordering::SeqCst);
    if !is_token && latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let mut resp = if let Some(fault) = fault {
        if fault.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(fault.delay_ms)).await;
        }
        fault_response(&fault)
    } else if is_token {
        if body_too_large {
            oauth_error(400, "invalid_request", "The request body is too large.")
        } else {
            token(&inner, &recorded)
        }
    } else {
        let result = if body_too_large {
            Err(ApiError::validation(
                "BAD_REQUEST",
                "The request body exceeds 1 MiB.",
            ))
        } else {
            api_request(&inner, &recorded)
        };
        result.unwrap_or_else(|e| e.render(format, &request_id))
    };
    if !resp.headers().contains_key("sc-request-id")
        && let Ok(v) = HeaderValue::from_str(&request_id)
    {
        resp.headers_mut().insert("sc-request-id", v);
    }
    let (target, outbox) = {
        let mut st = inner.lock();
        (st.webhook.clone(), std::mem::take(&mut st.outbox))
    };
    if let Some((url, token)) = target {
        for event in outbox {
            tokio::spawn(deliver(url.clone(), token.clone(), event));
        }
    }
    resp
}

/// Counts an API request as being answered until it is dropped.
struct InFlight<'a>(&'a Inner);

impl<'a> InFlight<'a> {
    fn enter(inner: &'a Inner) -> Self {
        let now = inner.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        inner.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(inner)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Which API a raw path belongs to, and the path without that API's base.
fn classify(raw: &str) -> (&'static str, String) {
    fn strip<'a>(raw: &'a str, base: &str) -> Option<&'a str> {
        let rest = raw.strip_prefix(base)?;
        (rest.is_empty() || rest.starts_with('/')).then_some(rest)
    }
    let (api, rest) = if raw.trim_end_matches('/') == "/oauth2/token" {
        ("auth", raw)
    } else if let Some(rest) = strip(raw, "/management/v3") {
        ("management", rest)
    } else if let Some(rest) = strip(raw, "/compatibility/v3") {
        ("compatibility", rest)
    } else if let Some(rest) = strip(raw, "/v3") {
        ("vehicle", rest)
    } else {
        ("other", raw)
    };
    let rest = if rest.is_empty() { "/" } else { rest };
    (api, rest.to_string())
}

fn decode_component(s: &str) -> String {
    let plus_as_space = s.replace('+', " ");
    percent_decode_str(&plus_as_space)
        .decode_utf8_lossy()
        .into_owned()
}

/// `a=1&b=2` (query strings and form bodies) as decoded pairs in order.
fn parse_pairs(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode_component(k), decode_component(v))
        })
        .collect()
}

fn fault_response(fault: &Fault) -> Response {
    let mut resp = if fault.cut_off {
        // A body stream that fails makes hyper drop the connection after the headers.
        let broken = futures::stream::iter([
            Ok(axum::body::Bytes::from(fault.body.clone())),
            Err(std::io::Error::other("connection cut by an injected fault")),
        ]);
        (
            reply::status_code(fault.status),
            axum::body::Body::from_stream(broken),
        )
            .into_response()
    } else {
        (reply::status_code(fault.status), fault.body.clone()).into_response()
    };
    let has_content_type = fault
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
    if !has_content_type && !fault.body.is_empty() {
        let ct = if serde_json::from_str::<Value>(&fault.body).is_ok() {
            "application/json"
        } else {
            "text/plain; charset=utf-8"
        };
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    for (k, v) in &fault.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            resp.headers_mut().append(name, value);
        }
    }
    resp
}

// ---------------------------------------------------------------------------------------------
// API dispatch

fn api_request(inner: &Inner, req: &RecordedRequest) -> Result<Response, ApiError> {
    if req.api == "other" {
        return Err(ApiError::not_found_path(format!(
            "No API at {}: Vehicle API paths start with /v3 and Management API paths with /management/v3.",
            req.path
        )));
    }
    // Held for the whole (synchronous, in-memory) handling so a command's check and update
    // are one step.
    let mut st = inner.lock();
    if req.api == "compatibility" {
        // Public, like Smartcar's: no token is asked for.
        return compatibility::route(req);
    }
    st.check_token(req.header("authorization"))
        .map_err(|problem| {
            let detail = match problem {
                TokenProblem::Missing => {
                    "The Authorization header is missing or is not a Bearer token."
                }
                TokenProblem::Unknown => "The access token is invalid or has been revoked.",
                TokenProblem::Expired => "The access token has expired.",
            };
            ApiError::new(401, "AUTHENTICATION", "UNAUTHORIZED", detail)
        })?;
    let trimmed = match req.path.strip_suffix('/') {
        Some(p) if !p.is_empty() => p,
        _ => req.path.as_str(),
    };
    let segments: Vec<String> = trimmed
        .split('/')
        .skip(1)
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let base = inner.api_base();
    let method = req.method.as_str();
    let routed = if req.api == "management" {
        let st = &mut *st;
        let mut scope = webhooks::Scope {
            hooks: &mut st.hooks,
            fleet: &st.fleet,
        };
        webhooks::route(&mut scope, req, method, &segs).or_else(|| management(st, method, &segs))
    } else {
        vehicle_api(&mut st, &base, req, method, &segs)
    };
    routed.unwrap_or_else(|| {
        Err(ApiError::not_found_path(format!(
            "The requested resource {} {} does not exist.",
            req.method, req.path
        )))
    })
}

/// `None` when no route matches.
fn vehicle_api(
    st: &mut State,
    base: &str,
    req: &RecordedRequest,
    method: &str,
    segs: &[&str],
) -> Option<Result<Response, ApiError>> {
    Some(match (method, segs) {
        ("GET", ["connections"]) => list_connections(st, base, req),
        ("GET", ["connections", id]) => get_connection(st, base, req, id),
        ("DELETE", ["connections", id]) => delete_connection(st, req, id),
        ("DELETE", ["users", id]) => delete_user(st, id),
        ("GET", ["vehicles", id]) => get_vehicle(st, id),
        ("GET", ["vehicles", id, "signals"]) => list_signals(st, req, id),
        ("GET", ["vehicles", id, "signals", code]) => get_signal(st, req, id, code),
        ("POST", ["vehicles", id, "commands", group, action]) => {
            command(st, req, id, group, action)?
        }
        (
            "POST",
            [
                "vehicles",
                id,
                "charge-schedules",
                kind @ ("daily" | "weekly" | "workweek"),
            ],
        ) => set_schedule(st, req, id, kind),
        ("DELETE", ["vehicles", id, "charge-schedules", schedule]) => {
            delete_schedule(st, req, id, schedule)
        }
        _ => return None,
    })
}

fn query<'a>(req: &'a RecordedRequest, keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|k| req.query_value(k))
}

fn sc_user_id(req: &RecordedRequest) -> Option<&str> {
    req.header("sc-user-id")
        .map(str::trim)
        .filter(|u| !u.is_empty())
}

fn catalogue_signal(code: &str) -> Option<&'static Signal> {
    SIGNALS.iter().find(|s| s.code == code)
}

#[cfg(test)]
mod routes_tests {
    use super::token::basic_credentials;
    use super::*;

    #[test]
    fn classify_strips_bases() {
        assert_eq!(
            classify("/v3/vehicles/x"),
            ("vehicle", "/vehicles/x".into())
        );
        assert_eq!(
            classify("/management/v3/applications"),
            ("management", "/applications".into())
        );
        assert_eq!(classify("/oauth2/token"), ("auth", "/oauth2/token".into()));
        assert_eq!(classify("/v30/x"), ("other", "/v30/x".into()));
        assert_eq!(classify("/vehicles/x"), ("other", "/vehicles/x".into()));
    }

    #[test]
    fn pairs_and_basic_auth_decode() {
        assert_eq!(
            parse_pairs("filter%5BuserId%5D=u-1&x=a+b&&y"),
            vec![
                ("filter[userId]".to_string(), "u-1".to_string()),
                ("x".to_string(), "a b".to_string()),
                ("y".to_string(), String::new()),
            ]
        );
        // "client_abc:s3cr3t"
        assert_eq!(
            basic_credentials("Basic Y2xpZW50X2FiYzpzM2NyM3Q="),
            Some(("client_abc".to_string(), "s3cr3t".to_string()))
        );
        assert_eq!(basic_credentials("Basic !!!"), None);
    }
}

//! The simulator's HTTP surface: one fallback handler that records each request, answers it from
//! a queued fault if one matches, checks the bearer token and dispatches on the raw path.
//!
//! Routing by hand (rather than with axum's router) keeps the path exactly as received for
//! recording, lets faults pre-empt any route, and means no extractor can reject a request with
//! a body that is not Smartcar-shaped.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State as AxumState};
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::{Map, Value, json};

use super::reply::{self, ApiError, json_response, no_content, oauth_error};
use super::seed::{self, Connection, Vehicle};
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

/// A `VEHICLE_STATE` event (payload v4.0) carrying the signals a command just changed.
fn vehicle_state_event(st: &mut State, id: &str, user: Option<&str>, now: u64) -> Value {
    let event_id = st.next_event_id();
    let Some(v) = st.fleet.vehicle(id) else {
        return Value::Null;
    };
    let signals: Vec<Value> = v
        .signals
        .iter()
        .filter(|(code, _)| v.updated.get(*code) == Some(&now))
        .map(|(code, body)| {
            let sig = catalogue_signal(code);
            json!({
                "code": code,
                "name": sig.map(|s| s.name),
                "group": sig.map(|s| s.group_title),
                "body": body,
                "meta": { "oemUpdatedAt": now, "fetchedAt": now },
            })
        })
        .collect();
    json!({
        "eventId": event_id,
        "eventType": "VEHICLE_STATE",
        "vehicleId": id,
        "data": {
            "user": { "id": user },
            "vehicle": { "id": id, "make": v.make, "model": v.model, "year": v.year },
            "triggers": signals.iter().map(|s| json!({ "code": s["code"], "name": s["name"], "group": s["group"] })).collect::<Vec<_>>(),
            "signals": signals,
        },
        "meta": { "version": "4.0", "deliveryId": format!("dlv-{event_id}"), "deliveredAt": now,
                  "webhookId": "wh-simulator", "webhookName": "simulator", "mode": "TEST",
                  "signalCount": signals.len() },
    })
}

/// POSTs one event as Smartcar does: JSON, signed with HMAC-SHA256 of the body in `SC-Signature`.
async fn deliver(url: String, token: String, event: Value) {
    use hmac::{KeyInit, Mac};
    if event.is_null() {
        return;
    }
    let body = event.to_string();
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(token.as_bytes()).expect("any key length");
    mac.update(body.as_bytes());
    let signature: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let sent = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .header("user-agent", "Smartcar/simulator")
        .header("sc-signature", signature)
        .body(body)
        .timeout(Duration::from_secs(15))
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => tracing::warn!(status = r.status().as_u16(), "simulator webhook refused"),
        Err(e) => tracing::warn!("simulator webhook not delivered: {e}"),
    }
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
    let mut resp = (reply::status_code(fault.status), fault.body.clone()).into_response();
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
// Token endpoint

fn token(inner: &Inner, req: &RecordedRequest) -> Response {
    if req.method != "POST" {
        return oauth_error(
            405,
            "invalid_request",
            "The token endpoint accepts POST only.",
        );
    }
    let content_type = req
        .header("content-type")
        .unwrap_or("")
        .to_ascii_lowercase();
    let looks_json = content_type.contains("json")
        || (!content_type.contains("x-www-form-urlencoded")
            && req.body.trim_start().starts_with('{'));
    let mut fields: HashMap<String, String> = HashMap::new();
    if looks_json {
        match serde_json::from_str::<Value>(&req.body) {
            Ok(Value::Object(map)) => {
                for (k, v) in map {
                    if let Value::String(s) = v {
                        fields.insert(k, s);
                    }
                }
            }
            _ => {
                return oauth_error(
                    400,
                    "invalid_request",
                    "The request body is not a JSON object.",
                );
            }
        }
    } else {
        for (k, v) in parse_pairs(&req.body) {
            fields.entry(k).or_insert(v);
        }
    }
    // HTTP Basic is only the legacy host's style; accepting it as a fallback costs nothing.
    if let Some((id, secret)) = req.header("authorization").and_then(basic_credentials) {
        fields.entry("client_id".into()).or_insert(id);
        fields.entry("client_secret".into()).or_insert(secret);
    }
    let present = |k: &str| fields.get(k).map(|v| !v.trim().is_empty()).unwrap_or(false);
    match fields.get("grant_type").map(|g| g.trim()) {
        None | Some("") => {
            return oauth_error(
                400,
                "invalid_request",
                "The grant_type parameter is missing.",
            );
        }
        Some("client_credentials") => {}
        Some(other) => {
            return oauth_error(
                400,
                "unsupported_grant_type",
                &format!("The grant type {other:?} is not supported; use client_credentials."),
            );
        }
    }
    if !present("client_id") || !present("client_secret") {
        return oauth_error(
            401,
            "invalid_client",
            "Client authentication failed: client_id and client_secret are required.",
        );
    }
    let (token, ttl) = inner.lock().issue_token();
    let mut resp = json_response(
        200,
        &json!({"access_token": token, "token_type": "Bearer", "expires_in": ttl}),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn basic_credentials(authorization: &str) -> Option<(String, String)> {
    let (scheme, encoded) = authorization.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(base64_decode(encoded.trim())?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
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
        return super::compatibility::route(req);
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
        let mut scope = super::webhooks::Scope {
            hooks: &mut st.hooks,
            fleet: &st.fleet,
        };
        super::webhooks::route(&mut scope, req, method, &segs)
            .or_else(|| management(st, method, &segs))
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

// ---------------------------------------------------------------------------------------------
// Pagination

#[derive(Clone, Copy)]
enum PageStyle {
    /// `page[number]` / `page[size]` (JSON:API, connections and subscriptions specs)
    Bracket,
    /// `page` / `pageSize` (the signal list's documented links)
    Plain,
}

struct Page {
    number: usize,
    size: usize,
    style: PageStyle,
}

fn parse_positive(name: &str, raw: &str) -> Result<usize, ApiError> {
    match raw.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(ApiError::validation(
            "INVALID_INPUT_FORMAT",
            format!("{name} must be a positive integer (got {raw:?})."),
        )),
    }
}

/// Reads either spelling of the page parameters. `all_by_default` (the signal list) gives every
/// item on one page when the caller sent no page parameter at all, and caps no page size: the
/// signal list documents neither a default size nor a maximum.
fn parse_page(req: &RecordedRequest, total: usize, all_by_default: bool) -> Result<Page, ApiError> {
    let bracket_number = req.query_value("page[number]");
    let bracket_size = req.query_value("page[size]");
    let plain_number = req.query_value("page");
    let plain_size = req.query_value("pageSize");
    let style = if bracket_number.is_none()
        && bracket_size.is_none()
        && (plain_number.is_some() || plain_size.is_some())
    {
        PageStyle::Plain
    } else {
        PageStyle::Bracket
    };
    let number_raw = bracket_number.or(plain_number);
    let size_raw = bracket_size.or(plain_size);
    let number = match number_raw {
        Some(raw) => parse_positive("page[number]", raw)?,
        None => 1,
    };
    let size = match size_raw {
        Some(raw) => {
            let size = parse_positive("page[size]", raw)?;
            if size > PAGE_SIZE_MAX && !all_by_default {
                return Err(ApiError::validation(
                    "BAD_REQUEST",
                    format!("page[size] must be at most {PAGE_SIZE_MAX} (got {size})."),
                ));
            }
            size
        }
        None if all_by_default && number_raw.is_none() => total.max(1),
        None => PAGE_SIZE_DEFAULT,
    };
    Ok(Page {
        number,
        size,
        style,
    })
}

impl Page {
    fn last(&self, total: usize) -> usize {
        total.div_ceil(self.size).max(1)
    }

    fn slice<'a, T>(&self, items: &'a [T]) -> &'a [T] {
        let start = (self.number - 1).saturating_mul(self.size).min(items.len());
        let end = start.saturating_add(self.size).min(items.len());
        &items[start..end]
    }

    fn link(&self, path: &str, extra: &str, number: usize) -> String {
        let page = match self.style {
            PageStyle::Bracket => format!("page[number]={number}&page[size]={}", self.size),
            PageStyle::Plain => format!("page={number}&pageSize={}", self.size),
        };
        format!("{path}?{extra}{page}")
    }

    /// `self, first, prev, previous, next, last`, with nulls past either end.
    fn links(&self, path: &str, extra: &str, total: usize) -> Value {
        let last = self.last(total);
        let prev = (self.number > 1).then(|| self.link(path, extra, self.number - 1));
        let next = (self.number < last).then(|| self.link(path, extra, self.number + 1));
        json!({
            "self": self.link(path, extra, self.number),
            "first": self.link(path, extra, 1),
            "prev": prev,
            "previous": prev,
            "next": next,
            "last": self.link(path, extra, last),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Connections and users

fn connection_json(st: &State, base: &str, c: &Connection) -> Value {
    let vehicle = st.fleet.vehicle(&c.vehicle_id).map(|v| {
        json!({"make": v.make, "model": v.model, "year": v.year, "mode": v.mode,
               "powertrainType": v.powertrain.as_str()})
    });
    json!({
        "id": c.id,
        "type": "connection",
        "attributes": {"permissions": c.permissions, "vehicle": vehicle},
        "relationships": {
            "vehicle": {"data": {"id": c.vehicle_id, "type": "vehicle"},
                        "links": {"related": format!("{base}/vehicles/{}", c.vehicle_id)}},
            "user": {"data": {"id": c.user_id, "type": "user"}}
        },
        "meta": {"createdAt": c.created_at, "updatedAt": c.updated_at},
        "links": {"self": format!("{base}/connections/{}", c.id)}
    })
}

fn list_connections(st: &State, base: &str, req: &RecordedRequest) -> Result<Response, ApiError> {
    let user = query(req, &["filter[userId]"]);
    let vehicle = query(req, &["filter[vehicleId]"]);
    // Spelled two ways by third-party clients; each seeded user's external id is `ext-<id>`.
    let external = query(req, &["filter[user.externalId]", "filter[userExternalId]"]);
    let mode = query(req, &["filter[vehicle.mode]"]).map(str::to_ascii_lowercase);
    if let Some(m) = &mode
        && m != "live"
        && m != "simulated"
    {
        return Err(ApiError::validation(
            "BAD_REQUEST",
            format!("filter[vehicle.mode] must be live or simulated (got {m:?})."),
        ));
    }
    let header_user = sc_user_id(req);
    // No default mode filter: 3P-HA's "default live" is unconfirmed, and hiding the simulated
    // vehicle unless asked would make the demo fleet look smaller than it is.
    let matching: Vec<&Connection> = st
        .fleet
        .connections
        .iter()
        .filter(|c| user.is_none_or(|u| c.user_id == u))
        .filter(|c| header_user.is_none_or(|u| c.user_id == u))
        .filter(|c| vehicle.is_none_or(|v| c.vehicle_id == v))
        .filter(|c| external.is_none_or(|e| e.strip_prefix("ext-") == Some(c.user_id.as_str())))
        .filter(|c| {
            mode.as_deref()
                .is_none_or(|m| st.fleet.vehicle(&c.vehicle_id).is_some_and(|v| v.mode == m))
        })
        .collect();
    let total = matching.len();
    let page = parse_page(req, total, false)?;
    let data: Vec<Value> = page
        .slice(&matching)
        .iter()
        .map(|c| connection_json(st, base, c))
        .collect();
    let filters: String = req
        .query
        .iter()
        .filter(|(k, _)| k.starts_with("filter["))
        .map(|(k, v)| format!("{k}={}&", utf8_percent_encode(v, LINK_VALUE)))
        .collect();
    Ok(json_response(
        200,
        &json!({
            "data": data,
            "meta": {"pageNumber": page.number, "pageSize": page.size, "totalCount": total},
            "links": page.links("/connections", &filters, total),
        }),
    ))
}

/// The connection an id names, hidden when `sc-user-id` names someone else.
fn visible_connection(st: &State, req: &RecordedRequest, id: &str) -> Result<usize, ApiError> {
    let not_found = || {
        ApiError::new(
            404,
            "RESOURCE_NOT_FOUND",
            "PATH",
            format!("Connection {id} was not found."),
        )
    };
    let i = st.fleet.find_connection(id).ok_or_else(not_found)?;
    match sc_user_id(req) {
        Some(u) if st.fleet.connections[i].user_id != u => Err(not_found()),
        _ => Ok(i),
    }
}

fn get_connection(
    st: &State,
    base: &str,
    req: &RecordedRequest,
    id: &str,
) -> Result<Response, ApiError> {
    let i = visible_connection(st, req, id)?;
    Ok(json_response(
        200,
        &json!({"data": connection_json(st, base, &st.fleet.connections[i])}),
    ))
}

fn delete_connection(
    st: &mut State,
    req: &RecordedRequest,
    id: &str,
) -> Result<Response, ApiError> {
    let i = visible_connection(st, req, id)?;
    st.fleet.connections.remove(i);
    Ok(no_content())
}

fn delete_user(st: &mut State, id: &str) -> Result<Response, ApiError> {
    let Some(i) = st.fleet.users.iter().position(|u| u == id) else {
        return Err(ApiError::not_found_path(format!(
            "User {id} was not found."
        )));
    };
    st.fleet.users.remove(i);
    st.fleet.connections.retain(|c| c.user_id != id);
    Ok(no_content())
}

// ---------------------------------------------------------------------------------------------
// Vehicles and signals

fn vehicle_not_found(id: &str) -> ApiError {
    ApiError::not_found_path(format!("Vehicle {id} was not found."))
}

/// A vehicle the application is connected to; one whose connections were all removed is gone
/// as far as the application is concerned.
fn connected_vehicle<'a>(st: &'a State, id: &str) -> Result<&'a Vehicle, ApiError> {
    match st.fleet.vehicle(id) {
        Some(v) if st.fleet.is_connected(id) => Ok(v),
        _ => Err(vehicle_not_found(id)),
    }
}

/// Checks `sc-user-id` and that this user holds a connection to the vehicle.
fn check_user(st: &State, req: &RecordedRequest, vehicle_id: &str) -> Result<(), ApiError> {
    let Some(user) = sc_user_id(req) else {
        return Err(ApiError::validation(
            "MISSING_PARAMETER",
            "The sc-user-id header is required.",
        ));
    };
    if st.fleet.vehicle(vehicle_id).is_none() {
        return Err(vehicle_not_found(vehicle_id));
    }
    if !st.fleet.owns(user, vehicle_id) {
        return Err(ApiError::not_found_path(format!(
            "Vehicle {vehicle_id} is not connected for user {user}."
        )));
    }
    Ok(())
}

fn vehicle_summary(v: &Vehicle) -> Value {
    json!({"id": v.id, "type": "vehicle",
           "attributes": {"make": v.make, "model": v.model, "year": v.year},
           "links": {"self": format!("/vehicles/{}", v.id)}})
}

fn get_vehicle(st: &State, id: &str) -> Result<Response, ApiError> {
    let v = connected_vehicle(st, id)?;
    Ok(json_response(
        200,
        &json!({"data": {
            "id": v.id,
            "type": "vehicle",
            "attributes": {"make": v.make, "model": v.model, "year": v.year,
                           "powertrainType": v.powertrain.as_str(), "mode": v.mode},
            "links": {"self": format!("/vehicles/{}", v.id)}
        }}),
    ))
}

const NOT_CAPABLE: &str = "The vehicle is incapable of performing your request.";

fn signal_resource(v: &Vehicle, sig: &Signal) -> Value {
    let links = json!({"self": format!("/vehicles/{}/signals/{}", v.id, sig.code),
                       "vehicle": format!("/vehicles/{}", v.id)});
    match v.signals.get(sig.code) {
        Some(body) => {
            let (retrieved, oem) = v.signal_times(sig.code);
            json!({
                "id": sig.code,
                "type": "signal",
                "attributes": {"code": sig.code, "name": sig.name, "group": sig.group_title,
                               "status": {"value": "SUCCESS"}, "body": body},
                "meta": {"retrievedAt": retrieved, "oemUpdatedAt": oem},
                "links": links
            })
        }
        None => json!({
            "id": sig.code,
            "type": "signal",
            "attributes": {"code": sig.code, "name": sig.name, "group": sig.group_title,
                           "status": {"value": "ERROR", "error": {
                               "type": "COMPATIBILITY", "code": "VEHICLE_NOT_CAPABLE",
                               "description": NOT_CAPABLE,
                               "resolution": {"type": "CONTACT_SUPPORT"}}}},
            "meta": {},
            "links": links
        }),
    }
}

/// With no page parameter the list holds every signal on one page, as the docs describe
/// ("one call returns every signal the vehicle has"); page parameters of either spelling
/// slice it.
fn list_signals(st: &State, req: &RecordedRequest, id: &str) -> Result<Response, ApiError> {
    check_user(st, req, id)?;
    let v = connected_vehicle(st, id)?;
    let all: Vec<&Signal> = SIGNALS.iter().collect();
    let total = all.len();
    let page = parse_page(req, total, true)?;
    let data: Vec<Value> = page
        .slice(&all)
        .iter()
        .map(|s| signal_resource(v, s))
        .collect();
    let path = format!("/vehicles/{}/signals", v.id);
    Ok(json_response(
        200,
        &json!({
            "data": data,
            "meta": {"page": page.number, "pageSize": page.size, "totalCount": total},
            "links": page.links(&path, "", total),
            "included": {"vehicle": vehicle_summary(v)},
        }),
    ))
}

fn get_signal(
    st: &State,
    req: &RecordedRequest,
    id: &str,
    code: &str,
) -> Result<Response, ApiError> {
    check_user(st, req, id)?;
    let v = connected_vehicle(st, id)?;
    let Some(sig) = SIGNALS.iter().find(|s| s.code == code) else {
        return Err(ApiError::new(
            404,
            "RESOURCE_NOT_FOUND",
            "SIGNAL_NOT_FOUND",
            format!(
                "Signal {code} was not found. Signal codes look like tractionbattery-stateofcharge."
            ),
        ));
    };
    if !v.signals.contains_key(sig.code) {
        return Err(ApiError::not_capable(format!(
            "{} {} {} cannot provide {}.",
            v.year, v.make, v.model, sig.code
        )));
    }
    let resource = signal_resource(v, sig);
    let body = if st.single_signal_wrapped {
        json!({"data": resource, "included": {"vehicle": vehicle_summary(v)}})
    } else {
        resource
    };
    Ok(json_response(200, &body))
}

// ---------------------------------------------------------------------------------------------
// Commands

#[derive(Clone, Copy, PartialEq)]
enum Command {
    Lock,
    Unlock,
    ChargeStart,
    ChargeStop,
    SetLimit,
    SetDestination,
    ChargePortOpen,
    ChargePortClose,
}

impl Command {
    fn parse(group: &str, action: &str) -> Option<Self> {
        Some(match (group, action) {
            ("security", "lock") => Command::Lock,
            ("security", "unlock") => Command::Unlock,
            ("charge", "start") => Command::ChargeStart,
            ("charge", "stop") => Command::ChargeStop,
            ("charge", "set-limit") => Command::SetLimit,
            ("navigation", "set-destination") => Command::SetDestination,
            // Not a tool of the shipped catalogue: here so CONTRIBUTING's worked example of a
            // YAML-only tool runs end to end against the simulator.
            ("charge-port", "open") => Command::ChargePortOpen,
            ("charge-port", "close") => Command::ChargePortClose,
            _ => return None,
        })
    }

    fn command_type(self) -> &'static str {
        match self {
            Command::Lock => "security-lock",
            Command::Unlock => "security-unlock",
            Command::ChargeStart => "charge-start",
            Command::ChargeStop => "charge-stop",
            Command::SetLimit => "charge-set-limit",
            Command::SetDestination => "navigation-set-destination",
            Command::ChargePortOpen => "charge-port-open",
            Command::ChargePortClose => "charge-port-close",
        }
    }

    fn is_charge(self) -> bool {
        matches!(
            self,
            Command::ChargeStart
                | Command::ChargeStop
                | Command::SetLimit
                | Command::ChargePortOpen
                | Command::ChargePortClose
        )
    }
}

/// `data.attributes` of a command body.
fn command_attributes(body: &str) -> Result<Map<String, Value>, ApiError> {
    if body.trim().is_empty() {
        return Err(ApiError::validation(
            "MISSING_PARAMETER",
            "The request body is required: {\"data\":{\"attributes\":{...}}}.",
        ));
    }
    let json: Value = serde_json::from_str(body).map_err(|e| {
        ApiError::validation(
            "INVALID_INPUT_FORMAT",
            format!("The request body is not valid JSON: {e}."),
        )
    })?;
    match json.pointer("/data/attributes") {
        Some(Value::Object(attrs)) => Ok(attrs.clone()),
        _ => Err(ApiError::validation(
            "MISSING_PARAMETER",
            "The request body must be {\"data\":{\"attributes\":{...}}}.",
        )),
    }
}

fn number_attr(attrs: &Map<String, Value>, name: &str) -> Result<f64, ApiError> {
    match attrs.get(name) {
        None | Some(Value::Null) => Err(ApiError::validation(
            "MISSING_PARAMETER",
            format!("data.attributes.{name} is required."),
        )),
        Some(v) => v.as_f64().ok_or_else(|| {
            ApiError::validation(
                "INVALID_INPUT_FORMAT",
                format!("data.attributes.{name} must be a number (got {v})."),
            )
        }),
    }
}

fn ranged(name: &str, value: f64, min: f64, max: f64) -> Result<f64, ApiError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(ApiError::validation(
            "BAD_REQUEST",
            format!("data.attributes.{name} must be between {min} and {max} (got {value})."),
        ))
    }
}

/// `None` for an unknown command path, so it falls through to the 404 route answer.
fn command(
    st: &mut State,
    req: &RecordedRequest,
    id: &str,
    group: &str,
    action: &str,
) -> Option<Result<Response, ApiError>> {
    let cmd = Command::parse(group, action)?;
    Some(run_command(st, req, id, cmd))
}

fn run_command(
    st: &mut State,
    req: &RecordedRequest,
    id: &str,
    cmd: Command,
) -> Result<Response, ApiError> {
    check_user(st, req, id)?;
    let parameters = match cmd {
        Command::SetLimit => {
            let attrs = command_attributes(&req.body)?;
            let percent = number_attr(&attrs, "percent")?;
            if percent.fract() != 0.0 {
                return Err(ApiError::validation(
                    "INVALID_INPUT_FORMAT",
                    format!("data.attributes.percent must be an integer (got {percent})."),
                ));
            }
            let percent = ranged("percent", percent, 50.0, 100.0)? as i64;
            Some(json!({"percent": percent}))
        }
        Command::SetDestination => {
            let attrs = command_attributes(&req.body)?;
            let lat = ranged("latitude", number_attr(&attrs, "latitude")?, -90.0, 90.0)?;
            let lon = ranged(
                "longitude",
                number_attr(&attrs, "longitude")?,
                -180.0,
                180.0,
            )?;
            Some(json!({"latitude": lat, "longitude": lon}))
        }
        _ => None,
    };
    let now = reply::now_ms();
    let ignore = st.ignore_commands;
    let Some(v) = st.fleet.vehicle_mut(id) else {
        return Err(vehicle_not_found(id));
    };
    if cmd.is_charge() && !v.powertrain.can_charge() {
        return Err(ApiError::not_capable(format!(
            "{} {} {} has no traction battery to charge.",
            v.year, v.make, v.model
        )));
    }
    match cmd {
        // A car that says yes and does nothing: no state changes, no webhook.
        _ if ignore => {}
        Command::Lock | Command::Unlock => set_locked(v, cmd == Command::Lock, now),
        Command::ChargeStart | Command::ChargeStop => {
            set_charging(v, cmd == Command::ChargeStart, now)?
        }
        Command::SetLimit => {
            let percent = parameters
                .as_ref()
                .and_then(|p| p["percent"].as_i64())
                .unwrap_or(80);
            set_limit(v, percent, now);
        }
        Command::ChargePortOpen | Command::ChargePortClose => set_scalar(
            v,
            "charge-ischargingportflapopen",
            json!(cmd == Command::ChargePortOpen),
            now,
        ),
        Command::SetDestination => {
            let lat = parameters.as_ref().and_then(|p| p["latitude"].as_f64());
            let lon = parameters.as_ref().and_then(|p| p["longitude"].as_f64());
            if let (Some(lat), Some(lon)) = (lat, lon) {
                st.destinations.push((id.to_string(), lat, lon));
            }
        }
    }
    if st.webhook.is_some() && !ignore {
        let event = vehicle_state_event(st, id, req.header("sc-user-id"), now);
        st.outbox.push(event);
    }
    let mut attributes = json!({
        "commandType": cmd.command_type(),
        "status": {"value": "SUCCESS"},
        "executionMode": "sync",
    });
    if let Some(p) = parameters {
        attributes["parameters"] = p;
    }
    let exec_id = st.next_exec_id();
    Ok(json_response(
        200,
        &json!({"data": {
            "id": exec_id,
            "type": "command-execution",
            "attributes": attributes,
            "meta": {"executedAt": reply::iso8601(now.saturating_sub(1000)),
                     "completedAt": reply::iso8601(now),
                     "durationInSeconds": 1}
        }}),
    ))
}

fn catalogue_signal(code: &str) -> Option<&'static Signal> {
    SIGNALS.iter().find(|s| s.code == code)
}

/// Sets a scalar signal the way the seed shapes it (`{value}` plus the documented unit).
fn set_scalar(v: &mut Vehicle, code: &'static str, value: Value, now: u64) {
    if let Some(sig) = catalogue_signal(code) {
        let body = seed::scalar_body(sig.code, v.powertrain, value);
        v.set_signal(sig.code, body, now);
    }
}

fn set_locked(v: &mut Vehicle, locked: bool, now: u64) {
    set_scalar(v, "closure-islocked", json!(locked), now);
    for code in [
        "closure-doors",
        "closure-fronttrunk",
        "closure-reartrunk",
        "closure-tailgate",
    ] {
        let Some(mut body) = v.signals.get(code).cloned() else {
            continue;
        };
        if let Some(values) = body.get_mut("values").and_then(Value::as_array_mut) {
            for door in values {
                door["isLocked"] = json!(locked);
            }
        } else if body.get("isLocked").is_some() {
            body["isLocked"] = json!(locked);
        }
        v.set_signal(code, body, now);
    }
}

fn set_charging(v: &mut Vehicle, start: bool, now: u64) -> Result<(), ApiError> {
    let charging = v.bool_signal("charge-ischarging").unwrap_or(false);
    if start {
        if v.bool_signal("charge-ischargingcableconnected") == Some(false) {
            return Err(ApiError::vehicle_state(
                "CHARGING_PLUG_NOT_CONNECTED",
                "The charging cable is not plugged in.",
            ));
        }
        if charging {
            return Err(ApiError::vehicle_state(
                "CHARGING_IN_PROGRESS",
                "The vehicle is already charging.",
            ));
        }
    } else if !charging {
        return Err(ApiError::vehicle_state(
            "NOT_CHARGING",
            "The vehicle is not charging.",
        ));
    }
    let live = if start {
        seed::charging_figures(v.powertrain)
    } else {
        seed::Charging::default()
    };
    set_scalar(v, "charge-ischarging", json!(start), now);
    let status = if start { "CHARGING" } else { "NOT_CHARGING" };
    set_scalar(v, "charge-detailedchargingstatus", json!(status), now);
    let color = if start { "GREEN" } else { "BLUE" };
    set_scalar(v, "charge-chargeportstatuscolor", json!(color), now);
    set_scalar(v, "charge-amperage", json!(live.amperes), now);
    set_scalar(v, "charge-chargerate", json!(live.miles_per_hour), now);
    set_scalar(v, "charge-wattage", json!(live.watts), now);
    set_scalar(
        v,
        "charge-timetocomplete",
        json!(live.minutes_to_complete),
        now,
    );
    Ok(())
}

fn set_limit(v: &mut Vehicle, percent: i64, now: u64) {
    let Some(mut body) = v.signals.get("charge-chargelimits").cloned() else {
        return;
    };
    let mut found = false;
    if let Some(values) = body.get_mut("values").and_then(Value::as_array_mut) {
        for limit in values.iter_mut().filter(|l| l["type"] == "GLOBAL") {
            limit["limit"] = json!(percent);
            found = true;
        }
        if !found {
            values.push(json!({"type": "GLOBAL", "limit": percent, "condition": null}));
        }
    }
    body["activeLimit"] = json!(percent);
    v.set_signal("charge-chargelimits", body, now);
    set_scalar(v, "charge-activelimit", json!(percent), now);
}

// ---------------------------------------------------------------------------------------------
// Charge schedules (https://smartcar.com/docs/api-reference/charge-schedules/set-daily-charge-schedule)

const WEEK: [&str; 7] = [
    "MONDAY",
    "TUESDAY",
    "WEDNESDAY",
    "THURSDAY",
    "FRIDAY",
    "SATURDAY",
    "SUNDAY",
];

/// `at` is where `attrs` sits under `data.attributes`, for the messages (`days.monday.`).
fn clock_attr(attrs: &Map<String, Value>, at: &str, name: &str) -> Result<String, ApiError> {
    let v = attrs.get(name).and_then(Value::as_str).ok_or_else(|| {
        ApiError::validation(
            "MISSING_PARAMETER",
            format!("data.attributes.{at}{name} is required (HH:MM)."),
        )
    })?;
    let ok = v.len() == 5
        && v.as_bytes()[2] == b':'
        && v[..2].parse::<u8>().is_ok_and(|h| h < 24)
        && v[3..].parse::<u8>().is_ok_and(|m| m < 60)
        && v.bytes()
            .enumerate()
            .all(|(i, b)| i == 2 || b.is_ascii_digit());
    if ok {
        Ok(v.to_string())
    } else {
        Err(ApiError::validation(
            "INVALID_INPUT_FORMAT",
            format!("data.attributes.{at}{name} must be HH:MM (got {v:?})."),
        ))
    }
}

/// Tesla only, as far as this stand-in goes (Smartcar: Tesla and Volvo; others answer 501).
fn schedule_vehicle<'a>(st: &'a mut State, id: &str) -> Result<&'a mut Vehicle, ApiError> {
    let v = st
        .fleet
        .vehicle_mut(id)
        .ok_or_else(|| vehicle_not_found(id))?;
    if v.make != "Tesla" {
        return Err(ApiError::not_capable(format!(
            "{} {} {} does not support charge schedules.",
            v.year, v.make, v.model
        )));
    }
    Ok(v)
}

/// The vehicle's `charge-chargetimers` body to change, or an empty list when it reports none.
fn charge_timers(v: &Vehicle) -> Value {
    v.signals
        .get("charge-chargetimers")
        .cloned()
        .unwrap_or_else(|| json!({"values": []}))
}

fn schedule_execution(
    exec_id: String,
    action: &str,
    schedule_type: &str,
    vehicle: &str,
    schedule_id: &str,
    parameters: Value,
    now: u64,
) -> Response {
    json_response(
        200,
        &json!({"data": {
            "id": exec_id,
            "type": "charge-schedule-execution",
            "attributes": {"action": action, "scheduleType": schedule_type,
                           "status": {"value": "SUCCESS"}, "executionMode": "sync",
                           "scheduleId": schedule_id, "parameters": parameters},
            "links": {"schedule": format!("/vehicles/{vehicle}/charge-schedules/{schedule_id}")},
            "meta": {"executedAt": reply::iso8601(now.saturating_sub(1000)),
                     "completedAt": reply::iso8601(now)}
        }}),
    )
}

/// One charging window of a schedule body: `{startTime, stopTime}` under `data.attributes.{at}`.
fn window(attrs: &Map<String, Value>, at: &str, days: &[&str]) -> Result<Value, ApiError> {
    let start = clock_attr(attrs, at, "startTime")?;
    let stop = clock_attr(attrs, at, "stopTime")?;
    Ok(json!({"start": start, "end": stop, "days": days}))
}

fn window_object<'a>(
    attrs: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a Map<String, Value>>, ApiError> {
    match attrs.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(ApiError::validation(
            "INVALID_INPUT_FORMAT",
            format!("data.attributes.{name} must be an object {{startTime, stopTime}}."),
        )),
    }
}

/// The windows of a daily, weekly (`days` keyed by weekday) or workweek (`weekdays`, optional
/// `weekends`) body, in the `schedules` form `charge-chargetimers` reports.
fn schedule_windows(attrs: &Map<String, Value>, kind: &str) -> Result<Vec<Value>, ApiError> {
    match kind {
        "daily" => Ok(vec![window(attrs, "", &WEEK)?]),
        "weekly" => {
            let Some(days) = window_object(attrs, "days")?.filter(|d| !d.is_empty()) else {
                return Err(ApiError::validation(
                    "MISSING_PARAMETER",
                    "data.attributes.days is required: an object keyed by weekday.",
                ));
            };
            let mut out = Vec::new();
            for (day, w) in days {
                let Some(upper) = WEEK.iter().find(|d| d.eq_ignore_ascii_case(day)) else {
                    return Err(ApiError::validation(
                        "INVALID_INPUT_FORMAT",
                        format!("data.attributes.days.{day} is not a weekday."),
                    ));
                };
                let Value::Object(w) = w else {
                    return Err(ApiError::validation(
                        "INVALID_INPUT_FORMAT",
                        format!("data.attributes.days.{day} must be {{startTime, stopTime}}."),
                    ));
                };
                out.push(window(w, &format!("days.{day}."), &[upper])?);
            }
            Ok(out)
        }
        _ => {
            let Some(weekdays) = window_object(attrs, "weekdays")? else {
                return Err(ApiError::validation(
                    "MISSING_PARAMETER",
                    "data.attributes.weekdays {startTime, stopTime} is required.",
                ));
            };
            let mut out = vec![window(weekdays, "weekdays.", &WEEK[..5])?];
            if let Some(weekends) = window_object(attrs, "weekends")? {
                out.push(window(weekends, "weekends.", &WEEK[5..])?);
            }
            Ok(out)
        }
    }
}

/// Adds a LOCATION timer with its scheduleId to `charge-chargetimers`.
fn set_schedule(
    st: &mut State,
    req: &RecordedRequest,
    id: &str,
    kind: &str,
) -> Result<Response, ApiError> {
    check_user(st, req, id)?;
    let attrs = command_attributes(&req.body)?;
    let location = match attrs.get("location") {
        Some(Value::Object(l)) => l.clone(),
        _ => {
            return Err(ApiError::validation(
                "MISSING_PARAMETER",
                "data.attributes.location {latitude, longitude} is required.",
            ));
        }
    };
    let lat = ranged(
        "location.latitude",
        number_attr(&location, "latitude")?,
        -90.0,
        90.0,
    )?;
    let lon = ranged(
        "location.longitude",
        number_attr(&location, "longitude")?,
        -180.0,
        180.0,
    )?;
    let schedules = schedule_windows(&attrs, kind)?;
    let exec_id = st.next_exec_id();
    let schedule_id = format!("sched_{}", exec_id.trim_start_matches("exec_"));
    let now = reply::now_ms();
    let v = schedule_vehicle(st, id)?;
    let mut timers = charge_timers(v);
    if let Some(values) = timers.get_mut("values").and_then(Value::as_array_mut) {
        values.push(json!({
            "type": "LOCATION",
            "scheduleType": kind,
            "scheduleId": schedule_id,
            "condition": {"name": null, "address": null, "latitude": lat, "longitude": lon,
                          "connectorType": null},
            "schedules": schedules,
            "departureTimers": [],
            "isOEMOptimizationEnabled": false
        }));
    }
    v.set_signal("charge-chargetimers", timers, now);
    // What was asked, as Smartcar echoes it: the body's attributes.
    let parameters = Value::Object(attrs.clone());
    Ok(schedule_execution(
        exec_id,
        "create",
        kind,
        id,
        &schedule_id,
        parameters,
        now,
    ))
}

fn delete_schedule(
    st: &mut State,
    req: &RecordedRequest,
    id: &str,
    schedule_id: &str,
) -> Result<Response, ApiError> {
    check_user(st, req, id)?;
    let exec_id = st.next_exec_id();
    let now = reply::now_ms();
    let v = schedule_vehicle(st, id)?;
    let mut timers = charge_timers(v);
    let values = timers.get_mut("values").and_then(Value::as_array_mut);
    let Some(at) = values
        .as_ref()
        .and_then(|vs| vs.iter().position(|t| t["scheduleId"] == schedule_id))
    else {
        return Err(ApiError::not_found_path(format!(
            "Charge schedule {schedule_id} was not found on vehicle {id}."
        )));
    };
    let removed = values.expect("found in it").remove(at);
    let kind = removed["scheduleType"]
        .as_str()
        .unwrap_or("daily")
        .to_string();
    v.set_signal("charge-chargetimers", timers, now);
    Ok(schedule_execution(
        exec_id,
        "delete",
        &kind,
        id,
        schedule_id,
        json!({}),
        now,
    ))
}

// ---------------------------------------------------------------------------------------------
// Management API

fn management(st: &State, method: &str, segs: &[&str]) -> Option<Result<Response, ApiError>> {
    let app_json = |a: &seed::Application| {
        json!({"id": a.id, "type": "application",
               "attributes": {"name": a.name, "description": a.description,
                              "createdAt": a.created_at, "updatedAt": a.updated_at},
               "links": {"self": format!("/applications/{}", a.id)}})
    };
    let find = |id: &str| {
        st.fleet
            .application(id)
            .ok_or_else(|| ApiError::not_found_path(format!("Application {id} was not found.")))
    };
    Some(match (method, segs) {
        ("GET", ["applications"]) => {
            let data: Vec<Value> = st.fleet.applications.iter().map(app_json).collect();
            let total = data.len();
            Ok(json_response(
                200,
                &json!({"data": data, "meta": {"totalCount": total}}),
            ))
        }
        ("GET", ["applications", id]) => {
            find(id).map(|a| json_response(200, &json!({"data": app_json(a)})))
        }
        ("GET", ["applications", id, "secrets"]) => find(id).map(|a| {
            // Deliberately carries the secret value twice (`secret`, `clientSecret`) so tests
            // prove the MCP strips every spelling before a model sees it.
            let data: Vec<Value> = a
                .secrets
                .iter()
                .map(|s| {
                    let tail = &s.value[s.value.len().saturating_sub(4)..];
                    json!({"id": s.id, "type": "application-secret",
                           "attributes": {"name": s.name, "hint": format!("****{tail}"),
                                          "secret": s.value, "clientSecret": s.value,
                                          "createdAt": s.created_at},
                           "relationships": {"application": {"data": {"id": a.id, "type": "application"}}}})
                })
                .collect();
            let total = data.len();
            json_response(200, &json!({"data": data, "meta": {"totalCount": total}}))
        }),
        _ => return None,
    })
}

#[cfg(test)]
mod routes_tests {
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

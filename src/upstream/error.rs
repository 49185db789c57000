//! Smartcar error bodies (v3 `errors[]`, v2 flat, OAuth) parsed into one typed error with a hint
//! a model can act on; and what a reqwest answer or error says about itself (request id,
//! transport failure), shared by the executor and the token cache.

use serde_json::{Value, json};

/// A failure Smartcar (or the transport to it) reported.
#[derive(Debug, Clone, Default, PartialEq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct UpstreamError {
    /// HTTP status, or 0 when no answer arrived.
    pub status: u16,
    pub error_type: Option<String>,
    pub code: Option<String>,
    pub detail: Option<String>,
    pub resolution: Option<String>,
    pub request_id: Option<String>,
    pub retry_after_seconds: Option<u64>,
    /// A command that may have reached the vehicle (504, or the connection broke after the
    /// request went out): trying again could act twice, so the hint says to read first.
    pub outcome_unknown: bool,
    /// The signal that shows a command's effect, named by the hint when the outcome is unknown.
    pub confirm_signal: Option<&'static str>,
    /// An endpoint Smartcar does not document (the `/applications` ones): a 404 most likely
    /// means the application cannot use it, not that the id is wrong.
    pub undocumented: bool,
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn resolution(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Object(o) => text(o.get("type")),
        other => text(Some(other)),
    }
}

/// The type Smartcar uses for a status when the body names none.
fn type_for_status(status: u16) -> Option<&'static str> {
    Some(match status {
        400 => "VALIDATION",
        401 => "AUTHENTICATION",
        403 => "PERMISSION",
        404 => "RESOURCE_NOT_FOUND",
        409 => "VEHICLE_STATE",
        429 => "RATE_LIMIT",
        430 => "BILLING",
        500 => "SERVER",
        501 => "COMPATIBILITY",
        502 => "UPSTREAM",
        503 | 504 => "UPSTREAM",
        _ => return None,
    })
}

impl UpstreamError {
    /// Parses an error answer: `errors[0]` (v3), else top-level `type`/`code` (v2), else OAuth
    /// `error`/`error_description`, else only the status. Never fails.
    pub fn parse(
        status: u16,
        body: &[u8],
        request_id_header: Option<&str>,
        retry_after: Option<u64>,
    ) -> Self {
        let doc: Option<Value> = serde_json::from_slice(body).ok();
        let mut e = UpstreamError {
            status,
            error_type: None,
            code: None,
            detail: None,
            resolution: None,
            request_id: request_id_header.map(str::to_string),
            retry_after_seconds: retry_after,
            ..UpstreamError::default()
        };
        match &doc {
            Some(Value::Object(o)) => {
                if let Some(first) = o
                    .get("errors")
                    .and_then(|e| e.as_array())
                    .and_then(|a| a.first())
                {
                    e.error_type = text(first.get("type"));
                    e.code = text(first.get("code"));
                    e.detail = text(first.get("detail"))
                        .or_else(|| text(first.get("description")))
                        .or_else(|| text(first.get("title")));
                    e.resolution = resolution(first.get("resolution"));
                    if let Some(id) = text(first.get("requestId")) {
                        e.request_id = Some(id);
                    }
                } else if o.contains_key("type") || o.contains_key("code") {
                    e.error_type = text(o.get("type"));
                    e.code = text(o.get("code"));
                    e.detail = text(o.get("description"))
                        .or_else(|| text(o.get("detail")))
                        .or_else(|| text(o.get("message")));
                    e.resolution = resolution(o.get("resolution"));
                    if let Some(id) = text(o.get("requestId")) {
                        e.request_id = Some(id);
                    }
                } else if let Some(err) = text(o.get("error")) {
                    e.code = Some(err);
                    e.error_type = Some(if status == 401 || status == 400 {
                        "AUTHENTICATION".into()
                    } else {
                        type_for_status(status).unwrap_or("SERVER").into()
                    });
                    e.detail = text(o.get("error_description"));
                } else if let Some(msg) = text(o.get("message")) {
                    e.detail = Some(msg);
                }
            }
            _ => {
                let snippet = String::from_utf8_lossy(body);
                let snippet = snippet.trim();
                if !snippet.is_empty() {
                    let cut: String = snippet.chars().take(200).collect();
                    e.detail = Some(format!("non-JSON error body: {cut}"));
                }
            }
        }
        // Older v3 bodies used lowercase codes and no type: fall back to the status's type.
        if e.error_type.is_none() {
            e.error_type = type_for_status(status).map(str::to_string);
        }
        if let Some(t) = &mut e.error_type {
            *t = t.to_ascii_uppercase();
        }
        e
    }

    /// A failure with no HTTP answer (connection refused, timeout, reset).
    pub fn transport(detail: String) -> Self {
        UpstreamError {
            status: 0,
            error_type: Some("TRANSPORT".into()),
            code: None,
            detail: Some(detail),
            resolution: Some("RETRY_LATER".into()),
            ..UpstreamError::default()
        }
    }

    /// Whether trying again later can succeed (not whether this server will re-send it).
    pub fn retriable(&self) -> bool {
        !self.outcome_unknown && matches!(self.status, 0 | 429 | 500 | 502 | 503 | 504)
            || self.error_type.as_deref() == Some("VEHICLE_STATE")
                && matches!(self.code.as_deref(), Some("ASLEEP" | "UNREACHABLE"))
    }

    /// One line telling the model what to do about it.
    pub fn hint(&self) -> String {
        if self.outcome_unknown {
            let read = match self.confirm_signal {
                Some(code) => format!("read {code}"),
                None => "read the vehicle's signals".to_string(),
            };
            return format!(
                "The outcome is unknown: the vehicle may have acted; {read} before retrying."
            );
        }
        if self.undocumented && self.status == 404 {
            return "This endpoint is undocumented by Smartcar and may not be available for your application; the 404 most likely means that. Manage applications and secrets in the Smartcar Dashboard.".into();
        }
        let t = self.error_type.as_deref().unwrap_or("");
        match t {
            "VEHICLE_STATE" => match self.code.as_deref() {
                Some("ASLEEP") => "The vehicle is asleep; wait a few minutes and try again.".into(),
                Some("NOT_CHARGING") => "The vehicle is not charging, so there is nothing to stop.".into(),
                Some("CHARGING_PLUG_NOT_CONNECTED") => "The charging cable is not plugged in; the driver must plug it in first.".into(),
                Some("CHARGING_IN_PROGRESS") => "The vehicle is already charging.".into(),
                Some("FULLY_CHARGED") => "The battery is already at its charge limit.".into(),
                _ => "The vehicle's current state prevents this (asleep, charging, unplugged, door open, in motion...); check its signals and retry when the state allows.".into(),
            },
            "RATE_LIMIT" => match self.retry_after_seconds {
                Some(s) => format!("Rate limited by Smartcar; retry after {s} s."),
                None => "Rate limited by Smartcar; wait before retrying, with backoff.".into(),
            },
            "PERMISSION" => "The connection lacks the permission (scope) this needs; the vehicle owner must reconnect and grant it. Authentication itself is fine.".into(),
            "AUTHENTICATION" => "Smartcar rejected the application's credentials; check SMARTCAR_CLIENT_ID and SMARTCAR_CLIENT_SECRET.".into(),
            "COMPATIBILITY" => "This vehicle cannot do this (make, model or platform not capable); do not retry.".into(),
            "BILLING" => billing_hint(self.code.as_deref()).into(),
            "CONNECTED_SERVICES_ACCOUNT" => "The owner's connected-services account with the carmaker needs attention (subscription, login or permissions) in the carmaker's app.".into(),
            "RESOURCE_NOT_FOUND" => match self.code.as_deref() {
                Some("SIGNAL_NOT_FOUND") => "Smartcar does not know this signal code; list codes with get_signals.".into(),
                _ => "Not found: check the id (list_connections lists vehicle, user and connection ids), and that this user is connected to this vehicle.".into(),
            },
            "VALIDATION" => "Smartcar refused the request's parameters; correct them and send again.".into(),
            "SERVER" | "UPSTREAM" => "Smartcar or the carmaker had a temporary problem; try again later.".into(),
            "TRANSPORT" => "Smartcar could not be reached (network error or timeout); try again later.".into(),
            _ => "Smartcar refused the request; see the detail.".into(),
        }
    }

    /// The structured form tool errors carry (`structuredContent.error`).
    pub fn to_json(&self) -> Value {
        json!({
            "status": self.status,
            "type": self.error_type,
            "code": self.code,
            "detail": self.detail,
            "resolution": self.resolution,
            "hint": self.hint(),
            "retriable": self.retriable(),
            "retry_after_seconds": self.retry_after_seconds,
            "request_id": self.request_id,
        })
    }

    /// The sentence a model reads first.
    pub fn message(&self, tool: &str) -> String {
        format!("{tool} failed: {}", self.describe())
    }

    fn describe(&self) -> String {
        let mut m = if self.status == 0 {
            "Smartcar could not be reached".to_string()
        } else {
            format!("Smartcar answered HTTP {}", self.status)
        };
        match (&self.error_type, &self.code) {
            (Some(t), Some(c)) => m.push_str(&format!(" {t}/{c}")),
            (Some(t), None) => m.push_str(&format!(" {t}")),
            _ => {}
        }
        if let Some(d) = &self.detail {
            m.push_str(&format!(": {}", d.trim_end_matches('.')));
        }
        m.push_str(". ");
        m.push_str(&self.hint());
        if let Some(id) = &self.request_id {
            m.push_str(&format!(" (request id {id})"));
        }
        m
    }
}

/// Smartcar's 430 codes in plain words (https://smartcar.com/docs/errors/api-errors/billing-errors):
/// none clears by waiting a few seconds, so none says to retry.
fn billing_hint(code: Option<&str>) -> &'static str {
    match code {
        Some("INVALID_PLAN") => {
            "Billing: the Smartcar plan does not include this; the account owner must change the plan in the Smartcar Dashboard. Do not retry."
        }
        Some("VEHICLE_LIMIT") => {
            "Billing: the plan's number of connected vehicles is used up; the account owner must disconnect a vehicle or change the plan. Do not retry."
        }
        Some("VEHICLE_REQUEST_LIMIT") => {
            "Billing: this vehicle has used its plan's requests for the month; it can be called again next month, or after the account owner changes the plan. Do not retry now."
        }
        Some("ACCOUNT_SUSPENDED") => {
            "Billing: the Smartcar account is suspended; the account owner must contact Smartcar support. Do not retry."
        }
        _ => {
            "Billing: a limit of the Smartcar plan is reached; the account owner must check the plan in the Smartcar Dashboard or contact Smartcar support. Do not retry."
        }
    }
}

/// Smartcar's id for an answer, which support asks for.
pub fn request_id(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get("sc-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Describes a reqwest error without its URL (URLs carry ids, never secrets, but stay short).
pub fn describe_transport(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else if e.is_body() || e.is_decode() {
        "the answer was cut off".into()
    } else {
        "request failed".into()
    }
}

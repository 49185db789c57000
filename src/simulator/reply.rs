//! Response building for the simulator: Smartcar error envelopes (v3, v2, OAuth), JSON replies
//! and the clock helpers the documents need.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::ErrorFormat;

/// An API error before it is rendered in the format the simulator is switched to.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: u16,
    pub ty: &'static str,
    pub code: Option<String>,
    pub detail: String,
}

impl ApiError {
    pub fn new(status: u16, ty: &'static str, code: &str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            ty,
            code: Some(code.to_string()),
            detail: detail.into(),
        }
    }

    pub fn not_found_path(detail: impl Into<String>) -> Self {
        ApiError::new(404, "RESOURCE_NOT_FOUND", "PATH", detail)
    }

    pub fn validation(code: &str, detail: impl Into<String>) -> Self {
        ApiError::new(400, "VALIDATION", code, detail)
    }

    pub fn not_capable(detail: impl Into<String>) -> Self {
        ApiError::new(501, "COMPATIBILITY", "VEHICLE_NOT_CAPABLE", detail)
    }

    pub fn vehicle_state(code: &str, detail: impl Into<String>) -> Self {
        ApiError::new(409, "VEHICLE_STATE", code, detail)
    }

    pub fn render(&self, format: ErrorFormat, request_id: &str) -> Response {
        let body = match format {
            ErrorFormat::V3 => {
                v3_error_body(self.status, self.ty, self.code.as_deref(), &self.detail)
            }
            ErrorFormat::V2 => json!({
                "type": self.ty,
                "code": self.code,
                "description": self.detail,
                "docURL": doc_url(self.ty),
                "statusCode": self.status,
                "requestId": request_id,
                "resolution": {"type": resolution_for(self.ty)},
                "suggestedUserMessage": null,
            }),
        };
        json_response(self.status, &body)
    }
}

/// The resolution Smartcar's catalogue gives each error type (https://smartcar.com/docs/api-reference/api-errors).
pub fn resolution_for(ty: &str) -> Option<&'static str> {
    match ty {
        "AUTHENTICATION" | "CONNECTED_SERVICES_ACCOUNT" => Some("REAUTHENTICATE"),
        "BILLING" | "COMPATIBILITY" => Some("CONTACT_SUPPORT"),
        "RATE_LIMIT" | "SERVER" | "UPSTREAM" | "VEHICLE_STATE" => Some("RETRY_LATER"),
        _ => None,
    }
}

fn doc_url(ty: &str) -> String {
    format!(
        "https://smartcar.com/docs/errors/api-errors/v3/{}-errors",
        ty.to_ascii_lowercase().replace('_', "-")
    )
}

pub fn title(status: u16) -> &'static str {
    match status {
        430 => "Billing Limit",
        s => StatusCode::from_u16(s)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Error"),
    }
}

pub fn v3_error_body(status: u16, ty: &str, code: Option<&str>, detail: &str) -> Value {
    let mut err = json!({
        "status": status.to_string(),
        "type": ty,
        "code": code,
        "title": title(status),
        "detail": detail,
        "links": {"about": doc_url(ty)},
    });
    if let Some(r) = resolution_for(ty) {
        err["resolution"] = json!({"type": r});
    }
    json!({"errors": [err]})
}

/// OAuth2-shaped token endpoint error.
pub fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    json_response(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

pub fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

pub fn json_response(status: u16, body: &Value) -> Response {
    let mut resp = (status_code(status), body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// UTC `YYYY-MM-DDTHH:MM:SSZ` from epoch ms, the form Smartcar's command answers use.
pub fn iso8601(ms: u64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms as i64)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A fresh UUID-shaped request id (not a real UUID; only uniqueness matters).
pub fn request_id() -> String {
    let a = fastrand::u64(..);
    let b = fastrand::u64(..);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        (b >> 48) & 0x3fff | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod reply_tests {
    use super::*;

    #[test]
    fn iso8601_formats_known_instants() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_764_000_000_000), "2025-11-24T16:00:00Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00Z");
    }
}

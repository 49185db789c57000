//! `ToolResult`: a tool's answer before a transport renders it: an optional lead sentence, the
//! structured result, and the same result as compact JSON text, serialized once.

use serde_json::Value;

use super::meta::Meta;

/// A result's compact JSON text, the last text block. `serde_json::to_string`, not `Value`'s
/// `Display`, which writes through `fmt::Write` piece by piece (callgrind: about 5,000
/// instructions more for a signal's result). A `Value` always serializes: its keys are strings.
pub fn json_text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// A tool's answer; the MCP server turns it into a `CallToolResult`, the CLI prints it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolResult {
    pub is_error: bool,
    /// The sentence the text content opens with (commands, deletions, errors, dry runs).
    pub lead: Option<String>,
    /// The structured result (always an object).
    pub structured: Value,
    /// `structured` as compact JSON: the last text block.
    pub json: String,
    /// How the answer was obtained; `None` for answers that involved no upstream request
    /// (refusals, dry runs).
    pub meta: Option<Meta>,
    /// For a tool error: its kind (the `type` of its structured error).
    pub error_type: Option<ErrorKind>,
}

impl ToolResult {
    /// A successful answer.
    pub fn success(lead: Option<String>, structured: Value) -> Self {
        let json = json_text(&structured);
        Self::success_with_json(lead, structured, json)
    }

    /// As `success`, with the structured result already serialized as `json`.
    pub fn success_with_json(lead: Option<String>, structured: Value, json: String) -> Self {
        ToolResult {
            is_error: false,
            lead,
            structured,
            json,
            meta: None,
            error_type: None,
        }
    }

    /// A tool error of `kind`: `message` for the model, `structured` holding `{"error": {...}}`.
    pub fn error(message: String, structured: Value, kind: ErrorKind) -> Self {
        let json = json_text(&structured);
        ToolResult {
            is_error: true,
            lead: Some(message),
            structured,
            json,
            meta: None,
            error_type: Some(kind),
        }
    }

    /// The text content blocks, in order: the lead sentence (if any), then the JSON.
    pub fn text(&self) -> Vec<&str> {
        self.lead
            .as_deref()
            .into_iter()
            .chain([self.json.as_str()])
            .collect()
    }
}

/// What kind of failure a tool error is: the `type` its structured error carries, kept typed so
/// no caller compares strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidArguments,
    NotConfirmed,
    ConfirmationRequired,
    Authentication,
    /// Smartcar's own error type (`RATE_LIMIT`, `VEHICLE_STATE`, ...), or `UPSTREAM`.
    Upstream(String),
    BadResponse,
    VehicleBusy,
    DailyLimit,
    AuditUnavailable,
    CommandFailed,
    LocationOff,
    Forbidden,
}

impl ErrorKind {
    pub fn as_str(&self) -> &str {
        match self {
            ErrorKind::InvalidArguments => "INVALID_ARGUMENTS",
            ErrorKind::NotConfirmed => "NOT_CONFIRMED",
            ErrorKind::ConfirmationRequired => "CONFIRMATION_REQUIRED",
            ErrorKind::Authentication => "AUTHENTICATION",
            ErrorKind::Upstream(t) => t,
            ErrorKind::BadResponse => "BAD_RESPONSE",
            ErrorKind::VehicleBusy => "VEHICLE_BUSY",
            ErrorKind::DailyLimit => "DAILY_LIMIT",
            ErrorKind::AuditUnavailable => "AUDIT_UNAVAILABLE",
            ErrorKind::CommandFailed => "COMMAND_FAILED",
            ErrorKind::LocationOff => "LOCATION_OFF",
            ErrorKind::Forbidden => "FORBIDDEN",
        }
    }
}

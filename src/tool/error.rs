//! `ToolError`: every way a tool call can fail, each rendering the sentence a model reads first
//! and the structured `error` object the published output schemas describe.

use serde_json::{Value, json};

use super::arguments::ArgumentError;
use super::result::{ErrorKind, ToolResult};
use crate::upstream::{AuthError, Failure, UpstreamError};

/// A failed tool call. Local variants never reached Smartcar.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ToolError {
    /// The arguments broke the published schema (or named an unknown signal).
    #[error("invalid arguments: {}", .0.problems.join("; "))]
    InvalidArguments(ArgumentError),
    /// A human was asked and did not say yes.
    #[error("{question} {why}")]
    NotConfirmed { question: String, why: &'static str },
    /// The tool needs a human's yes and this client cannot ask for one.
    #[error("{question} needs confirmation and the client cannot ask for it")]
    ConfirmationUnavailable { question: String },
    /// No access token could be had.
    #[error(transparent)]
    Auth(Box<AuthError>),
    /// Smartcar (or the way to it) refused or failed.
    #[error(transparent)]
    Upstream(Box<UpstreamError>),
    /// A 2xx answer that could not be read.
    #[error("{detail}")]
    BadResponse { status: u16, detail: String },
    /// Every lane of this vehicle stayed busy for the whole wait.
    #[error("{vehicle} is busy")]
    VehicleBusy {
        vehicle: String,
        waited_ms: u64,
        lanes: usize,
    },
    /// The vehicle has cost the operator's daily allowance of upstream calls.
    #[error("{vehicle} reached {limit} upstream calls today")]
    DailyLimit { vehicle: String, limit: u64 },
    /// A command could not be put on record, so it was not sent.
    #[error("the audit log is unavailable: {detail}")]
    AuditUnavailable { detail: String },
    /// The operator turned location off (`--location off`) and the call names a location signal.
    #[error("location is off on this server, so {code} is not read")]
    LocationOff { code: String },
    /// Beyond what the caller's access token allows (`tool::tenancy`): another driver's vehicle
    /// or user, or a scope not granted. Reads the same whether or not the id exists.
    #[error("{detail}")]
    Forbidden { detail: String },
    /// A 2xx command answer whose body says the command failed.
    #[error("the command's status is ERROR")]
    CommandFailed {
        status: u16,
        detail: Option<Value>,
        response: Value,
    },
}

impl From<Failure> for ToolError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Upstream(e) => ToolError::Upstream(Box::new(e)),
            Failure::Auth(e) => ToolError::Auth(Box::new(e)),
            Failure::BadResponse { status, detail } => ToolError::BadResponse { status, detail },
        }
    }
}

impl ToolError {
    /// The kind of failure; its `as_str` is the `type` the structured error carries.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ToolError::InvalidArguments(_) => ErrorKind::InvalidArguments,
            ToolError::NotConfirmed { .. } => ErrorKind::NotConfirmed,
            ToolError::ConfirmationUnavailable { .. } => ErrorKind::ConfirmationRequired,
            ToolError::Auth(_) => ErrorKind::Authentication,
            ToolError::Upstream(e) => {
                ErrorKind::Upstream(e.error_type.clone().unwrap_or_else(|| "UPSTREAM".into()))
            }
            ToolError::BadResponse { .. } => ErrorKind::BadResponse,
            ToolError::VehicleBusy { .. } => ErrorKind::VehicleBusy,
            ToolError::DailyLimit { .. } => ErrorKind::DailyLimit,
            ToolError::AuditUnavailable { .. } => ErrorKind::AuditUnavailable,
            ToolError::CommandFailed { .. } => ErrorKind::CommandFailed,
            ToolError::LocationOff { .. } => ErrorKind::LocationOff,
            ToolError::Forbidden { .. } => ErrorKind::Forbidden,
        }
    }

    /// The sentence a model reads first.
    pub fn message(&self, tool: &str) -> String {
        match self {
            ToolError::InvalidArguments(e) => e.message(tool),
            ToolError::NotConfirmed { why, .. } => {
                format!("{tool} was not confirmed ({why}), so nothing was sent to the vehicle.")
            }
            ToolError::ConfirmationUnavailable { question } => format!(
                "{tool} needs a human's confirmation (\"{question}\") and this client cannot ask for it (no MCP elicitation), so nothing was sent. The operator can turn confirmation off with --confirm off or SMARTCAR_CONFIRM=off."
            ),
            ToolError::Auth(e) => format!("{tool} failed: {}", e.message()),
            ToolError::Upstream(e) => e.message(tool),
            ToolError::BadResponse { detail, .. } => format!("{tool} failed: {detail}."),
            ToolError::VehicleBusy {
                vehicle,
                waited_ms,
                lanes,
            } => format!(
                "{tool} was not sent: vehicle {vehicle} already has {lanes} calls in flight and none finished within {waited_ms} ms. Try again shortly."
            ),
            ToolError::DailyLimit { vehicle, limit } => format!(
                "{tool} was not sent: vehicle {vehicle} has used today's {limit} upstream calls (the operator's --max-calls-per-vehicle-per-day). Nothing was sent to Smartcar."
            ),
            ToolError::AuditUnavailable { detail } => format!(
                "{tool} was not sent: it could not be put on record in the audit log ({detail}). Nothing was sent to the vehicle."
            ),
            ToolError::LocationOff { code } => format!(
                "{tool} was not sent: the operator turned location off on this server (--location off, SMARTCAR_LOCATION=off), so {code} is not read. Nothing was sent to Smartcar."
            ),
            ToolError::Forbidden { detail } => {
                format!("{tool} was not sent: {detail}. Nothing was sent to Smartcar.")
            }
            ToolError::CommandFailed { status, detail, .. } => format!(
                "{tool} failed: Smartcar answered HTTP {status} but the command's status is ERROR{}.",
                detail
                    .as_ref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ),
        }
    }

    /// The structured result: `{"error": {...}}`, plus Smartcar's answer for a failed command.
    pub fn to_json(&self) -> Value {
        let error = match self {
            ToolError::InvalidArguments(e) => {
                let mut error = json!({
                    "type": self.kind().as_str(),
                    "detail": e.problems.join("; "),
                    "problems": e.problems,
                    "hint": "Correct the arguments and call again; nothing was sent to Smartcar.",
                    "retriable": false,
                });
                if !e.suggestions.is_empty() {
                    error["suggestions"] = json!(e.suggestions);
                }
                error
            }
            ToolError::NotConfirmed { .. } => json!({
                "type": self.kind().as_str(),
                "detail": self.to_string(),
                "hint": "Do not retry unless the user asks again.",
                "retriable": false,
            }),
            ToolError::ConfirmationUnavailable { question } => json!({
                "type": self.kind().as_str(),
                "detail": format!("{question} needs confirmation by a human through MCP elicitation, which this client does not support"),
                "hint": "Use a client that supports elicitation, or ask the operator to set SMARTCAR_CONFIRM=off.",
                "retriable": false,
            }),
            ToolError::Auth(e) => json!({
                "status": e.status(),
                "type": self.kind().as_str(),
                "code": e.code(),
                "detail": e.message(),
                "hint": "Fix the server's Smartcar credentials or URLs; the model cannot fix this.",
                "retriable": matches!(**e, AuthError::Transport(_)),
            }),
            ToolError::Upstream(e) => e.to_json(),
            ToolError::BadResponse { status, detail } => json!({
                "status": status,
                "type": self.kind().as_str(),
                "detail": detail,
                "hint": "Smartcar's answer could not be read; try again later.",
                "retriable": true,
            }),
            ToolError::VehicleBusy { .. } => json!({
                "type": self.kind().as_str(),
                "detail": self.to_string(),
                "hint": "Wait a few seconds for the vehicle's other calls to finish, then call again.",
                "retriable": true,
            }),
            ToolError::DailyLimit { .. } => json!({
                "type": self.kind().as_str(),
                "detail": self.to_string(),
                "hint": "Do not retry today; the operator can raise --max-calls-per-vehicle-per-day.",
                "retriable": false,
            }),
            ToolError::AuditUnavailable { .. } => json!({
                "type": self.kind().as_str(),
                "detail": self.to_string(),
                "hint": "The operator must fix the audit database (--audit-db); the model cannot fix this.",
                "retriable": false,
            }),
            ToolError::LocationOff { .. } => json!({
                "type": self.kind().as_str(),
                "detail": self.to_string(),
                "hint": "Do not retry: the operator's --location off setting (SMARTCAR_LOCATION) forbids location signals; read other signals instead.",
                "retriable": false,
            }),
            ToolError::Forbidden { .. } => json!({
                "type": self.kind().as_str(),
                "detail": self.to_string(),
                "hint": "Use ids from your own list_connections; another driver's vehicles and users are out of reach of your access token.",
                "retriable": false,
            }),
            ToolError::CommandFailed {
                status,
                detail,
                response,
            } => {
                return json!({ "error": {
                    "status": status,
                    "type": self.kind().as_str(),
                    "detail": detail,
                    "hint": "The vehicle did not carry the command out; read its signals before trying again.",
                    "retriable": false,
                }, "response": response });
            }
        };
        json!({ "error": error })
    }

    /// The tool result carrying this error.
    pub fn into_result(self, tool: &str) -> ToolResult {
        ToolResult::error(self.message(tool), self.to_json(), self.kind())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{SCHEMAS, TOOLS, schema};

    fn upstream() -> UpstreamError {
        UpstreamError::parse(
            429,
            br#"{"errors":[{"type":"RATE_LIMIT","code":"VEHICLE","detail":"Too many requests","resolution":{"type":"RETRY_LATER"}}]}"#,
            Some("req-1"),
            Some(30),
        )
    }

    /// One of every variant, with every optional part present where it has one.
    fn every_variant() -> Vec<ToolError> {
        vec![
            ToolError::InvalidArguments(ArgumentError {
                problems: vec!["`signal_code` \"batery\" is not a Smartcar signal code".into()],
                suggestions: vec!["tractionbattery-stateofcharge".into()],
            }),
            ToolError::InvalidArguments(ArgumentError {
                problems: vec!["`percent` must be at most 100 (got 101)".into()],
                suggestions: vec![],
            }),
            ToolError::NotConfirmed {
                question: "Unlock vehicle v-1 for user u-1?".into(),
                why: "the human declined",
            },
            ToolError::ConfirmationUnavailable {
                question: "Delete user u-1?".into(),
            },
            ToolError::Auth(Box::new(AuthError::MissingCredentials(vec![
                "SMARTCAR_CLIENT_ID",
            ]))),
            ToolError::Auth(Box::new(AuthError::Rejected(upstream()))),
            ToolError::Auth(Box::new(AuthError::Unreadable("empty access_token".into()))),
            ToolError::Auth(Box::new(AuthError::Transport("timed out".into()))),
            ToolError::Upstream(Box::new(upstream())),
            ToolError::Upstream(Box::new(UpstreamError::transport("timed out".into()))),
            ToolError::BadResponse {
                status: 200,
                detail: "Smartcar answered HTTP 200 with a body that is not JSON (3 bytes)".into(),
            },
            ToolError::VehicleBusy {
                vehicle: "v-1".into(),
                waited_ms: 30_000,
                lanes: 2,
            },
            ToolError::DailyLimit {
                vehicle: "v-1".into(),
                limit: 50,
            },
            ToolError::AuditUnavailable {
                detail: "database is locked".into(),
            },
            ToolError::LocationOff {
                code: "location-preciselocation".into(),
            },
            ToolError::CommandFailed {
                status: 200,
                detail: Some(serde_json::json!({"code": "DOOR_OPEN"})),
                response: serde_json::json!({"data": {"attributes": {"status": {"value": "ERROR"}}}}),
            },
        ]
    }

    #[test]
    fn every_variant_matches_the_published_error_schema_of_every_tool() {
        let error = jsonschema::validator_for(&schema::error_schema()).unwrap();
        let outputs: Vec<_> = SCHEMAS
            .iter()
            .map(|s| {
                jsonschema::validator_for(&serde_json::Value::Object(s.output.clone())).unwrap()
            })
            .collect();
        for e in every_variant() {
            let result = e.clone().into_result("get_signal");
            assert!(result.is_error);
            assert_eq!(result.error_type, Some(e.kind()), "{e:?}");
            assert_eq!(
                result.structured["error"]["type"],
                e.kind().as_str(),
                "{e:?}"
            );
            assert!(
                error.is_valid(&result.structured),
                "{e:?}: {}",
                result.structured
            );
            for (t, v) in TOOLS.iter().zip(&outputs) {
                assert!(v.is_valid(&result.structured), "{}: {e:?}", t.name);
            }
            // The sentence names the tool, and never leaks Rust's Debug form.
            let lead = result.lead.unwrap();
            assert!(lead.contains("get_signal"), "{lead}");
            assert!(!lead.contains("Some(") && !lead.contains("Box("), "{lead}");
        }
    }

    #[test]
    fn the_structured_error_carries_smartcars_status_type_code_and_a_hint() {
        let v = ToolError::Upstream(Box::new(upstream())).to_json();
        let e = &v["error"];
        assert_eq!(e["status"], 429);
        assert_eq!(e["type"], "RATE_LIMIT");
        assert_eq!(e["code"], "VEHICLE");
        assert_eq!(e["retry_after_seconds"], 30);
        assert_eq!(e["request_id"], "req-1");
        assert!(e["hint"].as_str().unwrap().contains("retry after 30 s"));
    }
}

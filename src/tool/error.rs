//! `ToolError`: every way a tool call can fail, each rendering the sentence a model reads first
//! and the structured `error` object the published output schemas describe.

use serde_json::{Value, json};

use super::arguments::ArgumentError;
use super::result::ToolResult;
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
    /// The `type` the structured error carries.
    pub fn kind(&self) -> &str {
        match self {
            ToolError::InvalidArguments(_) => "INVALID_ARGUMENTS",
            ToolError::NotConfirmed { .. } => "NOT_CONFIRMED",
            ToolError::ConfirmationUnavailable { .. } => "CONFIRMATION_REQUIRED",
            ToolError::Auth(_) => "AUTHENTICATION",
            ToolError::Upstream(e) => e.error_type.as_deref().unwrap_or("UPSTREAM"),
            ToolError::BadResponse { .. } => "BAD_RESPONSE",
            ToolError::CommandFailed { .. } => "COMMAND_FAILED",
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
                    "type": self.kind(),
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
                "type": self.kind(),
                "detail": self.to_string(),
                "hint": "Do not retry unless the user asks again.",
                "retriable": false,
            }),
            ToolError::ConfirmationUnavailable { question } => json!({
                "type": self.kind(),
                "detail": format!("{question} needs confirmation by a human through MCP elicitation, which this client does not support"),
                "hint": "Use a client that supports elicitation, or ask the operator to set SMARTCAR_CONFIRM=off.",
                "retriable": false,
            }),
            ToolError::Auth(e) => json!({
                "status": e.status(),
                "type": self.kind(),
                "code": e.code(),
                "detail": e.message(),
                "hint": "Fix the server's Smartcar credentials or URLs; the model cannot fix this.",
                "retriable": matches!(**e, AuthError::Transport(_)),
            }),
            ToolError::Upstream(e) => e.to_json(),
            ToolError::BadResponse { status, detail } => json!({
                "status": status,
                "type": self.kind(),
                "detail": detail,
                "hint": "Smartcar's answer could not be read; try again later.",
                "retriable": true,
            }),
            ToolError::CommandFailed {
                status,
                detail,
                response,
            } => {
                return json!({ "error": {
                    "status": status,
                    "type": self.kind(),
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
        ToolResult::error(self.message(tool), self.to_json())
    }
}

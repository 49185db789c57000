//! `ToolResult`: a tool's answer before a transport renders it: an optional lead sentence, the
//! structured result, and the same result as compact JSON text, serialized once.

use serde_json::{Map, Value};

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
    /// Extra `_meta` entries (retries).
    pub meta: Option<Map<String, Value>>,
    /// For a tool error: its `type` (`INVALID_ARGUMENTS`, `NOT_CONFIRMED`, `RATE_LIMIT`, ...).
    pub error_type: Option<String>,
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

    /// A tool error: `message` for the model, `structured` holding `{"error": {...}}`.
    pub fn error(message: String, structured: Value) -> Self {
        let json = json_text(&structured);
        let error_type = structured
            .pointer("/error/type")
            .and_then(Value::as_str)
            .map(str::to_string);
        ToolResult {
            is_error: true,
            lead: Some(message),
            structured,
            json,
            meta: None,
            error_type,
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

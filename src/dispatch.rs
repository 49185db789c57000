//! One tool call, independent of MCP: validate, (dry-run or) execute, and shape the result.
//! The MCP server and the `call` command both go through here.

use serde_json::{Map, Value, json};

use crate::arguments::{self, ArgumentError};
use crate::catalogue::{Location, TOOLS, ToolSpec};
use crate::executor::{self, Executor, Failure, Outcome};
use crate::shape;

/// A tool's answer before it becomes an MCP `CallToolResult`.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolResult {
    pub is_error: bool,
    /// Text blocks, in order.
    pub text: Vec<String>,
    /// The structured result (always an object).
    pub structured: Value,
    /// Extra `_meta` entries (retries).
    pub meta: Option<Map<String, Value>>,
}

impl ToolResult {
    fn new(is_error: bool, lead: Option<String>, structured: Value) -> Self {
        let json = structured.to_string();
        Self::with_json(is_error, lead, structured, json)
    }

    /// As `new`, with the structured result already serialized as `json`.
    fn with_json(is_error: bool, lead: Option<String>, structured: Value, json: String) -> Self {
        let mut text: Vec<String> = lead.into_iter().collect();
        text.push(json);
        ToolResult {
            is_error,
            text,
            structured,
            meta: None,
        }
    }

    /// A tool error that never reached Smartcar.
    pub fn local_error(message: String, error: Value) -> Self {
        ToolResult::new(true, Some(message), json!({ "error": error }))
    }
}

/// Arguments refused: the model reads which parameter broke which rule.
pub fn argument_error(spec: &ToolSpec, e: &ArgumentError) -> ToolResult {
    let mut error = json!({
        "type": "INVALID_ARGUMENTS",
        "detail": e.problems.join("; "),
        "problems": e.problems,
        "hint": "Correct the arguments and call again; nothing was sent to Smartcar.",
        "retriable": false,
    });
    if !e.suggestions.is_empty() {
        error["suggestions"] = json!(e.suggestions);
    }
    ToolResult::local_error(e.message(spec.name), error)
}

/// Validates and canonicalizes arguments (no request is made).
pub fn validate(
    index: usize,
    raw: Option<&Map<String, Value>>,
) -> Result<Map<String, Value>, ToolResult> {
    arguments::prepare(index, raw).map_err(|e| argument_error(&TOOLS[index], &e))
}

fn id_arg<'a>(
    spec: &ToolSpec,
    args: &'a Map<String, Value>,
    location: Location,
) -> Vec<(&'static str, &'a str)> {
    spec.params
        .iter()
        .filter(|p| p.location == location)
        .filter_map(|p| {
            args.get(p.name)
                .and_then(Value::as_str)
                .map(|v| (p.name, v))
        })
        .collect()
}

/// The question a human answers before a confirmed tool runs: the action and its exact target.
pub fn confirmation_question(spec: &ToolSpec, args: &Map<String, Value>) -> String {
    let targets: Vec<&str> = id_arg(spec, args, Location::Path)
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    let mut q = format!("{} {}", spec.title, targets.join(" / "));
    if let Some((_, user)) = id_arg(spec, args, Location::Header)
        .into_iter()
        .find(|(n, _)| *n == "user_id")
    {
        q.push_str(&format!(" for user {user}"));
    }
    q.push('?');
    q
}

/// The answer for a dry run: the exact request, sent nowhere.
pub fn dry_run(exec: &Executor, index: usize, args: &Map<String, Value>) -> ToolResult {
    let spec = &TOOLS[index];
    let req = exec.prepare(spec, args);
    ToolResult::new(
        false,
        Some(format!(
            "Dry run: {} would send {} {}; nothing was sent.",
            spec.name,
            req.method.as_str(),
            req.url
        )),
        json!({ "dry_run": true, "tool": spec.name, "request": req.to_json() }),
    )
}

fn retries_meta(outcome: &Outcome) -> Option<Map<String, Value>> {
    if outcome.retries.is_empty() {
        return None;
    }
    let list: Vec<Value> = outcome
        .retries
        .iter()
        .map(|r| json!({ "attempt": r.attempt, "reason": r.reason, "waited_ms": r.waited_ms }))
        .collect();
    let mut m = Map::new();
    m.insert("smartcar-mcp/retries".into(), Value::Array(list));
    m.insert("smartcar-mcp/attempts".into(), json!(outcome.attempts));
    Some(m)
}

fn failure_result(spec: &ToolSpec, failure: &Failure) -> ToolResult {
    match failure {
        Failure::Upstream(e) => ToolResult::new(
            true,
            Some(e.message(spec.name)),
            json!({ "error": e.to_json() }),
        ),
        Failure::Auth(e) => ToolResult::new(
            true,
            Some(format!("{} failed: {}", spec.name, e.message())),
            json!({ "error": {
                "status": e.status(),
                "type": "AUTHENTICATION",
                "code": match e {
                    crate::auth::AuthError::MissingCredentials(_) => "MISSING_CREDENTIALS",
                    crate::auth::AuthError::Rejected(_) => "TOKEN_REFUSED",
                    crate::auth::AuthError::Garbage(_) => "TOKEN_UNREADABLE",
                    crate::auth::AuthError::Transport(_) => "TOKEN_UNREACHABLE",
                },
                "detail": e.message(),
                "hint": "Fix the server's Smartcar credentials or URLs; the model cannot fix this.",
                "retriable": matches!(e, crate::auth::AuthError::Transport(_)),
            }}),
        ),
        Failure::BadBody { status, detail } => ToolResult::new(
            true,
            Some(format!("{} failed: {detail}.", spec.name)),
            json!({ "error": {
                "status": status,
                "type": "BAD_RESPONSE",
                "detail": detail,
                "hint": "Smartcar's answer could not be read; try again later.",
                "retriable": true,
            }}),
        ),
    }
}

/// Runs a validated call against Smartcar and shapes the answer.
pub async fn execute(exec: &Executor, index: usize, args: &Map<String, Value>) -> ToolResult {
    let spec = &TOOLS[index];
    let req = exec.prepare(spec, args);
    let outcome = exec.send(spec, &req).await;
    let mut result = match &outcome.result {
        Err(f) => failure_result(spec, f),
        Ok(ok) => {
            let mut body = ok.body.clone();
            // Redaction comes first so neither the compact nor the raw form can carry a secret.
            if let Some(b) = &mut body {
                executor::redact(b, spec.redact);
            }
            match shape::shape(spec, args, ok.status, body.as_ref()) {
                Ok(shaped) => {
                    let (structured, json) =
                        shape::bounded(shaped.structured, exec.settings().max_result_bytes);
                    ToolResult::with_json(false, shaped.sentence, structured, json)
                }
                Err(failed) => ToolResult::new(
                    true,
                    Some(format!(
                        "{} failed: Smartcar answered HTTP {} but the command's status is ERROR{}.",
                        spec.name,
                        ok.status,
                        failed
                            .detail
                            .as_ref()
                            .map(|e| format!(": {e}"))
                            .unwrap_or_default()
                    )),
                    json!({ "error": {
                        "status": ok.status,
                        "type": "COMMAND_FAILED",
                        "detail": failed.detail,
                        "hint": "The vehicle did not carry the command out; read its signals before trying again.",
                        "retriable": false,
                    }, "response": failed.response }),
                ),
            }
        }
    };
    result.meta = retries_meta(&outcome);
    result
}

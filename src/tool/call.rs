//! The one call pipeline, used by the stdio server, the HTTP server and the `call` command:
//! validate -> dry run, or confirm -> execute -> shape -> bound -> result.
//!
//! How a human is asked differs by front end (MCP elicitation in either lifecycle, a terminal
//! prompt), so it is injected as a `Confirm`; everything else happens here, once.

use std::future::Future;

use serde_json::{Map, Value, json};

use super::arguments;
use super::bound;
use super::error::ToolError;
use super::result::ToolResult;
use super::shape;
use super::state::AppState;
use crate::catalogue::{Api, Shape, ToolSpec};
use crate::settings::ConfirmMode;
use crate::upstream::{Executor, Failure, Outcome};

/// What a confirmation decided.
pub enum Verdict<A> {
    /// The human said yes: send it.
    Go,
    /// The answer must come in a later request (the 2026-07-28 input-required round): hand this
    /// back to the client now.
    Ask(A),
}

/// Asks a human whether a tool marked `confirm: true` may run with these exact arguments.
pub trait Confirm {
    /// What is handed back to the client when the answer comes in a later request.
    type Ask: Send;

    /// `Err` when the call must not run (declined, unanswered, nobody to ask).
    fn confirm(
        &self,
        spec: &'static ToolSpec,
        question: &str,
        args: &Map<String, Value>,
    ) -> impl Future<Output = Result<Verdict<Self::Ask>, ToolError>> + Send;
}

/// Where a call ended.
pub enum Step<A> {
    Done(ToolResult),
    Ask(A),
}

/// Runs one call of `spec` with the arguments as the client sent them.
pub async fn run<C: Confirm + Sync>(
    state: &AppState,
    spec: &'static ToolSpec,
    raw: Option<&Map<String, Value>>,
    confirm: &C,
) -> Step<C::Ask> {
    let args = match validate(spec, raw) {
        Ok(a) => a,
        Err(e) => return Step::Done(e.into_result(spec.name)),
    };
    if state.serving.dry_run {
        return Step::Done(dry_run(&state.exec, spec, &args));
    }
    if spec.confirm && state.serving.confirm == ConfirmMode::Required {
        let q = question(spec, &args);
        match confirm.confirm(spec, &q, &args).await {
            Ok(Verdict::Go) => {}
            Ok(Verdict::Ask(ask)) => return Step::Ask(ask),
            Err(e) => return Step::Done(e.into_result(spec.name)),
        }
    }
    Step::Done(execute(state, spec, &args).await)
}

/// Checks and canonicalizes the arguments; no request is made.
pub fn validate(
    spec: &'static ToolSpec,
    raw: Option<&Map<String, Value>>,
) -> Result<Map<String, Value>, ToolError> {
    arguments::check(spec, raw).map_err(ToolError::InvalidArguments)
}

/// The question a human answers before a confirmed tool runs: the action and its exact target,
/// from the tool's `asks`.
pub fn question(spec: &ToolSpec, args: &Map<String, Value>) -> String {
    match spec.asks {
        Some(asks) => shape::fill(asks, args),
        None => format!("{}?", spec.title),
    }
}

/// The answer for a dry run: the exact request, sent nowhere.
pub fn dry_run(exec: &Executor, spec: &ToolSpec, args: &Map<String, Value>) -> ToolResult {
    let req = exec.request(spec, args);
    ToolResult::success(
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

/// Sends a validated call to Smartcar and shapes the answer.
pub async fn execute(state: &AppState, spec: &ToolSpec, args: &Map<String, Value>) -> ToolResult {
    let req = state.exec.request(spec, args);
    let compatibility = spec.api == Api::Compatibility;
    if compatibility && let Some((status, body)) = state.cached_compatibility(&req.url) {
        let mut result = finish(state, spec, shape::shape(spec, args, status, body.as_ref()));
        let mut m = Map::new();
        m.insert("smartcar-mcp/cached".into(), json!(true));
        result.meta = Some(m);
        return result;
    }
    let outcome = state.exec.send(spec, &req).await;
    if compatibility && let Ok(ok) = &outcome.result {
        state.cache_compatibility(&req.url, ok.status, ok.body.clone());
    }
    let shaped = match &outcome.result {
        // Smartcar answers 409 when the subscription exists: the state the caller asked for.
        Err(Failure::Upstream(e)) if spec.output == Shape::Subscription && e.status == 409 => {
            Ok(shape::already_subscribed(
                args,
                e.detail.as_deref().unwrap_or("the subscription exists"),
            ))
        }
        Err(f) => Err(ToolError::from(f.clone())),
        Ok(ok) => {
            let mut body = ok.body.clone();
            // Redaction comes first so neither the compact nor the raw form can carry a secret.
            if let Some(b) = &mut body {
                shape::redact(b, spec.redact);
            }
            shape::shape(spec, args, ok.status, body.as_ref())
        }
    };
    let mut result = finish(state, spec, shaped);
    result.meta = retries_meta(&outcome);
    result
}

/// A shaped answer (or its error) as the result, bounded in size.
fn finish(
    state: &AppState,
    spec: &ToolSpec,
    shaped: Result<shape::Shaped, ToolError>,
) -> ToolResult {
    match shaped {
        Ok(shaped) => {
            let (structured, json) =
                bound::serialize_within(shaped.structured, state.serving.max_result_bytes);
            ToolResult::success_with_json(shaped.sentence, structured, json)
        }
        Err(e) => e.into_result(spec.name),
    }
}

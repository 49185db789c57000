//! Command answers: the outcome Smartcar reports, the parameters sent, and the sentence that says
//! what happened and which signal shows it.

use serde_json::{Map, Value, json};

use super::jsonapi::{at, attrs, resource, s, time};
use super::{Shaped, fill};
use crate::catalogue::{Location, ToolSpec};
use crate::tool::error::ToolError;

fn body_parameters(spec: &ToolSpec, args: &Map<String, Value>) -> Value {
    let p: Map<String, Value> = spec
        .params
        .iter()
        .filter(|p| p.location == Location::Body)
        .filter_map(|p| args.get(p.name).map(|v| (p.name.to_string(), v.clone())))
        .collect();
    if p.is_empty() {
        Value::Null
    } else {
        Value::Object(p)
    }
}

/// Statuses that end a command. Smartcar documents `SUCCESS`; a failure is implied ("read the
/// body to determine success or failure") and spelled `ERROR` in per-signal statuses.
fn is_failure(status: &str) -> bool {
    matches!(status, "ERROR" | "FAILURE" | "FAILED")
}

/// The answer to a command (`command-execution`) or a charge schedule
/// (`charge-schedule-execution`). Smartcar: 200 means done synchronously, 202 means still running
/// ("always read the body"). What the body's `status.value` says is reported as it is; only when
/// the body has none does the HTTP status speak (`SUCCESS` for 200, `ACCEPTED` for 202), and
/// `status_from` says which one it was. Commands return no updated state, so the result names the
/// signal that shows it.
pub(super) fn command(
    spec: &ToolSpec,
    args: &Map<String, Value>,
    status: u16,
    body: &Value,
) -> Result<Shaped, ToolError> {
    let r = resource(body);
    let a = attrs(r);
    let reported = reported_status(body);
    if reported.as_deref().is_some_and(is_failure) {
        return Err(ToolError::CommandFailed {
            status,
            detail: a
                .pointer("/status/error")
                .or_else(|| body.get("error"))
                .cloned(),
            response: body.clone(),
        });
    }
    let (outcome, from) = match &reported {
        Some(s) => (s.clone(), "body"),
        None if status == 202 => ("ACCEPTED".to_string(), "http"),
        None => ("SUCCESS".to_string(), "http"),
    };
    let running = outcome != "SUCCESS";
    let parameters = a
        .get("parameters")
        .filter(|p| p.is_object())
        .cloned()
        .unwrap_or_else(|| body_parameters(spec, args));
    let vehicle_id = spec.target(args);
    let structured = json!({
        "command": a.get("commandType").and_then(Value::as_str).unwrap_or(spec.name),
        "status": outcome,
        "status_from": from,
        "http_status": status,
        "running": running,
        "execution_mode": s(a.get("executionMode")),
        "vehicle_id": vehicle_id,
        "parameters": parameters,
        "schedule_id": s(a.get("scheduleId")),
        "executed_at": time(at(r, "/meta/executedAt")),
        "completed_at": time(at(r, "/meta/completedAt")),
        "id": s(r.get("id")),
        "confirm_with": spec.confirm_signal,
    });
    let target = vehicle_id.unwrap_or("the vehicle");
    let check = match spec.confirm_signal {
        Some(c) => format!("read {c} with get_signal to confirm"),
        None => "no signal reports this; check in the vehicle to confirm".to_string(),
    };
    let sentence = if running {
        let said = match from {
            "body" => format!(" (Smartcar reports {outcome})"),
            _ => String::new(),
        };
        format!(
            "{} accepted for {target}, still running{said}: {check}.",
            spec.title
        )
    } else {
        let done = spec
            .says
            .map(|t| fill(t, args))
            .unwrap_or_else(|| format!("{} done on {target}.", spec.title));
        let check = match spec.confirm_signal {
            Some(c) => format!("Commands return no updated state: read {c} to see it."),
            None => "Commands return no updated state and no signal reports this one.".to_string(),
        };
        format!("{done} {check}")
    };
    Ok(Shaped {
        structured,
        sentence: Some(sentence),
    })
}

/// The status a command's answer reports in its body (`data.attributes.status.value`, or a plain
/// string), upper-cased; `None` when the body says nothing.
pub fn reported_status(body: &Value) -> Option<String> {
    let candidates = [at(body, "/data/attributes/status"), at(body, "/status")];
    for c in candidates.into_iter().flatten() {
        let s = match c {
            Value::String(s) => Some(s.as_str()),
            Value::Object(o) => o.get("value").and_then(Value::as_str),
            _ => None,
        };
        if let Some(s) = s {
            return Some(s.to_ascii_uppercase());
        }
    }
    None
}

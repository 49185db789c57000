//! The write path: a command or deletion on record before it leaves, the vehicle's cached and
//! pushed state dropped, the outcome recorded, and with `--verify-commands` the confirming read.

use serde_json::{Map, Value, json};

use crate::catalogue::{Role, ToolSpec};
use crate::store::{Entry, Finish};
use crate::tool::bound;
use crate::tool::error::ToolError;
use crate::tool::meta::Meta;
use crate::tool::result::ToolResult;
use crate::tool::state::AppState;

use super::execute::{send, upstream_calls};
use super::join;

/// A command or deletion: on record before it leaves, the vehicle's cached reads dropped.
pub(super) async fn write(
    state: &AppState,
    spec: &'static ToolSpec,
    args: &Map<String, Value>,
    entry: &Entry<'_>,
) -> ToolResult {
    // Durable before anything is sent; commands in flight together share the commit.
    let id = match state.store.begin(entry).await {
        Ok(id) => id,
        Err(e) => {
            tracing::error!(tool = spec.name, "{e}");
            let e = ToolError::AuditUnavailable {
                detail: "the record could not be written".into(),
            };
            return e.into_result(spec.name);
        }
    };
    // Whatever the answer, what was cached or pushed about this vehicle may no longer be true.
    state.cache.invalidate(spec.vehicle(args));
    state.store.mark_stale(spec.vehicle(args)).await;
    // A deletion changes which vehicles belong to which users.
    if spec.output == crate::catalogue::Shape::Deletion {
        state.owners.forget();
    }
    let mut r = send(state, spec, args).await;
    {
        let error = &r.structured["error"];
        let status = error["status"]
            .as_u64()
            .map(|s| s as u16)
            .or_else(|| r.meta.as_ref()?.http_status);
        let request_id = error["request_id"]
            .as_str()
            .or_else(|| r.meta.as_ref()?.request_id.as_deref());
        let outcome = if r.is_error {
            r.error_type
                .as_ref()
                .map(crate::tool::result::ErrorKind::as_str)
        } else {
            r.structured["status"].as_str().or(Some("SUCCESS"))
        };
        let finish = Finish {
            ok: !r.is_error,
            outcome,
            http_status: status,
            request_id,
            error: r.is_error.then_some(r.lead.as_deref()).flatten(),
        };
        if let Err(e) = state.store.finish(id, &finish).await {
            tracing::error!(tool = spec.name, "the outcome was not recorded: {e}");
        }
    }
    if state.serving.verify_commands && !r.is_error {
        verify(state, spec, args, &mut r).await;
    }
    r
}

/// `--verify-commands`: after a command Smartcar reports done, reads its confirming signal once
/// and says whether it shows the command's effect. Only a read that matches is `verified: true`;
/// a command still running, a failed read (an asleep vehicle) or another value is `false`.
async fn verify(
    state: &AppState,
    spec: &'static ToolSpec,
    args: &Map<String, Value>,
    r: &mut ToolResult,
) {
    let (Some(signal), Some(check), Some(read_spec)) = (
        spec.confirm_signal,
        spec.verify,
        crate::catalogue::tool("get_signal"),
    ) else {
        return;
    };
    let expected = crate::tool::verify::expected(&check, args);
    let mut report = json!({ "signal": signal, "expected": expected });
    let status = r.structured["status"].as_str().unwrap_or("").to_string();
    let (verified, sentence) = if status != "SUCCESS" {
        report["reason"] = json!("the command is still running, so its effect was not read");
        (
            false,
            format!("Not verified: the command is still running ({status}); read {signal} later."),
        )
    } else {
        tokio::time::sleep(state.serving.verify_delay).await;
        report["read_after_ms"] = json!(state.serving.verify_delay.as_millis() as u64);
        // The read's arguments by role, so either tool's names are YAML's to change.
        let mut read_args = Map::new();
        for role in [Role::Vehicle, Role::User] {
            if let (Some(p), Some(v)) = (read_spec.param(role), spec.arg(role, args)) {
                read_args.insert(p.name.into(), v.clone());
            }
        }
        if let Some(p) = read_spec
            .params
            .iter()
            .find(|p| p.ty == crate::catalogue::ParamType::SignalCode)
        {
            read_args.insert(p.name.into(), json!(signal));
        }
        let read = send(state, read_spec, &read_args).await;
        r.meta.get_or_insert_with(Meta::default).upstream_calls += upstream_calls(&read);
        if read.is_error {
            report["read"] = Value::Null;
            report["error"] = read.structured["error"].clone();
            let why = read.lead.unwrap_or_default();
            (
                false,
                format!("Not verified: reading {signal} failed ({why})."),
            )
        } else {
            let (got, same) = crate::tool::verify::compare(&check, &read.structured, args);
            report["read"] = got.clone();
            let sentence = if same {
                format!("Verified: {signal} reads {got}.")
            } else {
                format!(
                    "Not verified: {signal} reads {got}, not {expected}; the command may not have taken effect."
                )
            };
            (same, sentence)
        }
    };
    report["verified"] = json!(verified);
    r.structured["verified"] = json!(verified);
    r.structured["verification"] = report;
    r.lead = join(r.lead.take(), Some(sentence));
    let (structured, json) =
        bound::serialize_within(r.structured.take(), state.serving.max_result_bytes);
    r.structured = structured;
    r.json = json;
}

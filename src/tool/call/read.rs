//! The read path: an answer from pushed state when it is fresh enough, else from the cache, else
//! shared with an identical read in flight, else sent.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::catalogue::ToolSpec;
use crate::tool::bound;
use crate::tool::meta::{Meta, Source};
use crate::tool::privacy;
use crate::tool::result::ToolResult;
use crate::tool::shape;
use crate::tool::state::AppState;
use crate::tool::usage::Counts;

use super::execute::{answered_for, send};

/// Identical reads (same credentials, tool and canonical arguments) share this key.
fn read_key(state: &AppState, spec: &ToolSpec, args: &Map<String, Value>) -> String {
    let client = state.exec.settings().client_id.as_deref().unwrap_or("");
    // Serialized from the map itself: the same text as `Value::Object`, without copying it.
    let args = serde_json::to_string(args).unwrap_or_default();
    format!("{client}\n{}\n{args}", spec.name)
}

/// A read: from the cache when allowed, else shared with an identical read in flight, else sent.
pub(super) async fn read(
    state: &AppState,
    spec: &'static ToolSpec,
    args: &Map<String, Value>,
) -> ToolResult {
    let vehicle = spec.vehicle(args);
    if let Some(r) = from_pushed(state, spec, args).await {
        let counts = Counts {
            pushed: 1,
            ..Counts::default()
        };
        state.usage.record(vehicle, true, spec.name, counts).await;
        return r;
    }
    let key = read_key(state, spec, args);
    if let Some((shared, age)) = state.cache.read(&key) {
        let mut r = ToolResult::clone(&shared);
        let counts = Counts {
            cached: 1,
            ..Counts::default()
        };
        // Only answers are cached: Smartcar answered for this vehicle.
        state.usage.record(vehicle, true, spec.name, counts).await;
        r.lead = Some(format!(
            "Cached answer, {} s old (this server reuses answers for {} s); nothing was sent to Smartcar.",
            age.as_secs(),
            state.serving.cache_ttl.as_secs()
        ));
        r.meta = Some(Meta::served(Source::Cache, Some(age.as_secs())));
        return r;
    }
    let (r, shared) = state
        .traffic
        .coalesce(&key, async {
            let r = Arc::new(send(state, spec, args).await);
            state.cache.keep_read(&key, vehicle, &r);
            r
        })
        .await;
    // Copied only when a follower or the cache still holds it.
    let mut r = Arc::unwrap_or_clone(r);
    if shared {
        let counts = Counts {
            coalesced: 1,
            ..Counts::default()
        };
        state
            .usage
            .record(vehicle, answered_for(&r), spec.name, counts)
            .await;
        let meta = r.meta.get_or_insert_with(Meta::default);
        meta.upstream_calls = 0;
        meta.source = Some(Source::Coalesced);
    }
    r
}

/// A signal read answered from state Smartcar pushed by webhook, when the operator allows it and
/// the vehicle recorded every value recently enough; `raw: true` always goes to Smartcar.
async fn from_pushed(
    state: &AppState,
    spec: &'static ToolSpec,
    args: &Map<String, Value>,
) -> Option<ToolResult> {
    let max_age = state.serving.pushed_max_age;
    let raw = spec.wants_raw(args);
    if max_age.is_zero() || raw {
        return None;
    }
    let code = spec
        .params
        .iter()
        .find(|p| p.ty == crate::catalogue::ParamType::SignalCode)
        .and_then(|p| args.get(p.name)?.as_str());
    let one = match spec.output {
        crate::catalogue::Shape::Signal => true,
        crate::catalogue::Shape::SignalList => false,
        _ => return None,
    };
    let vehicle = spec.vehicle(args)?;
    let (signals, age) = state
        .store
        .fresh(
            vehicle,
            spec.user(args),
            if one { code } else { None },
            max_age,
        )
        .await?;
    // The pushed signal in the form Smartcar's read answers with, so it is shaped the same way.
    let resource = |s: &crate::store::PushedSignal| {
        let r = &s.raw;
        let mut attributes = json!({
            "code": r.get("code"),
            "name": r.get("name"),
            "group": r.get("group"),
            "status": r.get("status").cloned().unwrap_or(json!({ "value": "SUCCESS" })),
        });
        if let Some(body) = r.get("body") {
            attributes["body"] = body.clone();
        }
        // A clamped signal's times are the receipt time it counts as, not the claimed future.
        let meta = match (s.clamped, s.oem_updated_at) {
            (true, Some(t)) => {
                let t = t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                json!({ "oemUpdatedAt": t, "retrievedAt": t })
            }
            _ => json!({ "oemUpdatedAt": r.pointer("/meta/oemUpdatedAt"),
                         "retrievedAt": r.pointer("/meta/fetchedAt") }),
        };
        json!({ "id": r.get("code"), "type": "signal", "attributes": attributes, "meta": meta })
    };
    let doc = if one {
        json!({ "data": resource(&signals[0]) })
    } else {
        json!({ "data": signals.iter().map(resource).collect::<Vec<_>>() })
    };
    let shaped = shape::shape(spec, args, 200, Some(&doc)).ok()?;
    let mut structured = shaped.structured;
    structured["source"] = json!("webhook");
    structured["age_s"] = json!(age.as_secs());
    let mut lead = format!(
        "From Smartcar's webhook push: the vehicle recorded {} {} s ago; nothing was sent to Smartcar.",
        if one { "this value" } else { "these values" },
        age.as_secs()
    );
    if let Some(note) = privacy::apply(
        state.serving.location,
        spec.location_exempt,
        &mut structured,
    ) {
        lead = format!("{lead} {note}");
    }
    let (structured, json) = bound::serialize_within(structured, state.serving.max_result_bytes);
    let mut r = ToolResult::success_with_json(Some(lead), structured, json);
    r.meta = Some(Meta::served(Source::Webhook, Some(age.as_secs())));
    Some(r)
}

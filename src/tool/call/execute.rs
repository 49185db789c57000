//! Sending: the vehicle's lane, its daily allowance, the request with the retry policy, usage
//! counted, and the answer shaped, privacy applied and bounded.

use serde_json::{Map, Value};

use crate::catalogue::{Api, Shape, ToolSpec};
use crate::tool::bound;
use crate::tool::error::ToolError;
use crate::tool::meta::Meta;
use crate::tool::privacy;
use crate::tool::result::{ToolResult, json_text};
use crate::tool::shape;
use crate::tool::state::AppState;
use crate::tool::usage::Counts;
use crate::upstream::{Failure, Outcome};

use super::join;

/// A lane of the vehicle, then its daily allowance (one atomic reservation, `tool::cap`), then
/// the call itself, whose cost settles the reservation.
pub(super) async fn send(
    state: &AppState,
    spec: &'static ToolSpec,
    args: &Map<String, Value>,
) -> ToolResult {
    let vehicle = spec.vehicle(args);
    let _lane = match vehicle {
        Some(v) => match state.traffic.lane(v).await {
            Ok(permit) => Some(permit),
            Err(e) => return e.into_result(spec.name),
        },
        None => None,
    };
    let reservation = match vehicle {
        Some(v) => match state.cap.reserve(v).await {
            Err(e) => return e.into_result(spec.name),
            Ok(r) => r,
        },
        None => None,
    };
    let r = execute(state, spec, args).await;
    if let Some(reservation) = reservation {
        reservation
            .settle(upstream_calls(&r), answered_for(&r))
            .await;
    }
    r
}

/// Sends a validated call to Smartcar, counts it and shapes the answer.
pub async fn execute(state: &AppState, spec: &ToolSpec, args: &Map<String, Value>) -> ToolResult {
    let req = state.exec.request(spec, args);
    let compatibility = spec.api == Api::Compatibility;
    if compatibility && let Some((status, body)) = state.cache.compatibility(&req.url) {
        let mut result = finish(
            state,
            spec,
            shape::shape(spec, args, status, body.as_deref()),
        );
        result.meta = Some(Meta {
            compatibility_cached: true,
            ..Meta::default()
        });
        let counts = Counts {
            cached: 1,
            ..Counts::default()
        };
        state.usage.record(None, true, spec.name, counts).await;
        return result;
    }
    let mut outcome = state.exec.send(spec, &req).await;
    let counts = Counts {
        upstream_calls: outcome.attempts.into(),
        rate_limited: rate_limited(&outcome),
        ..Counts::default()
    };
    let answered = match &outcome.result {
        Ok(_) | Err(Failure::BadResponse { .. }) => true,
        Err(Failure::Upstream(e)) => !matches!(e.status, 0 | 404),
        Err(Failure::Auth(_)) => false,
    };
    state
        .usage
        .record(spec.vehicle(args), answered, spec.name, counts)
        .await;
    if compatibility && let Ok(ok) = &outcome.result {
        state
            .cache
            .keep_compatibility(&req.url, ok.status, ok.body.clone());
    }
    let shaped = match &mut outcome.result {
        // Smartcar answers 409 when the subscription exists: the state the caller asked for.
        Err(Failure::Upstream(e)) if spec.output == Shape::Subscription && e.status == 409 => {
            Ok(shape::already_subscribed(
                spec,
                args,
                e.detail.as_deref().unwrap_or("the subscription exists"),
            ))
        }
        Err(f) => Err(ToolError::from(f.clone())),
        Ok(ok) => {
            // Taken, not copied: what is left of the outcome is only its metadata.
            let mut body = ok.body.take();
            // Redaction comes first so neither the compact nor the raw form can carry a secret.
            if let Some(b) = &mut body {
                shape::redact(b, spec.redact);
            }
            shape::shape(spec, args, ok.status, body.as_ref())
        }
    };
    let mut result = finish(state, spec, shaped);
    result.meta = Some(Meta::of(&outcome));
    result
}

/// A shaped answer (or its error) as the result: location privacy applied, bounded in size.
fn finish(
    state: &AppState,
    spec: &ToolSpec,
    shaped: Result<shape::Shaped, ToolError>,
) -> ToolResult {
    // Location privacy holds for every answer, compact or raw, success or error.
    let location = state.serving.location;
    match shaped {
        Ok(mut shaped) => {
            let note = privacy::apply(location, spec.location_exempt, &mut shaped.structured);
            let (structured, json) =
                bound::serialize_within(shaped.structured, state.serving.max_result_bytes);
            ToolResult::success_with_json(join(shaped.sentence, note), structured, json)
        }
        Err(e) => {
            let mut r = e.into_result(spec.name);
            if let Some(note) = privacy::apply(location, spec.location_exempt, &mut r.structured) {
                r.json = json_text(&r.structured);
                r.lead = join(r.lead, Some(note));
            }
            r
        }
    }
}

/// The 429 answers a call met: retried ones and a final one.
fn rate_limited(outcome: &Outcome) -> u64 {
    let retried = outcome
        .retries
        .iter()
        .filter(|r| matches!(r.cause, crate::upstream::RetryCause::RateLimited { .. }))
        .count() as u64;
    let last =
        matches!(&outcome.result, Err(crate::upstream::Failure::Upstream(e)) if e.status == 429);
    retried + u64::from(last)
}

/// The upstream calls a result cost, as its metadata says.
pub(super) fn upstream_calls(r: &ToolResult) -> u64 {
    r.meta.as_ref().map_or(0, |m| m.upstream_calls)
}

/// Whether Smartcar answered for the vehicle a result names: anything but a 404, no answer, or
/// a refusal made here.
pub(super) fn answered_for(r: &ToolResult) -> bool {
    !r.is_error
        || !matches!(
            r.structured["error"]["status"].as_u64(),
            None | Some(0 | 404)
        )
}

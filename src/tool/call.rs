//! The one call pipeline, used by the stdio server, the HTTP server and the `call` command:
//! validate -> dry run, or confirm -> (reads: cache, coalesce; writes: audit) -> daily guard ->
//! vehicle lane -> execute -> shape -> bound -> result, counting every upstream call.
//!
//! How a human is asked differs by front end (MCP elicitation in either lifecycle, a terminal
//! prompt), so it is injected as a `Confirm`; everything else happens here, once.

use std::future::Future;

use serde_json::{Map, Value, json};

use super::arguments;
use super::bound;
use super::error::ToolError;
use super::privacy;
use super::result::{ToolResult, json_text};
use super::shape;
use super::state::AppState;
use super::usage::Counts;
use crate::catalogue::{Api, Shape, ToolSpec};
use crate::settings::ConfirmMode;
use crate::store::{AuditState, Confirmation, Entry, Finish};
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

/// Who asked for a call, as the audit log records it.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// `stdio`, `http` or `cli`.
    pub transport: &'static str,
    /// The MCP client's name and version, where it said.
    pub client: Option<String>,
    /// The MCP session, where there is one.
    pub session: Option<String>,
    /// The verified OAuth caller, when HTTP serving is a resource server (`--oauth-issuer`).
    pub principal: Option<std::sync::Arc<crate::oauth::Principal>>,
}

impl Caller {
    pub fn describe(&self) -> String {
        let mut s = self.transport.to_string();
        if let Some(c) = &self.client {
            s.push_str(&format!(" client={c}"));
        }
        if let Some(id) = &self.session {
            s.push_str(&format!(" session={id}"));
        }
        s
    }
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
    caller: &Caller,
) -> Step<C::Ask> {
    // An OAuth caller with one Smartcar user may leave `user_id` out, even where it is required.
    let filled = super::tenancy::fill_in(spec, raw, caller.principal.as_deref());
    let raw = filled.as_ref().or(raw);
    let mut args = match validate(spec, raw) {
        Ok(a) => a,
        Err(e) => return Step::Done(e.into_result(spec.name)),
    };
    if let Err(e) = super::tenancy::admit(state, spec, &mut args, caller.principal.as_deref()).await
    {
        return Step::Done(e.into_result(spec.name));
    }
    if let Err(e) = privacy::refuse(state.serving.location, spec, &args) {
        return Step::Done(e.into_result(spec.name));
    }
    let who = caller.describe();
    let entry = |confirmation: Confirmation| Entry {
        tool: spec.name,
        arguments: &args,
        vehicle: spec.vehicle(&args),
        user: spec.user(&args),
        caller: &who,
        principal: caller.principal.as_ref().map(|p| p.subject.as_str()),
        principal_issuer: caller.principal.as_ref().map(|p| p.issuer.as_str()),
        confirmation,
    };
    if state.serving.dry_run {
        note(
            state,
            spec,
            &entry(Confirmation::NotAsked),
            AuditState::DryRun,
            None,
        )
        .await;
        return Step::Done(dry_run(&state.exec, spec, &args));
    }
    let confirmation = if !spec.confirm {
        Confirmation::NotRequired
    } else if state.serving.confirm == ConfirmMode::Off {
        Confirmation::Off
    } else {
        let q = question(spec, &args);
        match confirm.confirm(spec, &q, &args).await {
            Ok(Verdict::Go) => Confirmation::Confirmed,
            Ok(Verdict::Ask(ask)) => return Step::Ask(ask),
            Err(e) => {
                note(
                    state,
                    spec,
                    &entry(Confirmation::Refused),
                    AuditState::Refused,
                    Some(&e.to_string()),
                )
                .await;
                return Step::Done(e.into_result(spec.name));
            }
        }
    };
    let r = if spec.is_read() {
        read(state, spec, &args).await
    } else {
        write(state, spec, &args, &entry(confirmation)).await
    };
    if !r.is_error
        && matches!(
            spec.output,
            crate::catalogue::Shape::Connection | crate::catalogue::Shape::ConnectionList
        )
    {
        state.seen.record(&r.structured);
    }
    Step::Done(r)
}

/// Records a write that was never sent (reads are not audited).
async fn note(
    state: &AppState,
    spec: &ToolSpec,
    entry: &Entry<'_>,
    what: AuditState,
    why: Option<&str>,
) {
    if !spec.is_read()
        && let Err(e) = state.store.note(entry, what, why).await
    {
        tracing::warn!(tool = spec.name, "not recorded in the audit log: {e}");
    }
}

/// Identical reads (same credentials, tool and canonical arguments) share this key.
fn read_key(state: &AppState, spec: &ToolSpec, args: &Map<String, Value>) -> String {
    let client = state.exec.settings().client_id.as_deref().unwrap_or("");
    // Serialized from the map itself: the same text as `Value::Object`, without copying it.
    let args = serde_json::to_string(args).unwrap_or_default();
    format!("{client}\n{}\n{args}", spec.name)
}

fn set_meta(r: &mut ToolResult, key: &str, value: Value) {
    r.meta
        .get_or_insert_with(Map::new)
        .insert(key.into(), value);
}

/// A read: from the cache when allowed, else shared with an identical read in flight, else sent.
async fn read(state: &AppState, spec: &'static ToolSpec, args: &Map<String, Value>) -> ToolResult {
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
    if let Some((mut r, age)) = state.traffic.cached(&key) {
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
        r.meta = None;
        set_meta(&mut r, "smartcar-mcp/upstream_calls", json!(0));
        set_meta(&mut r, "smartcar-mcp/source", json!("cache"));
        set_meta(&mut r, "smartcar-mcp/age_s", json!(age.as_secs()));
        return r;
    }
    let (mut r, shared) = state
        .traffic
        .coalesce(&key, async {
            let r = send(state, spec, args).await;
            state.traffic.store(&key, vehicle, &r);
            r
        })
        .await;
    if shared {
        let counts = Counts {
            coalesced: 1,
            ..Counts::default()
        };
        state
            .usage
            .record(vehicle, answered_for(&r), spec.name, counts)
            .await;
        set_meta(&mut r, "smartcar-mcp/upstream_calls", json!(0));
        set_meta(&mut r, "smartcar-mcp/source", json!("coalesced"));
    }
    r
}

/// Whether Smartcar answered for the vehicle a result names: anything but a 404, no answer, or
/// a refusal made here.
fn answered_for(r: &ToolResult) -> bool {
    !r.is_error
        || !matches!(
            r.structured["error"]["status"].as_u64(),
            None | Some(0 | 404)
        )
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
    if let Some(note) = privacy::apply(state.serving.location, spec.name, &mut structured) {
        lead = format!("{lead} {note}");
    }
    let (structured, json) = bound::serialize_within(structured, state.serving.max_result_bytes);
    let mut r = ToolResult::success_with_json(Some(lead), structured, json);
    set_meta(&mut r, "smartcar-mcp/upstream_calls", json!(0));
    set_meta(&mut r, "smartcar-mcp/source", json!("webhook"));
    set_meta(&mut r, "smartcar-mcp/age_s", json!(age.as_secs()));
    Some(r)
}

/// A command or deletion: on record before it leaves, the vehicle's cached reads dropped.
async fn write(
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
    state.traffic.invalidate(spec.vehicle(args));
    state.store.mark_stale(spec.vehicle(args)).await;
    if matches!(spec.name, "delete_connection" | "delete_user") {
        state.owners.forget();
    }
    let mut r = send(state, spec, args).await;
    {
        let error = &r.structured["error"];
        let status = error["status"]
            .as_u64()
            .or_else(|| r.meta.as_ref()?.get("smartcar-mcp/http_status")?.as_u64())
            .map(|s| s as u16);
        let request_id = error["request_id"]
            .as_str()
            .or_else(|| r.meta.as_ref()?.get("smartcar-mcp/request_id")?.as_str());
        let outcome = if r.is_error {
            r.error_type.as_ref().map(super::result::ErrorKind::as_str)
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
        super::verify::check(spec.name),
        crate::catalogue::tool("get_signal"),
    ) else {
        return;
    };
    let mut report = json!({ "signal": signal, "expected": check.expected(args) });
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
        let mut read_args = Map::new();
        for (k, v) in [
            ("vehicle_id", spec.vehicle(args)),
            ("user_id", spec.user(args)),
        ] {
            if let Some(v) = v {
                read_args.insert(k.into(), json!(v));
            }
        }
        read_args.insert("signal_code".into(), json!(signal));
        let read = send(state, read_spec, &read_args).await;
        let calls = read
            .meta
            .as_ref()
            .and_then(|m| m.get("smartcar-mcp/upstream_calls")?.as_u64())
            .unwrap_or(0);
        let before = r
            .meta
            .as_ref()
            .and_then(|m| m.get("smartcar-mcp/upstream_calls")?.as_u64())
            .unwrap_or(0);
        set_meta(r, "smartcar-mcp/upstream_calls", json!(before + calls));
        if read.is_error {
            report["read"] = Value::Null;
            report["error"] = read.structured["error"].clone();
            let why = read.lead.unwrap_or_default();
            (
                false,
                format!("Not verified: reading {signal} failed ({why})."),
            )
        } else {
            let (got, same) = check.compare(&read.structured, args);
            report["read"] = got.clone();
            let sentence = if same {
                format!("Verified: {signal} reads {got}.")
            } else {
                format!(
                    "Not verified: {signal} reads {got}, not {}; the command may not have taken effect.",
                    check.expected(args)
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

/// A lane of the vehicle, then its daily allowance (one atomic reservation, `tool::cap`), then
/// the call itself, whose cost settles the reservation.
async fn send(state: &AppState, spec: &'static ToolSpec, args: &Map<String, Value>) -> ToolResult {
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
        let attempts = r
            .meta
            .as_ref()
            .and_then(|m| m.get("smartcar-mcp/upstream_calls")?.as_u64())
            .unwrap_or(0);
        reservation.settle(attempts, answered_for(&r)).await;
    }
    r
}

/// The longest one call of `spec` may take with every wait it can meet: the human's answer, the
/// vehicle's lane, each attempt and retry within the budget, and the verifying read. Front ends
/// end a call still running after this, so no request (and no session it keeps open) lives on.
pub fn lifetime(state: &AppState, spec: &ToolSpec) -> std::time::Duration {
    const ATTEMPTS: u32 = 4;
    let up = state.exec.settings();
    let serving = &state.serving;
    let per_try = |t| up.connect_timeout + t;
    let timeout = if spec.is_read() {
        up.read_timeout
    } else {
        up.command_timeout
    };
    let sending = per_try(timeout) * ATTEMPTS + up.retry_budget + up.max_retry_after;
    let verifying = if serving.verify_commands && !spec.is_read() {
        serving.verify_delay
            + per_try(up.read_timeout) * ATTEMPTS
            + up.retry_budget
            + up.max_retry_after
    } else {
        std::time::Duration::ZERO
    };
    // The token fetch and the rest of the work, with room to spare.
    let slack = std::time::Duration::from_secs(30);
    serving.confirm_ttl + serving.vehicle_wait + sending + verifying + slack
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

/// What a result says of its upstream traffic: the calls it cost, the retries, Smartcar's id.
fn outcome_meta(outcome: &Outcome) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(
        "smartcar-mcp/upstream_calls".into(),
        json!(outcome.attempts),
    );
    if !outcome.retries.is_empty() {
        let list: Vec<Value> = outcome
            .retries
            .iter()
            .map(|r| json!({ "attempt": r.attempt, "reason": r.cause.to_string(), "waited_ms": r.waited_ms }))
            .collect();
        m.insert("smartcar-mcp/retries".into(), Value::Array(list));
        m.insert("smartcar-mcp/attempts".into(), json!(outcome.attempts));
    }
    if let Ok(ok) = &outcome.result {
        m.insert("smartcar-mcp/http_status".into(), json!(ok.status));
        if let Some(id) = &ok.request_id {
            m.insert("smartcar-mcp/request_id".into(), json!(id));
        }
    }
    m
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

/// Two optional sentences as one.
fn join(first: Option<String>, second: Option<String>) -> Option<String> {
    match (first, second) {
        (Some(a), Some(b)) => Some(format!("{a} {b}")),
        (a, b) => a.or(b),
    }
}

/// Sends a validated call to Smartcar, counts it and shapes the answer.
pub async fn execute(state: &AppState, spec: &ToolSpec, args: &Map<String, Value>) -> ToolResult {
    let req = state.exec.request(spec, args);
    let compatibility = spec.api == Api::Compatibility;
    if compatibility && let Some((status, body)) = state.cached_compatibility(&req.url) {
        let mut result = finish(state, spec, shape::shape(spec, args, status, body.as_ref()));
        let mut m = Map::new();
        m.insert("smartcar-mcp/cached".into(), json!(true));
        m.insert("smartcar-mcp/upstream_calls".into(), json!(0));
        result.meta = Some(m);
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
        state.cache_compatibility(&req.url, ok.status, ok.body.clone());
    }
    let shaped = match &mut outcome.result {
        // Smartcar answers 409 when the subscription exists: the state the caller asked for.
        Err(Failure::Upstream(e)) if spec.output == Shape::Subscription && e.status == 409 => {
            Ok(shape::already_subscribed(
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
    result.meta = Some(outcome_meta(&outcome));
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
            let note = privacy::apply(location, spec.name, &mut shaped.structured);
            let (structured, json) =
                bound::serialize_within(shaped.structured, state.serving.max_result_bytes);
            ToolResult::success_with_json(join(shaped.sentence, note), structured, json)
        }
        Err(e) => {
            let mut r = e.into_result(spec.name);
            if let Some(note) = privacy::apply(location, spec.name, &mut r.structured) {
                r.json = json_text(&r.structured);
                r.lead = join(r.lead, Some(note));
            }
            r
        }
    }
}

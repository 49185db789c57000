//! The one call pipeline, used by the stdio server, the HTTP server and the `call` command:
//! validate -> dry run, or confirm -> (reads: cache, coalesce; writes: audit) -> daily guard ->
//! vehicle lane -> execute -> shape -> bound -> result, counting every upstream call.
//!
//! How a human is asked differs by front end (MCP elicitation in either lifecycle, a terminal
//! prompt), so it is injected as a `Confirm`; everything else happens here, once. This file is
//! the pipeline's order; the read path (`read`), the write path (`write`) and sending
//! (`execute`) are its steps.

mod execute;
mod read;
mod write;

pub use execute::execute;

use std::future::Future;

use serde_json::{Map, Value, json};

use super::arguments;
use super::error::ToolError;
use super::privacy;
use super::result::ToolResult;
use super::shape;
use super::state::AppState;
use crate::catalogue::ToolSpec;
use crate::settings::ConfirmMode;
use crate::store::{AuditState, Confirmation, Entry};
use crate::upstream::Executor;

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
    // Only writes are audited: a read never builds the caller's description.
    let who = if spec.is_read() {
        String::new()
    } else {
        caller.describe()
    };
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
        read::read(state, spec, &args).await
    } else {
        write::write(state, spec, &args, &entry(confirmation)).await
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

/// Two optional sentences as one.
fn join(first: Option<String>, second: Option<String>) -> Option<String> {
    match (first, second) {
        (Some(a), Some(b)) => Some(format!("{a} {b}")),
        (a, b) => a.or(b),
    }
}

//! Confirmation by MCP elicitation, in both lifecycles: a form elicitation over the session for
//! handshake revisions, an input-required round with a sealed request state for 2026-07-28.

use std::time::Duration;

use rmcp::RoleServer;
use rmcp::model::{
    CallToolRequestParams, ElicitRequest, ElicitRequestParams, ElicitResult, ElicitationAction,
    ElicitationSchema, InputRequest, InputRequests, InputRequiredResult, JsonObject,
    ProtocolVersion, RequestStateCodec, SealOptions,
};
use rmcp::service::RequestContext;

use crate::catalogue::ToolSpec;
use crate::secret::Secret;
use crate::tool::{Confirm, ToolError, Verdict};

const CONFIRM_KEY: &str = "confirm";

/// Asks the human behind the MCP client of one `tools/call`.
pub struct Elicit<'a> {
    pub ctx: &'a RequestContext<RoleServer>,
    pub request: &'a CallToolRequestParams,
    pub sealer: &'a RequestStateCodec,
    pub ttl: Duration,
    /// Where answers already taken are remembered: each is accepted once, across replicas
    /// sharing the store and across restarts on one SQLite file.
    pub store: &'a crate::store::Store,
    /// The OAuth caller (issuer + subject) the answer must come from; empty without OAuth.
    pub bound_to: String,
}

impl Confirm for Elicit<'_> {
    type Ask = InputRequiredResult;

    async fn confirm(
        &self,
        spec: &'static ToolSpec,
        question: &str,
        args: &JsonObject,
    ) -> Result<Verdict<InputRequiredResult>, ToolError> {
        // The sealed state binds the answer to this tool, these exact canonical arguments and,
        // over OAuth, this caller: replayed under another caller's token it does not open.
        let mut bound = format!("{}\n{}", spec.name, serde_json::Value::Object(args.clone()));
        if !self.bound_to.is_empty() {
            bound = format!("{}\n{bound}", self.bound_to);
        }
        if self.ctx.protocol_version() == Some(ProtocolVersion::V_2026_07_28) {
            return self.input_round(spec, question, &bound).await;
        }
        // Handshake revisions: only what the client declared in `initialize` counts. A request
        // served without a session (stateless HTTP) has capabilities rmcp made up as empty and no
        // channel back to the client, so `_meta` claiming elicitation there is not believed:
        // asking would wait out the TTL for an answer that cannot come.
        let can_elicit = self
            .ctx
            .peer
            .peer_info()
            .is_some_and(|i| i.capabilities.elicitation.is_some());
        if !can_elicit {
            return Err(cannot_ask(question));
        }
        let answer = self
            .ctx
            .peer
            .create_elicitation_with_timeout(form(question), Some(self.ttl))
            .await;
        match answer {
            Ok(r) => accepted(question, Some(r)),
            Err(e) => {
                tracing::info!(tool = spec.name, "confirmation not obtained: {e}");
                Err(not_confirmed(question, "the question went unanswered"))
            }
        }
    }
}

impl Elicit<'_> {
    /// 2026-07-28: the first call returns the question with a sealed state; the client calls
    /// again with the answer and that state, which must open for these exact arguments.
    async fn input_round(
        &self,
        spec: &ToolSpec,
        question: &str,
        bound: &str,
    ) -> Result<Verdict<InputRequiredResult>, ToolError> {
        if let Some(answer) = self
            .request
            .input_responses
            .as_ref()
            .and_then(|r| r.get(CONFIRM_KEY))
        {
            let state = self.request.request_state.as_deref().unwrap_or("");
            if self.sealer.open_with(state, bound.as_bytes()).is_err() {
                return Err(not_confirmed(
                    question,
                    "the confirmation expired or was given for other arguments",
                ));
            }
            // The sealed state opened, so it is one this fleet sealed (bounded, no secret in it):
            // it is its own key. Remembered for the TTL, after which it no longer opens anyway.
            match self.store.redeem(state, self.ttl).await {
                Ok(true) => {}
                Ok(false) => {
                    return Err(not_confirmed(
                        question,
                        "this confirmation was already used; ask again",
                    ));
                }
                Err(e) => {
                    tracing::error!(tool = spec.name, "{e}");
                    return Err(not_confirmed(
                        question,
                        "the confirmation could not be checked against earlier ones",
                    ));
                }
            }
            return accepted(
                question,
                serde_json::from_value::<ElicitResult>(answer.clone()).ok(),
            );
        }
        let can_elicit = self
            .ctx
            .client_capabilities()
            .is_some_and(|c| c.elicitation.is_some());
        if !can_elicit {
            return Err(cannot_ask(question));
        }
        let sealed = self.sealer.seal_with(
            spec.name.as_bytes(),
            &SealOptions::new()
                .associated_data(bound.as_bytes())
                .ttl(self.ttl),
        );
        let mut asks = InputRequests::new();
        asks.insert(
            CONFIRM_KEY.to_string(),
            InputRequest::Elicitation(ElicitRequest::new(form(question))),
        );
        Ok(Verdict::Ask(InputRequiredResult::new(
            Some(asks),
            Some(sealed),
        )))
    }
}

/// The codec that seals confirmation rounds. Replicas behind a load balancer share
/// `SMARTCAR_MCP_CONFIRM_KEY`, so an answer may reach another replica than the one that asked;
/// without it, a fresh random key per process means a confirmation never outlives its server.
pub fn sealer(shared_key: Option<&Secret>) -> anyhow::Result<RequestStateCodec> {
    let key = match shared_key {
        Some(k) => k.expose().as_bytes().to_vec(),
        None => {
            let mut k = vec![0u8; 32];
            getrandom::fill(&mut k)
                .map_err(|e| anyhow::anyhow!("no OS randomness for the confirmation key: {e}"))?;
            k
        }
    };
    if key.len() < RequestStateCodec::MIN_KEY_LENGTH {
        anyhow::bail!(
            "SMARTCAR_MCP_CONFIRM_KEY must be at least {} bytes (for example the output of `openssl rand -hex 32`)",
            RequestStateCodec::MIN_KEY_LENGTH
        );
    }
    // The error can only be about the key's length, checked above; never echo the key.
    RequestStateCodec::try_new(key)
        .map_err(|_| anyhow::anyhow!("the confirmation sealing key was refused"))
}

fn form(question: &str) -> ElicitRequestParams {
    ElicitRequestParams::FormElicitationParams {
        meta: None,
        message: format!("{question} Answer yes to let the server send it to the vehicle now."),
        requested_schema: ElicitationSchema::builder()
            .required_bool(CONFIRM_KEY)
            .build()
            .expect("a one-boolean schema is valid"),
    }
}

fn accepted<A>(question: &str, answer: Option<ElicitResult>) -> Result<Verdict<A>, ToolError> {
    let Some(answer) = answer else {
        return Err(not_confirmed(question, "the answer could not be read"));
    };
    let yes = answer.action == ElicitationAction::Accept
        && answer
            .content
            .as_ref()
            .and_then(|c| c.get(CONFIRM_KEY))
            .and_then(serde_json::Value::as_bool)
            == Some(true);
    if yes {
        return Ok(Verdict::Go);
    }
    let why = match answer.action {
        ElicitationAction::Accept => "the human answered no",
        ElicitationAction::Decline => "the human declined",
        _ => "the human cancelled",
    };
    Err(not_confirmed(question, why))
}

fn not_confirmed(question: &str, why: &'static str) -> ToolError {
    ToolError::NotConfirmed {
        question: question.to_string(),
        why,
    }
}

fn cannot_ask(question: &str) -> ToolError {
    ToolError::ConfirmationUnavailable {
        question: question.to_string(),
    }
}

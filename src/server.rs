//! The MCP side: an rmcp `ServerHandler` over the generated tool table. The only hand-written
//! server file that imports rmcp.

use std::sync::Arc;

use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock,
    ElicitRequest, ElicitRequestParams, ElicitResult, ElicitationAction, ElicitationSchema,
    Implementation, InputRequest, InputRequests, InputRequiredResult, JsonObject, ListToolsResult,
    MetaObject, PaginatedRequestParams, ProtocolVersion, RequestStateCodec, SealOptions,
    ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};

use crate::arguments::SCHEMAS;
use crate::catalogue::{TOOLS, ToolSpec, tool_index};
use crate::config::{ConfirmMode, Secret, Settings};
use crate::dispatch::{self, ToolResult};
use crate::executor::Executor;

/// State every session and request shares: one HTTP client, one token cache, the tool list.
pub struct Shared {
    pub exec: Executor,
    enabled: Vec<bool>,
    tools: Vec<Tool>,
    /// Seals the state of a confirmation round so an answer applies to those exact arguments.
    sealer: RequestStateCodec,
}

impl Shared {
    pub fn new(settings: Settings, enabled: &[usize]) -> anyhow::Result<Arc<Self>> {
        Self::with_executor(Executor::new(Arc::new(settings))?, enabled)
    }

    pub fn with_executor(exec: Executor, enabled: &[usize]) -> anyhow::Result<Arc<Self>> {
        // Compiled beside the serving thread, so the first tools/list is not kept waiting; a call
        // arriving first simply waits for its own tool's validator.
        let warm: Vec<usize> = enabled.to_vec();
        std::thread::spawn(move || crate::arguments::warm_up(&warm));
        let mut on = vec![false; TOOLS.len()];
        for i in enabled {
            on[*i] = true;
        }
        let tools = enabled.iter().map(|i| mcp_tool(*i)).collect();
        let sealer = sealer(exec.settings().confirm_key.as_ref())?;
        Ok(Arc::new(Shared {
            exec,
            enabled: on,
            tools,
            sealer,
        }))
    }

    fn lookup(&self, name: &str) -> Option<usize> {
        tool_index(name).filter(|i| self.enabled[*i])
    }

    /// How many tools this server lists.
    pub fn tool_count(&self) -> usize {
        self.tools.len()
    }
}

/// The codec that seals confirmation rounds. Replicas behind a load balancer share
/// `SMARTCAR_MCP_CONFIRM_KEY`, so an answer may reach another replica than the one that asked;
/// without it, a fresh random key per process means a confirmation never outlives its server.
fn sealer(shared_key: Option<&Secret>) -> anyhow::Result<RequestStateCodec> {
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

/// The tools/list entry of a catalogue tool.
pub fn mcp_tool(index: usize) -> Tool {
    let spec: &ToolSpec = &TOOLS[index];
    let a = spec.annotations;
    let schema: JsonObject = SCHEMAS[index].clone();
    let output: JsonObject = crate::catalogue::OUTPUT_SCHEMAS[index].clone();
    Tool::new(spec.name, spec.description, Arc::new(schema))
        .with_title(spec.title)
        .with_raw_output_schema(Arc::new(output))
        .with_annotations(
            ToolAnnotations::with_title(spec.title)
                .read_only(a.read_only)
                .destructive(a.destructive)
                .idempotent(a.idempotent)
                .open_world(a.open_world),
        )
}

/// The tools/list JSON of these tools, as clients see it.
pub fn tools_json(enabled: &[usize]) -> serde_json::Value {
    serde_json::to_value(enabled.iter().map(|i| mcp_tool(*i)).collect::<Vec<_>>())
        .expect("tools serialize")
}

fn to_call_result(r: ToolResult) -> CallToolResult {
    let content = r.text.into_iter().map(ContentBlock::text).collect();
    let mut out = if r.is_error {
        CallToolResult::error(content)
    } else {
        CallToolResult::success(content)
    };
    out.structured_content = Some(r.structured);
    out.meta = r.meta.map(MetaObject);
    out
}

#[derive(Clone)]
pub struct SmartcarServer {
    shared: Arc<Shared>,
}

impl SmartcarServer {
    pub fn new(shared: Arc<Shared>) -> Self {
        SmartcarServer { shared }
    }

    /// Decides whether a confirmed tool may run: `Ok(None)` to run, `Ok(Some(..))` to ask the
    /// human first (2026-07-28 input-required round), `Err` when it must not run.
    async fn confirmation(
        &self,
        spec: &ToolSpec,
        args: &JsonObject,
        request: &CallToolRequestParams,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<Option<InputRequiredResult>, ToolResult> {
        let settings = self.shared.exec.settings();
        if !spec.confirm || settings.confirm == ConfirmMode::Off {
            return Ok(None);
        }
        let question = dispatch::confirmation_question(spec, args);
        // The sealed state binds the answer to this tool and these exact canonical arguments.
        let bound = format!("{}\n{}", spec.name, serde_json::Value::Object(args.clone()));
        let modern = ctx.protocol_version() == Some(ProtocolVersion::V_2026_07_28);
        if modern {
            let can_elicit = ctx
                .client_capabilities()
                .is_some_and(|c| c.elicitation.is_some());
            if let Some(answer) = request
                .input_responses
                .as_ref()
                .and_then(|r| r.get(CONFIRM_KEY))
            {
                let state = request.request_state.as_deref().unwrap_or("");
                let opened = self.shared.sealer.open_with(state, bound.as_bytes());
                if opened.is_err() {
                    return Err(not_confirmed(
                        spec,
                        &question,
                        "the confirmation expired or was given for other arguments",
                    ));
                }
                return accepted(
                    spec,
                    &question,
                    serde_json::from_value::<ElicitResult>(answer.clone()).ok(),
                );
            }
            if !can_elicit {
                return Err(cannot_ask(spec, &question));
            }
            let sealed = self.shared.sealer.seal_with(
                spec.name.as_bytes(),
                &SealOptions::new()
                    .associated_data(bound.as_bytes())
                    .ttl(settings.confirm_ttl),
            );
            let mut asks = InputRequests::new();
            asks.insert(
                CONFIRM_KEY.to_string(),
                InputRequest::Elicitation(ElicitRequest::new(form(&question))),
            );
            return Ok(Some(InputRequiredResult::new(Some(asks), Some(sealed))));
        }
        // Handshake revisions: only what the client declared in `initialize` counts. A request
        // served without a session (stateless HTTP) has capabilities rmcp made up as empty and no
        // channel back to the client, so `_meta` claiming elicitation there is not believed:
        // asking would wait out the TTL for an answer that cannot come.
        let can_elicit = ctx
            .peer
            .peer_info()
            .is_some_and(|i| i.capabilities.elicitation.is_some());
        if !can_elicit {
            return Err(cannot_ask(spec, &question));
        }
        let answer = ctx
            .peer
            .create_elicitation_with_timeout(form(&question), Some(settings.confirm_ttl))
            .await;
        match answer {
            Ok(r) => accepted(spec, &question, Some(r)),
            Err(e) => {
                tracing::info!(tool = spec.name, "confirmation not obtained: {e}");
                Err(not_confirmed(
                    spec,
                    &question,
                    "the question went unanswered",
                ))
            }
        }
    }
}

const CONFIRM_KEY: &str = "confirm";

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

fn accepted(
    spec: &ToolSpec,
    question: &str,
    answer: Option<ElicitResult>,
) -> Result<Option<InputRequiredResult>, ToolResult> {
    let Some(answer) = answer else {
        return Err(not_confirmed(
            spec,
            question,
            "the answer could not be read",
        ));
    };
    let yes = answer.action == ElicitationAction::Accept
        && answer
            .content
            .as_ref()
            .and_then(|c| c.get(CONFIRM_KEY))
            .and_then(serde_json::Value::as_bool)
            == Some(true);
    if yes {
        Ok(None)
    } else {
        let why = match answer.action {
            ElicitationAction::Accept => "the human answered no",
            ElicitationAction::Decline => "the human declined",
            _ => "the human cancelled",
        };
        Err(not_confirmed(spec, question, why))
    }
}

fn not_confirmed(spec: &ToolSpec, question: &str, why: &str) -> ToolResult {
    ToolResult::local_error(
        format!(
            "{} was not confirmed ({why}), so nothing was sent to the vehicle.",
            spec.name
        ),
        serde_json::json!({
            "type": "NOT_CONFIRMED",
            "detail": format!("{question} {why}"),
            "hint": "Do not retry unless the user asks again.",
            "retriable": false,
        }),
    )
}

fn cannot_ask(spec: &ToolSpec, question: &str) -> ToolResult {
    ToolResult::local_error(
        format!(
            "{} needs a human's confirmation (\"{question}\") and this client cannot ask for it (no MCP elicitation), so nothing was sent. The operator can turn confirmation off with --confirm off or SMARTCAR_CONFIRM=off.",
            spec.name
        ),
        serde_json::json!({
            "type": "CONFIRMATION_REQUIRED",
            "detail": format!("{question} needs confirmation by a human through MCP elicitation, which this client does not support"),
            "hint": "Use a client that supports elicitation, or ask the operator to set SMARTCAR_CONFIRM=off.",
            "retriable": false,
        }),
    )
}

impl ServerHandler for SmartcarServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                env!("CARGO_PKG_NAME"),
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(
                "Smartcar vehicle tools. Start with list_connections to find vehicle_id and user_id, \
                 read values with get_signal (Smartcar v3 codes such as tractionbattery-stateofcharge) \
                 or get_signals, and confirm a command's effect by reading the matching signal.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        // The catalogue is compiled in, so any client may cache the list for a long time.
        Ok(ListToolsResult::with_all_items(self.shared.tools.clone())
            .with_ttl_ms(3_600_000)
            .with_cache_scope(CacheScope::Public))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        // The prepared entries share their schemas through `Arc`, so this clone is cheap; HTTP
        // header validation asks for it on every call.
        self.shared.lookup(name)?;
        self.shared.tools.iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let Some(index) = self.shared.lookup(&request.name) else {
            return Err(ErrorData::invalid_params(
                format!("tool not found: {}", request.name),
                None,
            ));
        };
        let spec = &TOOLS[index];
        let args = match dispatch::validate(index, request.arguments.as_ref()) {
            Ok(a) => a,
            Err(r) => return Ok(to_call_result(r).into()),
        };
        if self.shared.exec.settings().dry_run {
            return Ok(to_call_result(dispatch::dry_run(&self.shared.exec, index, &args)).into());
        }
        match self.confirmation(spec, &args, &request, &context).await {
            Ok(None) => {}
            Ok(Some(ask)) => return Ok(ask.into()),
            Err(r) => return Ok(to_call_result(r).into()),
        }
        let exec = &self.shared.exec;
        tokio::select! {
            r = dispatch::execute(exec, index, &args) => Ok(to_call_result(r).into()),
            _ = context.ct.cancelled() => Err(ErrorData::internal_error("cancelled by the client", None)),
        }
    }
}

/// Serves MCP over stdio until the client closes stdin.
pub async fn serve_stdio(shared: Arc<Shared>) -> anyhow::Result<()> {
    let service = match SmartcarServer::new(shared)
        .serve(rmcp::transport::stdio_pipes())
        .await
    {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("the client left before starting a session: {e}");
            return Ok(());
        }
    };
    let reason = service.waiting().await?;
    tracing::info!(?reason, "stdio session ended");
    Ok(())
}

//! The MCP handler: an rmcp `ServerHandler` over the served tools, every call going through the
//! one pipeline (`tool::call::run`) with MCP elicitation as its confirmation.

use std::sync::Arc;

use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, CompleteRequestParams,
    CompleteResult, ContentBlock, CustomRequest, CustomResult, ErrorCode, GetPromptRequestParams,
    GetPromptResponse, Implementation, JsonObject, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, MetaObject, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, RequestStateCodec, ServerCapabilities,
    ServerConfig, SubscribeRequestParams, SubscriptionFilter, Tool, ToolAnnotations,
    UnsubscribeRequestParams,
};
use rmcp::service::{RequestContext, SubscriptionContext};
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};

use super::apps;
use super::confirm::{Elicit, sealer};
use super::resources::{self, SessionMark, Subscribers};
use crate::catalogue::{TOOLS, ToolSpec};
use crate::oauth::Principal;
use crate::settings::{LocationMode, Settings};
use crate::tool::{AppState, Caller, Step, ToolResult, call, privacy, tenancy};

/// What every session and request shares: the application state, the prepared tools/list
/// entries and the codec sealing confirmation rounds.
pub struct Shared {
    pub app: AppState,
    tools: Vec<Tool>,
    /// Seals the state of a confirmation round so an answer applies to those exact arguments.
    sealer: RequestStateCodec,
    /// Sessions subscribed to vehicles' pushed state.
    pub(super) subscribers: Subscribers,
}

impl Shared {
    pub fn new(settings: Settings, enabled: &[usize]) -> anyhow::Result<Arc<Self>> {
        Self::with_state(AppState::new(settings, enabled)?)
    }

    pub fn with_state(app: AppState) -> anyhow::Result<Arc<Self>> {
        let location = app.serving.location;
        let tools = app
            .enabled()
            .iter()
            .map(|i| mcp_tool(&TOOLS[*i], location))
            .collect();
        let sealer = sealer(app.serving.confirm_key.as_ref())?;
        Ok(Arc::new(Shared {
            app,
            tools,
            sealer,
            subscribers: Subscribers::default(),
        }))
    }

    /// Resource subscriptions held now, over every session.
    pub fn subscriptions(&self) -> usize {
        self.subscribers.len()
    }

    /// How many tools this server lists.
    pub fn tool_count(&self) -> usize {
        self.tools.len()
    }
}

/// The tools/list entry of a catalogue tool, as served under this location setting.
pub fn mcp_tool(spec: &'static ToolSpec, location: LocationMode) -> Tool {
    let a = spec.annotations;
    // Parsed straight from the generated text: parsing `catalogue::SCHEMAS` and then copying
    // every schema out of it was a quarter of start-up's instructions (callgrind).
    let object = |text: &str| match serde_json::from_str(text) {
        Ok(serde_json::Value::Object(o)) => o,
        _ => unreachable!("build.rs emits object schemas"),
    };
    let schema: JsonObject = privacy::published_schema(location, object(spec.input_schema));
    let output: JsonObject = object(spec.output_schema);
    Tool::new(spec.name, spec.description, Arc::new(schema))
        .with_meta(client_hints(spec))
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

/// The server's `instructions`, key facts first: Claude Code cuts them at 2,048 characters.
pub const INSTRUCTIONS: &str = "Smartcar vehicle tools. Start with list_connections to find vehicle_id and user_id, \
     read values with get_signal (Smartcar v3 codes such as tractionbattery-stateofcharge; every code is in \
     the resource smartcar://signals) or get_signals, and confirm a command's effect by reading the matching \
     signal. Commands and deletions may ask a human to confirm. Calls are billed per vehicle: prefer one \
     get_signals over many get_signal calls, and read smartcar://usage before polling. Smartcar refreshes \
     a vehicle's data about once a day unless it is subscribed to a webhook.";

/// What Claude's clients read from a tool's `_meta`, all from tools.yaml: a confirmed tool always
/// asks the user (even in bypass modes), `always_load` tools are never deferred, and the search
/// hint helps deferred tools be found.
fn client_hints(spec: &ToolSpec) -> MetaObject {
    let mut m = serde_json::Map::new();
    if spec.confirm {
        m.insert("anthropic/requiresUserInteraction".into(), true.into());
    }
    if spec.always_load {
        m.insert("anthropic/alwaysLoad".into(), true.into());
    }
    if let Some(h) = spec.search_hint {
        m.insert("anthropic/searchHint".into(), h.into());
    }
    MetaObject(m)
}

/// The tools/list JSON of these tools, as clients see it.
pub fn tools_json(enabled: &[usize], location: LocationMode) -> serde_json::Value {
    serde_json::to_value(
        enabled
            .iter()
            .map(|i| mcp_tool(&TOOLS[*i], location))
            .collect::<Vec<_>>(),
    )
    .expect("tools serialize")
}

/// The most a single tool may cost the model, in model-visible bytes (tests hold every tool to it).
pub const MAX_TOOL_BYTES: usize = 1_200;
/// The most the default tool set may cost per tool on average, in model-visible bytes.
pub const MAX_AVERAGE_BYTES: usize = 600;

/// What a model reads of each of these tools on every request, in tools/list order: its name,
/// description and input schema as compact JSON (clients leave the rest, such as annotations and
/// the output schema, out of the prompt). The budget (`smartcar-mcp tools --budget`) is its size.
pub fn model_visible(enabled: &[usize], location: LocationMode) -> Vec<(&'static str, String)> {
    enabled
        .iter()
        .map(|i| {
            let spec = &TOOLS[*i];
            let tool = mcp_tool(spec, location);
            let seen = serde_json::json!({
                "name": tool.name,
                "description": tool.description,
                "inputSchema": tool.input_schema,
            });
            (spec.name, seen.to_string())
        })
        .collect()
}

fn to_call_result(r: ToolResult) -> CallToolResult {
    let content = r
        .lead
        .into_iter()
        .chain([r.json])
        .map(ContentBlock::text)
        .collect();
    let mut out = if r.is_error {
        CallToolResult::error(content)
    } else {
        CallToolResult::success(content)
    };
    out.structured_content = Some(r.structured);
    out.meta = r.meta.map(|m| MetaObject(m.to_map()));
    out
}

/// The handler of one session (or of one stateless request).
#[derive(Clone)]
pub struct SmartcarServer {
    shared: Arc<Shared>,
    /// The session's subscriptions end with its handler.
    session: Arc<SessionMark>,
}

impl SmartcarServer {
    pub fn new(shared: Arc<Shared>) -> Self {
        let session = Arc::new(shared.subscribers.mark());
        SmartcarServer { shared, session }
    }

    /// The vehicles an OAuth caller reaches; `None` when it reaches all (no OAuth, `app:admin`).
    async fn mine(&self, ctx: &RequestContext<RoleServer>) -> Option<Vec<String>> {
        let p = principal(ctx)?;
        tenancy::vehicles_of(&self.shared.app, Some(&p)).await
    }
}

/// The OAuth caller `mcp::guard` verified for this request, if it is one.
fn principal(ctx: &RequestContext<RoleServer>) -> Option<Arc<Principal>> {
    ctx.extensions
        .get::<axum::http::request::Parts>()
        .and_then(super::guard::principal_of)
}

impl ServerHandler for SmartcarServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_extensions_with(apps::server_extensions())
                .enable_tools()
                .enable_resources()
                .enable_resources_subscribe()
                .enable_prompts()
                .enable_completions()
                .build(),
        )
        .with_server_info(Implementation::new(
            env!("CARGO_PKG_NAME"),
            env!("CARGO_PKG_VERSION"),
        ))
        .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let principal = principal(&context);
        let mut tools = self.shared.tools.clone();
        if let Some(p) = &principal {
            tools.retain(|t| {
                crate::catalogue::tool(&t.name).is_some_and(|spec| tenancy::visible(spec, Some(p)))
            });
        }
        // Per request: a 2026-07-28 client declares its capabilities on each one.
        if apps::declared(context.client_capabilities().as_ref()) {
            tools = tools.into_iter().map(apps::with_view).collect();
        }
        // The catalogue is compiled in, so any client may cache the list for a long time; a list
        // cut to a caller's scopes is that caller's alone.
        let scope = if principal.is_some() {
            CacheScope::Private
        } else {
            CacheScope::Public
        };
        Ok(ListToolsResult::with_all_items(tools)
            .with_ttl_ms(3_600_000)
            .with_cache_scope(scope))
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(super::prompts::list())
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        // A prompt about another caller's vehicle would name that vehicle's user.
        let vehicle = request
            .arguments
            .as_ref()
            .and_then(|a| a.get("vehicle_id"))
            .and_then(|v| v.as_str());
        if let Some(v) = vehicle
            && let Some(mine) = self.mine(&context).await
            && !mine.iter().any(|m| m == v)
        {
            return Err(ErrorData::invalid_params(
                format!(
                    "vehicle `{}` is not one of your vehicles",
                    crate::text::clip(v)
                ),
                None,
            ));
        }
        super::prompts::get(&self.shared.app, &request.name, request.arguments.as_ref())
            .map(Into::into)
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let mut result = super::prompts::complete(&self.shared.app, &request)?;
        if let Some(p) = principal(&context).filter(|p| !p.is_admin()) {
            let keep: Vec<String> = match request.argument.name.as_str() {
                "vehicle_id" => tenancy::vehicles_of(&self.shared.app, Some(&p))
                    .await
                    .unwrap_or_default(),
                "user_id" => p.users.clone(),
                _ => return Ok(result),
            };
            let values = &mut result.completion.values;
            values.retain(|v| keep.contains(v));
            result.completion.total = Some(values.len() as u32);
            result.completion.has_more = Some(false);
        }
        Ok(result)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let mine = self.mine(&context).await;
        let mut list = resources::list(&self.shared.app, mine.as_deref()).await;
        if apps::declared(context.client_capabilities().as_ref()) {
            list.resources.push(apps::resource());
        }
        Ok(list)
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(resources::templates())
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        // The view is read whoever asks: it holds no data, and a host may fetch it ahead.
        if apps::is_view(&request.uri) {
            return Ok(apps::read().into());
        }
        let mine = self.mine(&context).await;
        resources::read(&self.shared.app, &request.uri, mine.as_deref())
            .await
            .map(Into::into)
    }

    #[allow(deprecated)] // the handshake revisions' form; 2026-07-28 peers use `listen`
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let mine = self.mine(&context).await;
        resources::subscribe(
            &self.shared.subscribers,
            &self.shared.app.store,
            &request.uri,
            &self.session,
            context.peer,
            mine.as_deref(),
        )
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        resources::unsubscribe(&self.shared.subscribers, &request.uri, &self.session);
        Ok(())
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        resources::accepted(requested)
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let mine = self.mine(context.request_context()).await;
        resources::listen(&self.shared.app.store, context, mine).await
    }

    async fn on_custom_request(
        &self,
        request: CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        let stateless = context
            .protocol_version()
            .is_some_and(|v| v >= rmcp::model::ProtocolVersion::V_2026_07_28);
        let (code, message) =
            super::malformed::unknown_request(&request.method, request.params.as_ref(), stateless);
        Err(ErrorData::new(ErrorCode(code as i32), message, None))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        // The prepared entries share their schemas through `Arc`, so this clone is cheap; HTTP
        // header validation asks for it on every call.
        self.shared.app.lookup(name)?;
        self.shared.tools.iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let Some(spec) = self.shared.app.lookup(&request.name) else {
            return Err(ErrorData::invalid_params(
                format!("tool not found: {}", crate::text::clip(&request.name)),
                None,
            ));
        };
        let caller = caller(&context);
        let confirm = Elicit {
            bound_to: caller
                .principal
                .as_ref()
                .map(|p| p.key())
                .unwrap_or_default(),
            ctx: &context,
            request: &request,
            sealer: &self.shared.sealer,
            ttl: self.shared.app.serving.confirm_ttl,
            store: &self.shared.app.store,
        };
        // Boxed: the pipeline's state machine is large, and rmcp moves the handler's future by
        // value into the task it spawns per request; without the box those copies cost about
        // 80,000 instructions a call (callgrind: memcpy under tokio::spawn).
        let run = Box::pin(call::run(
            &self.shared.app,
            spec,
            request.arguments.as_ref(),
            &confirm,
            &caller,
        ));
        let lifetime = call::lifetime(&self.shared.app, spec);
        // Every line logged for this call carries the client's request id (`--log-format json`
        // shows the span on each line).
        let span = tracing::info_span!("mcp_call", mcp_request_id = %context.id, tool = spec.name);
        let run = tracing::Instrument::instrument(tokio::time::timeout(lifetime, run), span);
        tokio::select! {
            step = run => match step {
                Ok(Step::Done(r)) => {
                    let mut result = to_call_result(r);
                    if apps::declared(context.client_capabilities().as_ref()) {
                        apps::annotate(
                            &mut result,
                            spec.name,
                            request.arguments.as_ref(),
                            &self.shared.app.store,
                            self.shared.app.serving.location,
                        )
                        .await;
                    }
                    Ok(result.into())
                }
                Ok(Step::Ask(ask)) => Ok(ask.into()),
                Err(_) => {
                    tracing::warn!(tool = spec.name, "a call outlived its longest possible time; ended");
                    Err(ErrorData::internal_error(
                        format!(
                            "{} ran longer than the {} s any call of it may take and was ended; if it was a command, read the vehicle's state before sending it again",
                            spec.name,
                            lifetime.as_secs()
                        ),
                        None,
                    ))
                }
            },
            _ = context.ct.cancelled() => Err(ErrorData::internal_error("cancelled by the client", None)),
        }
    }
}

/// Who is calling, for the audit log: HTTP requests carry their headers in the context.
fn caller(ctx: &RequestContext<RoleServer>) -> Caller {
    let parts = ctx.extensions.get::<axum::http::request::Parts>();
    Caller {
        transport: if parts.is_some() { "http" } else { "stdio" },
        client: ctx
            .client_info()
            .map(|i| format!("{}/{}", i.name, i.version)),
        session: parts
            .and_then(|p| p.headers.get("mcp-session-id"))
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        principal: parts.and_then(super::guard::principal_of),
    }
}

/// Serves MCP over stdio until the client closes stdin; malformed lines are answered by the
/// filter in `mcp::stdio` and never end the session.
pub async fn serve_stdio(shared: Arc<Shared>) -> anyhow::Result<()> {
    let (stdin, stdout) = rmcp::transport::stdio_pipes();
    let service = match SmartcarServer::new(shared)
        .serve(super::stdio::FilteredLines::new(stdin, stdout))
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

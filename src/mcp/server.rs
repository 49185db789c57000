//! The MCP handler: an rmcp `ServerHandler` over the served tools, every call going through the
//! one pipeline (`tool::call::run`) with MCP elicitation as its confirmation.

use std::sync::Arc;

use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock,
    Implementation, JsonObject, ListToolsResult, MetaObject, PaginatedRequestParams,
    RequestStateCodec, ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};

use super::confirm::{Elicit, sealer};
use crate::catalogue::{TOOLS, ToolSpec};
use crate::settings::Settings;
use crate::tool::{AppState, Step, ToolResult, call};

/// What every session and request shares: the application state, the prepared tools/list
/// entries and the codec sealing confirmation rounds.
pub struct Shared {
    pub app: AppState,
    tools: Vec<Tool>,
    /// Seals the state of a confirmation round so an answer applies to those exact arguments.
    sealer: RequestStateCodec,
}

impl Shared {
    pub fn new(settings: Settings, enabled: &[usize]) -> anyhow::Result<Arc<Self>> {
        Self::with_state(AppState::new(settings, enabled)?)
    }

    pub fn with_state(app: AppState) -> anyhow::Result<Arc<Self>> {
        let tools = app.enabled().iter().map(|i| mcp_tool(&TOOLS[*i])).collect();
        let sealer = sealer(app.serving.confirm_key.as_ref())?;
        Ok(Arc::new(Shared { app, tools, sealer }))
    }

    /// How many tools this server lists.
    pub fn tool_count(&self) -> usize {
        self.tools.len()
    }
}

/// The tools/list entry of a catalogue tool.
pub fn mcp_tool(spec: &'static ToolSpec) -> Tool {
    let index = crate::catalogue::tool_index(spec.name).expect("a catalogue tool");
    let a = spec.annotations;
    let published = &crate::catalogue::SCHEMAS[index];
    let schema: JsonObject = published.input.clone();
    let output: JsonObject = published.output.clone();
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
    serde_json::to_value(
        enabled
            .iter()
            .map(|i| mcp_tool(&TOOLS[*i]))
            .collect::<Vec<_>>(),
    )
    .expect("tools serialize")
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
                format!("tool not found: {}", request.name),
                None,
            ));
        };
        let confirm = Elicit {
            ctx: &context,
            request: &request,
            sealer: &self.shared.sealer,
            ttl: self.shared.app.serving.confirm_ttl,
        };
        let run = call::run(&self.shared.app, spec, request.arguments.as_ref(), &confirm);
        tokio::select! {
            step = run => Ok(match step {
                Step::Done(r) => to_call_result(r).into(),
                Step::Ask(ask) => ask.into(),
            }),
            _ = context.ct.cancelled() => Err(ErrorData::internal_error("cancelled by the client", None)),
        }
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

//! Operator control end to end, one file per feature: tool filters, human confirmation, dry run
//! and Streamable HTTP, driven with rmcp's client over stdio (the built binary) and over HTTP (in
//! process and the binary). This file holds the clients and helpers they share.

mod confirm;
mod dry_run;
mod filters;
mod http;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities, ClientConfig,
    ElicitRequestParams, ElicitResult, ElicitationAction, ElicitationCapability, Implementation,
    ProtocolVersion,
};
use rmcp::service::{RequestContext, RunningService, ServiceError};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{IntoTransport, StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, ClientLifecycleMode, ErrorData, RoleClient};
use serde_json::{Value, json};
use smartcar_mcp::catalogue::TOOLS;
use smartcar_mcp::mcp::{Shared, SmartcarServer};
use smartcar_mcp::secret::Secret;
use smartcar_mcp::settings::{ConfirmMode, Settings};
use smartcar_mcp::simulator::Simulator;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;

use crate::common;

const HTTP_TOKEN: &str = "op-http-token-5f1e0c9a7b3d2e48a6c1";
const VEHICLE: &str = "veh-ev-0001";
const OTHER_VEHICLE: &str = "veh-phev-0002";
const USER: &str = "usr-alice-01";

// ---------------------------------------------------------------------------------------------
// Clients

#[derive(Clone, Copy, Debug, PartialEq)]
enum Lifecycle {
    Handshake,
    Stateless2026,
}

impl Lifecycle {
    fn mode(self) -> ClientLifecycleMode {
        match self {
            Lifecycle::Handshake => ClientLifecycleMode::Initialize,
            Lifecycle::Stateless2026 => ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        }
    }
}

const BOTH: [Lifecycle; 2] = [Lifecycle::Handshake, Lifecycle::Stateless2026];

/// Command-line arguments and environment variables of one run of the binary.
type Argv = Vec<&'static str>;
type Env = Vec<(&'static str, &'static str)>;

/// A client with a human behind it who answers every confirmation the same way.
#[derive(Clone)]
struct Human {
    accepts: bool,
    asked: Arc<Mutex<Vec<String>>>,
}

impl Human {
    fn accepting() -> Self {
        Human {
            accepts: true,
            asked: Arc::default(),
        }
    }
    fn declining() -> Self {
        Human {
            accepts: false,
            ..Human::accepting()
        }
    }
    fn questions(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

impl ClientHandler for Human {
    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        if let ElicitRequestParams::FormElicitationParams { message, .. } = &request {
            self.asked.lock().unwrap().push(message.clone());
        }
        Ok(if self.accepts {
            ElicitResult::new(ElicitationAction::Accept).with_content(json!({ "confirm": true }))
        } else {
            ElicitResult::new(ElicitationAction::Decline)
        })
    }

    fn get_info(&self) -> ClientConfig {
        let mut caps = ClientCapabilities::default();
        caps.elicitation = Some(ElicitationCapability::default());
        ClientConfig::new(caps, Implementation::new("operator-test", "0"))
    }
}

async fn connect<H, T, E, A>(
    handler: H,
    transport: T,
    lc: Lifecycle,
) -> RunningService<RoleClient, H>
where
    H: ClientHandler,
    T: IntoTransport<RoleClient, E, A>,
    E: std::error::Error + Send + Sync + 'static,
{
    rmcp::serve_client_with_lifecycle(handler, transport, lc.mode())
        .await
        .unwrap_or_else(|e| panic!("{lc:?} client connects: {e}"))
}

/// The binary with a clean environment (a developer's SMARTCAR_* must not leak into a test),
/// pointed at the simulator when there is one.
fn command(
    sim: Option<&Simulator>,
    args: &[&str],
    env: &[(&str, &str)],
) -> tokio::process::Command {
    let mut cmd = common::tokio_command();
    cmd.env_clear()
        .env("XDG_DATA_HOME", common::data_home())
        .args(args)
        .kill_on_drop(true);
    if let Some(sim) = sim {
        cmd.env("SMARTCAR_CLIENT_ID", "client_operator")
            .env("SMARTCAR_CLIENT_SECRET", common::CLIENT_SECRET)
            .env("SMARTCAR_AUTH_URL", sim.auth_url())
            .env("SMARTCAR_API_URL", sim.api_url())
            .env("SMARTCAR_MANAGEMENT_API_URL", sim.management_url());
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

async fn stdio<H: ClientHandler>(
    handler: H,
    cmd: tokio::process::Command,
    lc: Lifecycle,
) -> RunningService<RoleClient, H> {
    let (transport, _) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::null())
        .spawn()
        .expect("binary spawns");
    connect(handler, transport, lc).await
}

/// rmcp's Streamable HTTP client (its own reqwest), sending the bearer token when given.
async fn over_http<H: ClientHandler>(
    handler: H,
    url: &str,
    token: Option<&str>,
    lc: Lifecycle,
) -> RunningService<RoleClient, H> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_string());
    if let Some(t) = token {
        config = config.auth_header(t);
    }
    connect(
        handler,
        StreamableHttpClientTransport::from_config(config),
        lc,
    )
    .await
}

fn args(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().cloned().expect("arguments are an object")
}

fn unlock(vehicle: &str) -> CallToolRequestParams {
    CallToolRequestParams::new("unlock_vehicle")
        .with_arguments(args(json!({ "vehicle_id": vehicle, "user_id": USER })))
}

fn names(tools: &[rmcp::model::Tool]) -> Vec<String> {
    tools.iter().map(|t| t.name.to_string()).collect()
}

fn catalogue_names(keep: impl Fn(&smartcar_mcp::catalogue::ToolSpec) -> bool) -> Vec<String> {
    TOOLS
        .iter()
        .filter(|t| keep(t))
        .map(|t| t.name.to_string())
        .collect()
}

fn error_type(r: &CallToolResult) -> Option<String> {
    r.structured_content
        .as_ref()
        .and_then(|s| s.pointer("/error/type"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn text(r: &CallToolResult) -> String {
    serde_json::to_string(&r.content).unwrap()
}

fn unlocks(sim: &Simulator) -> usize {
    sim.hits("POST", "/security/unlock")
}

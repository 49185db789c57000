//! Shared test helpers: a simulator, settings pointed at it, one-call shortcuts, the MCP clients;
//! `snapshot` (generated files kept fresh) and `catalogue` (the YAML sources) and `net`
//! (raw TCP and HTTP/1.1 by hand) and `postgres` (the test PostgreSQL) beside them.

pub mod catalogue;
pub mod issuer;
pub mod net;
pub mod postgres;
pub mod readers;
pub mod snapshot;

use std::sync::Arc;

use serde_json::Value;
use smartcar_mcp::catalogue::TOOLS;
use smartcar_mcp::catalogue::ToolSpec;
use smartcar_mcp::mcp::Shared;
use smartcar_mcp::secret::Secret;
use smartcar_mcp::settings::{ConfirmMode, Settings};
use smartcar_mcp::simulator::{SimConfig, Simulator};
use smartcar_mcp::tool::{Caller, Confirm, Step, ToolError, ToolResult, Verdict, call as pipeline};

pub const CLIENT_SECRET: &str = "sc-test-secret-d41d8cd98f00b204";

pub async fn simulator() -> Simulator {
    Simulator::start(SimConfig::default())
        .await
        .expect("simulator starts on loopback")
}

/// Settings aimed at the simulator; confirmation off, because request-level tests have no human.
pub fn settings(sim: &Simulator) -> Settings {
    let mut s = Settings::for_urls(&sim.auth_url(), &sim.api_url(), &sim.management_url());
    s.upstream.compatibility_api_url = sim.compatibility_url();
    s.upstream.client_id = Some("client_test".into());
    s.upstream.client_secret = Some(Secret::new(CLIENT_SECRET));
    s.serving.confirm = ConfirmMode::Off;
    s
}

pub fn all_tools() -> Vec<usize> {
    (0..TOOLS.len()).collect()
}

pub fn shared(settings: Settings) -> Arc<Shared> {
    Shared::new(settings, &all_tools()).expect("shared state builds")
}

/// Validates one call and sends it straight to Smartcar: the request and the shaping the
/// server does, without the rest of the pipeline (confirmation, the read cache, coalescing, the
/// vehicle lanes, the daily cap, the audit log). For tests of requests and answers; a test of
/// the controls uses `run`.
pub async fn execute_only(shared: &Shared, tool: &str, args: Value) -> ToolResult {
    let spec = smartcar_mcp::catalogue::tool(tool).unwrap_or_else(|| panic!("no tool {tool}"));
    let args = args.as_object().cloned().expect("args are an object");
    match pipeline::validate(spec, Some(&args)) {
        Ok(a) => pipeline::execute(&shared.app, spec, &a).await,
        Err(e) => e.into_result(spec.name),
    }
}

/// A front end with nobody to ask: every confirmation is refused.
pub struct NoHuman;

impl Confirm for NoHuman {
    type Ask = std::convert::Infallible;

    async fn confirm(
        &self,
        _spec: &'static ToolSpec,
        question: &str,
        _args: &serde_json::Map<String, Value>,
    ) -> Result<Verdict<Self::Ask>, ToolError> {
        Err(ToolError::NotConfirmed {
            question: question.to_string(),
            why: "nobody to ask in this test",
        })
    }
}

/// Runs one call through the whole pipeline (cache, coalescing, lanes, audit), as a front end.
pub async fn run(shared: &Shared, tool: &str, args: Value) -> ToolResult {
    let spec = smartcar_mcp::catalogue::tool(tool).unwrap_or_else(|| panic!("no tool {tool}"));
    run_spec(shared, spec, args).await
}

/// `run` for a spec that need not be in the compiled table (one the generator just lowered).
pub async fn run_spec(shared: &Shared, spec: &'static ToolSpec, args: Value) -> ToolResult {
    let caller = Caller {
        transport: "test",
        client: Some("tests/1".into()),
        session: None,
        principal: None,
    };
    let Step::Done(r) = pipeline::run(&shared.app, spec, args.as_object(), &NoHuman, &caller).await;
    r
}

/// The built binary, with a platform data directory of this test run's own: a test that runs it
/// without `--audit-db` writes its audit log there, never into the user's (nor into one a build
/// of another branch has migrated ahead).
/// A test that clears the environment sets `XDG_DATA_HOME` to `data_home()` again.
pub fn command() -> std::process::Command {
    let mut cmd = std::process::Command::new(binary());
    cmd.env("XDG_DATA_HOME", data_home());
    cmd
}

/// This test run's platform data directory.
pub fn data_home() -> &'static std::path::Path {
    static DATA_HOME: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DATA_HOME.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("smartcar-mcp-tests-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a data directory for the test run");
        dir
    })
}

/// `command` for tokio.
pub fn tokio_command() -> tokio::process::Command {
    tokio::process::Command::from(command())
}

/// The path of the built binary, for end-to-end tests.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_smartcar-mcp")
}

/// An rmcp client over `transport`: the 2026-07-28 stateless lifecycle when `modern`, else the
/// `initialize` handshake.
pub async fn client_over(
    transport: rmcp::transport::TokioChildProcess,
    modern: bool,
) -> rmcp::service::RunningService<rmcp::RoleClient, ()> {
    use rmcp::ServiceExt;
    if modern {
        rmcp::serve_client_with_lifecycle(
            (),
            transport,
            rmcp::ClientLifecycleMode::Discover {
                preferred_versions: vec![rmcp::model::ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .expect("2026-07-28 discover")
    } else {
        ().serve(transport).await.expect("initialize handshake")
    }
}

/// The MCP HTTP server on a loopback port of its own, in this process, until dropped.
pub struct Served {
    pub addr: std::net::SocketAddr,
    /// `http://ADDR`: `/mcp`, `/healthz` and `/webhooks/smartcar` are below it.
    pub base: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Served {
    pub fn mcp(&self) -> String {
        format!("{}/mcp", self.base)
    }
}

pub async fn serve_http(shared: Arc<Shared>) -> Served {
    serve_http_allowing(shared, Vec::new()).await
}

/// `serve_http` accepting these `Host` names beside loopback (`--allowed-hosts`).
pub async fn serve_http_allowing(shared: Arc<Shared>, hosts: Vec<String>) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        smartcar_mcp::mcp::http::serve_on(listener, shared, &hosts, async {
            let _ = stopped.await;
        })
        .await
    });
    Served {
        addr,
        base: format!("http://{addr}"),
        _stop: stop,
    }
}

/// The JSON-RPC messages of an HTTP answer, whether JSON or an SSE stream.
pub fn messages(body: &str) -> Vec<Value> {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        return vec![v];
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str(d.trim()).ok())
        .collect()
}

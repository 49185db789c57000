//! Operator control end to end: tool filters, human confirmation, dry-run and Streamable HTTP,
//! driven with rmcp's client over stdio (the built binary) and over HTTP (in process and the binary).

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
    let mut cmd = tokio::process::Command::new(common::binary());
    cmd.env_clear().args(args).kill_on_drop(true);
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

// ---------------------------------------------------------------------------------------------
// Tool filters

#[tokio::test]
async fn filters_from_flags_and_environment_shape_the_tool_list() {
    let management = catalogue_names(|t| t.toolset.as_str() == "management");
    // Without --toolsets the server serves the toolsets that are on by default (not webhooks).
    let read_only = catalogue_names(|t| t.annotations.read_only && t.toolset.on_by_default());
    let all = catalogue_names(|t| t.toolset.on_by_default());
    let without = |gone: &[&str]| -> Vec<String> {
        all.iter()
            .filter(|n| !gone.contains(&n.as_str()))
            .cloned()
            .collect()
    };
    let cases: Vec<(&str, Argv, Env, Vec<String>)> = vec![
        (
            "--toolsets",
            vec!["--toolsets", "management"],
            vec![],
            management.clone(),
        ),
        (
            "SMARTCAR_TOOLSETS",
            vec![],
            vec![("SMARTCAR_TOOLSETS", "management")],
            management.clone(),
        ),
        (
            "--tools",
            vec!["--tools", "lock_vehicle,get_signal"],
            vec![],
            catalogue_names(|t| t.name == "get_signal" || t.name == "lock_vehicle"),
        ),
        (
            "SMARTCAR_TOOLS",
            vec![],
            vec![("SMARTCAR_TOOLS", "lock_vehicle,get_signal")],
            catalogue_names(|t| t.name == "get_signal" || t.name == "lock_vehicle"),
        ),
        (
            "--tools adds to --toolsets",
            vec!["--toolsets", "management", "--tools", "get_signal"],
            vec![],
            catalogue_names(|t| t.toolset.as_str() == "management" || t.name == "get_signal"),
        ),
        (
            "--exclude-tools",
            vec!["--exclude-tools", "unlock_vehicle,delete_user"],
            vec![],
            without(&["unlock_vehicle", "delete_user"]),
        ),
        (
            "SMARTCAR_EXCLUDE_TOOLS",
            vec![],
            vec![("SMARTCAR_EXCLUDE_TOOLS", "unlock_vehicle,delete_user")],
            without(&["unlock_vehicle", "delete_user"]),
        ),
        (
            "--read-only",
            vec!["--read-only"],
            vec![],
            read_only.clone(),
        ),
        (
            "SMARTCAR_READ_ONLY",
            vec![],
            vec![("SMARTCAR_READ_ONLY", "true")],
            read_only.clone(),
        ),
        (
            "serve --read-only",
            vec!["serve", "--read-only"],
            vec![],
            read_only.clone(),
        ),
        (
            "read-only beats --tools",
            vec!["--read-only", "--tools", "unlock_vehicle,get_signal"],
            vec![],
            vec!["get_signal".to_string()],
        ),
        (
            "SMARTCAR_READ_ONLY beats --tools",
            vec!["--tools", "unlock_vehicle"],
            vec![("SMARTCAR_READ_ONLY", "true")],
            vec![],
        ),
        (
            "exclude beats --tools",
            vec![
                "--tools",
                "unlock_vehicle,get_signal",
                "--exclude-tools",
                "unlock_vehicle",
            ],
            vec![],
            vec!["get_signal".to_string()],
        ),
    ];
    // Sanity of the expectations themselves, so a catalogue change cannot make them vacuous.
    assert!(management.contains(&"list_applications".to_string()));
    assert!(!management.contains(&"get_signal".to_string()));
    assert!(read_only.contains(&"get_signal".to_string()));
    for gone in [
        "unlock_vehicle",
        "lock_vehicle",
        "delete_user",
        "delete_connection",
    ] {
        assert!(
            !read_only.contains(&gone.to_string()),
            "{gone} is not read-only"
        );
    }

    let mut runs = tokio::task::JoinSet::new();
    for (label, argv, env, expected) in cases {
        let cmd = command(None, &argv, &env);
        runs.spawn(async move {
            let client = stdio((), cmd, Lifecycle::Handshake).await;
            let listed = names(&client.list_all_tools().await.expect("tools/list"));
            client.cancel().await.ok();
            (label, listed, expected)
        });
    }
    while let Some(run) = runs.join_next().await {
        let (label, listed, expected) = run.unwrap();
        assert_eq!(listed, expected, "{label}");
    }
}

#[tokio::test]
async fn unknown_toolset_or_tool_names_stop_startup_naming_the_valid_ones() {
    let sets = "connections, signals, commands, management, webhooks, all";
    let cases: Vec<(Argv, Env, &str, &str)> = vec![
        (vec!["--toolsets", "signals,cars"], vec![], "`cars`", sets),
        (vec![], vec![("SMARTCAR_TOOLSETS", "cars")], "`cars`", sets),
        (
            vec!["--tools", "open_trunk"],
            vec![],
            "`open_trunk`",
            "get_signal",
        ),
        (
            vec![],
            vec![("SMARTCAR_TOOLS", "open_trunk")],
            "`open_trunk`",
            "unlock_vehicle",
        ),
        (
            vec!["--exclude-tools", "open_trunk"],
            vec![],
            "`open_trunk`",
            "get_signal",
        ),
        (
            vec![],
            vec![("SMARTCAR_EXCLUDE_TOOLS", "open_trunk")],
            "`open_trunk`",
            "get_signal",
        ),
        (
            vec!["serve", "--http", "127.0.0.1:0", "--tools", "open_trunk"],
            vec![],
            "`open_trunk`",
            "get_signal",
        ),
    ];
    let mut runs = tokio::task::JoinSet::new();
    for (argv, env, named, valid) in cases {
        let mut cmd = command(None, &argv, &env);
        cmd.stdin(Stdio::null());
        let label = format!("{argv:?} {env:?}");
        runs.spawn(async move {
            let out = tokio::time::timeout(Duration::from_secs(10), cmd.output())
                .await
                .unwrap_or_else(|_| panic!("{label}: still running, so startup did not fail"))
                .expect("binary runs");
            (label, out, named, valid)
        });
    }
    while let Some(run) = runs.join_next().await {
        let (label, out, named, valid) = run.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{label}: exit {:?}", out.status);
        assert!(stderr.contains(named), "{label}: {stderr}");
        assert!(
            stderr.contains(valid),
            "{label}: valid names missing: {stderr}"
        );
        assert!(
            out.stdout.is_empty(),
            "{label}: stdout belongs to the protocol"
        );
    }
}

#[tokio::test]
async fn a_filtered_out_tool_is_refused_exactly_like_an_unknown_one() {
    let sim = common::simulator().await;
    for lc in BOTH {
        let client = stdio((), command(Some(&sim), &["--read-only"], &[]), lc).await;
        assert!(
            !names(&client.list_all_tools().await.unwrap()).contains(&"unlock_vehicle".to_string())
        );
        let protocol_error = |r: Result<CallToolResult, ServiceError>| match r {
            Err(ServiceError::McpError(e)) => e,
            other => panic!("{lc:?}: expected a protocol error, got {other:?}"),
        };
        let filtered = protocol_error(client.call_tool(unlock(VEHICLE)).await);
        let unknown = protocol_error(
            client
                .call_tool(
                    CallToolRequestParams::new("no_such_tool")
                        .with_arguments(args(json!({ "vehicle_id": VEHICLE, "user_id": USER }))),
                )
                .await,
        );
        assert_eq!(filtered.code, unknown.code, "{lc:?}");
        assert_eq!(
            filtered.message,
            unknown.message.replace("no_such_tool", "unlock_vehicle"),
            "{lc:?}"
        );
        client.cancel().await.ok();
    }
    assert!(sim.requests().is_empty(), "{:?}", sim.requests());
    sim.shutdown();
}

// ---------------------------------------------------------------------------------------------
// Human confirmation over stdio

#[tokio::test]
async fn an_accepted_confirmation_sends_the_unlock_once() {
    for lc in BOTH {
        let sim = common::simulator().await;
        let human = Human::accepting();
        let client = stdio(human.clone(), command(Some(&sim), &[], &[]), lc).await;
        let r = client.call_tool(unlock(VEHICLE)).await.expect("tools/call");
        assert!(r.is_error != Some(true), "{lc:?}: {r:?}");
        assert_eq!(unlocks(&sim), 1, "{lc:?}");
        let asked = human.questions();
        assert_eq!(asked.len(), 1, "{lc:?}: one question, {asked:?}");
        assert!(
            asked[0].contains(VEHICLE) && asked[0].contains(USER),
            "{asked:?}"
        );
        client.cancel().await.ok();
        sim.shutdown();
    }
}

#[tokio::test]
async fn a_declined_confirmation_sends_nothing() {
    for lc in BOTH {
        let sim = common::simulator().await;
        let human = Human::declining();
        let client = stdio(human.clone(), command(Some(&sim), &[], &[]), lc).await;
        let r = client.call_tool(unlock(VEHICLE)).await.expect("tools/call");
        assert_eq!(r.is_error, Some(true), "{lc:?}: {r:?}");
        assert_eq!(error_type(&r).as_deref(), Some("NOT_CONFIRMED"), "{lc:?}");
        assert_eq!(human.questions().len(), 1, "{lc:?}");
        assert!(sim.requests().is_empty(), "{lc:?}: {:?}", sim.requests());
        client.cancel().await.ok();
        sim.shutdown();
    }
}

#[tokio::test]
async fn a_client_that_cannot_elicit_fails_closed_and_is_told_how_to_change_the_policy() {
    for lc in BOTH {
        let sim = common::simulator().await;
        let client = stdio((), command(Some(&sim), &[], &[]), lc).await;
        let calls = [
            unlock(VEHICLE),
            CallToolRequestParams::new("delete_connection")
                .with_arguments(args(json!({ "id": "conn-1" }))),
            CallToolRequestParams::new("delete_user").with_arguments(args(json!({ "id": USER }))),
        ];
        for call in calls {
            let name = call.name.clone();
            let r = client.call_tool(call).await.expect("tools/call");
            assert_eq!(r.is_error, Some(true), "{lc:?} {name}: {r:?}");
            assert_eq!(
                error_type(&r).as_deref(),
                Some("CONFIRMATION_REQUIRED"),
                "{lc:?} {name}"
            );
            let t = text(&r);
            assert!(
                t.contains("SMARTCAR_CONFIRM=off") && t.contains("--confirm off"),
                "{t}"
            );
        }
        assert!(sim.requests().is_empty(), "{lc:?}: {:?}", sim.requests());
        client.cancel().await.ok();
        sim.shutdown();
    }
}

#[tokio::test]
async fn confirm_off_sends_without_asking() {
    let cases: [(Lifecycle, Argv, Env); 2] = [
        (Lifecycle::Handshake, vec!["--confirm", "off"], vec![]),
        (
            Lifecycle::Stateless2026,
            vec![],
            vec![("SMARTCAR_CONFIRM", "off")],
        ),
    ];
    for (lc, argv, env) in cases {
        let sim = common::simulator().await;
        let human = Human::declining();
        let client = stdio(human.clone(), command(Some(&sim), &argv, &env), lc).await;
        let r = client.call_tool(unlock(VEHICLE)).await.expect("tools/call");
        assert!(r.is_error != Some(true), "{lc:?}: {r:?}");
        assert_eq!(unlocks(&sim), 1, "{lc:?}");
        assert!(human.questions().is_empty(), "{lc:?}: nobody is asked");
        client.cancel().await.ok();
        sim.shutdown();
    }
}

#[tokio::test]
async fn a_2026_confirmation_answers_only_the_arguments_it_was_asked_about() {
    let sim = common::simulator().await;
    let client = stdio(
        Human::accepting(),
        command(Some(&sim), &[], &[]),
        Lifecycle::Stateless2026,
    )
    .await;
    let CallToolResponse::InputRequired(ask) =
        client.call_tool_once(unlock(VEHICLE)).await.unwrap()
    else {
        panic!("an unlock asks first");
    };
    let state = ask.request_state.clone().expect("sealed state");
    let yes: rmcp::model::InputResponses = BTreeMap::from([(
        "confirm".to_string(),
        json!({ "action": "accept", "content": { "confirm": true } }),
    )]);
    let replayed = client
        .call_tool_once(
            unlock(OTHER_VEHICLE)
                .with_input_responses(yes.clone())
                .with_request_state(state.clone()),
        )
        .await
        .unwrap();
    let CallToolResponse::Complete(r) = replayed else {
        panic!("a mismatched answer is not asked again: {replayed:?}");
    };
    assert_eq!(error_type(&r).as_deref(), Some("NOT_CONFIRMED"), "{r:?}");
    let forged = client
        .call_tool_once(
            unlock(VEHICLE)
                .with_input_responses(yes.clone())
                .with_request_state("rs1.forged"),
        )
        .await
        .unwrap();
    assert!(
        matches!(forged, CallToolResponse::Complete(ref r) if r.is_error == Some(true)),
        "{forged:?}"
    );
    assert_eq!(unlocks(&sim), 0);
    let answered = client
        .call_tool_once(
            unlock(VEHICLE)
                .with_input_responses(yes)
                .with_request_state(state),
        )
        .await
        .unwrap();
    assert!(
        matches!(answered, CallToolResponse::Complete(ref r) if r.is_error != Some(true)),
        "{answered:?}"
    );
    assert_eq!(unlocks(&sim), 1);
    assert_eq!(sim.hits("POST", OTHER_VEHICLE), 0);
    client.cancel().await.ok();
    sim.shutdown();
}

// ---------------------------------------------------------------------------------------------
// Dry run

#[tokio::test]
async fn dry_run_sends_nothing_asks_nothing_and_shows_no_secret() {
    let sim = common::simulator().await;
    let calls = || {
        [
            unlock(VEHICLE),
            CallToolRequestParams::new("get_signal").with_arguments(args(
                json!({ "vehicle_id": VEHICLE, "user_id": USER, "signal_code": "tractionbattery-stateofcharge" }),
            )),
            CallToolRequestParams::new("set_charge_limit")
                .with_arguments(args(json!({ "vehicle_id": VEHICLE, "user_id": USER, "percent": 80 }))),
        ]
    };
    for lc in BOTH {
        // A client without elicitation: the unlock would fail closed if dry-run asked.
        let client = stdio((), command(Some(&sim), &["--dry-run"], &[]), lc).await;
        for call in calls() {
            let name = call.name.clone();
            let r = client.call_tool(call).await.expect("tools/call");
            assert!(r.is_error != Some(true), "{lc:?} {name}: {r:?}");
            let s = r.structured_content.clone().expect("structured");
            assert_eq!(s["dry_run"], true, "{s}");
            let req = &s["request"];
            assert!(
                req["url"].as_str().unwrap().starts_with(&sim.api_url()),
                "{req}"
            );
            assert!(req["url"].as_str().unwrap().contains(VEHICLE), "{req}");
            let headers = req["headers"].as_object().expect("headers");
            assert!(
                headers
                    .keys()
                    .all(|k| !k.eq_ignore_ascii_case("authorization")),
                "{name}: {headers:?}"
            );
            let all = serde_json::to_string(&r).unwrap();
            assert!(
                !all.contains(common::CLIENT_SECRET),
                "{name} leaks the client secret"
            );
        }
        client.cancel().await.ok();
    }
    // Without credentials at all, and through the environment variable.
    let client = stdio(
        (),
        command(None, &[], &[("SMARTCAR_DRY_RUN", "true")]),
        Lifecycle::Handshake,
    )
    .await;
    let r = client.call_tool(unlock(VEHICLE)).await.expect("tools/call");
    assert!(r.is_error != Some(true), "{r:?}");
    assert_eq!(
        r.structured_content.as_ref().unwrap()["request"]["method"],
        "POST"
    );
    client.cancel().await.ok();

    assert!(sim.requests().is_empty(), "{:?}", sim.requests());
    assert!(sim.token_requests().is_empty(), "dry-run fetched a token");
    sim.shutdown();
}

// ---------------------------------------------------------------------------------------------
// Streamable HTTP, in process

/// A server on 127.0.0.1:0 in this process; stops when dropped.
struct HttpServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl HttpServer {
    async fn start(shared: Arc<Shared>, allowed_hosts: &[&str]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let hosts: Vec<String> = allowed_hosts.iter().map(|h| h.to_string()).collect();
        let task = tokio::spawn(async move {
            smartcar_mcp::mcp::http::serve_on(listener, shared, &hosts, async {
                let _ = stopped.await;
            })
            .await
        });
        HttpServer {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    fn at(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops and reports whether the server shut down by itself, promptly.
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let task = self.task.take().unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("graceful shutdown within 5 s")
            .unwrap()
            .expect("server ends cleanly");
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Settings aimed at the simulator with confirmation on (common::settings turns it off).
fn http_settings(sim: &Simulator, token: Option<&str>) -> Settings {
    let mut s = common::settings(sim);
    s.serving.confirm = ConfirmMode::Required;
    s.serving.http_token = token.map(Secret::new);
    s
}

fn shared(settings: Settings) -> Arc<Shared> {
    common::shared(settings)
}

fn raw_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn initialize_body() -> Value {
    json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "raw", "version": "0" } } })
}

fn mcp_post(http: &reqwest::Client, url: &str, body: &Value) -> reqwest::RequestBuilder {
    http.post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(body.to_string())
}

/// The JSON-RPC messages of an SSE or JSON response body.
fn messages(body: &str) -> Vec<Value> {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        return vec![v];
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str(d.trim()).ok())
        .collect()
}

#[tokio::test]
async fn a_read_only_http_deployment_filters_and_healthz_counts_what_it_serves() {
    let sim = common::simulator().await;
    let enabled = smartcar_mcp::tool::selection::select(&[], &[], &[], true).unwrap();
    let shared = Shared::new(http_settings(&sim, Some(HTTP_TOKEN)), &enabled).unwrap();
    let server = HttpServer::start(shared, &[]).await;
    let r = raw_client()
        .get(server.at("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["tools"], enabled.len());
    assert!(
        enabled.len() < TOOLS.len(),
        "the read-only count is not the full count"
    );
    for lc in BOTH {
        let client = over_http(Human::accepting(), &server.url(), Some(HTTP_TOKEN), lc).await;
        let listed = names(&client.list_all_tools().await.unwrap());
        assert_eq!(listed.len(), enabled.len(), "{lc:?}");
        assert!(!listed.contains(&"unlock_vehicle".to_string()), "{lc:?}");
        let refused = client.call_tool(unlock(VEHICLE)).await;
        assert!(
            matches!(&refused, Err(ServiceError::McpError(e)) if e.message.contains("tool not found")),
            "{lc:?}: {refused:?}"
        );
        client.cancel().await.ok();
    }
    assert!(sim.requests().is_empty());
    server.stop().await;
    sim.shutdown();
}

#[tokio::test]
async fn http_needs_the_bearer_token_when_one_is_set() {
    let sim = common::simulator().await;
    let server = HttpServer::start(shared(http_settings(&sim, Some(HTTP_TOKEN))), &[]).await;
    let http = raw_client();
    for (label, auth) in [
        ("missing", None),
        ("wrong", Some(format!("Bearer {HTTP_TOKEN}x"))),
        ("prefix", Some(format!("Bearer {}", &HTTP_TOKEN[..10]))),
        ("other scheme", Some(format!("Basic {HTTP_TOKEN}"))),
    ] {
        let mut req = mcp_post(&http, &server.url(), &initialize_body());
        if let Some(a) = &auth {
            req = req.header("authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401, "{label}");
        let challenge = r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(challenge.starts_with("Bearer"), "{label}: {challenge}");
        let body: Value = r.json().await.expect("a JSON body");
        assert!(body["error"].is_string(), "{label}: {body}");
        assert!(!body.to_string().contains(HTTP_TOKEN), "{label}");
    }
    // The scheme is case-insensitive (RFC 7235).
    let r = mcp_post(&http, &server.url(), &initialize_body())
        .header("authorization", format!("bearer {HTTP_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    for lc in BOTH {
        let client = over_http((), &server.url(), Some(HTTP_TOKEN), lc).await;
        assert_eq!(
            client.list_all_tools().await.unwrap().len(),
            TOOLS.len(),
            "{lc:?}"
        );
        let r = client
            .call_tool(
                CallToolRequestParams::new("get_vehicle")
                    .with_arguments(args(json!({ "vehicle_id": VEHICLE }))),
            )
            .await
            .unwrap();
        assert!(r.is_error != Some(true), "{lc:?}: {r:?}");
        client.cancel().await.ok();
    }
    assert_eq!(sim.hits("GET", &format!("/vehicles/{VEHICLE}")), 2);
    server.stop().await;
    sim.shutdown();
}

#[tokio::test]
async fn without_a_token_loopback_http_serves_both_lifecycles() {
    let sim = common::simulator().await;
    let server = HttpServer::start(shared(http_settings(&sim, None)), &[]).await;
    for lc in BOTH {
        let client = over_http((), &server.url(), None, lc).await;
        assert_eq!(
            client.list_all_tools().await.unwrap().len(),
            TOOLS.len(),
            "{lc:?}"
        );
        client.cancel().await.ok();
    }
    server.stop().await;
    sim.shutdown();
}

#[tokio::test]
async fn foreign_hosts_and_origins_are_refused_and_allowed_hosts_extend_the_list() {
    let sim = common::simulator().await;
    let server = HttpServer::start(
        shared(http_settings(&sim, Some(HTTP_TOKEN))),
        &["mcp.example.com"],
    )
    .await;
    let http = raw_client();
    let port = server.addr.port();
    let send = |host: Option<String>, origin: Option<&str>| {
        let mut req = mcp_post(&http, &server.url(), &initialize_body())
            .header("authorization", format!("Bearer {HTTP_TOKEN}"));
        if let Some(h) = host {
            req = req.header("host", h);
        }
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    for (host, origin, want) in [
        (Some("evil.example".to_string()), None, 403),
        (Some(format!("evil.example:{port}")), None, 403),
        (Some(format!("localhost.evil.example:{port}")), None, 403),
        (None, Some("https://evil.example"), 403),
        (None, Some("null"), 403),
        (Some(format!("localhost:{port}")), None, 200),
        (Some("localhost".to_string()), None, 200),
        (Some(format!("[::1]:{port}")), None, 200),
        (Some("mcp.example.com".to_string()), None, 200),
        (
            Some("mcp.example.com:8443".to_string()),
            Some("https://mcp.example.com:8443"),
            200,
        ),
        (None, Some(&format!("http://localhost:{port}")), 200),
        (None, Some(&format!("http://127.0.0.1:{port}")), 200),
    ] {
        let r = send(host.clone(), origin).await.unwrap();
        assert_eq!(r.status(), want, "Host {host:?} Origin {origin:?}");
    }
    server.stop().await;
    sim.shutdown();
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let sim = common::simulator().await;
    let server = HttpServer::start(shared(http_settings(&sim, None)), &[]).await;
    let mut body = initialize_body();
    body["params"]["padding"] = json!("x".repeat(smartcar_mcp::mcp::http::MAX_BODY_BYTES));
    let r = mcp_post(&raw_client(), &server.url(), &body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    server.stop().await;
    sim.shutdown();
}

#[tokio::test]
async fn confirmation_over_http_in_both_lifecycles() {
    for lc in BOTH {
        let sim = common::simulator().await;
        let server = HttpServer::start(shared(http_settings(&sim, Some(HTTP_TOKEN))), &[]).await;

        let human = Human::declining();
        let client = over_http(human.clone(), &server.url(), Some(HTTP_TOKEN), lc).await;
        let r = client.call_tool(unlock(VEHICLE)).await.expect("tools/call");
        assert_eq!(
            error_type(&r).as_deref(),
            Some("NOT_CONFIRMED"),
            "{lc:?}: {r:?}"
        );
        assert_eq!(human.questions().len(), 1, "{lc:?}");
        assert_eq!(unlocks(&sim), 0, "{lc:?}");
        client.cancel().await.ok();

        let client = over_http((), &server.url(), Some(HTTP_TOKEN), lc).await;
        let r = client.call_tool(unlock(VEHICLE)).await.expect("tools/call");
        assert_eq!(
            error_type(&r).as_deref(),
            Some("CONFIRMATION_REQUIRED"),
            "{lc:?}: {r:?}"
        );
        assert_eq!(unlocks(&sim), 0, "{lc:?}");
        client.cancel().await.ok();

        let human = Human::accepting();
        let client = over_http(human.clone(), &server.url(), Some(HTTP_TOKEN), lc).await;
        let r = client.call_tool(unlock(VEHICLE)).await.expect("tools/call");
        assert!(r.is_error != Some(true), "{lc:?}: {r:?}");
        assert_eq!(unlocks(&sim), 1, "{lc:?}");
        assert!(
            human.questions()[0].contains(VEHICLE),
            "{:?}",
            human.questions()
        );
        client.cancel().await.ok();
        server.stop().await;

        let mut off = http_settings(&sim, Some(HTTP_TOKEN));
        off.serving.confirm = ConfirmMode::Off;
        let server = HttpServer::start(shared(off), &[]).await;
        let client = over_http((), &server.url(), Some(HTTP_TOKEN), lc).await;
        let r = client.call_tool(unlock(VEHICLE)).await.expect("tools/call");
        assert!(r.is_error != Some(true), "{lc:?}: {r:?}");
        assert_eq!(unlocks(&sim), 2, "{lc:?}: confirmation off sends at once");
        client.cancel().await.ok();
        server.stop().await;
        sim.shutdown();
    }
}

fn legacy_unlock_claiming_elicitation() -> Value {
    json!({ "jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "unlock_vehicle",
        "arguments": { "vehicle_id": VEHICLE, "user_id": USER },
        "_meta": { "io.modelcontextprotocol/clientCapabilities": { "elicitation": {} } } } })
}

#[tokio::test]
async fn a_legacy_request_without_a_session_never_counts_as_confirmed() {
    let sim = common::simulator().await;
    let http = raw_client();

    // This server gives legacy clients sessions, so a session-less call is turned away.
    let server = HttpServer::start(shared(http_settings(&sim, None)), &[]).await;
    let r = mcp_post(&http, &server.url(), &legacy_unlock_claiming_elicitation())
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    server.stop().await;

    // Served statelessly (no session manager), the server itself must refuse, and at once:
    // `_meta` claiming elicitation cannot be believed where there is no way back to the client.
    let state = shared(http_settings(&sim, None));
    let service = rmcp::transport::StreamableHttpService::new(
        move || Ok(SmartcarServer::new(state.clone())),
        Arc::new(
            rmcp::transport::streamable_http_server::session::never::NeverSessionManager::default(),
        ),
        rmcp::transport::StreamableHttpServerConfig::default().with_legacy_session_mode(false),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route_service("/mcp", service);
    let task = tokio::spawn(async move { axum::serve(listener, app).await });
    let started = Instant::now();
    let r = mcp_post(
        &http,
        &format!("http://{addr}/mcp"),
        &legacy_unlock_claiming_elicitation(),
    )
    .header("mcp-protocol-version", "2025-06-18")
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let replies = messages(&r.text().await.unwrap());
    let reply = replies
        .iter()
        .find(|m| m["id"] == 7)
        .expect("a reply to the call");
    assert_eq!(reply["result"]["isError"], true, "{reply}");
    assert_eq!(
        reply["result"]["structuredContent"]["error"]["type"], "CONFIRMATION_REQUIRED",
        "{reply}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused without waiting for an answer"
    );
    assert_eq!(unlocks(&sim), 0);
    task.abort();
    sim.shutdown();
}

#[tokio::test]
async fn replicas_sharing_a_confirm_key_accept_each_others_confirmations() {
    let sim = common::simulator().await;
    let key = "k".repeat(40);
    let replica = |shared_key: bool| {
        let mut s = http_settings(&sim, None);
        s.serving.confirm_key = shared_key.then(|| Secret::new(key.clone()));
        shared(s)
    };
    let (a, b, lone) = (
        HttpServer::start(replica(true), &[]).await,
        HttpServer::start(replica(true), &[]).await,
        HttpServer::start(replica(false), &[]).await,
    );
    let lc = Lifecycle::Stateless2026;
    let on_a = over_http(Human::accepting(), &a.url(), None, lc).await;
    let CallToolResponse::InputRequired(ask) = on_a.call_tool_once(unlock(VEHICLE)).await.unwrap()
    else {
        panic!("an unlock asks first");
    };
    let yes: rmcp::model::InputResponses = BTreeMap::from([(
        "confirm".to_string(),
        json!({ "action": "accept", "content": { "confirm": true } }),
    )]);
    let retry = unlock(VEHICLE)
        .with_input_responses(yes)
        .with_request_state(ask.request_state.clone().unwrap());

    let on_lone = over_http(Human::accepting(), &lone.url(), None, lc).await;
    let r = on_lone.call_tool_once(retry.clone()).await.unwrap();
    assert!(
        matches!(&r, CallToolResponse::Complete(r) if error_type(r).as_deref() == Some("NOT_CONFIRMED")),
        "another key cannot open it: {r:?}"
    );
    assert_eq!(unlocks(&sim), 0);

    let on_b = over_http(Human::accepting(), &b.url(), None, lc).await;
    let r = on_b.call_tool_once(retry).await.unwrap();
    assert!(
        matches!(&r, CallToolResponse::Complete(r) if r.is_error != Some(true)),
        "{r:?}"
    );
    assert_eq!(unlocks(&sim), 1);
    for c in [on_a, on_b, on_lone] {
        c.cancel().await.ok();
    }
    for s in [a, b, lone] {
        s.stop().await;
    }
    sim.shutdown();
}

#[test]
fn a_short_confirm_key_is_refused_without_echoing_it() {
    let mut s = Settings::for_urls(
        "http://127.0.0.1:9",
        "http://127.0.0.1:9/v3",
        "http://127.0.0.1:9/m",
    );
    s.serving.confirm_key = Some(Secret::new("too-short-key-value"));
    let e = Shared::new(s, &[0]).err().expect("refused").to_string();
    assert!(
        e.contains("SMARTCAR_MCP_CONFIRM_KEY") && e.contains("32"),
        "{e}"
    );
    assert!(!e.contains("too-short-key-value"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Streamable HTTP, the binary

/// `serve --http` on a port the OS picks; the URL is read from stderr, which is kept whole.
struct ServedBinary {
    child: tokio::process::Child,
    url: String,
    stderr: Arc<Mutex<String>>,
    reader: tokio::task::JoinHandle<()>,
}

async fn serve_binary(sim: &Simulator, extra_env: &[(&str, &str)]) -> ServedBinary {
    let mut cmd = command(Some(sim), &["serve", "--http", "127.0.0.1:0"], extra_env);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("binary spawns");
    let stderr = Arc::new(Mutex::new(String::new()));
    let (url_tx, url_rx) = tokio::sync::oneshot::channel();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let sink = stderr.clone();
    let reader = tokio::spawn(async move {
        let mut url_tx = Some(url_tx);
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(i) = line.find("listening on http://")
                && let Some(tx) = url_tx.take()
            {
                let _ = tx.send(line[i + "listening on ".len()..].trim().to_string());
            }
            let mut all = sink.lock().unwrap();
            all.push_str(&line);
            all.push('\n');
        }
    });
    let url = tokio::time::timeout(Duration::from_secs(10), url_rx)
        .await
        .unwrap_or_else(|_| panic!("no `listening on` line: {}", stderr.lock().unwrap()))
        .unwrap_or_else(|_| panic!("exited before listening: {}", stderr.lock().unwrap()));
    ServedBinary {
        child,
        url,
        stderr,
        reader,
    }
}

#[cfg(unix)]
#[tokio::test]
async fn the_served_binary_logs_no_secret_at_trace_and_stops_on_sigterm() {
    let sim = common::simulator().await;
    let mut served = serve_binary(
        &sim,
        &[
            ("SMARTCAR_MCP_HTTP_TOKEN", HTTP_TOKEN),
            ("RUST_LOG", "trace"),
        ],
    )
    .await;
    assert!(
        served.url.starts_with("http://127.0.0.1:") && served.url.ends_with("/mcp"),
        "{}",
        served.url
    );
    let http = raw_client();

    let health = served.url.replace("/mcp", "/healthz");
    assert_eq!(http.get(&health).send().await.unwrap().status(), 200);
    let r = mcp_post(&http, &served.url, &initialize_body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = mcp_post(&http, &served.url, &initialize_body())
        .header("authorization", format!("Bearer {HTTP_TOKEN}-wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    for lc in BOTH {
        let human = Human::accepting();
        let client = over_http(human.clone(), &served.url, Some(HTTP_TOKEN), lc).await;
        let r = client
            .call_tool(CallToolRequestParams::new("get_signal").with_arguments(args(
                json!({ "vehicle_id": VEHICLE, "user_id": USER, "signal_code": "tractionbattery-stateofcharge" }),
            )))
            .await
            .unwrap();
        assert!(r.is_error != Some(true), "{lc:?}: {r:?}");
        let r = client.call_tool(unlock(VEHICLE)).await.unwrap();
        assert!(r.is_error != Some(true), "{lc:?}: {r:?}");
        let r = client
            .call_tool(
                CallToolRequestParams::new("list_application_secrets")
                    .with_arguments(args(json!({ "id": "app-fleet-console-01" }))),
            )
            .await
            .unwrap();
        let _ = r;
        client.cancel().await.ok();
    }
    assert_eq!(unlocks(&sim), 2);

    // A session still open (with its SSE stream) must not hold the shutdown up.
    let lingering = over_http((), &served.url, Some(HTTP_TOKEN), Lifecycle::Handshake).await;
    assert!(!lingering.list_all_tools().await.unwrap().is_empty());
    let pid = served.child.id().expect("running");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(5), served.child.wait())
        .await
        .expect("stops within 5 s of SIGTERM")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    drop(lingering);
    let _ = tokio::time::timeout(Duration::from_secs(5), &mut served.reader).await;
    let mut stdout = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut served.child.stdout.take().unwrap(), &mut stdout)
        .await
        .unwrap();
    assert!(stdout.is_empty(), "nothing on stdout: {stdout}");

    let stderr = served.stderr.lock().unwrap().clone();
    assert!(
        stderr.contains("TRACE") || stderr.contains("DEBUG"),
        "trace logging is on"
    );
    let mut secrets: Vec<String> = vec![common::CLIENT_SECRET.into(), HTTP_TOKEN.into()];
    for req in sim.requests() {
        if let Some(auth) = req.header("authorization") {
            secrets.push(auth.trim_start_matches("Bearer ").to_string());
        }
    }
    secrets.extend(sim.management_secrets());
    assert!(
        secrets.len() > 2,
        "access tokens were used: {:?}",
        sim.requests().len()
    );
    for s in &secrets {
        assert!(
            !s.is_empty() && !stderr.contains(s.as_str()),
            "stderr holds a secret ({} chars)",
            s.len()
        );
    }
    sim.shutdown();
}

#[tokio::test]
async fn a_non_loopback_bind_without_a_token_is_refused() {
    let mut cmd = command(None, &["serve", "--http", "0.0.0.0:0"], &[]);
    cmd.stdin(Stdio::null());
    let out = tokio::time::timeout(Duration::from_secs(10), cmd.output())
        .await
        .expect("refused at once, not served")
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("SMARTCAR_MCP_HTTP_TOKEN") && stderr.contains("0.0.0.0"),
        "{stderr}"
    );
    assert!(!stderr.contains("listening on"), "{stderr}");
    assert!(out.stdout.is_empty());
}

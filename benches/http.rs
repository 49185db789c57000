//! Streamable HTTP bench: the real `smartcar-mcp serve --http` binary against the canned upstream
//! on 127.0.0.1, with clients on kept-alive HTTP/1.1 connections, compared in the same run with
//! the floor: a bare axum relay (POST in, one upstream GET, JSON out, no MCP).
//!
//! Loads: one sequential client on one connection; 64 callers in flight over 16 connections
//! (HTTP/1.1 carries one request at a time, so the other 48 wait for a connection, as in a
//! client's pool). The server is measured in both lifecycles: 2026-07-28 stateless requests and
//! 2025-11-25 sessions (one session per connection). Every figure is a median over rounds, and
//! the ratios to the floor are the targets of issue 26.
//!
//! The server is also measured as an OAuth resource server (`server-oauth`: a JWT access token
//! on every request, its key cached), against the same binary without OAuth in the same run: what
//! token checking adds per call (issue 24's target: under 20 µs). Every client sends the same
//! `Authorization` header, so only the checking differs.
//!
//! Run: `cargo bench --bench http` (`BENCH_JSON=PATH` or `-- --json PATH` for JSON). Without
//! `--bench` (as `cargo test --benches` runs it) it does a quick smoke pass. The server measured
//! is the binary cargo builds for benches, or `SMARTCAR_MCP_BIN`; `HTTP_SERVERS=before=PATH,...`
//! adds other builds of the server to the same run. The floor is this executable started again
//! with `SMARTCAR_MCP_BENCH_ROLE=http-floor`.

mod harness;
#[allow(dead_code)]
mod mcp_http;
mod oauth;
#[allow(dead_code)]
mod upstream;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

const ROLE_ENV: &str = "SMARTCAR_MCP_BENCH_ROLE";
const FLOOR_PORT_ENV: &str = "SMARTCAR_MCP_BENCH_PORT";
const VEHICLE: &str = "36ab27d0-fd9d-4455-823a-ce30af709ffc";
const USER: &str = "93b3ee5b-2ea2-4c52-9f0f-3e3c0cf1a1b4";
const SIGNAL: &str = "tractionbattery-stateofcharge";
const IN_FLIGHT: usize = 64;
const CONNECTIONS: usize = 16;
/// The whole run is killed past this, so a wedged child can never hang CI.
const DEADLINE: Duration = Duration::from_secs(400);

fn main() {
    match std::env::var(ROLE_ENV).as_deref() {
        Ok("http-floor") => floor::run(),
        _ => harness(),
    }
}

/// The floor: what serving one read over HTTP costs with no MCP at all.
mod floor {
    use std::sync::Arc;

    use axum::Router;
    use axum::extract::State;
    use axum::routing::{get, post};
    use axum::serve::ListenerExt;
    use hyper::body::Bytes;
    use serde_json::{Value, json};

    struct Relay {
        http: reqwest::Client,
        auth_url: String,
        api_url: String,
        token: tokio::sync::OnceCell<String>,
    }

    fn env(name: &str) -> String {
        std::env::var(name).unwrap_or_default()
    }

    impl Relay {
        async fn token(&self) -> &str {
            self.token
                .get_or_init(|| async {
                    let body = format!(
                        "grant_type=client_credentials&client_id={}&client_secret={}",
                        env("SMARTCAR_CLIENT_ID"),
                        env("SMARTCAR_CLIENT_SECRET")
                    );
                    let v: Value = async {
                        self.http
                            .post(format!("{}/oauth2/token", self.auth_url))
                            .header("content-type", "application/x-www-form-urlencoded")
                            .body(body)
                            .send()
                            .await?
                            .json()
                            .await
                    }
                    .await
                    .unwrap_or_default();
                    v["access_token"].as_str().unwrap_or("").to_string()
                })
                .await
        }
    }

    async fn mcp(State(relay): State<Arc<Relay>>, body: Bytes) -> axum::Json<Value> {
        let msg: Value = serde_json::from_slice(&body).unwrap_or_default();
        let arg = |k: &str| {
            msg.pointer(&format!("/params/arguments/{k}"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let url = format!(
            "{}/vehicles/{}/signals/{}",
            relay.api_url,
            arg("vehicle_id"),
            arg("signal_code")
        );
        let answer = relay
            .http
            .get(url)
            .bearer_auth(relay.token().await)
            .header("sc-user-id", arg("user_id"))
            .header("accept", "application/json")
            .send()
            .await;
        let (text, is_error) = match answer {
            Ok(r) => {
                let ok = r.status().is_success();
                match r.text().await {
                    Ok(t) => (t, !ok),
                    Err(e) => (e.to_string(), true),
                }
            }
            Err(e) => (e.to_string(), true),
        };
        axum::Json(json!({
            "jsonrpc": "2.0", "id": msg.get("id").cloned().unwrap_or(Value::Null),
            "result": { "content": [{ "type": "text", "text": text }], "isError": is_error },
        }))
    }

    pub fn run() {
        let port: u16 = env(super::FLOOR_PORT_ENV).parse().expect("a port to bind");
        let relay = Arc::new(Relay {
            http: reqwest::Client::new(),
            auth_url: env("SMARTCAR_AUTH_URL"),
            api_url: env("SMARTCAR_API_URL"),
            token: tokio::sync::OnceCell::new(),
        });
        let app = Router::new()
            .route("/mcp", post(mcp))
            .route("/healthz", get(|| async { "ok" }))
            .with_state(relay);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime starts");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .expect("the floor's port binds");
            // A floor is the best a bare server does: no Nagle delay on its answers.
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let _ = axum::serve(listener, app).await;
        });
    }
}

/// How much to measure; the quick pass only proves every path works. Counts are per round and
/// capped by time, so a server with a stall per request cannot make the run endless.
#[derive(Clone, Copy)]
struct Plan {
    rounds: usize,
    warm_up: usize,
    sequential: usize,
    concurrent: usize,
    /// The longest one load runs in one round.
    seconds: f64,
}

const FULL: Plan = Plan {
    rounds: 3,
    warm_up: 200,
    sequential: 2_000,
    concurrent: 20_000,
    seconds: 4.0,
};

const QUICK: Plan = Plan {
    rounds: 1,
    warm_up: 5,
    sequential: 20,
    concurrent: 256,
    seconds: 2.0,
};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Lifecycle {
    /// The floor: no MCP.
    Plain,
    /// 2026-07-28: every request stands alone, its client in `_meta`.
    Stateless,
    /// 2025-11-25: `initialize`, then requests in the session.
    Session,
}

impl Lifecycle {
    fn key(self) -> &'static str {
        match self {
            Lifecycle::Plain => "plain",
            Lifecycle::Stateless => "stateless-2026-07-28",
            Lifecycle::Session => "session-2025-11-25",
        }
    }
}

/// A process to measure: the floor, the server, or another build of the server.
#[derive(Clone)]
struct Target {
    key: String,
    label: String,
    /// `None`: the floor.
    binary: Option<PathBuf>,
    /// Served as an OAuth resource server trusting the bench's issuer.
    oauth: bool,
}

/// The bench issuer's access token, sent by every client (ignored where OAuth is off).
static BEARER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
/// The flags naming the bench issuer.
static OAUTH_FLAGS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();

impl Target {
    fn lifecycles(&self) -> &'static [Lifecycle] {
        match self.binary {
            None => &[Lifecycle::Plain],
            Some(_) => &[Lifecycle::Stateless, Lifecycle::Session],
        }
    }

    fn start(&self, port: u16, up: &upstream::Upstream) -> Child {
        let mut cmd = match &self.binary {
            Some(bin) => {
                let mut c = mcp_http::serve_command(bin, port, up);
                if self.oauth {
                    c.args(OAUTH_FLAGS.get().expect("the issuer started"));
                }
                c
            }
            None => {
                let mut c = Command::new(std::env::current_exe().expect("own path"));
                c.env_clear()
                    .env(ROLE_ENV, "http-floor")
                    .env(FLOOR_PORT_ENV, port.to_string())
                    .env("SMARTCAR_CLIENT_ID", "bench-client")
                    .env("SMARTCAR_CLIENT_SECRET", "bench-client-secret")
                    .env("SMARTCAR_AUTH_URL", up.auth_url())
                    .env("SMARTCAR_API_URL", up.api_url())
                    .stdin(Stdio::null())
                    .stdout(Stdio::null());
                c
            }
        };
        cmd.stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.label))
    }
}

/// The server binary cargo built for this bench, or `SMARTCAR_MCP_BIN`.
fn server_binary() -> PathBuf {
    std::env::var_os("SMARTCAR_MCP_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_smartcar-mcp")))
}

fn targets() -> Vec<Target> {
    let mut t = vec![
        Target {
            key: "floor".into(),
            label: "floor: bare axum relay".into(),
            binary: None,
            oauth: false,
        },
        Target {
            key: "server".into(),
            label: "server".into(),
            binary: Some(server_binary()),
            oauth: false,
        },
        Target {
            key: "server-oauth".into(),
            label: "server, OAuth".into(),
            binary: Some(server_binary()),
            oauth: true,
        },
    ];
    for (k, v) in std::env::var("HTTP_SERVERS")
        .unwrap_or_default()
        .split(',')
        .filter_map(|kv| kv.split_once('='))
    {
        t.push(Target {
            key: k.trim().into(),
            label: format!("server: {} binary", k.trim()),
            binary: Some(PathBuf::from(v.trim())),
            oauth: false,
        });
    }
    t
}

/// One kept-alive HTTP/1.1 connection, and the session it carries (2025-11-25 only).
struct Conn {
    send: SendRequest<Full<Bytes>>,
    port: u16,
    session: Option<String>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn call_body(lifecycle: Lifecycle) -> String {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let mut params = json!({ "name": "get_signal",
        "arguments": { "vehicle_id": VEHICLE, "user_id": USER, "signal_code": SIGNAL } });
    if lifecycle == Lifecycle::Stateless {
        params["_meta"] = mcp_http::modern_meta();
    }
    json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params }).to_string()
}

impl Conn {
    async fn open(port: u16, lifecycle: Lifecycle) -> Conn {
        let tcp = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("the target accepts connections");
        // The client's own writes must not be what waits on Nagle.
        let _ = tcp.set_nodelay(true);
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .expect("an HTTP/1.1 handshake");
        tokio::spawn(conn);
        let mut c = Conn {
            send,
            port,
            session: None,
        };
        if lifecycle == Lifecycle::Session {
            let init = json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": { "name": "http-bench", "version": "0" } } });
            let (status, session, body) = c.post(&init.to_string(), &[]).await;
            assert_eq!(
                status,
                200,
                "initialize: {}",
                String::from_utf8_lossy(&body)
            );
            c.session = Some(session.expect("a session id"));
            let note = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
            let (status, _, _) = c.post(&note.to_string(), &[]).await;
            assert!(status / 100 == 2, "notifications/initialized: {status}");
        }
        c
    }

    /// One POST to /mcp; the status, the session header and the whole body.
    async fn post(&mut self, body: &str, extra: &[(&str, &str)]) -> (u16, Option<String>, Bytes) {
        self.send.ready().await.expect("the connection stays open");
        let mut req = hyper::Request::post("/mcp")
            .header("host", format!("127.0.0.1:{}", self.port))
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json");
        if let Some(token) = BEARER.get() {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        if let Some(s) = &self.session {
            req = req
                .header("mcp-session-id", s.as_str())
                .header("mcp-protocol-version", "2025-11-25");
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("a valid request");
        let resp = self.send.send_request(req).await.expect("an HTTP answer");
        let status = resp.status().as_u16();
        let session = resp
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp
            .into_body()
            .collect()
            .await
            .expect("a whole body")
            .to_bytes();
        (status, session, body)
    }

    /// One `get_signal`, checked; its time in microseconds.
    async fn call(&mut self, lifecycle: Lifecycle) -> f64 {
        let body = call_body(lifecycle);
        let stateless = [
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "get_signal"),
        ];
        let extra: &[(&str, &str)] = if lifecycle == Lifecycle::Stateless {
            &stateless
        } else {
            &[]
        };
        let t = Instant::now();
        let (status, _, answer) = self.post(&body, extra).await;
        let dt = t.elapsed().as_secs_f64() * 1e6;
        let text = std::str::from_utf8(&answer).unwrap_or("");
        assert!(
            status == 200 && text.contains(r#""result""#) && !text.contains(r#""isError":true"#),
            "{} get_signal failed ({status}): {text}",
            lifecycle.key()
        );
        dt
    }
}

/// Percentiles in microseconds and the calls per second of one load.
#[derive(Clone, Copy, Default)]
struct Load {
    p50: f64,
    p99: f64,
    calls_per_s: f64,
    calls: usize,
}

fn load(mut v: Vec<f64>, elapsed: f64) -> Load {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    Load {
        p50: at(0.5),
        p99: at(0.99),
        calls_per_s: v.len() as f64 / elapsed,
        calls: v.len(),
    }
}

async fn sequential(port: u16, lifecycle: Lifecycle, plan: Plan) -> Load {
    let mut c = Conn::open(port, lifecycle).await;
    let warm = Instant::now();
    for _ in 0..plan.warm_up {
        c.call(lifecycle).await;
        if warm.elapsed().as_secs_f64() > plan.seconds / 4.0 {
            break;
        }
    }
    let mut v = Vec::with_capacity(plan.sequential);
    let start = Instant::now();
    while v.len() < plan.sequential && start.elapsed().as_secs_f64() < plan.seconds {
        v.push(c.call(lifecycle).await);
    }
    load(v, start.elapsed().as_secs_f64())
}

/// 64 callers sharing 16 connections: each takes its connection for one call at a time, and
/// its time counts from asking for the connection, as a pooled client sees it.
async fn concurrent(port: u16, lifecycle: Lifecycle, plan: Plan) -> Load {
    let mut conns = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let mut c = Conn::open(port, lifecycle).await;
        c.call(lifecycle).await;
        conns.push(Arc::new(tokio::sync::Mutex::new(c)));
    }
    let left = Arc::new(AtomicUsize::new(plan.concurrent));
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(plan.seconds);
    let callers: Vec<_> = (0..IN_FLIGHT)
        .map(|i| {
            let (conn, left) = (conns[i % CONNECTIONS].clone(), left.clone());
            tokio::spawn(async move {
                let mut v = Vec::new();
                while Instant::now() < until
                    && left
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                        .is_ok()
                {
                    let t = Instant::now();
                    conn.lock().await.call(lifecycle).await;
                    v.push(t.elapsed().as_secs_f64() * 1e6);
                }
                v
            })
        })
        .collect();
    let mut v = Vec::new();
    for c in callers {
        v.extend(c.await.expect("a caller finished"));
    }
    load(v, start.elapsed().as_secs_f64())
}

/// One target's figures in one round: per lifecycle, the sequential and the 64-in-flight load.
type Round = Vec<(Lifecycle, Load, Load)>;

async fn measure(target: &Target, plan: Plan, up: &upstream::Upstream) -> Round {
    let port = mcp_http::free_port();
    let mut child = target.start(port, up);
    let http = reqwest::Client::new();
    mcp_http::wait_healthy(&http, port).await;
    let mut out = Vec::new();
    for &lc in target.lifecycles() {
        let seq = sequential(port, lc, plan).await;
        let conc = concurrent(port, lc, plan).await;
        out.push((lc, seq, conc));
    }
    let _ = child.kill();
    let _ = child.wait();
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn combine(loads: &[Load]) -> Load {
    Load {
        p50: median(loads.iter().map(|l| l.p50).collect()),
        p99: median(loads.iter().map(|l| l.p99).collect()),
        calls_per_s: median(loads.iter().map(|l| l.calls_per_s).collect()),
        calls: loads.iter().map(|l| l.calls).sum(),
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        (a / b * 100.0).round() / 100.0
    } else {
        f64::NAN
    }
}

fn load_json(l: &Load) -> Value {
    json!({ "p50_us": l.p50, "p99_us": l.p99, "calls_per_s": l.calls_per_s, "calls": l.calls })
}

fn harness() {
    let harness::Run { full, json_path } = harness::start("http", DEADLINE);
    let plan = if full { FULL } else { QUICK };
    let rt = harness::runtime();
    let up = rt
        .block_on(upstream::start())
        .expect("127.0.0.1 can be bound");
    let issuer = rt.block_on(oauth::Issuer::start());
    BEARER.set(issuer.token.clone()).expect("set once");
    OAUTH_FLAGS.set(issuer.flags()).expect("set once");
    let targets = targets();
    let load_before = harness::loadavg();
    println!(
        "http: {} pass, upstream {}, server {}",
        if full { "full" } else { "quick" },
        up.addr,
        server_binary().display()
    );
    let mut rounds: Vec<Vec<Round>> = vec![Vec::new(); targets.len()];
    for round in 1..=plan.rounds {
        let started = Instant::now();
        for (i, t) in targets.iter().enumerate() {
            rounds[i].push(rt.block_on(measure(t, plan, &up)));
        }
        eprintln!(
            "http: round {round}/{} took {:.1?}",
            plan.rounds,
            started.elapsed()
        );
    }
    let load_after = harness::loadavg();
    // (target, lifecycle, sequential, concurrent), each the median over rounds.
    let mut rows: Vec<(&Target, Lifecycle, Load, Load)> = Vec::new();
    for (t, rs) in targets.iter().zip(&rounds) {
        for (k, &lc) in t.lifecycles().iter().enumerate() {
            let seq: Vec<Load> = rs.iter().map(|r| r[k].1).collect();
            let conc: Vec<Load> = rs.iter().map(|r| r[k].2).collect();
            rows.push((t, lc, combine(&seq), combine(&conc)));
        }
    }
    let floor = rows[0];
    println!(
        "\n{:<44} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "", "seq p50", "seq p99", "seq", "64 p50", "64 p99", "64 in flt"
    );
    println!(
        "{:<44} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "", "µs", "µs", "calls/s", "µs", "µs", "calls/s"
    );
    for (t, lc, s, c) in &rows {
        let name = match lc {
            Lifecycle::Plain => t.label.clone(),
            _ => format!("{}, {}", t.label, lc.key()),
        };
        println!(
            "{name:<44} {:>10.0} {:>10.0} {:>10.0} {:>10.0} {:>10.0} {:>10.0}",
            s.p50, s.p99, s.calls_per_s, c.p50, c.p99, c.calls_per_s
        );
    }
    let verdict = |ok: bool| if ok { "met" } else { "missed" };
    let mut ratios = serde_json::Map::new();
    println!(
        "\nratios to the floor (targets: seq p50 <= 1.5, seq p99 <= 2, 64-in-flight throughput >= 0.7)"
    );
    for (t, lc, s, c) in rows.iter().skip(1) {
        let (p50, p99, tput) = (
            ratio(s.p50, floor.2.p50),
            ratio(s.p99, floor.2.p99),
            ratio(c.calls_per_s, floor.3.calls_per_s),
        );
        let key = format!("{}/{}", t.key, lc.key());
        println!(
            "{key:<44} seq p50 {p50:>6.2}x ({})  seq p99 {p99:>6.2}x ({})  64 in flight {tput:>5.2}x ({})  64 p50 {:>6.2}x",
            verdict(p50 <= 1.5),
            verdict(p99 <= 2.0),
            verdict(tput >= 0.7),
            ratio(c.p50, floor.3.p50),
        );
        ratios.insert(
            key,
            json!({
                "sequential_p50": p50, "sequential_p99": p99,
                "throughput_64_in_flight": tput,
                "p50_64_in_flight": ratio(c.p50, floor.3.p50),
                "p99_64_in_flight": ratio(c.p99, floor.3.p99),
                "targets_met": { "sequential_p50": p50 <= 1.5, "sequential_p99": p99 <= 2.0,
                                 "throughput_64_in_flight": tput >= 0.7 },
            }),
        );
    }
    let oauth = oauth_cost(&rows);
    let c = &up.counts;
    println!(
        "upstream requests: {} token, {} signal; load average {load_before} -> {load_after}",
        c.token.load(Ordering::Relaxed),
        c.signal.load(Ordering::Relaxed)
    );
    if let Some(path) = json_path {
        let report = json!({
            "plan": { "rounds": plan.rounds, "warm_up": plan.warm_up, "sequential": plan.sequential,
                      "concurrent": plan.concurrent, "seconds_per_load": plan.seconds,
                      "in_flight": IN_FLIGHT, "connections": CONNECTIONS },
            "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "load_average": { "before": load_before, "after": load_after },
            "rows": rows.iter().map(|(t, lc, s, c)| json!({
                "target": t.key, "label": t.label, "lifecycle": lc.key(),
                "sequential": load_json(s), "in_flight_64": load_json(c),
            })).collect::<Vec<_>>(),
            "ratios_to_floor": ratios,
            "oauth_cost": oauth,
        });
        let text = serde_json::to_string_pretty(&report).expect("JSON serializes");
        match std::fs::write(&path, text + "\n") {
            Ok(()) => println!("http: wrote {path}"),
            Err(e) => eprintln!("http: cannot write {path}: {e}"),
        }
    }
    rt.shutdown_timeout(Duration::from_secs(1));
}

/// What OAuth adds: `server-oauth` against `server`, lifecycle by lifecycle, in µs per call and as
/// a ratio (target: under 20 µs at the sequential median).
fn oauth_cost(rows: &[(&Target, Lifecycle, Load, Load)]) -> Value {
    let mut out = serde_json::Map::new();
    println!("\nOAuth token checking (server-oauth - server; target: seq p50 under 20 µs a call)");
    for (t, lc, s, c) in rows.iter().filter(|r| r.0.key == "server-oauth") {
        let Some((_, _, bs, bc)) = rows.iter().find(|r| r.0.key == "server" && r.1 == *lc) else {
            continue;
        };
        let added = s.p50 - bs.p50;
        println!(
            "{:<44} seq p50 {added:>+7.1} µs ({:.2}x, {})  64 p50 {:>+7.1} µs  64 in flight {:>5.2}x",
            format!("{}/{}", t.key, lc.key()),
            ratio(s.p50, bs.p50),
            if added < 20.0 { "met" } else { "missed" },
            c.p50 - bc.p50,
            ratio(c.calls_per_s, bc.calls_per_s),
        );
        out.insert(
            lc.key().into(),
            json!({ "sequential_p50_added_us": added, "sequential_p50_ratio": ratio(s.p50, bs.p50),
                    "p50_64_in_flight_added_us": c.p50 - bc.p50,
                    "throughput_64_in_flight_ratio": ratio(c.calls_per_s, bc.calls_per_s),
                    "target_met": added < 20.0 }),
        );
    }
    Value::Object(out)
}

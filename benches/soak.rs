//! Soak bench: one `serve --http` child under mixed MCP calls for minutes while the canned
//! upstream (benches/upstream) injects faults on a schedule: 429 storms with `Retry-After`, 5xx
//! answers, slow answers (seconds) and connections closed without an answer. Stateless
//! 2026-07-28 clients and handshake (2025-11-25) sessions, opened and deleted again and again,
//! call get_signal, get_signals, list_connections, lock_vehicle and set_charge_limit (dry run
//! off). The server's VmRSS and RssAnon are sampled every 10 s.
//!
//! It reports requests sent and answered, tool errors, JSON-RPC errors, lost answers (no HTTP
//! answer carrying a JSON-RPC response within the client's timeout) and panics in the child's
//! stderr, and the first-minute and last-minute median memory with their ratio. It exits
//! non-zero when an answer was lost or the server panicked.
//!
//! Run: `cargo bench --bench soak` (`SOAK_SECONDS`, default 600). Under `cargo test --benches`
//! it makes one short run (`SOAK_SECONDS`, default 8) against the binary of that profile.
//! `SMARTCAR_MCP_BIN` measures another binary.

#[allow(dead_code)]
mod mcp_http;
#[allow(dead_code)]
mod upstream;

use std::path::PathBuf;
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Mutex;

use mcp_http::{Post, free_port, modern_meta, post, status_kb, wait_healthy};

const USER: &str = "93b3ee5b-2ea2-4c52-9f0f-3e3c0cf1a1b4";
/// Spread over several vehicles: the server runs at most 2 calls per vehicle at once.
const VEHICLES: usize = 8;
const STATELESS_WORKERS: usize = 6;
const SESSION_WORKERS: usize = 4;
/// Calls a handshake client makes before it deletes its session and opens a new one.
const CALLS_PER_SESSION: u64 = 40;
/// Longer than the server's worst case under these faults (a read's 20 s retry budget plus one
/// 30 s read timeout): a request unanswered by then is hung.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);
/// The fault schedule, one phase after another, round and round.
const PHASES: [(u8, &str); 6] = [
    (upstream::NORMAL, "normal"),
    (upstream::RATE_LIMITED, "429 storm"),
    (upstream::NORMAL, "normal"),
    (upstream::SERVER_ERROR, "5xx"),
    (upstream::SLOW, "slow"),
    (upstream::RESET, "resets"),
];

fn binary() -> PathBuf {
    std::env::var_os("SMARTCAR_MCP_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_smartcar-mcp")))
}

/// Counts of one load. Every request sent ends in exactly one of answered or lost.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    answered: AtomicU64,
    tool_errors: AtomicU64,
    rpc_errors: AtomicU64,
    lost: AtomicU64,
    /// The first few lost answers, to say what went wrong.
    examples: Mutex<Vec<String>>,
}

impl Tally {
    /// Classifies one answer: a JSON-RPC response with the request's id (a result, a result
    /// with `isError`, or an error) counts as answered; anything else is lost.
    async fn record(&self, id: u64, what: &str, answer: &Option<Post>) -> bool {
        let message = answer.as_ref().and_then(|p| p.body.as_ref()).filter(|b| {
            b.get("id").and_then(Value::as_u64) == Some(id)
                || (b["id"].is_null() && b.get("error").is_some())
        });
        match message {
            Some(m) if m.get("result").is_some() => {
                self.answered.fetch_add(1, Ordering::Relaxed);
                if m["result"]["isError"] == true {
                    self.tool_errors.fetch_add(1, Ordering::Relaxed);
                }
                true
            }
            Some(m) if m.get("error").is_some() => {
                self.answered.fetch_add(1, Ordering::Relaxed);
                self.rpc_errors.fetch_add(1, Ordering::Relaxed);
                true
            }
            _ => {
                self.lost.fetch_add(1, Ordering::Relaxed);
                let mut ex = self.examples.lock().await;
                if ex.len() < 5 {
                    ex.push(match answer {
                        None => format!("{what} #{id}: no HTTP answer"),
                        Some(p) => format!(
                            "{what} #{id}: HTTP {} with {}",
                            p.status,
                            p.body.as_ref().map_or("no JSON-RPC message".into(), |b| {
                                b.to_string().chars().take(200).collect::<String>()
                            })
                        ),
                    });
                }
                false
            }
        }
    }

    async fn report(&self, name: &str) {
        println!(
            "{name:<24} sent {:>7}  answered {:>7}  tool errors {:>6}  JSON-RPC errors {:>4}  lost {:>3}",
            self.sent.load(Ordering::Relaxed),
            self.answered.load(Ordering::Relaxed),
            self.tool_errors.load(Ordering::Relaxed),
            self.rpc_errors.load(Ordering::Relaxed),
            self.lost.load(Ordering::Relaxed),
        );
        for e in self.examples.lock().await.iter() {
            println!("    lost: {e}");
        }
    }
}

/// The n-th call of the mix: three reads, then two commands, in turn.
fn call(n: u64) -> (&'static str, Value) {
    let vehicle = format!("soak-vehicle-{}", fastrand::usize(..VEHICLES));
    match n % 5 {
        0 => (
            "get_signal",
            json!({ "vehicle_id": vehicle, "user_id": USER, "signal_code": "tractionbattery-stateofcharge" }),
        ),
        1 => (
            "get_signals",
            json!({ "vehicle_id": vehicle, "user_id": USER }),
        ),
        2 => ("list_connections", json!({})),
        3 => (
            "lock_vehicle",
            json!({ "vehicle_id": vehicle, "user_id": USER }),
        ),
        _ => (
            "set_charge_limit",
            json!({ "vehicle_id": vehicle, "user_id": USER, "percent": 50 + (n % 51) }),
        ),
    }
}

async fn stateless_worker(
    http: reqwest::Client,
    url: String,
    t: Arc<Tally>,
    stop: Arc<AtomicBool>,
) {
    let mut id = 0;
    while !stop.load(Ordering::Relaxed) {
        id += 1;
        let (tool, args) = call(id);
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
            "name": tool, "arguments": args, "_meta": modern_meta() } });
        let headers = [
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", tool),
        ];
        t.sent.fetch_add(1, Ordering::Relaxed);
        let answer = post(&http, &url, &headers, &body).await;
        t.record(id, tool, &answer).await;
    }
}

async fn session_worker(
    http: reqwest::Client,
    url: String,
    t: Arc<Tally>,
    opened: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) {
    let mut id = 0;
    while !stop.load(Ordering::Relaxed) {
        id += 1;
        let init = json!({ "jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "soak", "version": "0" } } });
        t.sent.fetch_add(1, Ordering::Relaxed);
        let answer = post(&http, &url, &[], &init).await;
        let session = answer.as_ref().and_then(|p| p.session.clone());
        if !t.record(id, "initialize", &answer).await {
            continue;
        }
        let Some(session) = session else {
            // Answered without a session (503 when full): wait as told, then try again.
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        opened.fetch_add(1, Ordering::Relaxed);
        let session_headers = [
            ("mcp-session-id", session.as_str()),
            ("mcp-protocol-version", "2025-11-25"),
        ];
        let note = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
        let _ = post(&http, &url, &session_headers, &note).await;
        for _ in 0..CALLS_PER_SESSION {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            id += 1;
            let (tool, args) = call(id);
            let body = json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
                "name": tool, "arguments": args } });
            t.sent.fetch_add(1, Ordering::Relaxed);
            let answer = post(&http, &url, &session_headers, &body).await;
            t.record(id, tool, &answer).await;
        }
        let _ = http
            .delete(&url)
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-11-25")
            .send()
            .await;
    }
}

fn median(v: &[u64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_unstable();
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2] as f64,
        n => (v[n / 2 - 1] + v[n / 2]) as f64 / 2.0,
    }
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let seconds: u64 = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if bench { 600 } else { 8 });
    if !binary().exists() {
        println!("soak: skipped, {} is missing", binary().display());
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if !rt.block_on(run(Duration::from_secs(seconds))) {
        std::process::exit(1);
    }
}

fn start_server(port: u16, up: &upstream::Upstream, stderr: std::fs::File) -> Child {
    mcp_http::serve_command(&binary(), port, up)
        .stderr(stderr)
        .spawn()
        .expect("the server binary starts")
}

/// Runs the soak; true when nothing was lost and nothing panicked.
async fn run(length: Duration) -> bool {
    let up = upstream::start().await.unwrap();
    let dir = std::env::temp_dir().join(format!("smartcar-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let stderr_path = dir.join("server.stderr");
    let port = free_port();
    let mut server = start_server(port, &up, std::fs::File::create(&stderr_path).unwrap());
    let pid = server.id();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(CLIENT_TIMEOUT)
        .build()
        .unwrap();
    wait_healthy(&http, port).await;
    let url = format!("http://127.0.0.1:{port}/mcp");

    // Phases of 10 s in a full run (a 60 s cycle), shorter in a short one so each fault occurs.
    let phase = (length / 12).clamp(Duration::from_secs(1), Duration::from_secs(10));
    // Samples every 10 s in a full run; the first and last minute are compared.
    let every = (length / 30).clamp(Duration::from_millis(500), Duration::from_secs(10));
    let window = (length / 3).min(Duration::from_secs(60));

    let stop = Arc::new(AtomicBool::new(false));
    let (stateless, sessions) = (Arc::new(Tally::default()), Arc::new(Tally::default()));
    let opened = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..STATELESS_WORKERS {
        tasks.push(tokio::spawn(stateless_worker(
            http.clone(),
            url.clone(),
            stateless.clone(),
            stop.clone(),
        )));
    }
    for _ in 0..SESSION_WORKERS {
        tasks.push(tokio::spawn(session_worker(
            http.clone(),
            url.clone(),
            sessions.clone(),
            opened.clone(),
            stop.clone(),
        )));
    }

    let started = Instant::now();
    let sample = || [status_kb(pid, "VmRSS"), status_kb(pid, "RssAnon")];
    let mut samples: Vec<(Duration, [u64; 2])> = Vec::new();
    let mut next_sample = Duration::ZERO;
    let mut phase_counts = [0u32; PHASES.len()];
    let mut last_phase = usize::MAX;
    while started.elapsed() < length {
        let now = started.elapsed();
        let p = (now.as_millis() / phase.as_millis()) as usize % PHASES.len();
        if p != last_phase {
            up.fault.store(PHASES[p].0, Ordering::Relaxed);
            phase_counts[p] += 1;
            last_phase = p;
        }
        if now >= next_sample {
            samples.push((now, sample()));
            next_sample += every;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    samples.push((started.elapsed(), sample()));
    stop.store(true, Ordering::Relaxed);
    // Calls in flight finish under the faults of the last phase; then the upstream heals.
    for t in tasks {
        let _ = t.await;
    }
    up.fault.store(upstream::NORMAL, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let alive = matches!(server.try_wait(), Ok(None));
    let _ = server.kill();
    let _ = server.wait();
    let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let panics = log.matches("panicked").count();
    let _ = std::fs::remove_dir_all(&dir);

    println!(
        "\nsoak: one `serve --http` ({}), {elapsed:.0} s; fault phases of {} s: {}",
        binary().file_name().unwrap().to_string_lossy(),
        phase.as_secs_f64(),
        PHASES
            .iter()
            .zip(phase_counts)
            .map(|((_, name), n)| format!("{name} x{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    stateless.report("stateless 2026-07-28").await;
    sessions.report("handshake sessions").await;
    let sum = |f: fn(&Tally) -> &AtomicU64| {
        f(&stateless).load(Ordering::Relaxed) + f(&sessions).load(Ordering::Relaxed)
    };
    let (sent, answered, tool_errors, rpc_errors, lost) = (
        sum(|t| &t.sent),
        sum(|t| &t.answered),
        sum(|t| &t.tool_errors),
        sum(|t| &t.rpc_errors),
        sum(|t| &t.lost),
    );
    println!(
        "total: sent {sent}  answered {answered}  tool errors {tool_errors}  JSON-RPC errors {rpc_errors}  lost {lost}  panics {panics}; sessions opened {}; server {}",
        opened.load(Ordering::Relaxed),
        if alive {
            "alive at the end"
        } else {
            "EXITED during the run"
        }
    );
    let c = &up.counts;
    println!(
        "upstream: {} signal reads, {} commands, {} other, {} tokens; {} answers turned into faults",
        c.signal.load(Ordering::Relaxed),
        c.command.load(Ordering::Relaxed),
        c.other.load(Ordering::Relaxed),
        c.token.load(Ordering::Relaxed),
        c.faulted.load(Ordering::Relaxed)
    );
    let end = samples.last().map_or(Duration::ZERO, |s| s.0);
    let first: Vec<_> = samples.iter().filter(|s| s.0 <= window).collect();
    let last: Vec<_> = samples
        .iter()
        .filter(|s| s.0 + window >= end && s.0 > window)
        .collect();
    for (i, name) in ["VmRSS", "RssAnon"].into_iter().enumerate() {
        let a = median(&first.iter().map(|s| s.1[i]).collect::<Vec<_>>());
        let b = median(&last.iter().map(|s| s.1[i]).collect::<Vec<_>>());
        println!(
            "memory {name:<7} median of the first {:.0} s {:>6.1} MB, of the last {:.0} s {:>6.1} MB: ratio {:.3}",
            window.as_secs_f64(),
            a / 1024.0,
            window.as_secs_f64(),
            b / 1024.0,
            if a > 0.0 { b / a } else { f64::NAN }
        );
    }
    println!(
        "RssAnon samples (MB, every {} s): {}",
        every.as_secs_f64(),
        samples
            .iter()
            .map(|s| format!("{:.1}", s.1[1] as f64 / 1024.0))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let ok = lost == 0 && panics == 0 && alive && sent == answered + lost;
    if !ok {
        println!("soak: FAILED (lost answers, panics, or the server exited)");
        for l in log.lines().filter(|l| l.contains("panicked")).take(5) {
            println!("    {l}");
        }
    }
    ok
}

//! Scale-out bench: three `serve --http` replicas behind a real nginx on loopback, sharing one
//! canned upstream (benches/upstream) and one `SMARTCAR_MCP_CONFIRM_KEY`. Three loads run at once:
//! stateless 2026-07-28 `get_signal` calls (round robin), handshake-revision sessions with sticky
//! routing (nginx `hash` on a client key), and 2026-07-28 unlock confirmation rounds whose two
//! legs may land on different replicas. One replica is killed a third of the way in and
//! restarted at two thirds. Reports requests sent, answered and failed per load, the
//! confirmation rounds completed (and how many crossed replicas), and p50/p99 latency.
//!
//! Then its PostgreSQL part (benches/scale_pg): three replicas sharing one PostgreSQL store.
//!
//! Run: `cargo bench --bench scale` (`SCALE_SECONDS`, default 30; `SCALE_ONLY=postgres` or
//! `SCALE_ONLY=stateless` for one part). Needs `nginx` on PATH (`apt-get install nginx-light`);
//! without it the bench says so and exits. The PostgreSQL part needs `SCALE_POSTGRES` or
//! Debian's PostgreSQL server (`.ci/postgres`). Not run in CI.

#[allow(dead_code)]
mod mcp_http;
mod scale_pg;
#[allow(dead_code)]
mod upstream;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Mutex;

use mcp_http::{free_port, is_result, modern_meta, post, wait_healthy};

const VEHICLE: &str = "36ab27d0-fd9d-4455-823a-ce30af709ffc";
const USER: &str = "93b3ee5b-2ea2-4c52-9f0f-3e3c0cf1a1b4";
const CONFIRM_KEY: &str = "scale-bench-shared-confirm-key-0123456789abcdef";
const STATELESS_WORKERS: usize = 16;
const SESSION_WORKERS: usize = 8;
const CONFIRM_WORKERS: usize = 4;

fn binary() -> PathBuf {
    std::env::var_os("SMARTCAR_MCP_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/smartcar-mcp")
        })
}

fn has_nginx() -> bool {
    Command::new("nginx")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn start_replica(port: u16, up: &upstream::Upstream) -> Child {
    mcp_http::serve_command(&binary(), port, up)
        .env("SMARTCAR_MCP_CONFIRM_KEY", CONFIRM_KEY)
        .stderr(Stdio::null())
        .spawn()
        .expect("the release binary starts (cargo build --release)")
}

fn nginx_conf(dir: &std::path::Path, listen: u16, replicas: &[u16]) -> String {
    let servers: String = replicas
        .iter()
        .map(|p| format!("        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;\n"))
        .collect();
    format!(
        r#"daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log error;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream round_robin {{
{servers}        keepalive 64;
    }}
    upstream sticky {{
        hash $http_x_client_key consistent;
{servers}        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{listen};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host 127.0.0.1;
        proxy_buffering off;
        proxy_read_timeout 30s;
        # A request not yet sent (connection refused) goes to the next replica; one already
        # sent is not replayed (POST is not idempotent), so only those in flight can fail.
        proxy_next_upstream error timeout http_502;
        add_header X-Replica $upstream_addr always;
        location /stateless/ {{ proxy_pass http://round_robin/; }}
        location /sticky/ {{ proxy_pass http://sticky/; }}
    }}
}}
"#,
        dir = dir.display()
    )
}

#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    answered: AtomicU64,
    failed: AtomicU64,
    latencies_us: Mutex<Vec<u64>>,
}

impl Tally {
    async fn record(&self, ok: bool, started: Instant) {
        if ok {
            self.answered.fetch_add(1, Ordering::Relaxed);
            self.latencies_us
                .lock()
                .await
                .push(started.elapsed().as_micros() as u64);
        } else {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    async fn report(&self, name: &str) {
        let mut l = self.latencies_us.lock().await;
        l.sort_unstable();
        let pct = |p: f64| {
            l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
                .map_or(0.0, |v| *v as f64 / 1000.0)
        };
        println!(
            "{name:<28} sent {:>7}  answered {:>7}  failed {:>4}  p50 {:>6.2} ms  p99 {:>6.2} ms",
            self.sent.load(Ordering::Relaxed),
            self.answered.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            pct(0.50),
            pct(0.99)
        );
    }
}

fn signal_call(id: u64) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
        "name": "get_signal",
        "arguments": { "vehicle_id": VEHICLE, "user_id": USER, "signal_code": "tractionbattery-stateofcharge" },
        "_meta": modern_meta() } })
}

async fn stateless_worker(
    http: reqwest::Client,
    url: String,
    t: Arc<Tally>,
    stop: Arc<AtomicBool>,
) {
    let headers = [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "get_signal"),
    ];
    let mut id = 0;
    while !stop.load(Ordering::Relaxed) {
        id += 1;
        t.sent.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let r = post(&http, &url, &headers, &signal_call(id)).await;
        t.record(is_result(&r), started).await;
    }
}

async fn session_worker(
    http: reqwest::Client,
    url: String,
    key: String,
    t: Arc<Tally>,
    reinit: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) {
    let init = json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "scale", "version": "0" } } });
    let mut session: Option<String> = None;
    let mut id = 0;
    while !stop.load(Ordering::Relaxed) {
        let Some(s) = session.clone() else {
            t.sent.fetch_add(1, Ordering::Relaxed);
            let started = Instant::now();
            let r = post(&http, &url, &[("x-client-key", &key)], &init).await;
            let ok = is_result(&r);
            t.record(ok, started).await;
            if let (true, Some(r)) = (ok, r) {
                session = r.session.clone();
                let note = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
                if let Some(s) = &session {
                    let _ = post(
                        &http,
                        &url,
                        &[("x-client-key", &key), ("mcp-session-id", s)],
                        &note,
                    )
                    .await;
                }
                reinit.fetch_add(1, Ordering::Relaxed);
            } else {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            continue;
        };
        id += 1;
        let call = json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
            "name": "get_signal",
            "arguments": { "vehicle_id": VEHICLE, "user_id": USER, "signal_code": "tractionbattery-stateofcharge" } } });
        t.sent.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let r = post(
            &http,
            &url,
            &[
                ("x-client-key", &key),
                ("mcp-session-id", &s),
                ("mcp-protocol-version", "2025-11-25"),
            ],
            &call,
        )
        .await;
        let ok = is_result(&r);
        t.record(ok, started).await;
        if !ok {
            // The replica holding the session is gone (404 elsewhere): start a new session.
            session = None;
        }
    }
}

#[derive(Default)]
struct Rounds {
    completed: AtomicU64,
    crossed: AtomicU64,
    refused: AtomicU64,
}

async fn confirm_worker(
    http: reqwest::Client,
    url: String,
    t: Arc<Tally>,
    rounds: Arc<Rounds>,
    stop: Arc<AtomicBool>,
) {
    let headers = [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "unlock_vehicle"),
    ];
    let args = json!({ "vehicle_id": VEHICLE, "user_id": USER });
    let mut id = 0;
    while !stop.load(Ordering::Relaxed) {
        id += 2;
        let ask = json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
            "name": "unlock_vehicle", "arguments": args, "_meta": modern_meta() } });
        t.sent.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let first = post(&http, &url, &headers, &ask).await;
        let state = first
            .as_ref()
            .and_then(|p| p.body.as_ref())
            .and_then(|b| b["result"]["requestState"].as_str().map(str::to_string));
        t.record(state.is_some(), started).await;
        let Some(state) = state else { continue };
        let answer = json!({ "jsonrpc": "2.0", "id": id + 1, "method": "tools/call", "params": {
            "name": "unlock_vehicle", "arguments": args, "_meta": modern_meta(),
            "inputResponses": { "confirm": { "action": "accept", "content": { "confirm": true } } },
            "requestState": state } });
        t.sent.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let second = post(&http, &url, &headers, &answer).await;
        let ok = is_result(&second);
        t.record(ok, started).await;
        if let (true, Some(s)) = (ok, &second) {
            let result = &s.body.as_ref().unwrap()["result"];
            if result["isError"] == true {
                rounds.refused.fetch_add(1, Ordering::Relaxed);
            } else {
                rounds.completed.fetch_add(1, Ordering::Relaxed);
                if first.as_ref().is_some_and(|f| f.replica != s.replica) {
                    rounds.crossed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("scale: run with `cargo bench --bench scale`");
        return;
    }
    if !has_nginx() {
        println!("scale: skipped, `nginx` is not on PATH (apt-get install nginx-light)");
        return;
    }
    if !binary().exists() {
        println!(
            "scale: skipped, {} is missing (cargo build --release)",
            binary().display()
        );
        return;
    }
    let seconds: u64 = std::env::var("SCALE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let only = std::env::var("SCALE_ONLY").unwrap_or_default();
    if only != "postgres" {
        rt.block_on(run(Duration::from_secs(seconds)));
    }
    if only != "stateless" {
        rt.block_on(scale_pg::run(&binary()));
    }
}

async fn run(length: Duration) {
    let up = upstream::start().await.unwrap();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut replicas: Vec<Child> = ports.iter().map(|p| start_replica(*p, &up)).collect();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    for p in &ports {
        wait_healthy(&http, *p).await;
    }
    let rss_start: Vec<String> = replicas
        .iter()
        .map(|c| {
            format!(
                "{:.1}",
                mcp_http::status_kb(c.id(), "VmRSS") as f64 / 1024.0
            )
        })
        .collect();
    let dir = std::env::temp_dir().join(format!("smartcar-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let listen = free_port();
    std::fs::write(dir.join("nginx.conf"), nginx_conf(&dir, listen, &ports)).unwrap();
    let mut nginx = Command::new("nginx")
        .args([
            "-p",
            &dir.display().to_string(),
            "-c",
            &dir.join("nginx.conf").display().to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("nginx starts");
    tokio::time::sleep(Duration::from_millis(500)).await;

    let stop = Arc::new(AtomicBool::new(false));
    let (stateless, sessions, confirms) = (
        Arc::new(Tally::default()),
        Arc::new(Tally::default()),
        Arc::new(Tally::default()),
    );
    let rounds = Arc::new(Rounds::default());
    let reinit = Arc::new(AtomicU64::new(0));
    let base = format!("http://127.0.0.1:{listen}");
    let mut tasks = Vec::new();
    for _ in 0..STATELESS_WORKERS {
        tasks.push(tokio::spawn(stateless_worker(
            http.clone(),
            format!("{base}/stateless/mcp"),
            stateless.clone(),
            stop.clone(),
        )));
    }
    for i in 0..SESSION_WORKERS {
        tasks.push(tokio::spawn(session_worker(
            http.clone(),
            format!("{base}/sticky/mcp"),
            format!("client-{i}"),
            sessions.clone(),
            reinit.clone(),
            stop.clone(),
        )));
    }
    for _ in 0..CONFIRM_WORKERS {
        tasks.push(tokio::spawn(confirm_worker(
            http.clone(),
            format!("{base}/stateless/mcp"),
            confirms.clone(),
            rounds.clone(),
            stop.clone(),
        )));
    }
    let started = Instant::now();
    tokio::time::sleep(length / 3).await;
    let _ = replicas[1].kill();
    let _ = replicas[1].wait();
    println!(
        "replica 2 killed at {:.1} s",
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(length / 3).await;
    replicas[1] = start_replica(ports[1], &up);
    wait_healthy(&http, ports[1]).await;
    println!(
        "replica 2 restarted at {:.1} s",
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(length - started.elapsed().min(length)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!("\nscale: 3 replicas behind nginx, {elapsed:.1} s, one replica killed and restarted");
    stateless.report("stateless 2026-07-28").await;
    sessions.report("handshake, sticky").await;
    confirms.report("confirmation legs").await;
    println!(
        "confirmation rounds completed {} ({} across replicas), refused {}; sessions opened {}",
        rounds.completed.load(Ordering::Relaxed),
        rounds.crossed.load(Ordering::Relaxed),
        rounds.refused.load(Ordering::Relaxed),
        reinit.load(Ordering::Relaxed)
    );
    let answered: u64 = [&stateless, &sessions, &confirms]
        .iter()
        .map(|t| t.answered.load(Ordering::Relaxed))
        .sum();
    println!(
        "throughput {:.0} answers/s; replica RSS at the start {} MB, at the end {} MB (replica 2 restarted)",
        answered as f64 / elapsed,
        rss_start.join(" / "),
        replicas
            .iter()
            .map(|c| format!(
                "{:.1}",
                mcp_http::status_kb(c.id(), "VmRSS") as f64 / 1024.0
            ))
            .collect::<Vec<_>>()
            .join(" / ")
    );
    println!(
        "upstream saw {} signal reads and {} commands",
        up.counts.signal.load(Ordering::Relaxed),
        up.counts.command.load(Ordering::Relaxed)
    );
    let _ = nginx.kill();
    let _ = nginx.wait();
    for mut r in replicas {
        let _ = r.kill();
        let _ = r.wait();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

//! End-to-end benchmark: the real `smartcar-mcp` binary over stdio against a canned upstream on
//! 127.0.0.1, compared in the same run with a direct HTTP call and a bare baseline relay.
//!
//! Run: `cargo bench --bench e2e` (add `-- --json PATH`, or set `BENCH_JSON=PATH`, for JSON).
//! Without `--bench` (as `cargo test --benches` runs it) it does a quick smoke pass instead.
//!
//! The relay and the transport variants are this same executable started again with
//! `SMARTCAR_MCP_BENCH_ROLE` set, so the bench needs no extra binary target. The server measured
//! is the binary cargo builds for benches (`target/release/smartcar-mcp`), or `SMARTCAR_MCP_BIN`.
//! `E2E_TARGETS=server,relay` (keys as in the JSON) narrows a run while investigating.
//! `E2E_SERVERS=before=PATH,dist=PATH` adds other builds of the server to the same run (keys
//! `before`, `dist`), so a change is measured against the binary it replaces, round by round.

// The in-process transports poll the whole server future inside one async block, whose layout
// is deeper than rustc's default query depth of 128.
#![recursion_limit = "256"]

mod harness;
mod relay;
mod transport;
mod upstream;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ROLE_ENV: &str = "SMARTCAR_MCP_BENCH_ROLE";
const VEHICLE: &str = "36ab27d0-fd9d-4455-823a-ce30af709ffc";
const USER: &str = "93b3ee5b-2ea2-4c52-9f0f-3e3c0cf1a1b4";
const SIGNAL: &str = "tractionbattery-stateofcharge";
const IN_FLIGHT: usize = 64;
/// The whole run is killed past this, so a wedged child can never hang CI.
const DEADLINE: Duration = Duration::from_secs(170);

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e-bench","version":"0"}}}"#;
const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
const TOOLS_LIST: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#;

fn main() {
    match std::env::var(ROLE_ENV).as_deref() {
        Ok("relay") => relay::run_threads(),
        Ok("relay-tokio") => relay::run_tokio(),
        Ok("lib-stdio") => transport::serve(transport::Kind::Stdio),
        Ok("lib-pipes") => transport::serve(transport::Kind::Pipes),
        Ok("lib-threads") => transport::serve(transport::Kind::Threads),
        Ok("lib-pipes-batched") => transport::serve(transport::Kind::PipesBatched),
        Ok("lib-pipes-current") => transport::serve(transport::Kind::PipesCurrentThread),
        Ok("lib-threads-current") => transport::serve(transport::Kind::ThreadsCurrentThread),
        _ => harness(),
    }
}

/// How much to measure; the quick pass only proves every path works. Every count is per round:
/// targets are measured in turn, round after round, and each figure is the median over rounds,
/// so a burst of load from elsewhere on the machine skews one round of one target, not a column.
#[derive(Clone, Copy)]
struct Plan {
    rounds: usize,
    cold_runs: usize,
    warm_up: usize,
    sequential: usize,
    commands: usize,
    pipelined: usize,
}

const FULL: Plan = Plan {
    rounds: 3,
    cold_runs: 7,
    warm_up: 300,
    sequential: 2_000,
    commands: 200,
    pipelined: 10_000,
};

const QUICK: Plan = Plan {
    rounds: 1,
    cold_runs: 2,
    warm_up: 10,
    sequential: 50,
    commands: 10,
    pipelined: 500,
};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Server,
    Relay,
    RelayTokio,
    LibStdio,
    LibPipes,
    LibThreads,
    LibPipesBatched,
    LibPipesCurrent,
    LibThreadsCurrent,
    /// Another server binary from `E2E_SERVERS`, by its place in that list.
    Other(usize),
}

/// An extra server binary: its key, its label and its path.
type OtherServer = (&'static str, &'static str, PathBuf);

/// The extra server binaries `E2E_SERVERS=key=PATH,...` names, in order. Leaked once, so the
/// targets can keep handing out `&'static str` keys and labels.
fn other_servers() -> &'static [OtherServer] {
    static OTHERS: std::sync::OnceLock<Vec<OtherServer>> = std::sync::OnceLock::new();
    OTHERS.get_or_init(|| {
        let leak = |s: String| &*Box::leak(s.into_boxed_str());
        std::env::var("E2E_SERVERS")
            .unwrap_or_default()
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| {
                let k = k.trim();
                (
                    leak(k.to_string()),
                    leak(format!("server: {k} binary")),
                    PathBuf::from(v.trim()),
                )
            })
            .collect()
    })
}

impl Target {
    const ALL: [Target; 9] = [
        Target::Server,
        Target::Relay,
        Target::RelayTokio,
        Target::LibStdio,
        Target::LibPipes,
        Target::LibThreads,
        Target::LibPipesBatched,
        Target::LibPipesCurrent,
        Target::LibThreadsCurrent,
    ];

    fn key(self) -> &'static str {
        match self {
            Target::Server => "server",
            Target::Relay => "relay",
            Target::RelayTokio => "relay-tokio",
            Target::LibStdio => "lib-stdio",
            Target::LibPipes => "lib-pipes",
            Target::LibThreads => "lib-threads",
            Target::LibPipesBatched => "lib-pipes-batched",
            Target::LibPipesCurrent => "lib-pipes-current",
            Target::LibThreadsCurrent => "lib-threads-current",
            Target::Other(i) => other_servers()[i].0,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Target::Server => "server: smartcar-mcp binary",
            Target::Relay => "baseline relay (2 threads)",
            Target::RelayTokio => "relay on tokio stdio",
            Target::LibStdio => "server lib, rmcp stdio()",
            Target::LibPipes => "server lib, rmcp stdio_pipes()",
            Target::LibThreads => "server lib, 2-thread batched",
            Target::LibPipesBatched => "server lib, pipes + batched task",
            Target::LibPipesCurrent => "server lib, pipes, 1-thread rt",
            Target::LibThreadsCurrent => "server lib, 2-thread, 1-thread rt",
            Target::Other(i) => other_servers()[i].1,
        }
    }
}

/// Percentiles and mean of samples in microseconds.
#[derive(Clone, Copy, Default)]
struct Stats {
    median: f64,
    p99: f64,
    mean: f64,
}

fn stats(mut v: Vec<f64>) -> Stats {
    if v.is_empty() {
        return Stats::default();
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    Stats {
        median: at(0.5),
        p99: at(0.99),
        mean: v.iter().sum::<f64>() / v.len() as f64,
    }
}

#[derive(Default, Clone)]
struct Row {
    cold_start_ms: Stats,
    read_us: Stats,
    command_us: Stats,
    calls_per_s: f64,
    /// CPU time (user + system, all threads) the process spent per call.
    read_cpu_us: Option<f64>,
    pipelined_cpu_us: Option<f64>,
    rss_idle_kib: Option<u64>,
    rss_loaded_kib: Option<u64>,
    anon_idle_kib: Option<u64>,
    anon_loaded_kib: Option<u64>,
    tools_list_bytes: Option<usize>,
}

fn median_of(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

impl Row {
    /// Figure by figure, the median over rounds.
    fn combine(rounds: &[Row]) -> Row {
        let m = |f: &dyn Fn(&Row) -> f64| median_of(rounds.iter().map(f).collect());
        let mk = |f: &dyn Fn(&Row) -> Option<u64>| {
            let v: Vec<f64> = rounds.iter().filter_map(f).map(|k| k as f64).collect();
            (!v.is_empty()).then(|| median_of(v) as u64)
        };
        let mf = |f: &dyn Fn(&Row) -> Option<f64>| {
            let v: Vec<f64> = rounds.iter().filter_map(f).collect();
            (!v.is_empty()).then(|| median_of(v))
        };
        let st = |f: &dyn Fn(&Row) -> Stats| Stats {
            median: m(&|r| f(r).median),
            p99: m(&|r| f(r).p99),
            mean: m(&|r| f(r).mean),
        };
        Row {
            cold_start_ms: st(&|r| r.cold_start_ms),
            read_us: st(&|r| r.read_us),
            command_us: st(&|r| r.command_us),
            calls_per_s: m(&|r| r.calls_per_s),
            read_cpu_us: mf(&|r| r.read_cpu_us),
            pipelined_cpu_us: mf(&|r| r.pipelined_cpu_us),
            rss_idle_kib: mk(&|r| r.rss_idle_kib),
            rss_loaded_kib: mk(&|r| r.rss_loaded_kib),
            anon_idle_kib: mk(&|r| r.anon_idle_kib),
            anon_loaded_kib: mk(&|r| r.anon_loaded_kib),
            tools_list_bytes: rounds.iter().find_map(|r| r.tools_list_bytes),
        }
    }

    fn json(&self) -> Value {
        json!({
            "cold_start_ms": {"median": self.cold_start_ms.median, "p99": self.cold_start_ms.p99},
            "get_signal_us": {"median": self.read_us.median, "p99": self.read_us.p99, "mean": self.read_us.mean},
            "lock_vehicle_us": {"median": self.command_us.median, "p99": self.command_us.p99},
            "calls_per_s_64_in_flight": self.calls_per_s,
            "cpu_us_per_call": {"sequential": self.read_cpu_us, "pipelined": self.pipelined_cpu_us},
            "rss_idle_kib": self.rss_idle_kib,
            "rss_loaded_kib": self.rss_loaded_kib,
            "rss_anon_idle_kib": self.anon_idle_kib,
            "rss_anon_loaded_kib": self.anon_loaded_kib,
            "tools_list_bytes": self.tools_list_bytes,
        })
    }
}

fn call_line(id: u64, tool: &str) -> String {
    let args = if tool == "get_signal" {
        format!(r#"{{"vehicle_id":"{VEHICLE}","user_id":"{USER}","signal_code":"{SIGNAL}"}}"#)
    } else {
        format!(r#"{{"vehicle_id":"{VEHICLE}","user_id":"{USER}"}}"#)
    };
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{args}}}}}"#
    )
}

fn answered_ok(line: &str) -> bool {
    line.contains(r#""result""#) && !line.contains(r#""isError":true"#)
}

/// A process under test, spoken to in raw JSON-RPC lines.
struct Proc {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    line: String,
}

impl Proc {
    fn spawn(cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        Proc {
            child,
            stdin,
            stdout,
            line: String::new(),
        }
    }

    fn send(&mut self, line: &str) {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.stdin
            .write_all(&bytes)
            .expect("the process under test closed its stdin");
    }

    fn recv(&mut self) -> &str {
        self.line.clear();
        match self.stdout.read_line(&mut self.line) {
            Ok(n) if n > 0 => self.line.trim_end(),
            _ => panic!("the process under test closed its stdout"),
        }
    }

    /// initialize, initialized, tools/list; returns the size of the tools/list answer line.
    fn handshake(&mut self) -> usize {
        self.send(INITIALIZE);
        let init = self.recv();
        assert!(init.contains(r#""result""#), "initialize failed: {init}");
        self.send(INITIALIZED);
        self.send(TOOLS_LIST);
        let list = self.recv();
        assert!(list.contains(r#""tools""#), "tools/list failed: {list}");
        list.len()
    }

    /// User + system CPU time of all the process's threads, in microseconds. /proc counts in
    /// USER_HZ ticks, which Linux fixes at 100 per second.
    fn cpu_us(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).ok()?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let rest = &stat[stat.rfind(')')? + 1..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
        Some(ticks as f64 * 10_000.0)
    }

    /// `VmRSS` and `RssAnon` in KiB. Most of VmRSS is the executable's text, mapped from the page
    /// cache (shared, clean); RssAnon is the memory the process itself owns.
    fn rss_kib(&self) -> (Option<u64>, Option<u64>) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        };
        (field("VmRSS:"), field("RssAnon:"))
    }

    /// Closes stdin and waits a bounded time for the exit, then kills.
    fn close(self) {
        let Proc {
            mut child, stdin, ..
        } = self;
        drop(stdin);
        for _ in 0..200 {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    fn sequential(&mut self, tool: &str, n: usize, first_id: u64) -> Vec<f64> {
        let mut samples = Vec::with_capacity(n);
        for i in 0..n {
            let line = call_line(first_id + i as u64, tool);
            let t = Instant::now();
            self.send(&line);
            let answer = self.recv();
            let dt = t.elapsed();
            assert!(answered_ok(answer), "{tool} failed: {answer}");
            samples.push(dt.as_secs_f64() * 1e6);
        }
        samples
    }

    /// `n` get_signal calls keeping `depth` in flight; calls per second.
    fn pipelined(&mut self, n: usize, depth: usize, first_id: u64) -> f64 {
        let (credit_tx, credit_rx) = std::sync::mpsc::channel::<()>();
        let Proc { stdin, stdout, .. } = self;
        let start = Instant::now();
        let failed = std::thread::scope(|s| {
            s.spawn(move || {
                let mut sent = 0usize;
                let mut allowed = depth.min(n);
                let mut batch = String::new();
                loop {
                    while sent < allowed {
                        batch.push_str(&call_line(first_id + sent as u64, "get_signal"));
                        batch.push('\n');
                        sent += 1;
                    }
                    if stdin.write_all(batch.as_bytes()).is_err() {
                        return;
                    }
                    batch.clear();
                    if sent == n || credit_rx.recv().is_err() {
                        return;
                    }
                    allowed = (allowed + 1).min(n);
                    while credit_rx.try_recv().is_ok() {
                        allowed = (allowed + 1).min(n);
                    }
                }
            });
            let mut line = String::new();
            let mut failed = None;
            for _ in 0..n {
                line.clear();
                if !matches!(stdout.read_line(&mut line), Ok(k) if k > 0) {
                    panic!("the process under test closed its stdout while pipelining");
                }
                if failed.is_none() && !answered_ok(&line) {
                    failed = Some(line.clone());
                }
                let _ = credit_tx.send(());
            }
            drop(credit_tx);
            failed
        });
        let elapsed = start.elapsed();
        if let Some(answer) = failed {
            panic!("a pipelined call failed: {answer}");
        }
        n as f64 / elapsed.as_secs_f64()
    }
}

/// The server binary cargo built for this bench (`CARGO_BIN_EXE_*`), or `SMARTCAR_MCP_BIN`, or
/// `target/<profile>/smartcar-mcp` beside this executable, or a fresh release build.
fn server_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("SMARTCAR_MCP_BIN") {
        return p.into();
    }
    let built = PathBuf::from(env!("CARGO_BIN_EXE_smartcar-mcp"));
    if built.exists() {
        return built;
    }
    // This executable lives in target/<profile>/deps/.
    let beside = std::env::current_exe()
        .ok()
        .and_then(|e| Some(e.parent()?.parent()?.join("smartcar-mcp")));
    if let Some(p) = beside.filter(|p| p.exists()) {
        return p;
    }
    eprintln!("e2e: building the server: cargo build --release --bin smartcar-mcp");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--bin", "smartcar-mcp"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build --release failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("release").join("smartcar-mcp")
}

/// A data directory for one target's runs, under the system's temporary directory.
fn data_home(key: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("smartcar-mcp-e2e-{}/{key}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a data directory for the bench");
    dir
}

fn command(target: Target, bin: &PathBuf, up: &upstream::Upstream) -> Command {
    let mut cmd = match target {
        Target::Server => Command::new(bin),
        Target::Other(i) => Command::new(&other_servers()[i].2),
        _ => Command::new(std::env::current_exe().expect("own path")),
    };
    // Only the settings below may shape the run, whatever the caller's environment holds.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SMARTCAR_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.env("SMARTCAR_CLIENT_ID", "client_bench")
        .env("SMARTCAR_CLIENT_SECRET", "bench-secret")
        .env("SMARTCAR_AUTH_URL", up.auth_url())
        .env("SMARTCAR_API_URL", up.api_url())
        .env("SMARTCAR_MANAGEMENT_API_URL", up.management_url())
        .env("SMARTCAR_CONFIRM", "off")
        // The audit log in a directory of the run's own, one per build measured: never the
        // user's, and never one a newer build's migration has moved past an older one.
        .env("XDG_DATA_HOME", data_home(target.key()));
    if !matches!(target, Target::Server | Target::Other(_)) {
        cmd.env(ROLE_ENV, target.key());
    }
    cmd
}

fn per_call(before: Option<f64>, after: Option<f64>, calls: usize) -> Option<f64> {
    Some((after? - before?) / calls as f64)
}

fn measure(target: Target, plan: Plan, bin: &PathBuf, up: &upstream::Upstream) -> Row {
    let mut row = Row::default();
    let mut cold = Vec::with_capacity(plan.cold_runs);
    for _ in 0..plan.cold_runs {
        let t = Instant::now();
        let mut p = Proc::spawn(&mut command(target, bin, up));
        p.handshake();
        cold.push(t.elapsed().as_secs_f64() * 1e3);
        p.close();
    }
    row.cold_start_ms = stats(cold);

    let mut p = Proc::spawn(&mut command(target, bin, up));
    row.tools_list_bytes = Some(p.handshake());
    // Let start-up work settle before reading the idle figure.
    std::thread::sleep(Duration::from_millis(200));
    (row.rss_idle_kib, row.anon_idle_kib) = p.rss_kib();
    let mut id = 10u64;
    // The first call fetches the token and opens the connection; later ones must not.
    p.sequential("get_signal", plan.warm_up, id);
    id += plan.warm_up as u64;
    let cpu = p.cpu_us();
    row.read_us = stats(p.sequential("get_signal", plan.sequential, id));
    row.read_cpu_us = per_call(cpu, p.cpu_us(), plan.sequential);
    id += plan.sequential as u64;
    row.command_us = stats(p.sequential("lock_vehicle", plan.commands, id));
    id += plan.commands as u64;
    let cpu = p.cpu_us();
    row.calls_per_s = p.pipelined(plan.pipelined, IN_FLIGHT, id);
    row.pipelined_cpu_us = per_call(cpu, p.cpu_us(), plan.pipelined);
    (row.rss_loaded_kib, row.anon_loaded_kib) = p.rss_kib();
    p.close();
    row
}

fn direct(rt: &tokio::runtime::Runtime, plan: Plan, up: &upstream::Upstream) -> Row {
    let signal_url = format!("{}/vehicles/{VEHICLE}/signals/{SIGNAL}", up.api_url());
    let lock_url = format!("{}/vehicles/{VEHICLE}/commands/security/lock", up.api_url());
    let http = reqwest::Client::new();
    let one = |url: String, post: bool| {
        let http = http.clone();
        async move {
            let rb = if post { http.post(url) } else { http.get(url) };
            let resp = rb
                .bearer_auth(upstream::TOKEN)
                .header("sc-user-id", USER)
                .header("accept", "application/json")
                .send()
                .await
                .expect("the canned upstream answers");
            assert!(resp.status().is_success());
            resp.bytes().await.expect("a whole body")
        }
    };
    rt.block_on(async {
        let mut row = Row::default();
        let timed = |url: &str, post: bool, n: usize| {
            let url = url.to_string();
            let one = &one;
            async move {
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    let t = Instant::now();
                    one(url.clone(), post).await;
                    v.push(t.elapsed().as_secs_f64() * 1e6);
                }
                v
            }
        };
        timed(&signal_url, false, plan.warm_up).await;
        row.read_us = stats(timed(&signal_url, false, plan.sequential).await);
        row.command_us = stats(timed(&lock_url, true, plan.commands).await);
        let per_task = plan.pipelined / IN_FLIGHT;
        let start = Instant::now();
        let tasks: Vec<_> = (0..IN_FLIGHT)
            .map(|_| {
                let (http, url) = (http.clone(), signal_url.clone());
                tokio::spawn(async move {
                    for _ in 0..per_task {
                        let resp = http
                            .get(&url)
                            .bearer_auth(upstream::TOKEN)
                            .header("sc-user-id", USER)
                            .send()
                            .await
                            .expect("the canned upstream answers");
                        let _ = resp.bytes().await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("a direct task finished");
        }
        row.calls_per_s = (per_task * IN_FLIGHT) as f64 / start.elapsed().as_secs_f64();
        row
    })
}

fn machine() -> Value {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default();
    let mem_kib: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu_model": cpu,
        "memory_gib": (mem_kib as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
    })
}

fn ratio(a: f64, b: f64) -> Value {
    if b > 0.0 && a.is_finite() {
        json!((a / b * 100.0).round() / 100.0)
    } else {
        Value::Null
    }
}

fn mib(k: Option<u64>) -> String {
    k.map(|k| format!("{:.1}", k as f64 / 1024.0))
        .unwrap_or_else(|| "-".into())
}

fn print_table(direct: &Row, rows: &[(Target, Row)]) {
    let f1 = |v: f64| format!("{v:.1}");
    let cpu = |v: Option<f64>| v.map(f1).unwrap_or_else(|| "-".into());
    let head = [
        ("cold start", "ms p50"),
        ("read", "µs p50"),
        ("read", "µs p99"),
        ("overhead", "µs p50"),
        ("command", "µs p50"),
        ("calls/s", "64 in flt"),
        ("CPU/call", "µs seq"),
        ("CPU/call", "µs 64"),
        ("RSS idle", "MiB"),
        ("RSS load", "MiB"),
        ("anon idle", "MiB"),
        ("anon load", "MiB"),
        ("tools/list", "bytes"),
    ];
    let mut lines = vec![
        std::iter::once(String::new())
            .chain(head.iter().map(|h| h.0.to_string()))
            .collect::<Vec<_>>(),
        std::iter::once(String::new())
            .chain(head.iter().map(|h| h.1.to_string()))
            .collect(),
    ];
    let dash = || "-".to_string();
    lines.push(vec![
        "direct HTTP call (reqwest)".into(),
        dash(),
        f1(direct.read_us.median),
        f1(direct.read_us.p99),
        "0".into(),
        f1(direct.command_us.median),
        format!("{:.0}", direct.calls_per_s),
        dash(),
        dash(),
        dash(),
        dash(),
        dash(),
        dash(),
        dash(),
    ]);
    for (t, r) in rows {
        lines.push(vec![
            t.label().into(),
            format!("{:.2}", r.cold_start_ms.median),
            f1(r.read_us.median),
            f1(r.read_us.p99),
            f1(r.read_us.median - direct.read_us.median),
            f1(r.command_us.median),
            format!("{:.0}", r.calls_per_s),
            cpu(r.read_cpu_us),
            cpu(r.pipelined_cpu_us),
            mib(r.rss_idle_kib),
            mib(r.rss_loaded_kib),
            mib(r.anon_idle_kib),
            mib(r.anon_loaded_kib),
            r.tools_list_bytes
                .map(|b| b.to_string())
                .unwrap_or_else(dash),
        ]);
    }
    println!();
    for l in lines {
        let mut out = format!("{:<32}", l[0]);
        for c in &l[1..] {
            out.push_str(&format!(" {c:>10}"));
        }
        println!("{}", out.trim_end());
    }
}

fn ratios(direct: &Row, rows: &[(Target, Row)]) -> Value {
    let get = |t: Target| rows.iter().find(|(x, _)| *x == t).map(|(_, r)| r);
    let (Some(server), Some(relay)) = (get(Target::Server), get(Target::Relay)) else {
        return Value::Null;
    };
    let over = |r: &Row| r.read_us.median - direct.read_us.median;
    let rss = |k: Option<u64>| k.unwrap_or(0) as f64;
    let vs = |server: &Row| {
        json!({
            "cold_start": ratio(server.cold_start_ms.median, relay.cold_start_ms.median),
            "read_median": ratio(server.read_us.median, relay.read_us.median),
            "read_p99": ratio(server.read_us.p99, relay.read_us.p99),
            "read_overhead": ratio(over(server), over(relay)),
            "command_median": ratio(server.command_us.median, relay.command_us.median),
            "throughput": ratio(server.calls_per_s, relay.calls_per_s),
            "cpu_per_call_sequential": ratio(server.read_cpu_us.unwrap_or(0.0), relay.read_cpu_us.unwrap_or(0.0)),
            "cpu_per_call_pipelined": ratio(server.pipelined_cpu_us.unwrap_or(0.0), relay.pipelined_cpu_us.unwrap_or(0.0)),
            "rss_idle": ratio(rss(server.rss_idle_kib), rss(relay.rss_idle_kib)),
            "rss_loaded": ratio(rss(server.rss_loaded_kib), rss(relay.rss_loaded_kib)),
            "rss_anon_idle": ratio(rss(server.anon_idle_kib), rss(relay.anon_idle_kib)),
            "rss_anon_loaded": ratio(rss(server.anon_loaded_kib), rss(relay.anon_loaded_kib)),
        })
    };
    json!({
        "server_vs_relay": vs(server),
        "others_vs_relay": rows.iter()
            .filter(|(t, _)| matches!(t, Target::Other(_)))
            .map(|(t, r)| (t.key().to_string(), vs(r)))
            .collect::<serde_json::Map<_, _>>(),
        "vs_direct_call": {
            "server_overhead_us": over(server),
            "server_overhead_over_direct": ratio(over(server), direct.read_us.median),
            "server_read_over_direct": ratio(server.read_us.median, direct.read_us.median),
            "relay_overhead_us": over(relay),
            "relay_overhead_over_direct": ratio(over(relay), direct.read_us.median),
            "server_command_overhead_us": server.command_us.median - direct.command_us.median,
            "server_throughput_over_direct": ratio(server.calls_per_s, direct.calls_per_s),
        },
        "transports_vs_relay_throughput": rows.iter()
            .map(|(t, r)| (t.key().to_string(), ratio(r.calls_per_s, relay.calls_per_s)))
            .collect::<serde_json::Map<_, _>>(),
    })
}

fn harness() {
    let harness::Run { full, json_path } = harness::start("e2e", DEADLINE);
    let plan = if full { FULL } else { QUICK };

    let rt = harness::runtime();
    let up = rt
        .block_on(upstream::start())
        .expect("127.0.0.1 can be bound");
    let bin = server_binary();
    let load_before = harness::loadavg();
    println!(
        "e2e: {} pass, upstream {}, server {}",
        if full { "full" } else { "quick" },
        up.addr,
        bin.display()
    );
    let mut direct_rounds = Vec::new();
    // E2E_TARGETS=server,relay (keys as in the JSON) narrows the run while investigating.
    let only = std::env::var("E2E_TARGETS").unwrap_or_default();
    let targets: Vec<Target> = Target::ALL
        .into_iter()
        .chain((0..other_servers().len()).map(Target::Other))
        .filter(|t| only.is_empty() || only.split(',').any(|k| k.trim() == t.key()))
        .collect();
    let mut target_rounds: Vec<Vec<Row>> = vec![Vec::new(); targets.len()];
    for round in 1..=plan.rounds {
        let started = Instant::now();
        direct_rounds.push(direct(&rt, plan, &up));
        for (i, t) in targets.iter().enumerate() {
            target_rounds[i].push(measure(*t, plan, &bin, &up));
        }
        eprintln!(
            "e2e: round {round}/{} took {:.1?}",
            plan.rounds,
            started.elapsed()
        );
    }
    let direct = Row::combine(&direct_rounds);
    let rows: Vec<(Target, Row)> = targets
        .into_iter()
        .zip(target_rounds.iter().map(|r| Row::combine(r)))
        .collect();
    let load_after = harness::loadavg();
    print_table(&direct, &rows);
    let ratios = ratios(&direct, &rows);
    println!(
        "\nratios: {}",
        serde_json::to_string_pretty(&ratios).unwrap_or_default()
    );
    let c = &up.counts;
    let upstream_counts = json!({
        "token": c.token.load(Ordering::Relaxed),
        "signal": c.signal.load(Ordering::Relaxed),
        "command": c.command.load(Ordering::Relaxed),
        "other": c.other.load(Ordering::Relaxed),
    });
    println!("upstream requests: {upstream_counts}; load average {load_before} -> {load_after}");

    if let Some(path) = json_path {
        let report = json!({
            "machine": machine(),
            "load_average": {"before": load_before, "after": load_after},
            "plan": {
                "rounds": plan.rounds, "cold_runs": plan.cold_runs, "warm_up": plan.warm_up, "sequential": plan.sequential,
                "commands": plan.commands, "pipelined": plan.pipelined, "in_flight": IN_FLIGHT,
            },
            "server_binary": bin.display().to_string(),
            "server_binary_bytes": std::fs::metadata(&bin).map(|m| m.len()).ok(),
            "direct": direct.json(),
            "targets": rows.iter().map(|(t, r)| {
                let mut v = r.json();
                v["label"] = json!(t.label());
                (t.key().to_string(), v)
            }).collect::<serde_json::Map<_, _>>(),
            "ratios": ratios,
            "upstream_requests": upstream_counts,
        });
        let text = serde_json::to_string_pretty(&report).expect("JSON serializes");
        match std::fs::write(&path, text + "\n") {
            Ok(()) => println!("e2e: wrote {path}"),
            Err(e) => eprintln!("e2e: cannot write {path}: {e}"),
        }
    }
    rt.shutdown_timeout(Duration::from_secs(1));
}

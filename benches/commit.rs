//! Group commit bench: 64 `lock_vehicle` calls on 64 vehicles at once, through the whole call
//! pipeline in process against the canned upstream (benches/upstream), with the audit log
//! committing row by row (how it was) and group-committed (how it is), in one run.
//!
//! Run: `cargo bench --bench commit` (`BENCH_JSON=PATH` for JSON). Without `--bench` (as
//! `cargo test --benches` runs it) it does a quick smoke pass. The database lives under cargo's
//! target tmp dir, on the disk the build uses, not in a tmpfs where an fsync costs nothing.

#[allow(dead_code)]
mod upstream;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use smartcar_mcp::catalogue::{self, ToolSpec};
use smartcar_mcp::secret::Secret;
use smartcar_mcp::settings::{ConfirmMode, Settings};
use smartcar_mcp::store::{Commit, RowFilter, Store};
use smartcar_mcp::tool::state::AppState;
use smartcar_mcp::tool::{Caller, Confirm, Step, ToolError, Verdict, call};
use smartcar_mcp::upstream::Executor;

const IN_FLIGHT: usize = 64;
const USER: &str = "93b3ee5b-2ea2-4c52-9f0f-3e3c0cf1a1b4";

struct Plan {
    rounds: usize,
    /// Calls each of the 64 callers makes in a row, per round.
    per_caller: usize,
}

const FULL: Plan = Plan {
    rounds: 5,
    per_caller: 40,
};
const QUICK: Plan = Plan {
    rounds: 1,
    per_caller: 2,
};

/// `lock_vehicle` needs no confirmation; should that change, the bench still only measures
/// commits.
struct Yes;

impl Confirm for Yes {
    type Ask = std::convert::Infallible;

    async fn confirm(
        &self,
        _spec: &'static ToolSpec,
        _question: &str,
        _args: &Map<String, Value>,
    ) -> Result<Verdict<Self::Ask>, ToolError> {
        Ok(Verdict::Go)
    }
}

struct Measured {
    calls_per_s: f64,
    p50_us: f64,
    p99_us: f64,
    commits: u64,
    rows: usize,
}

fn percentile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1]
}

fn state(up: &upstream::Upstream, db: &std::path::Path, commit: Commit) -> Arc<AppState> {
    let mut s = Settings::for_urls(&up.auth_url(), &up.api_url(), &up.management_url());
    s.upstream.client_id = Some("bench-client".into());
    s.upstream.client_secret = Some(Secret::new("bench-client-secret"));
    s.serving.confirm = ConfirmMode::Off;
    s.serving.audit_db = Some(db.to_path_buf());
    let exec = Executor::new(Arc::new(s.upstream)).expect("an HTTP client builds");
    let store = Store::sqlite_with(db, commit).expect("the audit folder can be made");
    let enabled: Vec<usize> = (0..catalogue::TOOLS.len()).collect();
    Arc::new(AppState::with_store(exec, s.serving, &enabled, store))
}

async fn lock(state: &AppState, spec: &'static ToolSpec, vehicle: &str) -> f64 {
    let args = json!({ "vehicle_id": vehicle, "user_id": USER });
    let caller = Caller {
        transport: "bench",
        client: None,
        session: None,
        principal: None,
    };
    let t = Instant::now();
    let Step::Done(r) = call::run(state, spec, args.as_object(), &Yes, &caller).await;
    let dt = t.elapsed().as_secs_f64() * 1e6;
    assert!(!r.is_error, "lock_vehicle failed: {:?}", r.structured);
    dt
}

async fn measure(up: &upstream::Upstream, commit: Commit, round: usize, plan: &Plan) -> Measured {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("commit-bench-{}-{round}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = dir.join("audit.sqlite3");
    let state = state(up, &db, commit);
    let spec = catalogue::tool("lock_vehicle").expect("lock_vehicle is in the catalogue");
    let vehicles: Vec<String> = (0..IN_FLIGHT)
        .map(|i| format!("00000000-0000-4000-8000-{i:012}"))
        .collect();
    // The token, the upstream connections and the file itself, before the clock starts.
    for v in &vehicles[..4] {
        lock(&state, spec, v).await;
    }
    let before = state.store.commits();
    let start = Instant::now();
    let tasks: Vec<_> = vehicles
        .iter()
        .map(|v| {
            let (state, v) = (state.clone(), v.clone());
            let n = plan.per_caller;
            tokio::spawn(async move {
                let mut v_us = Vec::with_capacity(n);
                for _ in 0..n {
                    v_us.push(lock(&state, spec, &v).await);
                }
                v_us
            })
        })
        .collect();
    let mut samples = Vec::new();
    for t in tasks {
        samples.extend(t.await.expect("a caller finished"));
    }
    let elapsed = start.elapsed().as_secs_f64();
    let commits = state.store.commits() - before;
    drop(state);
    let rows = Store::read_sqlite(&db)
        .rows(&RowFilter::default())
        .await
        .map_or(0, |r| r.len());
    let _ = std::fs::remove_dir_all(&dir);
    Measured {
        calls_per_s: samples.len() as f64 / elapsed,
        p50_us: percentile(&mut samples, 0.5),
        p99_us: percentile(&mut samples, 0.99),
        commits,
        rows,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let full = args.iter().any(|a| a == "--bench");
    let plan = if full { FULL } else { QUICK };
    // Two workers, as the binary has on this 2-core machine: a worker blocked in fsync is half
    // of the server.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    let up = rt.block_on(upstream::start()).expect("127.0.0.1 binds");
    println!(
        "commit: {} pass, {IN_FLIGHT} lock_vehicle in flight on {IN_FLIGHT} vehicles, {} calls each per round, {} rounds",
        if full { "full" } else { "quick" },
        plan.per_caller,
        plan.rounds
    );
    let modes = [("per_row", Commit::PerRow), ("group", Commit::Group)];
    let mut got: Vec<Vec<Measured>> = vec![Vec::new(), Vec::new()];
    for round in 0..plan.rounds {
        // Alternating which goes first, so drift on a shared machine falls on both.
        let order: Vec<usize> = if round % 2 == 0 {
            vec![0, 1]
        } else {
            vec![1, 0]
        };
        for i in order {
            let m = rt.block_on(measure(&up, modes[i].1, round, &plan));
            let calls = IN_FLIGHT * plan.per_caller + 4;
            assert_eq!(m.rows, calls, "every command on record");
            got[i].push(m);
        }
    }
    let summary: Vec<Value> = modes
        .iter()
        .zip(&got)
        .map(|((key, _), ms)| {
            let calls = (IN_FLIGHT * plan.per_caller) as f64;
            let commits = median(ms.iter().map(|m| m.commits as f64).collect());
            json!({
                "mode": key,
                "calls_per_s": median(ms.iter().map(|m| m.calls_per_s).collect()),
                "p50_us": median(ms.iter().map(|m| m.p50_us).collect()),
                "p99_us": median(ms.iter().map(|m| m.p99_us).collect()),
                // Each command writes two rows' worth (begin, finish); per_row commits both alone.
                "writes_per_commit": if commits > 0.0 { 2.0 * calls / commits } else { 1.0 },
            })
        })
        .collect();
    println!(
        "\n{:<10} {:>10} {:>10} {:>10} {:>14}",
        "commit", "calls/s", "p50 µs", "p99 µs", "writes/commit"
    );
    for s in &summary {
        println!(
            "{:<10} {:>10.0} {:>10.0} {:>10.0} {:>14.1}",
            s["mode"].as_str().unwrap_or(""),
            s["calls_per_s"].as_f64().unwrap_or(0.0),
            s["p50_us"].as_f64().unwrap_or(0.0),
            s["p99_us"].as_f64().unwrap_or(0.0),
            s["writes_per_commit"].as_f64().unwrap_or(0.0),
        );
    }
    let ratio = summary[1]["calls_per_s"].as_f64().unwrap_or(0.0)
        / summary[0]["calls_per_s"].as_f64().unwrap_or(1.0);
    println!("group commit throughput: {ratio:.2}x the per-row commit");
    println!(
        "upstream commands: {}",
        up.counts.command.load(Ordering::Relaxed)
    );
    if let Some(path) = std::env::var("BENCH_JSON").ok().filter(|p| !p.is_empty()) {
        let report = json!({
            "in_flight": IN_FLIGHT, "per_caller": plan.per_caller, "rounds": plan.rounds,
            "modes": summary, "group_over_per_row_throughput": (ratio * 100.0).round() / 100.0,
        });
        let text = serde_json::to_string_pretty(&report).expect("JSON serializes");
        match std::fs::write(&path, text + "\n") {
            Ok(()) => println!("commit: wrote {path}"),
            Err(e) => eprintln!("commit: cannot write {path}: {e}"),
        }
    }
    rt.shutdown_timeout(Duration::from_secs(1));
}

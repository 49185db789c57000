//! What the e2e and HTTP bench harnesses do around their measurements: a deadline that ends a
//! wedged run, the command line (a full pass or a quick one, where to write JSON), the tokio
//! runtime the canned upstream runs on, and the machine's load average for the report.

use std::time::Duration;

/// How this run was asked for.
pub struct Run {
    /// `cargo bench` (which passes `--bench`) or `--full`; otherwise the quick pass that
    /// `cargo test --benches` gets.
    pub full: bool,
    /// `--json PATH`, else `BENCH_JSON`.
    pub json_path: Option<String>,
}

/// Starts the deadline (the process exits with 3 past it, so a wedged child can never hang CI)
/// and reads the command line.
pub fn start(name: &'static str, deadline: Duration) -> Run {
    std::thread::spawn(move || {
        std::thread::sleep(deadline);
        eprintln!("{name}: over {deadline:?}, giving up");
        std::process::exit(3);
    });
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json_path = args
        .iter()
        .position(|a| a == "--json")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| std::env::var("BENCH_JSON").ok().filter(|s| !s.is_empty()));
    let full = args.iter().any(|a| a == "--bench" || a == "--full");
    Run { full, json_path }
}

/// Two workers: the machine the figures are measured on has two cores.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime starts")
}

/// The 1, 5 and 15 minute load averages, as /proc/loadavg writes them.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

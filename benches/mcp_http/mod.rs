//! What the HTTP benches (scale, soak) share to drive `serve --http` children: free ports, the
//! health wait, one raw MCP POST that keeps a missing answer apart from an answered one, and the
//! memory figures of /proc.

use std::net::TcpListener as StdListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn data_home(binary: &Path, port: u16) -> std::path::PathBuf {
    let name = binary
        .file_name()
        .map_or("server".into(), |n| n.to_string_lossy());
    let dir = std::env::temp_dir().join(format!(
        "smartcar-mcp-bench-{}/{name}-{port}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("a data directory for the bench");
    dir
}

/// `serve --http 127.0.0.1:PORT` of `binary` against the canned upstream, with nothing of this
/// process's environment; stdin and stdout closed, stderr for the caller to set.
pub fn serve_command(binary: &Path, port: u16, up: &crate::upstream::Upstream) -> Command {
    let mut c = Command::new(binary);
    c.args(["serve", "--http", &format!("127.0.0.1:{port}")])
        .env_clear()
        // Each server's audit log in a directory of its own, never the user's.
        .env("XDG_DATA_HOME", data_home(binary, port))
        .env("SMARTCAR_CLIENT_ID", "bench-client")
        .env("SMARTCAR_CLIENT_SECRET", "bench-client-secret")
        .env("SMARTCAR_AUTH_URL", up.auth_url())
        .env("SMARTCAR_API_URL", up.api_url())
        .env("SMARTCAR_MANAGEMENT_API_URL", up.management_url())
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    c
}

pub async fn wait_healthy(http: &reqwest::Client, port: u16) {
    for _ in 0..200 {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server on {port} never became healthy");
}

pub fn modern_meta() -> Value {
    json!({ "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": { "elicitation": { "form": {} } } })
}

/// The JSON-RPC message of a JSON or SSE body.
pub fn message(body: &str) -> Option<Value> {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        return Some(v);
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|v| v.get("id").is_some())
}

pub struct Post {
    pub status: u16,
    pub replica: String,
    pub session: Option<String>,
    pub body: Option<Value>,
}

/// One MCP POST; `None` when no complete HTTP answer came (refused, reset, timed out).
pub async fn post(
    http: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> Option<Post> {
    let mut req = http
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.ok()?;
    let status = r.status().as_u16();
    let header = |n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let replica = header("x-replica").unwrap_or_default();
    let session = header("mcp-session-id");
    let text = r.text().await.ok()?;
    Some(Post {
        status,
        replica,
        session,
        body: message(&text),
    })
}

pub fn is_result(p: &Option<Post>) -> bool {
    matches!(p, Some(p) if p.status / 100 == 2 && p.body.as_ref().is_some_and(|b| b.get("result").is_some()))
}

/// A field of /proc/PID/status in kB (`VmRSS`, `RssAnon`), 0 when the process is gone.
pub fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

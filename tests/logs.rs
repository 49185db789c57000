//! Logging that can never stop the server (issue 26): the built binary with its stderr on a pipe
//! nobody reads keeps answering, and says how many lines it dropped once the reader is back;
//! `--log-format json` puts the MCP request id and Smartcar's `sc-request-id` on one line.

use std::process::Stdio;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

use crate::common;

/// A loopback port free a moment ago, so the binary can be given it and its stderr left unread.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn(port: u16, env: &[(&str, &str)], args: &[&str]) -> Child {
    let mut cmd = common::tokio_command();
    cmd.args([
        "serve",
        "--http",
        &format!("127.0.0.1:{port}"),
        "--simulator",
    ])
    .args(args)
    .env("SMARTCAR_AUDIT_DB", "off")
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("binary starts")
}

async fn wait_healthy(http: &reqwest::Client, base: &str) {
    for _ in 0..200 {
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not come up");
}

fn initialize(id: u64) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": { "name": "logs", "version": "0" } } })
}

fn stateless_read(id: u64) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
        "name": "get_signal",
        "arguments": { "vehicle_id": smartcar_mcp::simulator::EV,
            "user_id": smartcar_mcp::simulator::ALICE, "signal_code": "tractionbattery-stateofcharge" },
        "_meta": { "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {} } } })
}

fn post(http: &reqwest::Client, url: &str, body: &Value) -> reqwest::RequestBuilder {
    http.post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(body.to_string())
}

async fn open_session(http: &reqwest::Client, url: &str) -> String {
    let r = post(http, url, &initialize(1)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let id = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
    let note = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
    let r = post(http, url, &note)
        .header("mcp-session-id", &id)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    id
}

#[tokio::test]
async fn a_stderr_nobody_reads_never_stops_the_server() {
    let port = free_port();
    // Debug logging writes about ten lines (3 KB) a tool call: the 64 KiB pipe fills within
    // the first few dozen calls, and the writer's queue of 4,096 lines soon after.
    let mut child = spawn(
        port,
        &[("RUST_LOG", "debug"), ("SMARTCAR_MAX_SESSIONS", "2")],
        &[],
    );
    let stderr = child.stderr.take().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let url = format!("{base}/mcp");
    let http = reqwest::Client::new();
    wait_healthy(&http, &base).await;
    let held = [
        open_session(&http, &url).await,
        open_session(&http, &url).await,
    ];
    // 1,000 stateless reads, 16 at a time, each answered within 2 s while stderr is full.
    let reads = futures::stream::iter(0..1_000u64)
        .map(|i| {
            let (http, url) = (http.clone(), url.clone());
            async move {
                let r = post(&http, &url, &stateless_read(i))
                    .header("mcp-protocol-version", "2026-07-28")
                    .header("mcp-method", "tools/call")
                    .header("mcp-name", "get_signal")
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await?;
                let status = r.status().as_u16();
                Ok::<_, reqwest::Error>((status, r.text().await?))
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    for (i, r) in reads.iter().enumerate() {
        match r {
            Ok((200, body)) if body.contains("72") => {}
            other => panic!("read {i}: {other:?}"),
        }
    }
    // 3,000 initializations with every slot taken, 16 at a time, each answered within 2 s.
    let answers = futures::stream::iter(0..3_000u64)
        .map(|i| {
            let (http, url) = (http.clone(), url.clone());
            async move {
                post(&http, &url, &initialize(i))
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    for (i, a) in answers.iter().enumerate() {
        match a {
            Ok(503 | 200) => {}
            other => panic!("initialization {i}: {other:?}"),
        }
    }
    assert!(answers.iter().filter(|a| matches!(a, Ok(503))).count() >= 2_990);
    let r = http
        .get(format!("{base}/healthz"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .delete(&url)
        .header("mcp-session-id", &held[0])
        .header("mcp-protocol-version", "2025-06-18")
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let _new = tokio::time::timeout(Duration::from_secs(10), open_session(&http, &url))
        .await
        .expect("a new session is served");
    // The reader is back: among the first lines it gets, one says how many were dropped. A few
    // requests meanwhile give the writer lines to write once its backlog has drained.
    let reader = tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        loop {
            match lines.next_line().await {
                Ok(Some(l)) if l.contains("log lines were dropped") => return l,
                Ok(Some(_)) => {}
                other => panic!("stderr ended: {other:?}"),
            }
        }
    });
    let told = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if reader.is_finished() {
                return reader.await.unwrap();
            }
            let _ = http.get(format!("{base}/healthz")).send().await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("a line says how many log lines were dropped");
    let n: u64 = told
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .expect("a count");
    assert!(n > 0, "{told}");
    let _ = child.kill().await;
}

#[tokio::test]
async fn json_logs_put_the_mcp_request_id_beside_smartcars() {
    let port = free_port();
    let mut child = spawn(port, &[("RUST_LOG", "info")], &["--log-format", "json"]);
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let base = format!("http://127.0.0.1:{port}");
    let url = format!("{base}/mcp");
    let http = reqwest::Client::new();
    wait_healthy(&http, &base).await;
    let session = open_session(&http, &url).await;
    let call = json!({ "jsonrpc": "2.0", "id": 4242, "method": "tools/call", "params": {
        "name": "get_signal", "arguments": { "vehicle_id": smartcar_mcp::simulator::EV,
        "user_id": smartcar_mcp::simulator::ALICE, "signal_code": "tractionbattery-stateofcharge" } } });
    let r = post(&http, &url, &call)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("72"));
    let line = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let l = lines.next_line().await.unwrap().expect("stderr open");
            let v: Value = serde_json::from_str(&l)
                .unwrap_or_else(|e| panic!("not one JSON object a line ({e}): {l}"));
            assert!(
                v["timestamp"].is_string() && v["level"].is_string() && v["target"].is_string()
            );
            if v["fields"]["message"] == "smartcar answered" {
                return v;
            }
        }
    })
    .await
    .expect("the upstream answer is logged");
    assert_eq!(line["span"]["mcp_request_id"], "4242", "{line}");
    assert_eq!(line["span"]["tool"], "get_signal", "{line}");
    assert!(
        !line["fields"]["sc_request_id"]
            .as_str()
            .unwrap_or("")
            .is_empty(),
        "{line}"
    );
    let _ = child.kill().await;
}

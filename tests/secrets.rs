//! Secrets never reach stdout, stderr (even at RUST_LOG=trace), results or errors; garbage on
//! stdin leaves the server answering.

use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::common;

/// Runs the binary over raw JSON-RPC lines, returning (stdout, stderr).
async fn run_lines(
    sim: &smartcar_mcp::simulator::Simulator,
    lines: Vec<String>,
    expect_ids: &[i64],
) -> (String, String) {
    let mut child = common::tokio_command()
        .env("RUST_LOG", "trace")
        .env("SMARTCAR_CLIENT_ID", "client_secret_test")
        .env("SMARTCAR_CLIENT_SECRET", common::CLIENT_SECRET)
        .env("SMARTCAR_AUTH_URL", sim.auth_url())
        .env("SMARTCAR_API_URL", sim.api_url())
        .env("SMARTCAR_MANAGEMENT_API_URL", sim.management_url())
        .env("SMARTCAR_CONFIRM", "off")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let err_task = tokio::spawn(async move {
        let mut s = String::new();
        let mut r = BufReader::new(stderr);
        let mut line = String::new();
        while r.read_line(&mut line).await.unwrap_or(0) > 0 {
            s.push_str(&line);
            line.clear();
        }
        s
    });
    for l in lines {
        stdin.write_all(l.as_bytes()).await.unwrap();
        stdin.write_all(b"\n").await.unwrap();
    }
    stdin.flush().await.unwrap();
    let mut out = String::new();
    let mut reader = BufReader::new(stdout);
    let mut pending: Vec<i64> = expect_ids.to_vec();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while !pending.is_empty() {
        let mut line = String::new();
        let n = tokio::time::timeout_at(deadline, reader.read_line(&mut line))
            .await
            .expect("the server answers in time")
            .unwrap();
        assert!(
            n > 0,
            "stdout closed early; still waiting for {pending:?}\n{out}"
        );
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("stdout carries only JSON-RPC: {line}"));
        if let Some(id) = v["id"].as_i64() {
            pending.retain(|p| *p != id);
        }
        out.push_str(&line);
    }
    drop(stdin);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait()).await;
    let err = err_task.await.unwrap();
    (out, err)
}

fn req(id: i64, method: &str, params: Value) -> String {
    json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }).to_string()
}

fn call(id: i64, tool: &str, args: Value) -> String {
    req(id, "tools/call", json!({ "name": tool, "arguments": args }))
}

#[tokio::test]
async fn no_secret_reaches_stdout_or_trace_logs() {
    let sim = common::simulator().await;
    let init = req(
        1,
        "initialize",
        json!({ "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "t", "version": "0" } }),
    );
    let lines = vec![
        init,
        json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }).to_string(),
        call(
            2,
            "list_application_secrets",
            json!({ "id": "app-fleet-console-01" }),
        ),
        call(
            3,
            "get_signal",
            json!({ "vehicle_id": "veh-ev-0001", "user_id": "usr-alice-01", "signal_code": "closure-islocked" }),
        ),
        call(
            4,
            "lock_vehicle",
            json!({ "vehicle_id": "veh-ev-0001", "user_id": "usr-alice-01" }),
        ),
        call(5, "list_applications", json!({})),
    ];
    let (out, err) = run_lines(&sim, lines, &[1, 2, 3, 4, 5]).await;
    assert!(
        err.contains("TRACE") || err.contains("DEBUG"),
        "trace logging was on: {err}"
    );
    let mut secrets: Vec<String> = vec![common::CLIENT_SECRET.to_string()];
    for r in sim.requests() {
        let token = r
            .header("authorization")
            .unwrap()
            .trim_start_matches("Bearer ")
            .to_string();
        assert!(token.len() >= 8);
        secrets.push(token);
    }
    let apps = sim.management_secrets();
    assert!(!apps.is_empty());
    secrets.extend(apps);
    for s in &secrets {
        assert!(!out.contains(s.as_str()), "a secret reached stdout");
        assert!(!err.contains(s.as_str()), "a secret reached stderr");
    }
    let answer = out.lines().find(|l| l.contains("\"id\":2")).unwrap();
    assert!(
        answer.contains("hint") && answer.contains("sec-fleet-primary-01"),
        "ids and hints are kept: {answer}"
    );
}

#[tokio::test]
async fn garbage_unknown_methods_and_huge_lines_leave_the_server_answering() {
    let sim = common::simulator().await;
    let init = req(
        1,
        "initialize",
        json!({ "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "t", "version": "0" } }),
    );
    let huge = call(
        3,
        "get_vehicle",
        json!({ "vehicle_id": "x".repeat(2_000_000) }),
    );
    let lines = vec![
        init,
        json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }).to_string(),
        "this is not json {{{".to_string(),
        req(2, "no/such/method", json!({})),
        huge,
        "\u{0}\u{1}garbage".to_string(),
        req(4, "tools/list", json!({})),
    ];
    let (out, _err) = run_lines(&sim, lines, &[1, 2, 3, 4]).await;
    let by_id = |id: i64| -> Value {
        out.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|v| v["id"] == id)
            .unwrap()
    };
    assert_eq!(by_id(2)["error"]["code"], -32601);
    assert_eq!(by_id(3)["result"]["isError"], true);
    assert!(
        by_id(3)["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("bytes")
    );
    assert_eq!(
        by_id(4)["result"]["tools"].as_array().unwrap().len(),
        smartcar_mcp::tool::selection::select(&[], &[], &[], false)
            .unwrap()
            .len()
    );
    assert!(sim.requests().is_empty());
}

//! Malformed input on stdio (the built binary): every bad line gets the JSON-RPC error the
//! protocol allows (-32700 not JSON, -32600 not a message, a batch, a line over the bound) and
//! the session keeps serving; nothing panics. (HTTP bodies: tests/operator/http.rs.)

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};

use crate::common;

struct StdioServer {
    child: Child,
    stdin: ChildStdin,
    stdout: tokio::io::Lines<BufReader<ChildStdout>>,
}

impl StdioServer {
    fn start() -> Self {
        let mut child = common::tokio_command()
            .arg("--simulator")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("binary starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        StdioServer {
            child,
            stdin,
            stdout,
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stdin.write_all(bytes).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(30), self.stdout.next_line())
            .await
            .expect("an answer within 30 s")
            .unwrap()
            .expect("the server is still running");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {line}"))
    }

    /// Sends a ping with this id and returns every message up to its answer.
    async fn ping(&mut self, id: u64) -> Vec<Value> {
        let ping = json!({ "jsonrpc": "2.0", "id": id, "method": "ping" }).to_string() + "\n";
        self.send(ping.as_bytes()).await;
        let mut before = Vec::new();
        loop {
            let m = self.next().await;
            if m["id"] == json!(id) && m.get("result").is_some() {
                return before;
            }
            before.push(m);
        }
    }
}

#[tokio::test]
async fn bad_lines_on_stdio_are_answered_and_the_session_keeps_serving() {
    let mut s = StdioServer::start();
    let init = json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": { "name": "malformed-test", "version": "1" } } });
    // A bad line before the handshake must not stop it either.
    s.send(b"garbage before initialize\n").await;
    let e = s.next().await;
    assert_eq!(e["error"]["code"], -32700, "{e}");
    s.send(format!("{init}\n").as_bytes()).await;
    let r = s.next().await;
    assert_eq!(r["id"], 0);
    assert_eq!(r["result"]["serverInfo"]["name"], "smartcar-mcp", "{r}");
    s.send(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n")
        .await;

    let huge = format!("{{\"pad\":\"{}\"}}\n", "x".repeat(5 * 1024 * 1024));
    let cases: Vec<(&str, Vec<u8>, i64, Value)> = vec![
        (
            "not JSON",
            b"this is not json\n".to_vec(),
            -32700,
            Value::Null,
        ),
        (
            "cut-off JSON",
            b"{\"jsonrpc\":\"2.0\",\"id\":\n".to_vec(),
            -32700,
            Value::Null,
        ),
        (
            "invalid UTF-8",
            b"\xff\xfe{}\n".to_vec(),
            -32700,
            Value::Null,
        ),
        ("a NUL", b"\0\n".to_vec(), -32700, Value::Null),
        (
            "a batch",
            b"[{\"jsonrpc\":\"2.0\",\"id\":50,\"method\":\"ping\"}]\n".to_vec(),
            -32600,
            Value::Null,
        ),
        ("an empty batch", b"[]\n".to_vec(), -32600, Value::Null),
        ("a string", b"\"ping\"\n".to_vec(), -32600, Value::Null),
        (
            "an object that is no message",
            b"{\"foo\":1}\n".to_vec(),
            -32600,
            Value::Null,
        ),
        (
            "a request with a number for its method",
            b"{\"jsonrpc\":\"2.0\",\"id\":51,\"method\":5}\n".to_vec(),
            -32600,
            json!(51),
        ),
        ("a 5 MiB line", huge.into_bytes(), -32600, Value::Null),
    ];
    for (i, (what, line, code, id)) in cases.into_iter().enumerate() {
        s.send(&line).await;
        let before = s.ping(100 + i as u64).await;
        assert_eq!(before.len(), 1, "{what}: {before:?}");
        let e = &before[0];
        assert_eq!(e["jsonrpc"], "2.0", "{what}: {e}");
        assert_eq!(e["error"]["code"], code, "{what}: {e}");
        assert_eq!(e["id"], id, "{what}: {e}");
        assert!(e["error"]["message"].is_string(), "{what}: {e}");
    }

    // Blank lines, CRLF and a line without its newline at the end are not errors.
    s.send(b"\n  \n\r\n").await;
    assert!(s.ping(200).await.is_empty());
    s.send(b"{\"jsonrpc\":\"2.0\",\"id\":201,\"method\":\"tools/list\"}\r\n")
        .await;
    let tools = s.next().await;
    assert!(tools["result"]["tools"].as_array().unwrap().len() > 10);

    // Many bad lines in one write, then a real call: all answered, in order, and the call works.
    let burst = "nope\n".repeat(200);
    s.send(burst.as_bytes()).await;
    let before = s.ping(300).await;
    assert_eq!(before.len(), 200);
    assert!(before.iter().all(|e| e["error"]["code"] == -32700));

    s.send(b"{\"jsonrpc\":\"2.0\",\"id\":400,\"method\":\"ping\"}")
        .await;
    drop(s.stdin);
    let last = tokio::time::timeout(Duration::from_secs(30), s.stdout.next_line())
        .await
        .unwrap()
        .unwrap()
        .expect("the last line is answered at EOF");
    assert_eq!(serde_json::from_str::<Value>(&last).unwrap()["id"], 400);
    let out = tokio::time::timeout(Duration::from_secs(30), s.child.wait_with_output())
        .await
        .expect("the server exits at EOF")
        .unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

//! The baseline relay: a bare stdio-to-HTTP relay with no MCP SDK, no validation and no result
//! shaping. It is the floor the server is compared with: whatever the server costs above this
//! relay is the price of MCP, validation and shaping.
//!
//! Two flavours, so the transport question of the issue can be answered on the same machine:
//! `run_threads` (stdin and stdout on two plain threads, writes batched while answers are queued:
//! the baseline) and `run_tokio` (tokio's stdio, one flush per answer: what rmcp's `stdio()` does).

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

struct Relay {
    http: reqwest::Client,
    auth_url: String,
    api_url: String,
    client_id: String,
    client_secret: String,
    token: tokio::sync::OnceCell<String>,
}

/// What one input line asks for.
enum Step {
    Answer(Vec<u8>),
    Forward {
        id: Value,
        name: String,
        args: Value,
    },
    Nothing,
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

fn line(id: &Value, result: Value) -> Vec<u8> {
    let mut out = serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": id, "result": result}))
        .expect("JSON values serialize");
    out.push(b'\n');
    out
}

impl Relay {
    fn from_env() -> Arc<Self> {
        Arc::new(Relay {
            http: reqwest::Client::new(),
            auth_url: env("SMARTCAR_AUTH_URL"),
            api_url: env("SMARTCAR_API_URL"),
            client_id: env("SMARTCAR_CLIENT_ID"),
            client_secret: env("SMARTCAR_CLIENT_SECRET"),
            token: tokio::sync::OnceCell::new(),
        })
    }

    fn step(input: &[u8]) -> Step {
        let Ok(msg) = serde_json::from_slice::<Value>(input) else {
            return Step::Nothing;
        };
        let Some(id) = msg.get("id").cloned() else {
            return Step::Nothing;
        };
        match msg.get("method").and_then(Value::as_str).unwrap_or("") {
            "initialize" => Step::Answer(line(
                &id,
                json!({
                    "protocolVersion": msg.pointer("/params/protocolVersion").cloned().unwrap_or(json!("2025-06-18")),
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": "baseline-relay", "version": "0"},
                }),
            )),
            "tools/list" => Step::Answer(line(&id, json!({"tools": []}))),
            "tools/call" => Step::Forward {
                name: msg
                    .pointer("/params/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                args: msg
                    .pointer("/params/arguments")
                    .cloned()
                    .unwrap_or(json!({})),
                id,
            },
            _ => Step::Answer({
                let mut out = serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": id,
                    "error": {"code": -32601, "message": "method not found"}}))
                .expect("JSON values serialize");
                out.push(b'\n');
                out
            }),
        }
    }

    async fn token(&self) -> Option<&str> {
        self.token
            .get_or_try_init(|| async {
                let body = format!(
                    "grant_type=client_credentials&client_id={}&client_secret={}",
                    self.client_id, self.client_secret
                );
                let v: Value = self
                    .http
                    .post(format!("{}/oauth2/token", self.auth_url))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
                    .send()
                    .await?
                    .json()
                    .await?;
                Ok::<_, reqwest::Error>(v["access_token"].as_str().unwrap_or("").to_string())
            })
            .await
            .ok()
            .map(String::as_str)
    }

    async fn forward(&self, id: Value, name: &str, args: &Value) -> Vec<u8> {
        let arg = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or("");
        let vehicle = arg("vehicle_id");
        let request = if name == "lock_vehicle" {
            self.http.post(format!(
                "{}/vehicles/{vehicle}/commands/security/lock",
                self.api_url
            ))
        } else {
            self.http.get(format!(
                "{}/vehicles/{vehicle}/signals/{}",
                self.api_url,
                arg("signal_code")
            ))
        };
        let answer = match self.token().await {
            None => Err("token endpoint unreachable".to_string()),
            Some(token) => match request
                .bearer_auth(token)
                .header("sc-user-id", arg("user_id"))
                .header("accept", "application/json")
                .send()
                .await
            {
                Ok(resp) => {
                    let ok = resp.status().is_success();
                    match resp.text().await {
                        Ok(text) if ok => Ok(text),
                        Ok(text) => Err(text),
                        Err(e) => Err(e.to_string()),
                    }
                }
                Err(e) => Err(e.to_string()),
            },
        };
        let (text, is_error) = match answer {
            Ok(t) => (t, false),
            Err(t) => (t, true),
        };
        line(
            &id,
            json!({"content": [{"type": "text", "text": text}], "isError": is_error}),
        )
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts")
}

/// The baseline: stdin read on this thread, stdout written on another, HTTP on tokio.
pub fn run_threads() {
    let relay = Relay::from_env();
    let rt = runtime();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let writer = std::thread::spawn(move || {
        let mut out = std::io::stdout().lock();
        let mut batch = Vec::with_capacity(64 * 1024);
        while let Ok(first) = rx.recv() {
            batch.extend_from_slice(&first);
            // Everything already queued goes out in the same write: one syscall for many answers.
            while let Ok(more) = rx.try_recv() {
                batch.extend_from_slice(&more);
            }
            if out.write_all(&batch).and_then(|()| out.flush()).is_err() {
                return;
            }
            batch.clear();
        }
    });
    let mut stdin = std::io::stdin().lock();
    let mut input = Vec::with_capacity(4096);
    loop {
        input.clear();
        match stdin.read_until(b'\n', &mut input) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        match Relay::step(&input) {
            Step::Answer(a) => {
                let _ = tx.send(a);
            }
            Step::Forward { id, name, args } => {
                let (relay, tx) = (relay.clone(), tx.clone());
                rt.spawn(async move {
                    let _ = tx.send(relay.forward(id, &name, &args).await);
                });
            }
            Step::Nothing => {}
        }
    }
    drop(tx);
    rt.shutdown_timeout(Duration::from_secs(1));
    let _ = writer.join();
}

/// The same relay on tokio's stdio: reads and writes go through the blocking pool, one flush per
/// answer. Kept to show what the transport alone costs.
pub fn run_tokio() {
    let relay = Relay::from_env();
    let rt = runtime();
    rt.block_on(async move {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
        let writer = tokio::spawn(async move {
            let mut out = tokio::io::stdout();
            while let Some(a) = rx.recv().await {
                if out.write_all(&a).await.is_err() || out.flush().await.is_err() {
                    return;
                }
            }
        });
        let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
        let mut input = Vec::with_capacity(4096);
        loop {
            input.clear();
            match stdin.read_until(b'\n', &mut input).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            match Relay::step(&input) {
                Step::Answer(a) => {
                    let _ = tx.send(a);
                }
                Step::Forward { id, name, args } => {
                    let (relay, tx) = (relay.clone(), tx.clone());
                    tokio::spawn(async move {
                        let _ = tx.send(relay.forward(id, &name, &args).await);
                    });
                }
                Step::Nothing => {}
            }
        }
        drop(tx);
        let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
    });
    rt.shutdown_timeout(Duration::from_secs(1));
}

//! `smartcar-mcp demo`: this binary, as an MCP client, drives itself serving the built-in
//! simulator over stdio and prints the session for a human.
//!
//! It goes through everything a real client does (child process, stdio transport, the rmcp
//! handshake, argument validation, the executor, token fetch, HTTP), so a demo that prints its
//! session is also proof that the whole path works on this machine. Printing to stdout is the
//! point of this subcommand; it never runs on the serve path, where stdout is the protocol.

use crate::sync::Locked;
use std::collections::VecDeque;
use std::fmt::Display;
use std::io::Write;
use std::process::{ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::catalogue::{TOOLS, tool_index};
use crate::simulator::{ALICE, EV, PHEV};

/// Offline against loopback the session takes well under a second; the deadline only turns a
/// hung child into an error instead of a demo that never ends.
const DEADLINE: Duration = Duration::from_secs(30);
/// How much of the server's stderr a failure message quotes.
const STDERR_LINES: usize = 20;
const WIDTH: usize = 96;

/// Runs the scripted demo session and prints it.
pub async fn run() -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let exe = std::env::current_exe()
        .context("cannot find this program's own path, needed to start it as the MCP server")?;
    let mut cmd = tokio::process::Command::new(&exe);
    // The simulator pushes what the lock changes to the server's own webhook receiver, and the
    // read after it is answered from that push; the demo keeps no audit file.
    cmd.args([
        "--simulator",
        "--webhook-addr",
        "127.0.0.1:0",
        "--pushed-max-age-s",
        "300",
        "--audit-db",
        "off",
    ]);
    // The session is scripted: an operator's SMARTCAR_READ_ONLY, _TOOLSETS, _DRY_RUN or _CONFIRM
    // meant for their own server would make it fail in ways that say nothing about the product.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SMARTCAR_") {
            cmd.env_remove(key);
        }
    }
    // Piped, not discarded: when the server dies, its last words are the useful part of the error.
    let (transport, stderr) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start `{} --simulator`", exe.display()))?;
    let log = Arc::new(Mutex::new(VecDeque::new()));
    if let Some(stderr) = stderr {
        let log = log.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut log = log.locked();
                if log.len() == STDERR_LINES {
                    log.pop_front();
                }
                log.push_back(line);
            }
        });
    }

    let outcome = match tokio::time::timeout(DEADLINE, session(transport)).await {
        Ok(r) => r,
        Err(_) => Err(anyhow::anyhow!(
            "the session did not finish within {} s",
            DEADLINE.as_secs()
        )),
    };
    match outcome {
        Ok(calls) => {
            say("");
            say(format!(
                "Done: {calls} tool calls in {:.1} s, all answered by the local simulator.",
                started.elapsed().as_secs_f64()
            ));
            say(
                "Next: `smartcar-mcp serve --simulator` in your MCP client, or one call from the shell:",
            );
            say(format!(
                "  smartcar-mcp call get_signal '{{\"vehicle_id\": \"{EV}\", \"user_id\": \"{ALICE}\", \"signal_code\": \"tractionbattery-range\"}}' --simulator"
            ));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            // Give the reader task a moment to collect what a dying server wrote last.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let log = log.locked();
            // The simulator notice is printed on every start, so it explains nothing.
            let tail: Vec<&str> = log
                .iter()
                .map(String::as_str)
                .filter(|l| !l.contains("built-in Smartcar simulator"))
                .collect();
            let mut message = format!("demo failed: {e:#}");
            if !tail.is_empty() {
                message.push_str("\nthe server's stderr ended with:\n  ");
                message.push_str(&tail.join("\n  "));
            }
            Err(anyhow::anyhow!(message))
        }
    }
}

/// A closed stdout (`demo | head`) must not turn a working session into a failure.
fn say(line: impl Display) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

async fn session(transport: TokioChildProcess) -> anyhow::Result<usize> {
    let client = ()
        .serve(transport)
        .await
        .context("no MCP session: the server did not answer the initialize handshake")?;
    let mut demo = Demo { client, calls: 0 };
    let result = demo.script().await;
    let calls = demo.calls;
    // Closing stdin is what ends a stdio server; cancel closes it and waits for the loop.
    let _ = demo.client.cancel().await;
    result.map(|()| calls)
}

struct Demo {
    client: RunningService<RoleClient, ()>,
    calls: usize,
}

/// One answered tool call: the structured result and the text blocks.
struct Answer {
    structured: Value,
    text: Vec<String>,
}

impl Demo {
    async fn script(&mut self) -> anyhow::Result<()> {
        say(
            "smartcar-mcp demo: an MCP client (rmcp) talking over stdio to `smartcar-mcp --simulator`,",
        );
        say("the server backed by a built-in Smartcar simulator. Offline; no account needed.");
        say("");
        if let Some(info) = self.client.peer_info() {
            let name = info
                .server_info
                .as_ref()
                .map(|s| format!("{} {}", s.name, s.version))
                .unwrap_or_else(|| "an unnamed server".into());
            say(format!(
                "Connected to {name}, MCP protocol {}.",
                info.protocol_version
            ));
        }
        self.tools().await?;
        self.fleet().await?;
        self.battery().await?;
        self.charge_limit().await?;
        self.lock().await
    }

    async fn call(&mut self, tool: &str, args: Value) -> anyhow::Result<Answer> {
        let args: Map<String, Value> = match args {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        self.calls += 1;
        let result: CallToolResult = self
            .client
            .call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(args))
            .await
            .with_context(|| format!("tools/call {tool} failed"))?;
        let text: Vec<String> = result
            .content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.clone()))
            .collect();
        if result.is_error == Some(true) {
            // The first block is the server's sentence for humans; the rest repeats it as JSON.
            let why = text.first().map_or("(no message)", String::as_str);
            anyhow::bail!("{tool} returned a tool error: {why}");
        }
        // Text-only clients get the same data as JSON in the last block; use it when a server
        // version sends no structuredContent.
        let structured = result
            .structured_content
            .or_else(|| text.last().and_then(|t| serde_json::from_str(t).ok()))
            .with_context(|| format!("{tool} returned no structured result"))?;
        Ok(Answer { structured, text })
    }

    async fn signal(&mut self, vehicle: &str, code: &str) -> anyhow::Result<Value> {
        let a = self
            .call(
                "get_signal",
                json!({ "vehicle_id": vehicle, "user_id": ALICE, "signal_code": code }),
            )
            .await?;
        Ok(a.structured)
    }

    async fn tools(&mut self) -> anyhow::Result<()> {
        let tools = self
            .client
            .list_all_tools()
            .await
            .context("tools/list failed")?;
        say("");
        say(format!("{} tools (tools/list), by toolset:", tools.len()));
        let mut sets: Vec<(&str, Vec<String>)> = Vec::new();
        for t in &tools {
            let set = tool_index(&t.name).map_or("other", |i| TOOLS[i].toolset.as_str());
            match sets.iter_mut().find(|(s, _)| *s == set) {
                Some((_, names)) => names.push(t.name.to_string()),
                None => sets.push((set, vec![t.name.to_string()])),
            }
        }
        for (set, names) in sets {
            for line in wrap(&format!("  {set:<12} "), &names) {
                say(line);
            }
        }
        Ok(())
    }

    async fn fleet(&mut self) -> anyhow::Result<()> {
        let a = self.call("list_connections", json!({})).await?;
        let rows = connections(&a.structured);
        if rows.is_empty() {
            anyhow::bail!(
                "list_connections listed no vehicles, or in a shape the demo cannot read: {}",
                a.structured
            );
        }
        say("");
        say(format!("Fleet (list_connections): {} vehicles", rows.len()));
        let cells: Vec<[String; 5]> = rows
            .iter()
            .map(|r| {
                [
                    r.user.clone(),
                    r.vehicle.clone(),
                    format!("{} {} {}", r.year, r.make, r.model),
                    r.powertrain.clone(),
                    r.mode.clone(),
                ]
            })
            .collect();
        for line in table(&cells) {
            say(format!("  {line}"));
        }
        for id in [EV, PHEV] {
            if !rows.iter().any(|r| r.vehicle == id) {
                anyhow::bail!("the fleet has no vehicle {id}, which the demo uses next");
            }
        }
        Ok(())
    }

    async fn battery(&mut self) -> anyhow::Result<()> {
        let code = "tractionbattery-stateofcharge";
        let s = self.signal(EV, code).await?;
        let value = signal_value(&s)
            .and_then(Value::as_f64)
            .with_context(|| format!("no number in {code}: {s}"))?;
        say("");
        say(format!(
            "Battery of {EV} (get_signal {code}): {}",
            quantity(value, signal_unit(&s))
        ));
        Ok(())
    }

    async fn charge_limit(&mut self) -> anyhow::Result<()> {
        let code = "charge-chargelimits";
        let target = 90;
        say("");
        say(format!("Charge limit of {EV}:"));
        let before = self.signal(EV, code).await?;
        let was = charge_limit(&before).with_context(|| format!("no limit in {code}: {before}"))?;
        say(format!(
            "  {:<36} {}",
            format!("get_signal {code}"),
            percent(was)
        ));
        let a = self
            .call(
                "set_charge_limit",
                json!({ "vehicle_id": EV, "user_id": ALICE, "percent": target }),
            )
            .await?;
        say(format!(
            "  {:<36} {}",
            format!("set_charge_limit {{\"percent\": {target}}}"),
            outcome(&a)
        ));
        let after = self.signal(EV, code).await?;
        let now = charge_limit(&after).with_context(|| format!("no limit in {code}: {after}"))?;
        say(format!(
            "  {:<36} {}",
            format!("get_signal {code}"),
            percent(now)
        ));
        if now != f64::from(target) {
            anyhow::bail!("the charge limit reads {now} after setting it to {target}");
        }
        Ok(())
    }

    async fn lock(&mut self) -> anyhow::Result<()> {
        let code = "closure-islocked";
        say("");
        say(format!("Lock {PHEV}:"));
        let before = self.signal(PHEV, code).await?;
        let was = locked(&before).with_context(|| format!("no true/false in {code}: {before}"))?;
        say(format!(
            "  {:<36} {}",
            format!("get_signal {code}"),
            lock_word(was)
        ));
        let a = self
            .call(
                "lock_vehicle",
                json!({ "vehicle_id": PHEV, "user_id": ALICE }),
            )
            .await?;
        say(format!("  {:<36} {}", "lock_vehicle", outcome(&a)));
        // The lock arrives as a webhook event within moments; until then a read goes upstream.
        let mut after = self.signal(PHEV, code).await?;
        for _ in 0..20 {
            if after["source"] == "webhook" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            after = self.signal(PHEV, code).await?;
        }
        let now = locked(&after).with_context(|| format!("no true/false in {code}: {after}"))?;
        say(format!(
            "  {:<36} {}",
            format!("get_signal {code}"),
            lock_word(now)
        ));
        if after["source"] == "webhook" {
            say(
                "  (the simulator pushed the lock as a signed webhook; that read cost no billed call)",
            );
        }
        if !now {
            anyhow::bail!("{PHEV} still reads unlocked after lock_vehicle succeeded");
        }
        Ok(())
    }
}

/// Rows with every column padded to its widest cell, two spaces apart.
fn table<const N: usize>(rows: &[[String; N]]) -> Vec<String> {
    let widths: Vec<usize> = (0..N)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|r| {
            let cells: Vec<String> = r
                .iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect();
            cells.join("  ").trim_end().to_string()
        })
        .collect()
}

/// `names` joined after `lead`, wrapped with continuation lines aligned under the first name.
fn wrap(lead: &str, names: &[String]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = lead.to_string();
    let mut empty = true;
    for n in names {
        if !empty && line.len() + 2 + n.len() > WIDTH {
            lines.push(format!("{line},"));
            line = " ".repeat(lead.len());
            empty = true;
        }
        if !empty {
            line.push_str(", ");
        }
        line.push_str(n);
        empty = false;
    }
    lines.push(line);
    lines
}

fn lock_word(locked: bool) -> &'static str {
    if locked {
        "true (locked)"
    } else {
        "false (unlocked)"
    }
}

/// A command's outcome: the status the body states, else the server's own sentence.
fn outcome(a: &Answer) -> String {
    command_status(&a.structured)
        .or_else(|| a.text.first().cloned())
        .unwrap_or_else(|| "done".into())
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn percent(v: f64) -> String {
    format!("{}%", number(v))
}

fn quantity(v: f64, unit: Option<&str>) -> String {
    match unit {
        None | Some("percent" | "%") => percent(v),
        Some(u) => format!("{} {u}", number(v)),
    }
}

// Readers of the compact results this server answers with (the demo is its client).

fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

/// A single-valued signal's value.
fn signal_value(v: &Value) -> Option<&Value> {
    field(v, "value").filter(|x| !x.is_object())
}

fn signal_unit(v: &Value) -> Option<&str> {
    field(v, "unit").and_then(Value::as_str)
}

/// The active charge limit in percent, from `charge-chargelimits`.
fn charge_limit(v: &Value) -> Option<f64> {
    v.pointer("/body/activeLimit")
        .or_else(|| field(v, "value"))
        .and_then(Value::as_f64)
}

/// `closure-islocked` as a bool.
fn locked(v: &Value) -> Option<bool> {
    signal_value(v)?.as_bool()
}

/// A command's status.
fn command_status(v: &Value) -> Option<String> {
    field(v, "status")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// One row of the fleet table.
#[derive(Debug, Clone, PartialEq, Default)]
struct Connection {
    user: String,
    vehicle: String,
    make: String,
    model: String,
    year: String,
    mode: String,
    powertrain: String,
}

/// The connections of a `list_connections` result.
fn connections(v: &Value) -> Vec<Connection> {
    let text = |c: &Value, key: &str| match field(c, key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    field(v, "connections")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| Connection {
            user: text(c, "user_id"),
            vehicle: text(c, "vehicle_id"),
            make: text(c, "make"),
            model: text(c, "model"),
            year: text(c, "year"),
            mode: text(c, "mode"),
            powertrain: text(c, "powertrain_type"),
        })
        .filter(|r| !r.vehicle.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_reads_the_compact_results_of_this_server() {
        let soc =
            json!({ "code": "tractionbattery-stateofcharge", "value": 72, "unit": "percent" });
        assert_eq!(signal_value(&soc), Some(&json!(72)));
        assert_eq!(signal_unit(&soc), Some("percent"));
        let limits = json!({ "code": "charge-chargelimits", "body": { "activeLimit": 80 } });
        assert_eq!(signal_value(&limits), None);
        assert_eq!(charge_limit(&limits), Some(80.0));
        assert_eq!(locked(&json!({ "value": true })), Some(true));
        assert_eq!(locked(&json!({ "value": "LOCKED" })), None);
        assert_eq!(
            command_status(&json!({ "status": "SUCCESS" })).as_deref(),
            Some("SUCCESS")
        );
        let fleet = json!({ "connections": [{ "user_id": "u1", "vehicle_id": "v1", "make": "Tesla",
            "model": "Model 3", "year": 2023, "mode": "live", "powertrain_type": "BEV" }] });
        let rows = connections(&fleet);
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].year.as_str(), rows[0].powertrain.as_str()),
            ("2023", "BEV")
        );
        assert!(connections(&json!({ "error": {} })).is_empty());
    }

    #[test]
    fn wrap_keeps_lines_short_and_aligned() {
        let names: Vec<String> = (0..12).map(|i| format!("tool_number_{i}")).collect();
        let lines = wrap("  commands     ", &names);
        assert!(lines.len() > 1);
        assert!(lines.iter().all(|l| l.len() <= WIDTH + 1), "{lines:?}");
        assert!(lines[1].starts_with(&" ".repeat(15)));
        let joined = lines.join(" ");
        assert!(names.iter().all(|n| joined.contains(n.as_str())));
    }

    #[test]
    fn table_pads_each_column_to_its_widest_cell() {
        let rows = [
            [
                "a".to_string(),
                "2022 Toyota RAV4 Prime".to_string(),
                "x".to_string(),
            ],
            ["bbb".to_string(), "2021 Ford".to_string(), "".to_string()],
        ];
        assert_eq!(
            table(&rows),
            vec!["a    2022 Toyota RAV4 Prime  x", "bbb  2021 Ford"]
        );
    }

    #[test]
    fn quantities_print_whole_numbers_plainly() {
        assert_eq!(quantity(72.0, Some("percent")), "72%");
        assert_eq!(quantity(72.5, None), "72.5%");
        assert_eq!(quantity(310.0, Some("km")), "310 km");
    }
}

//! The no-account paths of the built binary: `demo`, `serve --simulator` (and bare `--simulator`)
//! driven by rmcp's client, `call` against the simulator, and `simulator --port 0`.

use std::ffi::OsString;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::readers::{charge_limit, locked, signal_value};
use rmcp::RoleClient;
use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};
use smartcar_mcp::settings::Settings;
use smartcar_mcp::simulator::{ALICE, EV, PHEV};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::common;

/// The test process's own SMARTCAR_* variables (a developer's real credentials, say) must not
/// decide what these tests see.
fn smartcar_vars() -> Vec<OsString> {
    std::env::vars_os()
        .map(|(k, _)| k)
        .filter(|k| k.to_string_lossy().starts_with("SMARTCAR_"))
        .collect()
}

/// Settings that would send everything to a closed port with made-up credentials: any call
/// that succeeds under them proves `--simulator` replaced them.
const WRONG_SETTINGS: [(&str, &str); 5] = [
    ("SMARTCAR_API_URL", "http://127.0.0.1:9/v3"),
    ("SMARTCAR_AUTH_URL", "http://127.0.0.1:9"),
    (
        "SMARTCAR_MANAGEMENT_API_URL",
        "http://127.0.0.1:9/management/v3",
    ),
    ("SMARTCAR_CLIENT_ID", "not-a-client"),
    ("SMARTCAR_CLIENT_SECRET", "not-a-secret"),
];

fn cli(args: &[&str]) -> std::process::Command {
    let mut cmd = common::command();
    for k in smartcar_vars() {
        cmd.env_remove(k);
    }
    // stdin is never a terminal here, which is the case `call` must fail closed in.
    cmd.args(args).env_remove("RUST_LOG").stdin(Stdio::null());
    cmd
}

fn run(mut cmd: std::process::Command) -> Output {
    cmd.output().expect("binary runs")
}

/// For async tests with an in-process simulator: a blocking wait would stall the test's runtime,
/// which is the one serving the simulator the child is calling.
async fn run_async(cmd: std::process::Command) -> Output {
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("the call finishes within 60 s")
        .expect("binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `call` prints its text blocks, then the structured result as pretty JSON starting on a line
/// of its own.
fn printed_json(stdout: &str) -> Value {
    let start = stdout
        .find("\n{")
        .map(|i| i + 1)
        .or_else(|| stdout.starts_with('{').then_some(0))
        .unwrap_or_else(|| panic!("no JSON object in:\n{stdout}"));
    serde_json::from_str(&stdout[start..]).unwrap_or_else(|e| panic!("{e}:\n{stdout}"))
}

fn signal_args(vehicle: &str, code: &str) -> String {
    json!({ "vehicle_id": vehicle, "user_id": ALICE, "signal_code": code }).to_string()
}

// ------------------------------------------------------------------------------------------ demo

/// The line of `stdout` that contains every one of `parts`.
fn line_with<'a>(stdout: &'a str, parts: &[&str]) -> &'a str {
    stdout
        .lines()
        .find(|l| parts.iter().all(|p| l.contains(p)))
        .unwrap_or_else(|| panic!("no line with {parts:?} in:\n{stdout}"))
}

fn assert_demo_session(out: &Output) {
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed ({:?}):\n{stdout}\n{}",
        out.status,
        text(&out.stderr)
    );
    let served = format!(
        "{} tools",
        smartcar_mcp::tool::selection::select(&[], &[], &[], false)
            .unwrap()
            .len()
    );
    line_with(&stdout, &[served.as_str()]);
    for name in [
        "list_connections",
        "get_signal",
        "lock_vehicle",
        "list_application_secrets",
    ] {
        assert!(stdout.contains(name), "tool {name} not listed:\n{stdout}");
    }
    line_with(
        &stdout,
        &["usr-alice-01", "veh-ev-0001", "2023 Tesla Model 3", "live"],
    );
    line_with(
        &stdout,
        &["usr-alice-01", "veh-phev-0002", "Toyota RAV4 Prime", "PHEV"],
    );
    line_with(
        &stdout,
        &["usr-bob-02", "veh-ice-0003", "Ford F-150", "simulated"],
    );
    line_with(&stdout, &["tractionbattery-stateofcharge", "72%"]);

    // Read, set, read again: the second read must show the new value, not the seed.
    let limits: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("get_signal charge-chargelimits"))
        .collect();
    assert_eq!(limits.len(), 2, "{stdout}");
    assert!(limits[0].trim_end().ends_with("80%"), "{stdout}");
    assert!(limits[1].trim_end().ends_with("90%"), "{stdout}");
    line_with(&stdout, &["set_charge_limit", "90", "SUCCESS"]);

    let locks: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("get_signal closure-islocked"))
        .collect();
    assert_eq!(locks.len(), 2, "{stdout}");
    assert!(locks[0].ends_with("false (unlocked)"), "{stdout}");
    assert!(locks[1].ends_with("true (locked)"), "{stdout}");
    line_with(&stdout, &["lock_vehicle", "SUCCESS"]);
    line_with(&stdout, &["Done: 8 tool calls"]);
}

#[test]
fn demo_prints_the_session_and_exits_0_with_no_configuration() {
    let started = Instant::now();
    let out = run(cli(&["demo"]));
    assert_demo_session(&out);
    // "Finishes in seconds": a child that outlives the session would show up here first.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "demo took {:?}",
        started.elapsed()
    );
}

#[test]
fn demo_is_not_bent_by_the_operators_smartcar_settings() {
    let mut cmd = cli(&["demo"]);
    cmd.envs(WRONG_SETTINGS)
        .env("SMARTCAR_READ_ONLY", "true")
        .env("SMARTCAR_TOOLSETS", "signals")
        .env("SMARTCAR_DRY_RUN", "true");
    assert_demo_session(&run(cmd));
}

// ------------------------------------------------------------------- serve --simulator over MCP

async fn connect(
    args: &[&str],
    modern: bool,
) -> (RunningService<RoleClient, ()>, tokio::process::ChildStderr) {
    let mut cmd = common::tokio_command();
    for k in smartcar_vars() {
        cmd.env_remove(k);
    }
    cmd.args(args).env_remove("RUST_LOG").envs(WRONG_SETTINGS);
    let (transport, stderr) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary spawns");
    let client = common::client_over(transport, modern).await;
    (client, stderr.expect("stderr was piped"))
}

async fn call(client: &RunningService<RoleClient, ()>, tool: &str, args: Value) -> Value {
    let result = client
        .call_tool(
            CallToolRequestParams::new(tool.to_string())
                .with_arguments(args.as_object().cloned().unwrap()),
        )
        .await
        .unwrap_or_else(|e| panic!("tools/call {tool}: {e}"));
    assert_ne!(result.is_error, Some(true), "{tool}: {result:?}");
    result
        .structured_content
        .unwrap_or_else(|| panic!("{tool} has no structuredContent"))
}

async fn signal(client: &RunningService<RoleClient, ()>, vehicle: &str, code: &str) -> Value {
    let args = json!({ "vehicle_id": vehicle, "user_id": ALICE, "signal_code": code });
    call(client, "get_signal", args).await
}

/// The server's stderr lines up to the first that mentions the simulator.
async fn simulator_notice(stderr: tokio::process::ChildStderr) -> String {
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = String::new();
    let read = async {
        while let Ok(Some(line)) = lines.next_line().await {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("simulator") {
                return Some(line);
            }
        }
        None
    };
    match tokio::time::timeout(Duration::from_secs(10), read).await {
        Ok(Some(line)) => line,
        _ => panic!("no simulator notice on stderr"),
    }
}

async fn serves_the_simulator(args: &[&str], modern: bool) {
    let (client, stderr) = connect(args, modern).await;
    let tools = client.list_all_tools().await.expect("tools/list");
    assert_eq!(
        tools.len(),
        smartcar_mcp::tool::selection::select(&[], &[], &[], false)
            .unwrap()
            .len()
    );

    let soc = signal(&client, EV, "tractionbattery-stateofcharge").await;
    assert_eq!(signal_value(&soc), Some(&json!(72)), "{soc}");

    let before = signal(&client, PHEV, "closure-islocked").await;
    assert_eq!(
        locked(&before),
        Some(false),
        "the PHEV is seeded unlocked: {before}"
    );
    // lock_vehicle needs no confirmation, so confirmation stays at its default here.
    call(
        &client,
        "lock_vehicle",
        json!({ "vehicle_id": PHEV, "user_id": ALICE }),
    )
    .await;
    let after = signal(&client, PHEV, "closure-islocked").await;
    assert_eq!(
        locked(&after),
        Some(true),
        "the lock must be visible: {after}"
    );

    let notice = simulator_notice(stderr).await;
    assert!(
        notice.contains("SMARTCAR_*") && notice.contains("ignored"),
        "stderr must say the simulator overrides SMARTCAR_* settings: {notice}"
    );
    assert!(!notice.contains("not-a-secret"), "{notice}");
    client.cancel().await.ok();
}

#[tokio::test]
async fn serve_simulator_lists_reads_and_sees_a_lock_change_state() {
    serves_the_simulator(&["serve", "--simulator"], false).await;
}

#[tokio::test]
async fn bare_simulator_flag_serves_the_same_over_the_stateless_lifecycle() {
    serves_the_simulator(&["--simulator"], true).await;
}

// --------------------------------------------------------------------------------------- call

#[test]
fn call_get_signal_against_the_simulator_prints_the_result() {
    let args = signal_args(EV, "tractionbattery-stateofcharge");
    let mut cmd = cli(&["call", "get_signal", &args, "--simulator"]);
    cmd.envs(WRONG_SETTINGS);
    let out = run(cmd);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    let result = printed_json(&stdout);
    assert_eq!(signal_value(&result), Some(&json!(72)), "{stdout}");
    assert!(
        text(&out.stderr).contains("simulator"),
        "the override is announced"
    );
}

#[test]
fn call_refuses_an_out_of_range_percent_with_exit_1() {
    let args = json!({ "vehicle_id": EV, "user_id": ALICE, "percent": 101 }).to_string();
    let out = run(cli(&["call", "set_charge_limit", &args, "--simulator"]));
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("`percent` must be at most 100 (got 101)"),
        "{stdout}"
    );
}

#[test]
fn call_unlock_fails_closed_without_a_terminal_and_runs_with_confirm_off() {
    let args = json!({ "vehicle_id": EV, "user_id": ALICE }).to_string();
    let refused = run(cli(&["call", "unlock_vehicle", &args, "--simulator"]));
    let stderr = text(&refused.stderr);
    assert!(!refused.status.success(), "an unconfirmed unlock must fail");
    assert!(stderr.contains("confirm"), "{stderr}");
    assert!(stderr.contains("nothing was sent"), "{stderr}");
    assert!(refused.stdout.is_empty(), "no result for a call never made");

    let done = run(cli(&[
        "call",
        "unlock_vehicle",
        &args,
        "--simulator",
        "--confirm",
        "off",
    ]));
    let stdout = text(&done.stdout);
    assert!(done.status.success(), "{stdout}\n{}", text(&done.stderr));
    assert!(stdout.contains("SUCCESS"), "{stdout}");
}

/// Pointed at a simulator this test can inspect, so "nothing was sent" is checked, not believed.
/// A confirmed `call`: refused without a human (exit non-zero, "nothing was sent", no request
/// reaches the simulator), then sent with `--confirm off` and successful.
async fn refused_then_confirmed(sim: &smartcar_mcp::simulator::Simulator, call: &[&str]) {
    sim.clear_requests();
    let refused = run_async(against(sim, call)).await;
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("nothing was sent"));
    assert!(sim.requests().is_empty(), "{:?}", sim.requests());
    let confirmed: Vec<&str> = call.iter().copied().chain(["--confirm", "off"]).collect();
    let out = run_async(against(sim, &confirmed)).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
}

fn against(sim: &smartcar_mcp::simulator::Simulator, args: &[&str]) -> std::process::Command {
    let mut cmd = cli(args);
    cmd.env("SMARTCAR_CLIENT_ID", "client_call")
        .env("SMARTCAR_CLIENT_SECRET", common::CLIENT_SECRET)
        .env("SMARTCAR_AUTH_URL", sim.auth_url())
        .env("SMARTCAR_API_URL", sim.api_url())
        .env("SMARTCAR_MANAGEMENT_API_URL", sim.management_url());
    cmd
}

#[tokio::test]
async fn an_unconfirmed_unlock_reaches_neither_smartcar_nor_the_car() {
    let sim = common::simulator().await;
    let args = json!({ "vehicle_id": EV, "user_id": ALICE }).to_string();
    let out = run_async(against(&sim, &["call", "unlock_vehicle", &args])).await;
    assert!(!out.status.success());
    assert!(sim.requests().is_empty(), "{:?}", sim.requests());
    assert!(sim.token_requests().is_empty());
    assert_eq!(
        sim.signal_body(EV, "closure-islocked"),
        Some(json!({ "value": true }))
    );

    let out = run_async(against(
        &sim,
        &["call", "unlock_vehicle", &args, "--confirm", "off"],
    ))
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(sim.hits("POST", "/commands/security/unlock"), 1);
    assert_eq!(
        sim.signal_body(EV, "closure-islocked"),
        Some(json!({ "value": false }))
    );
    sim.shutdown();
}

#[tokio::test]
async fn call_dry_run_prints_the_request_and_sends_nothing() {
    let sim = common::simulator().await;
    let code = "tractionbattery-stateofcharge";
    let args = signal_args(EV, code);
    let out = run_async(against(&sim, &["call", "get_signal", &args, "--dry-run"])).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    let url = format!("{}/vehicles/{EV}/signals/{code}", sim.api_url());
    assert!(stdout.contains(&url), "{stdout}");
    assert!(stdout.contains("GET"), "{stdout}");
    assert!(stdout.contains(ALICE), "the user header is shown: {stdout}");
    assert!(sim.requests().is_empty(), "{:?}", sim.requests());
    assert!(sim.token_requests().is_empty(), "not even a token");
    sim.shutdown();
}

// --------------------------------------------------------------------------------- simulator

#[tokio::test]
async fn simulator_subcommand_prints_three_working_base_urls() {
    let mut child = common::tokio_command()
        .args(["simulator", "--port", "0"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        // An assertion failing below must not leave a server running.
        .kill_on_drop(true)
        .spawn()
        .expect("simulator starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    let mut exported = std::collections::HashMap::new();
    let read = async {
        while exported.len() < 3 {
            let Ok(Some(line)) = lines.next_line().await else {
                break;
            };
            printed.push_str(&line);
            printed.push('\n');
            for key in [
                "SMARTCAR_AUTH_URL",
                "SMARTCAR_API_URL",
                "SMARTCAR_MANAGEMENT_API_URL",
            ] {
                if let Some(url) = line.strip_prefix(&format!("export {key}=")) {
                    exported.insert(key, url.to_string());
                }
            }
        }
    };
    let waited = tokio::time::timeout(Duration::from_secs(20), read).await;
    assert!(waited.is_ok(), "no URLs within 20 s:\n{printed}");
    assert_eq!(exported.len(), 3, "{printed}");

    let auth = &exported["SMARTCAR_AUTH_URL"];
    let api = &exported["SMARTCAR_API_URL"];
    let management = &exported["SMARTCAR_MANAGEMENT_API_URL"];
    assert!(
        auth.starts_with("http://127.0.0.1:"),
        "loopback only: {auth}"
    );
    assert!(
        !auth.ends_with(":0"),
        "the real port, not the one asked for: {auth}"
    );
    assert_eq!(api, &format!("{auth}/v3"));
    assert_eq!(management, &format!("{auth}/management/v3"));
    assert!(
        printed.contains(&format!("{auth}/oauth2/token")),
        "{printed}"
    );

    // The printed URLs are the ones to use: a real call through them reaches the seeded fleet.
    let mut settings = Settings::for_urls(auth, api, management);
    settings.upstream.client_id = Some("client_standalone".into());
    settings.upstream.client_secret =
        Some(smartcar_mcp::secret::Secret::new(common::CLIENT_SECRET));
    let shared = common::shared(settings);
    let r = common::execute_only(
        &shared,
        "get_signal",
        json!({ "vehicle_id": EV, "user_id": ALICE, "signal_code": "charge-chargelimits" }),
    )
    .await;
    assert!(!r.is_error, "{r:?}");
    assert_eq!(
        charge_limit(&r.structured),
        Some(80.0),
        "{:?}",
        r.structured
    );

    child.kill().await.expect("simulator stops");
}

/// A daily charge schedule set through the binary shows in charge-chargetimers; deleting it needs
/// a confirmation (refused, nothing is sent) and then leaves it gone.
#[tokio::test]
async fn a_daily_charge_schedule_is_set_seen_and_deleted_with_confirmation() {
    let sim = common::simulator().await;
    let set = json!({ "vehicle_id": EV, "user_id": ALICE, "latitude": 37.77,
                      "longitude": -122.42, "startTime": "22:00", "stopTime": "06:30" })
    .to_string();
    let out = run_async(against(
        &sim,
        &[
            "call",
            "set_daily_charge_schedule",
            &set,
            "--toolsets",
            "schedules",
        ],
    ))
    .await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("Daily charge schedule 22:00 to 06:30 set on veh-ev-0001."),
        "{stdout}"
    );
    let result = printed_json(&stdout);
    assert_eq!(result["status"], "SUCCESS");
    assert_eq!(result["confirm_with"], "charge-chargetimers");
    let schedule_id = result["schedule_id"]
        .as_str()
        .expect("schedule id")
        .to_string();

    let timers = sim.signal_body(EV, "charge-chargetimers").unwrap();
    let entry = timers["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["scheduleId"] == schedule_id.as_str())
        .expect("the schedule is visible in charge-chargetimers")
        .clone();
    assert_eq!(entry["type"], "LOCATION");
    assert_eq!(entry["schedules"][0]["start"], "22:00");
    assert_eq!(entry["condition"]["latitude"], 37.77);

    let delete =
        json!({ "vehicle_id": EV, "user_id": ALICE, "schedule_id": schedule_id }).to_string();
    refused_then_confirmed(
        &sim,
        &[
            "call",
            "delete_charge_schedule",
            &delete,
            "--toolsets",
            "schedules",
        ],
    )
    .await;
    let timers = sim.signal_body(EV, "charge-chargetimers").unwrap();
    assert!(
        !timers.to_string().contains(&schedule_id),
        "the deleted schedule is gone: {timers}"
    );
    sim.shutdown();
}

/// Weekly and workweek schedules set through the binary land in charge-chargetimers, one window
/// per weekday or Monday-Friday plus the weekend, as the request body named them.
#[tokio::test]
async fn weekly_and_workweek_schedules_are_set_through_the_binary() {
    let sim = common::simulator().await;
    let weekly =
        json!({ "vehicle_id": EV, "user_id": ALICE, "latitude": 37.77, "longitude": -122.42,
                         "days": { "tuesday": { "startTime": "21:00", "stopTime": "23:30" } } })
        .to_string();
    let workweek =
        json!({ "vehicle_id": EV, "user_id": ALICE, "latitude": 37.77, "longitude": -122.42,
                           "weekdays": { "startTime": "00:30", "stopTime": "04:00" },
                           "weekends": { "startTime": "12:00", "stopTime": "15:00" } })
        .to_string();
    for (tool, args, says, windows) in [
        (
            "set_weekly_charge_schedule",
            &weekly,
            "Weekly charge schedule set on veh-ev-0001.",
            json!([{ "start": "21:00", "end": "23:30", "days": ["TUESDAY"] }]),
        ),
        (
            "set_workweek_charge_schedule",
            &workweek,
            "Workweek charge schedule set on veh-ev-0001.",
            json!([{ "start": "00:30", "end": "04:00", "days": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"] },
                   { "start": "12:00", "end": "15:00", "days": ["SATURDAY", "SUNDAY"] }]),
        ),
    ] {
        let out = run_async(against(&sim, &["call", tool, args, "--tools", tool])).await;
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
        assert!(stdout.contains(says), "{stdout}");
        let result = printed_json(&stdout);
        assert_eq!(result["confirm_with"], "charge-chargetimers");
        let id = result["schedule_id"].as_str().expect("schedule id");
        let timers = sim.signal_body(EV, "charge-chargetimers").unwrap();
        let entry = timers["values"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["scheduleId"] == id)
            .unwrap_or_else(|| panic!("{id} in {timers}"));
        assert_eq!(entry["schedules"], windows, "{tool}");
    }
    sim.shutdown();
}

/// The webhooks toolset is off unless asked for; unsubscribing needs a confirmation.
#[tokio::test]
async fn webhook_tools_are_opt_in_and_unsubscribing_is_confirmed() {
    let sim = common::simulator().await;
    let out = run_async(against(&sim, &["call", "list_webhooks", "{}"])).await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(
            "tool `list_webhooks` is not served with these settings: it is in toolset `webhooks`"
        ),
        "{}",
        text(&out.stderr)
    );
    assert!(sim.requests().is_empty());

    let out = run_async(against(
        &sim,
        &["call", "list_webhooks", "{}", "--toolsets", "webhooks"],
    ))
    .await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert_eq!(printed_json(&stdout)["webhooks"][0]["name"], "Fleet state");

    let args = json!({ "id": "sub-0001" }).to_string();
    refused_then_confirmed(
        &sim,
        &["call", "unsubscribe_vehicle", &args, "--toolsets", "all"],
    )
    .await;
    assert_eq!(sim.hits("DELETE", "/subscriptions/sub-0001"), 1);
    sim.shutdown();
}

/// `call check_compatibility` works with no Smartcar account configured at all.
#[tokio::test]
async fn check_compatibility_runs_without_credentials() {
    let sim = common::simulator().await;
    let mut cmd = cli(&[
        "call",
        "check_compatibility",
        r#"{"region": "CA", "make": "Ford"}"#,
    ]);
    cmd.env("SMARTCAR_COMPATIBILITY_API_URL", sim.compatibility_url());
    let out = run_async(cmd).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert_eq!(
        printed_json(&stdout)["models"][0]["model"],
        "Mustang Mach-E"
    );
    assert_eq!(sim.requests()[0].header("authorization"), None);
    sim.shutdown();
}

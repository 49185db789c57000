//! Every billed call counted, none wasted, every command on record: coalescing, the read cache,
//! per-vehicle lanes, the daily guard, usage counters and the SQLite audit log, counted by the
//! simulator (which records every request it receives).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use smartcar_mcp::settings::{ConfirmMode, Settings};
use smartcar_mcp::simulator::{ALICE, BOB, EV, ICE, PHEV, Simulator};
use smartcar_mcp::store::{Row, RowFilter, Store, StoreError};

use crate::common;

fn signal(vehicle: &str, code: &str) -> Value {
    json!({ "vehicle_id": vehicle, "user_id": ALICE, "signal_code": code })
}

fn meta(r: &smartcar_mcp::tool::ToolResult, key: &str) -> Value {
    r.meta
        .as_ref()
        .and_then(|m| m.to_map().remove(key))
        .unwrap_or(Value::Null)
}

fn temp_db(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "smartcar-mcp-billing-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir.join("audit.sqlite3")
}

async fn with(
    tune: impl FnOnce(&mut Settings),
) -> (Simulator, std::sync::Arc<smartcar_mcp::mcp::Shared>) {
    let sim = common::simulator().await;
    let mut s = common::settings(&sim);
    tune(&mut s);
    (sim, common::shared(s))
}

#[tokio::test]
async fn twenty_identical_reads_in_flight_make_one_upstream_request() {
    let (sim, shared) = with(|_| {}).await;
    sim.set_latency_ms(300);
    let code = "tractionbattery-stateofcharge";
    let calls = (0..20).map(|_| common::run(&shared, "get_signal", signal(EV, code)));
    let results = futures::future::join_all(calls).await;
    assert_eq!(
        sim.hits("GET", &format!("/signals/{code}")),
        1,
        "{:?}",
        sim.requests()
    );
    let first = &results[0].structured;
    let mut shared_answers = 0;
    for r in &results {
        assert!(!r.is_error, "{r:?}");
        assert_eq!(&r.structured, first, "every caller gets the same answer");
        if meta(r, "smartcar-mcp/source") == "coalesced" {
            assert_eq!(meta(r, "smartcar-mcp/upstream_calls"), 0);
            shared_answers += 1;
        }
    }
    assert_eq!(shared_answers, 19);
    let usage = shared.app.usage.snapshot().await;
    assert_eq!(usage["total"]["upstream_calls"], 1);
    assert_eq!(usage["total"]["coalesced"], 19);
    sim.shutdown();
}

#[tokio::test]
async fn reads_of_twenty_vehicles_make_twenty_requests_at_once() {
    let (sim, shared) = with(|s| s.serving.max_concurrent_per_vehicle = 1).await;
    sim.set_latency_ms(400);
    let vehicles: Vec<String> = (0..20).map(|i| format!("veh-x-{i:04}")).collect();
    let calls = vehicles.iter().map(|v| {
        common::run(
            &shared,
            "get_signal",
            signal(v, "tractionbattery-stateofcharge"),
        )
    });
    let results = futures::future::join_all(calls).await;
    assert_eq!(results.len(), 20);
    assert_eq!(sim.requests().len(), 20);
    // A vehicle's single lane never held up another vehicle: they were answered side by side.
    assert!(
        sim.max_in_flight() >= 10,
        "only {} at once",
        sim.max_in_flight()
    );
    sim.shutdown();
}

#[tokio::test]
async fn a_burst_for_one_vehicle_keeps_to_its_lanes_and_a_bounded_wait() {
    let (sim, shared) = with(|s| s.serving.max_concurrent_per_vehicle = 2).await;
    sim.set_latency_ms(150);
    let codes = [
        "tractionbattery-stateofcharge",
        "tractionbattery-range",
        "charge-ischarging",
        "charge-chargelimits",
        "closure-islocked",
        "odometer-traveleddistance",
        "location-preciselocation",
        "charge-detailedchargingstatus",
    ];
    let results = futures::future::join_all(
        codes
            .iter()
            .map(|c| common::run(&shared, "get_signal", signal(EV, c))),
    )
    .await;
    assert!(results.iter().all(|r| !r.is_error), "{results:?}");
    assert_eq!(sim.requests().len(), codes.len());
    assert!(
        sim.max_in_flight() <= 2,
        "{} at once for one vehicle",
        sim.max_in_flight()
    );
    sim.shutdown();

    // With a short wait, the calls that cannot get a lane in time are refused, retriably, unsent.
    let (sim, shared) = with(|s| {
        s.serving.max_concurrent_per_vehicle = 1;
        s.serving.vehicle_wait = Duration::from_millis(50);
    })
    .await;
    sim.set_latency_ms(400);
    let results = futures::future::join_all(
        codes[..4]
            .iter()
            .map(|c| common::run(&shared, "get_signal", signal(EV, c))),
    )
    .await;
    let busy: Vec<_> = results.iter().filter(|r| r.is_error).collect();
    assert_eq!(busy.len(), 3, "{results:?}");
    for r in busy {
        assert_eq!(r.structured["error"]["type"], "VEHICLE_BUSY");
        assert_eq!(r.structured["error"]["retriable"], true);
    }
    assert_eq!(sim.requests().len(), 1);
    sim.shutdown();
}

#[tokio::test]
async fn cached_reads_say_their_age_and_a_command_drops_them() {
    let (sim, shared) = with(|s| s.serving.cache_ttl = Duration::from_secs(60)).await;
    let limits = signal(EV, "charge-chargelimits");
    let first = common::run(&shared, "get_signal", limits.clone()).await;
    let again = common::run(&shared, "get_signal", limits.clone()).await;
    assert_eq!(sim.hits("GET", "/signals/charge-chargelimits"), 1);
    assert_eq!(again.structured, first.structured);
    assert!(
        again
            .lead
            .as_deref()
            .unwrap()
            .starts_with("Cached answer, 0 s old"),
        "{again:?}"
    );
    assert_eq!(meta(&again, "smartcar-mcp/source"), "cache");
    // Another vehicle's read is not served from this one's cache.
    common::run(&shared, "get_signal", signal(PHEV, "charge-chargelimits")).await;
    assert_eq!(sim.hits("GET", "/signals/charge-chargelimits"), 2);

    let set = common::run(
        &shared,
        "set_charge_limit",
        json!({ "vehicle_id": EV, "user_id": ALICE, "percent": 70 }),
    )
    .await;
    assert!(!set.is_error, "{set:?}");
    let after = common::run(&shared, "get_signal", limits).await;
    assert_eq!(
        sim.hits("GET", "/signals/charge-chargelimits"),
        3,
        "the command dropped the cache"
    );
    assert_ne!(
        after.structured, first.structured,
        "the read shows the new limit"
    );
    assert!(after.lead.is_none());
    // The PHEV's cached read survived the EV's command.
    common::run(&shared, "get_signal", signal(PHEV, "charge-chargelimits")).await;
    assert_eq!(sim.hits("GET", "/signals/charge-chargelimits"), 3);
    sim.shutdown();
}

#[tokio::test]
async fn the_daily_guard_refuses_locally_once_a_vehicle_has_cost_its_calls() {
    let (sim, shared) = with(|s| s.serving.max_calls_per_vehicle_per_day = Some(2)).await;
    for code in ["tractionbattery-stateofcharge", "closure-islocked"] {
        let r = common::run(&shared, "get_signal", signal(EV, code)).await;
        assert!(!r.is_error, "{r:?}");
    }
    let before = sim.requests().len();
    let r = common::run(&shared, "get_signal", signal(EV, "charge-ischarging")).await;
    assert_eq!(r.structured["error"]["type"], "DAILY_LIMIT", "{r:?}");
    assert!(r.lead.unwrap().contains("Nothing was sent"));
    let lock = common::run(
        &shared,
        "lock_vehicle",
        json!({ "vehicle_id": EV, "user_id": ALICE }),
    )
    .await;
    assert_eq!(lock.structured["error"]["type"], "DAILY_LIMIT");
    assert_eq!(
        sim.requests().len(),
        before,
        "refused with zero upstream calls"
    );
    // Other vehicles keep their own allowance.
    let r = common::run(&shared, "get_signal", signal(PHEV, "charge-ischarging")).await;
    assert!(!r.is_error, "{r:?}");
    sim.shutdown();
}

#[tokio::test]
async fn every_command_and_deletion_is_on_record_with_its_outcome() {
    let db = temp_db("session");
    let (sim, shared) = with(|s| {
        s.serving.audit_db = Some(db.clone());
        s.serving.confirm = ConfirmMode::Off;
    })
    .await;
    let calls = [
        (
            "lock_vehicle",
            json!({ "vehicle_id": EV, "user_id": ALICE }),
        ),
        (
            "unlock_vehicle",
            json!({ "vehicle_id": EV, "user_id": ALICE }),
        ),
        (
            "set_charge_limit",
            json!({ "vehicle_id": EV, "user_id": ALICE, "percent": 85 }),
        ),
        ("stop_charge", json!({ "vehicle_id": ICE, "user_id": BOB })),
        ("delete_connection", json!({ "id": "conn-bob-ice-03" })),
    ];
    for (tool, args) in &calls {
        common::run(&shared, tool, args.clone()).await;
    }
    // Reads are counted, not audited.
    common::run(&shared, "get_signal", signal(EV, "closure-islocked")).await;
    let rows = read_rows(&db, None, None).await.unwrap();
    assert_eq!(rows.len(), calls.len(), "{rows:#?}");
    for (row, (tool, args)) in rows.iter().zip(&calls) {
        assert_eq!(&row.tool, tool);
        assert_eq!(&row.arguments, args);
        assert_eq!(
            row.confirmation.as_str(),
            if *tool == "lock_vehicle" || *tool == "set_charge_limit" || *tool == "stop_charge" {
                "not required"
            } else {
                "off"
            }
        );
        assert!(row.finished_at.is_some(), "{row:?}");
        assert!(row.caller.contains("tests/1"), "{row:?}");
    }
    assert_eq!(rows[0].vehicle_id.as_deref(), Some(EV));
    assert_eq!(rows[0].user_id.as_deref(), Some(ALICE));
    assert_eq!(rows[0].status(), "done: SUCCESS");
    assert!(
        rows[0].request_id.is_some(),
        "Smartcar's request id is kept"
    );
    // The petrol car cannot stop charging: a failure is on record as one, with Smartcar's status.
    assert!(rows[3].status().starts_with("failed"), "{:?}", rows[3]);
    assert!(
        rows[3].http_status.is_some_and(|s| s >= 400),
        "{:?}",
        rows[3]
    );
    assert_eq!(read_rows(&db, None, Some(ICE)).await.unwrap().len(), 1);
    sim.shutdown();

    // A refused confirmation and a dry run are recorded as such, and nothing is sent.
    let (sim, shared) = with(|s| {
        s.serving.audit_db = Some(db.clone());
        s.serving.confirm = ConfirmMode::Required;
    })
    .await;
    let r = common::run(
        &shared,
        "unlock_vehicle",
        json!({ "vehicle_id": EV, "user_id": ALICE }),
    )
    .await;
    assert_eq!(r.structured["error"]["type"], "NOT_CONFIRMED");
    sim.shutdown();
    let (sim, shared) = with(|s| {
        s.serving.audit_db = Some(db.clone());
        s.serving.dry_run = true;
    })
    .await;
    common::run(
        &shared,
        "lock_vehicle",
        json!({ "vehicle_id": EV, "user_id": ALICE }),
    )
    .await;
    assert!(sim.requests().is_empty());
    let rows = read_rows(&db, None, None).await.unwrap();
    assert_eq!(rows[calls.len()].state.as_str(), "refused");
    assert!(
        rows[calls.len()]
            .error
            .as_deref()
            .unwrap()
            .contains("nobody to ask")
    );
    assert_eq!(rows[calls.len() + 1].status(), "dry run");
    sim.shutdown();

    // The file holds no secret: neither the client secret nor any access token the simulator issued.
    let bytes = std::fs::read(&db).unwrap();
    let wal = std::fs::read(db.with_extension("sqlite3-wal")).unwrap_or_default();
    let hay = String::from_utf8_lossy(&[bytes, wal].concat()).to_string();
    assert!(!hay.contains(common::CLIENT_SECRET));
    assert!(!hay.contains("Bearer"));
}

#[tokio::test]
async fn usage_survives_a_restart_with_the_audit_database() {
    let db = temp_db("usage");
    let (sim, shared) = with(|s| s.serving.audit_db = Some(db.clone())).await;
    common::run(&shared, "get_signal", signal(EV, "closure-islocked")).await;
    common::run(&shared, "get_signal", signal(EV, "closure-islocked")).await;
    drop(shared);
    // The usage writer commits in the background; give it a moment, then start afresh.
    let mut totals = Default::default();
    for _ in 0..50 {
        totals = Store::read_sqlite(&db).usage_totals().await.unwrap();
        if totals
            .values()
            .map(|c: &smartcar_mcp::store::Counts| c.upstream_calls)
            .sum::<u64>()
            == 2
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let c = totals[&(EV.to_string(), "get_signal".to_string())];
    assert_eq!(c.upstream_calls, 2);
    let mut s = common::settings(&sim);
    s.serving.audit_db = Some(db.clone());
    s.serving.max_calls_per_vehicle_per_day = Some(2);
    let restarted = common::shared(s);
    assert_eq!(
        restarted.app.usage.snapshot().await["total"]["upstream_calls"],
        2
    );
    let r = common::run(&restarted, "get_signal", signal(EV, "closure-islocked")).await;
    assert_eq!(
        r.structured["error"]["type"], "DAILY_LIMIT",
        "today's calls were remembered"
    );
    sim.shutdown();
}

/// A server killed (SIGKILL) while a command waits on a slow car leaves a row that says so, and
/// `audit` reads it in both forms.
#[cfg(unix)]
#[tokio::test]
async fn a_server_killed_mid_command_leaves_sent_outcome_unknown() {
    use tokio::io::AsyncWriteExt;

    let db = temp_db("killed");
    let sim = common::simulator().await;
    sim.set_latency_ms(30_000);
    let mut child = common::tokio_command()
        .args(["--confirm", "off", "--audit-db"])
        .arg(&db)
        .env("SMARTCAR_CLIENT_ID", "client_killed")
        .env("SMARTCAR_CLIENT_SECRET", common::CLIENT_SECRET)
        .env("SMARTCAR_AUTH_URL", sim.auth_url())
        .env("SMARTCAR_API_URL", sim.api_url())
        .env("SMARTCAR_MANAGEMENT_API_URL", sim.management_url())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let lines = [
        r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"killer","version":"1"}}}"#.to_string(),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_string(),
        json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"unlock_vehicle","arguments":{"vehicle_id": EV, "user_id": ALICE}}}).to_string(),
    ];
    for l in lines {
        stdin.write_all(format!("{l}\n").as_bytes()).await.unwrap();
    }
    stdin.flush().await.unwrap();
    // Kill it once the unlock has reached Smartcar and is waiting on the car.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while sim.hits("POST", "/commands/security/unlock") == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the unlock never arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();

    let out = common::command()
        .args(["audit", "--json", "--audit-db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let schema = json!({
        "type": "array",
        "items": {
            "type": "object",
            "required": ["id", "at", "tool", "arguments", "vehicle_id", "user_id", "caller", "confirmation", "state", "finished_at"],
            "properties": {
                "id": { "type": "integer" },
                "at": { "type": "string", "pattern": "^\\d{4}-\\d{2}-\\d{2}T" },
                "tool": { "type": "string" },
                "arguments": { "type": "object" },
                "state": { "enum": ["sent", "done", "failed", "dry_run", "refused"] },
                "finished_at": { "type": ["string", "null"] }
            }
        }
    });
    let v = jsonschema::validator_for(&schema).unwrap();
    assert!(v.is_valid(&rows), "{rows:#}");
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows:#}");
    let row = &rows[0];
    assert_eq!(row["tool"], "unlock_vehicle");
    assert_eq!(row["state"], "sent");
    assert_eq!(row["finished_at"], Value::Null);
    assert_eq!(row["confirmation"], "off");
    assert!(
        row["caller"].as_str().unwrap().contains("killer/1"),
        "{row}"
    );

    let text = common::command()
        .args(["audit", "--vehicle", EV, "--audit-db"])
        .arg(&db)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("unlock_vehicle") && text.contains("sent, outcome unknown"),
        "{text}"
    );
    let usage = common::command()
        .args(["usage", "--json", "--audit-db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        usage.status.success(),
        "{}",
        String::from_utf8_lossy(&usage.stderr)
    );
    let usage: Value = serde_json::from_slice(&usage.stdout).unwrap();
    assert_eq!(usage["persisted"], true);
    sim.shutdown();
}

/// The demo's questions, asked twice, the way an agent asks them: reads fired in parallel, the
/// same read more than once. Returns (tool calls made, upstream requests Smartcar billed).
async fn scripted_session(cache_ttl: Duration) -> (usize, usize) {
    let (sim, shared) = with(|s| s.serving.cache_ttl = cache_ttl).await;
    sim.set_latency_ms(50);
    let mut calls = 0;
    for _ in 0..2 {
        common::run(&shared, "list_connections", json!({})).await;
        calls += 1;
        let mut reads = Vec::new();
        for (v, user) in [(EV, ALICE), (PHEV, ALICE), (ICE, BOB)] {
            for code in [
                "tractionbattery-stateofcharge",
                "charge-chargelimits",
                "closure-islocked",
            ] {
                for _ in 0..2 {
                    reads.push(json!({ "vehicle_id": v, "user_id": user, "signal_code": code }));
                }
            }
        }
        calls += reads.len();
        futures::future::join_all(
            reads
                .into_iter()
                .map(|a| common::run(&shared, "get_signal", a)),
        )
        .await;
        let set = json!({ "vehicle_id": EV, "user_id": ALICE, "percent": 80 });
        common::run(&shared, "set_charge_limit", set).await;
        common::run(&shared, "get_signal", signal(EV, "charge-chargelimits")).await;
        let lock = json!({ "vehicle_id": PHEV, "user_id": ALICE });
        common::run(&shared, "lock_vehicle", lock).await;
        common::run(&shared, "get_signal", signal(PHEV, "closure-islocked")).await;
        calls += 4;
    }
    let upstream = sim.requests().len();
    sim.shutdown();
    (calls, upstream)
}

#[tokio::test]
async fn an_agent_session_costs_fewer_billed_calls_with_each_feature() {
    let (calls, coalesced) = scripted_session(Duration::ZERO).await;
    let (_, cached) = scripted_session(Duration::from_secs(60)).await;
    eprintln!(
        "scripted session: {calls} tool calls; upstream requests: {coalesced} with coalescing, {cached} with coalescing and a 60 s cache"
    );
    assert_eq!(calls, 46);
    // Each parallel pair of identical reads is one request; the cache then saves the second round.
    assert!(coalesced < calls && coalesced <= 30, "{coalesced}");
    assert!(cached < coalesced, "{cached} vs {coalesced}");
}

/// `smartcar://usage` over MCP, in both lifecycles, and the `_meta` of each result.
#[tokio::test]
async fn the_usage_resource_and_result_meta_count_upstream_calls() {
    use rmcp::model::{CallToolRequestParams, ReadResourceRequestParams, ResourceContents};
    for modern in [false, true] {
        let sim = common::simulator().await;
        let mut cmd = common::tokio_command();
        cmd.args(["--audit-db", "off"])
            .env_remove("RUST_LOG")
            .env("SMARTCAR_CLIENT_ID", "client_usage")
            .env("SMARTCAR_CLIENT_SECRET", common::CLIENT_SECRET)
            .env("SMARTCAR_AUTH_URL", sim.auth_url())
            .env("SMARTCAR_API_URL", sim.api_url())
            .env("SMARTCAR_MANAGEMENT_API_URL", sim.management_url());
        let (transport, _) = rmcp::transport::TokioChildProcess::builder(cmd)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let client = common::client_over(transport, modern).await;
        let listed = client.list_all_resources().await.unwrap();
        assert!(
            listed.iter().any(|r| r.uri == "smartcar://usage"),
            "{listed:?}"
        );
        let args = signal(EV, "tractionbattery-stateofcharge");
        let r = client
            .call_tool(
                CallToolRequestParams::new("get_signal")
                    .with_arguments(args.as_object().cloned().unwrap()),
            )
            .await
            .unwrap();
        let meta = r.meta.expect("a result says what it cost");
        assert_eq!(meta.0["smartcar-mcp/upstream_calls"], 1, "{meta:?}");
        let read = client
            .read_resource(ReadResourceRequestParams::new("smartcar://usage"))
            .await
            .unwrap();
        let ResourceContents::TextResourceContents { text, .. } = &read.contents[0] else {
            panic!("{read:?}")
        };
        let usage: Value = serde_json::from_str(text).unwrap();
        assert_eq!(usage["total"]["upstream_calls"], 1, "{usage}");
        assert_eq!(usage["vehicles"][0]["vehicle_id"], EV);
        assert_eq!(
            usage["vehicles"][0]["tools"]["get_signal"]["upstream_calls"],
            1
        );
        let missing = client
            .read_resource(ReadResourceRequestParams::new("smartcar://nothing"))
            .await;
        assert!(missing.is_err(), "an unknown resource is an error");
        client.cancel().await.unwrap();
        sim.shutdown();
    }
}

/// Twenty reads of twenty signals at once, for one vehicle.
fn twenty_codes() -> Vec<&'static str> {
    smartcar_mcp::catalogue::SIGNALS
        .iter()
        .filter(|s| s.group != "location")
        .map(|s| s.code)
        .take(20)
        .collect()
}

#[tokio::test]
async fn twenty_concurrent_calls_at_the_last_slot_let_exactly_one_through() {
    let (sim, shared) = with(|s| s.serving.max_calls_per_vehicle_per_day = Some(3)).await;
    for code in ["tractionbattery-stateofcharge", "closure-islocked"] {
        assert!(
            !common::run(&shared, "get_signal", signal(EV, code))
                .await
                .is_error
        );
    }
    let before = sim.requests().len();
    let calls = twenty_codes()
        .into_iter()
        .map(|code| {
            let shared = shared.clone();
            tokio::spawn(async move { common::run(&shared, "get_signal", signal(EV, code)).await })
        })
        .collect::<Vec<_>>();
    let mut through = 0;
    for c in calls {
        let r = c.await.unwrap();
        if r.structured["error"]["type"] == "DAILY_LIMIT" {
            continue;
        }
        through += 1;
    }
    assert_eq!(through, 1, "exactly the last slot");
    assert_eq!(sim.requests().len(), before + 1, "one upstream call");
    sim.shutdown();
}

#[tokio::test]
async fn twenty_processes_sharing_one_database_take_the_last_slot_once() {
    let db = temp_db("cap-race");
    let sim = common::simulator().await;
    let run = |code: &str| {
        let args = signal(EV, code).to_string();
        let mut cmd = common::tokio_command();
        cmd.env_clear()
            .env("XDG_DATA_HOME", crate::common::data_home())
            .args(["call", "get_signal", &args])
            .env("SMARTCAR_CLIENT_ID", "client_cap")
            .env("SMARTCAR_CLIENT_SECRET", common::CLIENT_SECRET)
            .env("SMARTCAR_AUTH_URL", sim.auth_url())
            .env("SMARTCAR_API_URL", sim.api_url())
            .env("SMARTCAR_MANAGEMENT_API_URL", sim.management_url())
            .env("SMARTCAR_AUDIT_DB", &db)
            .env("SMARTCAR_MAX_CALLS_PER_VEHICLE_PER_DAY", "3")
            .kill_on_drop(true);
        cmd.output()
    };
    for code in ["tractionbattery-stateofcharge", "closure-islocked"] {
        let out = run(code).await.unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let before = sim
        .requests()
        .iter()
        .filter(|r| r.path.contains("/signals/"))
        .count();
    let outs = futures::future::join_all(twenty_codes().into_iter().map(run)).await;
    let mut through = 0;
    for out in outs {
        let out = out.unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        if !text.contains("DAILY_LIMIT") {
            assert!(out.status.success(), "{text}");
            through += 1;
        }
    }
    assert_eq!(through, 1, "exactly the last slot, across processes");
    let after = sim
        .requests()
        .iter()
        .filter(|r| r.path.contains("/signals/"))
        .count();
    assert_eq!(after, before + 1, "one upstream call");
    sim.shutdown();
}

/// No command leaves before its row is on disk: when the rows cannot be written, every command
/// in flight together is refused and nothing reaches the vehicle.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commands_whose_rows_cannot_be_written_are_all_refused_and_none_sent() {
    let db = temp_db("unwritable");
    let (sim, shared) = with(|s| s.serving.audit_db = Some(db.clone())).await;
    let lock = |v: &str| json!({ "vehicle_id": v, "user_id": ALICE });
    let r = common::run(&shared, "lock_vehicle", lock(EV)).await;
    assert!(!r.is_error, "{r:?}");
    assert_eq!(sim.hits("POST", "/commands/"), 1);
    // What a full disk or a failing device does to the writes, made certain with a trigger.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER no_room BEFORE INSERT ON audit
             BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
        )
        .unwrap();
    let vehicles: Vec<String> = (0..32).map(|i| format!("veh-audit-{i:04}")).collect();
    let calls = vehicles
        .iter()
        .map(|v| common::run(&shared, "lock_vehicle", lock(v)));
    for r in futures::future::join_all(calls).await {
        assert_eq!(r.structured["error"]["type"], "AUDIT_UNAVAILABLE", "{r:?}");
    }
    assert_eq!(sim.hits("POST", "/commands/"), 1, "{:?}", sim.requests());
    assert_eq!(read_rows(&db, None, None).await.unwrap().len(), 1);
    sim.shutdown();

    // The folder gone before the first command: the file cannot even be opened.
    let db = temp_db("gone");
    let (sim, shared) = with(|s| s.serving.audit_db = Some(db.clone())).await;
    std::fs::remove_dir_all(db.parent().unwrap()).unwrap();
    let calls = vehicles
        .iter()
        .map(|v| common::run(&shared, "lock_vehicle", lock(v)));
    for r in futures::future::join_all(calls).await {
        assert_eq!(r.structured["error"]["type"], "AUDIT_UNAVAILABLE", "{r:?}");
    }
    assert_eq!(sim.hits("POST", ""), 0, "{:?}", sim.requests());
    sim.shutdown();
}

/// The audit rows in the file at `db`, read as `smartcar-mcp audit` reads them.
async fn read_rows(
    db: &std::path::Path,
    since: Option<&str>,
    vehicle: Option<&str>,
) -> Result<Vec<Row>, StoreError> {
    Store::read_sqlite(db)
        .rows(&RowFilter {
            since,
            vehicle,
            principal: None,
        })
        .await
}

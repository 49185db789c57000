//! Results shaped for agents: every real result and error validates against the tool's published
//! outputSchema; compact shapes, the raw switch, command sentences and bounded output.

use serde_json::{Value, json};
use smartcar_mcp::catalogue::{SIGNALS, TOOLS, tool};
use smartcar_mcp::simulator::{Fault, Simulator};
use smartcar_mcp::tool::{ToolResult, call as pipeline};

use crate::common;

const EV: &str = "veh-ev-0001";
const PHEV: &str = "veh-phev-0002";
const ICE: &str = "veh-ice-0003";
const ALICE: &str = "usr-alice-01";
const BOB: &str = "usr-bob-02";

/// One successful call per tool against the seeded fleet.
fn calls() -> Vec<(&'static str, Value)> {
    vec![
        ("list_connections", json!({})),
        ("get_connection", json!({ "id": "conn-alice-ev-01" })),
        ("get_signals", json!({ "vehicle_id": EV, "user_id": ALICE })),
        (
            "get_signal",
            json!({ "vehicle_id": EV, "user_id": ALICE, "signal_code": "tractionbattery-stateofcharge" }),
        ),
        ("get_vehicle", json!({ "vehicle_id": EV })),
        (
            "check_compatibility",
            json!({ "region": "US", "make": "Tesla" }),
        ),
        (
            "lock_vehicle",
            json!({ "vehicle_id": PHEV, "user_id": ALICE }),
        ),
        (
            "unlock_vehicle",
            json!({ "vehicle_id": PHEV, "user_id": ALICE }),
        ),
        (
            "start_charge",
            json!({ "vehicle_id": EV, "user_id": ALICE }),
        ),
        ("stop_charge", json!({ "vehicle_id": EV, "user_id": ALICE })),
        (
            "set_charge_limit",
            json!({ "vehicle_id": EV, "user_id": ALICE, "percent": 85 }),
        ),
        (
            "set_navigation_destination",
            json!({ "vehicle_id": EV, "user_id": ALICE, "latitude": 51.5, "longitude": -0.14 }),
        ),
        (
            "set_daily_charge_schedule",
            json!({ "vehicle_id": EV, "user_id": ALICE, "latitude": 37.77, "longitude": -122.42, "startTime": "08:00", "stopTime": "10:00" }),
        ),
        (
            "set_weekly_charge_schedule",
            json!({ "vehicle_id": EV, "user_id": ALICE, "latitude": 37.77, "longitude": -122.42, "days": { "friday": { "startTime": "20:00", "stopTime": "23:00" } } }),
        ),
        (
            "set_workweek_charge_schedule",
            json!({ "vehicle_id": EV, "user_id": ALICE, "latitude": 37.77, "longitude": -122.42, "weekdays": { "startTime": "01:00", "stopTime": "05:00" } }),
        ),
        (
            "delete_charge_schedule",
            json!({ "vehicle_id": EV, "user_id": ALICE, "schedule_id": "sched-bev-home" }),
        ),
        ("list_webhooks", json!({})),
        ("get_webhook", json!({ "id": "wh-0a1b2c3d-state" })),
        (
            "list_subscriptions",
            json!({ "webhookId": "wh-0a1b2c3d-state" }),
        ),
        (
            "subscribe_vehicle",
            json!({ "webhook_id": "wh-0a1b2c3d-state", "vehicle_id": PHEV, "user_id": ALICE }),
        ),
        ("unsubscribe_vehicle", json!({ "id": "sub-0001" })),
        ("list_applications", json!({})),
        ("get_application", json!({ "id": "app-fleet-console-01" })),
        (
            "list_application_secrets",
            json!({ "id": "app-fleet-console-01" }),
        ),
        ("delete_connection", json!({ "id": "conn-bob-ice-03" })),
        ("delete_user", json!({ "id": BOB })),
    ]
}

fn validator(name: &str) -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(tool(name).unwrap().output_schema).unwrap();
    jsonschema::validator_for(&schema).expect("output schema compiles")
}

fn assert_valid(name: &str, r: &ToolResult) {
    let v = validator(name);
    let errors: Vec<String> = v
        .iter_errors(&r.structured)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "{name}: structuredContent does not match its outputSchema: {errors:?}\n{}",
        r.structured
    );
    let last = &r.json;
    assert_eq!(
        serde_json::from_str::<Value>(last).unwrap(),
        r.structured,
        "{name}: last text block is the structured result"
    );
}

async fn setup() -> (Simulator, std::sync::Arc<smartcar_mcp::mcp::Shared>) {
    let sim = common::simulator().await;
    let shared = common::shared(common::settings(&sim));
    (sim, shared)
}

#[tokio::test]
async fn every_tool_result_and_error_matches_its_output_schema() {
    let (sim, shared) = setup().await;
    let covered: Vec<&str> = calls().iter().map(|c| c.0).collect();
    for t in TOOLS.iter() {
        assert!(
            covered.contains(&t.name),
            "{} has no schema test call",
            t.name
        );
    }
    for (name, args) in calls() {
        let r = common::execute_only(&shared, name, args.clone()).await;
        assert!(!r.is_error, "{name}: {r:?}");
        assert_valid(name, &r);
        // A raw answer, where the tool offers it, matches too.
        if tool(name).unwrap().params.iter().any(|p| p.name == "raw") {
            let mut raw = args.clone();
            raw["raw"] = json!(true);
            let r = common::execute_only(&shared, name, raw).await;
            assert!(!r.is_error, "{name} raw: {r:?}");
            assert!(
                r.structured.get("data").is_some() || r.structured.get("attributes").is_some(),
                "{name} raw keeps the JSON:API document: {}",
                r.structured
            );
            assert_valid(name, &r);
        }
        // An upstream error, a local argument error and a dry run all match as well.
        sim.inject(Fault::smartcar(404, "RESOURCE_NOT_FOUND", "PATH", "gone").times(1));
        // A Compatibility API answer is cached, so the error needs a server that has none.
        let uncached;
        let target = if tool(name).unwrap().api == smartcar_mcp::catalogue::Api::Compatibility {
            uncached = common::shared(common::settings(&sim));
            &uncached
        } else {
            &shared
        };
        let r = common::execute_only(target, name, args.clone()).await;
        assert!(r.is_error, "{name}: injected 404");
        assert_valid(name, &r);
        sim.clear_faults();
        let mut bad = args.clone();
        bad["unexpected_argument"] = json!(1);
        let r = common::execute_only(&shared, name, bad).await;
        assert!(r.is_error);
        assert_valid(name, &r);
        let spec = tool(name).unwrap();
        let canonical = pipeline::validate(spec, args.as_object()).unwrap();
        assert_valid(name, &pipeline::dry_run(&shared.app.exec, spec, &canonical));
    }
}

#[tokio::test]
async fn get_signal_is_compact_with_iso_timestamps() {
    let (_sim, shared) = setup().await;
    let r = common::execute_only(&shared, "get_signal", json!({ "vehicle_id": EV, "user_id": ALICE, "signal_code": "tractionbattery.stateofcharge" })).await;
    let s = &r.structured;
    assert_eq!(s["code"], "tractionbattery-stateofcharge");
    assert_eq!(s["group"], "TractionBattery");
    assert_eq!(s["name"], "StateOfCharge");
    assert_eq!(s["value"], 72);
    assert_eq!(s["unit"], "percent");
    assert_eq!(s["status"], "SUCCESS");
    assert!(s["retrieved_at"].as_str().unwrap().ends_with('Z'));
    assert!(s["oem_updated_at"].as_str().unwrap().starts_with("20"));
    assert!(s.get("links").is_none() && s.get("attributes").is_none());
    let r = common::execute_only(
        &shared,
        "get_signal",
        json!({ "vehicle_id": EV, "user_id": ALICE, "signal_code": "charge-chargelimits" }),
    )
    .await;
    assert!(
        r.structured["body"]["values"].is_array(),
        "structured bodies stay whole: {}",
        r.structured
    );
}

#[tokio::test]
async fn get_signals_names_the_vehicle_once_and_condenses_errors() {
    let (sim, shared) = setup().await;
    let r = common::execute_only(
        &shared,
        "get_signals",
        json!({ "vehicle_id": EV, "user_id": ALICE }),
    )
    .await;
    let s = &r.structured;
    assert_eq!(s["vehicle"]["make"], "Tesla");
    let rows = s["signals"].as_array().unwrap();
    let errors = s["errors"].as_array().unwrap();
    assert_eq!(rows.len() + errors.len(), SIGNALS.len());
    let fuel = errors
        .iter()
        .find(|e| e["code"] == "internalcombustionengine-fuellevel")
        .expect("ICE codes fail on the EV");
    assert_eq!(
        fuel,
        &json!({ "code": "internalcombustionengine-fuellevel", "status": "ERROR", "error_type": "COMPATIBILITY", "error_code": "VEHICLE_NOT_CAPABLE" })
    );
    let soc = rows
        .iter()
        .find(|r| r["code"] == "tractionbattery-stateofcharge")
        .unwrap();
    assert_eq!(soc["value"], 72);
    assert!(
        soc.get("group").is_none(),
        "rows drop what the code already says"
    );
    assert_eq!(s["page"]["total"], SIGNALS.len());

    let raw = common::execute_only(
        &shared,
        "get_signals",
        json!({ "vehicle_id": EV, "user_id": ALICE, "raw": true }),
    )
    .await;
    let compact_bytes = serde_json::to_vec(&r.structured).unwrap().len();
    let raw_bytes = serde_json::to_vec(&raw.structured).unwrap().len();
    let ratio = compact_bytes as f64 / raw_bytes as f64;
    eprintln!("get_signals compact/raw bytes: {compact_bytes}/{raw_bytes} = {ratio:.3}");
    assert!(
        ratio <= 0.5,
        "compact is at most half the upstream bytes (got {ratio:.3})"
    );
    sim.shutdown();
}

#[tokio::test]
async fn raw_returns_the_upstream_document_unchanged() {
    let (sim, shared) = setup().await;
    let r = common::execute_only(&shared, "get_signal", json!({ "vehicle_id": PHEV, "user_id": ALICE, "signal_code": "closure-islocked", "raw": true })).await;
    // Fetch the same document directly from the stand-in, with a token of our own.
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{}/oauth2/token", sim.auth_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "c"),
            ("client_secret", "s"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let direct: Value = http
        .get(format!(
            "{}/vehicles/{PHEV}/signals/closure-islocked",
            sim.api_url()
        ))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .header("sc-user-id", ALICE)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r.structured, direct);
}

#[tokio::test]
async fn command_outcomes_read_as_one_sentence_and_a_typed_object() {
    let (sim, shared) = setup().await;
    let r = common::execute_only(
        &shared,
        "set_charge_limit",
        json!({ "vehicle_id": EV, "user_id": ALICE, "percent": 80 }),
    )
    .await;
    assert_eq!(
        r.text()[0],
        format!(
            "Charge limit set to 80% on {EV}. Commands return no updated state: read charge-chargelimits to see it."
        )
    );
    let s = &r.structured;
    assert_eq!(s["command"], "charge-set-limit");
    assert_eq!(s["status"], "SUCCESS");
    assert_eq!(s["status_from"], "body");
    assert_eq!(s["http_status"], 200);
    assert_eq!(s["running"], false);
    assert_eq!(s["execution_mode"], "sync");
    assert_eq!(s["confirm_with"], "charge-chargelimits");
    assert!(s["completed_at"].as_str().unwrap().contains('T'));
    assert_eq!(s["vehicle_id"], EV);
    assert_eq!(s["parameters"]["percent"], 80);
    assert!(s["executed_at"].as_str().unwrap().contains('T'));

    // A 202 whose body already says SUCCESS is a success, not pending.
    sim.inject(Fault::new(202, r#"{"data":{"id":"exec_9","type":"command-execution","attributes":{"commandType":"security-lock","status":{"value":"SUCCESS"}},"meta":{"executedAt":"2024-01-01T12:00:00Z"}}}"#).on("POST", "/lock"));
    let r = common::execute_only(
        &shared,
        "lock_vehicle",
        json!({ "vehicle_id": EV, "user_id": ALICE }),
    )
    .await;
    assert!(
        r.text()[0].starts_with(&format!("Doors locked on {EV}.")),
        "{}",
        r.text()[0]
    );
    assert_eq!(r.structured["status"], "SUCCESS");
    assert_eq!(r.structured["running"], false);
    assert_eq!(r.structured["executed_at"], "2024-01-01T12:00:00Z");

    // A 202 with no status in its body: accepted and still running; no status is invented.
    sim.inject(Fault::new(202, r#"{"data":{"id":"exec_10","type":"command-execution","attributes":{"commandType":"charge-set-limit","executionMode":"async"},"meta":{"executedAt":"2024-01-01T12:00:00Z"}}}"#).on("POST", "/set-limit"));
    let r = common::execute_only(
        &shared,
        "set_charge_limit",
        json!({ "vehicle_id": EV, "user_id": ALICE, "percent": 90 }),
    )
    .await;
    assert!(!r.is_error, "{}", r.structured);
    assert_eq!(r.structured["status"], "ACCEPTED");
    assert_eq!(r.structured["status_from"], "http");
    assert_eq!(r.structured["running"], true);
    assert_eq!(r.structured["execution_mode"], "async");
    assert_eq!(
        r.text()[0],
        format!(
            "Set charge limit accepted for {EV}, still running: read charge-chargelimits with get_signal to confirm."
        )
    );
    assert!(!r.json.contains("PENDING"));
    assert_eq!(
        r.structured["parameters"]["percent"], 90,
        "parameters come from the call when the body has none"
    );

    let r = common::execute_only(
        &shared,
        "delete_connection",
        json!({ "id": "conn-bob-ice-03" }),
    )
    .await;
    assert_eq!(r.text()[0], "Connection conn-bob-ice-03 deleted.");
    assert_eq!(r.structured["status"], "SUCCESS");
    let _ = ICE;
}

#[tokio::test]
async fn a_five_thousand_signal_answer_is_cut_at_a_whole_item() {
    let sim = common::simulator().await;
    let mut settings = common::settings(&sim);
    settings.serving.max_result_bytes = 100_000;
    let shared = common::shared(settings);
    let data: Vec<Value> = (0..5000)
        .map(|i| json!({
            "id": format!("custom-signal{i}"), "type": "signal",
            "attributes": { "code": format!("custom-signal{i}"), "name": "Custom", "group": "Custom",
                "status": { "value": "SUCCESS" }, "body": { "unit": "percent", "value": i } },
            "meta": { "retrievedAt": 1752104218549u64, "oemUpdatedAt": 1752104118549u64 },
            "links": { "self": format!("/vehicles/{EV}/signals/custom-signal{i}") }
        }))
        .collect();
    let doc = json!({ "data": data, "meta": { "page": 1, "pageSize": 5000, "totalCount": 5000 } });
    sim.inject(Fault::new(200, doc.to_string()).on("GET", "/signals"));
    let r = common::execute_only(
        &shared,
        "get_signals",
        json!({ "vehicle_id": EV, "user_id": ALICE }),
    )
    .await;
    assert!(!r.is_error);
    let s = &r.structured;
    assert_eq!(s["truncated"], true);
    let kept = s["truncation"]["kept"].as_u64().unwrap();
    assert_eq!(s["truncation"]["total"], 5000);
    assert_eq!(s["signals"].as_array().unwrap().len() as u64, kept);
    assert!(kept > 100 && kept < 5000, "kept {kept}");
    assert!(
        s["truncation"]["hint"]
            .as_str()
            .unwrap()
            .contains("pageSize")
    );
    let text = &r.json;
    assert!(text.len() <= 100_000, "text is {} bytes", text.len());
    assert_eq!(
        &serde_json::from_str::<Value>(text).unwrap(),
        s,
        "the text is whole JSON"
    );
    assert_valid("get_signals", &r);
}

async fn read_signal(shared: &smartcar_mcp::mcp::Shared, vehicle: &str, code: &str) -> Value {
    let r = common::execute_only(
        shared,
        "get_signal",
        json!({ "vehicle_id": vehicle, "user_id": if vehicle == ICE { BOB } else { ALICE }, "signal_code": code }),
    )
    .await;
    assert!(!r.is_error, "{code} on {vehicle}: {}", r.structured);
    assert_valid("get_signal", &r);
    r.structured
}

/// Each unit and kind Smartcar's signal pages document (and signals.yaml once had wrong), read
/// from the simulator through get_signal the way a model reads it.
#[tokio::test]
async fn corrected_signals_read_with_their_documented_unit_and_shape() {
    let (sim, shared) = setup().await;
    // (vehicle, code, unit the model sees)
    let units = [
        (EV, "charge-chargerate", "miles_per_hour"),
        (EV, "charge-wattage", "watts"),
        (PHEV, "charge-energyadded", "kilowatt_hours"),
        (EV, "charge-chargerphases", "count"),
        (EV, "charge-amperage", "ampere"),
        (EV, "charge-amperagemax", "ampere"),
        // The PHEV answers `amps`, the older page's spelling: the model still sees `ampere`.
        (PHEV, "charge-amperagerequested", "ampere"),
        (EV, "climate-externaltemperature", "celsius"),
        (EV, "climate-internaltemperature", "celsius"),
        (EV, "hvac-cabintargettemperature", "celsius"),
        (EV, "motion-currentspeed", "kph"),
        (ICE, "diagnostics-dtccount", "count"),
        (ICE, "internalcombustionengine-oillife", "percent"),
        (EV, "tractionbattery-range", "kilometers"),
        (EV, "tractionbattery-nominalcapacity", "kilowatt_hours"),
    ];
    for (vehicle, code, unit) in units {
        let s = read_signal(&shared, vehicle, code).await;
        assert_eq!(s["unit"], unit, "{code} on {vehicle}: {s}");
        let catalogue = SIGNALS.iter().find(|x| x.code == code).unwrap();
        assert_eq!(catalogue.unit, Some(unit), "signals.yaml unit of {code}");
    }

    // Charging: the rate is range per hour and the wattage is in watts, not kilowatts.
    let started = common::execute_only(
        &shared,
        "start_charge",
        json!({ "vehicle_id": EV, "user_id": ALICE }),
    )
    .await;
    assert!(!started.is_error, "{}", started.structured);
    let rate = read_signal(&shared, EV, "charge-chargerate").await;
    assert_eq!(
        (rate["value"].clone(), rate["unit"].clone()),
        (json!(25.0), json!("miles_per_hour"))
    );
    let watts = read_signal(&shared, EV, "charge-wattage").await;
    assert_eq!(
        (watts["value"].clone(), watts["unit"].clone()),
        (json!(7700.0), json!("watts"))
    );

    // diagnostics-oillife is a health object, not a percentage.
    let oil = read_signal(&shared, ICE, "diagnostics-oillife").await;
    assert_eq!(oil["body"]["status"], "ALERT");
    assert!(oil["body"]["description"].is_string());
    assert!(oil.get("value").is_none() && oil["unit"].is_null());
    // transmission-drivemode is {canonical, oemDisplayName}.
    let mode = read_signal(&shared, ICE, "transmission-drivemode").await;
    assert_eq!(
        mode["body"],
        json!({ "canonical": "NORMAL", "oemDisplayName": "everyday" })
    );
    // transmission-gearstate is spelled out.
    let gear = read_signal(&shared, EV, "transmission-gearstate").await;
    assert_eq!(gear["value"], "PARK");
    // tractionbattery-range keeps its value and carries the other estimates.
    let range = read_signal(&shared, EV, "tractionbattery-range").await;
    assert_eq!(range["value"], 402);
    let types: Vec<&str> = range["body"]["additionalValues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["IDEAL_CONDITIONS", "RATED"]);
    // lowvoltagebattery-status is GOOD, WARN or BAD; charge limits are typed GLOBAL.
    let lv = read_signal(&shared, EV, "lowvoltagebattery-status").await;
    assert_eq!(lv["value"], "GOOD");
    let limits = read_signal(&shared, EV, "charge-chargelimits").await;
    assert_eq!(limits["body"]["values"][0]["type"], "GLOBAL");
    assert_eq!(limits["unit"], "percent");
    // charge-activelimit is an accepted code and follows set_charge_limit.
    let set = common::execute_only(
        &shared,
        "set_charge_limit",
        json!({ "vehicle_id": EV, "user_id": ALICE, "percent": 85 }),
    )
    .await;
    assert!(!set.is_error);
    assert_eq!(
        read_signal(&shared, EV, "charge-activelimit").await["value"],
        85
    );
    // closure-tailgate is still served.
    let tailgate = read_signal(&shared, ICE, "closure-tailgate").await;
    assert_eq!(tailgate["body"]["isOpen"], false);
    sim.shutdown();
}

/// Units in the spellings of other page versions, straight from upstream, reach the model in one
/// spelling, in get_signal and in get_signals.
#[tokio::test]
async fn upstream_unit_variants_are_normalised() {
    let (sim, shared) = setup().await;
    for (upstream, seen) in [
        ("degrees-celsius", "celsius"),
        ("kilometers-per-hour", "kph"),
        ("kWhr", "kilowatt_hours"),
        ("amps", "ampere"),
    ] {
        let doc = json!({ "id": "charge-amperage", "type": "signal",
            "attributes": { "code": "charge-amperage", "name": "Amperage", "group": "Charge",
                "status": { "value": "SUCCESS" }, "body": { "unit": upstream, "value": 16 } } });
        sim.inject(Fault::new(200, doc.to_string()).on("GET", "/signals/"));
        let s = read_signal(&shared, EV, "charge-amperage").await;
        assert_eq!(s["unit"], seen, "{upstream}");
    }
    let list = common::execute_only(
        &shared,
        "get_signals",
        json!({ "vehicle_id": PHEV, "user_id": ALICE }),
    )
    .await;
    let amps = list.structured["signals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["code"] == "charge-amperage")
        .unwrap();
    assert_eq!(amps["unit"], "ampere", "the simulator's PHEV says amps");
    sim.shutdown();
}

/// The signal list sends no paging query unless asked, reads `meta.page` (the documented key) and
/// `meta.pageNumber` alike, and takes a page size above 100 (no maximum is documented).
#[tokio::test]
async fn the_signal_list_pages_only_when_asked() {
    let (sim, shared) = setup().await;
    sim.clear_requests();
    let r = common::execute_only(
        &shared,
        "get_signals",
        json!({ "vehicle_id": EV, "user_id": ALICE }),
    )
    .await;
    let sent = sim.requests();
    assert!(
        sent.last().unwrap().query.is_empty(),
        "{:?}",
        sent.last().unwrap().query
    );
    assert_eq!(
        r.structured["page"],
        json!({ "number": 1, "size": SIGNALS.len(), "total": SIGNALS.len() })
    );
    let r = common::execute_only(
        &shared,
        "get_signals",
        json!({ "vehicle_id": EV, "user_id": ALICE, "pageSize": 500 }),
    )
    .await;
    assert!(!r.is_error, "{}", r.structured);
    assert_eq!(r.structured["page"]["size"], 500);
    for meta in [
        json!({ "pageNumber": 2, "pageSize": 5, "totalCount": 7 }),
        json!({ "page": 2, "pageSize": 5, "totalCount": 7 }),
    ] {
        sim.inject(
            Fault::new(200, json!({ "data": [], "meta": meta }).to_string()).on("GET", "/signals"),
        );
        let r = common::execute_only(
            &shared,
            "get_signals",
            json!({ "vehicle_id": EV, "user_id": ALICE }),
        )
        .await;
        assert_eq!(
            r.structured["page"],
            json!({ "number": 2, "size": 5, "total": 7 })
        );
    }
    sim.shutdown();
}

/// Weekly and workweek schedules: their nested windows are checked field by field before
/// anything is sent, each error naming the whole path; what passes reaches the vehicle's
/// charge-chargetimers as one window per weekday (weekly) or Monday-Friday plus weekend (workweek).
#[tokio::test]
async fn weekly_and_workweek_schedules_check_their_windows_and_land_per_day() {
    let (sim, shared) = setup().await;
    let window = json!({ "startTime": "22:00", "stopTime": "06:00" });
    let weekly = json!({ "vehicle_id": EV, "user_id": ALICE, "latitude": 37.77, "longitude": -122.42,
                         "days": { "monday": window, "saturday": { "startTime": "09:00", "stopTime": "11:30" } } });
    let workweek = json!({ "vehicle_id": EV, "user_id": ALICE, "latitude": 37.77, "longitude": -122.42,
                           "weekdays": window });
    sim.clear_requests();
    for (tool, base, pointer, bad, says) in [
        (
            "set_weekly_charge_schedule",
            &weekly,
            "/days/monday/startTime",
            json!("24:00"),
            "`days.monday.startTime` must be a 24-hour time HH:MM",
        ),
        (
            "set_weekly_charge_schedule",
            &weekly,
            "/days/funday",
            window.clone(),
            "`days` keys must be among monday, tuesday, wednesday, thursday, friday, saturday, sunday (got \"funday\")",
        ),
        (
            "set_weekly_charge_schedule",
            &weekly,
            "/days",
            json!({}),
            "`days` must have at least one of monday",
        ),
        (
            "set_weekly_charge_schedule",
            &weekly,
            "/days/monday",
            json!({ "startTime": "22:00" }),
            "`days.monday.stopTime` is required",
        ),
        (
            "set_weekly_charge_schedule",
            &weekly,
            "/days/monday",
            json!({ "startTime": "22:00", "endTime": "07:00" }),
            "`days.monday.stopTime` is required",
        ),
        (
            "set_weekly_charge_schedule",
            &weekly,
            "/days",
            json!("monday 22:00"),
            "`days` must be an object",
        ),
        (
            "set_workweek_charge_schedule",
            &workweek,
            "/weekdays/stopTime",
            json!("6:00"),
            "`weekdays.stopTime` must be a 24-hour time HH:MM",
        ),
        (
            "set_workweek_charge_schedule",
            &workweek,
            "/weekends",
            json!({ "stopTime": "12:00" }),
            "`weekends.startTime` is required",
        ),
    ] {
        let mut args = base.clone();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        args.pointer_mut(parent).unwrap()[key] = bad;
        let r = common::execute_only(&shared, tool, args).await;
        assert!(r.is_error, "{pointer}");
        assert!(r.text()[0].contains(says), "{pointer}: {}", r.text()[0]);
    }
    let mut missing = workweek.clone();
    missing.as_object_mut().unwrap().remove("weekdays");
    let r = common::execute_only(&shared, "set_workweek_charge_schedule", missing).await;
    assert!(
        r.text()[0].contains("`weekdays` is required"),
        "{}",
        r.text()[0]
    );
    assert!(sim.requests().is_empty(), "{:?}", sim.requests());

    let mut phev = weekly.clone();
    phev["vehicle_id"] = json!(PHEV);
    let r = common::execute_only(&shared, "set_weekly_charge_schedule", phev).await;
    assert_eq!(r.structured["error"]["code"], "VEHICLE_NOT_CAPABLE");

    let timer = |id: &str, timers: &Value| {
        timers["values"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["scheduleId"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} in {timers}"))
    };
    let r = common::execute_only(&shared, "set_weekly_charge_schedule", weekly).await;
    assert!(!r.is_error, "{}", r.structured);
    assert_valid("set_weekly_charge_schedule", &r);
    let id = r.structured["schedule_id"].as_str().unwrap().to_string();
    let entry = timer(&id, &sim.signal_body(EV, "charge-chargetimers").unwrap());
    assert_eq!(entry["scheduleType"], "weekly");
    assert_eq!(
        entry["schedules"],
        json!([{ "start": "22:00", "end": "06:00", "days": ["MONDAY"] },
               { "start": "09:00", "end": "11:30", "days": ["SATURDAY"] }])
    );

    // A window's members beyond the two named ones are sent as given: the bodies are C3.
    let mut both = workweek.clone();
    both["weekends"] = json!({ "startTime": "10:00", "stopTime": "14:00", "targetSoc": 80 });
    sim.clear_requests();
    let r = common::execute_only(&shared, "set_workweek_charge_schedule", both).await;
    assert!(!r.is_error, "{}", r.structured);
    assert_valid("set_workweek_charge_schedule", &r);
    let id = r.structured["schedule_id"].as_str().unwrap().to_string();
    let entry = timer(&id, &sim.signal_body(EV, "charge-chargetimers").unwrap());
    assert_eq!(entry["scheduleType"], "workweek");
    assert_eq!(
        entry["schedules"][0]["days"],
        json!(["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"])
    );
    assert_eq!(
        entry["schedules"][1],
        json!({ "start": "10:00", "end": "14:00", "days": ["SATURDAY", "SUNDAY"] })
    );
    let sent: Value = serde_json::from_str(&sim.requests()[0].body).unwrap();
    assert_eq!(sent["data"]["attributes"]["weekends"]["targetSoc"], 80);
}

/// Charge schedules: HH:MM times and coordinates are checked before anything is sent; a make
/// without schedules gets Smartcar's COMPATIBILITY error; an unknown schedule id is a 404.
#[tokio::test]
async fn charge_schedule_arguments_are_checked_and_answers_shaped() {
    let (sim, shared) = setup().await;
    let base = json!({ "vehicle_id": EV, "user_id": ALICE, "latitude": 37.77, "longitude": -122.42, "startTime": "08:00", "stopTime": "10:00" });
    sim.clear_requests();
    for (key, bad, says) in [
        (
            "startTime",
            json!("25:00"),
            "`startTime` must be a 24-hour time HH:MM",
        ),
        (
            "stopTime",
            json!("8:00"),
            "`stopTime` must be a 24-hour time HH:MM",
        ),
        ("latitude", json!(91), "`latitude` must be at most 90"),
        (
            "longitude",
            json!(-181),
            "`longitude` must be at least -180",
        ),
    ] {
        let mut args = base.clone();
        args[key] = bad;
        let r = common::execute_only(&shared, "set_daily_charge_schedule", args).await;
        assert!(r.is_error);
        assert!(r.text()[0].contains(says), "{key}: {}", r.text()[0]);
    }
    assert!(sim.requests().is_empty(), "{:?}", sim.requests());

    let mut phev = base.clone();
    phev["vehicle_id"] = json!(PHEV);
    let r = common::execute_only(&shared, "set_daily_charge_schedule", phev).await;
    assert!(r.is_error);
    assert_eq!(r.structured["error"]["code"], "VEHICLE_NOT_CAPABLE");

    let r = common::execute_only(&shared, "set_daily_charge_schedule", base).await;
    assert!(!r.is_error, "{}", r.structured);
    assert_valid("set_daily_charge_schedule", &r);
    let id = r.structured["schedule_id"].as_str().unwrap().to_string();
    let timers = common::execute_only(
        &shared,
        "get_signal",
        json!({ "vehicle_id": EV, "user_id": ALICE, "signal_code": "charge-chargetimers" }),
    )
    .await;
    assert!(timers.json.contains(&id), "{}", timers.json);

    let r = common::execute_only(
        &shared,
        "delete_charge_schedule",
        json!({ "vehicle_id": EV, "user_id": ALICE, "schedule_id": id }),
    )
    .await;
    assert!(!r.is_error, "{}", r.structured);
    assert!(
        r.text()[0].starts_with(&format!("Charge schedule {id} deleted on {EV}.")),
        "{}",
        r.text()[0]
    );
    let r = common::execute_only(
        &shared,
        "delete_charge_schedule",
        json!({ "vehicle_id": EV, "user_id": ALICE, "schedule_id": id }),
    )
    .await;
    assert!(r.is_error);
    assert_eq!(r.structured["error"]["status"], 404);
    sim.shutdown();
}

/// Webhook management: webhooks read, a subscription made (202, still being created) and seen,
/// a second subscribe reported as already subscribed (Smartcar's 409) rather than a failure, and
/// an unsubscribe that leaves it gone.
#[tokio::test]
async fn webhooks_are_read_and_vehicles_subscribed_once() {
    let (sim, shared) = setup().await;
    let hooks = common::execute_only(&shared, "list_webhooks", json!({})).await;
    assert_valid("list_webhooks", &hooks);
    let first = &hooks.structured["webhooks"][0];
    assert_eq!(first["id"], "wh-0a1b2c3d-state");
    assert_eq!(
        first["triggers"],
        json!(["charge-ischarging", "closure-islocked"])
    );
    assert_eq!(first["enabled"], true);
    assert_eq!(hooks.structured["page"]["total"], 2);
    let one = common::execute_only(
        &shared,
        "get_webhook",
        json!({ "id": "wh-4e5f6a7b-errors" }),
    )
    .await;
    assert_eq!(one.structured["auto_subscribe"], true);

    let args = json!({ "webhook_id": "wh-0a1b2c3d-state", "vehicle_id": PHEV, "user_id": ALICE });
    let r = common::execute_only(&shared, "subscribe_vehicle", args.clone()).await;
    assert!(!r.is_error, "{}", r.structured);
    assert_valid("subscribe_vehicle", &r);
    assert_eq!(r.structured["status"], "ACCEPTED");
    assert_eq!(r.structured["http_status"], 202);
    assert!(
        r.text()[0].contains("list_subscriptions"),
        "{}",
        r.text()[0]
    );

    let subs =
        common::execute_only(&shared, "list_subscriptions", json!({ "vehicleId": PHEV })).await;
    assert_valid("list_subscriptions", &subs);
    let list = subs.structured["subscriptions"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["webhook_id"], "wh-0a1b2c3d-state");
    assert_eq!(list[0]["user_id"], ALICE);
    assert_eq!(list[0]["make"], "Toyota");
    let id = list[0]["id"].as_str().unwrap().to_string();

    let again = common::execute_only(&shared, "subscribe_vehicle", args).await;
    assert!(
        !again.is_error,
        "a 409 is not a failure: {}",
        again.structured
    );
    assert_valid("subscribe_vehicle", &again);
    assert_eq!(again.structured["status"], "ALREADY_SUBSCRIBED");
    assert_eq!(
        again.text()[0],
        format!(
            "Vehicle {PHEV} is already subscribed to webhook wh-0a1b2c3d-state; nothing changed."
        )
    );

    // Another 4xx from the same endpoint stays an error.
    let r = common::execute_only(
        &shared,
        "subscribe_vehicle",
        json!({ "webhook_id": "wh-missing", "vehicle_id": PHEV, "user_id": ALICE }),
    )
    .await;
    assert!(r.is_error);
    assert_eq!(r.structured["error"]["status"], 404);

    let r = common::execute_only(&shared, "unsubscribe_vehicle", json!({ "id": id })).await;
    assert!(!r.is_error, "{}", r.structured);
    assert_eq!(r.text()[0], format!("Subscription {id} deleted."));
    let subs =
        common::execute_only(&shared, "list_subscriptions", json!({ "vehicleId": PHEV })).await;
    assert_eq!(subs.structured["subscriptions"], json!([]));
    sim.shutdown();
}

#[tokio::test]
async fn connections_filter_by_the_users_external_id() {
    let (sim, shared) = setup().await;
    let r = common::execute_only(
        &shared,
        "list_connections",
        json!({ "userExternalId": format!("ext-{ALICE}") }),
    )
    .await;
    assert_valid("list_connections", &r);
    let users: Vec<&str> = r.structured["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(users, [ALICE, ALICE]);
    assert_eq!(
        sim.requests()
            .last()
            .unwrap()
            .query_value("filter[user.externalId]"),
        Some(format!("ext-{ALICE}").as_str())
    );
    sim.shutdown();
}

/// check_compatibility runs with no credentials at all, answers "can this model do X", checks the
/// region before sending, and reuses an answer instead of asking again.
#[tokio::test]
async fn compatibility_needs_no_account_and_is_cached() {
    let sim = common::simulator().await;
    let mut settings = smartcar_mcp::settings::Settings::default();
    settings.upstream.auth_url = "http://127.0.0.1:9".into();
    settings.upstream.api_url = "http://127.0.0.1:9/v3".into();
    settings.upstream.compatibility_api_url = sim.compatibility_url();
    let shared = common::shared(settings);
    let r = common::execute_only(
        &shared,
        "check_compatibility",
        json!({ "region": "US", "make": "tesla" }),
    )
    .await;
    assert!(!r.is_error, "{}", r.structured);
    assert_valid("check_compatibility", &r);
    let m3 = &r.structured["models"][0];
    assert_eq!(m3["model"], "Model 3");
    assert_eq!(m3["years"], "2017-2026");
    assert!(
        m3["commands"]
            .as_array()
            .unwrap()
            .contains(&json!("charge-start"))
    );
    assert!(
        m3["signals"]
            .as_array()
            .unwrap()
            .contains(&json!("tractionbattery-stateofcharge"))
    );
    let sent = sim.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].header("authorization"), None);
    assert!(sim.token_requests().is_empty(), "no token is fetched");

    let again = common::execute_only(
        &shared,
        "check_compatibility",
        json!({ "region": "US", "make": "tesla" }),
    )
    .await;
    assert_eq!(again.structured, r.structured);
    assert_eq!(again.meta.unwrap().to_map()["smartcar-mcp/cached"], true);
    assert_eq!(
        sim.requests().len(),
        1,
        "the second answer came from the cache"
    );

    let other = common::execute_only(
        &shared,
        "check_compatibility",
        json!({ "region": "EUROPE", "make": "Tesla", "powertrainType": "BEV" }),
    )
    .await;
    assert_eq!(other.structured["models"][0]["model"], "Model Y");
    assert_eq!(sim.requests().len(), 2);

    let bad = common::execute_only(
        &shared,
        "check_compatibility",
        json!({ "region": "MARS", "make": "Tesla" }),
    )
    .await;
    assert!(bad.is_error);
    assert!(
        bad.text()[0].contains("`region` must be one of US, CA, EUROPE"),
        "{}",
        bad.text()[0]
    );
    assert_eq!(sim.requests().len(), 2, "a bad region is not sent");
    sim.shutdown();
}

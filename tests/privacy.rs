//! Location privacy (`--location coarse|off`): a whole simulator session, every result grepped
//! for unrounded coordinates, compact and raw, upstream and pushed, and the state resource.

use std::time::Duration;

use serde_json::{Value, json};
use smartcar_mcp::catalogue::SIGNALS;
use smartcar_mcp::settings::LocationMode;
use smartcar_mcp::simulator::{ALICE, BOB, EV, ICE, PHEV, Simulator};

use crate::common;

/// The seeded and pushed coordinates at full precision; none may reach a result.
const EXACT: &[&str] = &[
    "37.7793",
    "-122.4193",
    "37.4419",
    "-122.143",
    "30.2672",
    "-97.7431",
    "48.85837",
];

fn pushed_event() -> Value {
    let now = chrono::Utc::now().timestamp_millis();
    let meta = json!({ "oemUpdatedAt": now - 1_000, "fetchedAt": now - 1_000 });
    json!({
        "eventId": "e-privacy", "eventType": "VEHICLE_STATE", "vehicleId": EV,
        "data": {
            "user": { "id": ALICE },
            "vehicle": { "id": EV, "make": "TESLA", "model": "Model 3", "year": 2023 },
            "signals": [
                { "code": "location-preciselocation", "name": "PreciseLocation", "group": "Location",
                  "body": { "latitude": 48.85837, "longitude": 2.294481, "heading": 10 }, "meta": meta },
                { "code": "closure-islocked", "name": "IsLocked", "group": "Closure",
                  "body": { "value": true }, "meta": meta }
            ]
        },
        "meta": { "version": "4.0", "deliveryId": "d-1", "deliveredAt": 1, "webhookId": "wh-1", "mode": "LIVE" }
    })
}

/// Every (latitude|longitude, value) pair in a JSON value, keys in any casing.
fn coordinates(v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(o) => {
            for (k, child) in o {
                let key = k.to_ascii_lowercase();
                if key == "latitude" || key == "longitude" {
                    out.push((k.clone(), child.clone()));
                } else {
                    coordinates(child, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|c| coordinates(c, out)),
        _ => {}
    }
}

/// One session: every signal of every vehicle, compact and raw, the signal lists, the other
/// reads, answers from pushed state and the state resource. Returns (label, text) per result.
async fn session(mode: LocationMode) -> (Simulator, Vec<(String, Value, String)>) {
    let sim = common::simulator().await;
    let mut s = common::settings(&sim);
    s.serving.location = mode;
    s.serving.pushed_max_age = Duration::from_secs(300);
    let shared = common::shared(s);
    shared.app.store.ingest(&pushed_event()).await;
    let mut results = Vec::new();
    let mut record = |label: String, r: smartcar_mcp::tool::ToolResult| {
        let text = format!("{}\n{}", r.lead.clone().unwrap_or_default(), r.json);
        results.push((label, r.structured, text));
    };
    for (vehicle, user) in [(EV, ALICE), (PHEV, ALICE), (ICE, BOB)] {
        for raw in [false, true] {
            for signal in SIGNALS.iter() {
                let args = json!({ "vehicle_id": vehicle, "user_id": user,
                                   "signal_code": signal.code, "raw": raw });
                let r = common::run(&shared, "get_signal", args).await;
                record(format!("get_signal {vehicle} {} raw={raw}", signal.code), r);
            }
            let args = json!({ "vehicle_id": vehicle, "user_id": user, "raw": raw });
            let r = common::run(&shared, "get_signals", args.clone()).await;
            record(format!("get_signals {vehicle} raw={raw}"), r);
            let r = common::run(
                &shared,
                "get_vehicle",
                json!({ "vehicle_id": vehicle, "raw": raw }),
            )
            .await;
            record(format!("get_vehicle {vehicle} raw={raw}"), r);
        }
    }
    for raw in [false, true] {
        let r = common::run(&shared, "list_connections", json!({ "raw": raw })).await;
        record(format!("list_connections raw={raw}"), r);
    }
    let uri = format!("smartcar://vehicles/{EV}/state");
    let state = smartcar_mcp::mcp::resources::read(&shared.app, &uri, None)
        .await
        .expect("pushed state");
    let text = serde_json::to_value(&state).unwrap().to_string();
    let parsed: Value = serde_json::from_str(
        serde_json::to_value(&state).unwrap()["contents"][0]["text"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    results.push((uri, parsed, text));
    (sim, results)
}

fn by<'a>(results: &'a [(String, Value, String)], label: &str) -> &'a (String, Value, String) {
    results
        .iter()
        .find(|(l, _, _)| l == label)
        .unwrap_or_else(|| panic!("no result {label}"))
}

#[tokio::test]
async fn coarse_rounds_every_coordinate_of_every_result() {
    let (sim, results) = session(LocationMode::Coarse).await;
    let mut seen = 0;
    for (label, structured, text) in &results {
        for exact in EXACT {
            assert!(!text.contains(exact), "{label} carries {exact}: {text}");
        }
        let mut found = Vec::new();
        coordinates(structured, &mut found);
        for (k, v) in &found {
            if v.is_null() {
                continue;
            }
            let f = v
                .as_f64()
                .or_else(|| v.as_str()?.parse().ok())
                .unwrap_or_else(|| panic!("{label}: {k} = {v}"));
            assert!(
                ((f * 100.0) - (f * 100.0).round()).abs() < 1e-6,
                "{label}: {k} = {v} is not rounded to 0.01"
            );
            seen += 1;
        }
        if !found.is_empty() {
            assert_eq!(structured["location_privacy"], "coarse", "{label}");
            assert!(text.contains("--location coarse"), "{label}: {text}");
        }
    }
    assert!(seen > 10, "the session read coordinates ({seen})");
    let (_, one, text) = by(
        &results,
        &format!("get_signal {EV} location-preciselocation raw=false"),
    );
    assert_eq!(
        one["source"], "webhook",
        "answered from pushed state: {text}"
    );
    assert_eq!(one["body"]["latitude"], json!(48.86));
    assert_eq!(one["body"]["longitude"], json!(2.29));
    let (_, raw, _) = by(
        &results,
        &format!("get_signal {PHEV} location-preciselocation raw=true"),
    );
    assert_eq!(raw["attributes"]["body"]["latitude"], json!(37.44), "{raw}");
    assert_eq!(raw["location_privacy"], "coarse");
    sim.shutdown();
}

#[tokio::test]
async fn off_refuses_location_codes_locally_and_removes_them_everywhere() {
    let (sim, results) = session(LocationMode::Off).await;
    for (label, structured, text) in &results {
        for exact in EXACT {
            assert!(!text.contains(exact), "{label} carries {exact}: {text}");
        }
        let mut found = Vec::new();
        coordinates(structured, &mut found);
        for (k, v) in &found {
            assert!(v.is_null(), "{label}: {k} = {v}");
        }
        if label.starts_with("get_signals") || label.starts_with("smartcar://") {
            assert!(!text.contains("\"location-"), "{label}: {text}");
        }
        if label.starts_with("get_signal ") && label.contains(" location-") {
            assert_eq!(structured["error"]["type"], "LOCATION_OFF", "{label}");
            assert!(text.contains("--location off"), "{label}: {text}");
        }
    }
    // Refused locally: Smartcar never heard of a location signal.
    assert_eq!(
        sim.hits("GET", "/signals/location-"),
        0,
        "{:?}",
        sim.requests()
    );
    let (_, list, _) = by(&results, &format!("get_signals {EV} raw=false"));
    assert!(!list["signals"].as_array().unwrap().is_empty());
    assert_eq!(list["location_privacy"], "off");
    sim.shutdown();
}

#[tokio::test]
async fn the_navigation_destination_is_sent_and_reported_exactly_whatever_the_setting() {
    for mode in [LocationMode::Coarse, LocationMode::Off] {
        let sim = common::simulator().await;
        let mut s = common::settings(&sim);
        s.serving.location = mode;
        let shared = common::shared(s);
        let args = json!({ "vehicle_id": EV, "user_id": ALICE,
                           "latitude": 37.7793, "longitude": -122.4193 });
        let r = common::run(&shared, "set_navigation_destination", args).await;
        assert!(!r.is_error, "{r:?}");
        assert_eq!(
            sim.destinations(),
            [(EV.to_string(), 37.7793, -122.4193)],
            "{mode:?}"
        );
        assert!(r.json.contains("37.7793"), "{mode:?}: {}", r.json);
        sim.shutdown();
    }
}

/// Every spelling of a location signal a published text could carry: codes and aliases.
fn location_spellings() -> Vec<String> {
    SIGNALS
        .iter()
        .filter(|s| s.group == "location")
        .flat_map(|s| std::iter::once(s.code).chain(s.aliases.iter().copied()))
        .map(str::to_ascii_lowercase)
        .collect()
}

/// The server over stdio, as a client starts it, with this location setting and every toolset.
async fn served(location: &str) -> rmcp::service::RunningService<rmcp::RoleClient, ()> {
    let mut cmd = common::tokio_command();
    cmd.env_remove("RUST_LOG")
        .env("SMARTCAR_LOCATION", location)
        .env("SMARTCAR_TOOLSETS", "all");
    let (transport, _) = rmcp::transport::TokioChildProcess::builder(cmd)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("binary spawns");
    common::client_over(transport, false).await
}

#[tokio::test]
async fn off_publishes_no_location_code_in_tools_list_completions_or_the_signal_list() {
    use rmcp::model::{ArgumentInfo, CompleteRequestParams, ReadResourceRequestParams, Reference};
    let spellings = location_spellings();
    assert!(spellings.contains(&"location-preciselocation".to_string()));
    for (location, offered) in [("exact", true), ("off", false)] {
        let client = served(location).await;
        let tools = client.list_all_tools().await.expect("tools/list");
        let listed = serde_json::to_string(&tools).unwrap().to_ascii_lowercase();
        let get_signal = tools.iter().find(|t| t.name == "get_signal").unwrap();
        let examples = &get_signal.input_schema["properties"]["signal_code"]["examples"];
        assert!(
            examples.as_array().is_some_and(|e| !e.is_empty()),
            "{location}: {examples}"
        );
        // The exact server offers a location code as an example; the off one names none anywhere.
        assert_eq!(
            listed.contains("location-preciselocation"),
            offered,
            "{location}: {examples}"
        );
        if !offered {
            for s in &spellings {
                assert!(!listed.contains(s.as_str()), "tools/list names {s}");
            }
            // What `tools --json` prints is the same list.
            let printed = smartcar_mcp::mcp::tools_json(&common::all_tools(), LocationMode::Off)
                .to_string()
                .to_ascii_lowercase();
            assert!(spellings.iter().all(|s| !printed.contains(s.as_str())));
        }
        let codes = client
            .complete(CompleteRequestParams::new(
                Reference::for_prompt("vehicle_health"),
                ArgumentInfo::new("signal_code", "location"),
            ))
            .await
            .expect("completion/complete")
            .completion
            .values;
        assert_eq!(!codes.is_empty(), offered, "{location}: {codes:?}");
        let list = client
            .read_resource(ReadResourceRequestParams::new("smartcar://signals"))
            .await
            .expect("smartcar://signals");
        let text = serde_json::to_string(&list).unwrap();
        assert_eq!(
            text.contains("location-preciselocation"),
            offered,
            "{location}"
        );
        assert!(text.contains("tractionbattery-stateofcharge"));
        client.cancel().await.ok();
    }
}

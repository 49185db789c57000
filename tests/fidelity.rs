//! True to what Smartcar sends (issue 28, shared/reference/smartcar-api-3.md): an empty signal
//! list, UNAVAILABLE beside ERROR, a command's unknown outcome, 430 billing codes, the
//! undocumented management endpoints, a wrong secret, and each official webhook shape plus the
//! Dashboard's test event through the receiver.

use serde_json::{Value, json};
use smartcar_mcp::simulator::{Fault, Simulator};
use smartcar_mcp::tool::ToolResult;

use crate::common;
use crate::webhooks::{post, signature};

const EV: &str = "veh-ev-0001";
const ALICE: &str = "usr-alice-01";

async fn setup() -> (Simulator, std::sync::Arc<smartcar_mcp::mcp::Shared>) {
    let sim = common::simulator().await;
    let shared = common::shared(common::settings(&sim));
    (sim, shared)
}

fn error(r: &ToolResult) -> &Value {
    assert!(r.is_error, "expected a tool error, got {r:?}");
    &r.structured["error"]
}

fn lock() -> Value {
    json!({ "vehicle_id": EV, "user_id": ALICE })
}

#[tokio::test]
async fn an_empty_signal_list_says_the_vehicle_may_not_be_subscribed_and_names_the_tool() {
    let (sim, shared) = setup().await;
    sim.set_never_subscribed(EV, true);
    let r = common::execute_only(&shared, "get_signals", lock()).await;
    assert!(!r.is_error, "{r:?}");
    assert_eq!(r.structured["signals"], json!([]));
    let note = r.structured["note"]
        .as_str()
        .expect("a note on the empty list");
    assert!(note.contains("subscribe_vehicle"), "{note}");
    assert!(note.contains("webhook"), "{note}");
    // The model reads it first, not buried in the structure.
    assert!(r.text()[0].contains("subscribe_vehicle"), "{:?}", r.text());

    // A vehicle with signals gets no such note.
    sim.set_never_subscribed(EV, false);
    let r = common::execute_only(&shared, "get_signals", lock()).await;
    assert!(r.structured.get("note").is_none(), "{}", r.structured);
}

#[tokio::test]
async fn unavailable_signals_stay_apart_from_failed_ones() {
    let (sim, shared) = setup().await;
    let body = json!({
        "data": [
            { "id": "tractionbattery-stateofcharge", "type": "signal",
              "attributes": { "code": "tractionbattery-stateofcharge", "status": { "value": "SUCCESS" },
                              "body": { "value": 70, "unit": "percent" } } },
            { "id": "charge-chargetimers", "type": "signal",
              "attributes": { "code": "charge-chargetimers", "status": { "value": "UNAVAILABLE" } } },
            { "id": "closure-islocked", "type": "signal",
              "attributes": { "code": "closure-islocked",
                              "status": { "value": "ERROR", "error": { "type": "VEHICLE_STATE", "code": "ASLEEP",
                                          "description": "asleep" } } } }
        ],
        "meta": { "page": 1, "pageSize": 3, "totalCount": 3 }
    });
    sim.inject(Fault::new(200, body.to_string()).on("GET", "/signals"));
    let r = common::execute_only(&shared, "get_signals", lock()).await;
    assert!(!r.is_error, "{r:?}");
    let errors = r.structured["errors"].as_array().unwrap();
    let by_code = |c: &str| errors.iter().find(|e| e["code"] == c).unwrap().clone();
    assert_eq!(by_code("charge-chargetimers")["status"], "UNAVAILABLE");
    assert_eq!(by_code("closure-islocked")["status"], "ERROR");
    assert_eq!(by_code("closure-islocked")["error_code"], "ASLEEP");
    assert!(r.structured.get("note").is_none());
}

fn assert_outcome_unknown(r: &ToolResult, signal: &str) {
    let e = error(r);
    let hint = e["hint"].as_str().unwrap();
    assert!(
        hint.contains("outcome is unknown") && hint.contains("may have acted"),
        "{hint}"
    );
    assert!(hint.contains(signal), "{hint}");
    assert!(!hint.to_lowercase().contains("try again"), "{hint}");
    assert_eq!(e["retriable"], false);
    assert!(
        !r.text()[0].to_lowercase().contains("try again"),
        "{:?}",
        r.text()
    );
}

#[tokio::test]
async fn a_commands_504_leaves_the_outcome_unknown_and_is_not_resent() {
    let (sim, shared) = setup().await;
    sim.inject(Fault::smartcar(504, "UPSTREAM", "TIMEOUT", "the carmaker did not answer").times(3));
    let r = common::execute_only(&shared, "lock_vehicle", lock()).await;
    assert_eq!(error(&r)["status"], 504);
    assert_outcome_unknown(&r, "closure-islocked");
    assert_eq!(sim.hits("POST", "/commands/"), 1);
}

#[tokio::test]
async fn a_command_cut_off_after_it_was_sent_leaves_the_outcome_unknown() {
    let (sim, shared) = setup().await;
    sim.inject(
        Fault::new(200, "{\"data\":")
            .cut_off()
            .on("POST", "/charge/start"),
    );
    let r = common::execute_only(&shared, "start_charge", lock()).await;
    assert_outcome_unknown(&r, "charge-ischarging");
    assert_eq!(sim.hits("POST", "/charge/start"), 1);
}

#[tokio::test]
async fn a_command_that_never_connected_may_be_tried_again() {
    let sim = common::simulator().await;
    let mut s = common::settings(&sim);
    // A port nobody listens on: the token is fetched, the command never leaves.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    s.upstream.api_url = format!("http://{}/v3", closed.local_addr().unwrap());
    drop(closed);
    let shared = common::shared(s);
    let r = common::execute_only(&shared, "lock_vehicle", lock()).await;
    let e = error(&r);
    assert_eq!(e["type"], "TRANSPORT");
    assert!(!e["hint"].as_str().unwrap().contains("outcome is unknown"));
    assert_eq!(e["retriable"], true);
}

#[tokio::test]
async fn a_reads_504_is_still_a_temporary_problem() {
    let (sim, shared) = setup().await;
    sim.inject(Fault::smartcar(504, "UPSTREAM", "TIMEOUT", "slow").times(10));
    let r = common::execute_only(&shared, "get_vehicle", json!({ "vehicle_id": EV })).await;
    let e = error(&r);
    assert_eq!(e["status"], 504);
    assert_eq!(e["retriable"], true);
    assert!(!e["hint"].as_str().unwrap().contains("outcome is unknown"));
}

#[tokio::test]
async fn each_billing_code_is_explained_and_not_retriable() {
    let (sim, shared) = setup().await;
    let cases = [
        ("INVALID_PLAN", "does not include"),
        ("VEHICLE_LIMIT", "connected vehicles"),
        ("VEHICLE_REQUEST_LIMIT", "next month"),
        ("ACCOUNT_SUSPENDED", "suspended"),
    ];
    for (code, words) in cases {
        sim.clear_requests();
        sim.inject(Fault::smartcar(430, "BILLING", code, "billing limit"));
        let r = common::execute_only(&shared, "get_vehicle", json!({ "vehicle_id": EV })).await;
        let e = error(&r);
        assert_eq!(e["status"], 430, "{code}");
        assert_eq!(e["type"], "BILLING", "{code}");
        assert_eq!(e["code"], code);
        assert_eq!(e["retriable"], false, "{code}");
        let hint = e["hint"].as_str().unwrap();
        assert!(hint.contains(words), "{code}: {hint}");
        assert!(hint.contains("Do not retry"), "{code}: {hint}");
        // Not retried by the server either: a 430 does not clear in seconds.
        assert_eq!(sim.requests().len(), 1, "{code}");
    }
}

#[tokio::test]
async fn a_404_from_the_management_tools_says_undocumented_not_check_the_id() {
    let (sim, shared) = setup().await;
    for (tool, args) in [
        ("list_applications", json!({})),
        ("get_application", json!({ "id": "app-1" })),
        ("list_application_secrets", json!({ "id": "app-1" })),
    ] {
        sim.inject(
            Fault::smartcar(404, "RESOURCE_NOT_FOUND", "PATH_NOT_FOUND", "no such path")
                .on("GET", "/applications"),
        );
        let r = common::execute_only(&shared, tool, args).await;
        let hint = error(&r)["hint"].as_str().unwrap().to_string();
        assert!(
            hint.contains("undocumented by Smartcar") && hint.contains("may not be available"),
            "{tool}: {hint}"
        );
        assert!(!hint.contains("check the id"), "{tool}: {hint}");
    }
    // A vehicle tool's 404 still points at the id.
    let r = common::execute_only(
        &shared,
        "get_vehicle",
        json!({ "vehicle_id": "veh-nobody" }),
    )
    .await;
    assert!(
        error(&r)["hint"].as_str().unwrap().contains("check the id"),
        "{r:?}"
    );
}

#[test]
fn the_management_tools_say_they_are_undocumented() {
    for name in [
        "list_applications",
        "get_application",
        "list_application_secrets",
    ] {
        let t = smartcar_mcp::catalogue::tool(name).unwrap();
        assert!(
            t.description
                .contains("Undocumented by Smartcar; may not be available for your application"),
            "{name}: {}",
            t.description
        );
    }
    for name in ["get_signals", "get_signal"] {
        let t = smartcar_mcp::catalogue::tool(name).unwrap();
        assert!(
            t.description.contains("webhook"),
            "{name}: {}",
            t.description
        );
    }
}

#[tokio::test]
async fn a_wrong_client_secret_says_which_setting_to_fix_and_never_shows_it() {
    let (sim, shared) = setup().await;
    sim.require_client_secret("the-right-secret");
    let r = common::execute_only(&shared, "get_vehicle", json!({ "vehicle_id": EV })).await;
    let e = error(&r);
    assert_eq!(e["type"], "AUTHENTICATION");
    assert_eq!(e["status"], 401);
    let text = r.text().join("\n");
    assert!(text.contains("SMARTCAR_CLIENT_SECRET"), "{text}");
    assert!(!r.structured.to_string().contains(common::CLIENT_SECRET));
    assert!(!text.contains(common::CLIENT_SECRET));
    assert!(sim.requests().is_empty(), "nothing reached the API");
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/webhooks/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Posts a fixture's exact bytes, signed over those bytes as Smartcar signs the raw body.
async fn deliver(base: &str, name: &str) -> (u16, Value) {
    let body = fixture(name);
    post(base, &body, Some(&signature(&body))).await
}

#[tokio::test]
async fn both_official_vehicle_state_shapes_are_stored() {
    let (_sim, shared, server) = crate::webhooks::setup(Some(crate::webhooks::AMT), 0).await;
    // The newer shape: top-level vehicleId, triggers of {code,name,group}, meta.fetchedAt.
    let (status, body) = deliver(&server.base, "vehicle_state_v4.json").await;
    assert_eq!((status, body["status"].clone()), (200, json!("stored")));
    // The older shape: no vehicleId, top-level triggers of {type, signal}, meta.retrievedAt.
    let (status, body) = deliver(&server.base, "vehicle_state_triggers_top.json").await;
    assert_eq!((status, body["status"].clone()), (200, json!("stored")));

    let state = shared
        .app
        .store
        .pushed_state(EV)
        .await
        .expect("the vehicle's pushed state");
    assert_eq!(
        state.signals["tractionbattery-stateofcharge"].raw["body"]["value"],
        64
    );
    assert_eq!(
        state.signals["closure-islocked"].raw["body"]["value"],
        false
    );
    // A second delivery of the same event (Smartcar retries) changes nothing.
    let (_, body) = deliver(&server.base, "vehicle_state_v4.json").await;
    assert_eq!(body["status"], "unchanged");
}

#[tokio::test]
async fn the_dashboards_test_event_is_acknowledged_and_not_kept_as_vehicle_state() {
    let (_sim, shared, server) = crate::webhooks::setup(Some(crate::webhooks::AMT), 0).await;
    let (status, body) = deliver(&server.base, "dashboard_test_event.json").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "test");
    assert!(shared.app.store.pushed_state(EV).await.is_none());
    // Unsigned, it is refused like any other event: a test event proves the signature too.
    let (status, _) = post(&server.base, &fixture("dashboard_test_event.json"), None).await;
    assert_eq!(status, 401);
}

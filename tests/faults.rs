//! Upstream failures against the stand-in with injected faults: what the model sees, and exactly
//! how many requests reached Smartcar.

use std::time::Duration;

use serde_json::{Value, json};
use smartcar_mcp::settings::Settings;
use smartcar_mcp::simulator::{ErrorFormat, Fault, Simulator};

use crate::common;

const EV: &str = "veh-ev-0001";
const ALICE: &str = "usr-alice-01";

fn read() -> Value {
    json!({ "vehicle_id": EV, "user_id": ALICE, "signal_code": "tractionbattery-stateofcharge" })
}

fn command() -> Value {
    json!({ "vehicle_id": EV, "user_id": ALICE })
}

async fn setup(
    tune: impl FnOnce(&mut Settings),
) -> (Simulator, std::sync::Arc<smartcar_mcp::mcp::Shared>) {
    let sim = common::simulator().await;
    let mut s = common::settings(&sim);
    tune(&mut s);
    let shared = common::shared(s);
    (sim, shared)
}

fn error(r: &smartcar_mcp::tool::ToolResult) -> &Value {
    assert!(r.is_error, "expected a tool error, got {r:?}");
    &r.structured["error"]
}

#[tokio::test]
async fn a_read_retries_a_429_after_retry_after_and_reports_it() {
    let (sim, shared) = setup(|_| {}).await;
    sim.inject(
        Fault::smartcar(429, "RATE_LIMIT", "VEHICLE", "slow down")
            .header("retry-after", "1")
            .on("GET", "/signals/"),
    );
    let r = common::execute_only(&shared, "get_signal", read()).await;
    assert!(!r.is_error, "{r:?}");
    assert_eq!(sim.hits("GET", "/signals/"), 2);
    let meta = r.meta.expect("retries are reported").to_map();
    assert_eq!(meta["smartcar-mcp/attempts"], 2);
    assert_eq!(meta["smartcar-mcp/retries"][0]["waited_ms"], 1000);
    assert!(
        meta["smartcar-mcp/retries"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("429")
    );
}

#[tokio::test]
async fn a_retry_after_beyond_the_cap_is_reported_not_slept() {
    let (sim, shared) = setup(|s| s.upstream.max_retry_after = Duration::from_secs(10)).await;
    sim.inject(
        Fault::smartcar(429, "RATE_LIMIT", "SMARTCAR_API", "bucket empty")
            .header("retry-after", "120"),
    );
    let r = common::execute_only(&shared, "get_signal", read()).await;
    let e = error(&r);
    assert_eq!(e["type"], "RATE_LIMIT");
    assert_eq!(e["retry_after_seconds"], 120);
    assert_eq!(e["retriable"], true);
    assert!(r.text()[0].contains("retry after 120 s"), "{}", r.text()[0]);
    assert_eq!(sim.requests().len(), 1);
}

#[tokio::test]
async fn a_command_is_resent_once_after_a_429_and_no_more() {
    let (sim, shared) = setup(|_| {}).await;
    sim.inject(
        Fault::smartcar(429, "RATE_LIMIT", "VEHICLE", "slow down")
            .header("retry-after", "0")
            .on("POST", "/security/lock"),
    );
    let r = common::execute_only(&shared, "lock_vehicle", command()).await;
    assert!(!r.is_error, "{r:?}");
    assert_eq!(sim.hits("POST", "/security/lock"), 2);

    sim.clear_requests();
    sim.inject(
        Fault::smartcar(429, "RATE_LIMIT", "VEHICLE", "slow down")
            .header("retry-after", "0")
            .times(5)
            .on("POST", "/security/lock"),
    );
    let r = common::execute_only(&shared, "lock_vehicle", command()).await;
    assert_eq!(error(&r)["status"], 429);
    assert_eq!(sim.hits("POST", "/security/lock"), 2, "one re-send only");
}

#[tokio::test]
async fn reads_retry_500_and_502_then_succeed() {
    let (sim, shared) = setup(|_| {}).await;
    sim.inject(Fault::smartcar(500, "SERVER", "INTERNAL", "oops").on("GET", "/signals/"));
    sim.inject(
        Fault::smartcar(502, "UPSTREAM", "NO_RESPONSE", "oem silent").on("GET", "/signals/"),
    );
    let r = common::execute_only(&shared, "get_signal", read()).await;
    assert!(!r.is_error, "{r:?}");
    assert_eq!(sim.hits("GET", "/signals/"), 3);
    assert_eq!(
        r.meta.unwrap().to_map()["smartcar-mcp/retries"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn reads_give_up_on_persistent_5xx_within_the_budget() {
    let (sim, shared) = setup(|_| {}).await;
    sim.inject(Fault::smartcar(503, "UPSTREAM", "UNKNOWN_ISSUE", "down").times(100));
    let r = common::execute_only(&shared, "get_vehicle", json!({ "vehicle_id": EV })).await;
    let e = error(&r);
    assert_eq!(e["status"], 503);
    assert_eq!(e["retriable"], true);
    assert_eq!(sim.requests().len(), 4, "four attempts, then the error");
}

#[tokio::test]
async fn commands_and_deletes_are_never_resent_after_a_5xx() {
    let (sim, shared) = setup(|_| {}).await;
    for (tool, args, path) in [
        ("unlock_vehicle", command(), "/security/unlock"),
        (
            "set_charge_limit",
            json!({ "vehicle_id": EV, "user_id": ALICE, "percent": 80 }),
            "/set-limit",
        ),
        (
            "delete_connection",
            json!({ "id": "conn-0001" }),
            "/connections/",
        ),
    ] {
        for status in [500u16, 502] {
            sim.clear_requests();
            sim.inject(Fault::smartcar(status, "SERVER", "INTERNAL", "boom").times(3));
            let r = common::execute_only(&shared, tool, args.clone()).await;
            assert_eq!(error(&r)["status"], status, "{tool}");
            assert_eq!(
                sim.requests().len(),
                1,
                "{tool} after {status} must not be re-sent"
            );
            assert!(sim.requests()[0].path.contains(path));
            sim.clear_faults();
        }
    }
}

#[tokio::test]
async fn a_501_is_never_retried_and_reads_as_compatibility() {
    let (sim, shared) = setup(|_| {}).await;
    sim.inject(Fault::smartcar(501, "COMPATIBILITY", "VEHICLE_NOT_CAPABLE", "no can do").times(3));
    let r = common::execute_only(&shared, "get_signal", read()).await;
    let e = error(&r);
    assert_eq!(e["type"], "COMPATIBILITY");
    assert_eq!(e["retriable"], false);
    assert!(e["hint"].as_str().unwrap().contains("cannot do this"));
    assert_eq!(sim.requests().len(), 1);
}

#[tokio::test]
async fn a_409_vehicle_state_explains_the_state() {
    let (sim, shared) = setup(|_| {}).await;
    // The seeded EV is not charging, so the simulator itself answers 409 NOT_CHARGING.
    let r = common::execute_only(&shared, "stop_charge", command()).await;
    let e = error(&r);
    assert_eq!(e["status"], 409);
    assert_eq!(e["type"], "VEHICLE_STATE");
    assert_eq!(e["code"], "NOT_CHARGING");
    assert!(e["hint"].as_str().unwrap().contains("not charging"));
    assert_eq!(sim.requests().len(), 1);
    sim.inject(Fault::smartcar(409, "VEHICLE_STATE", "ASLEEP", "zzz"));
    let r = common::execute_only(&shared, "get_signal", read()).await;
    assert!(error(&r)["hint"].as_str().unwrap().contains("asleep"));
}

#[tokio::test]
async fn a_permission_error_does_not_read_as_authentication() {
    let (sim, shared) = setup(|_| {}).await;
    sim.inject(Fault::smartcar(
        403,
        "PERMISSION",
        "",
        "missing scope read_battery",
    ));
    let r = common::execute_only(&shared, "get_signal", read()).await;
    let e = error(&r);
    assert_eq!(e["type"], "PERMISSION");
    let hint = e["hint"].as_str().unwrap();
    assert!(hint.contains("permission"), "{hint}");
    assert!(!hint.contains("SMARTCAR_CLIENT"), "{hint}");
    assert_eq!(sim.token_requests().len(), 1, "no token refresh for a 403");
}

#[tokio::test]
async fn v2_flat_error_bodies_are_parsed() {
    let (sim, shared) = setup(|_| {}).await;
    sim.set_error_format(ErrorFormat::V2);
    let r = common::execute_only(&shared, "stop_charge", command()).await;
    let e = error(&r);
    assert_eq!(e["type"], "VEHICLE_STATE");
    assert_eq!(e["code"], "NOT_CHARGING");
    assert!(e["request_id"].is_string());
    sim.inject(Fault::new(430, r#"{"type":"BILLING","code":"VEHICLE_REQUEST_LIMIT","description":"Monthly limit","statusCode":430,"requestId":"req-v2-1","resolution":{"type":"CONTACT_SUPPORT"}}"#));
    let r = common::execute_only(&shared, "get_signal", read()).await;
    let e = error(&r);
    assert_eq!(e["type"], "BILLING");
    assert_eq!(e["code"], "VEHICLE_REQUEST_LIMIT");
    assert_eq!(e["request_id"], "req-v2-1");
    assert_eq!(e["resolution"], "CONTACT_SUPPORT");
    assert!(e["hint"].as_str().unwrap().contains("plan"));
}

#[tokio::test]
async fn non_json_bodies_are_clear_errors_not_crashes() {
    let (sim, shared) = setup(|_| {}).await;
    sim.inject(
        Fault::new(500, "<html>Internal Server Error</html>")
            .header("content-type", "text/html")
            .times(10),
    );
    let r = common::execute_only(&shared, "lock_vehicle", command()).await;
    let e = error(&r);
    assert_eq!(e["status"], 500);
    assert!(e["detail"].as_str().unwrap().contains("non-JSON"));
    assert_eq!(sim.requests().len(), 1);

    sim.clear_requests();
    sim.clear_faults();
    sim.inject(Fault::new(200, "OK but not json").header("content-type", "text/plain"));
    let r = common::execute_only(&shared, "get_vehicle", json!({ "vehicle_id": EV })).await;
    let e = error(&r);
    assert_eq!(e["type"], "BAD_RESPONSE");
    assert!(r.text()[0].contains("not JSON"));
    assert_eq!(sim.requests().len(), 1);
}

#[tokio::test]
async fn an_error_inside_a_2xx_command_answer_is_a_tool_error() {
    let (sim, shared) = setup(|_| {}).await;
    sim.inject(Fault::new(202, r#"{"data":{"id":"exec_1","type":"command-execution","attributes":{"commandType":"security-lock","status":{"value":"ERROR","error":{"type":"VEHICLE_STATE","code":"DOOR_OPEN"}}}}}"#).on("POST", "/lock"));
    let r = common::execute_only(&shared, "lock_vehicle", command()).await;
    let e = error(&r);
    assert_eq!(e["type"], "COMMAND_FAILED");
    assert_eq!(e["detail"]["code"], "DOOR_OPEN");
    assert_eq!(sim.requests().len(), 1);

    // A status word Smartcar documents nowhere (only SUCCESS is) is reported as the body says it,
    // as still running, never renamed.
    sim.inject(Fault::new(202, r#"{"data":{"id":"exec_2","type":"command-execution","attributes":{"commandType":"security-lock","status":{"value":"queued"}}}}"#).on("POST", "/lock"));
    let r = common::execute_only(&shared, "lock_vehicle", command()).await;
    assert!(!r.is_error, "{r:?}");
    assert_eq!(r.structured["status"], "QUEUED");
    assert_eq!(r.structured["status_from"], "body");
    assert_eq!(r.structured["running"], true);
    assert_eq!(
        r.text()[0],
        "Lock vehicle accepted for veh-ev-0001, still running (Smartcar reports QUEUED): read closure-islocked with get_signal to confirm."
    );

    // ERROR inside a 200 is as much a failure as inside a 202.
    sim.inject(
        Fault::new(
            200,
            r#"{"data":{"type":"command-execution","attributes":{"status":{"value":"ERROR"}}}}"#,
        )
        .on("POST", "/lock"),
    );
    let r = common::execute_only(&shared, "lock_vehicle", command()).await;
    assert_eq!(error(&r)["type"], "COMMAND_FAILED");
}

#[tokio::test]
async fn slow_reads_time_out_and_retry_but_slow_commands_are_not_resent() {
    let (sim, shared) = setup(|s| {
        s.upstream.read_timeout = Duration::from_millis(150);
        s.upstream.command_timeout = Duration::from_millis(150);
        s.upstream.retry_budget = Duration::from_secs(3);
    })
    .await;
    sim.inject(Fault::new(200, "{}").delay_ms(600).on("GET", "/signals/"));
    let r = common::execute_only(&shared, "get_signal", read()).await;
    assert!(!r.is_error, "the retry after the timeout succeeds: {r:?}");
    assert_eq!(sim.hits("GET", "/signals/"), 2);
    assert!(
        r.meta.unwrap().to_map()["smartcar-mcp/retries"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("timed out")
    );

    sim.clear_requests();
    sim.inject(Fault::new(200, "{}").delay_ms(600).on("POST", "/lock"));
    let r = common::execute_only(&shared, "lock_vehicle", command()).await;
    let e = error(&r);
    assert_eq!(e["type"], "TRANSPORT");
    assert!(e["detail"].as_str().unwrap().contains("not re-sent"));
    assert_eq!(sim.hits("POST", "/lock"), 1);
}

#[tokio::test]
async fn token_endpoint_failures_name_the_cause_without_the_secret() {
    for (fault, needle) in [
        (
            Fault::new(
                401,
                r#"{"error":"invalid_client","error_description":"bad secret"}"#,
            ),
            "refused the client credentials",
        ),
        (Fault::new(500, "upstream exploded"), "failed with HTTP 500"),
        (
            Fault::new(200, "<html>captive portal</html>"),
            "without a usable token",
        ),
        (
            Fault::new(200, r#"{"access_token":"t","token_type":"mac"}"#),
            "not Bearer",
        ),
    ] {
        let (sim, shared) = setup(|_| {}).await;
        sim.inject(fault.on("POST", "/oauth2/token"));
        let r = common::execute_only(&shared, "get_signal", read()).await;
        let e = error(&r);
        assert_eq!(e["type"], "AUTHENTICATION");
        assert!(
            r.text()[0].contains(needle),
            "{} lacks {needle}",
            r.text()[0]
        );
        let all = format!("{r:?}");
        assert!(
            !all.contains(common::CLIENT_SECRET),
            "the secret leaked: {all}"
        );
        assert!(sim.requests().is_empty(), "no API request without a token");
    }
}

#[tokio::test]
async fn missing_credentials_name_the_variables() {
    let (sim, shared) = setup(|s| {
        s.upstream.client_id = None;
        s.upstream.client_secret = None;
    })
    .await;
    let r = common::execute_only(&shared, "get_signal", read()).await;
    let e = error(&r);
    assert_eq!(e["code"], "MISSING_CREDENTIALS");
    assert!(
        r.text()[0].contains("SMARTCAR_CLIENT_ID and SMARTCAR_CLIENT_SECRET"),
        "{}",
        r.text()[0]
    );
    assert!(sim.token_requests().is_empty() && sim.requests().is_empty());
}

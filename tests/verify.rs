//! `--verify-commands`: after a successful command its confirming signal is read once and the
//! result says `verified: true|false` with the value read; a failure or an asleep vehicle is never
//! turned into success.

use std::time::Duration;

use serde_json::{Value, json};
use smartcar_mcp::simulator::{ALICE, EV, Fault, Simulator};

use crate::common;

async fn with(verify: bool) -> (Simulator, std::sync::Arc<smartcar_mcp::mcp::Shared>) {
    let sim = common::simulator().await;
    let mut s = common::settings(&sim);
    s.serving.verify_commands = verify;
    s.serving.verify_delay = Duration::from_millis(10);
    (sim, common::shared(s))
}

fn car() -> Value {
    json!({ "vehicle_id": EV, "user_id": ALICE })
}

#[tokio::test]
async fn a_command_that_took_effect_is_verified_with_the_value_read() {
    let (sim, shared) = with(true).await;
    let r = common::run(&shared, "lock_vehicle", car()).await;
    assert!(!r.is_error, "{r:?}");
    assert_eq!(r.structured["verified"], true, "{}", r.json);
    assert_eq!(r.structured["verification"]["signal"], "closure-islocked");
    assert_eq!(r.structured["verification"]["read"], true);
    assert!(r.lead.as_deref().unwrap().contains("Verified"), "{r:?}");
    assert_eq!(sim.hits("GET", "/signals/closure-islocked"), 1);
    let mut args = car();
    args["percent"] = json!(90);
    let r = common::run(&shared, "set_charge_limit", args).await;
    assert_eq!(r.structured["verified"], true, "{}", r.json);
    assert_eq!(r.structured["verification"]["read"], 90);
    sim.shutdown();
}

#[tokio::test]
async fn a_command_the_vehicle_ignored_is_reported_unverified() {
    let (sim, shared) = with(true).await;
    sim.ignore_commands(true);
    let mut args = car();
    args["percent"] = json!(95);
    let before = sim.signal_body(EV, "charge-chargelimits").unwrap();
    let r = common::run(&shared, "set_charge_limit", args).await;
    assert!(!r.is_error, "the command itself answered SUCCESS: {r:?}");
    assert_eq!(sim.signal_body(EV, "charge-chargelimits").unwrap(), before);
    assert_eq!(r.structured["verified"], false, "{}", r.json);
    assert_eq!(r.structured["verification"]["expected"], 95);
    assert_eq!(r.structured["verification"]["read"], before["activeLimit"]);
    assert!(r.lead.as_deref().unwrap().contains("Not verified"), "{r:?}");
    // The same in the text a model reads.
    assert!(r.json.contains("\"verified\":false"), "{}", r.json);
    let r = common::run(&shared, "start_charge", car()).await;
    assert_eq!(r.structured["verified"], false, "{}", r.json);
    sim.shutdown();
}

#[tokio::test]
async fn failures_and_an_asleep_vehicle_are_never_verified() {
    let (sim, shared) = with(true).await;
    // The command fails: nothing is read, the failure stays a failure.
    sim.inject(
        Fault::smartcar(409, "VEHICLE_STATE", "ASLEEP", "The vehicle is asleep.")
            .on("POST", "/commands/security/lock")
            .times(1),
    );
    let r = common::run(&shared, "lock_vehicle", car()).await;
    assert!(r.is_error, "{r:?}");
    assert!(r.structured.get("verified").is_none(), "{}", r.json);
    assert_eq!(sim.hits("GET", "/signals/"), 0);
    // The command succeeds but the read finds the vehicle asleep: not verified.
    sim.inject(
        Fault::smartcar(409, "VEHICLE_STATE", "ASLEEP", "The vehicle is asleep.")
            .on("GET", "/signals/closure-islocked")
            .times(1),
    );
    let r = common::run(&shared, "lock_vehicle", car()).await;
    assert!(!r.is_error, "{r:?}");
    assert_eq!(r.structured["verified"], false, "{}", r.json);
    assert_eq!(r.structured["verification"]["read"], Value::Null);
    assert_eq!(r.structured["verification"]["error"]["code"], "ASLEEP");
    sim.shutdown();
}

#[tokio::test]
async fn without_the_setting_nothing_is_read() {
    let (sim, shared) = with(false).await;
    let r = common::run(&shared, "lock_vehicle", car()).await;
    assert!(!r.is_error, "{r:?}");
    assert!(r.structured.get("verified").is_none(), "{}", r.json);
    assert_eq!(sim.hits("GET", "/signals/"), 0);
    sim.shutdown();
}

//! Inputs: every bad argument is refused locally with the parameter and the rule, and nothing
//! reaches Smartcar; a property test throws arbitrary JSON at every tool.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use smartcar_mcp::catalogue::TOOLS;
use smartcar_mcp::tool::call as pipeline;

use crate::common;

const EV: &str = "veh-ev-0001";
const ALICE: &str = "usr-alice-01";

/// The refusal text for these arguments (asserting it is a local refusal).
fn refusal(tool: &str, args: Value) -> String {
    let spec = smartcar_mcp::catalogue::tool(tool).unwrap();
    match pipeline::validate(spec, args.as_object()).map_err(|e| e.into_result(spec.name)) {
        Ok(a) => panic!("{tool} {args} was accepted as {a:?}"),
        Err(r) => {
            assert!(r.is_error);
            assert_eq!(r.structured["error"]["type"], "INVALID_ARGUMENTS");
            r.text()[0].to_string()
        }
    }
}

fn accepted(tool: &str, args: Value) -> Map<String, Value> {
    let spec = smartcar_mcp::catalogue::tool(tool).unwrap();
    pipeline::validate(spec, args.as_object())
        .map_err(|e| e.into_result(spec.name))
        .unwrap_or_else(|r| panic!("{tool} refused: {}", r.text()[0]))
}

fn limit(percent: Value) -> Value {
    json!({ "vehicle_id": EV, "user_id": ALICE, "percent": percent })
}

#[test]
fn ranges_name_the_parameter_the_rule_and_the_value() {
    let m = refusal("set_charge_limit", limit(json!(101)));
    assert!(m.contains("`percent` must be at most 100 (got 101)"), "{m}");
    let m = refusal("set_charge_limit", limit(json!(49)));
    assert!(m.contains("`percent` must be at least 50 (got 49)"), "{m}");
    let m = refusal(
        "set_navigation_destination",
        json!({ "vehicle_id": EV, "user_id": ALICE, "latitude": 91, "longitude": 0 }),
    );
    assert!(m.contains("`latitude` must be at most 90 (got 91)"), "{m}");
    assert!(m.contains("Nothing was sent to Smartcar"), "{m}");
}

#[test]
fn wrong_types_are_refused_not_coerced() {
    let m = refusal("set_charge_limit", limit(json!("80")));
    assert!(
        m.contains("`percent` must be a whole number (got \"80\")"),
        "{m}"
    );
    let m = refusal("set_charge_limit", limit(json!(80.5)));
    assert!(
        m.contains("`percent` must be a whole number (got 80.5)"),
        "{m}"
    );
    let a = accepted("set_charge_limit", limit(json!(80.0)));
    assert_eq!(a["percent"], json!(80));
    assert!(a["percent"].is_i64());
    let m = refusal("get_vehicle", json!({ "vehicle_id": 12 }));
    assert!(m.contains("`vehicle_id` must be a string (got 12)"), "{m}");
}

#[test]
fn required_enum_and_unknown_arguments() {
    let m = refusal("get_signals", json!({ "user_id": ALICE }));
    assert!(m.contains("`vehicle_id` is required"), "{m}");
    let m = refusal("list_connections", json!({ "vehicleMode": "real" }));
    assert!(
        m.contains("`vehicleMode` must be one of live, simulated (got \"real\")"),
        "{m}"
    );
    let m = refusal("get_vehicle", json!({ "vehicle_id": EV, "confirm": true }));
    assert!(
        m.contains("unknown argument `confirm`") && m.contains("this tool takes: vehicle_id"),
        "{m}"
    );
    let m = refusal("list_applications", json!({ "page": 2 }));
    assert!(m.contains("this tool takes no arguments"), "{m}");
}

#[test]
fn ids_are_single_clean_segments() {
    let rule = smartcar_mcp::catalogue::schema::ID_RULE;
    let m = refusal("get_vehicle", json!({ "vehicle_id": "" }));
    assert!(
        m.contains("`vehicle_id` is not a valid id: it is empty"),
        "{m}"
    );
    assert!(m.contains(rule), "{m}");
    for dots in [".", ".."] {
        let m = refusal("get_connection", json!({ "id": dots }));
        assert!(
            m.contains(&format!("`id` is not a valid id: it is \"{dots}\"")),
            "{m}"
        );
    }
    let m = refusal(
        "get_signals",
        json!({ "vehicle_id": EV, "user_id": "u\u{1}x" }),
    );
    assert!(
        m.contains("`user_id` is not a valid id: it contains a character outside the rule (got \"u\\u0001x\")"),
        "{m}"
    );
    let long = "v".repeat(129);
    let m = refusal("get_vehicle", json!({ "vehicle_id": long }));
    assert!(
        m.contains("`vehicle_id` is not a valid id: it is 129 characters long"),
        "{m}"
    );
    // One problem per broken rule, never the same sentence twice.
    let m = refusal("get_vehicle", json!({ "vehicle_id": "../connections" }));
    assert_eq!(m.matches("is not a valid id").count(), 1, "{m}");
}

#[test]
fn signal_aliases_map_and_unknown_codes_suggest_the_closest() {
    let a = accepted(
        "get_signal",
        json!({ "vehicle_id": EV, "user_id": ALICE, "signal_code": "charge.ischarging" }),
    );
    assert_eq!(a["signal_code"], "charge-ischarging");
    let a = accepted(
        "get_signal",
        json!({ "vehicle_id": EV, "user_id": ALICE, "signal_code": "TractionBattery.Capacity.UsableKwh" }),
    );
    assert_eq!(a["signal_code"], "tractionbattery-nominalcapacity");
    let m = refusal(
        "get_signal",
        json!({ "vehicle_id": EV, "user_id": ALICE, "signal_code": "tractionbattery-soc" }),
    );
    assert!(
        m.contains("did you mean") && m.contains("tractionbattery-stateofcharge"),
        "{m}"
    );
    assert!(
        m.matches(", ").count() <= 2,
        "at most three suggestions: {m}"
    );
    let m = refusal(
        "get_signal",
        json!({ "vehicle_id": EV, "user_id": ALICE, "signal_code": "charge.portstatus" }),
    );
    assert!(m.contains("charge-ischargingportflapopen"), "{m}");
    let spec = smartcar_mcp::catalogue::tool("get_signal").unwrap();
    let r = pipeline::validate(
        spec,
        json!({ "vehicle_id": EV, "user_id": ALICE, "signal_code": "batery level" }).as_object(),
    )
    .unwrap_err()
    .into_result(spec.name);
    assert_eq!(
        r.structured["error"]["suggestions"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn oversized_arguments_are_a_clear_error() {
    let m = refusal("get_vehicle", json!({ "vehicle_id": "x".repeat(200_000) }));
    assert!(m.contains("bytes, more than the"), "{m}");
}

#[tokio::test]
async fn invalid_calls_make_no_upstream_request() {
    let sim = common::simulator().await;
    let shared = common::shared(common::settings(&sim));
    for (tool, args) in [
        ("set_charge_limit", limit(json!(101))),
        (
            "get_signal",
            json!({ "vehicle_id": EV, "user_id": ALICE, "signal_code": "nope" }),
        ),
        ("unlock_vehicle", json!({ "vehicle_id": EV })),
        ("delete_user", json!({ "id": ".." })),
    ] {
        let r = common::execute_only(&shared, tool, args).await;
        assert!(r.is_error);
    }
    assert!(sim.requests().is_empty() && sim.token_requests().is_empty());
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1.0e6f64..1.0e6).prop_map(|f| json!(f)),
        "[a-z0-9._/-]{0,12}".prop_map(Value::String),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Arguments built from a tool's real parameter names (so some calls are valid) plus noise.
fn arb_args() -> impl Strategy<Value = (usize, Map<String, Value>)> {
    (0..TOOLS.len()).prop_flat_map(|i| {
        let names: Vec<&'static str> = TOOLS[i]
            .params
            .iter()
            .map(|p| p.name)
            .chain(["extra"])
            .collect();
        let entry = (prop::sample::select(names), arb_json());
        (
            Just(i),
            prop::collection::vec(entry, 0..6)
                .prop_map(|kv| kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_arguments_never_panic_and_invalid_ones_send_nothing((index, args) in arb_args()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let sim = common::simulator().await;
            let mut settings = common::settings(&sim);
            settings.upstream.retry_budget = std::time::Duration::ZERO;
            let shared = common::shared(settings);
            let spec = &TOOLS[index];
            let verdict = pipeline::validate(spec, Some(&args));
            let r = match &verdict {
                Ok(a) => pipeline::execute(&shared.app, spec, a).await,
                Err(e) => e.clone().into_result(spec.name),
            };
            if verdict.is_err() {
                prop_assert!(r.is_error);
                prop_assert_eq!(sim.requests().len(), 0, "{} {:?} reached Smartcar", TOOLS[index].name, args);
            } else {
                prop_assert!(sim.requests().len() <= 2);
            }
            sim.shutdown();
            Ok(())
        })?;
    }
}

//! Ids: one rule for every id parameter of every tool, and every traversal or encoding trick an
//! attacker might try is refused locally, naming the parameter and the rule, with zero requests
//! reaching Smartcar (the simulator counts them).

use serde_json::{Map, Value, json};
use smartcar_mcp::catalogue::schema::{ID_RULE, is_valid_id};
use smartcar_mcp::catalogue::{ParamSpec, ParamType, TOOLS};

use crate::common;

/// Values that can never be a Smartcar id, each with what it tries.
const TRICKS: &[(&str, &str)] = &[
    ("../connections", "plain traversal"),
    ("v-1/../../connections", "traversal after a real id"),
    ("..%2F", "encoded slash after dots"),
    ("..%2fconnections", "lowercase encoded slash"),
    ("%2e%2e", "encoded dots"),
    ("%2E%2E%2F", "encoded dots and slash"),
    ("%252e%252e%252f", "double encoding"),
    ("..%252F", "double-encoded slash"),
    ("%c0%ae%c0%ae", "overlong UTF-8 dots"),
    ("v\u{2215}..", "U+2215 division slash"),
    ("v\u{FF0F}..", "U+FF0F fullwidth solidus"),
    ("v\u{2044}x", "U+2044 fraction slash"),
    ("\u{FF0E}\u{FF0E}", "fullwidth full stops"),
    ("v\0", "NUL"),
    ("v%00", "encoded NUL"),
    ("v\u{1}x", "control character"),
    ("v\u{7F}", "DEL"),
    ("v\nx", "newline (header injection)"),
    ("v\r\nx-evil: 1", "CRLF header injection"),
    ("v 1", "space"),
    (" v-1", "leading space"),
    ("v-1\t", "tab"),
    ("v\u{A0}1", "no-break space"),
    ("v\u{200B}1", "zero-width space"),
    ("v\u{202E}1", "right-to-left override"),
    ("v?x=1", "query"),
    ("v#x", "fragment"),
    ("v\\..\\x", "backslash"),
    ("v/x", "slash"),
    ("v%x", "bare percent"),
    ("v;x", "semicolon (path parameter)"),
    ("v@x", "at sign"),
    ("véh", "non-ASCII letter"),
    ("ｖ", "fullwidth letter"),
    (".", "dot"),
    ("..", "dot dot"),
    ("", "empty"),
];

/// A valid value for a parameter that is not the one under test.
fn filler(p: &ParamSpec) -> Value {
    match p.ty {
        ParamType::Id => json!("veh-ev-0001"),
        ParamType::SignalCode => json!("tractionbattery-stateofcharge"),
        ParamType::Boolean => json!(false),
        ParamType::Integer => json!(p.minimum.unwrap_or(1.0) as i64),
        ParamType::Number => json!(p.minimum.unwrap_or(0.0)),
        ParamType::Time => json!("07:30"),
        ParamType::Name => json!("Tesla"),
        ParamType::String => match p.enum_values.first() {
            Some(v) => json!(v),
            None => json!("x"),
        },
        ParamType::Object => {
            let one: serde_json::Map<String, Value> = p
                .fields
                .iter()
                .map(|f| (f.name.to_string(), filler(f)))
                .collect();
            match p.keys.first() {
                Some(k) => json!({ *k: one }),
                None => Value::Object(one),
            }
        }
    }
}

#[tokio::test]
async fn every_trick_in_every_id_parameter_is_refused_with_no_request() {
    let sim = common::simulator().await;
    let shared = common::shared(common::settings(&sim));
    let long = "v".repeat(129);
    let mut tried = 0;
    for tool in TOOLS.iter() {
        for target in tool.params.iter().filter(|p| p.ty == ParamType::Id) {
            let tricks = TRICKS
                .iter()
                .map(|(v, why)| (v.to_string(), *why))
                .chain([(long.clone(), "129 characters")]);
            for (value, why) in tricks {
                assert!(!is_valid_id(&value), "{why}: {value:?}");
                let mut args = Map::new();
                for p in tool.params.iter().filter(|p| p.required) {
                    args.insert(p.name.into(), filler(p));
                }
                args.insert(target.name.into(), json!(value));
                let r = common::execute_only(&shared, tool.name, Value::Object(args)).await;
                let text = r.text()[0].to_string();
                assert!(r.is_error, "{} {} {why}: accepted", tool.name, target.name);
                assert_eq!(
                    r.structured["error"]["type"], "INVALID_ARGUMENTS",
                    "{} {why}: {text}",
                    tool.name
                );
                assert!(
                    text.contains(&format!("`{}` is not a valid id", target.name))
                        && text.contains(ID_RULE),
                    "{} {why}: {text}",
                    tool.name
                );
                tried += 1;
            }
        }
    }
    assert!(tried > 20 * TRICKS.len(), "only {tried} tries");
    assert!(
        sim.requests().is_empty(),
        "{} requests reached the simulator: {:?}",
        sim.requests().len(),
        sim.requests().iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    assert!(sim.token_requests().is_empty());

    // The counter works: a real id goes through.
    let r = common::execute_only(
        &shared,
        "get_vehicle",
        json!({ "vehicle_id": "veh-ev-0001" }),
    )
    .await;
    assert!(!r.is_error, "{}", r.text()[0]);
    assert_eq!(sim.requests().len(), 1);
}

#[test]
fn the_rule_accepts_every_allowed_character_and_both_length_ends() {
    for ok in [
        "v",
        "veh-ev-0001",
        "usr_alice.01",
        "urn:sc:v:1",
        "...",
        "a..b",
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_.:",
        &"v".repeat(128),
    ] {
        assert!(is_valid_id(ok), "{ok}");
        let spec = smartcar_mcp::catalogue::tool("get_vehicle").unwrap();
        let args = json!({ "vehicle_id": ok });
        smartcar_mcp::tool::call::validate(spec, args.as_object())
            .unwrap_or_else(|e| panic!("{ok} refused: {e}"));
    }
}

/// What clients see is the server's own rule but for `.` and `..`: the published id schema (one
/// pattern, compiled as a client's validator would) accepts exactly what `is_valid_id` accepts
/// plus those two, which the server refuses itself.
#[test]
fn the_published_schema_states_the_rule_and_the_server_adds_the_dots() {
    let spec = smartcar_mcp::catalogue::tool("get_vehicle").unwrap();
    let schema: Value = serde_json::from_str(spec.input_schema).unwrap();
    let id = &schema["properties"]["vehicle_id"];
    let published = jsonschema::validator_for(id).expect("the id schema compiles");
    let long = "v".repeat(129);
    let edge = "v".repeat(128);
    let values = TRICKS.iter().map(|(v, _)| *v).chain([
        "v",
        "...",
        "a..b",
        ".a",
        "a.",
        "urn:sc:v:1",
        &long,
        &edge,
    ]);
    for v in values {
        let dots = v == "." || v == "..";
        assert_eq!(
            published.is_valid(&json!(v)),
            is_valid_id(v) || dots,
            "{v:?}: schema and server disagree"
        );
        let args = json!({ "vehicle_id": v });
        assert_eq!(
            smartcar_mcp::tool::call::validate(spec, args.as_object()).is_ok(),
            is_valid_id(v),
            "{v:?}: the server's check"
        );
    }
}

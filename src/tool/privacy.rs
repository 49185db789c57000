//! Location privacy (`--location exact|coarse|off`): a walk over a result's JSON that rounds every
//! latitude and longitude to 0.01 degree (`coarse`), or withholds them and drops the location
//! signals (`off`); and the local refusal of location signal codes under `off`.

use serde_json::{Map, Value};

use super::error::ToolError;
use crate::catalogue::{ParamType, ToolSpec, resolve_signal};
use crate::settings::LocationMode;

/// The setting's name, as an operator sets it.
pub const SETTING: &str = "--location (SMARTCAR_LOCATION)";

/// Whether a signal code (or alias) is one of the location group's.
pub fn is_location_signal(code: &str) -> bool {
    resolve_signal(code).is_some_and(|s| s.group == "location")
}

/// Under `off`, a call naming a location signal is refused before anything is sent.
pub fn refuse(
    mode: LocationMode,
    spec: &ToolSpec,
    args: &Map<String, Value>,
) -> Result<(), ToolError> {
    if mode != LocationMode::Off {
        return Ok(());
    }
    let named = spec
        .params
        .iter()
        .filter(|p| p.ty == ParamType::SignalCode)
        .filter_map(|p| args.get(p.name)?.as_str())
        .find(|c| is_location_signal(c));
    match named {
        Some(code) => Err(ToolError::LocationOff {
            code: code.to_string(),
        }),
        None => Ok(()),
    }
}

/// A tool's published input schema under this setting: under `off` the location codes leave every
/// `examples` list, so tools/list never offers the model a code the server then refuses.
pub fn published_schema(mode: LocationMode, mut schema: Map<String, Value>) -> Map<String, Value> {
    if mode != LocationMode::Off {
        return schema;
    }
    if let Some(Value::Object(props)) = schema.get_mut("properties") {
        for prop in props.values_mut() {
            if let Some(Value::Array(examples)) = prop.get_mut("examples") {
                examples.retain(|e| !e.as_str().is_some_and(is_location_signal));
            }
        }
    }
    schema
}

fn is_coordinate(key: &str) -> bool {
    let k: String = key
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    k == "latitude" || k == "longitude"
}

/// A coordinate rounded to 0.01 degree; numbers stay numbers, numeric strings stay strings.
fn round(v: &Value) -> Option<Value> {
    let r = |f: f64| (f * 100.0).round() / 100.0;
    match v {
        Value::Number(n) => {
            let f = n.as_f64()?;
            let rounded = r(f);
            (rounded != f).then(|| serde_json::Number::from_f64(rounded).map(Value::Number))?
        }
        Value::String(s) => {
            let f: f64 = s.trim().parse().ok()?;
            let rounded = r(f);
            (rounded != f).then(|| Value::String(rounded.to_string()))
        }
        _ => None,
    }
}

/// A signal entry (in a list) of the location group: its `code`, or its `id` in Smartcar's own
/// document.
fn is_location_entry(v: &Value) -> bool {
    ["code", "id"]
        .iter()
        .filter_map(|k| v.get(k)?.as_str())
        .any(is_location_signal)
}

#[derive(Default)]
struct Changes {
    rounded: usize,
    withheld: usize,
    removed: Vec<String>,
}

fn walk(mode: LocationMode, v: &mut Value, c: &mut Changes) {
    match v {
        Value::Object(o) => {
            for (k, child) in o.iter_mut() {
                if is_coordinate(k) && !child.is_null() && !child.is_object() {
                    if mode == LocationMode::Coarse {
                        if let Some(r) = round(child) {
                            *child = r;
                            c.rounded += 1;
                        }
                    } else {
                        *child = Value::Null;
                        c.withheld += 1;
                    }
                } else {
                    walk(mode, child, c);
                }
            }
        }
        Value::Array(a) => {
            if mode == LocationMode::Off {
                a.retain(|e| {
                    let drop = is_location_entry(e);
                    if drop {
                        let code = ["code", "id"]
                            .iter()
                            .find_map(|k| e.get(k)?.as_str())
                            .unwrap_or_default();
                        c.removed.push(code.to_string());
                    }
                    !drop
                });
            }
            for e in a.iter_mut() {
                walk(mode, e, c);
            }
        }
        _ => {}
    }
}

/// Applies the setting to one result (a JSON object), unless its tool is `location_exempt` in
/// tools.yaml; when it changed anything, the result says so in `location_privacy` and the
/// sentence to tell the model is returned.
pub fn apply(mode: LocationMode, exempt: bool, v: &mut Value) -> Option<String> {
    if mode == LocationMode::Exact || exempt {
        return None;
    }
    let mut c = Changes::default();
    walk(mode, v, &mut c);
    let note = match mode {
        LocationMode::Coarse if c.rounded > 0 => {
            "Location is coarse on this server (--location coarse): latitude and longitude are rounded to 0.01 degree (about 1 km).".to_string()
        }
        LocationMode::Off if c.withheld > 0 || !c.removed.is_empty() => {
            c.removed.sort();
            c.removed.dedup();
            let removed = if c.removed.is_empty() {
                String::new()
            } else {
                format!(" removed {};", c.removed.join(", "))
            };
            format!(
                "Location is off on this server (--location off):{removed} coordinates are withheld."
            )
        }
        _ => return None,
    };
    if let Value::Object(o) = v {
        o.insert(
            "location_privacy".into(),
            Value::String(mode.as_str().into()),
        );
    }
    Some(note)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn coarse_rounds_every_coordinate_in_any_casing_and_says_so() {
        let mut v = json!({ "body": { "latitude": 37.7793, "Longitude": -122.4193,
            "values": [{ "condition": { "LATITUDE": "37.4419", "longitude": 12.0 } }] } });
        let note = apply(LocationMode::Coarse, false, &mut v).unwrap();
        assert!(note.contains("0.01"), "{note}");
        assert_eq!(v["body"]["latitude"], json!(37.78));
        assert_eq!(v["body"]["Longitude"], json!(-122.42));
        assert_eq!(v["body"]["values"][0]["condition"]["LATITUDE"], "37.44");
        assert_eq!(v["location_privacy"], "coarse");
        // Nothing to round: nothing said.
        let mut v = json!({ "value": 80 });
        assert_eq!(apply(LocationMode::Coarse, false, &mut v), None);
        assert_eq!(v, json!({ "value": 80 }));
    }

    #[test]
    fn off_drops_location_signals_and_withholds_other_coordinates() {
        let mut v = json!({ "signals": [
            { "code": "location-preciselocation", "body": { "latitude": 1.5 } },
            { "code": "charge-chargetimers", "body": { "latitude": 37.7793 } },
            { "code": "tractionbattery-stateofcharge", "value": 80 }],
            "errors": [{ "code": "location-isathome" }] });
        let note = apply(LocationMode::Off, false, &mut v).unwrap();
        assert!(note.contains("location-preciselocation"), "{note}");
        let codes: Vec<_> = v["signals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["code"].clone())
            .collect();
        assert_eq!(
            codes,
            [
                json!("charge-chargetimers"),
                json!("tractionbattery-stateofcharge")
            ]
        );
        assert_eq!(v["signals"][0]["body"]["latitude"], Value::Null);
        assert_eq!(v["errors"], json!([]));
    }

    #[test]
    fn exact_and_the_navigation_destination_are_left_alone() {
        let v0 = json!({ "parameters": { "latitude": 37.7793, "longitude": -122.4193 } });
        for (mode, tool) in [
            (LocationMode::Exact, "get_signal"),
            (LocationMode::Coarse, "set_navigation_destination"),
            (LocationMode::Off, "set_navigation_destination"),
        ] {
            let mut v = v0.clone();
            let exempt = crate::catalogue::tool(tool).unwrap().location_exempt;
            assert_eq!(apply(mode, exempt, &mut v), None);
            assert_eq!(v, v0);
        }
    }
}

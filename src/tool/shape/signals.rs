//! Signals: one signal's value, body, unit and status, and the list of a vehicle's signals with
//! its errors and the vehicle it belongs to.

use serde_json::{Map, Value, json};

use super::jsonapi::{at, attrs, drop_nulls, items, page, s, time};
use super::units::{normalize_units, unit_of};

/// Splits a signal body into its single `value`, the rest of a structured `body`, and the
/// (normalised) unit. `{value, unit}` gives only `value`; `{value, unit, additionalValues}` gives
/// `value` and `body: {additionalValues}`; a body without `value` is all `body`.
pub(super) fn split_body(body: Option<&Value>) -> (Value, Value, Value) {
    match body {
        Some(Value::Object(b)) => {
            let unit = unit_of(b.get("unit"));
            let mut rest = b.clone();
            rest.remove("unit");
            let value = rest.remove("value").unwrap_or(Value::Null);
            let had_value = b.contains_key("value");
            let mut rest = Value::Object(rest);
            normalize_units(&mut rest);
            let rest = match rest {
                Value::Object(o) if o.is_empty() && had_value => Value::Null,
                other if had_value => other,
                other => return (Value::Null, other, unit),
            };
            (value, rest, unit)
        }
        Some(other) => (other.clone(), Value::Null, Value::Null),
        None => (Value::Null, Value::Null, Value::Null),
    }
}

fn signal_status(a: &Value) -> String {
    match a.get("status") {
        Some(Value::Object(o)) => o
            .get("value")
            .and_then(Value::as_str)
            .unwrap_or("SUCCESS")
            .to_string(),
        Some(Value::String(x)) => x.clone(),
        _ if a.get("body").is_some() => "SUCCESS".into(),
        _ => "UNAVAILABLE".into(),
    }
}

fn signal_error(a: &Value) -> Option<&Value> {
    at(a, "/status/error").filter(|e| e.is_object())
}

pub(super) fn compact_signal(r: &Value) -> Value {
    let a = attrs(r);
    let (value, rest, unit) = split_body(a.get("body"));
    let mut o = Map::new();
    o.insert("code".into(), s(a.get("code").or_else(|| r.get("id"))));
    o.insert("group".into(), s(a.get("group")));
    o.insert("name".into(), s(a.get("name")));
    if !value.is_null() || rest.is_null() {
        o.insert("value".into(), value);
    }
    if !rest.is_null() {
        o.insert("body".into(), rest);
    }
    o.insert("unit".into(), unit);
    o.insert("status".into(), Value::String(signal_status(a)));
    if let Some(e) = signal_error(a) {
        o.insert(
            "error".into(),
            json!({ "type": s(e.get("type")), "code": s(e.get("code")), "description": s(e.get("description")) }),
        );
    }
    o.insert("retrieved_at".into(), time(at(r, "/meta/retrievedAt")));
    o.insert("oem_updated_at".into(), time(at(r, "/meta/oemUpdatedAt")));
    Value::Object(o)
}

fn included_vehicle(doc: &Value) -> Value {
    let v = match doc.get("included") {
        Some(Value::Object(o)) => o.get("vehicle"),
        Some(Value::Array(a)) => a
            .iter()
            .find(|x| x.get("type").and_then(Value::as_str) == Some("vehicle")),
        _ => None,
    };
    match v {
        Some(v) => {
            let a = attrs(v);
            json!({ "id": s(v.get("id")), "make": s(a.get("make")), "model": s(a.get("model")), "year": a.get("year").cloned().unwrap_or(Value::Null) })
        }
        None => Value::Null,
    }
}

pub(super) fn signal_list(doc: &Value) -> Value {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for r in items(doc) {
        let a = attrs(r);
        let code = s(a.get("code").or_else(|| r.get("id")));
        let status = signal_status(a);
        if status == "SUCCESS" {
            let (value, rest, unit) = split_body(a.get("body"));
            let mut o = Map::new();
            o.insert("code".into(), code);
            o.insert("value".into(), value);
            o.insert("body".into(), rest);
            o.insert("unit".into(), unit);
            o.insert("oem_updated_at".into(), time(at(r, "/meta/oemUpdatedAt")));
            rows.push(drop_nulls(o));
        } else {
            let e = signal_error(a);
            // UNAVAILABLE (the vehicle cannot report it now) stays apart from ERROR (reading it
            // failed): the first is not worth a retry, the second may be.
            errors.push(drop_nulls(Map::from_iter([
                ("code".to_string(), code),
                ("status".to_string(), Value::String(status.clone())),
                (
                    "error_type".to_string(),
                    e.map(|e| s(e.get("type"))).unwrap_or(Value::String(status)),
                ),
                (
                    "error_code".to_string(),
                    e.map(|e| s(e.get("code"))).unwrap_or(Value::Null),
                ),
            ])));
        }
    }
    let page = page(doc);
    let empty = rows.is_empty()
        && errors.is_empty()
        && page.get("total").is_none_or(|t| t.as_u64() == Some(0));
    let mut out = json!({ "vehicle": included_vehicle(doc), "signals": rows, "errors": errors, "page": page });
    if empty {
        out["note"] = Value::String(EMPTY_SIGNALS.into());
    }
    out
}

/// Said with an empty signal list: Smartcar answers 200 with no signals for a vehicle that was
/// never subscribed to a webhook (seen live by a third party; data refreshes daily otherwise).
pub const EMPTY_SIGNALS: &str = "Smartcar returned no signals for this vehicle. It may not be subscribed to a webhook: Smartcar refreshes an unsubscribed vehicle's data about once a day and can answer with an empty list. Subscribe it with subscribe_vehicle (webhooks toolset), then read again.";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn single_values_and_structured_bodies_split() {
        let (v, b, u) = split_body(Some(&json!({ "unit": "percent", "value": 75 })));
        assert_eq!((v, b, u), (json!(75), Value::Null, json!("percent")));
        let (v, b, u) = split_body(Some(
            &json!({ "values": [1], "unit": "percent", "activeLimit": 80 }),
        ));
        assert_eq!(
            (v, b, u),
            (
                Value::Null,
                json!({ "values": [1], "activeLimit": 80 }),
                json!("percent")
            )
        );
        // tractionbattery-range: the value stays a value, its extras ride along as the body.
        let (v, b, u) = split_body(Some(&json!({ "unit": "km", "value": 402,
            "additionalValues": [{ "type": "RATED", "value": 420 }] })));
        assert_eq!(
            (v, b, u),
            (
                json!(402),
                json!({ "additionalValues": [{ "type": "RATED", "value": 420 }] }),
                json!("kilometers")
            )
        );
    }
}

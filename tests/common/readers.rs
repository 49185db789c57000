//! Tolerant readers of results for tests: each tries the compact result first, then Smartcar's
//! JSON:API document (what `raw: true` returns and what the simulator serves), then the
//! `{data: ...}`-wrapped variant of it, so a test reads the simulator's own state and the server's
//! answers through the same readers.

use serde_json::Value;

/// The first of these JSON pointers that is present and not null.
fn first<'a>(v: &'a Value, pointers: &[&str]) -> Option<&'a Value> {
    pick(v, pointers, |x| (!x.is_null()).then_some(x))
}

/// The first of these JSON pointers whose value `read` accepts: a field of the wrong type in one
/// shape must not hide the right one in the next.
fn pick<'a, T>(
    v: &'a Value,
    pointers: &[&str],
    read: impl Fn(&'a Value) -> Option<T>,
) -> Option<T> {
    pointers.iter().find_map(|p| v.pointer(p).and_then(&read))
}

/// A signal's body object: `body` (compact), `attributes.body` (upstream), `data.attributes.body`.
pub fn signal_body(v: &Value) -> Option<&Value> {
    first(v, &["/body", "/attributes/body", "/data/attributes/body"]).filter(|b| b.is_object())
}

/// A single-valued signal's value: `value`, else its body's `value`.
pub fn signal_value(v: &Value) -> Option<&Value> {
    first(v, &["/value"])
        .filter(|x| !x.is_object())
        .or_else(|| signal_body(v).and_then(|b| first(b, &["/value"])))
}

pub fn signal_unit(v: &Value) -> Option<&str> {
    pick(v, &["/unit"], Value::as_str)
        .or_else(|| signal_body(v).and_then(|b| pick(b, &["/unit"], Value::as_str)))
}

/// The active charge limit in percent, from `charge-chargelimits` in any of its shapes.
pub fn charge_limit(v: &Value) -> Option<f64> {
    let keyed = |o: &Value| {
        pick(
            o,
            &[
                "/activeLimit",
                "/active_limit",
                "/value/activeLimit",
                "/value/active_limit",
                "/values/0/limit",
            ],
            Value::as_f64,
        )
    };
    keyed(v)
        .or_else(|| signal_body(v).and_then(keyed))
        .or_else(|| signal_value(v).and_then(Value::as_f64))
}

/// `closure-islocked` as a bool (also accepting "LOCKED"/"UNLOCKED" style strings).
pub fn locked(v: &Value) -> Option<bool> {
    match signal_value(v)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "locked" => Some(true),
            "false" | "unlocked" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A command's status: compact `status` (a string), `status.value`, or the JSON:API document's.
pub fn command_status(v: &Value) -> Option<String> {
    pick(
        v,
        &[
            "/status",
            "/status/value",
            "/data/attributes/status/value",
            "/attributes/status/value",
        ],
        Value::as_str,
    )
    .map(str::to_string)
}

/// One row of the fleet table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Connection {
    pub user: String,
    pub vehicle: String,
    pub make: String,
    pub model: String,
    pub year: String,
    pub mode: String,
    pub powertrain: String,
}

/// The connections of a `list_connections` result, compact (`connections: [...]` or `items`,
/// flat or with a `vehicle` object) or upstream (`data: [...]` with `attributes.vehicle` and
/// `relationships`).
pub fn connections(v: &Value) -> Vec<Connection> {
    let items = match v {
        Value::Array(a) => Some(a),
        _ => first(v, &["/connections", "/data", "/items"]).and_then(Value::as_array),
    };
    let text = |o: &Value, pointers: &[&str]| {
        pick(o, pointers, |x| match x {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .unwrap_or_default()
    };
    items
        .into_iter()
        .flatten()
        .map(|c| {
            let vehicle = first(c, &["/vehicle", "/attributes/vehicle"])
                .filter(|x| x.is_object())
                .unwrap_or(c);
            Connection {
                user: text(
                    c,
                    &[
                        "/user_id",
                        "/userId",
                        "/user/id",
                        "/relationships/user/data/id",
                    ],
                ),
                vehicle: text(
                    c,
                    &[
                        "/vehicle_id",
                        "/vehicleId",
                        "/vehicle/id",
                        "/relationships/vehicle/data/id",
                    ],
                ),
                make: text(vehicle, &["/make"]),
                model: text(vehicle, &["/model"]),
                year: text(vehicle, &["/year"]),
                mode: text(vehicle, &["/mode"]),
                powertrain: text(
                    vehicle,
                    &["/powertrainType", "/powertrain_type", "/powertrain"],
                ),
            }
        })
        .filter(|r| !r.vehicle.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn upstream_signal(body: Value) -> Value {
        json!({
            "id": "x", "type": "signal",
            "attributes": { "code": "x", "body": body, "status": { "value": "SUCCESS" } },
            "meta": { "retrievedAt": 1, "oemUpdatedAt": 1 },
        })
    }

    #[test]
    fn signal_value_reads_compact_upstream_and_wrapped() {
        let compact =
            json!({ "code": "tractionbattery-stateofcharge", "value": 72, "unit": "percent" });
        let upstream = upstream_signal(json!({ "value": 72, "unit": "percent" }));
        let wrapped = json!({ "data": upstream.clone() });
        let compact_body = json!({ "code": "x", "body": { "value": 72, "unit": "percent" } });
        for v in [&compact, &upstream, &wrapped, &compact_body] {
            assert_eq!(signal_value(v), Some(&json!(72)), "{v}");
            assert_eq!(signal_unit(v), Some("percent"), "{v}");
        }
    }

    #[test]
    fn a_compact_status_object_is_not_mistaken_for_a_value() {
        // The compact signal has `status` and may carry an object `value`; neither is the number.
        let v = json!({ "value": { "activeLimit": 85 }, "status": "SUCCESS" });
        assert_eq!(signal_value(&v), None);
        assert_eq!(charge_limit(&v), Some(85.0));
    }

    #[test]
    fn charge_limit_reads_every_shape() {
        let body = json!({ "activeLimit": 90, "unit": "percent", "values": [{ "limit": 90 }] });
        let shapes = [
            upstream_signal(body.clone()),
            json!({ "data": upstream_signal(body.clone()) }),
            json!({ "code": "charge-chargelimits", "body": body }),
            json!({ "code": "charge-chargelimits", "value": 90, "unit": "percent" }),
            json!({ "code": "charge-chargelimits", "body": { "values": [{ "limit": 90 }] } }),
        ];
        for v in &shapes {
            assert_eq!(charge_limit(v), Some(90.0), "{v}");
        }
    }

    #[test]
    fn locked_reads_bools_and_words() {
        assert_eq!(
            locked(&upstream_signal(json!({ "value": true }))),
            Some(true)
        );
        assert_eq!(locked(&json!({ "value": false })), Some(false));
        assert_eq!(locked(&json!({ "value": "LOCKED" })), Some(true));
        assert_eq!(locked(&json!({ "value": 3 })), None);
    }

    #[test]
    fn command_status_reads_compact_and_upstream() {
        let upstream = json!({ "data": { "attributes": { "status": { "value": "SUCCESS" } } } });
        assert_eq!(command_status(&upstream).as_deref(), Some("SUCCESS"));
        assert_eq!(
            command_status(&json!({ "command": "lock", "status": "PENDING" })).as_deref(),
            Some("PENDING")
        );
        assert_eq!(command_status(&json!({ "ok": true })), None);
        // A status object of another kind must not hide the command's status further down.
        let mixed = json!({ "status": { "code": 1 }, "data": upstream["data"].clone() });
        assert_eq!(command_status(&mixed).as_deref(), Some("SUCCESS"));
    }

    #[test]
    fn connections_reads_upstream_and_compact() {
        let upstream = json!({ "data": [{
            "id": "c1",
            "attributes": { "vehicle": { "make": "Tesla", "model": "Model 3", "year": 2023,
                                         "mode": "live", "powertrainType": "BEV" } },
            "relationships": { "user": { "data": { "id": "u1" } },
                               "vehicle": { "data": { "id": "v1" } } },
        }], "meta": { "totalCount": 1 } });
        let compact = json!({ "connections": [{
            "id": "c1", "user_id": "u1", "vehicle_id": "v1",
            "vehicle": { "make": "Tesla", "model": "Model 3", "year": 2023, "mode": "live",
                         "powertrain_type": "BEV" },
        }] });
        let flat = json!({ "connections": [{
            "user_id": "u1", "vehicle_id": "v1", "make": "Tesla", "model": "Model 3",
            "year": 2023, "mode": "live", "powertrain_type": "BEV",
        }] });
        let want = Connection {
            user: "u1".into(),
            vehicle: "v1".into(),
            make: "Tesla".into(),
            model: "Model 3".into(),
            year: "2023".into(),
            mode: "live".into(),
            powertrain: "BEV".into(),
        };
        for v in [&upstream, &compact, &flat] {
            assert_eq!(connections(v), vec![want.clone()], "{v}");
        }
        assert!(connections(&json!({ "error": {} })).is_empty());
    }
}

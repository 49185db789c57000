//! Shapes Smartcar's JSON:API answers into the compact results tools.yaml declares: small, typed,
//! timestamps as ISO-8601, links and envelopes dropped, secrets redacted.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use super::error::ToolError;
use crate::catalogue::{Location, Role, Shape, ToolSpec};

/// A successful answer, shaped.
#[derive(Debug, Clone, PartialEq)]
pub struct Shaped {
    pub structured: Value,
    /// The sentence the text content opens with (commands and deletions).
    pub sentence: Option<String>,
}

/// Any Smartcar timestamp as ISO-8601 UTC: epoch seconds (below 1e11), epoch milliseconds, or an
/// ISO string. Zero and unreadable values mean "unknown".
pub fn iso8601(v: &Value) -> Option<String> {
    let ms = match v {
        Value::Number(n) => {
            let f = n.as_f64()?;
            if f <= 0.0 || !f.is_finite() {
                return None;
            }
            if f < 1e11 { f * 1000.0 } else { f }
        }
        Value::String(s) => {
            if let Ok(d) = DateTime::parse_from_rfc3339(s.trim()) {
                return Some(
                    d.with_timezone(&Utc)
                        .to_rfc3339_opts(SecondsFormat::AutoSi, true),
                );
            }
            return match s.trim().parse::<f64>() {
                Ok(f) => iso8601(&json!(f)),
                Err(_) => Some(s.clone()),
            };
        }
        _ => return None,
    };
    DateTime::<Utc>::from_timestamp_millis(ms as i64)
        .map(|d| d.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

fn s(v: Option<&Value>) -> Value {
    match v {
        Some(Value::String(x)) => Value::String(x.clone()),
        Some(Value::Number(n)) => Value::String(n.to_string()),
        _ => Value::Null,
    }
}

/// `Value::pointer` without its allocations: serde_json builds two `String`s per token to undo
/// `~1` and `~0` (callgrind: 3,000 instructions for the three lookups of one signal). The
/// pointers here are literals without escapes; one with `~` still goes to serde_json.
fn at<'a>(v: &'a Value, pointer: &str) -> Option<&'a Value> {
    if pointer.contains('~') || !pointer.starts_with('/') {
        return v.pointer(pointer);
    }
    pointer[1..].split('/').try_fold(v, |v, token| match v {
        Value::Object(o) => o.get(token),
        Value::Array(a) => token
            .parse::<usize>()
            .ok()
            .filter(|_| token == "0" || !token.starts_with(['0', '+']))
            .and_then(|i| a.get(i)),
        _ => None,
    })
}

fn time(v: Option<&Value>) -> Value {
    v.and_then(iso8601)
        .map(Value::String)
        .unwrap_or(Value::Null)
}

/// The resource itself, whether bare or wrapped as `{data: {...}}`.
fn resource(doc: &Value) -> &Value {
    match doc.get("data") {
        Some(d @ Value::Object(_)) => d,
        _ => doc,
    }
}

fn items(doc: &Value) -> Vec<&Value> {
    match doc.get("data") {
        Some(Value::Array(a)) => a.iter().collect(),
        _ => Vec::new(),
    }
}

fn attrs(r: &Value) -> &Value {
    r.get("attributes").unwrap_or(&Value::Null)
}

fn drop_nulls(mut o: Map<String, Value>) -> Value {
    o.retain(|_, v| !v.is_null());
    Value::Object(o)
}

/// The spelling a model sees for a unit Smartcar writes in several ways: its pages drift between
/// versions (`amps` and `ampere`, `kWhr` and `kilowatt_hours`, `degrees-celsius` and `celsius`,
/// `kilometers-per-hour` and `kph`). A unit this table does not know passes through unchanged.
pub fn normalize_unit(unit: &str) -> String {
    let key: String = unit
        .trim()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '%' | '°'))
        .flat_map(char::to_lowercase)
        .collect();
    let canonical = match key.as_str() {
        "a" | "amp" | "amps" | "ampere" | "amperes" => "ampere",
        "c" | "°c" | "celsius" | "degreescelsius" | "degreecelsius" => "celsius",
        "f" | "°f" | "fahrenheit" | "degreesfahrenheit" => "fahrenheit",
        "kph" | "kmh" | "kmph" | "kilometersperhour" | "kilometresperhour" => "kph",
        "mph" | "milesperhour" => "miles_per_hour",
        "kwh" | "kwhr" | "kilowatthour" | "kilowatthours" => "kilowatt_hours",
        "w" | "watt" | "watts" => "watts",
        "kw" | "kilowatt" | "kilowatts" => "kilowatts",
        "v" | "volt" | "volts" => "volts",
        "count" | "counts" => "count",
        "%" | "percent" | "percentage" => "percent",
        "km" | "kilometer" | "kilometers" | "kilometre" | "kilometres" => "kilometers",
        "mi" | "mile" | "miles" => "miles",
        "l" | "liter" | "liters" | "litre" | "litres" => "liters",
        "gal" | "gallon" | "gallons" => "gallons",
        "min" | "mins" | "minute" | "minutes" => "minutes",
        "kpa" | "kilopascal" | "kilopascals" => "kPa",
        "psi" => "psi",
        _ => return unit.to_string(),
    };
    canonical.to_string()
}

fn unit_of(v: Option<&Value>) -> Value {
    match s(v) {
        Value::String(u) => Value::String(normalize_unit(&u)),
        other => other,
    }
}

/// Normalises every `unit` string inside a structured body (records, capacities, odometers).
fn normalize_units(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for (k, child) in o.iter_mut() {
                match child {
                    Value::String(u) if k == "unit" => *u = normalize_unit(u),
                    _ => normalize_units(child),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(normalize_units),
        _ => {}
    }
}

/// Splits a signal body into its single `value`, the rest of a structured `body`, and the
/// (normalised) unit. `{value, unit}` gives only `value`; `{value, unit, additionalValues}` gives
/// `value` and `body: {additionalValues}`; a body without `value` is all `body`.
fn split_body(body: Option<&Value>) -> (Value, Value, Value) {
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

fn compact_signal(r: &Value) -> Value {
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

fn page(doc: &Value) -> Value {
    let m = doc.get("meta").unwrap_or(&Value::Null);
    if m.is_null() {
        return Value::Null;
    }
    drop_nulls(Map::from_iter([
        (
            "number".to_string(),
            m.get("pageNumber")
                .or_else(|| m.get("page"))
                .cloned()
                .unwrap_or(Value::Null),
        ),
        (
            "size".to_string(),
            m.get("pageSize").cloned().unwrap_or(Value::Null),
        ),
        (
            "total".to_string(),
            m.get("totalCount").cloned().unwrap_or(Value::Null),
        ),
    ]))
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

fn signal_list(doc: &Value) -> Value {
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

fn connection(r: &Value) -> Value {
    let a = attrs(r);
    let v = a.get("vehicle").unwrap_or(&Value::Null);
    json!({
        "id": s(r.get("id")),
        "user_id": s(at(r, "/relationships/user/data/id")),
        "vehicle_id": s(at(r, "/relationships/vehicle/data/id")),
        "make": s(v.get("make")),
        "model": s(v.get("model")),
        "year": v.get("year").cloned().unwrap_or(Value::Null),
        "mode": s(v.get("mode")),
        "powertrain_type": s(v.get("powertrainType")),
        "permissions": a.get("permissions").cloned().unwrap_or(Value::Null),
        "created_at": time(at(r, "/meta/createdAt").or_else(|| a.get("createdAt"))),
    })
}

fn vehicle(r: &Value) -> Value {
    let a = attrs(r);
    json!({
        "id": s(r.get("id")),
        "make": s(a.get("make")),
        "model": s(a.get("model")),
        "year": a.get("year").cloned().unwrap_or(Value::Null),
        "powertrain_type": s(a.get("powertrainType")),
        "mode": s(a.get("mode")),
    })
}

fn application(r: &Value) -> Value {
    let a = attrs(r);
    json!({
        "id": s(r.get("id")),
        "name": s(a.get("name")),
        "description": s(a.get("description")),
        "created_at": time(a.get("createdAt").or_else(|| at(r, "/meta/createdAt"))),
        "updated_at": time(a.get("updatedAt").or_else(|| at(r, "/meta/updatedAt"))),
    })
}

/// Only labels: whatever the upstream calls its secret fields, none of them is copied.
fn secret(r: &Value) -> Value {
    let a = attrs(r);
    json!({
        "id": s(r.get("id")),
        "name": s(a.get("name").or_else(|| a.get("label"))),
        "hint": s(a.get("hint").or_else(|| a.get("maskedSecret")).or_else(|| a.get("last4"))),
        "created_at": time(a.get("createdAt").or_else(|| at(r, "/meta/createdAt"))),
    })
}

fn signal_codes(v: Option<&Value>) -> Value {
    match v {
        Some(Value::Array(a)) => Value::Array(
            a.iter()
                .map(|x| match x {
                    Value::String(_) => x.clone(),
                    other => s(other.get("code")),
                })
                .collect(),
        ),
        _ => Value::Null,
    }
}

/// A Dashboard webhook (https://smartcar.com/docs/api-reference/get-webhook).
fn webhook(r: &Value) -> Value {
    let a = attrs(r);
    json!({
        "id": s(r.get("id")),
        "name": s(a.get("name")),
        "callback_uri": s(a.get("callbackUri")),
        "enabled": a.get("isEnabled").cloned().unwrap_or(Value::Null),
        "auto_subscribe": a.get("autoSubscribe").cloned().unwrap_or(Value::Null),
        "triggers": signal_codes(a.get("triggers")),
        "data": signal_codes(a.get("data")),
        "error_callback_uri": s(a.get("errorCallbackUri")),
        "created_at": time(at(r, "/meta/createdAt").or_else(|| a.get("createdAt"))),
    })
}

/// A vehicle's subscription to a webhook (https://smartcar.com/docs/api-reference/get-subscription);
/// ids from `relationships`, or from `attributes` where a page version puts them there.
fn subscription(r: &Value) -> Value {
    let a = attrs(r);
    let rel = |name: &str, flat: &str| {
        s(at(r, &format!("/relationships/{name}/data/id")).or_else(|| a.get(flat)))
    };
    let v = a.get("vehicle").unwrap_or(&Value::Null);
    json!({
        "id": s(r.get("id")),
        "webhook_id": rel("webhook", "webhookId"),
        "user_id": rel("user", "userId"),
        "vehicle_id": rel("vehicle", "vehicleId"),
        "make": s(v.get("make")),
        "model": s(v.get("model")),
        "year": v.get("year").cloned().unwrap_or(Value::Null),
        "mode": s(v.get("mode")),
        "created_at": time(at(r, "/meta/createdAt")),
    })
}

/// `subscribe_vehicle`: Smartcar answers 202 ("subscription creation in progress"); a 409 means
/// the subscription exists, which is the state the caller wanted (see `already_subscribed`).
fn subscribed(spec: &ToolSpec, args: &Map<String, Value>, status: u16, doc: &Value) -> Shaped {
    let message = s(at(doc, "/meta/message"));
    let structured = json!({
        "status": if status == 202 { "ACCEPTED" } else { "SUBSCRIBED" },
        "http_status": status,
        "message": message,
        "webhook_id": spec.arg(Role::Webhook, args),
        "vehicle_id": spec.arg(Role::Vehicle, args),
        "user_id": spec.arg(Role::User, args),
    });
    let sentence = spec.says.map(|t| fill(t, args)).map(|t| {
        if status == 202 {
            format!("{t} Smartcar is still creating it: list_subscriptions shows it once done.")
        } else {
            t
        }
    });
    Shaped {
        structured,
        sentence,
    }
}

/// The answer for a 409 from `subscribe_vehicle`: already subscribed, not a failure.
pub fn already_subscribed(spec: &ToolSpec, args: &Map<String, Value>, detail: &str) -> Shaped {
    let text = |role| {
        spec.arg(role, args)
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string()
    };
    let structured = json!({
        "status": "ALREADY_SUBSCRIBED",
        "http_status": 409,
        "message": detail,
        "webhook_id": spec.arg(Role::Webhook, args),
        "vehicle_id": spec.arg(Role::Vehicle, args),
        "user_id": spec.arg(Role::User, args),
    });
    Shaped {
        structured,
        sentence: Some(format!(
            "Vehicle {} is already subscribed to webhook {}; nothing changed.",
            text(Role::Vehicle),
            text(Role::Webhook)
        )),
    }
}

/// One make/model/region/powertrain with what it can do
/// (https://smartcar.com/docs/api-reference/compatible-vehicles): signal and command codes apart,
/// years as "2016-2026". Capabilities keep `capability` or, failing that, `code`.
fn model_capability(r: &Value) -> Value {
    let a = attrs(r);
    let years = a.get("years").unwrap_or(&Value::Null);
    let year = |k: &str| match years.get(k) {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => "?".to_string(),
    };
    let years = match years {
        Value::Null => Value::Null,
        Value::Object(_) => Value::String(format!("{}-{}", year("start"), year("end"))),
        other => other.clone(),
    };
    let mut signals = Vec::new();
    let mut commands = Vec::new();
    let mut other = Vec::new();
    if let Some(Value::Array(caps)) = a.get("capabilities") {
        for c in caps {
            let code = s(c.get("capability").or_else(|| c.get("code")));
            match c.get("type").and_then(Value::as_str) {
                Some("signal") => signals.push(code),
                Some("command") => commands.push(code),
                _ => other.push(code),
            }
        }
    }
    let mut o = Map::from_iter([
        ("id".to_string(), s(r.get("id"))),
        ("make".to_string(), s(a.get("make"))),
        ("model".to_string(), s(a.get("model"))),
        ("region".to_string(), s(a.get("region"))),
        ("powertrain_type".to_string(), s(a.get("powertrainType"))),
        ("years".to_string(), years),
        ("signals".to_string(), Value::Array(signals)),
        ("commands".to_string(), Value::Array(commands)),
    ]);
    if !other.is_empty() {
        o.insert("other".into(), Value::Array(other));
    }
    Value::Object(o)
}

/// Replaces `{param}` in a `says` or `asks` template with the call's arguments.
pub fn fill(template: &str, args: &Map<String, Value>) -> String {
    let mut out = template.to_string();
    for (k, v) in args {
        let text = match v {
            Value::String(x) => x.clone(),
            other => other.to_string(),
        };
        out = out.replace(&format!("{{{k}}}"), &text);
    }
    out
}

fn body_parameters(spec: &ToolSpec, args: &Map<String, Value>) -> Value {
    let p: Map<String, Value> = spec
        .params
        .iter()
        .filter(|p| p.location == Location::Body)
        .filter_map(|p| args.get(p.name).map(|v| (p.name.to_string(), v.clone())))
        .collect();
    if p.is_empty() {
        Value::Null
    } else {
        Value::Object(p)
    }
}

/// Statuses that end a command. Smartcar documents `SUCCESS`; a failure is implied ("read the
/// body to determine success or failure") and spelled `ERROR` in per-signal statuses.
fn is_failure(status: &str) -> bool {
    matches!(status, "ERROR" | "FAILURE" | "FAILED")
}

/// The answer to a command (`command-execution`) or a charge schedule
/// (`charge-schedule-execution`). Smartcar: 200 means done synchronously, 202 means still running
/// ("always read the body"). What the body's `status.value` says is reported as it is; only when
/// the body has none does the HTTP status speak (`SUCCESS` for 200, `ACCEPTED` for 202), and
/// `status_from` says which one it was. Commands return no updated state, so the result names the
/// signal that shows it.
fn command(
    spec: &ToolSpec,
    args: &Map<String, Value>,
    status: u16,
    body: &Value,
) -> Result<Shaped, ToolError> {
    let r = resource(body);
    let a = attrs(r);
    let reported = reported_status(body);
    if reported.as_deref().is_some_and(is_failure) {
        return Err(ToolError::CommandFailed {
            status,
            detail: a
                .pointer("/status/error")
                .or_else(|| body.get("error"))
                .cloned(),
            response: body.clone(),
        });
    }
    let (outcome, from) = match &reported {
        Some(s) => (s.clone(), "body"),
        None if status == 202 => ("ACCEPTED".to_string(), "http"),
        None => ("SUCCESS".to_string(), "http"),
    };
    let running = outcome != "SUCCESS";
    let parameters = a
        .get("parameters")
        .filter(|p| p.is_object())
        .cloned()
        .unwrap_or_else(|| body_parameters(spec, args));
    let vehicle_id = spec.target(args);
    let structured = json!({
        "command": a.get("commandType").and_then(Value::as_str).unwrap_or(spec.name),
        "status": outcome,
        "status_from": from,
        "http_status": status,
        "running": running,
        "execution_mode": s(a.get("executionMode")),
        "vehicle_id": vehicle_id,
        "parameters": parameters,
        "schedule_id": s(a.get("scheduleId")),
        "executed_at": time(at(r, "/meta/executedAt")),
        "completed_at": time(at(r, "/meta/completedAt")),
        "id": s(r.get("id")),
        "confirm_with": spec.confirm_signal,
    });
    let target = vehicle_id.unwrap_or("the vehicle");
    let check = match spec.confirm_signal {
        Some(c) => format!("read {c} with get_signal to confirm"),
        None => "no signal reports this; check in the vehicle to confirm".to_string(),
    };
    let sentence = if running {
        let said = match from {
            "body" => format!(" (Smartcar reports {outcome})"),
            _ => String::new(),
        };
        format!(
            "{} accepted for {target}, still running{said}: {check}.",
            spec.title
        )
    } else {
        let done = spec
            .says
            .map(|t| fill(t, args))
            .unwrap_or_else(|| format!("{} done on {target}.", spec.title));
        let check = match spec.confirm_signal {
            Some(c) => format!("Commands return no updated state: read {c} to see it."),
            None => "Commands return no updated state and no signal reports this one.".to_string(),
        };
        format!("{done} {check}")
    };
    Ok(Shaped {
        structured,
        sentence: Some(sentence),
    })
}

/// Shapes a 2xx answer (`body` is `None` when it was empty) into the tool's declared result.
pub fn shape(
    spec: &ToolSpec,
    args: &Map<String, Value>,
    status: u16,
    body: Option<&Value>,
) -> Result<Shaped, ToolError> {
    let raw = spec.wants_raw(args);
    let empty = Value::Null;
    let doc = body.unwrap_or(&empty);
    if raw {
        let structured = if doc.is_object() {
            doc.clone()
        } else {
            json!({ "data": doc })
        };
        return Ok(Shaped {
            structured,
            sentence: None,
        });
    }
    let list = |f: fn(&Value) -> Value| Value::Array(items(doc).into_iter().map(f).collect());
    let structured = match spec.output {
        Shape::Command => return command(spec, args, status, doc),
        Shape::Deletion => {
            let sentence = spec.says.map(|t| fill(t, args));
            return Ok(Shaped {
                structured: json!({ "command": spec.name, "status": "SUCCESS", "id": spec.target(args) }),
                sentence,
            });
        }
        Shape::Signal => compact_signal(resource(doc)),
        Shape::SignalList => signal_list(doc),
        Shape::Connection => connection(resource(doc)),
        Shape::ConnectionList => json!({ "connections": list(connection), "page": page(doc) }),
        Shape::Vehicle => vehicle(resource(doc)),
        Shape::Application => application(resource(doc)),
        Shape::ApplicationList => json!({ "applications": list(application) }),
        Shape::SecretList => json!({ "secrets": list(secret) }),
        Shape::Webhook => webhook(resource(doc)),
        Shape::WebhookList => json!({ "webhooks": list(webhook), "page": page(doc) }),
        Shape::SubscriptionList => {
            json!({ "subscriptions": list(subscription), "page": page(doc) })
        }
        Shape::Subscription => return Ok(subscribed(spec, args, status, doc)),
        Shape::Compatibility => json!({ "models": list(model_capability), "page": page(doc) }),
    };
    let sentence = if spec.annotations.read_only {
        structured
            .get("note")
            .and_then(Value::as_str)
            .map(str::to_string)
    } else {
        spec.says.map(|t| fill(t, args))
    };
    Ok(Shaped {
        structured,
        sentence,
    })
}

/// The status a command's answer reports in its body (`data.attributes.status.value`, or a plain
/// string), upper-cased; `None` when the body says nothing.
pub fn reported_status(body: &Value) -> Option<String> {
    let candidates = [at(body, "/data/attributes/status"), at(body, "/status")];
    for c in candidates.into_iter().flatten() {
        let s = match c {
            Value::String(s) => Some(s.as_str()),
            Value::Object(o) => o.get("value").and_then(Value::as_str),
            _ => None,
        };
        if let Some(s) = s {
            return Some(s.to_ascii_uppercase());
        }
    }
    None
}

/// Removes every key named in `redact` (ignoring case, `_` and `-`) at any depth.
pub fn redact(value: &mut Value, redact: &[&str]) {
    if redact.is_empty() {
        return;
    }
    fn norm(s: &str) -> String {
        s.chars()
            .filter(|c| *c != '_' && *c != '-')
            .map(|c| c.to_ascii_lowercase())
            .collect()
    }
    let keys: Vec<String> = redact.iter().map(|k| norm(k)).collect();
    fn walk(v: &mut Value, keys: &[String], norm: fn(&str) -> String) {
        match v {
            Value::Object(o) => {
                o.retain(|k, _| !keys.contains(&norm(k)));
                for child in o.values_mut() {
                    walk(child, keys, norm);
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|c| walk(c, keys, norm)),
            _ => {}
        }
    }
    walk(value, &keys, norm);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_reads_what_value_pointer_reads() {
        let doc = json!({
            "meta": { "retrievedAt": 1, "": { "x": 2 } },
            "a": [10, [20, 21], { "b/c": 3, "d~e": 4 }],
            "0": "zero", "s": "str"
        });
        for p in [
            "",
            "/",
            "/meta",
            "/meta/retrievedAt",
            "/meta//x",
            "/meta/missing",
            "/a/0",
            "/a/1/1",
            "/a/01",
            "/a/+1",
            "/a/-1",
            "/a/3",
            "/a/2/b~1c",
            "/a/2/d~0e",
            "/0",
            "/s/0",
            "meta",
            "/a/2/b/c",
            "/a/18446744073709551616",
        ] {
            assert_eq!(at(&doc, p), doc.pointer(p), "{p:?}");
        }
    }

    #[test]
    fn timestamps_in_seconds_milliseconds_and_iso_become_iso() {
        assert_eq!(iso8601(&json!(1696156800)).unwrap(), "2023-10-01T10:40:00Z");
        assert_eq!(
            iso8601(&json!(1752104218549u64)).unwrap(),
            "2025-07-09T23:36:58.549Z"
        );
        assert_eq!(
            iso8601(&json!("2024-01-01T12:00:00+02:00")).unwrap(),
            "2024-01-01T10:00:00Z"
        );
        assert_eq!(iso8601(&json!(0)), None);
        assert_eq!(iso8601(&json!(null)), None);
    }

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

    #[test]
    fn every_upstream_unit_spelling_reaches_the_model_one_way() {
        for (upstream, seen) in [
            ("amps", "ampere"),
            ("ampere", "ampere"),
            ("A", "ampere"),
            ("degrees-celsius", "celsius"),
            ("celsius", "celsius"),
            ("kph", "kph"),
            ("kilometers-per-hour", "kph"),
            ("km/h", "kph"),
            ("kWhr", "kilowatt_hours"),
            ("kWh", "kilowatt_hours"),
            ("kilowatt_hours", "kilowatt_hours"),
            ("count", "count"),
            ("watts", "watts"),
            ("miles_per_hour", "miles_per_hour"),
            ("mph", "miles_per_hour"),
            ("Percent", "percent"),
            ("kPa", "kPa"),
        ] {
            assert_eq!(normalize_unit(upstream), seen, "{upstream}");
        }
        // An unknown unit is not guessed at.
        assert_eq!(
            normalize_unit("furlongs_per_fortnight"),
            "furlongs_per_fortnight"
        );
        // Units nested in a structured body are normalised too.
        let (_, b, _) = split_body(Some(
            &json!({ "values": [{ "energyAdded": 9.8, "unit": "kWhr" }] }),
        ));
        assert_eq!(b["values"][0]["unit"], "kilowatt_hours");
    }
}

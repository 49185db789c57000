//! The records tools return: connections, vehicles, applications and their secrets' labels,
//! webhooks, subscriptions and Compatibility API models.

use serde_json::{Map, Value, json};

use super::Shaped;
use super::fill;
use super::jsonapi::{at, attrs, s, time};
use crate::catalogue::{Role, ToolSpec};

pub(super) fn connection(r: &Value) -> Value {
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

pub(super) fn vehicle(r: &Value) -> Value {
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

pub(super) fn application(r: &Value) -> Value {
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
pub(super) fn secret(r: &Value) -> Value {
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
pub(super) fn webhook(r: &Value) -> Value {
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
pub(super) fn subscription(r: &Value) -> Value {
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
pub(super) fn subscribed(
    spec: &ToolSpec,
    args: &Map<String, Value>,
    status: u16,
    doc: &Value,
) -> Shaped {
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
pub(super) fn model_capability(r: &Value) -> Value {
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

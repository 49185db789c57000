//! The JSON Schemas a tool publishes, computed from the IR at build time.

use serde_json::{Map, Value, json};

use super::ir::{Param, ParamType, Tool};

/// The one schema every id shares: a single, clean path segment or header value.
pub fn id_schema() -> Value {
    json!({
        "type": "string",
        "minLength": 1,
        "maxLength": 128,
        "pattern": "^[^\\x00-\\x1F\\x7F]*$",
        "not": { "enum": [".", ".."] }
    })
}

fn bound(p: &Param, v: f64) -> Value {
    if p.ty == ParamType::Integer {
        json!(v as i64)
    } else {
        json!(v)
    }
}

pub fn param_schema(p: &Param, signal_codes: &[String]) -> Value {
    let mut s = match p.ty {
        ParamType::Id => id_schema(),
        ParamType::String => json!({ "type": "string" }),
        ParamType::Integer => json!({ "type": "integer" }),
        ParamType::Number => json!({ "type": "number" }),
        ParamType::Boolean => json!({ "type": "boolean" }),
        ParamType::SignalCode => json!({ "type": "string", "enum": signal_codes }),
    };
    let obj = s.as_object_mut().expect("schema literal is an object");
    if !p.enum_values.is_empty() {
        obj.insert("enum".into(), json!(p.enum_values));
    }
    if let Some(min) = p.minimum {
        obj.insert("minimum".into(), bound(p, min));
    }
    if let Some(max) = p.maximum {
        obj.insert("maximum".into(), bound(p, max));
    }
    obj.insert("description".into(), json!(p.description));
    s
}

pub fn input_schema(tool: &Tool, signal_codes: &[String]) -> Value {
    let mut properties = Map::new();
    for p in &tool.params {
        properties.insert(p.name.clone(), param_schema(p, signal_codes));
    }
    let required: Vec<&str> = tool
        .params
        .iter()
        .filter(|p| p.required)
        .map(|p| p.name.as_str())
        .collect();
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false
    })
}

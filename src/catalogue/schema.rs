//! The JSON Schemas a tool publishes, computed from its spec: by the generator, which stores them
//! as text in the tables, and by tests holding results against the error part.

use serde_json::{Map, Value, json};

use super::spec::{ParamSpec, ParamType, ToolSpec};

/// What every id matches: 1 to 128 letters, digits, `-`, `_`, `.` and `:` only. Smartcar's ids
/// are opaque tokens, so anything else (a separator in any encoding: `/`, `\`, `%`, `?`, `#`,
/// Unicode slashes; whitespace; control characters) can never be a real id and is refused before a
/// request. The length sits in the pattern rather than in minLength/maxLength: the model reads
/// this schema once per id parameter in every tools/list, and the pattern says the same in fewer
/// bytes.
pub const ID_PATTERN: &str = "^[A-Za-z0-9_.:-]{1,128}$";
/// The longest id accepted, in characters.
pub const ID_MAX_CHARS: usize = 128;
/// The id rule in words, for refusals and descriptions.
pub const ID_RULE: &str =
    "an id is 1 to 128 letters, digits, `-`, `_`, `.` or `:`, and is not `.` or `..`";

/// The same rule in code: what the schema below accepts.
pub fn is_valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= ID_MAX_CHARS
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The one schema every id shares: a single, clean path segment or header value. `.` and `..`
/// match the pattern but are refused by the server (`tool::arguments`) rather than spelled here:
/// no model sends them by mistake, and a `not` clause on every id cost each tools/list about 800
/// bytes.
fn id_schema() -> Value {
    json!({ "type": "string", "pattern": ID_PATTERN })
}

/// `HH:MM`, 00:00 to 23:59.
/// `\d` is ASCII digits only in the ECMA-262 dialect JSON Schema uses (and in the validator here).
pub const TIME_PATTERN: &str = "^([01]\\d|2[0-3]):[0-5]\\d$";

/// A free-form name (`ParamType::Name`): 1 to 64 letters, digits, spaces and `. _ & ' + -`.
/// Enough for every make and powertrain Smartcar lists; nothing longer can be one, and a
/// client's free text must not grow what is cached by it.
pub const NAME_PATTERN: &str = "^[A-Za-z0-9 ._&'+-]{1,64}$";
/// The name rule in words, for refusals.
pub const NAME_RULE: &str = "1 to 64 letters, digits, spaces and `. _ & ' + -`";

/// A whole bound is written without a fraction (`90`, not `90.0`) even for a number: the same
/// value in JSON Schema, in fewer bytes of what the model reads.
fn bound(p: &ParamSpec, v: f64) -> Value {
    if p.ty == ParamType::Integer || (v.fract() == 0.0 && v.abs() < 1e15) {
        json!(v as i64)
    } else {
        json!(v)
    }
}

fn param_schema(p: &ParamSpec) -> Value {
    let mut s = match p.ty {
        ParamType::Id => id_schema(),
        ParamType::String => json!({ "type": "string" }),
        ParamType::Integer => json!({ "type": "integer" }),
        ParamType::Number => json!({ "type": "number" }),
        ParamType::Boolean => json!({ "type": "boolean" }),
        // Not an enum of every code: that list was a quarter of all the model read. The server
        // checks codes itself (aliases mapped, unknown ones answered with the closest codes), and
        // the whole list is the resource smartcar://signals.
        ParamType::SignalCode => json!({ "type": "string", "minLength": 1 }),
        ParamType::Time => json!({ "type": "string", "pattern": TIME_PATTERN }),
        ParamType::Name => json!({ "type": "string", "pattern": NAME_PATTERN }),
        ParamType::Object if p.keys.is_empty() => object_schema(p.fields),
        // One schema for every key's value rather than a copy per key: seven weekdays would
        // otherwise repeat the same members seven times in what the model reads.
        ParamType::Object => json!({
            "type": "object",
            "propertyNames": { "enum": p.keys },
            "additionalProperties": object_schema(p.fields),
            "minProperties": 1
        }),
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
    if !p.examples.is_empty() {
        obj.insert("examples".into(), json!(p.examples));
    }
    if !p.description.is_empty() {
        obj.insert("description".into(), json!(p.description));
    }
    s
}

pub fn input_schema(tool: &ToolSpec) -> Value {
    let mut schema = object_schema(tool.params);
    schema["additionalProperties"] = json!(false);
    schema
}

/// An object of these members: the arguments of a tool (closed by the caller, so a misspelt
/// argument is refused), or an object parameter's fields. Those stay open: the bodies that need
/// objects are known only from third parties, so a member Smartcar takes that the catalogue does
/// not name is sent as given rather than refused; the named members are still checked.
fn object_schema(members: &[ParamSpec]) -> Value {
    let mut properties = Map::new();
    for p in members {
        properties.insert(p.name.to_string(), param_schema(p));
    }
    let required: Vec<&str> = members
        .iter()
        .filter(|p| p.required)
        .map(|p| p.name)
        .collect();
    json!({ "type": "object", "properties": properties, "required": required })
}

/// What every tool error carries in `structuredContent.error`.
pub fn error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "status": { "type": ["integer", "null"] },
                    "type": { "type": ["string", "null"] },
                    "code": { "type": ["string", "null"] },
                    "detail": {},
                    "hint": { "type": ["string", "null"] },
                    "retriable": { "type": ["boolean", "null"] },
                    "retry_after_seconds": { "type": ["integer", "null"] },
                    "request_id": { "type": ["string", "null"] }
                }
            }
        }
    })
}

/// The result of a dry run: the request that would have been sent.
pub fn dry_run_schema() -> Value {
    json!({
        "type": "object",
        "required": ["dry_run", "request"],
        "properties": { "dry_run": { "type": "boolean" }, "request": { "type": "object" } }
    })
}

/// Smartcar's own JSON:API document, returned unchanged with `raw: true`.
pub fn raw_schema() -> Value {
    // A document (`data`), or a bare resource as the single-signal endpoint answers.
    json!({ "type": "object", "anyOf": [{ "required": ["data"] }, { "required": ["id", "type"] }] })
}

/// A tool's published outputSchema: everything it can return (its shape's schema, an error, a
/// dry run, and Smartcar's own document for `raw` tools), so clients that validate
/// structuredContent (even on errors) never reject a real answer.
pub fn output_schema(tool: &ToolSpec, shape_schema: &Value) -> Value {
    let mut branches = vec![shape_schema.clone(), error_schema(), dry_run_schema()];
    if tool.raw {
        branches.push(raw_schema());
    }
    portable(json!({ "type": "object", "anyOf": branches }))
}

/// Any JSON value, spelled so that single-`type` dialects can read it.
fn any_value() -> Vec<Value> {
    ["string", "number", "boolean", "object", "array", "null"]
        .iter()
        .map(|t| json!({ "type": t }))
        .collect()
}

/// The same schema in the portable spelling strict hosts expect (MCP Inspector `--strict`): a
/// `type` list becomes `anyOf` branches of one `type` each, and a schema that constrains nothing
/// says it takes any value. Accepts exactly what the input accepted.
pub fn portable(schema: Value) -> Value {
    let Value::Object(mut o) = schema else {
        return schema;
    };
    for key in ["properties", "patternProperties", "$defs", "definitions"] {
        if let Some(Value::Object(map)) = o.get_mut(key) {
            for v in map.values_mut() {
                *v = portable(v.take());
            }
        }
    }
    for key in ["anyOf", "oneOf", "allOf", "prefixItems"] {
        if let Some(Value::Array(list)) = o.get_mut(key) {
            for v in list.iter_mut() {
                *v = portable(v.take());
            }
        }
    }
    for key in ["items", "additionalProperties", "not", "contains"] {
        if let Some(v @ Value::Object(_)) = o.get_mut(key) {
            *v = portable(v.take());
        }
    }
    let types: Option<Vec<Value>> = match o.get("type") {
        Some(Value::Array(ts)) => Some(ts.iter().map(|t| json!({ "type": t })).collect()),
        _ => None,
    };
    if let Some(branches) = types {
        o.remove("type");
        add_any_of(&mut o, branches);
    }
    const ANNOTATIONS: [&str; 5] = ["description", "title", "examples", "default", "$comment"];
    if o.keys().all(|k| ANNOTATIONS.contains(&k.as_str())) {
        add_any_of(&mut o, any_value());
    }
    Value::Object(o)
}

/// Adds `anyOf` branches, as an `allOf` of both lists when the schema already has one.
fn add_any_of(o: &mut Map<String, Value>, branches: Vec<Value>) {
    match o.remove("anyOf") {
        Some(existing) => {
            let all = vec![json!({ "anyOf": existing }), json!({ "anyOf": branches })];
            match o.get_mut("allOf") {
                Some(Value::Array(a)) => a.extend(all),
                _ => {
                    o.insert("allOf".into(), Value::Array(all));
                }
            }
        }
        None => {
            o.insert("anyOf".into(), Value::Array(branches));
        }
    }
}

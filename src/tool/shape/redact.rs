//! Redaction: secret material removed from a result before a model sees it, by key, at any depth.

use serde_json::Value;

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

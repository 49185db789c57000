//! Keeps a result under the size cap (`SMARTCAR_MAX_RESULT_BYTES`) by cutting its largest lists
//! at whole items, saying so in the result; the JSON stays whole.

use serde_json::{Map, Value, json};

use super::result::json_text;

/// `cut` plus the compact JSON text of the result, serializing it once when it fits (the
/// common case on every call) instead of once to measure and once more for the text.
pub fn serialize_within(v: Value, cap: usize) -> (Value, String) {
    let text = json_text(&v);
    if text.len() <= cap {
        return (v, text);
    }
    let cut = cut(v, cap);
    let text = json_text(&cut);
    (cut, text)
}

fn size(v: &Value) -> usize {
    serde_json::to_vec(v).map(|b| b.len()).unwrap_or(usize::MAX)
}

/// Cuts a result larger than `cap` bytes (as compact JSON) at a whole item of its largest lists,
/// and says so; the JSON stays whole.
pub fn cut(mut v: Value, cap: usize) -> Value {
    const HINT: &str = "The result was cut to fit the server's size cap (SMARTCAR_MAX_RESULT_BYTES): request a smaller page with pageSize and pageNumber, or read single values with get_signal.";
    let too_large = || json!({ "truncated": true, "truncation": { "kept": 0, "hint": "The result was too large to return even without its lists." } });
    if size(&v) <= cap {
        return v;
    }
    let Value::Object(o) = &mut v else {
        return too_large();
    };
    let mut lists: Vec<(String, usize)> = o
        .iter()
        .filter_map(|(k, v)| {
            v.as_array()
                .map(|a| (k.clone(), size(&Value::Array(a.clone()))))
        })
        .collect();
    lists.sort_by_key(|l| std::cmp::Reverse(l.1));
    o.insert("truncated".into(), Value::Bool(true));
    for (field, _) in lists {
        let all = o[&field].as_array().cloned().unwrap_or_default();
        let total = all.len();
        let place = |o: &mut Map<String, Value>, kept: usize| {
            o.insert(field.clone(), Value::Array(all[..kept].to_vec()));
            o.insert(
                "truncation".into(),
                json!({ "field": field, "kept": kept, "total": total, "hint": HINT }),
            );
            size(&Value::Object(o.clone())) <= cap
        };
        // The largest prefix of whole items that fits, by bisection.
        let (mut lo, mut hi) = (0usize, total);
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if place(o, mid) {
                lo = mid
            } else {
                hi = mid - 1
            }
        }
        if place(o, lo) {
            return v;
        }
    }
    too_large()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounding_cuts_whole_items_and_keeps_valid_json() {
        let rows: Vec<Value> = (0..1000)
            .map(|i| json!({ "code": format!("c-{i}"), "value": i }))
            .collect();
        let v = cut(json!({ "signals": rows, "errors": [] }), 2_000);
        assert!(size(&v) <= 2_000);
        assert_eq!(v["truncated"], true);
        let kept = v["truncation"]["kept"].as_u64().unwrap() as usize;
        assert_eq!(v["signals"].as_array().unwrap().len(), kept);
        assert!(kept > 10 && kept < 1000);
        assert_eq!(v["truncation"]["total"], 1000);
        let small = json!({ "signals": [1, 2] });
        assert_eq!(cut(small.clone(), 2_000), small);
        let (cut, text) =
            serialize_within(json!({ "signals": (0..1000).collect::<Vec<_>>() }), 500);
        assert!(text.len() <= 500);
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), cut);
    }
}

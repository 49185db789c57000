//! Verified commands (`--verify-commands`): the value a command's `verify` (tools.yaml) expects
//! of its confirming signal, and the comparison of a read against it.

use serde_json::{Map, Value};

use crate::catalogue::{Expect, Verify};

/// The value expected after a call with these arguments.
pub fn expected(check: &Verify, args: &Map<String, Value>) -> Value {
    match check.expect {
        Expect::Bool(b) => Value::Bool(b),
        Expect::Argument(name) => args.get(name).cloned().unwrap_or(Value::Null),
    }
}

/// The value read (in the compact signal result) and whether it matches; numbers compare by
/// value, so 80 and 80.0 match.
pub fn compare(check: &Verify, read: &Value, args: &Map<String, Value>) -> (Value, bool) {
    let got = read.pointer(check.at).cloned().unwrap_or(Value::Null);
    let want = expected(check, args);
    let same = match (got.as_f64(), want.as_f64()) {
        (Some(a), Some(b)) => a == b,
        _ => !got.is_null() && got == want,
    };
    (got, same)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::tool;
    use serde_json::json;

    #[test]
    fn reads_compare_with_what_the_command_asked_for() {
        let args = json!({ "percent": 80 }).as_object().cloned().unwrap();
        let limit = tool("set_charge_limit").and_then(|t| t.verify).unwrap();
        let read = json!({ "body": { "activeLimit": 80.0 } });
        assert_eq!(compare(&limit, &read, &args), (json!(80.0), true));
        let read = json!({ "body": { "activeLimit": 90 } });
        assert!(!compare(&limit, &read, &args).1);
        let lock = tool("lock_vehicle").and_then(|t| t.verify).unwrap();
        assert!(compare(&lock, &json!({ "value": true }), &args).1);
        assert_eq!(compare(&lock, &json!({}), &args), (Value::Null, false));
    }
}

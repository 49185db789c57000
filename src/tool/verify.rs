//! Verified commands (`--verify-commands`): which value of a command's `confirm_signal` shows
//! that it took effect, as one table, and the comparison of a read against it.

use serde_json::{Map, Value};

/// What the confirming signal must hold after the command.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Expect {
    /// This boolean.
    Bool(bool),
    /// The value the call sent in this argument.
    Argument(&'static str),
}

/// One command's check: where in the compact `get_signal` result of its `confirm_signal` to look
/// (a JSON pointer), and what must be there.
#[derive(Debug, Clone, Copy)]
pub struct Check {
    pub tool: &'static str,
    pub pointer: &'static str,
    pub expect: Expect,
}

/// Every command that can be verified. A command with a `confirm_signal` but no row here (the
/// charge schedules) is reported as not verifiable rather than guessed at.
pub const CHECKS: &[Check] = &[
    Check {
        tool: "lock_vehicle",
        pointer: "/value",
        expect: Expect::Bool(true),
    },
    Check {
        tool: "unlock_vehicle",
        pointer: "/value",
        expect: Expect::Bool(false),
    },
    Check {
        tool: "start_charge",
        pointer: "/value",
        expect: Expect::Bool(true),
    },
    Check {
        tool: "stop_charge",
        pointer: "/value",
        expect: Expect::Bool(false),
    },
    Check {
        tool: "set_charge_limit",
        pointer: "/body/activeLimit",
        expect: Expect::Argument("percent"),
    },
];

pub fn check(tool: &str) -> Option<&'static Check> {
    CHECKS.iter().find(|c| c.tool == tool)
}

impl Check {
    /// The value expected after a call with these arguments.
    pub fn expected(&self, args: &Map<String, Value>) -> Value {
        match self.expect {
            Expect::Bool(b) => Value::Bool(b),
            Expect::Argument(name) => args.get(name).cloned().unwrap_or(Value::Null),
        }
    }

    /// The value read (in the compact signal result) and whether it matches; numbers compare by
    /// value, so 80 and 80.0 match.
    pub fn compare(&self, read: &Value, args: &Map<String, Value>) -> (Value, bool) {
        let got = read.pointer(self.pointer).cloned().unwrap_or(Value::Null);
        let want = self.expected(args);
        let same = match (got.as_f64(), want.as_f64()) {
            (Some(a), Some(b)) => a == b,
            _ => !got.is_null() && got == want,
        };
        (got, same)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::tool;
    use serde_json::json;

    #[test]
    fn every_check_names_a_command_with_a_confirming_signal() {
        for c in CHECKS {
            let spec = tool(c.tool).unwrap_or_else(|| panic!("no tool {}", c.tool));
            assert!(spec.confirm_signal.is_some(), "{}", c.tool);
            assert!(!spec.is_read(), "{}", c.tool);
            if let Expect::Argument(a) = c.expect {
                assert!(spec.params.iter().any(|p| p.name == a), "{}: {a}", c.tool);
            }
        }
    }

    #[test]
    fn reads_compare_with_what_the_command_asked_for() {
        let args = json!({ "percent": 80 }).as_object().cloned().unwrap();
        let limit = check("set_charge_limit").unwrap();
        let read = json!({ "body": { "activeLimit": 80.0 } });
        assert_eq!(limit.compare(&read, &args), (json!(80.0), true));
        let read = json!({ "body": { "activeLimit": 90 } });
        assert!(!limit.compare(&read, &args).1);
        let lock = check("lock_vehicle").unwrap();
        assert!(lock.compare(&json!({ "value": true }), &args).1);
        assert_eq!(lock.compare(&json!({}), &args), (Value::Null, false));
    }
}

//! The memory backend (`--audit-db off`): nothing on disk, everything gone at exit. Audit rows
//! are kept so the backend answers like the others, but nothing reads them back in this mode
//! (`smartcar-mcp audit` reads a file, and there is none), so they are bounded tightly: at most
//! `MAX_ROWS` rows and `MAX_ROW_BYTES` of them, the oldest going first. A client's arguments are
//! its choice, and a long-running server must not grow with them.

use crate::sync::Locked;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use super::audit::{AuditState, Entry, Finish, Row, RowFilter, now};
use super::pushed::Pushed;
use super::usage::{Counts, Totals, utc_day};

/// Most audit rows held.
pub const MAX_ROWS: usize = 1_000;
/// Most bytes of audit rows held, as `row_bytes` counts them.
pub const MAX_ROW_BYTES: usize = 4 * 1024 * 1024;

#[derive(Default)]
struct Rows {
    last_id: i64,
    rows: VecDeque<(Row, usize)>,
    bytes: usize,
}

/// What a row costs, on the generous side: its texts, its arguments' JSON and bookkeeping.
fn row_bytes(r: &Row) -> usize {
    let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    256 + r.tool.len()
        + r.caller.len()
        + 2 * r.arguments.to_string().len()
        + opt(&r.vehicle_id)
        + opt(&r.user_id)
        + opt(&r.error)
        + opt(&r.principal)
        + opt(&r.principal_issuer)
}

#[derive(Default)]
pub struct Memory {
    rows: Mutex<Rows>,
    usage: Mutex<Totals>,
    /// The day and each vehicle's calls on it.
    calls: Mutex<(String, HashMap<String, u64>)>,
    pub(crate) pushed: Pushed,
    pub(crate) redeemed: Mutex<super::redeem::Redeemed>,
}

impl Memory {
    fn insert(&self, e: &Entry, state: AuditState, error: Option<&str>) -> i64 {
        let mut r = self.rows.locked();
        r.last_id += 1;
        let row = Row {
            id: r.last_id,
            at: now(),
            tool: e.tool.into(),
            arguments: serde_json::Value::Object(e.arguments.clone()),
            vehicle_id: e.vehicle.map(Into::into),
            user_id: e.user.map(Into::into),
            caller: e.caller.into(),
            principal: e.principal.map(Into::into),
            principal_issuer: e.principal_issuer.map(Into::into),
            confirmation: e.confirmation.clone(),
            state,
            outcome: None,
            http_status: None,
            request_id: None,
            error: error.map(Into::into),
            finished_at: None,
            replica: None,
        };
        let id = row.id;
        let bytes = row_bytes(&row);
        r.rows.push_back((row, bytes));
        r.bytes += bytes;
        while r.rows.len() > MAX_ROWS || r.bytes > MAX_ROW_BYTES {
            let Some((_, b)) = r.rows.pop_front() else {
                break;
            };
            r.bytes -= b;
        }
        id
    }

    pub(crate) fn begin(&self, e: &Entry) -> i64 {
        self.insert(e, AuditState::Sent, None)
    }

    pub(crate) fn note(&self, e: &Entry, state: &AuditState, why: Option<&str>) {
        self.insert(e, state.clone(), why);
    }

    pub(crate) fn finish(&self, id: i64, f: &Finish) {
        let mut r = self.rows.locked();
        // Ids only grow, so the row is found by bisection; one dropped by the bound is gone.
        if let Ok(i) = r.rows.binary_search_by_key(&id, |(row, _)| row.id) {
            let row = &mut r.rows[i].0;
            row.state = if f.ok {
                AuditState::Done
            } else {
                AuditState::Failed
            };
            row.outcome = f.outcome.map(Into::into);
            row.http_status = f.http_status;
            row.request_id = f.request_id.map(Into::into);
            row.error = f.error.map(Into::into);
            row.finished_at = Some(now());
        }
    }

    pub(crate) fn rows(&self, f: &RowFilter) -> Vec<Row> {
        let r = self.rows.locked();
        r.rows
            .iter()
            .map(|(row, _)| row)
            .filter(|row| row.matches(f))
            .cloned()
            .collect()
    }

    pub(crate) fn add_usage(&self, vehicle: &str, tool: &str, counts: Counts) {
        self.usage
            .locked()
            .entry((vehicle.to_string(), tool.to_string()))
            .or_default()
            .add(&counts);
    }

    pub(crate) fn usage_totals(&self) -> Totals {
        self.usage.locked().clone()
    }

    /// Today's counts, emptied when the UTC day has turned.
    fn today(&self) -> std::sync::MutexGuard<'_, (String, HashMap<String, u64>)> {
        let mut today = self.calls.locked();
        let now = utc_day();
        if today.0 != now {
            *today = (now, HashMap::new());
        }
        today
    }

    pub(crate) fn reserve_call(&self, vehicle: &str, limit: u64) -> bool {
        let mut today = self.today();
        let n = today.1.entry(vehicle.to_string()).or_default();
        (*n < limit).then(|| *n += 1).is_some()
    }

    pub(crate) fn calls_today(&self, vehicle: &str) -> u64 {
        self.today().1.get(vehicle).copied().unwrap_or(0)
    }

    pub(crate) fn adjust_calls(&self, vehicle: &str, delta: i64) {
        let mut today = self.today();
        if let Some(n) = today.1.get_mut(vehicle) {
            *n = n.saturating_add_signed(delta);
            if *n == 0 {
                today.1.remove(vehicle);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Confirmation;
    use serde_json::{Map, Value, json};

    fn entry<'a>(args: &'a Map<String, Value>) -> Entry<'a> {
        Entry {
            tool: "lock_vehicle",
            arguments: args,
            vehicle: Some("v-1"),
            user: None,
            caller: "stdio",
            principal: None,
            principal_issuer: None,
            confirmation: Confirmation::NotRequired,
        }
    }

    #[test]
    fn rows_are_bounded_by_count_and_by_bytes_oldest_first() {
        let m = Memory::default();
        let small = json!({ "vehicle_id": "v-1" }).as_object().cloned().unwrap();
        let first = m.begin(&entry(&small));
        for _ in 0..MAX_ROWS {
            m.begin(&entry(&small));
        }
        let rows = m.rows(&RowFilter::default());
        assert_eq!(rows.len(), MAX_ROWS);
        assert_eq!(rows[0].id, first + 1, "the oldest went first");
        // A finish for a row already dropped changes nothing.
        let done = Finish {
            ok: true,
            outcome: None,
            http_status: None,
            request_id: None,
            error: None,
        };
        m.finish(first, &done);
        assert!(
            m.rows(&RowFilter::default())
                .iter()
                .all(|r| r.finished_at.is_none())
        );

        let big = json!({ "vehicle_id": "v-1", "note": "x".repeat(64 * 1024) })
            .as_object()
            .cloned()
            .unwrap();
        for _ in 0..200 {
            m.begin(&entry(&big));
        }
        let held = m.rows.locked();
        assert!(held.bytes <= MAX_ROW_BYTES);
        assert_eq!(held.bytes, held.rows.iter().map(|(_, b)| b).sum::<usize>());
        assert!(held.rows.len() < 200);
    }
}

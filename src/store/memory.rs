//! The memory backend (`--audit-db off`): nothing on disk, everything gone at exit. Audit rows
//! are kept, up to `MAX_ROWS`, so the backend answers like the others, but nothing reads them
//! back in this mode: `smartcar-mcp audit` reads a file, and there is none.

use crate::sync::Locked;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use super::audit::{AuditState, Entry, Finish, Row, RowFilter, now};
use super::pushed::Pushed;
use super::usage::{Counts, Totals, utc_day};

/// Most audit rows held; the oldest go first, so a long-running server does not grow.
pub const MAX_ROWS: usize = 10_000;

#[derive(Default)]
struct Rows {
    last_id: i64,
    rows: VecDeque<Row>,
}

#[derive(Default)]
pub struct Memory {
    rows: Mutex<Rows>,
    usage: Mutex<Totals>,
    /// The day and each vehicle's calls on it.
    calls: Mutex<(String, HashMap<String, u64>)>,
    pub(crate) pushed: Pushed,
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
            confirmation: e.confirmation.clone(),
            state,
            outcome: None,
            http_status: None,
            request_id: None,
            error: error.map(Into::into),
            finished_at: None,
        };
        r.rows.push_back(row);
        while r.rows.len() > MAX_ROWS {
            r.rows.pop_front();
        }
        r.last_id
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
        if let Ok(i) = r.rows.binary_search_by_key(&id, |row| row.id) {
            let row = &mut r.rows[i];
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

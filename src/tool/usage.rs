//! Upstream calls counted per vehicle and per tool: made, saved (coalesced, cached, pushed) and
//! rate-limited; today's calls per vehicle for the daily guard. Kept in memory and, with the
//! audit database on, in its `usage` table, so the counts survive restarts.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, Once};

use serde_json::{Value, json};

use super::audit::Audit;
pub use super::audit::Counts;

/// The UTC day a count belongs to, as `YYYY-MM-DD`.
pub fn utc_day() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

/// The key for calls no vehicle is named in (listing connections, applications).
pub const NO_VEHICLE: &str = "";

pub struct Usage {
    /// (vehicle, tool) -> counts since the database began (or this process started).
    totals: Mutex<BTreeMap<(String, String), Counts>>,
    /// The day and each vehicle's upstream calls on it.
    today: Mutex<(String, HashMap<String, u64>)>,
    audit: Option<Arc<Audit>>,
    /// What the audit database holds is read back on first use, not at start, so an idle
    /// server never opens it.
    loaded: Once,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Usage {
    /// Counters starting from what the audit database holds, if there is one.
    pub fn new(audit: Option<Arc<Audit>>) -> Self {
        Usage {
            totals: Mutex::new(BTreeMap::new()),
            today: Mutex::new((utc_day(), HashMap::new())),
            audit,
            loaded: Once::new(),
        }
    }

    /// Every counter reads this first, so nothing is counted before the database's counts.
    fn load(&self) {
        self.loaded.call_once(|| {
            if let Some(a) = &self.audit {
                let day = utc_day();
                *lock(&self.totals) = a.usage_totals();
                *lock(&self.today) = (day.clone(), a.calls_on(&day));
            }
        });
    }

    pub fn record(&self, vehicle: Option<&str>, tool: &str, delta: Counts) {
        self.load();
        let vehicle = vehicle.unwrap_or(NO_VEHICLE);
        lock(&self.totals)
            .entry((vehicle.to_string(), tool.to_string()))
            .or_default()
            .add(&delta);
        let day = {
            let mut today = lock(&self.today);
            let now = utc_day();
            if today.0 != now {
                *today = (now, HashMap::new());
            }
            *today.1.entry(vehicle.to_string()).or_default() += delta.upstream_calls;
            today.0.clone()
        };
        if let Some(a) = &self.audit {
            a.add_usage(&day, vehicle, tool, delta);
        }
    }

    /// Upstream calls this vehicle has cost today (UTC).
    pub fn calls_today(&self, vehicle: &str) -> u64 {
        self.load();
        let today = lock(&self.today);
        if today.0 != utc_day() {
            return 0;
        }
        today.1.get(vehicle).copied().unwrap_or(0)
    }

    /// Everything counted, per vehicle and tool, with totals.
    pub fn snapshot(&self) -> Value {
        self.load();
        report(&lock(&self.totals), self.audit.is_some())
    }
}

/// The usage report `smartcar://usage` and `smartcar-mcp usage --json` show.
pub fn report(totals: &BTreeMap<(String, String), Counts>, persisted: bool) -> Value {
    let mut vehicles: BTreeMap<&str, (Counts, BTreeMap<&str, Counts>)> = BTreeMap::new();
    let mut all = Counts::default();
    for ((vehicle, tool), c) in totals {
        let v = vehicles.entry(vehicle.as_str()).or_default();
        v.0.add(c);
        v.1.insert(tool.as_str(), *c);
        all.add(c);
    }
    let vehicles: Vec<Value> = vehicles
        .into_iter()
        .map(|(v, (total, tools))| {
            json!({
                "vehicle_id": if v.is_empty() { Value::Null } else { json!(v) },
                "total": total,
                "saved": total.saved(),
                "tools": tools,
            })
        })
        .collect();
    json!({
        "total": all,
        "saved": all.saved(),
        "vehicles": vehicles,
        "persisted": persisted,
    })
}

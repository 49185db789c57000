//! Upstream calls counted per vehicle and per tool: made, saved (coalesced, cached, pushed) and
//! rate-limited, and which vehicle earns a counter of its own. Kept in memory and in the store,
//! so with the audit database on the counts survive restarts. (The daily allowance is
//! `tool::cap`'s.)

use crate::sync::Locked;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::sync::OnceCell;

pub use crate::store::Counts;
use crate::store::{Store, Totals};

/// The key for calls no vehicle is named in (listing connections, applications).
pub const NO_VEHICLE: &str = "";
/// The one key for calls naming a vehicle Smartcar did not answer for (404, or no answer at
/// all): those ids are the client's choice, and a counter each let a client grow memory, the
/// audit database and `smartcar://usage` without bound. No valid id starts with `#`.
pub const UNANSWERED: &str = "#unanswered";
/// The key for vehicles beyond `MAX_VEHICLES`; they share one daily count, so the daily cap
/// errs on the side of refusing.
pub const OTHER_VEHICLES: &str = "#other";
/// Most vehicles counted one by one.
pub const MAX_VEHICLES: usize = 10_000;

/// Whether a key counts many callers together rather than one vehicle.
fn is_shared_key(key: &str) -> bool {
    matches!(key, NO_VEHICLE | UNANSWERED | OTHER_VEHICLES)
}

pub struct Usage {
    /// (vehicle, tool) -> counts since the database began (or this process started), and the
    /// vehicles among them.
    totals: Mutex<(Totals, HashSet<String>)>,
    store: Arc<Store>,
    /// What the store holds is read back on first use, not at start, so an idle server never
    /// opens it.
    loaded: OnceCell<()>,
}

impl Usage {
    /// Counters starting from what the store holds.
    pub fn new(store: Arc<Store>) -> Self {
        Usage {
            totals: Mutex::new((BTreeMap::new(), HashSet::new())),
            store,
            loaded: OnceCell::new(),
        }
    }

    /// Every counter reads this first, so nothing is counted before the store's counts.
    async fn load(&self) {
        self.loaded
            .get_or_init(|| async {
                let totals = self.store.usage_totals().await.unwrap_or_default();
                let vehicles = totals
                    .keys()
                    .filter(|(v, _)| !is_shared_key(v))
                    .map(|(v, _)| v.clone())
                    .collect();
                *self.totals.locked() = (totals, vehicles);
            })
            .await;
    }

    /// Counts a call of `tool`; `answered` says whether Smartcar answered for the vehicle it
    /// names (anything but a 404 or no answer), which alone earns the vehicle its own counter.
    pub async fn record(&self, vehicle: Option<&str>, answered: bool, tool: &str, delta: Counts) {
        self.load().await;
        let key = {
            let mut totals = self.totals.locked();
            let (counts, vehicles) = &mut *totals;
            // Only a vehicle seen for the first time, and within the bound, joins the set: the
            // shared keys never do, and a known vehicle costs no allocation.
            let (key, new) = match vehicle {
                None => (NO_VEHICLE, false),
                Some(_) if !answered => (UNANSWERED, false),
                Some(v) if vehicles.contains(v) => (v, false),
                Some(_) if vehicles.len() >= MAX_VEHICLES => (OTHER_VEHICLES, false),
                Some(v) => (v, true),
            };
            if new {
                vehicles.insert(key.to_string());
            }
            counts
                .entry((key.to_string(), tool.to_string()))
                .or_default()
                .add(&delta);
            key
        };
        self.store.add_usage(key, tool, delta);
    }

    /// Vehicles counted one by one now (not the shared keys).
    pub async fn vehicles(&self) -> usize {
        self.load().await;
        self.totals.locked().1.len()
    }

    /// Everything counted, per vehicle and tool, with totals.
    pub async fn snapshot(&self) -> Value {
        self.load().await;
        report(&self.totals.locked().0, self.store.is_persistent())
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
            let mut row = json!({
                "vehicle_id": if v.is_empty() || v.starts_with('#') { Value::Null } else { json!(v) },
                "total": total,
                "saved": total.saved(),
                "tools": tools,
            });
            match v {
                UNANSWERED => row["vehicles"] = json!("every vehicle Smartcar did not answer for (404, or no answer)"),
                OTHER_VEHICLES => row["vehicles"] = json!(format!("vehicles beyond the first {MAX_VEHICLES}")),
                _ => {}
            }
            row
        })
        .collect();
    json!({
        "total": all,
        "saved": all.saved(),
        "vehicles": vehicles,
        "persisted": persisted,
    })
}

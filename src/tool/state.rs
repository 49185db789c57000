//! `AppState`: what every call shares for the life of the process: the Smartcar client (one HTTP
//! pool, one token cache), the serving settings, the tools this server serves, and the traffic
//! controls, usage counters and audit log that keep billed calls few and commands on record.

use crate::sync::Locked;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::cache::Cache;
use super::traffic::Traffic;
use super::usage::Usage;
use crate::catalogue::{TOOLS, ToolSpec, tool_index};
use crate::settings::{ServingSettings, Settings};
use crate::store::{Store, StoreError};
use crate::upstream::Executor;
use crate::upstream::webhook::VerifyWindow;

/// Why the state could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct AppState {
    pub exec: Executor,
    pub serving: ServingSettings,
    pub traffic: Traffic,
    /// Reads reused for `--cache-ttl-s`, Compatibility API answers for a day.
    pub cache: Cache,
    pub usage: Usage,
    /// The operator's daily allowance of upstream calls per vehicle.
    pub cap: super::cap::Cap,
    /// When Smartcar's webhook VERIFY is answered.
    pub verify_window: VerifyWindow,
    /// The vehicles and users connection answers named, for completing prompt arguments.
    pub seen: Seen,
    /// What outlives a call: the audit log, usage, the daily allowance and pushed state; in
    /// memory with `--audit-db off`.
    pub store: Arc<Store>,
    /// OAuth callers' users' connections, for the ownership check (`tool::tenancy`).
    pub owners: super::owners::Owners,
    /// Indices into `TOOLS`, in catalogue order.
    enabled: Vec<usize>,
    on: Vec<bool>,
}

impl AppState {
    pub fn new(settings: Settings, enabled: &[usize]) -> Result<Self, StateError> {
        let exec = Executor::new(Arc::new(settings.upstream))?;
        Self::with_executor(exec, settings.serving, enabled)
    }

    pub fn with_executor(
        exec: Executor,
        serving: ServingSettings,
        enabled: &[usize],
    ) -> Result<Self, StateError> {
        let store = match &serving.postgres {
            Some(url) => Store::postgres(url.expose(), &serving.replica_id, false)?,
            None => Store::open(serving.audit_db.as_deref())?,
        };
        Ok(Self::with_store(exec, serving, enabled, store))
    }

    /// `with_executor` with the store given instead of opened from `serving.audit_db`: the
    /// commit bench hands in one committing row by row.
    #[doc(hidden)]
    pub fn with_store(
        exec: Executor,
        serving: ServingSettings,
        enabled: &[usize],
        store: Store,
    ) -> Self {
        let store = Arc::new(store);
        // Validators are compiled on each tool's first call, not warmed up here: compiling all
        // of them kept the whole of jsonschema and regex resident in an idle server (and a second
        // thread busy through the cold start) for tools a session may never call. One tool's
        // validator costs its first call about 2 million instructions, once (callgrind).
        let mut on = vec![false; TOOLS.len()];
        for i in enabled {
            on[*i] = true;
        }
        AppState {
            traffic: Traffic::new(serving.max_concurrent_per_vehicle, serving.vehicle_wait),
            cache: Cache::new(serving.cache_ttl),
            usage: Usage::new(store.clone()),
            cap: super::cap::Cap::new(serving.max_calls_per_vehicle_per_day, store.clone()),
            verify_window: VerifyWindow::new(serving.webhook_verify_window),
            seen: Seen::default(),
            owners: Default::default(),
            store,
            exec,
            serving,
            enabled: enabled.to_vec(),
            on,
        }
    }

    /// The served tool of this name; `None` for unknown and filtered-out tools alike.
    pub fn lookup(&self, name: &str) -> Option<&'static ToolSpec> {
        tool_index(name).filter(|i| self.on[*i]).map(|i| &TOOLS[i])
    }

    /// The served tools, in catalogue order.
    pub fn tools(&self) -> impl Iterator<Item = &'static ToolSpec> + '_ {
        self.enabled.iter().map(|i| &TOOLS[*i])
    }

    /// Indices into `TOOLS` of the served tools.
    pub fn enabled(&self) -> &[usize] {
        &self.enabled
    }
}

/// The vehicle ids (with their users) that `list_connections` and `get_connection` answered
/// with, compact or raw.
#[derive(Default)]
pub struct Seen(Mutex<BTreeMap<String, Option<String>>>);

impl Seen {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Option<String>>> {
        self.0.locked()
    }

    /// Remembers the connections a result names.
    pub fn record(&self, result: &Value) {
        let rows: Vec<&Value> = match (result.get("connections"), result.get("data")) {
            (Some(Value::Array(a)), _) | (_, Some(Value::Array(a))) => a.iter().collect(),
            (_, Some(d @ Value::Object(_))) => vec![d],
            _ => vec![result],
        };
        let mut seen = self.lock();
        for row in rows {
            let id = |compact: &str, raw: &str| {
                row.get(compact)
                    .or_else(|| row.pointer(raw))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            if let Some(vehicle) = id("vehicle_id", "/relationships/vehicle/data/id") {
                let user = id("user_id", "/relationships/user/data/id");
                let entry = seen.entry(vehicle).or_default();
                if user.is_some() {
                    *entry = user;
                }
            }
        }
    }

    pub fn vehicles(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    pub fn users(&self) -> Vec<String> {
        let mut users: Vec<String> = self.lock().values().flatten().cloned().collect();
        users.sort();
        users.dedup();
        users
    }

    pub fn user_of(&self, vehicle: &str) -> Option<String> {
        self.lock().get(vehicle).cloned().flatten()
    }
}

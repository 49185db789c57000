//! `AppState`: what every call shares for the life of the process: the Smartcar client (one HTTP
//! pool, one token cache), the serving settings, the tools this server serves, and the traffic
//! controls, usage counters and audit log that keep billed calls few and commands on record.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::audit::{Audit, AuditError};
use super::pushed::Pushed;
use super::traffic::Traffic;
use super::usage::Usage;
use crate::catalogue::{TOOLS, ToolSpec, tool_index};
use crate::settings::{ServingSettings, Settings};
use crate::upstream::Executor;

/// Why the state could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

pub struct AppState {
    pub exec: Executor,
    pub serving: ServingSettings,
    pub traffic: Traffic,
    pub usage: Usage,
    /// Vehicle state Smartcar pushed by webhook.
    pub pushed: Pushed,
    /// The vehicles and users connection answers named, for completing prompt arguments.
    pub seen: Seen,
    /// Commands and deletions on record; `None` with `--audit-db off`.
    pub audit: Option<Arc<Audit>>,
    /// Indices into `TOOLS`, in catalogue order.
    enabled: Vec<usize>,
    on: Vec<bool>,
    /// Compatibility API answers by URL: Smartcar recommends caching them for at least 24 h.
    compatibility: Mutex<HashMap<String, Cached>>,
}

/// When an answer arrived, its HTTP status and its body.
type Cached = (Instant, u16, Option<Value>);

/// How long a Compatibility API answer is reused.
pub const COMPATIBILITY_TTL: Duration = Duration::from_secs(24 * 60 * 60);

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
        let audit = match &serving.audit_db {
            Some(path) => Some(Arc::new(Audit::open(path)?)),
            None => None,
        };
        // Validators are compiled on each tool's first call, not warmed up here: compiling all
        // of them kept the whole of jsonschema and regex resident in an idle server (and a second
        // thread busy through the cold start) for tools a session may never call. One tool's
        // validator costs its first call about 2 million instructions, once (callgrind).
        let mut on = vec![false; TOOLS.len()];
        for i in enabled {
            on[*i] = true;
        }
        Ok(AppState {
            traffic: Traffic::new(
                serving.max_concurrent_per_vehicle,
                serving.vehicle_wait,
                serving.cache_ttl,
            ),
            usage: Usage::new(audit.clone()),
            pushed: Pushed::new(serving.webhook_verify_window),
            seen: Seen::default(),
            audit,
            exec,
            serving,
            enabled: enabled.to_vec(),
            on,
            compatibility: Mutex::new(HashMap::new()),
        })
    }

    /// The served tool of this name; `None` for unknown and filtered-out tools alike.
    pub fn lookup(&self, name: &str) -> Option<&'static ToolSpec> {
        tool_index(name).filter(|i| self.on[*i]).map(|i| &TOOLS[i])
    }

    /// The served tools, in catalogue order.
    pub fn tools(&self) -> impl Iterator<Item = &'static ToolSpec> + '_ {
        self.enabled.iter().map(|i| &TOOLS[*i])
    }

    /// A cached Compatibility API answer (status, body) for this URL, younger than 24 h.
    pub fn cached_compatibility(&self, url: &str) -> Option<(u16, Option<Value>)> {
        let cache = self.compatibility.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(url)
            .filter(|(at, _, _)| at.elapsed() < COMPATIBILITY_TTL)
            .map(|(_, status, body)| (*status, body.clone()))
    }

    pub fn cache_compatibility(&self, url: &str, status: u16, body: Option<Value>) {
        let mut cache = self.compatibility.lock().unwrap_or_else(|e| e.into_inner());
        cache.retain(|_, (at, _, _)| at.elapsed() < COMPATIBILITY_TTL);
        cache.insert(url.to_string(), (Instant::now(), status, body));
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
        self.0.lock().unwrap_or_else(|p| p.into_inner())
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

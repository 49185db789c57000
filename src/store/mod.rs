//! The state that outlives a call, behind one `Store`: the audit log of commands, usage counters,
//! the daily allowance per vehicle as one atomic reservation, and the state Smartcar pushes by
//! webhook with the notice of each change, single-use confirmation answers and handshake sessions.
//! Three backends: memory (`--store off`), SQLite (the default, one process) and PostgreSQL
//! (`--store postgres://…`, shared by replicas; the cargo feature `postgres`, on by default).
//!
//! The interface names no backend's types: plain data in (`Entry`, `Finish`, `Counts`), plain
//! data out (`Row`, `Totals`), the UTC day taken from the backend's own clock, and calls that may
//! wait (`async`), so a networked backend can be one more variant. An enum rather than a trait
//! object keeps `AppState` non-generic and each call a `match`.
//!
//! Imports only `settings`-level helpers, never the pipeline, MCP or HTTP layers (tests/tidy.rs).

pub mod audit;
pub mod memory;
pub mod migrate;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "postgres")]
pub mod postgres_conn;
pub mod pushed;
pub mod redeem;
pub mod sqlite;
pub mod usage;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::broadcast;

pub use audit::{AuditState, Confirmation, Entry, Finish, Row, RowFilter};
pub use pushed::{Ingested, Pushed, PushedSignal, VehicleState};
pub use sqlite::Commit;
pub use usage::{Counts, Totals};

use crate::sync::Locked;
use memory::Memory;
use sqlite::Sqlite;

#[derive(Debug, Clone, thiserror::Error)]
#[error("{} {path}: {detail}", if path.contains("://") { "store" } else { "audit database" })]
pub struct StoreError {
    /// The SQLite file, or the shared store's URL without its password.
    pub path: String,
    pub detail: String,
}

impl StoreError {
    pub(crate) fn at(path: &Path, detail: String) -> Self {
        StoreError {
            path: path.display().to_string(),
            detail,
        }
    }
}

pub enum Store {
    Memory(Memory),
    Sqlite(Sqlite),
    #[cfg(feature = "postgres")]
    Postgres(postgres::Postgres),
}

pub use crate::settings::Location;

/// One call's place in today's allowance; given back if never settled (the call never left).
pub struct Reservation<'a> {
    store: &'a Store,
    vehicle: String,
    settled: bool,
}

impl Store {
    /// Nothing on disk.
    pub fn memory() -> Self {
        Store::Memory(Memory::default())
    }

    /// The SQLite file at `path`: its folder is made now, the file opened and migrated on first
    /// use, so an idle server never touches it.
    pub fn sqlite(path: &Path) -> Result<Self, StoreError> {
        Self::sqlite_with(path, Commit::Group)
    }

    /// `sqlite`, with the way rows are committed chosen (the commit bench compares both).
    #[doc(hidden)]
    pub fn sqlite_with(path: &Path, commit: Commit) -> Result<Self, StoreError> {
        Sqlite::open(path, commit).map(Store::Sqlite)
    }

    /// The SQLite file at `path`, for reading what it holds; a missing file is an error, and
    /// nothing is created or migrated.
    pub fn read_sqlite(path: &Path) -> Self {
        Store::Sqlite(Sqlite::read_only(path))
    }

    /// The file the settings name, or memory when the audit log is off.
    pub fn open(audit_db: Option<&Path>) -> Result<Self, StoreError> {
        match audit_db {
            Some(path) => Self::sqlite(path),
            None => Ok(Self::memory()),
        }
    }

    /// The store `at` names, for replica `replica` (used by a shared store only). A PostgreSQL
    /// store connects at `ready` or on first use.
    pub fn at(at: &Location, replica: &str) -> Result<Self, StoreError> {
        match at {
            Location::Off => Ok(Self::memory()),
            Location::Sqlite(path) => Self::sqlite(path),
            Location::Postgres(url) => Self::postgres(url.expose(), replica, false),
        }
    }

    /// The store at `at` for reading what it holds (`audit`, `usage`).
    pub fn read(at: &Location) -> Result<Self, StoreError> {
        match at {
            Location::Off => Ok(Self::memory()),
            Location::Sqlite(path) => Ok(Self::read_sqlite(path)),
            Location::Postgres(url) => Self::postgres(url.expose(), "reader", true),
        }
    }

    #[cfg(feature = "postgres")]
    pub fn postgres(url: &str, replica: &str, read_only: bool) -> Result<Self, StoreError> {
        postgres::Postgres::new(url, replica, read_only).map(Store::Postgres)
    }

    #[cfg(not(feature = "postgres"))]
    pub fn postgres(url: &str, _replica: &str, _read_only: bool) -> Result<Self, StoreError> {
        Err(StoreError {
            path: url.split("://").next().unwrap_or("").to_string() + "://…",
            detail: "this smartcar-mcp was built without the `postgres` feature".into(),
        })
    }

    /// For tests: a new, empty database on the PostgreSQL server `url` names, and its URL.
    #[doc(hidden)]
    pub async fn scratch_postgres(url: &str) -> Result<String, String> {
        #[cfg(feature = "postgres")]
        return postgres_conn::scratch_database(url).await;
        #[cfg(not(feature = "postgres"))]
        return Err(format!(
            "built without the `postgres` feature: {}",
            url.len()
        ));
    }

    /// Connected and ready to serve: a shared store connects, migrates and takes its replica's
    /// lock here, so a replica that cannot reach its database says so at start.
    pub async fn ready(&self) -> Result<(), StoreError> {
        match self {
            #[cfg(feature = "postgres")]
            Store::Postgres(p) => p.ready().await,
            _ => Ok(()),
        }
    }

    /// Whether several processes share this store's state (pushed state, sessions).
    pub fn is_shared(&self) -> bool {
        match self {
            #[cfg(feature = "postgres")]
            Store::Postgres(_) => true,
            _ => false,
        }
    }

    /// Whether what is recorded outlives the process.
    pub fn is_persistent(&self) -> bool {
        !matches!(self, Store::Memory(_))
    }

    pub fn path(&self) -> Option<&Path> {
        match self {
            Store::Memory(_) => None,
            Store::Sqlite(s) => Some(s.path()),
            #[cfg(feature = "postgres")]
            Store::Postgres(_) => None,
        }
    }

    /// Transactions committed by the audit log's group commit, for the commit bench.
    #[doc(hidden)]
    pub fn commits(&self) -> u64 {
        match self {
            Store::Memory(_) => 0,
            Store::Sqlite(s) => s.commits(),
            #[cfg(feature = "postgres")]
            Store::Postgres(_) => 0,
        }
    }

    // The audit log.

    /// Records a call about to be sent; returns its row id for `finish` once the row is on
    /// record. With SQLite the row shares a transaction with the rows queued beside it.
    pub async fn begin(&self, e: &Entry<'_>) -> Result<i64, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.begin(e)),
            Store::Sqlite(s) => s.begin(e).await,
            #[cfg(feature = "postgres")]
            Store::Postgres(p) => p.begin(e).await,
        }
    }

    /// Completes a row with how the call ended.
    pub async fn finish(&self, id: i64, f: &Finish<'_>) -> Result<(), StoreError> {
        match self {
            Store::Memory(m) => {
                m.finish(id, f);
                Ok(())
            }
            Store::Sqlite(s) => s.finish(id, f).await,
            #[cfg(feature = "postgres")]
            Store::Postgres(p) => p.finish(id, f).await,
        }
    }

    /// Records a call that was never sent: a dry run, or a refused confirmation.
    pub async fn note(
        &self,
        e: &Entry<'_>,
        state: AuditState,
        why: Option<&str>,
    ) -> Result<(), StoreError> {
        match self {
            Store::Memory(m) => {
                m.note(e, &state, why);
                Ok(())
            }
            Store::Sqlite(s) => s.note(e, &state, why).await,
            #[cfg(feature = "postgres")]
            Store::Postgres(p) => p.note(e, &state, why).await,
        }
    }

    /// The rows `f` picks, oldest first.
    pub async fn rows(&self, f: &RowFilter<'_>) -> Result<Vec<Row>, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.rows(f)),
            Store::Sqlite(s) => s.rows(f),
            #[cfg(feature = "postgres")]
            Store::Postgres(p) => p.rows(f).await,
        }
    }

    // Usage.

    /// Adds `counts` to today's (UTC, by the backend's clock) counters of `vehicle` and `tool`.
    /// Queued, not awaited: it is counted on every read, and a commit per read would cost more
    /// than the read.
    pub fn add_usage(&self, vehicle: &str, tool: &str, counts: Counts) {
        match self {
            Store::Memory(m) => m.add_usage(vehicle, tool, counts),
            Store::Sqlite(s) => s.add_usage(vehicle, tool, counts),
            #[cfg(feature = "postgres")]
            Store::Postgres(p) => p.add_usage(vehicle, tool, counts),
        }
    }

    /// Every count on record, per (vehicle, tool), over all days.
    pub async fn usage_totals(&self) -> Result<Totals, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.usage_totals()),
            Store::Sqlite(s) => s.usage_totals(),
            #[cfg(feature = "postgres")]
            Store::Postgres(p) => p.usage_totals().await,
        }
    }

    // The daily allowance.

    /// Takes one of `vehicle`'s `limit` calls today (UTC, by the backend's clock), atomically
    /// with every other process sharing the backend; `None` when today's are used up.
    pub async fn reserve_call(
        &self,
        vehicle: &str,
        limit: u64,
    ) -> Result<Option<Reservation<'_>>, StoreError> {
        let taken = match self {
            Store::Memory(m) => m.reserve_call(vehicle, limit),
            Store::Sqlite(s) => s.reserve_call(vehicle, limit)?,
            #[cfg(feature = "postgres")]
            Store::Postgres(p) => p.reserve_call(vehicle, limit).await?,
        };
        Ok(taken.then(|| Reservation {
            store: self,
            vehicle: vehicle.to_string(),
            settled: false,
        }))
    }

    /// Today's calls of `vehicle` counted against the allowance.
    pub async fn calls_today(&self, vehicle: &str) -> Result<u64, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.calls_today(vehicle)),
            Store::Sqlite(s) => s.calls_today(vehicle),
            #[cfg(feature = "postgres")]
            Store::Postgres(p) => p.calls_today(vehicle).await,
        }
    }

    /// Adds `delta` (negative gives calls back) to `vehicle`'s count today.
    fn adjust_calls(&self, vehicle: &str, delta: i64) {
        if delta == 0 {
            return;
        }
        match self {
            Store::Memory(m) => m.adjust_calls(vehicle, delta),
            Store::Sqlite(s) => s.adjust_calls(vehicle, delta),
            #[cfg(feature = "postgres")]
            Store::Postgres(p) => p.adjust_calls_later(vehicle, delta),
        }
    }

    /// `adjust_calls`, awaited where the backend writes over the network.
    async fn adjust_calls_now(&self, vehicle: &str, delta: i64) {
        match self {
            #[cfg(feature = "postgres")]
            Store::Postgres(p) if delta != 0 => p.adjust_calls(vehicle, delta).await,
            _ => self.adjust_calls(vehicle, delta),
        }
    }

    // Pushed state.

    fn pushed(&self) -> &Pushed {
        match self {
            Store::Memory(m) => &m.pushed,
            Store::Sqlite(s) => &s.pushed,
            #[cfg(feature = "postgres")]
            Store::Postgres(p) => &p.pushed,
        }
    }

    /// Stores a verified event (`VEHICLE_STATE`, `VEHICLE_ERROR`); a change is announced to
    /// `subscribe`rs. Async like the rest of pushed state although both backends hold it in
    /// memory today: a shared backend will read and write it over the network.
    pub async fn ingest(&self, event: &Value) -> Ingested {
        match self {
            #[cfg(feature = "postgres")]
            Store::Postgres(p) => p.ingest(event).await,
            _ => self.pushed().ingest(event),
        }
    }

    /// The vehicle's pushed state, whoever it was pushed for: for operator-level readers
    /// (resources), never to answer a user's read (that is `fresh`).
    pub async fn pushed_state(&self, vehicle_id: &str) -> Option<VehicleState> {
        self.pushed().vehicle(vehicle_id)
    }

    /// Vehicle ids with pushed state, sorted.
    pub async fn pushed_vehicles(&self) -> Vec<String> {
        self.pushed().vehicles()
    }

    /// The bytes pushed state holds against `pushed::MAX_BYTES`.
    pub async fn pushed_bytes(&self) -> usize {
        self.pushed().bytes()
    }

    /// A command was sent: what was pushed before may no longer hold (`None`: any vehicle).
    pub async fn mark_stale(&self, vehicle_id: Option<&str>) {
        match self {
            #[cfg(feature = "postgres")]
            Store::Postgres(p) => p.mark_stale(vehicle_id).await,
            _ => self.pushed().mark_stale(vehicle_id),
        }
    }

    /// The vehicle's pushed signals when each was recorded at most `max_age` ago, none is stale,
    /// and they were pushed for `user`; with the oldest age.
    pub async fn fresh(
        &self,
        vehicle_id: &str,
        user: Option<&str>,
        code: Option<&str>,
        max_age: Duration,
    ) -> Option<(Vec<PushedSignal>, Duration)> {
        self.pushed().fresh(vehicle_id, user, code, max_age)
    }

    /// Vehicle ids as their pushed state changes, for resource subscriptions.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.pushed().subscribe()
    }
}

impl Store {
    // Confirmations and handshake sessions.

    /// Takes the one use of a sealed confirmation answer (`key`, a digest of it), remembered for
    /// `valid_for` (as long as the answer could still open); false when it was taken before: by
    /// this process, by an earlier run on the same SQLite file, or by any replica sharing the
    /// PostgreSQL store.
    pub async fn redeem(&self, key: &str, valid_for: Duration) -> Result<bool, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.redeemed.locked().take(key, valid_for)),
            Store::Sqlite(s) => s.redeem(key, valid_for),
            #[cfg(feature = "postgres")]
            Store::Postgres(p) => p.redeem(key, valid_for).await,
        }
    }

    /// A handshake session's saved state (rmcp's `SessionState` as JSON), for a replica that did
    /// not create it; only a shared store keeps sessions (`None` otherwise).
    pub async fn session_load(&self, id: &str) -> Result<Option<String>, StoreError> {
        match self {
            #[cfg(feature = "postgres")]
            Store::Postgres(p) => p.session_load(id).await,
            _ => {
                let _ = id;
                Ok(None)
            }
        }
    }

    pub async fn session_save(&self, id: &str, state: &str) -> Result<(), StoreError> {
        match self {
            #[cfg(feature = "postgres")]
            Store::Postgres(p) => p.session_store(id, state).await,
            _ => {
                let _ = (id, state);
                Ok(())
            }
        }
    }

    pub async fn session_delete(&self, id: &str) -> Result<(), StoreError> {
        match self {
            #[cfg(feature = "postgres")]
            Store::Postgres(p) => p.session_delete(id).await,
            _ => {
                let _ = id;
                Ok(())
            }
        }
    }

    /// A shared store's URL as errors show it (no password), and this replica's id.
    pub fn shared_as(&self) -> Option<(&str, &str)> {
        match self {
            #[cfg(feature = "postgres")]
            Store::Postgres(p) => Some((p.shown(), p.replica())),
            _ => None,
        }
    }

    /// Marks dead replicas' open rows "outcome unknown" now, as each replica does every few
    /// seconds; the rows marked (0 for a store of one process).
    pub async fn sweep_now(&self) -> Result<u64, StoreError> {
        match self {
            #[cfg(feature = "postgres")]
            Store::Postgres(p) => p.sweep_now().await,
            _ => Ok(0),
        }
    }
}

impl Reservation<'_> {
    /// The call is done: it cost `attempts` upstream calls, and Smartcar answered for the
    /// vehicle (`answered`) or not, in which case nothing is counted: those ids are the client's
    /// choice, and neither are billed calls of a vehicle.
    pub async fn settle(mut self, attempts: u64, answered: bool) {
        self.settled = true;
        let cost = if answered { attempts as i64 } else { 0 };
        self.store.adjust_calls_now(&self.vehicle, cost - 1).await;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.store.adjust_calls(&self.vehicle, -1);
        }
    }
}

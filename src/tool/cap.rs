//! The operator's daily allowance of upstream calls per vehicle (`--max-calls-per-vehicle-per-day`),
//! as one atomic reservation per call: taken after the vehicle's lane, before anything is sent,
//! and settled with what the call really cost.
//!
//! Reading today's count, waiting for a lane and adding the call only once it returned let a
//! burst at `limit - 1` all pass. A reservation counts the call before it leaves, so of 20 calls
//! racing for the last slot exactly one goes. With the audit database on, the reservation is a
//! conditional upsert in its `daily_calls` table, the UTC day computed by SQLite, so processes
//! sharing the file share the allowance; without it, the count is this process's.
//!
//! A call Smartcar did not answer for (404, or no answer) gives its reservation back: those ids
//! are the client's choice, and neither are billed calls of a vehicle. A vehicle's first
//! reservation of the day starts from what the `usage` table already counts for it today, so
//! calls made before a restart, or before the limit was set, still count.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use rusqlite::{Connection, params};

use super::error::ToolError;
use super::usage::utc_day;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS daily_calls (
    day TEXT NOT NULL,
    vehicle TEXT NOT NULL,
    calls INTEGER NOT NULL,
    PRIMARY KEY (day, vehicle)
)";

/// Where today's counts are kept.
enum Counts {
    /// This process only: the day and each vehicle's calls on it.
    Memory(Mutex<(String, HashMap<String, u64>)>),
    /// The audit database, opened on first use; a failure to open is kept and reported.
    Shared {
        path: PathBuf,
        conn: OnceLock<Result<Mutex<Connection>, String>>,
    },
}

pub struct Cap {
    limit: Option<u64>,
    counts: Counts,
}

/// One call's place in today's allowance; given back if never settled (the call never left).
pub struct Reservation<'a> {
    cap: &'a Cap,
    vehicle: String,
    settled: bool,
}

impl Cap {
    /// `limit` calls per vehicle per UTC day (`None`: no limit), counted in `db` when given.
    pub fn new(limit: Option<u64>, db: Option<&Path>) -> Self {
        let counts = match db {
            Some(path) => Counts::Shared {
                path: path.to_path_buf(),
                conn: OnceLock::new(),
            },
            None => Counts::Memory(Mutex::new((utc_day(), HashMap::new()))),
        };
        Cap { limit, counts }
    }

    /// Takes one call of `vehicle`'s allowance, or refuses when today's is used up. With no
    /// limit set, nothing is counted.
    pub fn reserve(&self, vehicle: &str) -> Result<Option<Reservation<'_>>, ToolError> {
        let Some(limit) = self.limit else {
            return Ok(None);
        };
        let refused = || ToolError::DailyLimit {
            vehicle: vehicle.to_string(),
            limit,
        };
        if limit == 0 {
            return Err(refused());
        }
        let taken = match &self.counts {
            Counts::Memory(m) => {
                let mut today = m.lock().unwrap_or_else(|p| p.into_inner());
                let now = utc_day();
                if today.0 != now {
                    *today = (now, HashMap::new());
                }
                let n = today.1.entry(vehicle.to_string()).or_default();
                (*n < limit).then(|| *n += 1).is_some()
            }
            Counts::Shared { .. } => {
                let conn = self.conn()?;
                // The day's first reservation for a vehicle starts from the calls the usage
                // table already counts today (made before a limit was set, or before a restart).
                conn.execute(
                    "INSERT INTO daily_calls (day, vehicle, calls)
                     SELECT date('now'), ?1, prior + 1 FROM (
                         SELECT COALESCE(SUM(upstream_calls), 0) AS prior FROM usage
                         WHERE day = date('now') AND vehicle_id = ?1
                     ) WHERE prior < ?2
                     ON CONFLICT (day, vehicle) DO UPDATE SET calls = calls + 1 WHERE calls < ?2",
                    params![vehicle, limit as i64],
                )
                .map_err(|e| unavailable(e.to_string()))?
                    == 1
            }
        };
        if !taken {
            return Err(refused());
        }
        Ok(Some(Reservation {
            cap: self,
            vehicle: vehicle.to_string(),
            settled: false,
        }))
    }

    /// Today's calls of `vehicle` counted against the allowance.
    pub fn used_today(&self, vehicle: &str) -> u64 {
        match &self.counts {
            Counts::Memory(m) => {
                let today = m.lock().unwrap_or_else(|p| p.into_inner());
                if today.0 != utc_day() {
                    return 0;
                }
                today.1.get(vehicle).copied().unwrap_or(0)
            }
            Counts::Shared { .. } => self
                .conn()
                .ok()
                .and_then(|c| {
                    c.query_row(
                        "SELECT calls FROM daily_calls WHERE day = date('now') AND vehicle = ?1",
                        [vehicle],
                        |r| r.get::<_, i64>(0),
                    )
                    .ok()
                })
                .map_or(0, |n| n.max(0) as u64),
        }
    }

    /// Adds `delta` (negative gives calls back) to `vehicle`'s count today, dropping a count that
    /// reaches zero so unanswered ids leave nothing behind.
    fn adjust(&self, vehicle: &str, delta: i64) {
        if delta == 0 {
            return;
        }
        match &self.counts {
            Counts::Memory(m) => {
                let mut today = m.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(n) = today.1.get_mut(vehicle) {
                    *n = n.saturating_add_signed(delta);
                    if *n == 0 {
                        today.1.remove(vehicle);
                    }
                }
            }
            Counts::Shared { .. } => {
                let Ok(conn) = self.conn() else {
                    return;
                };
                let done = conn.execute(
                    "UPDATE daily_calls SET calls = max(calls + ?2, 0)
                     WHERE day = date('now') AND vehicle = ?1",
                    params![vehicle, delta],
                );
                let cleared = conn.execute(
                    "DELETE FROM daily_calls WHERE day = date('now') AND vehicle = ?1 AND calls = 0",
                    [vehicle],
                );
                if let Err(e) = done.and(cleared) {
                    tracing::warn!("the daily call count was not corrected: {e}");
                }
            }
        }
    }

    fn conn(&self) -> Result<std::sync::MutexGuard<'_, Connection>, ToolError> {
        let Counts::Shared { path, conn } = &self.counts else {
            unreachable!("only the shared counts have a connection");
        };
        let conn = conn.get_or_init(|| open(path).map(Mutex::new));
        match conn {
            Ok(c) => Ok(c.lock().unwrap_or_else(|p| p.into_inner())),
            Err(e) => Err(unavailable(e.clone())),
        }
    }
}

fn open(path: &Path) -> Result<Connection, String> {
    let conn = Connection::open(path).map_err(|e| e.to_string())?;
    // Every process sharing the file takes its turn; a reservation is one short statement.
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(|e| e.to_string())?;
    // A count lost in a power cut errs towards more calls, never fewer records: the audit log's
    // own rows stay synchronous=FULL.
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(|e| e.to_string())?;
    conn.execute_batch(super::audit::SCHEMA)
        .and_then(|()| conn.execute_batch(SCHEMA))
        .map_err(|e| e.to_string())?;
    Ok(conn)
}

fn unavailable(detail: String) -> ToolError {
    ToolError::AuditUnavailable {
        detail: format!("the daily call count could not be checked ({detail})"),
    }
}

impl Reservation<'_> {
    /// The call is done: it cost `attempts` upstream calls, and Smartcar answered for the
    /// vehicle (`answered`) or not, in which case nothing is counted.
    pub fn settle(mut self, attempts: u64, answered: bool) {
        self.settled = true;
        let cost = if answered { attempts as i64 } else { 0 };
        self.cap.adjust(&self.vehicle, cost - 1);
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.cap.adjust(&self.vehicle, -1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exercise(cap: &Cap) {
        let a = cap.reserve("v").unwrap().expect("a limit is set");
        let b = cap.reserve("v").unwrap().unwrap();
        assert!(matches!(
            cap.reserve("v"),
            Err(ToolError::DailyLimit { .. })
        ));
        drop(b);
        assert_eq!(
            cap.used_today("v"),
            1,
            "an unsettled reservation is given back"
        );
        let c = cap.reserve("v").unwrap().unwrap();
        c.settle(0, false);
        assert_eq!(cap.used_today("v"), 1, "an unanswered call costs nothing");
        a.settle(1, true);
        assert_eq!(cap.used_today("v"), 1);
        cap.reserve("w").unwrap().unwrap().settle(3, true);
        assert_eq!(cap.used_today("w"), 3, "retries count");
        assert!(cap.reserve("w").is_err());
        assert!(
            cap.reserve("x").unwrap().is_some(),
            "each vehicle has its own"
        );
    }

    #[test]
    fn a_reservation_is_taken_given_back_and_settled_in_memory() {
        exercise(&Cap::new(Some(2), None));
        assert!(Cap::new(None, None).reserve("v").unwrap().is_none());
        assert!(Cap::new(Some(0), None).reserve("v").is_err());
    }

    #[test]
    fn the_same_holds_in_the_database() {
        let dir =
            std::env::temp_dir().join(format!("cap-{}-{}", std::process::id(), fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.db");
        exercise(&Cap::new(Some(2), Some(&path)));
        // A second handle on the file sees the same counts.
        let other = Cap::new(Some(2), Some(&path));
        assert_eq!(other.used_today("w"), 3);
        let held = other.reserve("v").unwrap();
        assert!(held.is_some());
        assert!(other.reserve("v").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

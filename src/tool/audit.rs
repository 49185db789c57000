//! The audit log of commands and deletions, and the persisted usage counters, in one SQLite file
//! (rusqlite with its bundled SQLite: nothing to install). The server's only on-disk state.
//!
//! A command's row is written, durably (WAL, `synchronous=FULL`), before the request leaves, in
//! state `sent`; the answer completes it. A crash in between leaves `sent` without a finish time,
//! which reads as "sent, outcome unknown", never as nothing. Several processes may share the file
//! (SQLite's locking, with a busy timeout). No secret is ever written: arguments hold ids and
//! values only, and the errors are the messages a model reads.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, thiserror::Error)]
#[error("audit database {path}: {detail}")]
pub struct AuditError {
    pub path: String,
    pub detail: String,
}

/// Upstream calls made and saved, as counted per vehicle and tool (`tool::usage`) and stored here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// HTTP requests sent to Smartcar (retries included, token requests not).
    pub upstream_calls: u64,
    /// Calls answered by sharing an identical call in flight.
    pub coalesced: u64,
    /// Calls answered from the read cache.
    pub cached: u64,
    /// Calls answered from state Smartcar pushed by webhook.
    pub pushed: u64,
    /// 429 answers met.
    pub rate_limited: u64,
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.upstream_calls += o.upstream_calls;
        self.coalesced += o.coalesced;
        self.cached += o.cached;
        self.pushed += o.pushed;
        self.rate_limited += o.rate_limited;
    }

    /// Calls that cost nothing upstream.
    pub fn saved(&self) -> u64 {
        self.coalesced + self.cached + self.pushed
    }
}

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    tool TEXT NOT NULL,
    arguments TEXT NOT NULL,
    vehicle_id TEXT,
    user_id TEXT,
    caller TEXT NOT NULL,
    confirmation TEXT NOT NULL,
    state TEXT NOT NULL,
    outcome TEXT,
    http_status INTEGER,
    request_id TEXT,
    error TEXT,
    finished_at TEXT
);
CREATE INDEX IF NOT EXISTS audit_vehicle ON audit (vehicle_id, at);
CREATE TABLE IF NOT EXISTS usage (
    day TEXT NOT NULL,
    vehicle_id TEXT NOT NULL,
    tool TEXT NOT NULL,
    upstream_calls INTEGER NOT NULL DEFAULT 0,
    coalesced INTEGER NOT NULL DEFAULT 0,
    cached INTEGER NOT NULL DEFAULT 0,
    pushed INTEGER NOT NULL DEFAULT 0,
    rate_limited INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, vehicle_id, tool)
);
";

/// What is known of a call before it is sent.
pub struct Entry<'a> {
    pub tool: &'a str,
    pub arguments: &'a Map<String, Value>,
    pub vehicle: Option<&'a str>,
    pub user: Option<&'a str>,
    /// Who asked: transport, MCP client and session where known.
    pub caller: &'a str,
    /// `confirmed`, `not required`, `off` (the operator turned confirmation off), or why not.
    pub confirmation: &'a str,
}

/// How a sent call ended.
pub struct Finish<'a> {
    pub ok: bool,
    /// The command's status (`SUCCESS`, ...), or the error type.
    pub outcome: Option<&'a str>,
    pub http_status: Option<u16>,
    pub request_id: Option<&'a str>,
    pub error: Option<&'a str>,
}

/// One row, as `smartcar-mcp audit` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub id: i64,
    pub at: String,
    pub tool: String,
    pub arguments: Value,
    pub vehicle_id: Option<String>,
    pub user_id: Option<String>,
    pub caller: String,
    pub confirmation: String,
    /// `sent` (outcome unknown while `finished_at` is empty), `done`, `failed`, `dry_run`,
    /// `refused`.
    pub state: String,
    pub outcome: Option<String>,
    pub http_status: Option<u16>,
    pub request_id: Option<String>,
    pub error: Option<String>,
    pub finished_at: Option<String>,
}

impl Row {
    /// The state in words: a `sent` row without a finish is a command whose fate is unknown.
    pub fn status(&self) -> String {
        match (self.state.as_str(), &self.finished_at) {
            ("sent", None) => "sent, outcome unknown".into(),
            ("done", _) => format!("done: {}", self.outcome.as_deref().unwrap_or("SUCCESS")),
            ("failed", _) => format!(
                "failed: {}",
                self.error
                    .as_deref()
                    .or(self.outcome.as_deref())
                    .unwrap_or("error")
            ),
            (other, _) => other.replace('_', " "),
        }
    }
}

struct UsageDelta {
    day: String,
    vehicle: String,
    tool: String,
    counts: Counts,
}

pub struct Audit {
    path: PathBuf,
    /// Opened on first use, not at start: an idle server never touches SQLite, and the first
    /// answer (initialize, tools/list) never waits on the file (cold start, README Performance).
    db: OnceLock<Result<Db, AuditError>>,
}

struct Db {
    conn: Mutex<Connection>,
    /// Usage increments go to a writer thread: they are counted on every read, and a durable
    /// commit per read would cost more than the read.
    usage: Mutex<mpsc::Sender<UsageDelta>>,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn open_conn(path: &Path, synchronous: &str) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", synchronous)?;
    Ok(conn)
}

impl Db {
    /// Opens (creating) the database at `path` and starts its usage writer.
    fn open(path: &Path) -> Result<Self, AuditError> {
        let fail = |detail: String| AuditError {
            path: path.display().to_string(),
            detail,
        };
        let conn = open_conn(path, "FULL").map_err(|e| fail(e.to_string()))?;
        conn.execute_batch(SCHEMA)
            .map_err(|e| fail(e.to_string()))?;
        let mut writer = open_conn(path, "NORMAL").map_err(|e| fail(e.to_string()))?;
        let (tx, rx) = mpsc::channel::<UsageDelta>();
        std::thread::Builder::new()
            .name("smartcar-mcp-usage".into())
            .spawn(move || {
                // Whatever queued up while the last batch was written goes in one transaction,
                // merged per (day, vehicle, tool): under load that is one upsert for many reads.
                while let Ok(first) = rx.recv() {
                    let mut batch: BTreeMap<(String, String, String), Counts> = BTreeMap::new();
                    for d in std::iter::once(first).chain(rx.try_iter()) {
                        batch
                            .entry((d.day, d.vehicle, d.tool))
                            .or_default()
                            .add(&d.counts);
                    }
                    if let Err(e) = write_usage(&mut writer, &batch) {
                        tracing::warn!("usage not recorded in the audit database: {e}");
                    }
                }
            })
            .map_err(|e| fail(format!("starting its writer: {e}")))?;
        Ok(Db {
            conn: Mutex::new(conn),
            usage: Mutex::new(tx),
        })
    }
}

impl Audit {
    /// The database at `path`: its folder is made now, the file is opened (created) on first use.
    pub fn open(path: &Path) -> Result<Self, AuditError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| AuditError {
                path: path.display().to_string(),
                detail: format!("creating its folder: {e}"),
            })?;
        }
        Ok(Audit {
            path: path.to_path_buf(),
            db: OnceLock::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn db(&self) -> Result<&Db, AuditError> {
        let db = self.db.get_or_init(|| {
            let db = Db::open(&self.path);
            if let Err(e) = &db {
                tracing::error!("{e}");
            }
            db
        });
        db.as_ref().map_err(Clone::clone)
    }

    fn conn(&self) -> Result<std::sync::MutexGuard<'_, Connection>, AuditError> {
        Ok(self.db()?.conn.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn error(&self, e: rusqlite::Error) -> AuditError {
        AuditError {
            path: self.path.display().to_string(),
            detail: e.to_string(),
        }
    }

    fn insert(&self, e: &Entry, state: &str, error: Option<&str>) -> Result<i64, AuditError> {
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO audit (at, tool, arguments, vehicle_id, user_id, caller, confirmation, state, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![now(), e.tool, Value::Object(e.arguments.clone()).to_string(), e.vehicle,
                    e.user, e.caller, e.confirmation, state, error],
        )
        .map_err(|x| self.error(x))?;
        Ok(conn.last_insert_rowid())
    }

    /// Records a call about to be sent; returns its row id for `finish`.
    pub fn begin(&self, e: &Entry) -> Result<i64, AuditError> {
        self.insert(e, "sent", None)
    }

    /// Completes a row with how the call ended.
    pub fn finish(&self, id: i64, f: &Finish) -> Result<(), AuditError> {
        self.conn()?
            .execute(
                "UPDATE audit SET state = ?2, outcome = ?3, http_status = ?4, request_id = ?5,
                 error = ?6, finished_at = ?7 WHERE id = ?1",
                params![
                    id,
                    if f.ok { "done" } else { "failed" },
                    f.outcome,
                    f.http_status,
                    f.request_id,
                    f.error,
                    now()
                ],
            )
            .map(drop)
            .map_err(|x| self.error(x))
    }

    /// Records a call that was never sent: a dry run, or a refused confirmation.
    pub fn note(&self, e: &Entry, state: &str, why: Option<&str>) -> Result<(), AuditError> {
        self.insert(e, state, why).map(drop)
    }

    pub fn add_usage(&self, day: &str, vehicle: &str, tool: &str, counts: Counts) {
        let delta = UsageDelta {
            day: day.into(),
            vehicle: vehicle.into(),
            tool: tool.into(),
            counts,
        };
        if let Ok(db) = self.db() {
            let _ = db
                .usage
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .send(delta);
        }
    }

    /// Every count on record, per (vehicle, tool).
    pub fn usage_totals(&self) -> BTreeMap<(String, String), Counts> {
        self.conn()
            .ok()
            .and_then(|c| usage_totals(&c).ok())
            .unwrap_or_default()
    }

    /// Each vehicle's upstream calls on `day`.
    pub fn calls_on(&self, day: &str) -> HashMap<String, u64> {
        let Ok(conn) = self.conn() else {
            return HashMap::new();
        };
        let rows = conn
            .prepare("SELECT vehicle_id, SUM(upstream_calls) FROM usage WHERE day = ?1 GROUP BY vehicle_id")
            .and_then(|mut s| {
                s.query_map([day], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))?
                    .collect::<Result<HashMap<_, _>, _>>()
            });
        rows.unwrap_or_default()
    }
}

/// Adds merged usage increments to the `usage` table, all or none.
fn write_usage(
    conn: &mut Connection,
    batch: &BTreeMap<(String, String, String), Counts>,
) -> Result<(), rusqlite::Error> {
    let tx = conn.transaction()?;
    {
        let mut upsert = tx.prepare_cached(
            "INSERT INTO usage (day, vehicle_id, tool, upstream_calls, coalesced, cached, pushed, rate_limited)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (day, vehicle_id, tool) DO UPDATE SET
               upstream_calls = upstream_calls + excluded.upstream_calls,
               coalesced = coalesced + excluded.coalesced,
               cached = cached + excluded.cached,
               pushed = pushed + excluded.pushed,
               rate_limited = rate_limited + excluded.rate_limited",
        )?;
        for ((day, vehicle, tool), c) in batch {
            upsert.execute(params![
                day,
                vehicle,
                tool,
                c.upstream_calls as i64,
                c.coalesced as i64,
                c.cached as i64,
                c.pushed as i64,
                c.rate_limited as i64
            ])?;
        }
    }
    tx.commit()
}

fn usage_totals(conn: &Connection) -> Result<BTreeMap<(String, String), Counts>, rusqlite::Error> {
    let mut s = conn.prepare(
        "SELECT vehicle_id, tool, SUM(upstream_calls), SUM(coalesced), SUM(cached), SUM(pushed), SUM(rate_limited)
         FROM usage GROUP BY vehicle_id, tool",
    )?;
    let rows = s.query_map([], |r| {
        let n = |i| r.get::<_, i64>(i).map(|v| v as u64);
        Ok((
            (r.get::<_, String>(0)?, r.get::<_, String>(1)?),
            Counts {
                upstream_calls: n(2)?,
                coalesced: n(3)?,
                cached: n(4)?,
                pushed: n(5)?,
                rate_limited: n(6)?,
            },
        ))
    })?;
    rows.collect()
}

fn read_only(path: &Path) -> Result<Connection, AuditError> {
    let fail = |detail: String| AuditError {
        path: path.display().to_string(),
        detail,
    };
    if !path.exists() {
        return Err(fail("no such file (nothing has been recorded yet)".into()));
    }
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| fail(e.to_string()))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| fail(e.to_string()))?;
    Ok(conn)
}

/// The rows at or after `since` (an RFC 3339 time or a date) for `vehicle`, oldest first.
pub fn read_rows(
    path: &Path,
    since: Option<&str>,
    vehicle: Option<&str>,
) -> Result<Vec<Row>, AuditError> {
    let conn = read_only(path)?;
    let fail = |e: rusqlite::Error| AuditError {
        path: path.display().to_string(),
        detail: e.to_string(),
    };
    let has_table: Option<String> = conn
        .query_row(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'audit'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(fail)?;
    if has_table.is_none() {
        return Ok(Vec::new());
    }
    let mut s = conn
        .prepare(
            "SELECT id, at, tool, arguments, vehicle_id, user_id, caller, confirmation, state, outcome,
                    http_status, request_id, error, finished_at
             FROM audit WHERE (?1 IS NULL OR at >= ?1) AND (?2 IS NULL OR vehicle_id = ?2) ORDER BY id",
        )
        .map_err(fail)?;
    let rows = s
        .query_map(params![since, vehicle], |r| {
            let args: String = r.get(3)?;
            Ok(Row {
                id: r.get(0)?,
                at: r.get(1)?,
                tool: r.get(2)?,
                arguments: serde_json::from_str(&args).unwrap_or(Value::String(args)),
                vehicle_id: r.get(4)?,
                user_id: r.get(5)?,
                caller: r.get(6)?,
                confirmation: r.get(7)?,
                state: r.get(8)?,
                outcome: r.get(9)?,
                http_status: r.get::<_, Option<i64>>(10)?.map(|s| s as u16),
                request_id: r.get(11)?,
                error: r.get(12)?,
                finished_at: r.get(13)?,
            })
        })
        .map_err(fail)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(fail)
}

/// The usage counts on record in the file at `path`.
pub fn read_usage(path: &Path) -> Result<BTreeMap<(String, String), Counts>, AuditError> {
    let conn = read_only(path)?;
    usage_totals(&conn).or_else(|e| {
        if e.to_string().contains("no such table") {
            Ok(BTreeMap::new())
        } else {
            Err(AuditError {
                path: path.display().to_string(),
                detail: e.to_string(),
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry<'a>(args: &'a Map<String, Value>) -> Entry<'a> {
        Entry {
            tool: "unlock_vehicle",
            arguments: args,
            vehicle: Some("v-1"),
            user: Some("u-1"),
            caller: "stdio client=test",
            confirmation: "confirmed",
        }
    }

    #[test]
    fn a_row_is_on_record_before_the_outcome_and_completed_after() {
        let dir = std::env::temp_dir().join(format!("smartcar-mcp-audit-{}", std::process::id()));
        let path = dir.join("a.sqlite3");
        let _ = std::fs::remove_file(&path);
        let audit = Audit::open(&path).unwrap();
        let args = json!({"vehicle_id": "v-1", "user_id": "u-1"})
            .as_object()
            .cloned()
            .unwrap();
        let id = audit.begin(&entry(&args)).unwrap();
        // Another process reading now sees the command as sent with no outcome.
        let rows = read_rows(&path, None, Some("v-1")).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].status(), "sent, outcome unknown");
        assert_eq!(
            rows[0].arguments,
            json!({"vehicle_id": "v-1", "user_id": "u-1"})
        );
        audit
            .finish(
                id,
                &Finish {
                    ok: true,
                    outcome: Some("SUCCESS"),
                    http_status: Some(200),
                    request_id: Some("req-9"),
                    error: None,
                },
            )
            .unwrap();
        audit.note(&entry(&args), "dry_run", None).unwrap();
        let rows = read_rows(&path, None, None).unwrap();
        assert_eq!(rows[0].status(), "done: SUCCESS");
        assert_eq!(rows[0].request_id.as_deref(), Some("req-9"));
        assert_eq!(rows[1].status(), "dry run");
        assert!(
            read_rows(&path, Some("2999-01-01"), None)
                .unwrap()
                .is_empty()
        );
        assert!(read_rows(&path, None, Some("v-2")).unwrap().is_empty());
        drop(audit);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

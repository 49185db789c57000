//! The SQLite backend (rusqlite with its bundled SQLite: nothing to install): the audit log of
//! commands and deletions, the usage counters and the daily allowance in one file, the server's
//! only on-disk state. Pushed state is held in memory, as in the memory backend.
//!
//! A command's row is written, durably (WAL, `synchronous=FULL`), before the request leaves, in
//! state `sent`; the answer completes it. A crash in between leaves `sent` without a finish time,
//! which reads as "sent, outcome unknown", never as nothing. Several processes may share the file
//! (SQLite's locking, with a busy timeout). No secret is ever written: arguments hold ids and
//! values only, and the errors are the messages a model reads.
//!
//! Writes are group-committed: callers queue their row and wait; one committer thread takes
//! everything queued, writes it in one transaction, commits (one fsync) and wakes each caller with
//! its row id, or every caller of the batch with the error. So commands in flight together share
//! an fsync instead of queueing behind one another's, and no caller hears "on record" before its
//! row is on disk.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::StoreError;
use super::audit::{AuditState, Entry, Finish, Row, RowFilter, now};
use super::migrate::migrate;
use super::pushed::Pushed;
use super::usage::{Counts, Totals, utc_day};
use crate::sync::Locked;

/// How rows reach the disk. Only the bench picks: it measures group commit against the
/// transaction per row it replaced, in one run.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Rows queued together share one transaction, written by the committer thread.
    Group,
    /// One transaction per row on the caller's thread (a tokio worker, blocked for the fsync).
    PerRow,
}

/// A row to write, owned, so it can cross to the committer thread.
enum Op {
    Insert {
        at: String,
        tool: String,
        arguments: String,
        vehicle: Option<String>,
        user: Option<String>,
        caller: String,
        principal: Option<String>,
        principal_issuer: Option<String>,
        confirmation: String,
        state: String,
        error: Option<String>,
    },
    Finish {
        id: i64,
        state: &'static str,
        outcome: Option<String>,
        http_status: Option<u16>,
        request_id: Option<String>,
        error: Option<String>,
        at: String,
    },
}

impl Op {
    fn insert(e: &Entry, state: &AuditState, error: Option<&str>) -> Op {
        Op::Insert {
            at: now(),
            tool: e.tool.into(),
            arguments: serde_json::to_string(e.arguments).unwrap_or_default(),
            vehicle: e.vehicle.map(Into::into),
            user: e.user.map(Into::into),
            caller: e.caller.into(),
            principal: e.principal.map(Into::into),
            principal_issuer: e.principal_issuer.map(Into::into),
            confirmation: e.confirmation.as_str().into(),
            state: state.as_str().into(),
            error: error.map(Into::into),
        }
    }

    fn finish(id: i64, f: &Finish) -> Op {
        Op::Finish {
            id,
            state: if f.ok { "done" } else { "failed" },
            outcome: f.outcome.map(Into::into),
            http_status: f.http_status,
            request_id: f.request_id.map(Into::into),
            error: f.error.map(Into::into),
            at: now(),
        }
    }

    /// Runs the statement; an insert's row id, or the id finished.
    fn apply(&self, conn: &Connection) -> Result<i64, rusqlite::Error> {
        match self {
            Op::Insert {
                at,
                tool,
                arguments,
                vehicle,
                user,
                caller,
                principal,
                principal_issuer,
                confirmation,
                state,
                error,
            } => {
                conn.prepare_cached(
                    "INSERT INTO audit (at, tool, arguments, vehicle_id, user_id, caller, confirmation, state, error, principal, principal_issuer)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )?
                .execute(params![at, tool, arguments, vehicle, user, caller, confirmation, state, error, principal, principal_issuer])?;
                Ok(conn.last_insert_rowid())
            }
            Op::Finish {
                id,
                state,
                outcome,
                http_status,
                request_id,
                error,
                at,
            } => {
                conn.prepare_cached(
                    "UPDATE audit SET state = ?2, outcome = ?3, http_status = ?4, request_id = ?5,
                     error = ?6, finished_at = ?7 WHERE id = ?1",
                )?
                .execute(params![
                    id,
                    state,
                    outcome,
                    http_status,
                    request_id,
                    error,
                    at
                ])?;
                Ok(*id)
            }
        }
    }
}

/// Where the committer hands a caller its outcome: a thread waiting, or a task.
enum Reply {
    Thread(mpsc::SyncSender<Result<i64, StoreError>>),
    Task(tokio::sync::oneshot::Sender<Result<i64, StoreError>>),
}

impl Reply {
    fn send(self, r: Result<i64, StoreError>) {
        // A caller that went away (its task cancelled) needs no answer: its row stands.
        match self {
            Reply::Thread(tx) => drop(tx.send(r)),
            Reply::Task(tx) => drop(tx.send(r)),
        }
    }
}

struct Queued {
    op: Op,
    reply: Reply,
}

struct UsageDelta {
    day: String,
    vehicle: String,
    tool: String,
    counts: Counts,
}

pub struct Sqlite {
    path: PathBuf,
    commit: Commit,
    /// Opened on first use, not at start: an idle server never touches SQLite, and the first
    /// answer (initialize, tools/list) never waits on the file (cold start, README Performance).
    db: OnceLock<Result<Db, StoreError>>,
    /// The daily allowance's own connection, opened on first reservation.
    cap: OnceLock<Result<Mutex<Connection>, StoreError>>,
    /// Opened by `audit` and `usage`: reads only, and a missing file is an answer, not a creation.
    read_only: bool,
    pub(crate) pushed: Pushed,
}

struct Db {
    /// Shared by the committer thread and the reads (`usage_totals`).
    conn: Arc<Mutex<Connection>>,
    /// To the committer thread.
    rows: Mutex<mpsc::Sender<Queued>>,
    /// Transactions committed by the audit connection, for the bench's rows-per-fsync figure.
    commits: Arc<AtomicU64>,
    /// Usage increments go to a writer thread: they are counted on every read, and a durable
    /// commit per read would cost more than the read.
    usage: Mutex<mpsc::Sender<UsageDelta>>,
}

/// Writes a batch in one transaction: every row's id, or the error that undid them all. All or
/// nothing, because a caller told its row is on record must find it there after a crash.
fn write_batch(conn: &mut Connection, ops: &[&Op]) -> Result<Vec<i64>, rusqlite::Error> {
    // IMMEDIATE: the write lock is taken (or waited for) at BEGIN, never upgraded mid-batch.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let ids = ops
        .iter()
        .map(|op| op.apply(&tx))
        .collect::<Result<Vec<_>, _>>()?;
    tx.commit()?;
    Ok(ids)
}

/// The committer: whatever queued up while the last batch was written is the next batch.
fn commit_rows(
    path: &Path,
    conn: &Mutex<Connection>,
    commits: &AtomicU64,
    rx: &mpsc::Receiver<Queued>,
) {
    while let Ok(first) = rx.recv() {
        let batch: Vec<Queued> = std::iter::once(first).chain(rx.try_iter()).collect();
        let ops: Vec<&Op> = batch.iter().map(|q| &q.op).collect();
        let written = write_batch(&mut conn.locked(), &ops);
        match written {
            Ok(ids) => {
                commits.fetch_add(1, Ordering::Relaxed);
                for (q, id) in batch.into_iter().zip(ids) {
                    q.reply.send(Ok(id));
                }
            }
            Err(e) => {
                let e = StoreError::at(path, e.to_string());
                for q in batch {
                    q.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

fn open_conn(path: &Path, synchronous: &str) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    wal(&conn)?;
    conn.pragma_update(None, "synchronous", synchronous)?;
    Ok(conn)
}

/// Puts the file in WAL mode. Switching a new file takes an exclusive lock, and SQLite answers a
/// concurrent switch "database is locked" at once, without its busy handler, so handles opening
/// one new file together (replicas, processes sharing it) take turns here for up to 5 s.
fn wal(conn: &Connection) -> Result<(), rusqlite::Error> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5 + fastrand::u64(..10)));
            }
            r => return r,
        }
    }
}

impl Db {
    /// Opens (creating and migrating) the database at `path` and starts its writers.
    fn open(path: &Path) -> Result<Self, StoreError> {
        let fail = |detail: String| StoreError::at(path, detail);
        let mut conn = open_conn(path, "FULL").map_err(|e| fail(e.to_string()))?;
        migrate(&mut conn).map_err(fail)?;
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
        let conn = Arc::new(Mutex::new(conn));
        let commits = Arc::new(AtomicU64::new(0));
        let (rows, queue) = mpsc::channel::<Queued>();
        let (c, n, p) = (conn.clone(), commits.clone(), path.to_path_buf());
        std::thread::Builder::new()
            .name("smartcar-mcp-audit".into())
            .spawn(move || commit_rows(&p, &c, &n, &queue))
            .map_err(|e| fail(format!("starting its committer: {e}")))?;
        Ok(Db {
            conn,
            rows: Mutex::new(rows),
            commits,
            usage: Mutex::new(tx),
        })
    }
}

impl Sqlite {
    /// The database at `path`: its folder is made now, the file is opened (created) on first use.
    pub(crate) fn open(path: &Path, commit: Commit) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::at(path, format!("creating its folder: {e}")))?;
        }
        Ok(Self::new(path, commit, false))
    }

    /// The file at `path` for reading only; nothing is created.
    pub(crate) fn read_only(path: &Path) -> Self {
        Self::new(path, Commit::Group, true)
    }

    fn new(path: &Path, commit: Commit, read_only: bool) -> Self {
        Sqlite {
            path: path.to_path_buf(),
            commit,
            db: OnceLock::new(),
            cap: OnceLock::new(),
            read_only,
            pushed: Pushed::default(),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn db(&self) -> Result<&Db, StoreError> {
        if self.read_only {
            return Err(StoreError::at(&self.path, "opened for reading only".into()));
        }
        let db = self.db.get_or_init(|| {
            let db = Db::open(&self.path);
            if let Err(e) = &db {
                tracing::error!("{e}");
            }
            db
        });
        db.as_ref().map_err(Clone::clone)
    }

    fn conn(&self) -> Result<std::sync::MutexGuard<'_, Connection>, StoreError> {
        Ok(self.db()?.conn.locked())
    }

    /// Transactions the audit connection has committed (group commit only), for the bench.
    pub(crate) fn commits(&self) -> u64 {
        match self.db.get() {
            Some(Ok(db)) => db.commits.load(Ordering::Relaxed),
            _ => 0,
        }
    }

    /// Queues `op` for the committer; the outcome comes through `reply`.
    fn queue(&self, op: Op, reply: Reply) -> Result<(), StoreError> {
        let gone = || StoreError::at(&self.path, "its committer thread stopped".into());
        self.db()?
            .rows
            .locked()
            .send(Queued { op, reply })
            .map_err(|_| gone())
    }

    /// Writes `op` durably, blocking this thread until it is on disk.
    fn write(&self, op: Op) -> Result<i64, StoreError> {
        if self.commit == Commit::PerRow {
            let conn = self.conn()?;
            return op.apply(&conn).map_err(|x| self.error(x));
        }
        let (tx, rx) = mpsc::sync_channel(1);
        self.queue(op, Reply::Thread(tx))?;
        rx.recv().unwrap_or_else(|_| Err(self.stopped()))
    }

    /// Writes `op` durably; the task waits, its worker thread does not.
    async fn write_async(&self, op: Op) -> Result<i64, StoreError> {
        if self.commit == Commit::PerRow {
            return self.write(op);
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.queue(op, Reply::Task(tx))?;
        rx.await.unwrap_or_else(|_| Err(self.stopped()))
    }

    fn stopped(&self) -> StoreError {
        StoreError::at(
            &self.path,
            "its committer thread stopped before answering".into(),
        )
    }

    fn error(&self, e: rusqlite::Error) -> StoreError {
        StoreError::at(&self.path, e.to_string())
    }

    /// `begin` on a thread that may block: the row joins the same group commit.
    #[cfg(test)]
    pub(crate) fn begin_blocking(&self, e: &Entry) -> Result<i64, StoreError> {
        self.write(Op::insert(e, &AuditState::Sent, None))
    }

    pub(crate) async fn begin(&self, e: &Entry<'_>) -> Result<i64, StoreError> {
        self.write_async(Op::insert(e, &AuditState::Sent, None))
            .await
    }

    pub(crate) async fn finish(&self, id: i64, f: &Finish<'_>) -> Result<(), StoreError> {
        self.write_async(Op::finish(id, f)).await.map(drop)
    }

    pub(crate) async fn note(
        &self,
        e: &Entry<'_>,
        state: &AuditState,
        why: Option<&str>,
    ) -> Result<(), StoreError> {
        self.write_async(Op::insert(e, state, why)).await.map(drop)
    }

    /// Rows through a connection of their own, as another process reads them.
    pub(crate) fn rows(&self, f: &RowFilter) -> Result<Vec<Row>, StoreError> {
        read_rows(&self.path, f)
    }

    pub(crate) fn add_usage(&self, vehicle: &str, tool: &str, counts: Counts) {
        let delta = UsageDelta {
            day: utc_day(),
            vehicle: vehicle.into(),
            tool: tool.into(),
            counts,
        };
        if let Ok(db) = self.db() {
            let _ = db.usage.locked().send(delta);
        }
    }

    pub(crate) fn usage_totals(&self) -> Result<Totals, StoreError> {
        if self.read_only {
            let conn = read_only(&self.path)?;
            return usage_totals(&conn).or_else(|e| {
                if e.to_string().contains("no such table") {
                    Ok(BTreeMap::new())
                } else {
                    Err(self.error(e))
                }
            });
        }
        usage_totals(&*self.conn()?).map_err(|e| self.error(e))
    }

    fn cap_conn(&self) -> Result<std::sync::MutexGuard<'_, Connection>, StoreError> {
        if self.read_only {
            return Err(StoreError::at(&self.path, "opened for reading only".into()));
        }
        let conn = self.cap.get_or_init(|| {
            // A count lost in a power cut errs towards more calls, never fewer records: the
            // audit log's own rows stay synchronous=FULL.
            let mut conn = open_conn(&self.path, "NORMAL").map_err(|e| self.error(e))?;
            migrate(&mut conn).map_err(|d| StoreError::at(&self.path, d))?;
            Ok(Mutex::new(conn))
        });
        match conn {
            Ok(c) => Ok(c.locked()),
            Err(e) => Err(e.clone()),
        }
    }

    /// One conditional upsert, the UTC day computed by SQLite, so processes sharing the file
    /// share the allowance. The day's first reservation for a vehicle starts from the calls the
    /// usage table already counts today (made before a limit was set, or before a restart).
    pub(crate) fn reserve_call(&self, vehicle: &str, limit: u64) -> Result<bool, StoreError> {
        let conn = self.cap_conn()?;
        let n = conn
            .execute(
                "INSERT INTO daily_calls (day, vehicle, calls)
                 SELECT date('now'), ?1, prior + 1 FROM (
                     SELECT COALESCE(SUM(upstream_calls), 0) AS prior FROM usage
                     WHERE day = date('now') AND vehicle_id = ?1
                 ) WHERE prior < ?2
                 ON CONFLICT (day, vehicle) DO UPDATE SET calls = calls + 1 WHERE calls < ?2",
                params![vehicle, limit as i64],
            )
            .map_err(|e| self.error(e))?;
        Ok(n == 1)
    }

    /// Takes `key` once: a row in `redeemed` until `valid_for` from now, expired rows cleared.
    pub(crate) fn redeem(&self, key: &str, valid_for: Duration) -> Result<bool, StoreError> {
        let conn = self.cap_conn()?;
        let secs = valid_for.as_secs_f64();
        conn.execute(
            "DELETE FROM redeemed WHERE until < strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            [],
        )
        .map_err(|e| self.error(e))?;
        let n = conn
            .execute(
                "INSERT INTO redeemed (key, until)
                 VALUES (?1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?2 || ' seconds'))
                 ON CONFLICT (key) DO NOTHING",
                params![key, format!("+{secs}")],
            )
            .map_err(|e| self.error(e))?;
        Ok(n == 1)
    }

    pub(crate) fn calls_today(&self, vehicle: &str) -> Result<u64, StoreError> {
        let conn = self.cap_conn()?;
        let n = conn
            .query_row(
                "SELECT calls FROM daily_calls WHERE day = date('now') AND vehicle = ?1",
                [vehicle],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map_err(|e| self.error(e))?;
        Ok(n.map_or(0, |n| n.max(0) as u64))
    }

    /// Adds `delta` to today's count, dropping a count that reaches zero so unanswered ids leave
    /// nothing behind.
    pub(crate) fn adjust_calls(&self, vehicle: &str, delta: i64) {
        let Ok(conn) = self.cap_conn() else {
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

/// Adds merged usage increments to the `usage` table, all or none.
fn write_usage(
    conn: &mut Connection,
    batch: &BTreeMap<(String, String, String), Counts>,
) -> Result<(), rusqlite::Error> {
    // IMMEDIATE: the write lock is waited for at BEGIN, never upgraded mid-transaction.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
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

fn usage_totals(conn: &Connection) -> Result<Totals, rusqlite::Error> {
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

fn read_only(path: &Path) -> Result<Connection, StoreError> {
    let fail = |detail: String| StoreError::at(path, detail);
    if !path.exists() {
        return Err(fail("no such file (nothing has been recorded yet)".into()));
    }
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| fail(e.to_string()))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| fail(e.to_string()))?;
    Ok(conn)
}

/// The rows `f` picks from the file at `path`, oldest first.
fn read_rows(path: &Path, f: &RowFilter) -> Result<Vec<Row>, StoreError> {
    let conn = read_only(path)?;
    let fail = |e: rusqlite::Error| StoreError::at(path, e.to_string());
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
    // A file from before migration 4 (read, never migrated, by `audit`) has no principal columns.
    let has_principal: bool = conn
        .query_row(
            "SELECT COUNT(*) FROM pragma_table_info('audit') WHERE name = 'principal'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map_err(fail)?
        > 0;
    let principal = if has_principal {
        "principal, principal_issuer"
    } else {
        "NULL, NULL"
    };
    let principal_filter = if has_principal {
        "(?3 IS NULL OR principal = ?3)"
    } else {
        "?3 IS NULL"
    };
    let mut s = conn
        .prepare(&format!(
            "SELECT id, at, tool, arguments, vehicle_id, user_id, caller, confirmation, state, outcome,
                    http_status, request_id, error, finished_at, {principal}
             FROM audit WHERE (?1 IS NULL OR at >= ?1) AND (?2 IS NULL OR vehicle_id = ?2)
               AND {principal_filter} ORDER BY id"
        ))
        .map_err(fail)?;
    let rows = s
        .query_map(params![f.since, f.vehicle, f.principal], |r| {
            let args: String = r.get(3)?;
            Ok(Row {
                id: r.get(0)?,
                at: r.get(1)?,
                tool: r.get(2)?,
                arguments: serde_json::from_str(&args).unwrap_or(Value::String(args)),
                vehicle_id: r.get(4)?,
                user_id: r.get(5)?,
                caller: r.get(6)?,
                principal: r.get(14)?,
                principal_issuer: r.get(15)?,
                confirmation: super::Confirmation::parse(&r.get::<_, String>(7)?),
                state: AuditState::parse(&r.get::<_, String>(8)?),
                outcome: r.get(9)?,
                http_status: r.get::<_, Option<i64>>(10)?.map(|s| s as u16),
                request_id: r.get(11)?,
                error: r.get(12)?,
                finished_at: r.get(13)?,
                replica: None,
            })
        })
        .map_err(fail)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Confirmation;
    use serde_json::{Map, json};

    fn read(
        path: &Path,
        since: Option<&str>,
        vehicle: Option<&str>,
    ) -> Result<Vec<Row>, StoreError> {
        read_rows(
            path,
            &RowFilter {
                since,
                vehicle,
                principal: None,
            },
        )
    }

    fn entry<'a>(args: &'a Map<String, Value>) -> Entry<'a> {
        Entry {
            tool: "unlock_vehicle",
            arguments: args,
            vehicle: Some("v-1"),
            user: Some("u-1"),
            caller: "stdio client=test",
            principal: None,
            principal_issuer: None,
            confirmation: Confirmation::Confirmed,
        }
    }

    #[tokio::test]
    async fn a_row_is_on_record_before_the_outcome_and_completed_after() {
        let dir = std::env::temp_dir().join(format!("smartcar-mcp-audit-{}", std::process::id()));
        let path = dir.join("a.sqlite3");
        let _ = std::fs::remove_file(&path);
        let audit = Sqlite::open(&path, Commit::Group).unwrap();
        let args = json!({"vehicle_id": "v-1", "user_id": "u-1"})
            .as_object()
            .cloned()
            .unwrap();
        let id = audit.begin(&entry(&args)).await.unwrap();
        // Another process reading now sees the command as sent with no outcome.
        let rows = read(&path, None, Some("v-1")).unwrap();
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
            .await
            .unwrap();
        audit
            .note(&entry(&args), &AuditState::DryRun, None)
            .await
            .unwrap();
        let rows = read(&path, None, None).unwrap();
        assert_eq!(rows[0].status(), "done: SUCCESS");
        assert_eq!(rows[0].request_id.as_deref(), Some("req-9"));
        assert_eq!(rows[1].status(), "dry run");
        assert!(read(&path, Some("2999-01-01"), None).unwrap().is_empty());
        assert!(read(&path, None, Some("v-2")).unwrap().is_empty());
        drop(audit);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn fresh(name: &str) -> (PathBuf, PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("smartcar-mcp-audit-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("a.sqlite3");
        (dir, path)
    }

    fn args_of(vehicle: &str) -> Map<String, Value> {
        json!({ "vehicle_id": vehicle, "user_id": "u-1" })
            .as_object()
            .cloned()
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_begins_get_distinct_ids_each_on_record_before_it_returns() {
        let (dir, path) = fresh("group");
        let audit = Arc::new(Sqlite::open(&path, Commit::Group).unwrap());
        let calls = (0..64).map(|i| {
            let (audit, path) = (audit.clone(), path.clone());
            tokio::spawn(async move {
                let vehicle = format!("v-{i}");
                let args = args_of(&vehicle);
                let e = Entry {
                    vehicle: Some(&vehicle),
                    ..entry(&args)
                };
                let id = audit.begin(&e).await.unwrap();
                // Read by another connection the moment begin returns, as a second process would.
                let mine = read(&path, None, Some(&vehicle)).unwrap();
                assert_eq!(mine.len(), 1, "{vehicle}: {mine:?}");
                assert_eq!(mine[0].id, id);
                assert_eq!(mine[0].status(), "sent, outcome unknown");
                id
            })
        });
        let mut ids: Vec<i64> = futures::future::join_all(calls)
            .await
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
        // And threads that block on `begin` join the same queue.
        let threads: Vec<_> = (64..80)
            .map(|i| {
                let audit = audit.clone();
                std::thread::spawn(move || {
                    let vehicle = format!("v-{i}");
                    let args = args_of(&vehicle);
                    audit
                        .begin_blocking(&Entry {
                            vehicle: Some(&vehicle),
                            ..entry(&args)
                        })
                        .unwrap()
                })
            })
            .collect();
        ids.extend(threads.into_iter().map(|t| t.join().unwrap()));
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 80, "every row its own id");
        let rows = read(&path, None, None).unwrap();
        assert_eq!(rows.iter().map(|r| r.id).collect::<Vec<_>>(), ids);
        assert!(audit.commits() >= 1 && audit.commits() <= 80);
        let done = Finish {
            ok: true,
            outcome: Some("SUCCESS"),
            http_status: Some(200),
            request_id: None,
            error: None,
        };
        let finishes = ids.iter().map(|id| audit.finish(*id, &done));
        for r in futures::future::join_all(finishes).await {
            r.unwrap();
        }
        let rows = read(&path, None, None).unwrap();
        assert!(rows.iter().all(|r| r.status() == "done: SUCCESS"));
        drop(audit);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_batch_that_cannot_be_written_fails_every_caller_in_it_and_leaves_nothing() {
        let (dir, path) = fresh("fails");
        let audit = Arc::new(Sqlite::open(&path, Commit::Group).unwrap());
        let args = args_of("v-1");
        audit.begin(&entry(&args)).await.unwrap();
        // What a full disk or a failing device does to a write, made certain: every insert fails.
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TRIGGER no_room BEFORE INSERT ON audit
                 BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
            )
            .unwrap();
        let calls = (0..32).map(|i| {
            let audit = audit.clone();
            tokio::spawn(async move {
                let vehicle = format!("v-{i}");
                let args = args_of(&vehicle);
                let e = Entry {
                    vehicle: Some(&vehicle),
                    ..entry(&args)
                };
                audit.begin(&e).await
            })
        });
        for r in futures::future::join_all(calls).await {
            let e = r.unwrap().unwrap_err();
            assert!(e.detail.contains("disk is full"), "{e}");
        }
        assert!(audit.begin_blocking(&entry(&args)).is_err());
        assert_eq!(read(&path, None, None).unwrap().len(), 1);
        drop(audit);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn rows_committed_one_by_one_read_the_same() {
        let (dir, path) = fresh("per-row");
        let audit = Sqlite::open(&path, Commit::PerRow).unwrap();
        let args = args_of("v-1");
        let id = audit.begin(&entry(&args)).await.unwrap();
        assert_eq!(
            read(&path, None, None).unwrap()[0].status(),
            "sent, outcome unknown"
        );
        audit
            .finish(
                id,
                &Finish {
                    ok: false,
                    outcome: Some("UPSTREAM"),
                    http_status: Some(500),
                    request_id: None,
                    error: Some("boom"),
                },
            )
            .await
            .unwrap();
        assert_eq!(read(&path, None, None).unwrap()[0].status(), "failed: boom");
        assert_eq!(audit.commits(), 0, "no committer transactions");
        drop(audit);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

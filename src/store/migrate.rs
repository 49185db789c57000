//! The SQLite schema as numbered steps, applied at open under SQLite's write lock and recorded in
//! `PRAGMA user_version`, so processes opening one file together apply each step once.
//!
//! Files written before the steps existed hold version 0 with every table already there: the
//! first steps say `IF NOT EXISTS` so such a file adopts its own tables and keeps its rows.

use rusqlite::{Connection, TransactionBehavior};

/// Step `i` takes the file from version `i` to `i + 1`. Append only: a shipped step never changes.
pub(crate) const STEPS: &[&str] = &[
    // 1: the audit log and the usage counters.
    "CREATE TABLE IF NOT EXISTS audit (
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
    );",
    // 2: the daily allowance's reservations.
    "CREATE TABLE IF NOT EXISTS daily_calls (
        day TEXT NOT NULL,
        vehicle TEXT NOT NULL,
        calls INTEGER NOT NULL,
        PRIMARY KEY (day, vehicle)
    );",
    // 3: confirmation answers already taken, until they would have expired (issue 25).
    "CREATE TABLE IF NOT EXISTS redeemed (
        key TEXT PRIMARY KEY,
        until TEXT NOT NULL
    );",
    // 4: the OAuth caller (subject and issuer) of each audited call; null for the operator's own.
    "ALTER TABLE audit ADD COLUMN principal TEXT;
    ALTER TABLE audit ADD COLUMN principal_issuer TEXT;
    CREATE INDEX IF NOT EXISTS audit_principal ON audit (principal, at);",
];

/// The version a file is at after `migrate`.
pub(crate) fn latest() -> i64 {
    STEPS.len() as i64
}

pub(crate) fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Brings the file at `conn` to the latest version; a file from a newer release is refused
/// rather than written with a schema this one does not know.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), String> {
    let err = |e: rusqlite::Error| e.to_string();
    // Read without the write lock first: every open after the first finds nothing to do.
    if version(conn).map_err(err)? == latest() {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err)?;
    let at = version(&tx).map_err(err)?;
    if at > latest() {
        return Err(format!(
            "schema version {at} is newer than this smartcar-mcp knows ({}); use a newer release",
            latest()
        ));
    }
    for (i, step) in STEPS.iter().enumerate().skip(at.max(0) as usize) {
        tx.execute_batch(step).map_err(err)?;
        // user_version lives in the file header and commits with the step.
        tx.pragma_update(None, "user_version", i as i64 + 1)
            .map_err(err)?;
    }
    tx.commit().map_err(err)
}

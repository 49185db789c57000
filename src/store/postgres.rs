//! The PostgreSQL backend (`--store postgres://…`): the state several replicas share. The audit
//! log (one table, a `replica` column), usage and the daily allowance (a conditional upsert, the
//! UTC day by the database's clock), pushed state, redeemed confirmations and handshake sessions.
//!
//! - Audit rows are inserted and committed (`synchronous_commit` as the server has it, on by
//!   default) before the request leaves. Each replica holds a session-level advisory lock on its
//!   id over a connection of its own with TCP keepalives; the lock goes with the process. A
//!   sweep on every replica takes the lock of each replica with open rows: one it can take is
//!   dead, and its open rows are marked "sent, outcome unknown" with the reason.
//! - Pushed state: each replica keeps it in memory (`Pushed`, the same code as the other
//!   backends) as a copy of a shared log. An event is applied here, then appended to
//!   `pushed_event` unless its `eventId` is already in `webhook_event` (deduplicated fleet-wide),
//!   with a `NOTIFY`; every replica LISTENs, reads the log past what it has applied, and applies
//!   it, announcing the change to its own subscribers. After a lost LISTEN connection the same
//!   read catches up, so nothing is missed while it was away. Newest `oemUpdatedAt` wins in each
//!   copy, so the order events arrive in does not matter. A command's "stale" mark is a log entry
//!   too.
//! - The database lost mid-run: writes fail, so commands are refused (no audit row, no command);
//!   reads need nothing from it and go on.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use serde_json::Value;
use tokio::sync::OnceCell;

use super::StoreError;
use super::audit::{AuditState, Entry, Finish, Row, RowFilter, now};
use super::postgres_conn::{REPLICA_KEY, Target, migrate};
use super::pushed::{Ingested, Pushed};
use super::usage::{Counts, Totals};
use crate::sync::Locked;

/// The UTC day, by the database's clock, as SQLite writes it (`YYYY-MM-DD`).
const DAY: &str = "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD')";
/// The channel pushed state's log is announced on.
const CHANNEL: &str = "smartcar_mcp_pushed";
/// How often each replica looks for dead replicas' open rows, and prunes what has expired.
const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// How long an `eventId` and the pushed log are kept: Smartcar retries for far less.
const KEEP_EVENTS: &str = "interval '1 day'";
/// Most connections a replica opens from its pool (the lock and LISTEN connections are apart).
const POOL_SIZE: usize = 16;

pub struct Postgres {
    target: Target,
    replica: String,
    pool: Pool,
    /// Connected, migrated, the replica lock held and the listener running: once, on first use or
    /// at start (`ready`).
    started: OnceCell<Result<(), StoreError>>,
    /// For `audit`: reads only, no lock, no listener, no migration.
    read_only: bool,
    pub(crate) pushed: Arc<Pushed>,
    /// Log entries already applied here: this replica's own (applied as written) and those the
    /// listener read.
    applied: Applied,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Held (read) by each allowance give-back in flight, so a count read after a reservation was
    /// dropped sees it given back.
    giving_back: Arc<tokio::sync::RwLock<()>>,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        for t in self.tasks.locked().drain(..) {
            t.abort();
        }
    }
}

fn row_of(r: &tokio_postgres::Row) -> Row {
    let text = |i: usize| r.get::<_, Option<String>>(i);
    let arguments: String = r.get(3);
    Row {
        id: r.get(0),
        at: r.get(1),
        tool: r.get(2),
        arguments: serde_json::from_str(&arguments).unwrap_or(Value::Null),
        vehicle_id: text(4),
        user_id: text(5),
        caller: r.get(6),
        confirmation: super::Confirmation::parse(&r.get::<_, String>(7)),
        state: AuditState::parse(&r.get::<_, String>(8)),
        outcome: text(9),
        http_status: r
            .get::<_, Option<i32>>(10)
            .and_then(|s| u16::try_from(s).ok()),
        request_id: text(11),
        error: text(12),
        finished_at: text(13),
        replica: text(14),
        principal: text(15),
        principal_issuer: text(16),
    }
}

impl Postgres {
    /// The database at `url`, for replica `replica`; nothing is connected until `ready` or the
    /// first use.
    pub(crate) fn new(url: &str, replica: &str, read_only: bool) -> Result<Self, StoreError> {
        let target = Target::parse(url).map_err(|detail| StoreError {
            path: super::postgres_conn::without_password(url),
            detail,
        })?;
        let manager = Manager::from_config(
            target.config.clone(),
            target.tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(10)))
            .create_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| StoreError {
                path: target.shown.clone(),
                detail: e.to_string(),
            })?;
        Ok(Postgres {
            target,
            replica: replica.to_string(),
            pool,
            started: OnceCell::new(),
            read_only,
            pushed: Arc::new(Pushed::default()),
            applied: Applied::default(),
            tasks: Mutex::default(),
            giving_back: Arc::default(),
        })
    }

    pub(crate) fn shown(&self) -> &str {
        &self.target.shown
    }

    pub(crate) fn replica(&self) -> &str {
        &self.replica
    }

    fn error(&self, detail: impl std::fmt::Display) -> StoreError {
        StoreError {
            path: self.target.shown.clone(),
            detail: detail.to_string(),
        }
    }

    /// Connects, migrates, takes the replica's lock and starts the listener and the sweep; the
    /// first error, for good (a replica that cannot start says so at start).
    pub(crate) async fn ready(&self) -> Result<(), StoreError> {
        self.started.get_or_init(|| self.start()).await.clone()
    }

    async fn start(&self) -> Result<(), StoreError> {
        let (mut client, driver) = self
            .target
            .connect(None)
            .await
            .map_err(|e| self.error(format!("cannot connect: {}", describe(&e))))?;
        if self.read_only {
            driver.abort();
            return Ok(());
        }
        migrate(&mut client)
            .await
            .map_err(|e| self.error(format!("migrating its schema: {e}")))?;
        // This connection now holds the replica's lock for the life of the process.
        let held: bool = client
            .query_one(
                &format!("SELECT pg_try_advisory_lock({REPLICA_KEY})"),
                &[&self.replica],
            )
            .await
            .map_err(|e| self.error(e))?
            .get(0);
        if !held {
            return Err(self.error(format!(
                "replica id {:?} is held by another live process; give each replica its own --replica-id",
                self.replica
            )));
        }
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let started = [
            tokio::spawn(hold_lock(
                self.target.clone(),
                self.replica.clone(),
                client,
                driver,
            )),
            tokio::spawn(sweep(self.pool.clone(), self.replica.clone())),
            tokio::spawn(listen(
                self.target.clone(),
                self.pushed.clone(),
                self.applied.clone(),
                ready_tx,
            )),
        ];
        self.tasks.locked().extend(started);
        // The first catch-up done, a read after start sees what the fleet had pushed before.
        let _ = tokio::time::timeout(Duration::from_secs(10), ready_rx).await;
        Ok(())
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.ready().await?;
        self.pool.get().await.map_err(|e| self.error(e))
    }

    // The audit log.

    async fn insert(
        &self,
        e: &Entry<'_>,
        state: &AuditState,
        error: Option<&str>,
    ) -> Result<i64, StoreError> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "INSERT INTO audit (at, tool, arguments, vehicle_id, user_id, caller, confirmation, state, error, replica,
                                    principal, principal_issuer)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
            )
            .await
            .map_err(|e| self.error(e))?;
        let arguments = serde_json::to_string(e.arguments).unwrap_or_default();
        let row = c
            .query_one(
                &stmt,
                &[
                    &now(),
                    &e.tool,
                    &arguments,
                    &e.vehicle,
                    &e.user,
                    &e.caller,
                    &e.confirmation.as_str(),
                    &state.as_str(),
                    &error,
                    &self.replica,
                    &e.principal,
                    &e.principal_issuer,
                ],
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(row.get(0))
    }

    pub(crate) async fn begin(&self, e: &Entry<'_>) -> Result<i64, StoreError> {
        self.insert(e, &AuditState::Sent, None).await
    }

    pub(crate) async fn finish(&self, id: i64, f: &Finish<'_>) -> Result<(), StoreError> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "UPDATE audit SET state = $2, outcome = $3, http_status = $4, request_id = $5,
                 error = $6, finished_at = $7 WHERE id = $1",
            )
            .await
            .map_err(|e| self.error(e))?;
        let state = if f.ok { "done" } else { "failed" };
        c.execute(
            &stmt,
            &[
                &id,
                &state,
                &f.outcome,
                &f.http_status.map(i32::from),
                &f.request_id,
                &f.error,
                &now(),
            ],
        )
        .await
        .map_err(|e| self.error(e))?;
        Ok(())
    }

    pub(crate) async fn note(
        &self,
        e: &Entry<'_>,
        state: &AuditState,
        why: Option<&str>,
    ) -> Result<(), StoreError> {
        self.insert(e, state, why).await.map(drop)
    }

    pub(crate) async fn rows(&self, f: &RowFilter<'_>) -> Result<Vec<Row>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT id, at, tool, arguments, vehicle_id, user_id, caller, confirmation, state,
                        outcome, http_status, request_id, error, finished_at, replica,
                        principal, principal_issuer
                 FROM audit
                 WHERE ($1::text IS NULL OR at >= $1) AND ($2::text IS NULL OR vehicle_id = $2)
                   AND ($3::text IS NULL OR principal = $3)
                 ORDER BY id",
                &[&f.since, &f.vehicle, &f.principal],
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(rows.iter().map(row_of).collect())
    }

    /// Marks the open rows of every dead replica (one whose lock can be taken) "outcome
    /// unknown" now, as the background sweep does every few seconds; the rows marked.
    pub(crate) async fn sweep_now(&self) -> Result<u64, StoreError> {
        self.ready().await?;
        sweep_once(&self.pool, &self.replica)
            .await
            .map_err(|e| self.error(e))
    }

    // Usage.

    pub(crate) fn add_usage(&self, vehicle: &str, tool: &str, counts: Counts) {
        let (pool, vehicle, tool) = (self.pool.clone(), vehicle.to_string(), tool.to_string());
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let ready = self.started.get().is_some_and(Result::is_ok);
        rt.spawn(async move {
            if !ready {
                return;
            }
            if let Err(e) = write_usage(&pool, &vehicle, &tool, &counts).await {
                tracing::warn!("usage not recorded in the store: {e}");
            }
        });
    }

    pub(crate) async fn usage_totals(&self) -> Result<Totals, StoreError> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT vehicle_id, tool, SUM(upstream_calls)::bigint, SUM(coalesced)::bigint,
                        SUM(cached)::bigint, SUM(pushed)::bigint, SUM(rate_limited)::bigint
                 FROM usage GROUP BY vehicle_id, tool",
                &[],
            )
            .await
            .map_err(|e| self.error(e))?;
        let n = |r: &tokio_postgres::Row, i| r.get::<_, i64>(i).max(0) as u64;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    (r.get(0), r.get(1)),
                    Counts {
                        upstream_calls: n(r, 2),
                        coalesced: n(r, 3),
                        cached: n(r, 4),
                        pushed: n(r, 5),
                        rate_limited: n(r, 6),
                    },
                )
            })
            .collect())
    }

    // The daily allowance.

    /// One conditional upsert: the row is created at the usage already counted today plus one,
    /// or its count raised by one, only while under `limit`. PostgreSQL serialises the racers on
    /// the row, so of N replicas racing for the last slot exactly one gets a row back.
    pub(crate) async fn reserve_call(&self, vehicle: &str, limit: u64) -> Result<bool, StoreError> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!(
                "INSERT INTO daily_calls (day, vehicle, calls)
                 SELECT {DAY}, $1, prior + 1 FROM (
                     SELECT COALESCE(SUM(upstream_calls), 0)::bigint AS prior FROM usage
                     WHERE day = {DAY} AND vehicle_id = $1
                 ) u WHERE prior < $2
                 ON CONFLICT (day, vehicle) DO UPDATE SET calls = daily_calls.calls + 1
                 WHERE daily_calls.calls < $2
                 RETURNING calls"
            ))
            .await
            .map_err(|e| self.error(e))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let row = c
            .query_opt(&stmt, &[&vehicle, &limit])
            .await
            .map_err(|e| self.error(e))?;
        Ok(row.is_some())
    }

    pub(crate) async fn calls_today(&self, vehicle: &str) -> Result<u64, StoreError> {
        // Give-backs still in flight finish first.
        drop(self.giving_back.write().await);
        let c = self.client().await?;
        let n: Option<i64> = c
            .query_opt(
                &format!("SELECT calls FROM daily_calls WHERE day = {DAY} AND vehicle = $1"),
                &[&vehicle],
            )
            .await
            .map_err(|e| self.error(e))?
            .map(|r| r.get(0));
        Ok(n.map_or(0, |n| n.max(0) as u64))
    }

    pub(crate) async fn adjust_calls(&self, vehicle: &str, delta: i64) {
        if let Err(e) = adjust_calls(&self.pool, vehicle, delta).await {
            tracing::warn!("the daily allowance not adjusted: {e}");
        }
    }

    /// `adjust_calls` from a place that cannot wait (a dropped reservation).
    pub(crate) fn adjust_calls_later(&self, vehicle: &str, delta: i64) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (pool, vehicle) = (self.pool.clone(), vehicle.to_string());
        let guard = self.giving_back.clone().try_read_owned().ok();
        rt.spawn(async move {
            if let Err(e) = adjust_calls(&pool, &vehicle, delta).await {
                tracing::warn!("the daily allowance not adjusted: {e}");
            }
            drop(guard);
        });
    }

    // Pushed state.

    /// Applies `event` here, then shares it unless another replica already did (same `eventId`):
    /// only the first replica to share an event hears `Updated`.
    pub(crate) async fn ingest(&self, event: &Value) -> Ingested {
        let here = self.pushed.ingest(event);
        if !matches!(here, Ingested::Updated { .. } | Ingested::Unchanged) {
            return here;
        }
        match self.share(event).await {
            Ok(true) => here,
            Ok(false) => Ingested::Unchanged,
            Err(e) => {
                tracing::warn!(
                    "store: a pushed event applied on this replica only (the others read it when they receive it): {e}"
                );
                here
            }
        }
    }

    async fn share(&self, event: &Value) -> Result<bool, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(|e| self.error(e))?;
        if let Some(id) = event.get("eventId").and_then(Value::as_str) {
            let fresh = tx
                .execute(
                    "INSERT INTO webhook_event (event_id) VALUES ($1) ON CONFLICT DO NOTHING",
                    &[&id],
                )
                .await
                .map_err(|e| self.error(e))?;
            if fresh == 0 {
                return Ok(false);
            }
        }
        let vehicle = event.get("vehicleId").and_then(Value::as_str);
        self.append(&tx, vehicle, Some(&event.to_string())).await?;
        tx.commit().await.map_err(|e| self.error(e))?;
        Ok(true)
    }

    async fn append(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        vehicle: Option<&str>,
        event: Option<&str>,
    ) -> Result<(), StoreError> {
        let seq: i64 = tx
            .query_one(
                &format!(
                    "WITH e AS (INSERT INTO pushed_event (replica, vehicle, event) VALUES ($1, $2, $3) RETURNING seq)
                     SELECT seq, pg_notify('{CHANNEL}', seq::text) FROM e"
                ),
                &[&self.replica, &vehicle, &event],
            )
            .await
            .map_err(|e| self.error(e))?
            .get(0);
        // Known as applied before it commits, so the listener never replays it here: a replayed
        // "stale" after a newer event would make the newer state stale.
        self.applied.locked().insert(seq);
        Ok(())
    }

    /// A command was sent: stale here now, and on every replica as the log reaches it.
    pub(crate) async fn mark_stale(&self, vehicle_id: Option<&str>) {
        self.pushed.mark_stale(vehicle_id);
        let shared = async {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(|e| self.error(e))?;
            self.append(&tx, vehicle_id, None).await?;
            tx.commit().await.map_err(|e| self.error(e))
        };
        if let Err(e) = shared.await {
            tracing::warn!("store: pushed state marked stale on this replica only: {e}");
        }
    }

    // Confirmations and sessions.

    pub(crate) async fn redeem(&self, key: &str, valid_for: Duration) -> Result<bool, StoreError> {
        let c = self.client().await?;
        let secs = valid_for.as_secs_f64();
        let n = c
            .execute(
                "INSERT INTO redeemed (key, until) VALUES ($1, now() + make_interval(secs => $2))
                 ON CONFLICT (key) DO UPDATE SET until = EXCLUDED.until WHERE redeemed.until < now()",
                &[&key, &secs],
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(n == 1)
    }

    pub(crate) async fn session_load(&self, id: &str) -> Result<Option<String>, StoreError> {
        let c = self.client().await?;
        let r = c
            .query_opt(
                "UPDATE mcp_session SET touched = now() WHERE id = $1 RETURNING state",
                &[&id],
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(r.map(|r| r.get(0)))
    }

    pub(crate) async fn session_store(&self, id: &str, state: &str) -> Result<(), StoreError> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO mcp_session (id, state) VALUES ($1, $2)
             ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, touched = now()",
            &[&id, &state],
        )
        .await
        .map_err(|e| self.error(e))?;
        Ok(())
    }

    pub(crate) async fn session_delete(&self, id: &str) -> Result<(), StoreError> {
        let c = self.client().await?;
        c.execute("DELETE FROM mcp_session WHERE id = $1", &[&id])
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }
}

/// Sequence numbers of pushed log entries applied here.
type Applied = Arc<Mutex<std::collections::BTreeSet<i64>>>;

/// What went wrong connecting, with the server's own message when it sent one.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                s = format!("{s}: {inner}");
                src = inner.source();
            }
            s
        }
    }
}

async fn write_usage(
    pool: &Pool,
    vehicle: &str,
    tool: &str,
    c: &Counts,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let client = pool.get().await?;
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    client
        .execute(
            &format!(
                "INSERT INTO usage (day, vehicle_id, tool, upstream_calls, coalesced, cached, pushed, rate_limited)
                 VALUES ({DAY}, $1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (day, vehicle_id, tool) DO UPDATE SET
                   upstream_calls = usage.upstream_calls + EXCLUDED.upstream_calls,
                   coalesced = usage.coalesced + EXCLUDED.coalesced,
                   cached = usage.cached + EXCLUDED.cached,
                   pushed = usage.pushed + EXCLUDED.pushed,
                   rate_limited = usage.rate_limited + EXCLUDED.rate_limited"
            ),
            &[
                &vehicle,
                &tool,
                &n(c.upstream_calls),
                &n(c.coalesced),
                &n(c.cached),
                &n(c.pushed),
                &n(c.rate_limited),
            ],
        )
        .await?;
    Ok(())
}

async fn adjust_calls(
    pool: &Pool,
    vehicle: &str,
    delta: i64,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let client = pool.get().await?;
    client
        .execute(
            &format!(
                "UPDATE daily_calls SET calls = GREATEST(calls + $2, 0) WHERE day = {DAY} AND vehicle = $1"
            ),
            &[&vehicle, &delta],
        )
        .await?;
    client
        .execute(
            &format!("DELETE FROM daily_calls WHERE day = {DAY} AND vehicle = $1 AND calls = 0"),
            &[&vehicle],
        )
        .await?;
    Ok(())
}

/// Keeps the replica's lock connection open; if it drops (the database restarted, the network
/// broke), reconnects and takes the lock again.
async fn hold_lock(
    target: Target,
    replica: String,
    mut client: tokio_postgres::Client,
    mut driver: tokio::task::JoinHandle<()>,
) {
    loop {
        let _ = (&mut driver).await;
        drop(client);
        tracing::warn!("store: the replica lock's connection was lost; reconnecting");
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let Ok((c, d)) = target.connect(None).await else {
                continue;
            };
            match c
                .query_one(
                    &format!("SELECT pg_try_advisory_lock({REPLICA_KEY})"),
                    &[&replica],
                )
                .await
            {
                Ok(r) if r.get::<_, bool>(0) => {
                    (client, driver) = (c, d);
                    break;
                }
                _ => d.abort(),
            }
        }
    }
}

/// Every `SWEEP_EVERY`: dead replicas' open rows marked, expired ids, events and sessions pruned.
async fn sweep(pool: Pool, me: String) {
    loop {
        if let Err(e) = sweep_once(&pool, &me).await {
            tracing::debug!("store: sweep: {e}");
        }
        if let Err(e) = prune(&pool).await {
            tracing::debug!("store: pruning: {e}");
        }
        tokio::time::sleep(SWEEP_EVERY).await;
    }
}

async fn sweep_once(
    pool: &Pool,
    me: &str,
) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
    let mut client = pool.get().await?;
    let open = client
        .query(
            "SELECT DISTINCT replica FROM audit
             WHERE state = 'sent' AND finished_at IS NULL AND replica <> $1",
            &[&me],
        )
        .await?;
    let mut marked = 0;
    for r in open {
        let replica: String = r.get(0);
        let tx = client.transaction().await?;
        // Transaction-scoped: released at commit, never left on a pooled connection.
        let dead: bool = tx
            .query_one(
                &format!("SELECT pg_try_advisory_xact_lock({REPLICA_KEY})"),
                &[&replica],
            )
            .await?
            .get(0);
        if dead {
            let why = format!("replica {replica} stopped before the answer came");
            marked += tx
                .execute(
                    "UPDATE audit SET outcome = 'unknown', error = $2, finished_at = $3
                     WHERE replica = $1 AND state = 'sent' AND finished_at IS NULL",
                    &[&replica, &why, &now()],
                )
                .await?;
        }
        tx.commit().await?;
        if dead {
            tracing::warn!(
                replica,
                "store: a dead replica's open commands marked outcome unknown"
            );
        }
    }
    Ok(marked)
}

async fn prune(pool: &Pool) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let client = pool.get().await?;
    client
        .batch_execute(&format!(
            "DELETE FROM webhook_event WHERE at < now() - {KEEP_EVENTS};
             DELETE FROM pushed_event WHERE at < now() - {KEEP_EVENTS};
             DELETE FROM redeemed WHERE until < now();
             DELETE FROM mcp_session WHERE touched < now() - interval '1 day';"
        ))
        .await?;
    Ok(())
}

/// LISTENs for pushed state's log and applies what is new; after a lost connection, reconnects
/// and reads everything past the last entry applied, so nothing pushed meanwhile is missed.
async fn listen(
    target: Target,
    pushed: Arc<Pushed>,
    applied: Applied,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let mut last: i64 = 0;
    let mut ready = Some(ready);
    loop {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        match target.connect(Some(tx)).await {
            Ok((client, driver)) => {
                if client
                    .batch_execute(&format!("LISTEN {CHANNEL}"))
                    .await
                    .is_ok()
                {
                    // Caught up once before waiting: what was pushed while not listening.
                    let mut alive = catch_up(&client, &pushed, &mut last, &applied)
                        .await
                        .is_ok();
                    if let Some(r) = ready.take() {
                        let _ = r.send(());
                    }
                    while alive && rx.recv().await.is_some() {
                        while rx.try_recv().is_ok() {}
                        alive = catch_up(&client, &pushed, &mut last, &applied)
                            .await
                            .is_ok();
                    }
                }
                driver.abort();
                tracing::warn!("store: the LISTEN connection was lost; reconnecting");
            }
            Err(e) => tracing::debug!("store: LISTEN connection: {e}"),
        }
        if let Some(r) = ready.take() {
            let _ = r.send(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Log entries past `last`, and those of the last seconds again: a sequence number is taken at
/// insert but seen at commit, so an entry numbered below one already applied may still appear.
/// `applied` keeps each entry from being applied twice.
async fn catch_up(
    client: &tokio_postgres::Client,
    pushed: &Pushed,
    last: &mut i64,
    applied: &Applied,
) -> Result<(), tokio_postgres::Error> {
    loop {
        let rows = client
            .query(
                "SELECT seq, vehicle, event FROM pushed_event
                 WHERE seq > $1 OR (seq > $1 - 10000 AND at > now() - interval '10 seconds')
                 ORDER BY seq LIMIT 500",
                &[&*last],
            )
            .await?;
        let mut new = 0;
        for r in &rows {
            let seq: i64 = r.get(0);
            if !applied.locked().insert(seq) {
                continue;
            }
            new += 1;
            *last = (*last).max(seq);
            match r.get::<_, Option<String>>(2) {
                Some(event) => {
                    if let Ok(v) = serde_json::from_str::<Value>(&event) {
                        pushed.ingest(&v);
                    }
                }
                None => pushed.mark_stale(r.get::<_, Option<String>>(1).as_deref()),
            }
        }
        let floor = *last - 10_000;
        let mut a = applied.locked();
        let kept = a.split_off(&floor);
        *a = kept;
        drop(a);
        if rows.len() < 500 || new == 0 {
            return Ok(());
        }
    }
}

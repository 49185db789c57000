//! The store's conformance suite: every backend behind `Store` must pass `conformance`, so a new
//! one (PostgreSQL) is done when it passes too. Then what only SQLite has: its file shared by
//! handles, and its numbered migrations over a file of the layout before them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use smartcar_mcp::store::pushed::{MAX_SIGNALS_PER_VEHICLE, MAX_VEHICLES};
use smartcar_mcp::store::{
    AuditState, Confirmation, Counts, Entry, Finish, Ingested, RowFilter, Store, VehicleState,
};

fn temp_db(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "smartcar-mcp-store-{}-{name}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir.join("audit.sqlite3")
}

fn args(vehicle: &str) -> Map<String, Value> {
    json!({ "vehicle_id": vehicle, "user_id": "u-1" })
        .as_object()
        .cloned()
        .unwrap()
}

fn entry<'a>(tool: &'a str, args: &'a Map<String, Value>, c: Confirmation) -> Entry<'a> {
    Entry {
        tool,
        arguments: args,
        vehicle: args.get("vehicle_id").and_then(Value::as_str),
        user: args.get("user_id").and_then(Value::as_str),
        caller: "stdio client=test",
        principal: None,
        principal_issuer: None,
        confirmation: c,
    }
}

fn state_event(event_id: &str, vehicle: &str, code: &str, value: Value, oem_ms: i64) -> Value {
    json!({
        "eventId": event_id, "eventType": "VEHICLE_STATE", "vehicleId": vehicle,
        "data": {
            "user": { "id": "u-1" },
            "vehicle": { "id": vehicle, "make": "TESLA", "model": "Model 3", "year": 2023 },
            "signals": [{ "code": code, "name": "Locked", "group": "Closure",
                          "body": { "value": value }, "meta": { "oemUpdatedAt": oem_ms } }]
        }
    })
}

/// What every backend must do. `make` gives a fresh, empty store of the backend under test.
async fn conformance<F: std::future::Future<Output = Store>>(make: impl Fn() -> F) {
    audit_rows(&make().await).await;
    usage_totals(&make().await).await;
    reservations(&make().await).await;
    last_slot_race(Arc::new(make().await)).await;
    pushed_state(&make().await).await;
    redemption(&make().await).await;
}

/// A confirmation answer is taken once; another answer is its own.
async fn redemption(store: &Store) {
    let ttl = Duration::from_secs(60);
    assert!(store.redeem("answer-1", ttl).await.unwrap());
    assert!(
        !store.redeem("answer-1", ttl).await.unwrap(),
        "a second use of one answer is refused"
    );
    assert!(store.redeem("answer-2", ttl).await.unwrap());
    assert!(
        store
            .redeem("short", Duration::from_millis(1))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(
        store.redeem("short", ttl).await.unwrap(),
        "an answer past its life is forgotten (it no longer opens anyway)"
    );
}

/// Rows come back in the order written, with their states, a finish completing its row.
async fn audit_rows(store: &Store) {
    let (a, b) = (args("v-1"), args("v-2"));
    let sent = store
        .begin(&entry("unlock_vehicle", &a, Confirmation::Confirmed))
        .await
        .unwrap();
    let rows = store.rows(&RowFilter::default()).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].id, sent);
    assert_eq!(rows[0].state, AuditState::Sent);
    assert_eq!(rows[0].status(), "sent, outcome unknown");
    assert_eq!(
        rows[0].arguments,
        json!({"vehicle_id": "v-1", "user_id": "u-1"})
    );
    store
        .note(
            &entry("lock_vehicle", &b, Confirmation::NotAsked),
            AuditState::DryRun,
            None,
        )
        .await
        .unwrap();
    store
        .note(
            &entry("lock_vehicle", &b, Confirmation::Refused),
            AuditState::Refused,
            Some("declined"),
        )
        .await
        .unwrap();
    let failed = store
        .begin(&entry("stop_charge", &b, Confirmation::Off))
        .await
        .unwrap();
    assert!(failed > sent, "ids grow");
    let done = Finish {
        ok: true,
        outcome: Some("SUCCESS"),
        http_status: Some(200),
        request_id: Some("req-9"),
        error: None,
    };
    store.finish(sent, &done).await.unwrap();
    let boom = Finish {
        ok: false,
        outcome: Some("UPSTREAM"),
        http_status: Some(500),
        request_id: None,
        error: Some("boom"),
    };
    store.finish(failed, &boom).await.unwrap();

    let rows = store.rows(&RowFilter::default()).await.unwrap();
    let states: Vec<_> = rows.iter().map(|r| (r.tool.as_str(), r.status())).collect();
    assert_eq!(
        states,
        [
            ("unlock_vehicle", "done: SUCCESS".to_string()),
            ("lock_vehicle", "dry run".to_string()),
            ("lock_vehicle", "refused".to_string()),
            ("stop_charge", "failed: boom".to_string()),
        ]
    );
    let confirmations: Vec<_> = rows.iter().map(|r| r.confirmation.clone()).collect();
    assert_eq!(
        confirmations,
        [
            Confirmation::Confirmed,
            Confirmation::NotAsked,
            Confirmation::Refused,
            Confirmation::Off
        ]
    );
    assert_eq!(rows[0].request_id.as_deref(), Some("req-9"));
    assert_eq!(rows[0].http_status, Some(200));
    assert!(rows[0].finished_at.is_some());
    assert_eq!(rows[2].error.as_deref(), Some("declined"));
    assert_eq!(rows[3].http_status, Some(500));
    assert_eq!(rows[1].user_id.as_deref(), Some("u-1"));
    assert_eq!(rows[0].caller, "stdio client=test");

    let only = |vehicle| RowFilter {
        since: None,
        vehicle: Some(vehicle),
        principal: None,
    };
    assert_eq!(store.rows(&only("v-1")).await.unwrap().len(), 1);
    assert_eq!(store.rows(&only("v-2")).await.unwrap().len(), 3);
    assert!(store.rows(&only("v-3")).await.unwrap().is_empty());
    let later = RowFilter {
        since: Some("2999-01-01"),
        vehicle: None,
        principal: None,
    };
    assert!(store.rows(&later).await.unwrap().is_empty());
    let earlier = RowFilter {
        since: Some("2000-01-01"),
        vehicle: None,
        principal: None,
    };
    assert_eq!(store.rows(&earlier).await.unwrap().len(), 4);
}

/// Increments add up per (vehicle, tool). A backend may write them in the background, so the
/// totals are awaited until they arrive (no time is asserted).
async fn usage_totals(store: &Store) {
    let one = |upstream_calls, cached| Counts {
        upstream_calls,
        cached,
        ..Counts::default()
    };
    store.add_usage("v-1", "get_signal", one(1, 0));
    store.add_usage("v-1", "get_signal", one(2, 1));
    store.add_usage("v-1", "lock_vehicle", one(1, 0));
    store.add_usage("", "list_connections", one(1, 0));
    let want = [
        (("".to_string(), "list_connections".to_string()), one(1, 0)),
        (("v-1".to_string(), "get_signal".to_string()), one(3, 1)),
        (("v-1".to_string(), "lock_vehicle".to_string()), one(1, 0)),
    ];
    let mut totals = Default::default();
    for _ in 0..500 {
        totals = store.usage_totals().await.unwrap();
        if totals.values().map(|c| c.upstream_calls).sum::<u64>() == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(totals.into_iter().collect::<Vec<_>>(), want);
}

/// A reservation is taken, given back when dropped unsettled, settled at the call's real cost,
/// and each vehicle has its own allowance.
async fn reservations(store: &Store) {
    let a = store.reserve_call("v", 2).await.unwrap().expect("a slot");
    let b = store.reserve_call("v", 2).await.unwrap().expect("a slot");
    assert!(store.reserve_call("v", 2).await.unwrap().is_none(), "full");
    drop(b);
    assert_eq!(
        store.calls_today("v").await.unwrap(),
        1,
        "an unsettled reservation is given back"
    );
    let c = store.reserve_call("v", 2).await.unwrap().unwrap();
    c.settle(0, false).await;
    assert_eq!(
        store.calls_today("v").await.unwrap(),
        1,
        "an unanswered call costs nothing"
    );
    a.settle(1, true).await;
    assert_eq!(store.calls_today("v").await.unwrap(), 1);
    store
        .reserve_call("w", 2)
        .await
        .unwrap()
        .unwrap()
        .settle(3, true)
        .await;
    assert_eq!(store.calls_today("w").await.unwrap(), 3, "retries count");
    assert!(store.reserve_call("w", 2).await.unwrap().is_none());
    assert!(
        store.reserve_call("x", 2).await.unwrap().is_some(),
        "each vehicle has its own"
    );
    assert_eq!(store.calls_today("nobody").await.unwrap(), 0);
}

/// Twenty reservations of `vehicle` at once, spread over `stores` in turn, each settled with one
/// call; how many got through.
pub async fn race_for_a_slot(stores: &[Arc<Store>], vehicle: &'static str, limit: u64) -> u32 {
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (store, barrier) = (stores[i % stores.len()].clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                match store.reserve_call(vehicle, limit).await.unwrap() {
                    Some(r) => {
                        r.settle(1, true).await;
                        1
                    }
                    None => 0,
                }
            })
        })
        .collect();
    let mut through = 0;
    for t in tasks {
        through += t.await.unwrap();
    }
    through
}

/// At `limit - 1`, twenty concurrent reservations let exactly one through.
async fn last_slot_race(store: Arc<Store>) {
    const LIMIT: u64 = 5;
    for _ in 0..LIMIT - 1 {
        let r = store.reserve_call("race", LIMIT).await.unwrap().unwrap();
        r.settle(1, true).await;
    }
    let through = race_for_a_slot(std::slice::from_ref(&store), "race", LIMIT).await;
    assert_eq!(through, 1, "exactly one took the last slot");
    assert_eq!(store.calls_today("race").await.unwrap(), LIMIT);
}

/// Pushed state: newest wins, duplicates are dropped, bounds hold, a command makes it stale, and
/// every change (only a change) is announced.
async fn pushed_state(store: &Store) {
    let code = "closure-islocked";
    let t = chrono::Utc::now().timestamp_millis();
    let mut updates = store.subscribe();
    assert!(matches!(
        store
            .ingest(&state_event("e1", "v-1", code, json!(true), t))
            .await,
        Ingested::Updated { .. }
    ));
    assert_eq!(updates.try_recv().unwrap(), "v-1");
    assert_eq!(
        store
            .ingest(&state_event("e1", "v-1", code, json!(false), t + 5))
            .await,
        Ingested::Unchanged,
        "same eventId"
    );
    assert_eq!(
        store
            .ingest(&state_event("e0", "v-1", code, json!(false), t - 60_000))
            .await,
        Ingested::Unchanged,
        "older value"
    );
    assert!(updates.try_recv().is_err(), "nothing changed, nothing said");
    let value = |v: VehicleState| v.signals[code].raw["body"]["value"].clone();
    assert_eq!(value(store.pushed_state("v-1").await.unwrap()), true);
    store
        .ingest(&state_event("e2", "v-1", code, json!(false), t + 1_000))
        .await;
    assert_eq!(
        value(store.pushed_state("v-1").await.unwrap()),
        false,
        "the newer value wins"
    );
    assert_eq!(updates.try_recv().unwrap(), "v-1");
    assert_eq!(
        store
            .ingest(&json!({"eventType": "VERIFY", "data": {"challenge": "x"}}))
            .await,
        Ingested::Ignored
    );

    let max = Duration::from_secs(60);
    let (fresh, age) = store
        .fresh("v-1", Some("u-1"), Some(code), max)
        .await
        .unwrap();
    assert_eq!(fresh.len(), 1);
    assert!(age <= max);
    assert!(
        store
            .fresh("v-1", Some("u-2"), Some(code), max)
            .await
            .is_none(),
        "another user"
    );
    assert!(
        store.fresh("v-1", None, Some(code), max).await.is_none(),
        "no user"
    );
    store.mark_stale(Some("v-1")).await;
    assert!(
        store
            .fresh("v-1", Some("u-1"), Some(code), max)
            .await
            .is_none(),
        "stale"
    );
    assert!(store.pushed_state("v-1").await.unwrap().stale);
    store
        .ingest(&state_event("e3", "v-1", code, json!(true), t + 2_000))
        .await;
    assert!(
        store
            .fresh("v-1", Some("u-1"), Some(code), max)
            .await
            .is_some(),
        "a newer push is fresh again"
    );

    // Bounds: signals per vehicle, and vehicles, the least recently updated going first.
    let signals: Vec<Value> = (0..MAX_SIGNALS_PER_VEHICLE + 10)
        .map(|i| json!({ "code": format!("x-{i}"), "body": { "value": i }, "meta": { "oemUpdatedAt": t } }))
        .collect();
    store
        .ingest(
            &json!({ "eventId": "many", "eventType": "VEHICLE_STATE", "vehicleId": "v-2",
                          "data": { "user": { "id": "u-1" }, "signals": signals } }),
        )
        .await;
    let v2 = store.pushed_state("v-2").await.unwrap();
    assert_eq!(v2.signals.len(), MAX_SIGNALS_PER_VEHICLE);
    assert_eq!(v2.skipped_signals, 10);
    for i in 0..MAX_VEHICLES {
        store
            .ingest(&state_event(
                &format!("b{i}"),
                &format!("veh-{i}"),
                code,
                json!(true),
                t,
            ))
            .await;
    }
    assert_eq!(store.pushed_vehicles().await.len(), MAX_VEHICLES);
    assert!(
        store.pushed_state("v-1").await.is_none(),
        "the least recently updated went first"
    );
    assert!(
        store
            .pushed_state(&format!("veh-{}", MAX_VEHICLES - 1))
            .await
            .is_some()
    );
    assert!(store.pushed_bytes().await <= smartcar_mcp::store::pushed::MAX_BYTES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_memory_backend_conforms() {
    conformance(|| async { Store::memory() }).await;
    assert!(!Store::memory().is_persistent());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sqlite_backend_conforms() {
    let dirs: std::sync::Mutex<Vec<PathBuf>> = Default::default();
    conformance(|| {
        let path = temp_db("conformance");
        dirs.lock()
            .unwrap()
            .push(path.parent().unwrap().to_path_buf());
        async move { Store::sqlite(&path).unwrap() }
    })
    .await;
    for d in dirs.into_inner().unwrap() {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_postgres_backend_conforms() {
    let Some(url) = crate::common::postgres::url("the_postgres_backend_conforms") else {
        return;
    };
    conformance(|| {
        let url = url.clone();
        async move {
            let db = crate::common::postgres::fresh_database(&url).await;
            crate::common::postgres::replica(&db, "conformance").await
        }
    })
    .await;
}

/// A confirmation answer taken before a restart stays taken: the next process on the file
/// refuses it.
#[tokio::test]
async fn a_confirmation_answer_taken_before_a_restart_stays_taken() {
    let path = temp_db("redeem");
    let ttl = Duration::from_secs(60);
    let first = Store::sqlite(&path).unwrap();
    assert!(first.redeem("sealed-answer", ttl).await.unwrap());
    drop(first);
    let second = Store::sqlite(&path).unwrap();
    assert!(!second.redeem("sealed-answer", ttl).await.unwrap());
    assert!(second.redeem("another-answer", ttl).await.unwrap());
    drop(second);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

/// Two handles on one file, as two processes would hold it, share the daily allowance: of 20
/// reservations racing through both for the last slot, exactly one goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_handles_on_one_file_share_the_last_slot() {
    let path = temp_db("shared");
    let one = Arc::new(Store::sqlite(&path).unwrap());
    let two = Arc::new(Store::sqlite(&path).unwrap());
    for _ in 0..2 {
        one.reserve_call("v", 3)
            .await
            .unwrap()
            .unwrap()
            .settle(1, true)
            .await;
    }
    assert_eq!(two.calls_today("v").await.unwrap(), 2);
    let through = race_for_a_slot(&[one.clone(), two.clone()], "v", 3).await;
    assert_eq!(through, 1);
    assert_eq!(one.calls_today("v").await.unwrap(), 3);
    drop((one, two));
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

/// The layout every release before numbered migrations wrote, verbatim.
const OLD_SCHEMA: &str = "
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
CREATE TABLE IF NOT EXISTS daily_calls (
    day TEXT NOT NULL,
    vehicle TEXT NOT NULL,
    calls INTEGER NOT NULL,
    PRIMARY KEY (day, vehicle)
);
";

fn user_version(path: &Path) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn a_file_of_the_layout_before_migrations_opens_and_keeps_its_rows() {
    let path = temp_db("old");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(OLD_SCHEMA).unwrap();
        conn.execute_batch(
            "INSERT INTO audit (at, tool, arguments, vehicle_id, user_id, caller, confirmation, state, outcome, finished_at)
             VALUES ('2026-01-02T03:04:05.000Z', 'lock_vehicle', '{\"vehicle_id\":\"v-1\"}', 'v-1', 'u-1', 'stdio', 'confirmed', 'done', 'SUCCESS', '2026-01-02T03:04:06.000Z');
             INSERT INTO audit (at, tool, arguments, vehicle_id, user_id, caller, confirmation, state)
             VALUES ('2026-01-02T03:05:00.000Z', 'unlock_vehicle', '{}', 'v-1', NULL, 'http', 'off', 'sent');
             INSERT INTO usage (day, vehicle_id, tool, upstream_calls, cached) VALUES ('2026-01-02', 'v-1', 'get_signal', 7, 2);
             INSERT INTO daily_calls (day, vehicle, calls) VALUES (date('now'), 'v-1', 4);",
        )
        .unwrap();
    }
    assert_eq!(user_version(&path), 0);
    let store = Store::sqlite(&path).unwrap();
    // Usage is read through the migrated connection; the old rows come through unchanged.
    let totals = store.usage_totals().await.unwrap();
    assert_eq!(
        totals[&("v-1".to_string(), "get_signal".to_string())],
        Counts {
            upstream_calls: 7,
            cached: 2,
            ..Counts::default()
        }
    );
    assert_eq!(store.calls_today("v-1").await.unwrap(), 4);
    let rows = store.rows(&RowFilter::default()).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].status(), "done: SUCCESS");
    assert_eq!(rows[0].confirmation, Confirmation::Confirmed);
    assert_eq!(rows[1].status(), "sent, outcome unknown");
    assert_eq!(rows[1].confirmation, Confirmation::Off);
    let args = args("v-1");
    let id = store
        .begin(&entry("lock_vehicle", &args, Confirmation::Confirmed))
        .await
        .unwrap();
    assert_eq!(id, rows[1].id + 1, "new rows follow the old");
    assert_eq!(user_version(&path), 4);
    drop(store);
    // Opening again finds nothing to do and changes nothing.
    let again = Store::sqlite(&path).unwrap();
    assert_eq!(again.rows(&RowFilter::default()).await.unwrap().len(), 3);
    assert_eq!(user_version(&path), 4);
    drop(again);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[tokio::test]
async fn a_file_from_a_newer_release_is_refused_not_rewritten() {
    let path = temp_db("newer");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99;")
        .unwrap();
    let store = Store::sqlite(&path).unwrap();
    let args = args("v-1");
    let e = store
        .begin(&entry("lock_vehicle", &args, Confirmation::Confirmed))
        .await
        .unwrap_err();
    assert!(e.detail.contains("newer"), "{e}");
    assert!(store.reserve_call("v-1", 3).await.is_err());
    assert_eq!(user_version(&path), 99);
    drop(store);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

/// `audit` and `usage` read a file without creating one.
#[tokio::test]
async fn reading_a_missing_file_says_so_and_creates_nothing() {
    let path = temp_db("missing");
    let store = Store::read_sqlite(&path);
    let e = store.rows(&RowFilter::default()).await.unwrap_err();
    assert!(e.detail.contains("nothing has been recorded yet"), "{e}");
    assert!(store.usage_totals().await.is_err());
    assert!(!path.exists());
}

/// Handles opening one new file together each migrate it, once: every one can write, and the
/// version is the latest.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn handles_opening_a_new_file_together_migrate_it_once() {
    let path = temp_db("together");
    let stores: Vec<Arc<Store>> = (0..8)
        .map(|_| Arc::new(Store::sqlite(&path).unwrap()))
        .collect();
    let tasks: Vec<_> = stores
        .iter()
        .enumerate()
        .map(|(i, store)| {
            let store = store.clone();
            tokio::spawn(async move {
                let args = args(&format!("v-{i}"));
                if i % 2 == 0 {
                    store
                        .begin(&entry("lock_vehicle", &args, Confirmation::Confirmed))
                        .await
                        .map(drop)
                } else {
                    store.reserve_call(&format!("v-{i}"), 3).await.map(drop)
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(user_version(&path), 4);
    assert_eq!(
        stores[0].rows(&RowFilter::default()).await.unwrap().len(),
        4
    );
    drop(stores);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

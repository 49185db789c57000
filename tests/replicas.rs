//! Several replicas on one PostgreSQL store (issue 25), and its faults: the database unreachable
//! at start, lost mid-run, two replicas racing for one slot of the daily allowance, one webhook
//! event delivered to three replicas at once, and a replica SIGKILLed mid-command. Each test but
//! the first needs the test PostgreSQL (`SMARTCAR_MCP_TEST_POSTGRES`, see tests/common/postgres.rs).

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use smartcar_mcp::secret::Secret;
use smartcar_mcp::simulator::{ALICE, EV, Fault};
use smartcar_mcp::store::{Ingested, RowFilter};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::common::{self, postgres};

const CODE: &str = "closure-islocked";

fn state_event(event_id: &str, vehicle: &str, value: Value, oem_ms: i64) -> Value {
    json!({
        "eventId": event_id, "eventType": "VEHICLE_STATE", "vehicleId": vehicle,
        "data": {
            "user": { "id": ALICE },
            "vehicle": { "id": vehicle, "make": "TESLA", "model": "Model 3", "year": 2023 },
            "signals": [{ "code": CODE, "name": "Locked", "group": "Closure",
                          "body": { "value": value }, "meta": { "oemUpdatedAt": oem_ms } }]
        }
    })
}

/// Polls `done` every 50 ms for at most `within`; whether it came true.
async fn eventually<F: std::future::Future<Output = bool>>(
    within: Duration,
    mut done: impl FnMut() -> F,
) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if done().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A port nothing listens on: bound, then let go.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn a_store_unreachable_at_start_stops_the_server_naming_it_without_its_password() {
    let port = closed_port();
    let url = format!("postgres://fleet:hunter2-secret@127.0.0.1:{port}/fleet?sslmode=disable");
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        common::tokio_command()
            .args(["serve", "--http", "127.0.0.1:0", "--simulator"])
            .args(["--store", &url])
            .env_clear()
            .env("XDG_DATA_HOME", common::data_home())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the server gives up rather than waiting")
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "store postgres://fleet@127.0.0.1:{port}/fleet?sslmode=disable: cannot connect"
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("hunter2") && !stdout.contains("hunter2"),
        "the password never shows: {stderr}"
    );
}

#[tokio::test]
async fn a_store_url_of_no_known_kind_is_refused_naming_the_flag() {
    let out = common::tokio_command()
        .args(["audit", "--store", "mysql://root:pw@db/x"])
        .env_clear()
        .env("XDG_DATA_HOME", common::data_home())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("--store takes sqlite:PATH, off or postgres://"),
        "{stderr}"
    );
    assert!(!stderr.contains("pw@"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_racing_for_the_last_slot_let_exactly_one_through() {
    let Some(url) = postgres::url("two_replicas_racing_for_the_last_slot") else {
        return;
    };
    let db = postgres::fresh_database(&url).await;
    let a = Arc::new(postgres::replica(&db, "race-a").await);
    let b = Arc::new(postgres::replica(&db, "race-b").await);
    const LIMIT: u64 = 3;
    for _ in 0..LIMIT - 1 {
        a.reserve_call("v-race", LIMIT)
            .await
            .unwrap()
            .unwrap()
            .settle(1, true)
            .await;
    }
    let through = crate::store::race_for_a_slot(&[a.clone(), b.clone()], "v-race", LIMIT).await;
    assert_eq!(through, 1, "one slot, one call, across both replicas");
    assert_eq!(a.calls_today("v-race").await.unwrap(), LIMIT);
    assert_eq!(b.calls_today("v-race").await.unwrap(), LIMIT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_event_delivered_to_three_replicas_at_once_is_applied_once_and_heard_on_each() {
    let Some(url) = postgres::url("one_event_delivered_to_three_replicas") else {
        return;
    };
    let db = postgres::fresh_database(&url).await;
    let mut replicas = Vec::new();
    for name in ["ev-a", "ev-b", "ev-c"] {
        replicas.push(Arc::new(postgres::replica(&db, name).await));
    }
    let mut heard: Vec<_> = replicas.iter().map(|r| r.subscribe()).collect();
    let t = chrono::Utc::now().timestamp_millis();
    let event = state_event("evt-shared-1", "v-3", json!(true), t);
    let barrier = Arc::new(tokio::sync::Barrier::new(3));
    let tasks: Vec<_> = replicas
        .iter()
        .map(|r| {
            let (r, barrier, event) = (r.clone(), barrier.clone(), event.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                r.ingest(&event).await
            })
        })
        .collect();
    let mut updated = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ingested::Updated { .. } => updated += 1,
            Ingested::Unchanged => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        updated, 1,
        "one replica applies it; the others hear it was seen"
    );
    for (r, rx) in replicas.iter().zip(heard.iter_mut()) {
        let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("every replica's subscribers hear of the change")
            .unwrap();
        assert_eq!(got, "v-3");
        let max = Duration::from_secs(3600);
        assert!(
            r.fresh("v-3", Some(ALICE), Some(CODE), max).await.is_some(),
            "each replica answers reads from it"
        );
    }
    // A redelivery later, to any replica, changes nothing and tells nobody.
    assert_eq!(replicas[2].ingest(&event).await, Ingested::Unchanged);
    tokio::time::sleep(Duration::from_millis(500)).await;
    for rx in heard.iter_mut() {
        assert!(rx.try_recv().is_err(), "one change, one notice per replica");
    }
}

/// A TCP relay to the test PostgreSQL's unix socket, which the test can pause: the database
/// "lost" for the replica behind it, and only for it, until it resumes.
struct Relay {
    port: u16,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    paused: Arc<std::sync::atomic::AtomicBool>,
}

impl Relay {
    async fn to(url: &str) -> Relay {
        // The URL's host is the socket's directory, percent-encoded (.ci/postgres).
        let host = url
            .split_once('@')
            .and_then(|(_, rest)| rest.split_once('/'))
            .map(|(h, _)| h.replace("%2F", "/").replace("%2f", "/"))
            .expect("a postgres://user@%2Fdir/db URL");
        let socket = format!("{host}/.s.PGSQL.5432");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let paused: Arc<std::sync::atomic::AtomicBool> = Arc::default();
        let (held, refusing) = (tasks.clone(), paused.clone());
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                if refusing.load(std::sync::atomic::Ordering::SeqCst) {
                    continue;
                }
                let socket = socket.clone();
                let conn = tokio::spawn(async move {
                    if let Ok(mut unix) = tokio::net::UnixStream::connect(&socket).await {
                        let _ = tokio::io::copy_bidirectional(&mut tcp, &mut unix).await;
                    }
                });
                held.lock().unwrap().push(conn);
            }
        });
        Relay {
            port,
            tasks,
            paused,
        }
    }

    /// Every connection through it broken, and new ones refused.
    fn pause(&self) {
        self.paused.store(true, std::sync::atomic::Ordering::SeqCst);
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    fn resume(&self) {
        self.paused
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_lost_mid_run_refuses_commands_and_reads_go_on() {
    let Some(url) = postgres::url("a_database_lost_mid_run") else {
        return;
    };
    let db = postgres::fresh_database(&url).await;
    let name = db.rsplit('/').next().unwrap().to_string();
    let relay = Relay::to(&url).await;
    let sim = common::simulator().await;
    let mut settings = common::settings(&sim);
    settings.serving.postgres = Some(Secret::new(format!(
        "postgres://app@127.0.0.1:{}/{name}?sslmode=disable",
        relay.port
    )));
    settings.serving.replica_id = "lost".into();
    let shared = common::shared(settings);
    shared.app.store.ready().await.unwrap();
    let lock = json!({ "vehicle_id": EV, "user_id": ALICE });
    let r = common::run(&shared, "lock_vehicle", lock.clone()).await;
    assert!(!r.is_error, "{r:?}");

    relay.pause();
    let commands_before = sim.hits("POST", "/security");
    let r = common::run(&shared, "lock_vehicle", lock).await;
    assert!(r.is_error, "{r:?}");
    assert_eq!(r.structured["error"]["type"], "AUDIT_UNAVAILABLE", "{r:?}");
    assert_eq!(
        sim.hits("POST", "/security"),
        commands_before,
        "no audit row, no command"
    );
    let read = json!({ "vehicle_id": EV, "user_id": ALICE, "signal_code": "tractionbattery-stateofcharge" });
    let r = common::run(&shared, "get_signal", read).await;
    assert!(!r.is_error, "reads go on: {r:?}");

    // The row written before the loss is on record, from this replica.
    let reader = postgres::replica(&db, "reader").await;
    let rows = reader.rows(&RowFilter::default()).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].replica.as_deref(), Some("lost"));
    sim.shutdown();
}

/// The `listening on` address a `serve --http` child prints on stderr; the rest is drained.
async fn listening_on(stderr: tokio::process::ChildStderr) -> String {
    let mut lines = BufReader::new(stderr).lines();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.split("listening on ").nth(1) {
                return Some(rest.trim().to_string());
            }
        }
        None
    })
    .await;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    found.ok().flatten().expect("a `listening on` line")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_killed_mid_command_leaves_outcome_unknown_marked_by_a_live_one() {
    let Some(url) = postgres::url("a_replica_killed_mid_command") else {
        return;
    };
    let db = postgres::fresh_database(&url).await;
    let sim = common::simulator().await;
    // The command reaches Smartcar and its answer never comes back in time.
    sim.inject(
        Fault::new(200, "{}")
            .on("POST", "/security")
            .delay_ms(120_000),
    );
    let mut child = common::tokio_command()
        .args(["serve", "--http", "127.0.0.1:0", "--confirm", "off"])
        .args(["--store", &db, "--replica-id", "doomed"])
        .env_clear()
        .env("XDG_DATA_HOME", common::data_home())
        .env("SMARTCAR_CLIENT_ID", "client_test")
        .env("SMARTCAR_CLIENT_SECRET", common::CLIENT_SECRET)
        .env("SMARTCAR_AUTH_URL", sim.auth_url())
        .env("SMARTCAR_API_URL", sim.api_url())
        .env("SMARTCAR_MANAGEMENT_API_URL", sim.management_url())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mcp = listening_on(child.stderr.take().unwrap()).await;
    let call = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "lock_vehicle", "arguments": { "vehicle_id": EV, "user_id": ALICE },
        "_meta": { "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                   "io.modelcontextprotocol/clientCapabilities": {},
                   "io.modelcontextprotocol/clientInfo": { "name": "replicas", "version": "1" } } } });
    let http = reqwest::Client::new();
    let pending = tokio::spawn(
        http.post(&mcp)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "lock_vehicle")
            .body(call.to_string())
            .send(),
    );
    let reader = postgres::replica(&db, "survivor").await;
    let in_flight = eventually(Duration::from_secs(30), || async {
        sim.hits("POST", "/security") == 1
    })
    .await;
    assert!(in_flight, "the command reached the simulator");
    let rows = reader.rows(&RowFilter::default()).await.unwrap();
    assert_eq!(rows.len(), 1, "on record before it left: {rows:?}");
    assert_eq!(rows[0].status(), "sent, outcome unknown");

    child.start_kill().unwrap(); // SIGKILL
    let _ = child.wait().await;
    let killed = Instant::now();
    let _ = pending.await;
    let marked = eventually(Duration::from_secs(30), || async {
        let rows = reader.rows(&RowFilter::default()).await.unwrap();
        rows[0].finished_at.is_some()
    })
    .await;
    assert!(marked, "a live replica marks it within 30 s of the death");
    let rows = reader.rows(&RowFilter::default()).await.unwrap();
    assert_eq!(rows[0].replica.as_deref(), Some("doomed"));
    assert!(
        rows[0]
            .status()
            .starts_with("sent, outcome unknown: replica doomed stopped"),
        "{}",
        rows[0].status()
    );
    eprintln!(
        "marked outcome unknown {:?} after the SIGKILL",
        killed.elapsed()
    );
    sim.shutdown();
}

fn mcp_post(http: &reqwest::Client, url: &str, body: &Value) -> reqwest::RequestBuilder {
    http.post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_handshake_session_opened_on_one_replica_is_restored_on_another() {
    let Some(url) = postgres::url("a_handshake_session_is_restored") else {
        return;
    };
    let db = postgres::fresh_database(&url).await;
    let sim = common::simulator().await;
    let replica = |name: &str| {
        let mut s = common::settings(&sim);
        s.serving.postgres = Some(Secret::new(db.clone()));
        s.serving.replica_id = name.into();
        common::shared(s)
    };
    let (a, b) = (replica("sess-a"), replica("sess-b"));
    a.app.store.ready().await.unwrap();
    b.app.store.ready().await.unwrap();
    let (served_a, served_b) = (common::serve_http(a).await, common::serve_http(b).await);
    let http = reqwest::Client::new();
    let init = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": { "name": "replicas", "version": "1" } } });
    let r = mcp_post(&http, &served_a.mcp(), &init)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let session = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
    let _ = r.text().await;
    let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
    let r = mcp_post(&http, &served_a.mcp(), &initialized)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());

    // The next request lands on the other replica, which never saw the session.
    let list = json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list" });
    let r = mcp_post(&http, &served_b.mcp(), &list)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "restored, not 404");
    let body = r.text().await.unwrap();
    assert!(
        common::messages(&body).iter().any(|m| m["result"]["tools"]
            .as_array()
            .is_some_and(|t| !t.is_empty())),
        "{body}"
    );
    // A session nobody created is still unknown.
    let r = mcp_post(&http, &served_b.mcp(), &list)
        .header("mcp-session-id", "never-created")
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    sim.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_with_a_shared_store_prints_every_replicas_rows() {
    let Some(url) = postgres::url("audit_with_a_shared_store") else {
        return;
    };
    let db = postgres::fresh_database(&url).await;
    let args = json!({ "vehicle_id": "v-9", "user_id": ALICE });
    let args = args.as_object().unwrap();
    for name in ["audit-a", "audit-b"] {
        let store = postgres::replica(&db, name).await;
        let entry = smartcar_mcp::store::Entry {
            tool: "lock_vehicle",
            arguments: args,
            vehicle: Some("v-9"),
            user: Some(ALICE),
            caller: "test",
            principal: None,
            principal_issuer: None,
            confirmation: smartcar_mcp::store::Confirmation::Off,
        };
        store.begin(&entry).await.unwrap();
    }
    let out = common::tokio_command()
        .args(["audit", "--json", "--store", &db])
        .env_clear()
        .env("XDG_DATA_HOME", common::data_home())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let replicas: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["replica"].as_str().unwrap())
        .collect();
    assert_eq!(replicas, ["audit-a", "audit-b"]);
}

#[tokio::test]
async fn store_sqlite_path_and_off_are_the_forms_of_audit_db() {
    let dir = std::env::temp_dir().join(format!("smartcar-mcp-store-flag-{}", std::process::id()));
    let file = dir.join("missing.sqlite3");
    let audit = |store: String| async move {
        common::tokio_command()
            .args(["audit", "--store", &store])
            .env_clear()
            .env("XDG_DATA_HOME", common::data_home())
            .output()
            .await
            .unwrap()
    };
    let out = audit(format!("sqlite:{}", file.display())).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&file.display().to_string()), "{stderr}");
    assert!(!file.exists(), "reading creates nothing");
    let out = audit("off".into()).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("the audit log is off"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_that_lost_its_listen_connection_reads_what_it_missed() {
    let Some(url) = postgres::url("a_replica_that_lost_its_listen_connection") else {
        return;
    };
    let db = postgres::fresh_database(&url).await;
    let name = db.rsplit('/').next().unwrap().to_string();
    let relay = Relay::to(&url).await;
    let a = postgres::replica(&db, "listen-a").await;
    let b = postgres::replica(
        &format!(
            "postgres://app@127.0.0.1:{}/{name}?sslmode=disable",
            relay.port
        ),
        "listen-b",
    )
    .await;
    let mut heard = b.subscribe();
    relay.pause();
    let t = chrono::Utc::now().timestamp_millis();
    assert!(matches!(
        a.ingest(&state_event("evt-missed", "v-7", json!(true), t))
            .await,
        Ingested::Updated { .. }
    ));
    // Pushed while B was not listening: NOTIFY is not replayed, so only a re-read finds it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(b.pushed_state("v-7").await.is_none());
    relay.resume();
    let got = tokio::time::timeout(Duration::from_secs(15), heard.recv())
        .await
        .expect("B re-reads the log once it listens again")
        .unwrap();
    assert_eq!(got, "v-7");
    let max = Duration::from_secs(3600);
    assert!(b.fresh("v-7", Some(ALICE), Some(CODE), max).await.is_some());
}

//! The scale bench's PostgreSQL part (issue 25): three replicas behind nginx (round robin) sharing
//! one PostgreSQL store. Reports: a webhook received by replica A read through replica C (upstream
//! calls, and the time from A's 2xx to `resources/updated` at a subscriber on C); a daily cap of K
//! under 8 concurrent clients over all replicas (upstream calls); M commands through all replicas
//! (audit rows); a replica SIGKILLed mid-command (seconds until its row reads outcome unknown); a
//! handshake session outliving the SIGKILL of its replica; and the per-call cost against SQLite
//! mode in the same run (read path, command path).
//!
//! The PostgreSQL is `SCALE_POSTGRES` (a URL; a fresh database is made on it), else a cluster
//! this bench starts with `.ci/postgres` with fsync on (durable commits, as in production).

use std::process::{Child, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};
use rmcp::ClientHandler;
use rmcp::ServiceExt;
use rmcp::model::{ResourceUpdatedNotificationParam, SubscribeRequestParams};
use rmcp::service::{NotificationContext, RoleClient};
use rmcp::transport::StreamableHttpClientTransport;
use serde_json::{Value, json};
use smartcar_mcp::store::{RowFilter, Store};

use crate::mcp_http::{self, free_port, modern_meta, post, wait_healthy};
use crate::upstream;

const AMT: &str = "scale-bench-management-token-0123456789";
const USER: &str = "93b3ee5b-2ea2-4c52-9f0f-3e3c0cf1a1b4";
const PUSHED: &str = "4f6c7e10-0000-4000-8000-00000000a001";
const CAPPED: &str = "4f6c7e10-0000-4000-8000-00000000c001";
const CAP: u64 = 20;
const COMMANDS: usize = 60;
const WEBHOOKS: usize = 40;

fn vehicle(i: usize) -> String {
    format!("4f6c7e10-0000-4000-8000-{i:012x}")
}

fn replica(
    binary: &std::path::Path,
    port: u16,
    up: &upstream::Upstream,
    store: &str,
    id: &str,
) -> Child {
    mcp_http::serve_command(binary, port, up)
        .args(["--store", store, "--replica-id", id, "--confirm", "off"])
        .args(["--pushed-max-age-s", "3600"])
        .args(["--max-calls-per-vehicle-per-day", &CAP.to_string()])
        .env("SMARTCAR_MANAGEMENT_TOKEN", AMT)
        .stderr(Stdio::null())
        .spawn()
        .expect("the release binary starts")
}

fn call(id: u64, tool: &str, args: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
        "name": tool, "arguments": args, "_meta": modern_meta() } })
}

async fn tool(http: &reqwest::Client, url: &str, name: &str, args: Value) -> Option<Value> {
    let headers = [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", name),
    ];
    post(http, url, &headers, &call(1, name, args))
        .await
        .and_then(|p| p.body)
}

fn is_error(answer: &Option<Value>) -> bool {
    answer
        .as_ref()
        .is_none_or(|b| b["result"]["isError"] == json!(true) || b.get("error").is_some())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[derive(Clone, Default)]
struct Heard(Arc<Mutex<Vec<Instant>>>);

impl ClientHandler for Heard {
    async fn on_resource_updated(
        &self,
        _params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.0.lock().unwrap().push(Instant::now());
    }
}

fn signed_event(n: usize) -> (Vec<u8>, String) {
    let now = chrono::Utc::now().timestamp_millis();
    let body = json!({
        "eventId": format!("bench-evt-{}-{n}", std::process::id()), "eventType": "VEHICLE_STATE",
        "vehicleId": PUSHED,
        "data": {
            "user": { "id": USER },
            "vehicle": { "id": PUSHED, "make": "TESLA", "model": "Model 3", "year": 2023 },
            "signals": [{ "code": "closure-islocked", "name": "IsLocked", "group": "Closure",
                          "body": { "value": n.is_multiple_of(2) }, "meta": { "oemUpdatedAt": now, "fetchedAt": now } }]
        },
        "meta": { "version": "4.0", "deliveryId": format!("d-{n}"), "deliveredAt": now, "webhookId": "wh-1", "mode": "LIVE" }
    })
    .to_string()
    .into_bytes();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(AMT.as_bytes()).unwrap();
    mac.update(&body);
    let sig = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (body, sig)
}

/// A database for this run: on `SCALE_POSTGRES`, else on a cluster started here (stopped by the
/// returned guard's owner through `.ci/postgres stop`).
async fn database() -> (String, Option<std::path::PathBuf>) {
    if let Ok(url) = std::env::var("SCALE_POSTGRES") {
        return (Store::scratch_postgres(&url).await.unwrap(), None);
    }
    let dir = std::env::temp_dir().join(format!("smartcar-scale-pg-{}", std::process::id()));
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/postgres");
    let out = std::process::Command::new(script)
        .args(["start", &dir.display().to_string()])
        .env("PG_FSYNC", "on")
        .output()
        .expect(".ci/postgres runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (Store::scratch_postgres(&url).await.unwrap(), Some(dir))
}

/// p50 and p99 in ms of `n` sequential calls of `tool` on `url`, vehicles taken in turn.
async fn cost(http: &reqwest::Client, url: &str, name: &str, n: usize, first: usize) -> (f64, f64) {
    let mut ms = Vec::with_capacity(n);
    for i in 0..n {
        let v = vehicle(first + i % 50);
        let args = match name {
            "get_signal" => {
                json!({ "vehicle_id": v, "user_id": USER, "signal_code": "tractionbattery-stateofcharge" })
            }
            _ => json!({ "vehicle_id": v, "user_id": USER }),
        };
        let t = Instant::now();
        let r = tool(http, url, name, args).await;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(!is_error(&r), "{name} failed: {r:?}");
    }
    ms.sort_by(f64::total_cmp);
    (percentile(&ms, 0.5), percentile(&ms, 0.99))
}

pub async fn run(binary: &std::path::Path) {
    let (db, cluster) = database().await;
    let up = upstream::start().await.unwrap();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let names = ["r1", "r2", "r3"];
    let mut replicas: Vec<Child> = ports
        .iter()
        .zip(names)
        .map(|(p, n)| replica(binary, *p, &up, &db, n))
        .collect();
    for p in &ports {
        wait_healthy(&http, *p).await;
    }
    let dir = std::env::temp_dir().join(format!("smartcar-scale-pgx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let listen = free_port();
    std::fs::write(
        dir.join("nginx.conf"),
        crate::nginx_conf(&dir, listen, &ports),
    )
    .unwrap();
    let mut nginx = std::process::Command::new("nginx")
        .args(["-p", &dir.display().to_string()])
        .args(["-c", &dir.join("nginx.conf").display().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("nginx starts");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let lb = format!("http://127.0.0.1:{listen}/stateless/mcp");
    let direct = |i: usize| format!("http://127.0.0.1:{}/mcp", ports[i]);
    let reader = Store::postgres(&db, "bench-reader", true).unwrap();
    println!("\nscale (PostgreSQL): 3 replicas behind nginx sharing one PostgreSQL");

    // 1. A webhook on A, heard and read on C.
    let heard = Heard::default();
    let subscriber = heard
        .clone()
        .serve(StreamableHttpClientTransport::from_uri(direct(2)))
        .await
        .expect("a session on C");
    #[allow(deprecated)]
    subscriber
        .subscribe(SubscribeRequestParams::new(format!(
            "smartcar://vehicles/{PUSHED}/state"
        )))
        .await
        .unwrap();
    let mut lags = Vec::new();
    for n in 0..WEBHOOKS {
        let before = heard.0.lock().unwrap().len();
        let (body, sig) = signed_event(n);
        let r = http
            .post(format!("http://127.0.0.1:{}/webhooks/smartcar", ports[0]))
            .header("content-type", "application/json")
            .header("SC-Signature", sig)
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "webhook {}", r.status());
        let acked = Instant::now();
        let deadline = acked + Duration::from_secs(10);
        while heard.0.lock().unwrap().len() == before && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        if let Some(t) = heard.0.lock().unwrap().get(before) {
            lags.push(t.duration_since(acked).as_secs_f64() * 1000.0);
        }
    }
    lags.sort_by(f64::total_cmp);
    let signals_before = up.counts.signal.load(Ordering::Relaxed);
    let read = tool(
        &http,
        &direct(2),
        "get_signal",
        json!({ "vehicle_id": PUSHED, "user_id": USER, "signal_code": "closure-islocked" }),
    )
    .await;
    let upstream_calls = up.counts.signal.load(Ordering::Relaxed) - signals_before;
    println!(
        "webhook on A, read on C: {} upstream calls (read ok: {}); 2xx on A to resources/updated on C over {} events: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        upstream_calls,
        !is_error(&read),
        lags.len(),
        percentile(&lags, 0.5),
        percentile(&lags, 0.95),
        lags.last().copied().unwrap_or(f64::NAN)
    );
    subscriber.cancel().await.ok();

    // 2. A daily cap of K under 8 concurrent clients over all replicas.
    let before = up.counts.signal.load(Ordering::Relaxed);
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (http, lb) = (http.clone(), lb.clone());
            tokio::spawn(async move {
                let mut ok = 0;
                for _ in 0..10 {
                    let r = tool(&http, &lb, "get_signal", json!({ "vehicle_id": CAPPED, "user_id": USER, "signal_code": "tractionbattery-stateofcharge" })).await;
                    if !is_error(&r) {
                        ok += 1;
                    }
                }
                ok
            })
        })
        .collect();
    let mut answered = 0;
    for w in workers {
        answered += w.await.unwrap();
    }
    println!(
        "daily cap K={CAP}, 8 clients x 10 calls over 3 replicas: {} upstream calls, {answered} answered, {} refused",
        up.counts.signal.load(Ordering::Relaxed) - before,
        80 - answered
    );

    // 3. M commands through all replicas: M audit rows.
    let before_rows = reader.rows(&RowFilter::default()).await.unwrap().len();
    let sent: Vec<_> = (0..COMMANDS)
        .map(|i| {
            let (http, lb) = (http.clone(), lb.clone());
            tokio::spawn(async move {
                let args = json!({ "vehicle_id": vehicle(1000 + i), "user_id": USER });
                !is_error(&tool(&http, &lb, "lock_vehicle", args).await)
            })
        })
        .collect();
    let mut ok = 0;
    for s in sent {
        ok += usize::from(s.await.unwrap());
    }
    let rows = reader.rows(&RowFilter::default()).await.unwrap();
    let mut by_replica = std::collections::BTreeMap::<String, usize>::new();
    for r in &rows[before_rows..] {
        *by_replica
            .entry(r.replica.clone().unwrap_or_default())
            .or_default() += 1;
    }
    println!(
        "{COMMANDS} commands through nginx: {ok} answered, {} audit rows in one table ({by_replica:?})",
        rows.len() - before_rows
    );

    // 4. A handshake session on C, then C SIGKILLed; the session goes on through A.
    let init = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": { "name": "scale", "version": "1" } } });
    let opened = post(&http, &direct(2), &[], &init).await.unwrap();
    let session = opened.session.clone().unwrap();
    let hs = [
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    let _ = post(
        &http,
        &direct(2),
        &hs,
        &json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }),
    )
    .await;
    let _ = replicas[2].kill();
    let _ = replicas[2].wait();
    let after = post(
        &http,
        &direct(0),
        &hs,
        &json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list" }),
    )
    .await;
    println!(
        "handshake session of C after C's SIGKILL, next request on A: HTTP {}",
        after.as_ref().map_or(0, |p| p.status)
    );

    // 5. B SIGKILLed with a command in flight: its row reads "outcome unknown" within 30 s.
    up.fault.store(upstream::SLOW, Ordering::Relaxed);
    let mut marked = None;
    for attempt in 0..10 {
        let rows_before = reader.rows(&RowFilter::default()).await.unwrap().len();
        let (h, u) = (http.clone(), direct(1));
        let pending = tokio::spawn(async move {
            tool(
                &h,
                &u,
                "lock_vehicle",
                json!({ "vehicle_id": vehicle(2000 + attempt), "user_id": USER }),
            )
            .await
        });
        // Wait for its row, then kill at once: a slow answer (2 to 4 s) is still to come.
        let mut open = None;
        for _ in 0..400 {
            let rows = reader.rows(&RowFilter::default()).await.unwrap();
            if let Some(r) = rows.get(rows_before) {
                open = Some(r.id);
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let _ = replicas[1].kill();
        let killed = Instant::now();
        let _ = replicas[1].wait();
        let _ = pending.await;
        let Some(id) = open else { continue };
        let row = |rows: Vec<smartcar_mcp::store::Row>| rows.into_iter().find(|r| r.id == id);
        let now = row(reader.rows(&RowFilter::default()).await.unwrap());
        if now.as_ref().is_some_and(|r| r.finished_at.is_some()) {
            // Answered before the kill; try again on a restarted B.
            replicas[1] = replica(binary, ports[1], &up, &db, "r2");
            wait_healthy(&http, ports[1]).await;
            continue;
        }
        while killed.elapsed() < Duration::from_secs(60) {
            let r = row(reader.rows(&RowFilter::default()).await.unwrap());
            if r.as_ref().is_some_and(|r| r.finished_at.is_some()) {
                marked = Some((killed.elapsed(), r.unwrap().status()));
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        break;
    }
    up.fault.store(upstream::NORMAL, Ordering::Relaxed);
    match marked {
        Some((t, status)) => println!(
            "replica B SIGKILLed mid-command: {:.1} s until its row read \"{status}\"",
            t.as_secs_f64()
        ),
        None => println!("replica B SIGKILLed mid-command: no in-flight command caught"),
    }

    // 6. Per-call cost against SQLite mode, one replica each, in this run.
    let sqlite_dir = dir.join("sqlite");
    let sqlite_port = free_port();
    let mut sqlite = replica(
        binary,
        sqlite_port,
        &up,
        &format!("sqlite:{}", sqlite_dir.join("audit.sqlite3").display()),
        "sqlite",
    );
    wait_healthy(&http, sqlite_port).await;
    let sq = format!("http://127.0.0.1:{sqlite_port}/mcp");
    let pg = direct(0);
    let (sr, pr) = (
        cost(&http, &sq, "get_signal", 300, 3000).await,
        cost(&http, &pg, "get_signal", 300, 4000).await,
    );
    let (sc, pc) = (
        cost(&http, &sq, "lock_vehicle", 100, 5000).await,
        cost(&http, &pg, "lock_vehicle", 100, 6000).await,
    );
    println!(
        "read path (get_signal, cap on): SQLite p50 {:.2} ms p99 {:.2} ms; PostgreSQL p50 {:.2} ms p99 {:.2} ms; ratio p50 {:.2}",
        sr.0,
        sr.1,
        pr.0,
        pr.1,
        pr.0 / sr.0
    );
    println!(
        "command path (lock_vehicle, audit commit): SQLite p50 {:.2} ms p99 {:.2} ms; PostgreSQL p50 {:.2} ms p99 {:.2} ms; ratio p50 {:.2}",
        sc.0,
        sc.1,
        pc.0,
        pc.1,
        pc.0 / sc.0
    );

    let _ = sqlite.kill();
    let _ = sqlite.wait();
    let _ = nginx.kill();
    let _ = nginx.wait();
    for mut r in replicas {
        let _ = r.kill();
        let _ = r.wait();
    }
    drop(reader);
    let _ = std::fs::remove_dir_all(&dir);
    if let Some(c) = cluster {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/postgres");
        let _ = std::process::Command::new(script)
            .args(["stop", &c.display().to_string()])
            .status();
    }
}

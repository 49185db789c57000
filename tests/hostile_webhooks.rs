//! The webhook attacks of the third hostile probe (D1, D2, D3, D11), each replayed against the
//! receiver and shown to fail: VERIFY as a signing oracle, a rebound Host, a far-future recorded
//! time, unbounded state and event ids, and pushed state read by another user.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use smartcar_mcp::mcp::Shared;
use smartcar_mcp::secret::Secret;
use smartcar_mcp::settings::Settings;
use smartcar_mcp::simulator::{ALICE, BOB, EV, Simulator};
use smartcar_mcp::store::pushed::{MAX_BYTES, MAX_SIGNALS_PER_VEHICLE};

use crate::common;
use crate::webhooks::{AMT, event, locked, now_ms, post, post_signed, signature};

/// An in-process server on 127.0.0.1 with the management token, `extra_hosts` allowed, and
/// settings changed by `adjust`.
async fn setup_with(
    extra_hosts: &[&str],
    adjust: impl FnOnce(&mut Settings),
) -> (Simulator, Arc<Shared>, common::Served) {
    let sim = common::simulator().await;
    let mut s = common::settings(&sim);
    s.serving.management_token = Some(Secret::new(AMT));
    adjust(&mut s);
    let shared = common::shared(s);
    let hosts: Vec<String> = extra_hosts.iter().map(|h| h.to_string()).collect();
    let server = common::serve_http_allowing(shared.clone(), hosts).await;
    (sim, shared, server)
}

fn verify_v4(challenge: &str) -> Value {
    json!({ "eventId": "v", "eventType": "VERIFY", "data": { "challenge": challenge }, "meta": { "version": "4.0" } })
}

fn verify_v2(challenge: &str) -> Value {
    json!({ "version": "2.0", "webhookId": "wh-1", "eventName": "verify", "payload": { "challenge": challenge } })
}

/// A VEHICLE_STATE event saying the battery is at 3 %, recorded at the end of time.
fn forged_soc() -> Value {
    json!({
        "eventId": "forged-1", "eventType": "VEHICLE_STATE", "vehicleId": EV,
        "data": {
            "user": { "id": ALICE },
            "vehicle": { "id": EV, "make": "TESLA", "model": "Model 3", "year": 2023 },
            "signals": [{ "code": "tractionbattery-stateofcharge", "name": "StateOfCharge",
                          "group": "TractionBattery", "body": { "value": 3 },
                          "meta": { "oemUpdatedAt": "9999-12-31T23:59:59Z" } }]
        },
        "meta": { "version": "4.0", "deliveryId": "d-forged", "deliveredAt": 1 }
    })
}

fn soc_args(user: &str) -> Value {
    json!({ "vehicle_id": EV, "user_id": user, "signal_code": "tractionbattery-stateofcharge" })
}

/// A POST to the webhook route with the given Host, Origin and Content-Type.
async fn post_as(
    url: &str,
    body: &[u8],
    sig: Option<&str>,
    host: Option<&str>,
    origin: Option<&str>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "text/plain")
        .body(body.to_vec());
    if let Some(s) = sig {
        req = req.header("SC-Signature", s);
    }
    if let Some(h) = host {
        req = req.header("host", h);
    }
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn verify_is_no_signing_oracle_for_a_forged_event() {
    let (sim, shared, server) = setup_with(&[], |s| {
        s.serving.pushed_max_age = Duration::from_secs(3600);
    })
    .await;
    let forged = forged_soc().to_string();
    // Hostile-3 3.4: the forged event as the challenge of an unsigned VERIFY, in both forms.
    for verify in [verify_v4(&forged), verify_v2(&forged)] {
        let (status, body) = post(&server.base, verify.to_string().as_bytes(), None).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.get("challenge").is_none(), "{body}");
        assert!(
            body["error"].as_str().unwrap().contains("challenge"),
            "{body}"
        );
    }
    // Whatever the server signs, it cannot be an event body; challenges that parse as JSON
    // (a number, `true`) are still not objects.
    for challenge in ["c-0ffee_1", "123", "true"] {
        let (status, body) = post(
            &server.base,
            verify_v4(challenge).to_string().as_bytes(),
            None,
        )
        .await;
        assert_eq!(status, 200);
        let answer = body["challenge"].as_str().unwrap().to_string();
        assert_eq!(answer, signature(challenge.as_bytes()));
        let (status, _) = post(&server.base, forged.as_bytes(), Some(&answer)).await;
        assert_eq!(status, 401, "the answer does not sign the forged event");
        let (status, body) = post(&server.base, challenge.as_bytes(), Some(&answer)).await;
        assert_eq!(
            status, 400,
            "a validly signed non-object is refused: {body}"
        );
    }
    assert!(
        shared.app.store.pushed_vehicles().await.is_empty(),
        "nothing stored"
    );
    let r = common::run(&shared, "get_signal", soc_args(ALICE)).await;
    assert!(!r.is_error, "{r:?}");
    assert_eq!(r.structured["value"], 72, "the simulator's true value");
    assert!(r.structured.get("source").is_none(), "{r:?}");
    assert_eq!(sim.requests().len(), 1, "answered upstream");
    sim.shutdown();
}

#[tokio::test]
async fn verify_is_answered_inside_the_window_only_and_never_with_a_zero_window() {
    let (sim, shared, server) = setup_with(&[], |s| {
        s.serving.webhook_verify_window = Duration::from_secs(1);
    })
    .await;
    let (status, body) = post(&server.base, verify_v4("w-1").to_string().as_bytes(), None).await;
    assert_eq!(
        (status, body),
        (200, json!({ "challenge": signature(b"w-1") }))
    );
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    for verify in [verify_v4("w-2"), verify_v2("w-2")] {
        let (status, body) = post(&server.base, verify.to_string().as_bytes(), None).await;
        assert_eq!(status, 403, "{body}");
        let error = body["error"].as_str().unwrap();
        assert!(
            error.contains("SIGHUP") && error.contains("restart"),
            "{error}"
        );
        assert!(body.get("challenge").is_none());
    }
    // What SIGHUP does (the binary's test below sends a real one).
    shared.app.verify_window.open();
    let (status, body) = post(&server.base, verify_v4("w-3").to_string().as_bytes(), None).await;
    assert_eq!(
        (status, body["challenge"].clone()),
        (200, json!(signature(b"w-3")))
    );
    sim.shutdown();

    let (sim, shared, server) = setup_with(&[], |s| {
        s.serving.webhook_verify_window = Duration::ZERO;
    })
    .await;
    for _ in 0..2 {
        let (status, _) = post(&server.base, verify_v4("z-1").to_string().as_bytes(), None).await;
        assert_eq!(status, 403, "a zero window never opens");
        shared.app.verify_window.open();
    }
    sim.shutdown();
}

/// The binary served over HTTP with `args`, its base URL, and its stderr as it is written.
struct Served {
    child: tokio::process::Child,
    base: String,
    stderr: Arc<Mutex<String>>,
}

impl Served {
    async fn start(args: &[&str]) -> Served {
        use tokio::io::AsyncBufReadExt;
        let mut child = common::tokio_command()
            .args(args)
            .env_remove("RUST_LOG")
            .env("SMARTCAR_MANAGEMENT_TOKEN", AMT)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let stderr = Arc::new(Mutex::new(String::new()));
        let base = loop {
            let line = lines.next_line().await.unwrap().unwrap_or_else(|| {
                panic!("no listening line: {}", stderr.lock().unwrap());
            });
            stderr.lock().unwrap().push_str(&format!("{line}\n"));
            if let Some(rest) = line.trim().strip_prefix("smartcar-mcp: listening on ") {
                break rest.trim_end_matches("/mcp").to_string();
            }
        };
        // Drained all along, so the server never blocks on a full pipe.
        let sink = stderr.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        Served {
            child,
            base,
            stderr,
        }
    }

    fn pid(&self) -> String {
        self.child.id().expect("running").to_string()
    }

    fn signal(&self, name: &str) {
        let ok = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.pid()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name}");
    }

    /// VmRSS in KiB, from /proc.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    async fn stop(mut self) -> String {
        self.signal("TERM");
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        // Whatever the drain has not read yet is lost with the process; enough is there.
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.stderr.lock().unwrap().clone()
    }
}

#[cfg(unix)]
#[tokio::test]
async fn sighup_reopens_the_verification_window_of_the_served_binary() {
    let served = Served::start(&[
        "--simulator",
        "serve",
        "--http",
        "127.0.0.1:0",
        "--webhook-verify-window-s",
        "1",
        "--audit-db",
        "off",
    ])
    .await;
    let verify = verify_v4("hup-1").to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = post(&served.base, verify.as_bytes(), None).await;
        if status == 403 {
            assert!(body["error"].as_str().unwrap().contains("SIGHUP"), "{body}");
            break;
        }
        assert_eq!(status, 200, "{body}");
        assert!(Instant::now() < deadline, "the window never closed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // More refusals in the same closed window are not logged again.
    for _ in 0..5 {
        let (status, _) = post(&served.base, verify.as_bytes(), None).await;
        assert_eq!(status, 403);
    }
    served.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = post(&served.base, verify.as_bytes(), None).await;
        if status == 200 {
            assert_eq!(body["challenge"], signature(b"hup-1"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reopen the window"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = served.stop().await;
    assert_eq!(
        log.matches("refused Smartcar's webhook VERIFY").count(),
        1,
        "one log line per closed window: {log}"
    );
    assert!(log.contains("SIGHUP: answering"), "{log}");
    assert!(!log.contains(AMT), "the token was logged");
}

#[tokio::test]
async fn a_rebound_host_or_foreign_origin_is_refused_on_both_webhook_listeners() {
    let (sim, shared, server) = setup_with(&["hooks.example.com"], |_| {}).await;
    // The whole list, as the binary makes it from --allowed-hosts.
    let hosts = |extra: &[&str]| {
        let extra: Vec<String> = extra.iter().map(|h| h.to_string()).collect();
        smartcar_mcp::mcp::http::host_allow_list(&extra).unwrap()
    };
    let standalone = smartcar_mcp::mcp::webhook::listen(shared.clone(), "127.0.0.1:0", hosts(&[]))
        .await
        .unwrap();
    let served = format!("{}/webhooks/smartcar", server.base);
    let verify = verify_v4("rb-1").to_string();
    let e = event("rb-e", EV, locked(true, now_ms()));
    let signed = serde_json::to_vec(&e).unwrap();
    let sig = signature(&signed);
    for url in [&served, &standalone] {
        let port = url.split(':').nth(2).unwrap().split('/').next().unwrap();
        let evil = Some("http://rebind.evil.example");
        for (host, origin) in [
            (Some("rebind.evil.example".to_string()), evil),
            (Some(format!("rebind.evil.example:{port}")), None),
            (Some(format!("127.0.0.1.evil.example:{port}")), None),
            (Some(format!("localhost.:{port}")), None),
            (None, evil),
            (None, Some("null")),
            (None, Some("file://")),
        ] {
            let (status, body) =
                post_as(url, verify.as_bytes(), None, host.as_deref(), origin).await;
            assert_eq!(status, 403, "{url} Host {host:?} Origin {origin:?}: {body}");
            assert!(body.get("challenge").is_none());
            let (status, _) = post_as(url, &signed, Some(&sig), host.as_deref(), origin).await;
            assert_eq!(status, 403, "a signed event too");
        }
        for (host, origin) in [
            (None, None),
            (
                Some(format!("localhost:{port}")),
                Some(format!("http://localhost:{port}")),
            ),
            (
                Some(format!("[::1]:{port}")),
                Some("https://127.0.0.1".to_string()),
            ),
        ] {
            let (status, body) = post_as(
                url,
                verify.as_bytes(),
                None,
                host.as_deref(),
                origin.as_deref(),
            )
            .await;
            assert_eq!(status, 200, "{url} Host {host:?} Origin {origin:?}: {body}");
        }
    }
    assert!(shared.app.store.pushed_vehicles().await.is_empty());
    // The operator's public name, added with --allowed-hosts, reaches the served route.
    let (status, _) = post_as(
        &served,
        verify.as_bytes(),
        None,
        Some("hooks.example.com"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = post_as(
        &standalone,
        verify.as_bytes(),
        None,
        Some("hooks.example.com"),
        None,
    )
    .await;
    assert_eq!(
        status, 403,
        "the standalone listener was given no extra names"
    );
    let named = smartcar_mcp::mcp::webhook::listen(
        shared.clone(),
        "127.0.0.1:0",
        hosts(&["hooks.example.com"]),
    )
    .await
    .unwrap();
    let (status, _) = post_as(
        &named,
        verify.as_bytes(),
        None,
        Some("hooks.example.com:443"),
        None,
    )
    .await;
    assert_eq!(status, 200);

    // Only a JSON object is an event; signed or not, anything else is refused.
    for body in [&b"[1,2]"[..], b"\"VEHICLE_STATE\"", b"42", b"null"] {
        let (status, _) = post(&server.base, body, Some(&signature(body))).await;
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(body));
        let (status, _) = post(&server.base, body, None).await;
        assert_eq!(status, 400);
    }
    let wrapped = json!([verify_v4("rb-2")]).to_string();
    let (status, body) = post(&server.base, wrapped.as_bytes(), None).await;
    assert_eq!(
        status, 400,
        "a VERIFY inside an array is not answered: {body}"
    );
    assert!(shared.app.store.pushed_vehicles().await.is_empty());
    sim.shutdown();
}

#[tokio::test]
async fn a_far_future_time_is_clamped_and_a_real_unlock_then_shows() {
    let (sim, shared, server) = setup_with(&[], |s| {
        s.serving.pushed_max_age = Duration::from_secs(300);
    })
    .await;
    let read = json!({ "vehicle_id": EV, "user_id": ALICE, "signal_code": "closure-islocked" });
    let y2999 = chrono::DateTime::parse_from_rfc3339("2999-01-01T00:00:00Z")
        .unwrap()
        .timestamp_millis();
    let (status, body) = post_signed(&server.base, &event("f-1", EV, locked(true, y2999))).await;
    assert_eq!((status, body["status"].clone()), (200, json!("stored")));
    let state = shared.app.store.pushed_state(EV).await.unwrap().to_json();
    assert_eq!(state["clamped_timestamps"], 1, "{state}");
    let r = common::run(&shared, "get_signal", read.clone()).await;
    assert_eq!(r.structured["source"], "webhook");
    assert!(
        !format!("{r:?}").contains("2999"),
        "the claimed future is not reported as the time: {r:?}"
    );

    let unlock = common::run(
        &shared,
        "unlock_vehicle",
        json!({ "vehicle_id": EV, "user_id": ALICE }),
    )
    .await;
    assert!(!unlock.is_error, "{unlock:?}");
    let r = common::run(&shared, "get_signal", read.clone()).await;
    assert!(
        r.structured.get("source").is_none(),
        "stale after the command: {r:?}"
    );
    assert_eq!(r.structured["value"], false);

    tokio::time::sleep(Duration::from_millis(20)).await;
    let (status, body) =
        post_signed(&server.base, &event("f-2", EV, locked(false, now_ms()))).await;
    assert_eq!(
        (status, body["status"].clone()),
        (200, json!("stored")),
        "a genuine current event outranks the clamped one"
    );
    let r = common::run(&shared, "get_signal", read).await;
    assert_eq!(r.structured["source"], "webhook", "{r:?}");
    assert_eq!(r.structured["value"], false);
    assert_eq!(
        shared.app.store.pushed_state(EV).await.unwrap().to_json()["clamped_timestamps"],
        1
    );
    sim.shutdown();
}

#[tokio::test]
async fn one_vehicle_with_1500_new_signal_codes_stays_bounded() {
    let (sim, shared, server) = setup_with(&[], |_| {}).await;
    let value = "v".repeat(8 * 1024);
    let t = now_ms();
    let mut at_cap = None;
    for i in 0..1_500 {
        let e = event(
            &format!("grow-{i}"),
            EV,
            json!([{ "code": format!("custom-signal-{i:04}"), "name": "X", "group": "Custom",
                     "body": { "value": value }, "meta": { "oemUpdatedAt": t } }]),
        );
        let (status, body) = post_signed(&server.base, &e).await;
        assert_eq!(status, 200, "{body}");
        let bytes = shared.app.store.pushed_bytes().await;
        assert!(bytes <= MAX_BYTES, "{bytes} bytes after event {i}");
        if i + 1 == MAX_SIGNALS_PER_VEHICLE {
            at_cap = Some(bytes);
        }
        if i >= MAX_SIGNALS_PER_VEHICLE {
            assert_eq!(body["status"], "unchanged", "event {i}");
            // Past the cap, an event adds only its remembered id: the vehicle costs no more.
            let grown = bytes - at_cap.unwrap();
            assert!(grown <= (i + 1 - MAX_SIGNALS_PER_VEHICLE) * 64, "{grown}");
        }
    }
    let state = shared.app.store.pushed_state(EV).await.unwrap();
    assert_eq!(state.signals.len(), MAX_SIGNALS_PER_VEHICLE);
    assert_eq!(
        state.to_json()["skipped_signals"],
        1_500 - MAX_SIGNALS_PER_VEHICLE as u64
    );
    assert!(
        state.signals.contains_key("custom-signal-0000"),
        "the first ones stay"
    );
    sim.shutdown();
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn ten_thousand_64_kib_event_ids_are_refused_and_memory_stays_bounded() {
    let served = Served::start(&[
        "--simulator",
        "serve",
        "--http",
        "127.0.0.1:0",
        "--audit-db",
        "off",
    ])
    .await;
    let url = format!("{}/webhooks/smartcar", served.base);
    let tail = |id_end: &str| {
        format!(
            "{id_end}\",\"eventType\":\"VEHICLE_STATE\",\"vehicleId\":\"{EV}\",\"data\":{{\"user\":{{\"id\":\"{ALICE}\"}},\"signals\":[{{\"code\":\"closure-islocked\",\"body\":{{\"value\":true}},\"meta\":{{\"oemUpdatedAt\":{}}}}}]}}}}",
            now_ms()
        )
    };
    // The shared 64,000-character start of every id is signed once; each event adds its end.
    let prefix = format!("{{\"eventId\":\"{}", "x".repeat(64_000));
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(AMT.as_bytes()).unwrap();
    mac.update(prefix.as_bytes());
    let client = reqwest::Client::new();
    let send = |body: Vec<u8>, sig: String| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let r = client
                .post(url)
                .header("content-type", "application/json")
                .header("SC-Signature", sig)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let before = served.rss_kib();
    let long = futures::stream::iter(0..10_000)
        .map(|i| {
            let rest = tail(&format!("-{i:05}"));
            let mut m = mac.clone();
            m.update(rest.as_bytes());
            let sig = hex(&m.finalize().into_bytes());
            let mut body = prefix.clone().into_bytes();
            body.extend_from_slice(rest.as_bytes());
            send(body, sig)
        })
        .buffer_unordered(4)
        .collect::<Vec<_>>()
        .await;
    for (status, body) in &long {
        assert_eq!(*status, 400, "{body}");
        assert!(
            body["error"].as_str().unwrap().contains("eventId"),
            "{body}"
        );
    }
    // The longest ids accepted are remembered as fixed-size hashes.
    let kept = futures::stream::iter(0..10_000)
        .map(|i| {
            let body = format!("{{\"eventId\":\"{i:0>128}") + &tail("");
            let sig = signature(body.as_bytes());
            send(body.into_bytes(), sig)
        })
        .buffer_unordered(4)
        .collect::<Vec<_>>()
        .await;
    assert!(kept.iter().all(|(s, _)| *s == 200), "{:?}", kept.first());
    let after = served.rss_kib();
    eprintln!("RSS {before} -> {after} KiB over 20,000 events (10,000 with 64 KiB ids)");
    assert!(
        after < before + 64 * 1024,
        "RSS grew from {before} to {after} KiB"
    );
    served.stop().await;
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn pushed_state_is_not_served_without_its_user_or_to_another_user() {
    let (sim, shared, server) = setup_with(&[], |s| {
        s.serving.pushed_max_age = Duration::from_secs(300);
    })
    .await;
    let soc = |value: i64| {
        json!([{ "code": "tractionbattery-stateofcharge", "name": "StateOfCharge", "group": "TractionBattery",
                 "body": { "value": value }, "meta": { "oemUpdatedAt": now_ms() } }])
    };
    let mut no_user = event("u-1", EV, soc(3));
    no_user["data"].as_object_mut().unwrap().remove("user");
    let (status, body) = post_signed(&server.base, &no_user).await;
    assert_eq!((status, body["status"].clone()), (200, json!("stored")));
    // Hostile-3 3.10: bob, whom Smartcar does not let read this vehicle.
    for user in [BOB, ALICE] {
        let before = sim.requests().len();
        let r = common::run(&shared, "get_signal", soc_args(user)).await;
        assert_ne!(r.structured["source"], "webhook", "{user}: {r:?}");
        assert_ne!(r.structured["value"], 3, "{user}: {r:?}");
        assert_eq!(sim.requests().len(), before + 1, "{user} asked upstream");
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    post_signed(&server.base, &event("u-2", EV, soc(3))).await;
    let r = common::run(&shared, "get_signal", soc_args(ALICE)).await;
    assert_eq!(
        (
            r.structured["source"].clone(),
            r.structured["value"].clone()
        ),
        (json!("webhook"), json!(3))
    );
    let before = sim.requests().len();
    let r = common::run(&shared, "get_signal", soc_args(BOB)).await;
    assert_ne!(r.structured["source"], "webhook", "{r:?}");
    assert_ne!(
        r.structured["value"], 3,
        "bob is not given alice's value: {r:?}"
    );
    assert_eq!(
        sim.requests().len(),
        before + 1,
        "bob got an upstream answer"
    );
    sim.shutdown();
}

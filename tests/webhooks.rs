//! Live vehicle state: Smartcar's signed webhooks in (VERIFY, signatures, duplicates, order,
//! bounds), MCP resources and subscriptions out, and reads answered from pushed state.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{KeyInit, Mac};
use rmcp::model::{
    ReadResourceRequestParams, ResourceContents, ResourceUpdatedNotificationParam,
    SubscribeRequestParams,
};
use rmcp::service::NotificationContext;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};
use smartcar_mcp::mcp::Shared;
use smartcar_mcp::secret::Secret;
use smartcar_mcp::simulator::{ALICE, EV, Simulator};

use crate::common;

pub(crate) const AMT: &str = "amt-test-5c0f8e2a9d71b346";

/// Smartcar's signature, computed here with the hmac crate directly (not the server's code).
pub(crate) fn signature(body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(AMT.as_bytes()).unwrap();
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(crate) async fn setup(
    amt: Option<&str>,
    pushed_max_age_s: u64,
) -> (Simulator, Arc<Shared>, common::Served) {
    let sim = common::simulator().await;
    let mut s = common::settings(&sim);
    s.serving.management_token = amt.map(Secret::new);
    s.serving.pushed_max_age = Duration::from_secs(pushed_max_age_s);
    let shared = common::shared(s);
    let server = common::serve_http(shared.clone()).await;
    (sim, shared, server)
}

pub(crate) fn event(id: &str, vehicle: &str, signals: Value) -> Value {
    json!({
        "eventId": id, "eventType": "VEHICLE_STATE", "vehicleId": vehicle,
        "data": {
            "user": { "id": ALICE },
            "vehicle": { "id": vehicle, "make": "TESLA", "model": "Model 3", "year": 2023 },
            "triggers": [{ "code": "closure-islocked", "name": "IsLocked", "group": "Closure" }],
            "signals": signals
        },
        "meta": { "version": "4.0", "deliveryId": format!("d-{id}"), "deliveredAt": 1, "webhookId": "wh-1", "mode": "LIVE" }
    })
}

pub(crate) fn locked(value: bool, oem_ms: i64) -> Value {
    json!([{ "code": "closure-islocked", "name": "IsLocked", "group": "Closure",
             "body": { "value": value }, "meta": { "oemUpdatedAt": oem_ms, "fetchedAt": oem_ms } }])
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub(crate) async fn post(base: &str, body: &[u8], sig: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/webhooks/smartcar"))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(s) = sig {
        req = req.header("SC-Signature", s);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

pub(crate) async fn post_signed(base: &str, event: &Value) -> (u16, Value) {
    let body = serde_json::to_vec(event).unwrap();
    post(base, &body, Some(&signature(&body))).await
}

#[tokio::test]
async fn verify_is_answered_with_the_hmac_of_the_challenge_in_both_forms() {
    let (sim, _shared, server) = setup(Some(AMT), 0).await;
    let v4 = json!({ "eventId": "v", "eventType": "VERIFY", "data": { "challenge": "3f1a-challenge" }, "meta": { "version": "4.0" } });
    let (status, body) = post(&server.base, v4.to_string().as_bytes(), None).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({ "challenge": signature(b"3f1a-challenge") }));
    let v2 = json!({ "version": "2.0", "webhookId": "wh-1", "eventName": "verify", "payload": { "challenge": "older-form" } });
    let (status, body) = post_signed(&server.base, &v2).await;
    assert_eq!(status, 200);
    assert_eq!(body["challenge"], signature(b"older-form"));
    sim.shutdown();
}

#[tokio::test]
async fn only_signed_events_change_anything() {
    let (sim, shared, server) = setup(Some(AMT), 0).await;
    let e = event("e-1", EV, locked(true, now_ms()));
    let body = serde_json::to_vec(&e).unwrap();
    let (status, _) = post(&server.base, &body, None).await;
    assert_eq!(status, 401, "unsigned");
    let (status, _) = post(&server.base, &body, Some(&"0".repeat(64))).await;
    assert_eq!(status, 401, "forged");
    let (status, _) = post(
        &server.base,
        &body[..body.len() - 5],
        Some(&signature(&body)),
    )
    .await;
    assert_eq!(status, 401, "truncated");
    let other_key = {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"not-the-amt").unwrap();
        mac.update(&body);
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let (status, _) = post(&server.base, &body, Some(&other_key)).await;
    assert_eq!(status, 401, "signed with another key");
    assert!(
        shared.app.store.pushed_vehicles().await.is_empty(),
        "nothing was stored"
    );

    let big = vec![b' '; 70 * 1024];
    let (status, _) = post(&server.base, &big, Some(&signature(&big))).await;
    assert_eq!(status, 413, "oversized");

    let (status, body) = post_signed(&server.base, &e).await;
    assert_eq!((status, body["status"].clone()), (200, json!("stored")));
    let (status, body) = post_signed(&server.base, &e).await;
    assert_eq!(
        (status, body["status"].clone()),
        (200, json!("unchanged")),
        "a replay is deduplicated"
    );
    assert_eq!(
        shared.app.store.pushed_vehicles().await,
        vec![EV.to_string()]
    );
    sim.shutdown();
}

#[tokio::test]
async fn without_the_management_token_the_route_says_webhooks_are_off() {
    let (sim, _shared, server) = setup(None, 0).await;
    let (status, body) = post_signed(&server.base, &event("e-1", EV, locked(true, now_ms()))).await;
    assert_eq!(status, 503);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("SMARTCAR_MANAGEMENT_TOKEN")
    );
    sim.shutdown();
}

#[tokio::test]
async fn out_of_order_and_concurrent_deliveries_keep_the_newest_values() {
    let (sim, shared, server) = setup(Some(AMT), 0).await;
    let t = now_ms();
    post_signed(&server.base, &event("new", EV, locked(false, t))).await;
    let (status, body) =
        post_signed(&server.base, &event("old", EV, locked(true, t - 60_000))).await;
    assert_eq!((status, body["status"].clone()), (200, json!("unchanged")));
    let state = shared.app.store.pushed_state(EV).await.unwrap();
    assert_eq!(
        state.signals["closure-islocked"].raw["body"]["value"],
        false
    );

    // 50 events for one vehicle at once, each carrying its own signal.
    let posts = (0..50).map(|i| {
        let e = event(
            &format!("c-{i}"),
            EV,
            json!([{ "code": format!("charge-test{i}"), "name": "T", "group": "Charge",
                     "body": { "value": i }, "meta": { "oemUpdatedAt": t } }]),
        );
        let base = server.base.clone();
        async move { post_signed(&base, &e).await }
    });
    let answers = futures::future::join_all(posts).await;
    assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
    assert_eq!(
        shared
            .app
            .store
            .pushed_state(EV)
            .await
            .unwrap()
            .signals
            .len(),
        51
    );
    sim.shutdown();
}

#[tokio::test]
async fn vehicle_errors_are_kept_with_their_state() {
    let (sim, shared, server) = setup(Some(AMT), 0).await;
    let err = |id: &str, state: &str| {
        json!({
            "eventId": id, "eventType": "VEHICLE_ERROR", "vehicleId": EV,
            "data": { "errors": [{ "type": "CONNECTED_SERVICES_ACCOUNT", "code": "SUBSCRIPTION", "state": state,
                                   "description": "The owner's subscription lapsed." }] }
        })
    };
    post_signed(&server.base, &err("x-1", "ERROR")).await;
    post_signed(&server.base, &err("x-2", "RESOLVED")).await;
    let state = shared.app.store.pushed_state(EV).await.unwrap().to_json();
    assert_eq!(state["errors"].as_array().unwrap().len(), 1);
    assert_eq!(state["errors"][0]["state"], "RESOLVED");
    sim.shutdown();
}

#[tokio::test]
async fn reads_come_from_fresh_pushed_state_with_zero_upstream_calls() {
    let (sim, shared, server) = setup(Some(AMT), 300).await;
    post_signed(
        &server.base,
        &event("e-1", EV, locked(false, now_ms() - 5_000)),
    )
    .await;
    let args = json!({ "vehicle_id": EV, "user_id": ALICE, "signal_code": "closure-islocked" });
    let r = common::run(&shared, "get_signal", args.clone()).await;
    assert!(!r.is_error, "{r:?}");
    assert_eq!(r.structured["source"], "webhook");
    assert_eq!(r.structured["value"], false);
    assert!(r.structured["age_s"].as_u64().unwrap() >= 4);
    assert!(r.lead.as_deref().unwrap().contains("webhook"));
    assert!(sim.requests().is_empty(), "{:?}", sim.requests());
    assert_eq!(shared.app.usage.snapshot().await["total"]["pushed"], 1);

    // raw always asks Smartcar; so does a signal the webhook does not carry.
    let mut raw = args.clone();
    raw["raw"] = json!(true);
    common::run(&shared, "get_signal", raw).await;
    assert_eq!(sim.requests().len(), 1);
    common::run(&shared, "get_signal", json!({ "vehicle_id": EV, "user_id": ALICE, "signal_code": "tractionbattery-stateofcharge" })).await;
    assert_eq!(sim.requests().len(), 2);

    // A command makes the pushed state stale: the next read goes upstream.
    common::run(
        &shared,
        "lock_vehicle",
        json!({ "vehicle_id": EV, "user_id": ALICE }),
    )
    .await;
    let before = sim.requests().len();
    let r = common::run(&shared, "get_signal", args).await;
    assert_ne!(r.structured["source"], "webhook");
    assert_eq!(sim.requests().len(), before + 1);
    sim.shutdown();

    // Pushed state older than the allowed age is not used.
    let (sim, shared, server) = setup(Some(AMT), 60).await;
    post_signed(
        &server.base,
        &event("e-2", EV, locked(false, now_ms() - 600_000)),
    )
    .await;
    let r = common::run(
        &shared,
        "get_signal",
        json!({ "vehicle_id": EV, "user_id": ALICE, "signal_code": "closure-islocked" }),
    )
    .await;
    assert!(r.structured.get("source").is_none(), "{r:?}");
    assert_eq!(sim.requests().len(), 1);
    sim.shutdown();
}

#[derive(Clone, Default)]
struct Listener {
    updated: Arc<Mutex<Vec<String>>>,
}

impl ClientHandler for Listener {
    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.updated.lock().unwrap().push(params.uri);
    }
}

#[tokio::test]
async fn a_subscribed_client_hears_of_a_new_event_and_reads_the_state() {
    let (sim, _shared, server) = setup(Some(AMT), 0).await;
    let listener = Listener::default();
    let transport = StreamableHttpClientTransport::from_uri(format!("{}/mcp", server.base));
    let client = listener.clone().serve(transport).await.unwrap();
    let uri = format!("smartcar://vehicles/{EV}/state");
    let missing = client
        .read_resource(ReadResourceRequestParams::new(uri.clone()))
        .await;
    assert!(missing.is_err(), "no state yet is a not-found error");
    // The handshake revisions' form; 2026-07-28 clients use subscriptions/listen.
    #[allow(deprecated)]
    client
        .subscribe(SubscribeRequestParams::new(uri.clone()))
        .await
        .unwrap();
    post_signed(&server.base, &event("e-1", EV, locked(true, now_ms()))).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while listener.updated.lock().unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no notifications/resources/updated"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(listener.updated.lock().unwrap()[0], uri);
    let read = client
        .read_resource(ReadResourceRequestParams::new(uri.clone()))
        .await
        .unwrap();
    let ResourceContents::TextResourceContents { text, .. } = &read.contents[0] else {
        panic!()
    };
    let state: Value = serde_json::from_str(text).unwrap();
    assert_eq!(state["vehicle_id"], EV);
    assert_eq!(state["signals"][0]["code"], "closure-islocked");
    assert!(
        state["signals"][0]["oem_updated_at"]
            .as_str()
            .unwrap()
            .contains('T')
    );
    let listed = client.list_all_resources().await.unwrap();
    assert!(listed.iter().any(|r| r.uri == uri));
    // The signal catalogue is a resource too, by code or alias.
    let one = client
        .read_resource(ReadResourceRequestParams::new(
            "smartcar://signals/TractionBattery.StateOfCharge",
        ))
        .await
        .unwrap();
    let ResourceContents::TextResourceContents { text, .. } = &one.contents[0] else {
        panic!()
    };
    assert!(text.contains("tractionbattery-stateofcharge"), "{text}");
    client.cancel().await.unwrap();
    sim.shutdown();
}

#[cfg(unix)]
#[tokio::test]
async fn the_served_binary_logs_neither_the_token_nor_a_signature_at_trace() {
    let sim = common::simulator().await;
    let mut child = common::tokio_command()
        .args(["serve", "--http", "127.0.0.1:0", "--audit-db", "off"])
        .env("RUST_LOG", "trace")
        .env("SMARTCAR_MANAGEMENT_TOKEN", AMT)
        .env("SMARTCAR_CLIENT_ID", "client_wh")
        .env("SMARTCAR_CLIENT_SECRET", common::CLIENT_SECRET)
        .env("SMARTCAR_AUTH_URL", sim.auth_url())
        .env("SMARTCAR_API_URL", sim.api_url())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let base = loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).await.unwrap() > 0,
            "no listening line: {seen}"
        );
        seen.push_str(&line);
        if let Some(rest) = line.trim().strip_prefix("smartcar-mcp: listening on ") {
            break rest.trim_end_matches("/mcp").to_string();
        }
    };
    let e = event("t-1", EV, locked(true, now_ms()));
    let body = serde_json::to_vec(&e).unwrap();
    let sig = signature(&body);
    let (status, _) = post(&base, &body, Some(&sig)).await;
    assert_eq!(status, 200);
    let (status, _) = post(&base, &body, Some(&"f".repeat(64))).await;
    assert_eq!(status, 401);
    let pid = child.id().expect("running").to_string();
    // SIGTERM: the server shuts down gracefully and its log is complete.
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let mut rest = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stderr.read_to_string(&mut rest)).await;
    seen.push_str(&rest);
    assert!(
        seen.contains("webhook"),
        "the webhook was logged at all: {seen}"
    );
    assert!(!seen.contains(AMT), "the management token was logged");
    assert!(!seen.contains(&sig), "a signature was logged");
    sim.shutdown();
}

/// The closing note's figure: 10 reads of one vehicle after one pushed event.
#[tokio::test]
async fn ten_reads_after_one_event_cost_nothing_with_pushed_answers() {
    let mut upstream = Vec::new();
    for max_age in [0, 300] {
        let (sim, shared, server) = setup(Some(AMT), max_age).await;
        post_signed(&server.base, &event("e-1", EV, locked(true, now_ms()))).await;
        for _ in 0..10 {
            let args =
                json!({ "vehicle_id": EV, "user_id": ALICE, "signal_code": "closure-islocked" });
            assert!(!common::run(&shared, "get_signal", args).await.is_error);
        }
        upstream.push(sim.requests().len());
        sim.shutdown();
    }
    eprintln!(
        "10 reads after one pushed event: {} upstream calls without --pushed-max-age-s, {} with it",
        upstream[0], upstream[1]
    );
    assert_eq!(upstream, vec![10, 0]);
}

#[tokio::test]
async fn the_simulator_pushes_a_commands_effect_as_a_signed_webhook() {
    let (sim, shared, server) = setup(Some(AMT), 300).await;
    sim.deliver_webhooks(&format!("{}/webhooks/smartcar", server.base), AMT);
    let lock = common::run(
        &shared,
        "lock_vehicle",
        json!({ "vehicle_id": EV, "user_id": ALICE }),
    )
    .await;
    assert!(!lock.is_error, "{lock:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let state = loop {
        if let Some(s) = shared.app.store.pushed_state(EV).await {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "no webhook arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(state.signals["closure-islocked"].raw["body"]["value"], true);
    assert_eq!(state.user_id.as_deref(), Some(ALICE));
    // The lock arrived as an event, so the next read needs no upstream call.
    let before = sim.requests().len();
    let r = common::run(
        &shared,
        "get_signal",
        json!({ "vehicle_id": EV, "user_id": ALICE, "signal_code": "closure-islocked" }),
    )
    .await;
    assert_eq!(r.structured["source"], "webhook", "{r:?}");
    assert_eq!(r.structured["value"], true);
    assert_eq!(sim.requests().len(), before);
    sim.shutdown();
}

/// `--simulator --webhook-addr`: the binary's own simulator pushes to the binary's own receiver.
#[tokio::test]
async fn in_simulator_mode_a_lock_arrives_as_an_event() {
    use rmcp::model::CallToolRequestParams;
    let mut cmd = common::tokio_command();
    cmd.args([
        "--simulator",
        "--webhook-addr",
        "127.0.0.1:0",
        "--pushed-max-age-s",
        "300",
        "--confirm",
        "off",
        "--audit-db",
        "off",
    ])
    .env_remove("RUST_LOG")
    .env_remove("SMARTCAR_MANAGEMENT_TOKEN");
    let (transport, _) = rmcp::transport::TokioChildProcess::builder(cmd)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = common::client_over(transport, false).await;
    let call = |name: &str, args: Value| {
        CallToolRequestParams::new(name.to_string())
            .with_arguments(args.as_object().cloned().unwrap())
    };
    let args = json!({ "vehicle_id": EV, "user_id": ALICE });
    client
        .call_tool(call("unlock_vehicle", args))
        .await
        .unwrap();
    let read = json!({ "vehicle_id": EV, "user_id": ALICE, "signal_code": "closure-islocked" });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = client
            .call_tool(call("get_signal", read.clone()))
            .await
            .unwrap();
        let s = r.structured_content.unwrap();
        if s["source"] == "webhook" {
            assert_eq!(s["value"], false, "the unlock's effect: {s}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the unlock never arrived as an event"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client.cancel().await.unwrap();
}

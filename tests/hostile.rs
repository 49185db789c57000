//! Hostile input against the doors of the MCP layer (issue 30, an attacker's probe of 0.1.0):
//! each test replays an attack the probe made and asserts that it now fails: CPU spent on
//! megabyte "signal codes", subscriptions and usage counters grown by client-chosen keys, the
//! Compatibility API cache grown by client-chosen makes, a request id reused while in flight, a
//! second `initialize`, params that do not parse, `DELETE` of an unknown session, and echoed
//! input. Growth is asserted as exact counts of what is held, not as times.

use std::sync::Arc;
use std::time::Duration;

use rmcp::ServiceExt;
use serde_json::{Value, json};
use smartcar_mcp::mcp::Shared;
use smartcar_mcp::mcp::server::SmartcarServer;
use smartcar_mcp::mcp::stdio::FilteredLines;
use smartcar_mcp::simulator::{ALICE, EV, Simulator};
use smartcar_mcp::store::Store;
use smartcar_mcp::tool::cache::{Kind, MAX_CACHED};
use smartcar_mcp::tool::usage::{Counts, MAX_VEHICLES, Usage};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, ReadHalf, WriteHalf};

use crate::common;

/// A stdio session served in process over a pipe, spoken to in raw lines.
struct Stdio {
    to: WriteHalf<DuplexStream>,
    from: tokio::io::Lines<BufReader<ReadHalf<DuplexStream>>>,
}

impl Stdio {
    async fn start(shared: Arc<Shared>, elicitation: bool) -> Self {
        let (client, server) = tokio::io::duplex(1 << 20);
        let (read, write) = tokio::io::split(server);
        tokio::spawn(async move {
            if let Ok(s) = SmartcarServer::new(shared)
                .serve(FilteredLines::new(read, write))
                .await
            {
                let _ = s.waiting().await;
            }
        });
        let (from, to) = tokio::io::split(client);
        let mut s = Stdio {
            to,
            from: BufReader::new(from).lines(),
        };
        let caps = if elicitation {
            json!({ "elicitation": {} })
        } else {
            json!({})
        };
        s.send(
            &json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": caps,
            "clientInfo": { "name": "hostile", "version": "0" } } }),
        )
        .await;
        assert!(s.next().await["result"]["serverInfo"].is_object());
        s.send(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }))
            .await;
        s
    }

    async fn send(&mut self, m: &Value) {
        self.send_raw(&m.to_string()).await;
    }

    async fn send_raw(&mut self, line: &str) {
        self.to.write_all(line.as_bytes()).await.unwrap();
        self.to.write_all(b"\n").await.unwrap();
        self.to.flush().await.unwrap();
    }

    async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(30), self.from.next_line())
            .await
            .expect("an answer within 30 s")
            .unwrap()
            .expect("the session is still open");
        serde_json::from_str(&line).unwrap()
    }

    /// The answer with this id, skipping anything else (server requests, notifications).
    async fn answer(&mut self, id: u64) -> Value {
        loop {
            let m = self.next().await;
            if m["id"] == json!(id) && (m.get("result").is_some() || m.get("error").is_some()) {
                return m;
            }
        }
    }
}

async fn shared_on(sim: &Simulator) -> Arc<Shared> {
    common::shared(common::settings(sim))
}

#[tokio::test]
async fn megabyte_signal_codes_are_refused_unscored_and_unechoed() {
    let sim = common::simulator().await;
    let shared = shared_on(&sim).await;
    let mut s = Stdio::start(shared, false).await;
    let huge = "z".repeat(1024 * 1024);
    s.send(
        &json!({ "jsonrpc": "2.0", "id": 1, "method": "resources/read",
        "params": { "uri": format!("smartcar://signals/{huge}") } }),
    )
    .await;
    let e = s.answer(1).await;
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(msg.contains("at most 80 characters"), "{msg}");
    assert!(!msg.contains("did you mean"), "not scored: {msg}");
    assert!(
        msg.len() < 400,
        "the 1 MB code is not echoed: {} bytes",
        msg.len()
    );
    s.send(&json!({ "jsonrpc": "2.0", "id": 2, "method": "prompts/get",
        "params": { "name": "vehicle_health", "arguments": {
            "vehicle_id": EV, "user_id": ALICE, "signal_code": huge } } }))
        .await;
    let e = s.answer(2).await;
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("at most 80 characters") && msg.len() < 400,
        "{msg}"
    );
    // A misspelling under the bound still gets its suggestions.
    s.send(
        &json!({ "jsonrpc": "2.0", "id": 3, "method": "resources/read",
        "params": { "uri": "smartcar://signals/tractionbattery-stateofchrage" } }),
    )
    .await;
    let msg = s.answer(3).await["error"]["message"].to_string();
    assert!(
        msg.contains("did you mean tractionbattery-stateofcharge"),
        "{msg}"
    );
    let unknown = "q".repeat(81);
    assert!(smartcar_mcp::catalogue::closest_signals(&unknown).is_empty());
    assert!(!smartcar_mcp::catalogue::closest_signals(&unknown[..80]).is_empty());
    sim.shutdown();
}

#[tokio::test]
async fn two_hundred_thousand_subscribes_hold_at_most_a_thousand_per_session() {
    let sim = common::simulator().await;
    let shared = shared_on(&sim).await;
    let mut s = Stdio::start(shared.clone(), false).await;
    const N: u64 = 200_000;
    // 2,000 distinct vehicles, then the same URI over and over: written by one task while this
    // one reads, as a client pipelining them would.
    let Stdio { mut to, mut from } = s;
    let writer = tokio::spawn(async move {
        let mut batch = String::new();
        for i in 0..N {
            let v = if i < 2_000 { i } else { 7 };
            batch.push_str(
                &json!({ "jsonrpc": "2.0", "id": i + 10, "method": "resources/subscribe",
                    "params": { "uri": format!("smartcar://vehicles/veh-{v}/state") } })
                .to_string(),
            );
            batch.push('\n');
            if batch.len() > 64 * 1024 {
                to.write_all(batch.as_bytes()).await.unwrap();
                batch.clear();
            }
        }
        to.write_all(batch.as_bytes()).await.unwrap();
        to.flush().await.unwrap();
        to
    });
    let (mut ok, mut refused) = (0u64, 0u64);
    for _ in 0..N {
        let line = tokio::time::timeout(Duration::from_secs(60), from.next_line())
            .await
            .expect("every subscribe is answered")
            .unwrap()
            .unwrap();
        let m: Value = serde_json::from_str(&line).unwrap();
        if m.get("result").is_some() {
            ok += 1;
        } else {
            let msg = m["error"]["message"].as_str().unwrap_or("");
            assert!(msg.contains("1000 subscriptions"), "{msg}");
            refused += 1;
        }
    }
    assert_eq!(ok + refused, N);
    assert_eq!(
        refused, 1_000,
        "vehicles 1,000 to 1,999 are beyond the bound"
    );
    assert_eq!(
        shared.subscriptions(),
        1_000,
        "each (uri, session) is held once, at most 1,000"
    );
    s = Stdio {
        to: writer.await.unwrap(),
        from,
    };
    s.send(
        &json!({ "jsonrpc": "2.0", "id": 1, "method": "resources/unsubscribe",
        "params": { "uri": "smartcar://vehicles/veh-7/state" } }),
    )
    .await;
    s.answer(1).await;
    assert_eq!(shared.subscriptions(), 999);
    // The session ends (the client closes its side): its subscriptions go with it.
    drop(s);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while shared.subscriptions() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "an ended session's subscriptions are dropped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sim.shutdown();
}

fn post(
    http: &reqwest::Client,
    url: &str,
    session: Option<&str>,
    body: &Value,
) -> reqwest::RequestBuilder {
    let mut r = http
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-06-18")
        .body(body.to_string());
    if let Some(s) = session {
        r = r.header("mcp-session-id", s);
    }
    r
}

/// A handshake session; returns its id.
async fn open_session(http: &reqwest::Client, url: &str, elicitation: bool) -> String {
    let caps = if elicitation {
        json!({ "elicitation": {} })
    } else {
        json!({})
    };
    let init = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": caps,
        "clientInfo": { "name": "hostile", "version": "0" } } });
    let r = post(http, url, None, &init).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let id = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
    let r = post(
        http,
        url,
        Some(&id),
        &json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 202);
    id
}

fn unlock(id: u64) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
        "name": "unlock_vehicle", "arguments": { "vehicle_id": EV, "user_id": ALICE } } })
}

#[tokio::test]
async fn a_duplicate_id_in_flight_gets_32600_on_http_and_on_stdio() {
    let sim = common::simulator().await;
    let mut settings = common::settings(&sim);
    // Confirmation on: the first unlock waits for a human who never answers, so its id stays
    // in flight while the second arrives.
    settings.serving.confirm = smartcar_mcp::settings::ConfirmMode::Required;
    let shared = common::shared(settings);
    let server = common::serve_http(shared.clone()).await;
    let http = reqwest::Client::new();
    let session = open_session(&http, &server.mcp(), true).await;
    let first = tokio::spawn({
        let (http, url, session) = (http.clone(), server.mcp(), session.clone());
        async move {
            post(&http, &url, Some(&session), &unlock(3))
                .timeout(Duration::from_secs(2))
                .send()
                .await
        }
    });
    // The first is in flight once the server asks its question over SSE; wait for rmcp to see it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = post(&http, &server.mcp(), Some(&session), &unlock(3))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let m = &common::messages(&r.text().await.unwrap())[0];
    assert_eq!(m["id"], 3);
    assert_eq!(m["error"]["code"], -32600);
    assert!(
        m["error"]["message"]
            .as_str()
            .unwrap()
            .contains("still in flight"),
        "{m}"
    );
    // Another id on the same session is served meanwhile, and the same id on another session.
    let ping = json!({ "jsonrpc": "2.0", "id": 4, "method": "ping" });
    let r = post(&http, &server.mcp(), Some(&session), &ping)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let other = open_session(&http, &server.mcp(), false).await;
    let r = post(&http, &server.mcp(), Some(&other), &unlock(3))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "ids belong to their session");
    let m = &common::messages(&r.text().await.unwrap())[0];
    assert_eq!(
        m["result"]["isError"], true,
        "refused: that client cannot be asked: {m}"
    );
    // The first request's stream ends (its client gives up): its id is free again.
    let _ = first.await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = post(
            &http,
            &server.mcp(),
            Some(&session),
            &json!({ "jsonrpc": "2.0", "id": 3, "method": "ping" }),
        )
        .send()
        .await
        .unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the id is freed when its stream ends"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        sim.hits("POST", "/commands/security/unlock"),
        0,
        "no unlock was sent"
    );

    let mut s = Stdio::start(shared.clone(), true).await;
    s.send(&unlock(5)).await;
    // The question goes out first: the request is in flight.
    let ask = s.next().await;
    assert_eq!(ask["method"], "elicitation/create", "{ask}");
    s.send(&unlock(5)).await;
    let e = s.answer(5).await;
    assert_eq!(e["error"]["code"], -32600, "{e}");
    // Cancelled, its id stays taken (MCP: never reused in a session), and a new id is served.
    s.send(&json!({ "jsonrpc": "2.0", "method": "notifications/cancelled", "params": { "requestId": 5 } }))
        .await;
    s.send(&json!({ "jsonrpc": "2.0", "id": 5, "method": "ping" }))
        .await;
    assert_eq!(s.answer(5).await["error"]["code"], -32600);
    s.send(&json!({ "jsonrpc": "2.0", "id": 6, "method": "ping" }))
        .await;
    assert!(s.answer(6).await.get("result").is_some());
    sim.shutdown();
}

#[tokio::test]
async fn a_second_initialize_is_refused_and_changes_nothing() {
    let sim = common::simulator().await;
    let mut settings = common::settings(&sim);
    settings.serving.confirm = smartcar_mcp::settings::ConfirmMode::Required;
    let shared = common::shared(settings);
    let server = common::serve_http(shared.clone()).await;
    let http = reqwest::Client::new();
    // A session whose client cannot be asked: a confirmed call is refused at once.
    let session = open_session(&http, &server.mcp(), false).await;
    let again = json!({ "jsonrpc": "2.0", "id": 2, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": { "elicitation": {} },
        "clientInfo": { "name": "someone-else", "version": "0" } } });
    let r = post(&http, &server.mcp(), Some(&session), &again)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let m = &common::messages(&r.text().await.unwrap())[0];
    assert_eq!(m["error"]["code"], -32600);
    assert_eq!(m["id"], 2);
    let r = post(&http, &server.mcp(), Some(&session), &unlock(3))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("answered at once, not held for an elicitation");
    let m = &common::messages(&r.text().await.unwrap())[0];
    assert_eq!(m["result"]["isError"], true, "{m}");
    assert_eq!(sim.hits("POST", "/commands/security/unlock"), 0);

    let mut s = Stdio::start(shared, false).await;
    s.send(
        &json!({ "jsonrpc": "2.0", "id": 9, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": { "elicitation": {} },
        "clientInfo": { "name": "someone-else", "version": "0" } } }),
    )
    .await;
    let e = s.answer(9).await;
    assert_eq!(e["error"]["code"], -32600, "{e}");
    s.send(&unlock(10)).await;
    let r = s.answer(10).await;
    assert_eq!(
        r["result"]["isError"], true,
        "still a client that cannot be asked: {r}"
    );
    sim.shutdown();
}

#[tokio::test]
async fn params_that_do_not_parse_get_32602_naming_the_member() {
    let sim = common::simulator().await;
    let mut s = Stdio::start(shared_on(&sim).await, false).await;
    let cases = [
        (
            json!({ "name": "get_vehicle", "arguments": ["veh"] }),
            "tools/call",
            "`arguments`",
        ),
        (
            json!({ "name": "get_vehicle", "arguments": "veh" }),
            "tools/call",
            "`arguments`",
        ),
        (
            json!({ "arguments": {} }),
            "tools/call",
            "missing field `name`",
        ),
        (json!({ "uri": 7 }), "resources/read", "`uri`"),
        (json!({ "uri": ["x"] }), "resources/subscribe", "`uri`"),
        (json!({ "name": 1 }), "prompts/get", "`name`"),
        (
            json!({ "ref": 1, "argument": { "name": "vehicle_id", "value": "v" } }),
            "completion/complete",
            "`ref`",
        ),
    ];
    for (i, (params, method, member)) in cases.iter().enumerate() {
        let id = 100 + i as u64;
        s.send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }))
            .await;
        let e = s.answer(id).await;
        assert_eq!(e["error"]["code"], -32602, "{method} {params}: {e}");
        let msg = e["error"]["message"].as_str().unwrap();
        assert!(msg.contains(member) && msg.contains(method), "{msg}");
    }
    // A duplicate `params.name`: serde refuses it, and now says so.
    s.send_raw(r#"{"jsonrpc":"2.0","id":120,"method":"tools/call","params":{"name":"get_vehicle","name":"x","arguments":{}}}"#)
        .await;
    let e = s.answer(120).await;
    assert_eq!(e["error"]["code"], -32602, "{e}");
    assert!(
        e["error"]["message"].to_string().contains("given twice"),
        "{e}"
    );
    // An unknown method stays -32601, its name cut to a bound.
    let long = "m".repeat(100_000);
    s.send(&json!({ "jsonrpc": "2.0", "id": 121, "method": long }))
        .await;
    let e = s.answer(121).await;
    assert_eq!(e["error"]["code"], -32601);
    assert!(e["error"]["message"].as_str().unwrap().len() < 300, "{e}");
    assert!(sim.requests().is_empty(), "nothing reached Smartcar");
    sim.shutdown();
}

#[tokio::test]
async fn delete_of_an_unknown_session_is_404() {
    let sim = common::simulator().await;
    let server = common::serve_http(shared_on(&sim).await).await;
    let http = reqwest::Client::new();
    let delete = |id: String| {
        http.delete(server.mcp())
            .header("mcp-session-id", id)
            .header("mcp-protocol-version", "2025-06-18")
            .send()
    };
    assert_eq!(
        delete("no-such-session".into()).await.unwrap().status(),
        404
    );
    let session = open_session(&http, &server.mcp(), false).await;
    assert_eq!(delete(session.clone()).await.unwrap().status(), 202);
    assert_eq!(
        delete(session).await.unwrap().status(),
        404,
        "gone once deleted"
    );
    sim.shutdown();
}

#[tokio::test]
async fn ended_http_sessions_keep_no_subscriptions() {
    let sim = common::simulator().await;
    let shared = shared_on(&sim).await;
    let server = common::serve_http(shared.clone()).await;
    let http = reqwest::Client::new();
    for round in 0..50 {
        let session = open_session(&http, &server.mcp(), false).await;
        for i in 0..3 {
            let sub = json!({ "jsonrpc": "2.0", "id": 10 + i, "method": "resources/subscribe",
                "params": { "uri": format!("smartcar://vehicles/veh-{round}-{i}/state") } });
            let r = post(&http, &server.mcp(), Some(&session), &sub)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap();
        }
        let r = http
            .delete(server.mcp())
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-06-18")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while shared.subscriptions() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} subscriptions of deleted sessions remain",
            shared.subscriptions()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sim.shutdown();
}

#[tokio::test]
async fn a_hundred_thousand_unknown_vehicles_make_one_counter() {
    let usage = Usage::new(std::sync::Arc::new(Store::memory()));
    let call = Counts {
        upstream_calls: 1,
        ..Counts::default()
    };
    for i in 0..100_000 {
        usage
            .record(
                Some(&format!("veh-nonexistent-{i}")),
                false,
                "get_signal",
                call,
            )
            .await;
    }
    assert_eq!(
        usage.vehicles().await,
        0,
        "one shared key for every vehicle Smartcar did not answer for"
    );
    let report = usage.snapshot().await;
    let rows = report["vehicles"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["total"]["upstream_calls"], 100_000);
    assert!(rows[0]["vehicle_id"].is_null());
    assert!(report.to_string().len() < 2_000);
    // Vehicles Smartcar answered for are counted one by one, up to the bound.
    for i in 0..(MAX_VEHICLES + 500) {
        usage
            .record(Some(&format!("veh-{i}")), true, "get_signal", call)
            .await;
    }
    assert_eq!(usage.vehicles().await, MAX_VEHICLES);
    let report = usage.snapshot().await;
    let rows = report["vehicles"].as_array().unwrap();
    assert_eq!(
        rows.len(),
        MAX_VEHICLES + 2,
        "the bound, the unanswered and the other rows"
    );
    let shared_rows: Vec<&Value> = rows.iter().filter(|r| r["vehicle_id"].is_null()).collect();
    assert_eq!(shared_rows.len(), 2);
}

#[tokio::test]
async fn calls_for_unknown_vehicles_count_under_one_key_end_to_end() {
    let sim = common::simulator().await;
    let shared = shared_on(&sim).await;
    for i in 0..30 {
        let r = common::run(
            &shared,
            "get_signal",
            json!({ "vehicle_id": format!("veh-nonexistent-{i}"), "user_id": ALICE,
                    "signal_code": "tractionbattery-stateofcharge" }),
        )
        .await;
        assert!(r.is_error);
    }
    let r = common::run(
        &shared,
        "get_signal",
        json!({ "vehicle_id": EV, "user_id": ALICE, "signal_code": "tractionbattery-stateofcharge" }),
    )
    .await;
    assert!(!r.is_error, "{:?}", r.lead);
    let usage = shared.app.usage.snapshot().await;
    let rows = usage["vehicles"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{usage}");
    assert!(rows.iter().any(|r| r["vehicle_id"] == EV));
    assert!(
        rows.iter()
            .any(|r| r["vehicle_id"].is_null() && r["total"]["upstream_calls"] == 30),
        "{usage}"
    );
    sim.shutdown();
}

#[tokio::test]
async fn thirty_thousand_makes_keep_at_most_the_lru_bound_and_long_makes_are_refused() {
    let sim = common::simulator().await;
    let shared = shared_on(&sim).await;
    for i in 0..30_000 {
        shared.app.cache.keep_compatibility(
            &format!("http://compat.example/compatible-vehicles?filter[make]=m{i}"),
            200,
            Some(json!({ "data": [] })),
        );
    }
    assert_eq!(shared.app.cache.len(Kind::Compatibility), MAX_CACHED);
    for make in [
        "x".repeat(2048),
        "Tesla\r\nX-Injected: 1".into(),
        "".into(),
        "é".into(),
    ] {
        let r = common::run(
            &shared,
            "check_compatibility",
            json!({ "region": "US", "make": make }),
        )
        .await;
        assert!(r.is_error);
        assert!(
            r.lead
                .as_deref()
                .unwrap_or("")
                .contains("`make` must be 1 to 64"),
            "{:?}",
            r.lead
        );
    }
    let r = common::run(
        &shared,
        "check_compatibility",
        json!({ "region": "US", "make": "Mercedes-Benz", "powertrainType": "BEV" }),
    )
    .await;
    assert!(!r.is_error, "{:?}", r.lead);
    assert_eq!(
        sim.hits("GET", "/compatible-vehicles"),
        1,
        "only the valid make was sent"
    );
    sim.shutdown();
}

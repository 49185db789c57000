//! MCP Apps: the view is served as `text/html;profile=mcp-app` within its size budget, `_meta.ui`
//! reaches only clients that declared the extension (in both lifecycles) while everyone else's
//! tools, resources and results stay what they were, and under `--location off` nothing a view
//! receives holds a coordinate. The browser side is tests/browser/views.mjs, run by .ci/run.

use std::process::Stdio;

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, ExtensionCapabilities,
    Implementation, ProtocolVersion, ReadResourceRequestParams, ResourceContents,
};
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, ClientLifecycleMode, RoleClient};
use serde_json::{Value, json};
use smartcar_mcp::mcp::apps;
use smartcar_mcp::settings::LocationMode;

/// A host: with `ui`, one that renders MCP Apps and says so in its capabilities.
#[derive(Clone)]
struct Host {
    ui: bool,
}

impl ClientHandler for Host {
    fn get_info(&self) -> ClientConfig {
        let mut caps = ClientCapabilities::default();
        if self.ui {
            let mut e = ExtensionCapabilities::new();
            let settings = json!({ "mimeTypes": [apps::MIME] });
            e.insert(
                apps::EXTENSION.into(),
                settings.as_object().cloned().unwrap(),
            );
            caps.extensions = Some(e);
        }
        ClientConfig::new(caps, Implementation::new("apps-test-host", "0"))
    }
}

async fn connect(ui: bool, modern: bool, extra: &[&str]) -> RunningService<RoleClient, Host> {
    let mut cmd = crate::common::tokio_command();
    cmd.env_clear()
        .env("XDG_DATA_HOME", crate::common::data_home())
        .arg("--simulator")
        .args(extra)
        .kill_on_drop(true);
    let (transport, _) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::null())
        .spawn()
        .expect("binary spawns");
    let mode = if modern {
        ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        }
    } else {
        ClientLifecycleMode::Initialize
    };
    rmcp::serve_client_with_lifecycle(Host { ui }, transport, mode)
        .await
        .expect("client connects")
}

fn args(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().cloned().unwrap()
}

const EV: &str = "veh-ev-0001";
const ALICE: &str = "usr-alice-01";

fn calls() -> Vec<CallToolRequestParams> {
    let call =
        |name: &'static str, a: Value| CallToolRequestParams::new(name).with_arguments(args(a));
    vec![
        call("list_connections", json!({})),
        call("get_signals", json!({ "vehicle_id": EV, "user_id": ALICE })),
        call(
            "get_signal",
            json!({ "vehicle_id": EV, "user_id": ALICE, "signal_code": "charge-chargetimers" }),
        ),
        call(
            "get_signal",
            json!({ "vehicle_id": EV, "user_id": ALICE, "signal_code": "location-preciselocation" }),
        ),
        call("get_vehicle", json!({ "vehicle_id": EV })),
    ]
}

#[tokio::test]
async fn ui_meta_only_when_declared_in_both_lifecycles_and_nothing_else_changes() {
    for modern in [false, true] {
        let plain = connect(false, modern, &[]).await;
        let host = connect(true, modern, &[]).await;

        let before = plain.list_all_tools().await.unwrap();
        let with = host.list_all_tools().await.unwrap();
        // Without the extension, tools/list is the catalogue's as it always was.
        let catalogue = smartcar_mcp::mcp::tools_json(
            &smartcar_mcp::tool::selection::select(&[], &[], &[], false).unwrap(),
            LocationMode::Exact,
        );
        assert_eq!(serde_json::to_value(&before).unwrap(), catalogue);
        assert!(
            !serde_json::to_string(&before).unwrap().contains("ui/"),
            "no ui key without the extension"
        );
        assert_eq!(before.len(), with.len());
        for (b, w) in before.iter().zip(&with) {
            let meta = w.meta.as_ref().map(|m| m.0.clone()).unwrap_or_default();
            if apps::has_view(&w.name) {
                assert_eq!(meta["ui"], json!({ "resourceUri": apps::URI.as_str() }));
                assert_eq!(meta["ui/resourceUri"], json!(apps::URI.as_str()));
                let ro = w.annotations.as_ref().and_then(|a| a.read_only_hint);
                assert_eq!(ro, Some(true), "{} is a read", w.name);
                // Everything else about the tool is the same.
                let mut stripped = w.clone();
                let m = stripped.meta.as_mut().unwrap();
                m.remove("ui");
                m.remove("ui/resourceUri");
                assert_eq!(
                    serde_json::to_value(&stripped).unwrap(),
                    serde_json::to_value(b).unwrap()
                );
            } else {
                assert!(!meta.contains_key("ui"), "{} has no view", w.name);
                assert_eq!(
                    serde_json::to_value(w).unwrap(),
                    serde_json::to_value(b).unwrap()
                );
            }
        }
        for t in [
            "list_connections",
            "get_signals",
            "get_signal",
            "get_vehicle",
        ] {
            assert!(with.iter().any(|w| w.name == t), "{t} is served");
        }

        // The view is listed only for the host that renders it.
        let res_plain = plain.list_all_resources().await.unwrap();
        assert!(res_plain.iter().all(|r| !r.uri.starts_with("ui://")));
        let res = host.list_all_resources().await.unwrap();
        let view = res
            .iter()
            .find(|r| r.uri == *apps::URI)
            .expect("view listed");
        assert_eq!(view.mime_type.as_deref(), Some(apps::MIME));
        let listed = serde_json::to_value(view).unwrap();
        assert_eq!(listed["_meta"], json!({ "ui": { "prefersBorder": true } }));

        // Results: the same text and structuredContent; the host gets view entries in `_meta`.
        for call in calls() {
            let a = plain.call_tool(call.clone()).await.unwrap();
            let b = host.call_tool(call.clone()).await.unwrap();
            assert_eq!(a.content, b.content, "{}", call.name);
            assert_eq!(a.structured_content, b.structured_content, "{}", call.name);
            assert!(a.is_error != Some(true), "{}: {a:?}", call.name);
            let am = a.meta.map(|m| m.0).unwrap_or_default();
            assert!(!am.contains_key(apps::META_LOCATION));
            let bm = b.meta.map(|m| m.0).unwrap_or_default();
            assert_eq!(bm[apps::META_LOCATION], "exact");
        }
        if !modern {
            let caps = &host.peer_info().unwrap().capabilities;
            assert!(
                caps.extensions
                    .as_ref()
                    .unwrap()
                    .contains_key(apps::EXTENSION)
            );
        }
        plain.cancel().await.ok();
        host.cancel().await.ok();
    }
}

#[tokio::test]
async fn the_view_is_an_mcp_app_within_budget_that_loads_nothing() {
    let host = connect(true, false, &[]).await;
    let tools = host.list_all_tools().await.unwrap();
    let uri = tools
        .iter()
        .find(|t| t.name == "get_signals")
        .unwrap()
        .meta
        .as_ref()
        .unwrap()["ui"]["resourceUri"]
        .as_str()
        .unwrap()
        .to_string();
    let read = host
        .read_resource(ReadResourceRequestParams::new(&uri))
        .await
        .unwrap();
    assert_eq!(read.contents.len(), 1);
    let ResourceContents::TextResourceContents {
        uri: got,
        mime_type,
        text,
        meta,
    } = &read.contents[0]
    else {
        panic!("the view is text");
    };
    assert_eq!(got, &uri);
    assert_eq!(mime_type.as_deref(), Some("text/html;profile=mcp-app"));
    // No csp and no domain: the spec's default CSP is all the view needs.
    assert_eq!(
        serde_json::to_value(meta).unwrap(),
        json!({ "ui": { "prefersBorder": true } })
    );
    assert_eq!(text, apps::HTML);
    assert!(text.len() <= apps::BUDGET_BYTES, "{} bytes", text.len());
    assert!(text.len() <= apps::MAX_BYTES);
    assert!(text.starts_with("<!DOCTYPE html>"));
    // The content hash in the URI is this content's.
    use sha2::Digest;
    let digest = sha2::Sha256::digest(text.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    assert!(uri.ends_with(&format!("?v={hex}")), "{uri}");
    // The raw bridge, by its wire names.
    for marker in [
        "ui/initialize",
        "ui/notifications/initialized",
        "ui/notifications/tool-result",
        "ui/notifications/size-changed",
        "ui/notifications/host-context-changed",
        "ui/open-link",
        "2026-01-26",
    ] {
        assert!(text.contains(marker), "bridge marker {marker}");
    }
    // Nothing from outside, and no HTML parsing of what the API says.
    for banned in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "<script src",
        "<link",
        "@import",
        "url(",
        "fetch(",
        "XMLHttpRequest",
        "eval(",
    ] {
        assert!(!text.contains(banned), "the view uses {banned}");
    }
    let links: Vec<&str> = text
        .match_indices("https://")
        .map(|(i, _)| &text[i..])
        .collect();
    assert_eq!(links.len(), 1, "one https:// string, the open-in-maps base");
    assert!(links[0].starts_with("https://www.openstreetmap.org/"));
    // A hash from an older build still reads, as this build's view.
    let old = host
        .read_resource(ReadResourceRequestParams::new(
            "ui://smartcar/view.html?v=0011223344556677",
        ))
        .await
        .unwrap();
    assert!(
        matches!(&old.contents[0], ResourceContents::TextResourceContents { uri, .. } if uri == &*apps::URI)
    );
    host.cancel().await.ok();
}

/// Every latitude or longitude with a value, anywhere in `v`.
fn coordinates(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, c) in o {
                let key = k.to_ascii_lowercase();
                if (key.contains("latitude") || key.contains("longitude")) && !c.is_null() {
                    out.push(format!("{path}/{k}"));
                }
                coordinates(c, &format!("{path}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                coordinates(c, &format!("{path}/{i}"), out);
            }
        }
        Value::String(s) => {
            // Text blocks hold the JSON again.
            if let Ok(inner @ Value::Object(_)) = serde_json::from_str::<Value>(s) {
                coordinates(&inner, &format!("{path}(text)"), out);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn with_location_off_the_views_receive_no_coordinates() {
    for modern in [false, true] {
        let host = connect(true, modern, &["--location", "off"]).await;
        for call in calls() {
            let r: CallToolResult = host.call_tool(call.clone()).await.unwrap();
            let whole = serde_json::to_value(&r).unwrap();
            let mut found = vec![];
            coordinates(&whole, "", &mut found);
            assert!(found.is_empty(), "{}: {found:?}", call.name);
            if call.name != "get_signal" || r.is_error != Some(true) {
                let meta = r.meta.as_ref().expect("view meta");
                assert_eq!(meta[apps::META_LOCATION], "off", "{}", call.name);
            }
        }
        host.cancel().await.ok();
    }
}

/// Pushed state reaches the fleet view through `_meta`, only for the user it was pushed for,
/// and never with a coordinate, whatever was pushed.
#[tokio::test]
async fn the_fleet_view_gets_pushed_state_for_its_owner_without_coordinates() {
    let pushed = smartcar_mcp::store::Store::memory();
    let now = chrono::Utc::now().timestamp_millis();
    let event = |id: &str, vehicle: &str, user: &str, code: &str, body: Value| {
        json!({
            "eventId": id, "eventType": "VEHICLE_STATE", "vehicleId": vehicle,
            "data": { "user": { "id": user },
                      "vehicle": { "id": vehicle, "make": "TESLA", "model": "Model 3", "year": 2023 },
                      "signals": [{ "code": code, "name": "x", "group": "x", "body": body,
                                    "meta": { "oemUpdatedAt": now - 60_000 } }] },
            "meta": { "version": "4.0", "deliveryId": "d", "deliveredAt": now }
        })
    };
    for e in [
        event(
            "e1",
            EV,
            ALICE,
            "tractionbattery-stateofcharge",
            json!({ "value": 72 }),
        ),
        event(
            "e2",
            EV,
            ALICE,
            "closure-islocked",
            json!({ "value": true }),
        ),
        event(
            "e3",
            EV,
            ALICE,
            "location-preciselocation",
            json!({ "latitude": 37.7793, "longitude": -122.4193 }),
        ),
        event(
            "e4",
            "veh-other",
            "usr-mallory",
            "closure-islocked",
            json!({ "value": false }),
        ),
    ] {
        pushed.ingest(&e).await;
    }
    let structured = json!({ "connections": [
        { "vehicle_id": EV, "user_id": ALICE, "make": "Tesla" },
        // Pushed for another user: not shown to this one.
        { "vehicle_id": "veh-other", "user_id": ALICE, "make": "Ford" },
    ] });
    for mode in [LocationMode::Exact, LocationMode::Off] {
        let mut r = CallToolResult::success(vec![]);
        r.structured_content = Some(structured.clone());
        apps::annotate(&mut r, "list_connections", None, &pushed, mode).await;
        let meta = serde_json::to_value(r.meta.as_ref().unwrap()).unwrap();
        let known = &meta[apps::META_PUSHED];
        assert_eq!(known.as_object().unwrap().len(), 1, "{known}");
        let codes: Vec<&str> = known[EV]["signals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["code"].as_str().unwrap())
            .collect();
        assert_eq!(codes, ["tractionbattery-stateofcharge", "closure-islocked"]);
        assert_eq!(known[EV]["signals"][0]["value"], 72);
        assert!(known[EV]["last_seen"].is_string());
        let mut found = vec![];
        coordinates(&meta, "", &mut found);
        assert!(found.is_empty(), "{found:?}");
        assert_eq!(meta[apps::META_LOCATION], mode.as_str());
        // The structured result itself is untouched.
        assert_eq!(r.structured_content.as_ref(), Some(&structured));
    }
}

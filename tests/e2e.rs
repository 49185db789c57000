//! End to end: the built binary over stdio, driven by rmcp's client, once per MCP lifecycle.

use std::process::Stdio;

use rmcp::RoleClient;
use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};
use smartcar_mcp::simulator::Simulator;

use crate::common;

fn command(sim: &Simulator, extra_args: &[&str]) -> tokio::process::Command {
    let mut cmd = common::tokio_command();
    cmd.args(extra_args)
        .env_remove("RUST_LOG")
        .env("SMARTCAR_CLIENT_ID", "client_e2e")
        .env("SMARTCAR_CLIENT_SECRET", common::CLIENT_SECRET)
        .env("SMARTCAR_AUTH_URL", sim.auth_url())
        .env("SMARTCAR_API_URL", sim.api_url())
        .env("SMARTCAR_MANAGEMENT_API_URL", sim.management_url());
    cmd
}

async fn connect(cmd: tokio::process::Command, modern: bool) -> RunningService<RoleClient, ()> {
    let (transport, _) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::null())
        .spawn()
        .expect("binary spawns");
    common::client_over(transport, modern).await
}

fn args(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().cloned().unwrap()
}

async fn lists_and_calls(modern: bool) {
    let sim = common::simulator().await;
    let client = connect(command(&sim, &[]), modern).await;
    if !modern {
        let info = client.peer_info().expect("server info after initialize");
        let server = info.server_info.clone().expect("server names itself");
        assert_eq!(server.name, "smartcar-mcp");
        assert_eq!(server.version, env!("CARGO_PKG_VERSION"));
    }
    let tools = client.list_all_tools().await.expect("tools/list");
    // Every tool the default selection serves.
    assert_eq!(
        tools.len(),
        smartcar_mcp::tool::selection::select(&[], &[], &[], false)
            .unwrap()
            .len()
    );
    let limit = tools.iter().find(|t| t.name == "set_charge_limit").unwrap();
    let percent = &limit.input_schema["properties"]["percent"];
    assert_eq!(percent["type"], "integer");
    assert_eq!(percent["minimum"], 50);
    assert_eq!(percent["maximum"], 100);
    let required = limit.input_schema["required"].as_array().unwrap();
    for r in ["vehicle_id", "user_id", "percent"] {
        assert!(required.contains(&json!(r)), "{r} required");
    }
    let list = tools.iter().find(|t| t.name == "list_connections").unwrap();
    assert_eq!(
        list.input_schema["properties"]["vehicleMode"]["enum"],
        json!(["live", "simulated"])
    );
    let unlock = tools.iter().find(|t| t.name == "unlock_vehicle").unwrap();
    let a = unlock.annotations.as_ref().unwrap();
    assert_eq!(
        (
            a.read_only_hint,
            a.destructive_hint,
            a.idempotent_hint,
            a.open_world_hint
        ),
        (Some(false), Some(true), Some(true), Some(true))
    );

    let result = client
        .call_tool(
            CallToolRequestParams::new("get_vehicle")
                .with_arguments(args(json!({ "vehicle_id": "v-e2e" }))),
        )
        .await
        .expect("tools/call");
    let sent = sim.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].path, "/vehicles/v-e2e");
    assert!(result.structured_content.is_some(), "{result:?}");

    let err = client
        .call_tool(CallToolRequestParams::new("no_such_tool").with_arguments(args(json!({}))))
        .await;
    assert!(err.is_err(), "an unknown tool is a protocol error");
    client.cancel().await.ok();
    sim.shutdown();
}

#[tokio::test]
async fn handshake_client_lists_and_calls() {
    lists_and_calls(false).await;
}

#[tokio::test]
async fn stateless_2026_07_28_client_lists_and_calls() {
    lists_and_calls(true).await;
}

//! Where a caller's Smartcar users come from (the user claim, another claim name, the operator's
//! tenants table) and how a caller of several users is held to them.

use serde_json::json;
use smartcar_mcp::simulator::{ALICE, BOB, EV, ICE};

use crate::oauth::{DRIVER_SCOPES, RESOURCE, rig_with};

#[tokio::test]
async fn the_tenants_table_gives_a_caller_its_users_when_the_token_names_none() {
    let dir = std::env::temp_dir().join(format!("tenancy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let table = dir.join("tenants.json");
    // The issuer's URL is known only once it runs, so the table is written in the edit below.
    let rig = rig_with(|s| {
        s.serving.oauth.as_mut().unwrap().tenants = Some(table.clone());
        let issuer = s.serving.oauth.as_ref().unwrap().issuer.clone();
        std::fs::write(
            &table,
            json!([{ "issuer": issuer, "subject": "driver-a", "user_ids": [ALICE] }]).to_string(),
        )
        .unwrap();
    })
    .await;
    let a = rig.token("driver-a", &[], DRIVER_SCOPES);
    let r = rig.call(&a, "list_connections", json!({})).await;
    let text = r.body["result"]["structuredContent"].to_string();
    assert!(text.contains(EV) && !text.contains(ICE), "{r:?}");
    // A subject the table does not name gets nothing.
    let c = rig.token("driver-c", &[], DRIVER_SCOPES);
    let r = rig.call(&c, "list_connections", json!({})).await;
    assert_eq!(r.tool_error(), Some("FORBIDDEN"));
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn a_caller_of_several_users_names_one_of_its_own() {
    let rig = rig_with(|_| {}).await;
    let fleet = rig.token("fleet-manager", &[ALICE, BOB], DRIVER_SCOPES);
    let r = rig.call(&fleet, "list_connections", json!({})).await;
    assert_eq!(r.tool_error(), Some("FORBIDDEN"));
    let detail = r.body["result"]["structuredContent"]["error"]["detail"]
        .as_str()
        .unwrap();
    assert!(detail.contains(ALICE) && detail.contains(BOB), "{detail}");
    assert_eq!(rig.upstream(), 0);
    let r = rig
        .call(&fleet, "list_connections", json!({ "userId": BOB }))
        .await;
    let text = r.body["result"]["structuredContent"].to_string();
    assert!(text.contains(ICE) && !text.contains(EV), "{text}");
    // Both users' cars are in reach; a user_id naming the wrong one of the two is refused.
    let r = rig
        .call(
            &fleet,
            "lock_vehicle",
            json!({ "vehicle_id": ICE, "user_id": ALICE }),
        )
        .await;
    assert_eq!(r.tool_error(), Some("FORBIDDEN"), "{r:?}");
    let r = rig
        .call(
            &fleet,
            "lock_vehicle",
            json!({ "vehicle_id": ICE, "user_id": BOB }),
        )
        .await;
    assert!(r.tool_error().is_none(), "{r:?}");
    assert_eq!(rig.sim.hits("POST", "/commands/security/lock"), 1);
}

#[tokio::test]
async fn another_claim_name_and_an_scp_array_are_read() {
    let rig = rig_with(|s| {
        s.serving.oauth.as_mut().unwrap().user_claim = "https://app.example/smartcar_users".into()
    })
    .await;
    let mut c = rig.issuer.claims(RESOURCE, "driver-b", "");
    c.as_object_mut().unwrap().remove("scope");
    c["scp"] = json!(["vehicle:read"]);
    c["https://app.example/smartcar_users"] = json!(BOB);
    let token = rig.issuer.sign("k1", &c);
    let r = rig
        .call(&token, "get_vehicle", json!({ "vehicle_id": ICE }))
        .await;
    assert!(r.tool_error().is_none(), "{r:?}");
    let r = rig
        .call(&token, "get_vehicle", json!({ "vehicle_id": EV }))
        .await;
    assert_eq!(r.tool_error(), Some("FORBIDDEN"));
    // The default claim is not read when another is configured.
    let mut c = rig.issuer.claims(RESOURCE, "driver-a", "vehicle:read");
    c["smartcar_user_id"] = json!(ALICE);
    let r = rig
        .call(
            &rig.issuer.sign("k1", &c),
            "get_vehicle",
            json!({ "vehicle_id": EV }),
        )
        .await;
    assert_eq!(r.tool_error(), Some("FORBIDDEN"));
}

/// One stateless `tools/call` to a served binary; the structured content.
async fn call_url(
    url: &str,
    token: &str,
    tool: &str,
    args: serde_json::Value,
) -> serde_json::Value {
    let msg = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": tool, "arguments": args, "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": { "name": "tenancy", "version": "1" } } } });
    let r = reqwest::Client::new()
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .header("authorization", format!("Bearer {token}"))
        .body(msg.to_string())
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    crate::common::messages(&text)[0]["result"]["structuredContent"].clone()
}

#[cfg(unix)]
#[tokio::test]
async fn sighup_reads_the_tenants_table_again_and_the_token_never_reaches_the_log() {
    use tokio::io::AsyncBufReadExt;
    let issuer = crate::common::issuer::Issuer::start().await;
    let dir = std::env::temp_dir().join(format!("tenancy-hup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let table = dir.join("tenants.json");
    std::fs::write(&table, "[]").unwrap();
    let mut child = crate::common::tokio_command()
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--simulator",
            "--audit-db",
            "off",
        ])
        .args([
            "--oauth-issuer",
            &issuer.url(),
            "--oauth-resource",
            RESOURCE,
            "--tenants",
        ])
        .arg(&table)
        .env_remove("SMARTCAR_MCP_HTTP_TOKEN")
        .env("RUST_LOG", "trace")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let url = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.split("listening on ").nth(1) {
                return rest.trim().to_string();
            }
        }
        panic!("the binary exited before listening");
    })
    .await
    .expect("a `listening on` line");
    // Kept whole, so the end can check that the access token never reached the log.
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = log.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            sink.lock().unwrap().push_str(&line);
        }
    });
    let mut claims = issuer.claims(RESOURCE, "driver-a", DRIVER_SCOPES);
    claims.as_object_mut().unwrap().remove("smartcar_user_id");
    let token = issuer.sign("k1", &claims);
    let before = call_url(&url, &token, "list_connections", json!({})).await;
    assert_eq!(before["error"]["type"], "FORBIDDEN", "{before}");
    std::fs::write(
        &table,
        json!([{ "issuer": issuer.url(), "subject": "driver-a", "user_ids": [ALICE] }]).to_string(),
    )
    .unwrap();
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let after = call_url(&url, &token, "list_connections", json!({})).await;
        if after.to_string().contains(EV) {
            assert!(!after.to_string().contains(ICE), "{after}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not reloaded: {after}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    child.kill().await.ok();
    let log = log.lock().unwrap().clone();
    assert!(log.contains("tenants table reloaded"), "{log}");
    let signature = token.rsplit('.').next().unwrap();
    assert!(
        !log.contains(signature),
        "the access token reached the trace log"
    );
    std::fs::remove_dir_all(&dir).ok();
}

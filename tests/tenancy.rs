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

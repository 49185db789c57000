//! Dry run: the exact request is shown, nothing is sent, nothing is asked, no secret appears.

use super::*;

// ---------------------------------------------------------------------------------------------
// Dry run

#[tokio::test]
async fn dry_run_sends_nothing_asks_nothing_and_shows_no_secret() {
    let sim = common::simulator().await;
    let calls = || {
        [
            unlock(VEHICLE),
            CallToolRequestParams::new("get_signal").with_arguments(args(
                json!({ "vehicle_id": VEHICLE, "user_id": USER, "signal_code": "tractionbattery-stateofcharge" }),
            )),
            CallToolRequestParams::new("set_charge_limit")
                .with_arguments(args(json!({ "vehicle_id": VEHICLE, "user_id": USER, "percent": 80 }))),
        ]
    };
    for lc in BOTH {
        // A client without elicitation: the unlock would fail closed if dry-run asked.
        let client = stdio((), command(Some(&sim), &["--dry-run"], &[]), lc).await;
        for call in calls() {
            let name = call.name.clone();
            let r = client.call_tool(call).await.expect("tools/call");
            assert!(r.is_error != Some(true), "{lc:?} {name}: {r:?}");
            let s = r.structured_content.clone().expect("structured");
            assert_eq!(s["dry_run"], true, "{s}");
            let req = &s["request"];
            assert!(
                req["url"].as_str().unwrap().starts_with(&sim.api_url()),
                "{req}"
            );
            assert!(req["url"].as_str().unwrap().contains(VEHICLE), "{req}");
            let headers = req["headers"].as_object().expect("headers");
            assert!(
                headers
                    .keys()
                    .all(|k| !k.eq_ignore_ascii_case("authorization")),
                "{name}: {headers:?}"
            );
            let all = serde_json::to_string(&r).unwrap();
            assert!(
                !all.contains(common::CLIENT_SECRET),
                "{name} leaks the client secret"
            );
        }
        client.cancel().await.ok();
    }
    // Without credentials at all, and through the environment variable.
    let client = stdio(
        (),
        command(None, &[], &[("SMARTCAR_DRY_RUN", "true")]),
        Lifecycle::Handshake,
    )
    .await;
    let r = client.call_tool(unlock(VEHICLE)).await.expect("tools/call");
    assert!(r.is_error != Some(true), "{r:?}");
    assert_eq!(
        r.structured_content.as_ref().unwrap()["request"]["method"],
        "POST"
    );
    client.cancel().await.ok();

    assert!(sim.requests().is_empty(), "{:?}", sim.requests());
    assert!(sim.token_requests().is_empty(), "dry-run fetched a token");
    sim.shutdown();
}

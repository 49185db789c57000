//! Prompts over stdio with rmcp's client: each renders with its arguments, follows the location
//! setting, names a missing argument, and completion offers the vehicle and user ids the server
//! has seen in list_connections and the catalogue's signal codes.

use std::process::Stdio;

use rmcp::RoleClient;
use rmcp::model::{
    ArgumentInfo, CallToolRequestParams, CompleteRequestParams, GetPromptRequestParams, Reference,
};
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};
use smartcar_mcp::simulator::{ALICE, EV, ICE, PHEV, Simulator};

use crate::common;

async fn connect(sim: &Simulator, location: &str) -> RunningService<RoleClient, ()> {
    connect_with(sim, location, "").await
}

/// `toolsets` empty: the default set.
async fn connect_with(
    sim: &Simulator,
    location: &str,
    toolsets: &str,
) -> RunningService<RoleClient, ()> {
    let mut cmd = common::tokio_command();
    if !toolsets.is_empty() {
        cmd.env("SMARTCAR_TOOLSETS", toolsets);
    }
    cmd.env_remove("RUST_LOG")
        .env("SMARTCAR_CLIENT_ID", "client_prompts")
        .env("SMARTCAR_CLIENT_SECRET", common::CLIENT_SECRET)
        .env("SMARTCAR_AUTH_URL", sim.auth_url())
        .env("SMARTCAR_API_URL", sim.api_url())
        .env("SMARTCAR_MANAGEMENT_API_URL", sim.management_url())
        .env("SMARTCAR_LOCATION", location);
    let (transport, _) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::null())
        .spawn()
        .expect("binary spawns");
    common::client_over(transport, false).await
}

fn args(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().cloned().unwrap()
}

fn text(r: &rmcp::model::GetPromptResult) -> String {
    serde_json::to_value(&r.messages).unwrap().to_string()
}

async fn complete(
    client: &RunningService<RoleClient, ()>,
    prompt: &str,
    arg: &str,
    typed: &str,
) -> Vec<String> {
    client
        .complete(CompleteRequestParams::new(
            Reference::for_prompt(prompt),
            ArgumentInfo::new(arg, typed),
        ))
        .await
        .expect("completion/complete")
        .completion
        .values
}

#[tokio::test]
async fn each_prompt_renders_with_its_arguments() {
    let sim = common::simulator().await;
    let client = connect(&sim, "coarse").await;
    let prompts = client.list_all_prompts().await.expect("prompts/list");
    let names: Vec<_> = prompts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["fleet_overview", "vehicle_health", "charge_plan"]);

    let fleet = client
        .get_prompt(GetPromptRequestParams::new("fleet_overview"))
        .await
        .expect("fleet_overview");
    let t = text(&fleet);
    for part in [
        "list_connections",
        "get_signals",
        "tractionbattery-stateofcharge",
        "closure-islocked",
        "0.01 degree",
    ] {
        assert!(t.contains(part), "{part}: {t}");
    }

    let health = client
        .get_prompt(GetPromptRequestParams::new("vehicle_health").with_arguments(args(
            json!({ "vehicle_id": EV, "user_id": ALICE, "signal_code": "diagnostics-tirepressure" }),
        )))
        .await
        .expect("vehicle_health");
    let t = text(&health);
    for part in [
        EV,
        ALICE,
        "diagnostics",
        "what to do",
        "diagnostics-tirepressure",
    ] {
        assert!(t.contains(part), "{part}: {t}");
    }

    let plan = client
        .get_prompt(GetPromptRequestParams::new("charge_plan").with_arguments(args(
            json!({ "vehicle_id": EV, "user_id": ALICE, "target_percent": "90", "by": "07:30 tomorrow" }),
        )))
        .await
        .expect("charge_plan");
    let t = text(&plan);
    for part in [
        EV,
        "90%",
        "07:30 tomorrow",
        "charge-chargelimits",
        "set_charge_limit",
        "charge-chargetimers",
    ] {
        assert!(t.contains(part), "{part}: {t}");
    }
    // The schedule tools are opt-in: the plan names them only when the server serves them.
    assert!(
        t.contains("toolset `schedules`") && !t.contains("propose set_daily_charge_schedule"),
        "{t}"
    );
    let with_schedules = connect_with(&sim, "coarse", "all").await;
    let plan = with_schedules
        .get_prompt(GetPromptRequestParams::new("charge_plan").with_arguments(args(
            json!({ "vehicle_id": EV, "user_id": ALICE, "target_percent": "90", "by": "07:30" }),
        )))
        .await
        .expect("charge_plan with schedules");
    assert!(
        text(&plan).contains("propose set_daily_charge_schedule"),
        "{}",
        text(&plan)
    );
    with_schedules.cancel().await.ok();

    // A missing or wrong argument is named.
    let err = client
        .get_prompt(
            GetPromptRequestParams::new("charge_plan")
                .with_arguments(args(json!({ "vehicle_id": EV }))),
        )
        .await
        .expect_err("target_percent is required");
    assert!(err.to_string().contains("target_percent"), "{err}");
    let err = client
        .get_prompt(
            GetPromptRequestParams::new("vehicle_health")
                .with_arguments(args(json!({ "vehicle_id": EV, "signal_code": "batery" }))),
        )
        .await
        .expect_err("an unknown code");
    assert!(err.to_string().contains("signal_code"), "{err}");
    assert!(sim.requests().is_empty(), "prompts send nothing upstream");
    client.cancel().await.ok();

    // With location off the overview says so and asks for none.
    let client = connect(&sim, "off").await;
    let fleet = client
        .get_prompt(GetPromptRequestParams::new("fleet_overview"))
        .await
        .expect("fleet_overview");
    assert!(
        text(&fleet).contains("location turned off"),
        "{}",
        text(&fleet)
    );
    client.cancel().await.ok();
    sim.shutdown();
}

#[tokio::test]
async fn completion_offers_the_ids_seen_and_the_catalogues_codes() {
    let sim = common::simulator().await;
    let client = connect(&sim, "exact").await;
    // Nothing seen yet: no ids to offer.
    assert!(
        complete(&client, "vehicle_health", "vehicle_id", "")
            .await
            .is_empty()
    );
    client
        .call_tool(CallToolRequestParams::new("list_connections").with_arguments(args(json!({}))))
        .await
        .expect("list_connections");
    let all = complete(&client, "charge_plan", "vehicle_id", "").await;
    for v in [EV, PHEV, ICE] {
        assert!(all.contains(&v.to_string()), "{v}: {all:?}");
    }
    assert_eq!(
        complete(&client, "vehicle_health", "vehicle_id", "veh-ev").await,
        [EV]
    );
    let users = complete(&client, "charge_plan", "user_id", "usr-a").await;
    assert_eq!(users, [ALICE]);
    let codes = complete(&client, "vehicle_health", "signal_code", "diagnostics-tire").await;
    assert!(!codes.is_empty());
    assert!(
        codes.iter().all(|c| c.starts_with("diagnostics-tire")),
        "{codes:?}"
    );
    assert!(codes.contains(&"diagnostics-tirepressure".to_string()));
    client.cancel().await.ok();
    sim.shutdown();
}

//! The token cache: one fetch for many calls, early refresh, single flight, re-fetch after a 401.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use smartcar_mcp::mcp::Shared;
use smartcar_mcp::tool::AppState;
use smartcar_mcp::upstream::Executor;
use smartcar_mcp::upstream::auth::ManualClock;

use crate::common;

fn signal_args() -> serde_json::Value {
    json!({ "vehicle_id": "v-1", "user_id": "u-1", "signal_code": "closure-islocked" })
}

async fn with_clock(sim: &smartcar_mcp::simulator::Simulator) -> (Arc<Shared>, Arc<ManualClock>) {
    let clock = ManualClock::new();
    let settings = common::settings(sim);
    let exec = Executor::with_clock(Arc::new(settings.upstream), clock.clone()).unwrap();
    let app = AppState::with_executor(exec, settings.serving, &common::all_tools()).unwrap();
    (Shared::with_state(app).unwrap(), clock)
}

#[tokio::test]
async fn one_token_serves_many_calls_and_is_sent_as_form() {
    let sim = common::simulator().await;
    let (shared, _clock) = with_clock(&sim).await;
    for _ in 0..5 {
        common::execute_only(&shared, "get_signal", signal_args()).await;
    }
    let tokens = sim.token_requests();
    assert_eq!(tokens.len(), 1);
    assert_eq!(sim.requests().len(), 5);
    let t = &tokens[0];
    assert_eq!(
        t.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert!(
        t.body.contains("grant_type=client_credentials"),
        "{}",
        t.body
    );
    assert!(t.body.contains("client_id=client_test"), "{}", t.body);
    assert!(t.body.contains("client_secret="), "{}", t.body);
    sim.shutdown();
}

#[tokio::test]
async fn token_is_refreshed_sixty_seconds_before_expiry() {
    let sim = common::simulator().await;
    let (shared, clock) = with_clock(&sim).await;
    common::execute_only(&shared, "get_signal", signal_args()).await;
    clock.advance(Duration::from_secs(3600 - 61));
    common::execute_only(&shared, "get_signal", signal_args()).await;
    assert_eq!(
        sim.token_requests().len(),
        1,
        "59+ s before expiry the cached token is used"
    );
    clock.advance(Duration::from_secs(2));
    common::execute_only(&shared, "get_signal", signal_args()).await;
    assert_eq!(
        sim.token_requests().len(),
        2,
        "inside the last minute a new token is fetched"
    );
    sim.shutdown();
}

#[tokio::test]
async fn a_short_lived_token_is_refreshed_at_half_its_life() {
    let sim = common::simulator().await;
    sim.set_token_ttl(40);
    let (shared, clock) = with_clock(&sim).await;
    common::execute_only(&shared, "get_signal", signal_args()).await;
    clock.advance(Duration::from_secs(19));
    common::execute_only(&shared, "get_signal", signal_args()).await;
    assert_eq!(sim.token_requests().len(), 1);
    clock.advance(Duration::from_secs(2));
    common::execute_only(&shared, "get_signal", signal_args()).await;
    assert_eq!(sim.token_requests().len(), 2);
    sim.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_first_calls_share_one_token_request() {
    let sim = common::simulator().await;
    let (shared, _clock) = with_clock(&sim).await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let shared = shared.clone();
        tasks.push(tokio::spawn(async move {
            common::execute_only(&shared, "get_signal", signal_args()).await
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(sim.token_requests().len(), 1);
    assert_eq!(sim.requests().len(), 20);
    sim.shutdown();
}

#[tokio::test]
async fn a_401_mid_session_fetches_a_new_token_and_retries_once() {
    let sim = common::simulator().await;
    let (shared, _clock) = with_clock(&sim).await;
    common::execute_only(&shared, "get_signal", signal_args()).await;
    sim.revoke_tokens();
    sim.clear_requests();
    let r = common::execute_only(
        &shared,
        "lock_vehicle",
        json!({ "vehicle_id": "v-1", "user_id": "u-1" }),
    )
    .await;
    assert_eq!(sim.token_requests().len(), 2, "{r:?}");
    assert_eq!(
        sim.requests().len(),
        2,
        "the refused command is sent once more with the new token"
    );
    let meta = r.meta.expect("the retry is reported in _meta").to_map();
    assert!(
        meta["smartcar-mcp/retries"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("401")
    );
    sim.shutdown();
}

#[tokio::test]
async fn a_second_401_is_a_tool_error_not_a_loop() {
    let sim = common::simulator().await;
    let (shared, _clock) = with_clock(&sim).await;
    sim.inject(
        smartcar_mcp::simulator::Fault::smartcar(
            401,
            "AUTHENTICATION",
            "UNAUTHORIZED",
            "token rejected",
        )
        .times(5),
    );
    let r = common::execute_only(&shared, "get_signal", signal_args()).await;
    assert!(r.is_error);
    assert_eq!(sim.requests().len(), 2);
    assert_eq!(sim.token_requests().len(), 2);
    assert_eq!(r.structured["error"]["type"], "AUTHENTICATION");
    sim.shutdown();
}

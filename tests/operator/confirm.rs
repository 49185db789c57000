//! Human confirmation over stdio in both lifecycles: accepted, declined, impossible, off, and bound to its arguments.

use super::*;

// ---------------------------------------------------------------------------------------------
// Human confirmation over stdio

#[tokio::test]
async fn an_accepted_confirmation_sends_the_unlock_once() {
    for lc in BOTH {
        let sim = common::simulator().await;
        let human = Human::accepting();
        let client = stdio(human.clone(), command(Some(&sim), &[], &[]), lc).await;
        let r = client.call_tool(unlock(VEHICLE)).await.expect("tools/call");
        assert!(r.is_error != Some(true), "{lc:?}: {r:?}");
        assert_eq!(unlocks(&sim), 1, "{lc:?}");
        let asked = human.questions();
        assert_eq!(asked.len(), 1, "{lc:?}: one question, {asked:?}");
        assert!(
            asked[0].contains(VEHICLE) && asked[0].contains(USER),
            "{asked:?}"
        );
        client.cancel().await.ok();
        sim.shutdown();
    }
}

#[tokio::test]
async fn a_declined_confirmation_sends_nothing() {
    for lc in BOTH {
        let sim = common::simulator().await;
        let human = Human::declining();
        let client = stdio(human.clone(), command(Some(&sim), &[], &[]), lc).await;
        let r = client.call_tool(unlock(VEHICLE)).await.expect("tools/call");
        assert_eq!(r.is_error, Some(true), "{lc:?}: {r:?}");
        assert_eq!(error_type(&r).as_deref(), Some("NOT_CONFIRMED"), "{lc:?}");
        assert_eq!(human.questions().len(), 1, "{lc:?}");
        assert!(sim.requests().is_empty(), "{lc:?}: {:?}", sim.requests());
        client.cancel().await.ok();
        sim.shutdown();
    }
}

#[tokio::test]
async fn a_client_that_cannot_elicit_fails_closed_and_is_told_how_to_change_the_policy() {
    for lc in BOTH {
        let sim = common::simulator().await;
        let client = stdio((), command(Some(&sim), &[], &[]), lc).await;
        let calls = [
            unlock(VEHICLE),
            CallToolRequestParams::new("delete_connection")
                .with_arguments(args(json!({ "id": "conn-1" }))),
            CallToolRequestParams::new("delete_user").with_arguments(args(json!({ "id": USER }))),
        ];
        for call in calls {
            let name = call.name.clone();
            let r = client.call_tool(call).await.expect("tools/call");
            assert_eq!(r.is_error, Some(true), "{lc:?} {name}: {r:?}");
            assert_eq!(
                error_type(&r).as_deref(),
                Some("CONFIRMATION_REQUIRED"),
                "{lc:?} {name}"
            );
            let t = text(&r);
            assert!(
                t.contains("SMARTCAR_CONFIRM=off") && t.contains("--confirm off"),
                "{t}"
            );
        }
        assert!(sim.requests().is_empty(), "{lc:?}: {:?}", sim.requests());
        client.cancel().await.ok();
        sim.shutdown();
    }
}

#[tokio::test]
async fn confirm_off_sends_without_asking() {
    let cases: [(Lifecycle, Argv, Env); 2] = [
        (Lifecycle::Handshake, vec!["--confirm", "off"], vec![]),
        (
            Lifecycle::Stateless2026,
            vec![],
            vec![("SMARTCAR_CONFIRM", "off")],
        ),
    ];
    for (lc, argv, env) in cases {
        let sim = common::simulator().await;
        let human = Human::declining();
        let client = stdio(human.clone(), command(Some(&sim), &argv, &env), lc).await;
        let r = client.call_tool(unlock(VEHICLE)).await.expect("tools/call");
        assert!(r.is_error != Some(true), "{lc:?}: {r:?}");
        assert_eq!(unlocks(&sim), 1, "{lc:?}");
        assert!(human.questions().is_empty(), "{lc:?}: nobody is asked");
        client.cancel().await.ok();
        sim.shutdown();
    }
}

#[tokio::test]
async fn a_2026_confirmation_answers_only_the_arguments_it_was_asked_about() {
    let sim = common::simulator().await;
    let client = stdio(
        Human::accepting(),
        command(Some(&sim), &[], &[]),
        Lifecycle::Stateless2026,
    )
    .await;
    let CallToolResponse::InputRequired(ask) =
        client.call_tool_once(unlock(VEHICLE)).await.unwrap()
    else {
        panic!("an unlock asks first");
    };
    let state = ask.request_state.clone().expect("sealed state");
    let yes: rmcp::model::InputResponses = BTreeMap::from([(
        "confirm".to_string(),
        json!({ "action": "accept", "content": { "confirm": true } }),
    )]);
    let replayed = client
        .call_tool_once(
            unlock(OTHER_VEHICLE)
                .with_input_responses(yes.clone())
                .with_request_state(state.clone()),
        )
        .await
        .unwrap();
    let CallToolResponse::Complete(r) = replayed else {
        panic!("a mismatched answer is not asked again: {replayed:?}");
    };
    assert_eq!(error_type(&r).as_deref(), Some("NOT_CONFIRMED"), "{r:?}");
    let forged = client
        .call_tool_once(
            unlock(VEHICLE)
                .with_input_responses(yes.clone())
                .with_request_state("rs1.forged"),
        )
        .await
        .unwrap();
    assert!(
        matches!(forged, CallToolResponse::Complete(ref r) if r.is_error == Some(true)),
        "{forged:?}"
    );
    assert_eq!(unlocks(&sim), 0);
    let answered = client
        .call_tool_once(
            unlock(VEHICLE)
                .with_input_responses(yes)
                .with_request_state(state),
        )
        .await
        .unwrap();
    assert!(
        matches!(answered, CallToolResponse::Complete(ref r) if r.is_error != Some(true)),
        "{answered:?}"
    );
    assert_eq!(unlocks(&sim), 1);
    // The same answer again: accepted once only (issue 25), so no second unlock.
    let again = client
        .call_tool_once(
            unlock(VEHICLE)
                .with_input_responses(BTreeMap::from([(
                    "confirm".to_string(),
                    json!({ "action": "accept", "content": { "confirm": true } }),
                )]))
                .with_request_state(ask.request_state.clone().unwrap()),
        )
        .await
        .unwrap();
    let CallToolResponse::Complete(r) = again else {
        panic!("a used answer is refused, not asked again: {again:?}");
    };
    assert_eq!(error_type(&r).as_deref(), Some("NOT_CONFIRMED"), "{r:?}");
    assert_eq!(unlocks(&sim), 1, "a replayed answer sends nothing");
    assert_eq!(sim.hits("POST", OTHER_VEHICLE), 0);
    client.cancel().await.ok();
    sim.shutdown();
}

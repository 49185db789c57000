//! Tool filters from flags and environment: what is listed, and what a filtered-out tool answers.

use super::*;

// ---------------------------------------------------------------------------------------------
// Tool filters

#[tokio::test]
async fn filters_from_flags_and_environment_shape_the_tool_list() {
    let management = catalogue_names(|t| t.toolset.as_str() == "management");
    // Without --toolsets the server serves the toolsets that are on by default (not webhooks).
    let read_only = catalogue_names(|t| t.annotations.read_only && t.toolset.on_by_default());
    let all = catalogue_names(|t| t.toolset.on_by_default());
    let without = |gone: &[&str]| -> Vec<String> {
        all.iter()
            .filter(|n| !gone.contains(&n.as_str()))
            .cloned()
            .collect()
    };
    let cases: Vec<(&str, Argv, Env, Vec<String>)> = vec![
        (
            "--toolsets",
            vec!["--toolsets", "management"],
            vec![],
            management.clone(),
        ),
        (
            "SMARTCAR_TOOLSETS",
            vec![],
            vec![("SMARTCAR_TOOLSETS", "management")],
            management.clone(),
        ),
        (
            "--tools",
            vec!["--tools", "lock_vehicle,get_signal"],
            vec![],
            catalogue_names(|t| t.name == "get_signal" || t.name == "lock_vehicle"),
        ),
        (
            "SMARTCAR_TOOLS",
            vec![],
            vec![("SMARTCAR_TOOLS", "lock_vehicle,get_signal")],
            catalogue_names(|t| t.name == "get_signal" || t.name == "lock_vehicle"),
        ),
        (
            "--tools adds to --toolsets",
            vec!["--toolsets", "management", "--tools", "get_signal"],
            vec![],
            catalogue_names(|t| t.toolset.as_str() == "management" || t.name == "get_signal"),
        ),
        (
            "--exclude-tools",
            vec!["--exclude-tools", "unlock_vehicle,delete_user"],
            vec![],
            without(&["unlock_vehicle", "delete_user"]),
        ),
        (
            "SMARTCAR_EXCLUDE_TOOLS",
            vec![],
            vec![("SMARTCAR_EXCLUDE_TOOLS", "unlock_vehicle,delete_user")],
            without(&["unlock_vehicle", "delete_user"]),
        ),
        (
            "--read-only",
            vec!["--read-only"],
            vec![],
            read_only.clone(),
        ),
        (
            "SMARTCAR_READ_ONLY",
            vec![],
            vec![("SMARTCAR_READ_ONLY", "true")],
            read_only.clone(),
        ),
        (
            "serve --read-only",
            vec!["serve", "--read-only"],
            vec![],
            read_only.clone(),
        ),
        (
            "read-only beats --tools",
            vec!["--read-only", "--tools", "unlock_vehicle,get_signal"],
            vec![],
            vec!["get_signal".to_string()],
        ),
        (
            "SMARTCAR_READ_ONLY beats --tools",
            vec!["--tools", "unlock_vehicle"],
            vec![("SMARTCAR_READ_ONLY", "true")],
            vec![],
        ),
        (
            "exclude beats --tools",
            vec![
                "--tools",
                "unlock_vehicle,get_signal",
                "--exclude-tools",
                "unlock_vehicle",
            ],
            vec![],
            vec!["get_signal".to_string()],
        ),
    ];
    // Sanity of the expectations themselves, so a catalogue change cannot make them vacuous.
    assert!(management.contains(&"list_applications".to_string()));
    assert!(!management.contains(&"get_signal".to_string()));
    assert!(read_only.contains(&"get_signal".to_string()));
    for gone in [
        "unlock_vehicle",
        "lock_vehicle",
        "delete_user",
        "delete_connection",
    ] {
        assert!(
            !read_only.contains(&gone.to_string()),
            "{gone} is not read-only"
        );
    }

    let mut runs = tokio::task::JoinSet::new();
    for (label, argv, env, expected) in cases {
        let cmd = command(None, &argv, &env);
        runs.spawn(async move {
            let client = stdio((), cmd, Lifecycle::Handshake).await;
            let listed = names(&client.list_all_tools().await.expect("tools/list"));
            client.cancel().await.ok();
            (label, listed, expected)
        });
    }
    while let Some(run) = runs.join_next().await {
        let (label, listed, expected) = run.unwrap();
        assert_eq!(listed, expected, "{label}");
    }
}

#[tokio::test]
async fn unknown_toolset_or_tool_names_stop_startup_naming_the_valid_ones() {
    let sets = "connections, signals, commands, schedules, management, webhooks, all";
    let cases: Vec<(Argv, Env, &str, &str)> = vec![
        (vec!["--toolsets", "signals,cars"], vec![], "`cars`", sets),
        (vec![], vec![("SMARTCAR_TOOLSETS", "cars")], "`cars`", sets),
        (
            vec!["--tools", "open_trunk"],
            vec![],
            "`open_trunk`",
            "get_signal",
        ),
        (
            vec![],
            vec![("SMARTCAR_TOOLS", "open_trunk")],
            "`open_trunk`",
            "unlock_vehicle",
        ),
        (
            vec!["--exclude-tools", "open_trunk"],
            vec![],
            "`open_trunk`",
            "get_signal",
        ),
        (
            vec![],
            vec![("SMARTCAR_EXCLUDE_TOOLS", "open_trunk")],
            "`open_trunk`",
            "get_signal",
        ),
        (
            vec!["serve", "--http", "127.0.0.1:0", "--tools", "open_trunk"],
            vec![],
            "`open_trunk`",
            "get_signal",
        ),
    ];
    let mut runs = tokio::task::JoinSet::new();
    for (argv, env, named, valid) in cases {
        let mut cmd = command(None, &argv, &env);
        cmd.stdin(Stdio::null());
        let label = format!("{argv:?} {env:?}");
        runs.spawn(async move {
            let out = tokio::time::timeout(Duration::from_secs(10), cmd.output())
                .await
                .unwrap_or_else(|_| panic!("{label}: still running, so startup did not fail"))
                .expect("binary runs");
            (label, out, named, valid)
        });
    }
    while let Some(run) = runs.join_next().await {
        let (label, out, named, valid) = run.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{label}: exit {:?}", out.status);
        assert!(stderr.contains(named), "{label}: {stderr}");
        assert!(
            stderr.contains(valid),
            "{label}: valid names missing: {stderr}"
        );
        assert!(
            out.stdout.is_empty(),
            "{label}: stdout belongs to the protocol"
        );
    }
}

#[tokio::test]
async fn a_filtered_out_tool_is_refused_exactly_like_an_unknown_one() {
    let sim = common::simulator().await;
    for lc in BOTH {
        let client = stdio((), command(Some(&sim), &["--read-only"], &[]), lc).await;
        assert!(
            !names(&client.list_all_tools().await.unwrap()).contains(&"unlock_vehicle".to_string())
        );
        let protocol_error = |r: Result<CallToolResult, ServiceError>| match r {
            Err(ServiceError::McpError(e)) => e,
            other => panic!("{lc:?}: expected a protocol error, got {other:?}"),
        };
        let filtered = protocol_error(client.call_tool(unlock(VEHICLE)).await);
        let unknown = protocol_error(
            client
                .call_tool(
                    CallToolRequestParams::new("no_such_tool")
                        .with_arguments(args(json!({ "vehicle_id": VEHICLE, "user_id": USER }))),
                )
                .await,
        );
        assert_eq!(filtered.code, unknown.code, "{lc:?}");
        assert_eq!(
            filtered.message,
            unknown.message.replace("no_such_tool", "unlock_vehicle"),
            "{lc:?}"
        );
        client.cancel().await.ok();
    }
    assert!(sim.requests().is_empty(), "{:?}", sim.requests());
    sim.shutdown();
}

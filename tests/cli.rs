//! The command line's catalogue views: `tools`, `tools --json` and `signals [GROUP]` print what the
//! server publishes, with no credentials and no network.

use std::collections::BTreeSet;
use std::process::Output;

use smartcar_mcp::catalogue::{SIGNALS, TOOLS};

use crate::common;

/// Runs the built binary with no `SMARTCAR_*` variable at all: these commands must work on a machine
/// with no credentials, and an inherited toolset filter would change what they print.
fn run(args: &[&str]) -> Output {
    let mut cmd = common::command();
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SMARTCAR_") {
            cmd.env_remove(key);
        }
    }
    cmd.env_remove("SMARTCAR_CLIENT_ID")
        .env_remove("SMARTCAR_CLIENT_SECRET")
        .args(args)
        .output()
        .expect("the smartcar-mcp binary runs")
}

fn stdout_of(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "smartcar-mcp {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("stdout is UTF-8")
}

/// The line of `tools` output for one tool (the name is the first column).
fn tool_line<'a>(listing: &'a str, name: &str) -> &'a str {
    listing
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("`smartcar-mcp tools` has no line for {name}:\n{listing}"))
}

#[test]
fn tools_prints_every_tool_with_its_toolset_and_hints_without_credentials() {
    let listing = stdout_of(&["tools", "--toolsets", "all"]);
    assert_eq!(listing.lines().count(), TOOLS.len(), "{listing}");
    let default = stdout_of(&["tools"]);
    for t in TOOLS.iter() {
        let listed = default
            .lines()
            .any(|l| l.split_whitespace().next() == Some(t.name));
        assert_eq!(listed, t.toolset.on_by_default(), "{} by default", t.name);
    }
    for t in TOOLS.iter() {
        let line = tool_line(&listing, t.name);
        let columns: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(columns[1], t.toolset.as_str(), "{line}");
        // The hints column may be empty, so it is the third token only when it is made of hints.
        let known = ["read-only", "destructive", "confirm"];
        let hints: BTreeSet<&str> = columns
            .get(2)
            .filter(|c| c.split(',').all(|h| known.contains(&h)))
            .map(|c| c.split(',').collect())
            .unwrap_or_default();
        let expected: BTreeSet<&str> = [
            (t.annotations.read_only, "read-only"),
            (t.annotations.destructive, "destructive"),
            (t.confirm, "confirm"),
        ]
        .into_iter()
        .filter_map(|(on, hint)| on.then_some(hint))
        .collect();
        assert_eq!(hints, expected, "{line}");
        let first_words: String = t
            .description
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ");
        assert!(line.contains(&first_words), "no summary in {line}");
    }
}

#[test]
fn tools_honours_the_serving_filters() {
    let listing = stdout_of(&["tools", "--read-only"]);
    let names: BTreeSet<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let read_only: BTreeSet<&str> = TOOLS
        .iter()
        .filter(|t| t.annotations.read_only && t.toolset.on_by_default())
        .map(|t| t.name)
        .collect();
    assert_eq!(names, read_only);
}

#[test]
fn tools_json_is_the_tools_list_snapshot() {
    let printed = stdout_of(&["tools", "--json", "--toolsets", "all"]);
    assert_eq!(
        printed,
        crate::snapshots::tools_list_json(),
        "`tools --json` must print exactly what tools/list publishes"
    );
    let snapshot = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/snapshots/tools_list.json"
    ))
    .unwrap_or_default()
    .replace("\r\n", "\n");
    assert!(
        printed == snapshot,
        "tests/snapshots/tools_list.json is stale: `cargo test --test tests` rewrites it"
    );
}

#[test]
fn signals_prints_every_code_and_alias() {
    let listing = stdout_of(&["signals"]);
    let codes: BTreeSet<&str> = listing
        .lines()
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let expected: BTreeSet<&str> = SIGNALS.iter().map(|s| s.code).collect();
    assert_eq!(codes, expected);
    for s in SIGNALS.iter() {
        for a in s.aliases {
            assert!(
                listing.contains(a),
                "alias {a} of {} is not printed",
                s.code
            );
        }
    }
    assert!(listing.contains("charge.ischarging"));
}

#[test]
fn signals_group_prints_only_that_group() {
    let listing = stdout_of(&["signals", "charge"]);
    let codes: BTreeSet<&str> = listing
        .lines()
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let charge: BTreeSet<&str> = SIGNALS
        .iter()
        .filter(|s| s.group == "charge")
        .map(|s| s.code)
        .collect();
    assert!(!charge.is_empty());
    assert_eq!(codes, charge);
    assert!(!listing.contains("tractionbattery-stateofcharge"));
}

#[test]
fn an_unknown_signal_group_fails_naming_the_valid_groups() {
    let out = run(&["signals", "nope"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "nothing is printed on stdout");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("`nope`"), "{stderr}");
    let groups: BTreeSet<&str> = SIGNALS.iter().map(|s| s.group).collect();
    for g in groups {
        assert!(stderr.contains(g), "group {g} is not named: {stderr}");
    }
}

#[test]
fn client_hints_come_from_the_yaml_and_texts_stay_under_the_2048_character_cut() {
    let listed: serde_json::Value =
        serde_json::from_str(&crate::snapshots::tools_list_json()).unwrap();
    for t in listed.as_array().unwrap() {
        let name = t["name"].as_str().unwrap();
        let spec = smartcar_mcp::catalogue::tool(name).unwrap();
        let meta = &t["_meta"];
        assert_eq!(
            meta.get("anthropic/requiresUserInteraction").is_some(),
            spec.confirm,
            "{name}: requiresUserInteraction follows `confirm`"
        );
        assert_eq!(
            meta.get("anthropic/alwaysLoad").is_some(),
            spec.always_load,
            "{name}"
        );
        assert_eq!(
            meta["anthropic/searchHint"].as_str(),
            spec.search_hint,
            "{name}"
        );
        assert!(
            spec.description.chars().count() < 2048,
            "{name}'s description would be cut"
        );
    }
    for (name, wanted) in [
        ("list_connections", true),
        ("get_signal", true),
        ("lock_vehicle", false),
    ] {
        assert_eq!(
            smartcar_mcp::catalogue::tool(name).unwrap().always_load,
            wanted,
            "{name}"
        );
    }
    let confirmed: Vec<_> = TOOLS.iter().filter(|t| t.confirm).map(|t| t.name).collect();
    assert!(confirmed.contains(&"unlock_vehicle") && confirmed.contains(&"delete_user"));
    assert!(smartcar_mcp::mcp::INSTRUCTIONS.chars().count() < 2048);
}

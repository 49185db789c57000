//! The catalogue generator: the real YAML passes, and each broken form is reported with its line.

use crate::codegen;
use crate::common::catalogue::{SIGNALS_YAML, TOOLS_YAML, templates};

/// Diagnostics for a tools.yaml with `from` replaced by `to` (which must occur exactly once).
fn tools_problems(from: &str, to: &str) -> (Vec<String>, usize) {
    assert_eq!(
        TOOLS_YAML.matches(from).count(),
        1,
        "fixture anchor `{from}` must be unique"
    );
    let text = TOOLS_YAML.replacen(from, to, 1);
    let line = TOOLS_YAML[..TOOLS_YAML.find(from).unwrap()].lines().count() + 1;
    let problems = codegen::lower::check(&text, SIGNALS_YAML)
        .expect_err("the broken catalogue must be refused")
        .iter()
        .map(|d| d.to_string())
        .collect();
    (problems, line)
}

fn signals_problems(from: &str, to: &str) -> Vec<String> {
    assert!(
        SIGNALS_YAML.contains(from),
        "anchor `{from}` not in signals.yaml"
    );
    let text = SIGNALS_YAML.replacen(from, to, 1);
    codegen::lower::check(TOOLS_YAML, &text)
        .expect_err("the broken catalogue must be refused")
        .iter()
        .map(|d| d.to_string())
        .collect()
}

fn assert_has(problems: &[String], needle: &str) {
    assert!(
        problems.iter().any(|p| p.contains(needle)),
        "no diagnostic contains {needle:?}; got:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_real_catalogue_generates() {
    let out = codegen::generate(TOOLS_YAML, SIGNALS_YAML, &templates()).unwrap_or_else(|e| {
        panic!(
            "{}",
            e.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    // At least the TypeScript server's tools plus get_vehicle, and every documented signal code;
    // more are a YAML-only addition.
    assert!(out.catalogue.tools.len() >= 16);
    assert!(out.catalogue.signals.len() >= 93);
    assert!(out.rust.starts_with("// @generated"));
    assert!(out.tools_md.contains("`set_charge_limit`"));
    assert!(out.signals_md.contains("`closure-islocked`"));
}

#[test]
fn a_duplicate_tool_name_is_reported_at_its_line() {
    let (p, line) = tools_problems("  - name: get_connection\n", "  - name: list_connections\n");
    assert_has(
        &p,
        &format!("tools.yaml:{line}:11: tool `list_connections`: duplicate tool name"),
    );
}

#[test]
fn a_minimum_above_its_maximum_is_reported_at_its_line() {
    let (p, line) = tools_problems("        minimum: 50\n", "        minimum: 150\n");
    assert_has(
        &p,
        &format!(
            "tools.yaml:{line}:18: tool `set_charge_limit`: param `percent`: minimum 150 is above maximum 100"
        ),
    );
}

#[test]
fn path_placeholders_and_path_params_must_match() {
    let (p, line) = tools_problems("    path: /users/{id}\n", "    path: /users/{user}\n");
    assert_has(
        &p,
        &format!(
            "tools.yaml:{line}:11: tool `delete_user`: path placeholder `{{user}}` is not a declared parameter"
        ),
    );
    assert_has(
        &p,
        "tool `delete_user`: param `id`: path parameter is not used in path `/users/{user}`",
    );
}

#[test]
fn unknown_types_locations_toolsets_and_methods_are_named() {
    let (p, _) = tools_problems(
        "    path: /applications/{id}/secrets\n",
        "    path: /applications/{id}/secrets\n    confirm: maybe\n",
    );
    assert!(!p.is_empty());
    let (p, _) = tools_problems(
        "        wire: filter[vehicle.mode]\n        type: string\n",
        "        wire: filter[vehicle.mode]\n        type: text\n",
    );
    assert_has(&p, "param `vehicleMode`: unknown type `text`");
    assert_has(&p, "param `vehicleMode`: `enum` is only for type string");
    let (p, _) = tools_problems(
        "    toolset: management\n    scope: app:admin\n    title: List applications\n",
        "    toolset: admin\n    scope: app:admin\n    title: List applications\n",
    );
    assert_has(
        &p,
        "tool `list_applications`: unknown toolset `admin` (expected one of connections, signals, commands, schedules, management, webhooks)",
    );
    let (p, _) = tools_problems(
        "    method: DELETE\n    api: vehicle\n    path: /users/{id}\n",
        "    method: REMOVE\n    api: vehicle\n    path: /users/{id}\n",
    );
    assert_has(&p, "tool `delete_user`: unknown method `REMOVE`");
}

#[test]
fn enums_must_be_non_empty_and_unique() {
    let (p, _) = tools_problems("enum: [live, simulated]", "enum: [live, live]");
    assert_has(&p, "param `vehicleMode`: enum value `live` is listed twice");
    let (p, _) = tools_problems("enum: [live, simulated]", "enum: []");
    assert_has(&p, "param `vehicleMode`: `enum` is empty");
}

#[test]
fn tool_names_follow_the_mcp_rules() {
    let (p, _) = tools_problems("  - name: get_vehicle\n", "  - name: get vehicle!\n");
    assert_has(
        &p,
        "tool `get vehicle!`: a tool name is 1 to 128 characters",
    );
}

#[test]
fn unknown_keys_are_refused_with_a_line() {
    let (p, line) = tools_problems(
        "    api: management\n    path: /applications\n",
        "    api: management\n    pathh: /applications\n",
    );
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with(&format!("tools.yaml:{}:", line + 1)),
        "{p:?}"
    );
    assert!(p[0].contains("pathh"), "{p:?}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = TOOLS_YAML
        .replacen(
            "  - name: get_connection\n",
            "  - name: list_connections\n",
            1,
        )
        .replacen("        minimum: 50\n", "        minimum: 150\n", 1)
        .replacen(
            "    toolset: management\n    scope: app:admin\n    title: List applications\n",
            "    toolset: admin\n    scope: app:admin\n    title: List applications\n",
            1,
        );
    let problems = codegen::lower::check(&text, SIGNALS_YAML).unwrap_err();
    assert_eq!(problems.len(), 3, "{problems:?}");
    let lines: Vec<u64> = problems.iter().map(|d| d.line).collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted, "diagnostics come in file order");
}

#[test]
fn a_broken_catalogue_generates_nothing() {
    let text = TOOLS_YAML.replacen("        minimum: 50\n", "        minimum: 150\n", 1);
    assert!(codegen::generate(&text, SIGNALS_YAML, &templates()).is_err());
}

#[test]
fn signal_alias_clashes_are_reported() {
    let p = signals_problems(
        "aliases: [charge.voltage]",
        "aliases: [charge.voltage, charge.ischarging]",
    );
    assert_has(
        &p,
        "alias `charge.ischarging` is already an alias of `charge-ischarging`",
    );
    let p = signals_problems(
        "aliases: [charge.voltage]",
        "aliases: [charge.voltage, charge-wattage]",
    );
    assert_has(
        &p,
        "alias `charge-wattage` clashes with the signal code `charge-wattage`",
    );
}

#[test]
fn signal_codes_must_carry_their_group_and_be_unique() {
    let p = signals_problems("code: charge-voltage", "code: charging-voltage");
    assert_has(
        &p,
        "signal `charging-voltage`: a code must be `charge-NAME`",
    );
    let p = signals_problems("code: charge-voltage", "code: charge-wattage");
    assert_has(&p, "signal `charge-wattage`: duplicate code");
}

/// Every `fixtures/invalid/NAME.yaml` (a tools.yaml with problems) reports exactly the
/// diagnostics of `NAME.expected`; a new generator check is one new fixture pair.
#[test]
fn each_invalid_fixture_reports_its_expected_diagnostics() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut fixtures: Vec<_> = std::fs::read_dir(dir.join("tests/fixtures/invalid"))
        .expect("fixtures/invalid exists")
        .map(|e| e.expect("a readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    fixtures.sort();
    assert!(fixtures.len() >= 3, "{fixtures:?}");
    for yaml in fixtures {
        let text = std::fs::read_to_string(&yaml).unwrap();
        let got: Vec<String> = match codegen::lower::check(&text, SIGNALS_YAML) {
            Ok(_) => panic!("{} has no problem", yaml.display()),
            Err(problems) => problems.iter().map(|d| d.to_string()).collect(),
        };
        let expected = yaml.with_extension("expected");
        let relative = expected.strip_prefix(dir).unwrap().to_str().unwrap();
        crate::common::snapshot::ensure_fresh(relative, &(got.join("\n") + "\n"));
    }
}

/// The 1-based column of `needle` in `text`, as diagnostics count it.
fn col(text: &str, needle: &str) -> usize {
    text.find(needle).expect("needle in text") + 1
}

#[test]
fn a_verify_check_is_checked_where_it_is_written() {
    let lock = "    verify: { code: closure-islocked, at: /value, expect: true }\n";
    let broken = "    verify: { code: closure-isopen, at: /valu, expect: maybe }\n";
    let (p, line) = tools_problems(lock, broken);
    let at = |needle| {
        format!(
            "tools.yaml:{line}:{}: tool `lock_vehicle`: ",
            col(broken, needle)
        )
    };
    assert_has(
        &p,
        &format!(
            "{}confirming signal `closure-isopen` is not a signal code",
            at("closure-isopen")
        ),
    );
    assert_has(
        &p,
        &format!(
            "{}verify.at `/valu`: the `signal` shape has no `valu`",
            at("/valu")
        ),
    );
    assert_has(
        &p,
        &format!(
            "{}verify.expect must be true, false or `{{param}}`",
            at("maybe")
        ),
    );
    let limit =
        "    verify: { code: charge-chargelimits, at: /body/activeLimit, expect: \"{percent}\" }\n";
    let broken = limit.replace("{percent}", "{percentage}");
    let (p, line) = tools_problems(limit, &broken);
    assert_has(
        &p,
        &format!(
            "tools.yaml:{line}:{}: tool `set_charge_limit`: verify.expect names `{{percentage}}`, which is not a parameter",
            col(&broken, "\"{percentage}")
        ),
    );
    let twice = format!("{lock}    confirm_signal: closure-islocked\n");
    let (p, line) = tools_problems(lock, &twice);
    assert_has(
        &p,
        &format!(
            "tools.yaml:{}:21: tool `lock_vehicle`: give the confirming signal once",
            line + 1
        ),
    );
}
#[test]
fn roles_are_required_where_the_pipeline_looks_them_up_and_held_once() {
    // get_signals: its vehicle path parameter without its role.
    let anchor = "    path: /vehicles/{vehicle_id}/signals\n    annotations";
    let text = TOOLS_YAML.replacen("        role: vehicle\n", "", 2);
    let problems: Vec<String> = codegen::lower::check(&text, SIGNALS_YAML)
        .expect_err("a missing role must be refused")
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert!(TOOLS_YAML.contains(anchor), "fixture anchor moved");
    assert_has(
        &problems,
        "tool `get_signals`: param `vehicle_id` is the vehicle in the path `/vehicles/{vehicle_id}/signals`: give it `role: vehicle`",
    );
    let (p, line) = tools_problems(
        "        role: user\n        description: User id, from list_connections.\n",
        "        role: owner\n        description: User id, from list_connections.\n",
    );
    assert_has(
        &p,
        &format!(
            "tools.yaml:{line}:15: tool `delete_user`: param `id`: role `owner` is not one of vehicle, user, webhook, connection"
        ),
    );
    let (p, _) = tools_problems(
        "      - name: vehicleId\n        in: query\n        wire: filter[vehicleId]\n        type: id\n        role: vehicle\n",
        "      - name: vehicleId\n        in: query\n        wire: filter[vehicleId]\n        type: id\n        role: user\n",
    );
    assert_has(
        &p,
        "tool `list_connections`: param `vehicleId`: role `user` is already `userId`'s",
    );
}

#[test]
fn every_tool_names_a_known_scope() {
    let (p, line) = tools_problems("    scope: vehicle:unlock\n", "    scope: vehicle:open\n");
    assert_has(
        &p,
        &format!(
            "tools.yaml:{line}:12: tool `unlock_vehicle`: scope `vehicle:open` is not one of vehicle:read, vehicle:command, vehicle:unlock, account:delete, app:admin"
        ),
    );
    let (p, _) = tools_problems("    scope: vehicle:unlock\n", "");
    assert_has(&p, "missing field `scope`");
}

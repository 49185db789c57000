//! The guide's worked example (CONTRIBUTING.md) run through the generator and the runtime
//! request builder, so adding a tool stays a YAML-only change and the guide cannot rot.

use serde_json::{Map, Value, json};
use smartcar_mcp::catalogue::{self as rt, TOOLS, ToolSpec};
use smartcar_mcp::upstream::build_request;

use crate::codegen;
use crate::common::catalogue::{SIGNALS_YAML, TOOLS_YAML, generated, show, templates};

const GUIDE: &str = include_str!("../CONTRIBUTING.md");

const API_URL: &str = "http://127.0.0.1:1/v3";
const MANAGEMENT_API_URL: &str = "http://127.0.0.1:1/management/v3";

/// The body of the first fenced block of `lang` in `doc` that contains `marker`.
fn fenced<'a>(doc: &'a str, lang: &str, marker: &str) -> &'a str {
    let open = format!("```{lang}\n");
    doc.match_indices(&open)
        .map(|(i, _)| {
            let body = &doc[i + open.len()..];
            &body[..body.find("```").expect("fenced block is closed")]
        })
        .find(|b| b.contains(marker))
        .unwrap_or_else(|| panic!("no ```{lang} block containing `{marker}`"))
}

/// Where the guide says to paste a command: at the end of the `commands` section, i.e. before the
/// management section's comment line, or else at the end of the `tools:` list. Returns the byte
/// offset and the 1-based line the pasted entry starts on.
fn paste_point() -> (usize, u64) {
    let section = TOOLS_YAML
        .find("  # ---------------------------------------------------------------- management\n");
    // The list ends at the first top-level key after `tools:` (e.g. `shapes:`).
    let list_end = || {
        let tools = TOOLS_YAML
            .find("\ntools:\n")
            .expect("tools.yaml has a `tools:` list")
            + 1;
        TOOLS_YAML[tools..]
            .match_indices('\n')
            .map(|(i, _)| tools + i + 1)
            .find(|&i| {
                TOOLS_YAML[i..]
                    .chars()
                    .next()
                    .is_some_and(|c| !matches!(c, ' ' | '#' | '\n'))
            })
            .unwrap_or(TOOLS_YAML.len())
    };
    let at = section.unwrap_or_else(list_end);
    (at, TOOLS_YAML[..at].lines().count() as u64 + 1)
}

/// The real tools.yaml with `entry` pasted where the guide says, followed by a blank line.
fn yaml_with(entry: &str) -> String {
    let (at, _) = paste_point();
    format!(
        "{}{}\n\n{}",
        &TOOLS_YAML[..at],
        entry.trim_end(),
        &TOOLS_YAML[at..]
    )
}

fn guide_entry() -> &'static str {
    fenced(GUIDE, "yaml", "name: open_charge_port")
}

#[test]
fn the_guide_example_is_a_yaml_only_tool() {
    let yaml = yaml_with(guide_entry());
    let cat = codegen::lower::check(&yaml, SIGNALS_YAML).unwrap_or_else(|e| panic!("{}", show(&e)));
    assert_eq!(cat.tools.len(), TOOLS.len() + 1);
    let tool = cat
        .tools
        .iter()
        .find(|t| t.name == "open_charge_port")
        .expect("the new tool is in the catalogue");
    let spec = tool.clone();

    let row: Value = serde_json::from_str(
        fenced(GUIDE, "json", "\"open_charge_port\"")
            .trim()
            .trim_end_matches(','),
    )
    .expect("the guide's golden row is JSON");
    let args: Map<String, Value> = row["args"].as_object().cloned().unwrap();
    assert_eq!(
        Value::Object(args.clone()),
        json!({"vehicle_id": "v-1", "user_id": "u-1"})
    );

    // The arguments pass the schema the tool would publish, and the identity header is enforced.
    let schema: Value = serde_json::from_str(spec.input_schema).unwrap();
    let validator = jsonschema::options()
        .should_validate_formats(false)
        .build(&schema)
        .expect("the new tool's schema compiles");
    assert!(validator.is_valid(&Value::Object(args.clone())));
    assert!(!validator.is_valid(&json!({"vehicle_id": "v-1"})));
    assert!(!validator.is_valid(&json!({"vehicle_id": "v-1", "user_id": "u-1", "extra": 1})));

    let req = build_request(&spec, &args, API_URL, MANAGEMENT_API_URL);
    assert_eq!(req.method, rt::Method::Post);
    assert_eq!(
        req.url,
        "http://127.0.0.1:1/v3/vehicles/v-1/commands/charge-port/open"
    );
    assert_eq!(
        req.headers,
        vec![("sc-user-id".to_string(), "u-1".to_string())]
    );
    assert!(req.query.is_empty());
    assert_eq!(req.body, None);

    // The guide's golden row describes that same request.
    assert_eq!(row["tool"], "open_charge_port");
    assert_eq!(row["api"], "vehicle");
    assert_eq!(row["method"], req.method.as_str());
    assert_eq!(row["path"], req.path.as_str());
    assert_eq!(row["query"], json!([]));
    assert_eq!(row["sc_user_id"], "u-1");
    assert_eq!(row["body"], Value::Null);

    // The whole pipeline accepts it too, and the snapshots the guide names would change.
    let out = codegen::generate(&yaml, SIGNALS_YAML, &templates())
        .unwrap_or_else(|e| panic!("{}", show(&e)));
    assert!(out.rust.contains("name: \"open_charge_port\""));
    let index = out
        .catalogue
        .tools
        .iter()
        .position(|t| t.name == "open_charge_port")
        .unwrap();
    let arm = format!("\"open_charge_port\" => ::core::option::Option::Some({index}usize)");
    assert!(out.rust.contains(&arm), "no dispatch arm `{arm}`");
    assert!(out.tools_md.contains("| `open_charge_port` |"));
    assert!(!generated().rust.contains("\"open_charge_port\""));
}

#[test]
fn the_guide_shows_real_diagnostics() {
    let broken = guide_entry().replace(
        "path: /vehicles/{vehicle_id}/commands",
        "path: /vehicles/{vehicleId}/commands",
    );
    let problems = codegen::lower::check(&yaml_with(&broken), SIGNALS_YAML)
        .expect_err("a misspelled placeholder is refused");
    assert_eq!(problems.len(), 2, "{}", show(&problems));
    let example = fenced(GUIDE, "text", "open_charge_port");
    for d in &problems {
        // Line numbers depend on where the entry is pasted; the column and message do not.
        let rest = format!(":{}: {}", d.column, d.message);
        assert!(
            example.lines().any(|l| l.starts_with("error: ")
                && l.contains(" tools.yaml:")
                && l.ends_with(&rest)),
            "CONTRIBUTING.md's diagnostic example lacks `...{rest}`"
        );
    }
}

/// The text of one tool entry of tools.yaml, from its `- name:` line to the next entry or section.
fn entry_of(name: &str) -> &'static str {
    let head = format!("  - name: {name}\n");
    let start = TOOLS_YAML
        .find(&head)
        .unwrap_or_else(|| panic!("no entry `{name}`"));
    let rest = &TOOLS_YAML[start + head.len()..];
    // The entry ends before the next entry, a section comment, or a top-level key like `shapes:`.
    let top_level = rest
        .match_indices('\n')
        .map(|(i, _)| i)
        .find(|&i| rest[i + 1..].starts_with(|c: char| c != ' ' && c != '\n'));
    let len = ["\n  - name: ", "\n  # "]
        .iter()
        .filter_map(|m| rest.find(m))
        .chain(top_level)
        .min()
        .map_or(rest.len(), |i| i + 1);
    &TOOLS_YAML[start..start + head.len() + len]
}

#[test]
fn a_cloned_entry_under_a_new_name_is_a_seventeenth_tool() {
    let original = entry_of("set_charge_limit");
    let clone = original.replacen(
        "name: set_charge_limit\n",
        "name: set_charge_limit_copy\n",
        1,
    );
    let out = codegen::generate(&yaml_with(&clone), SIGNALS_YAML, &templates())
        .unwrap_or_else(|e| panic!("{}", show(&e)));
    assert_eq!(out.catalogue.tools.len(), TOOLS.len() + 1);
    let cat = &out.catalogue;
    let copy = cat
        .tools
        .iter()
        .find(|t| t.name == "set_charge_limit_copy")
        .unwrap();
    let source = cat
        .tools
        .iter()
        .find(|t| t.name == "set_charge_limit")
        .unwrap();
    assert_eq!(copy.name, "set_charge_limit_copy");
    assert_eq!(
        ToolSpec {
            name: source.name,
            ..copy.clone()
        },
        *source
    );
    assert!(out.rust.contains("name: \"set_charge_limit_copy\""));

    // Cloned without renaming, it is refused at the clone's line.
    let (_, clone_line) = paste_point();
    let problems = codegen::lower::check(&yaml_with(original), SIGNALS_YAML)
        .expect_err("a duplicate name is refused");
    assert_eq!(problems.len(), 1, "{}", show(&problems));
    assert_eq!(problems[0].line, clone_line);
    assert!(
        problems[0]
            .message
            .starts_with("tool `set_charge_limit`: duplicate tool name (first declared at line"),
        "{}",
        problems[0]
    );
}

/// The worked example lowered by the generator, as a spec the pipeline can run (the generator's
/// output lives as long as the test binary, like the compiled table's).
fn guide_spec(entry: &str) -> &'static ToolSpec {
    let cat = codegen::lower::check(&yaml_with(entry), SIGNALS_YAML)
        .unwrap_or_else(|e| panic!("{}", show(&e)));
    let spec = cat
        .tools
        .into_iter()
        .find(|t| t.name == "open_charge_port")
        .expect("the guide's tool is in the catalogue");
    Box::leak(Box::new(spec))
}

/// A seeded EV and its user: the simulator's fleet, as the guide's step 5 names them.
const EV: &str = "veh-ev-0001";
const ALICE: &str = "usr-alice-01";

#[tokio::test]
async fn the_simulator_models_the_guide_command_and_every_shipped_one() {
    let sim = crate::common::simulator().await;
    let shared = crate::common::shared(crate::common::settings(&sim));
    let spec = guide_spec(guide_entry());
    let ids = json!({ "vehicle_id": EV, "user_id": ALICE });
    let r = crate::common::run_spec(&shared, spec, ids.clone()).await;
    assert!(!r.is_error, "{}", r.json);
    assert_eq!(r.structured["status"], "SUCCESS", "{}", r.json);
    let read = crate::common::execute_only(
        &shared,
        "get_signal",
        json!({ "vehicle_id": EV, "user_id": ALICE, "signal_code": "charge-ischargingportflapopen" }),
    )
    .await;
    assert_eq!(read.structured["value"], true, "{}", read.json);

    // Every shipped command, with its golden row's other arguments, on the seeded EV.
    let golden: Value =
        serde_json::from_str(include_str!("golden/requests.json")).expect("golden rows are JSON");
    let mut sent = std::collections::BTreeSet::new();
    for row in golden["rows"].as_array().unwrap() {
        let name = row["tool"].as_str().unwrap();
        let spec = rt::tool(name).unwrap();
        if spec.toolset != rt::Toolset::Commands || !sent.insert(name) {
            continue;
        }
        let mut args = row["args"].as_object().cloned().unwrap();
        for (role, id) in [(rt::Role::Vehicle, EV), (rt::Role::User, ALICE)] {
            if let Some(p) = spec.param(role) {
                args.insert(p.name.into(), json!(id));
            }
        }
        let r = crate::common::run(&shared, name, Value::Object(args)).await;
        assert!(
            !r.is_error,
            "the simulator does not model {name}: {}",
            r.json
        );
    }
    let commands = TOOLS
        .iter()
        .filter(|t| t.toolset == rt::Toolset::Commands)
        .count();
    assert_eq!(sent.len(), commands, "a command without a golden row");
    sim.shutdown();
}

#[test]
fn the_guide_shape_diagnostic_is_real() {
    let entry = guide_entry().replace("output: command", "output: charge_port");
    let problems = codegen::lower::check(&yaml_with(&entry), SIGNALS_YAML)
        .expect_err("an unknown shape is refused");
    assert_eq!(problems.len(), 1, "{}", show(&problems));
    let d = &problems[0];
    let example = fenced(GUIDE, "text", "output shape `charge_port`");
    let rest = format!(": {}", d.message);
    assert!(
        example
            .lines()
            .any(|l| l.starts_with("tools.yaml:") && l.ends_with(&rest)),
        "CONTRIBUTING.md's shape example lacks `...{rest}`"
    );
}

#[tokio::test]
async fn the_guide_verify_entry_is_checked_after_the_command() {
    let line = fenced(
        GUIDE,
        "yaml",
        "verify: { code: charge-ischargingportflapopen",
    );
    let entry = guide_entry().replace("    confirm_signal: charge-ischargingportflapopen\n", line);
    assert_ne!(
        entry,
        guide_entry(),
        "the worked example has no confirm_signal line to replace"
    );
    let spec = guide_spec(&entry);
    assert_eq!(spec.confirm_signal, Some("charge-ischargingportflapopen"));
    assert_eq!(
        spec.verify,
        Some(rt::Verify {
            at: "/value",
            expect: rt::Expect::Bool(true)
        })
    );
    let sim = crate::common::simulator().await;
    let mut settings = crate::common::settings(&sim);
    settings.serving.verify_commands = true;
    settings.serving.verify_delay = std::time::Duration::ZERO;
    let shared = crate::common::shared(settings);
    let r =
        crate::common::run_spec(&shared, spec, json!({ "vehicle_id": EV, "user_id": ALICE })).await;
    assert_eq!(r.structured["verified"], true, "{}", r.json);
    assert_eq!(r.structured["verification"]["read"], true, "{}", r.json);
    sim.shutdown();
}

#[test]
fn the_docs_name_every_prompt_and_resource() {
    use smartcar_mcp::mcp::{prompts, resources};
    let tools_md = include_str!("../docs/tools.md");
    let table: Vec<&str> = tools_md
        .lines()
        .filter_map(|l| l.strip_prefix("| `")?.split('`').next())
        .collect();
    for p in prompts::list().prompts {
        assert!(
            table.contains(&p.name.as_str()),
            "docs/tools.md's Prompts table lacks `{}`",
            p.name
        );
    }
    let docs_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let docs: String = std::fs::read_dir(docs_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let mut uris: Vec<String> = resources::templates()
        .resource_templates
        .iter()
        .map(|t| t.uri_template.clone())
        .collect();
    uris.extend([
        resources::USAGE.to_string(),
        resources::SIGNALS_URI.to_string(),
    ]);
    for uri in uris {
        assert!(
            docs.contains(&format!("`{uri}`")),
            "no page of docs/ describes `{uri}`"
        );
    }
}

/// Every source file and test CONTRIBUTING.md names exists, so its guides cannot point at code
/// that moved.
#[test]
fn every_file_and_test_the_guide_names_exists() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for quoted in GUIDE.split('`').skip(1).step_by(2) {
        if (quoted.starts_with("src/") || quoted.starts_with("tests/")) && !quoted.contains(' ') {
            assert!(
                root.join(quoted).exists(),
                "CONTRIBUTING.md names `{quoted}`, which does not exist"
            );
            checked += 1;
        } else if let Some((module, name)) = quoted.split_once("::")
            && ["guide", "golden", "results", "budget", "docs", "snapshots"].contains(&module)
            && !name.contains("::")
        {
            let file = std::fs::read_to_string(root.join(format!("tests/{module}.rs")))
                .unwrap_or_default();
            assert!(
                file.contains(&format!("fn {name}(")),
                "CONTRIBUTING.md names the test `{quoted}`, which does not exist"
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 25,
        "only {checked} names checked: is the reader broken?"
    );
}

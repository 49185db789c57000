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

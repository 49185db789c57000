//! Generated docs and snapshots stay fresh, and adding a tool really is a YAML-only change.
//!
//! The README regions and `tests/snapshots/` are rewritten by these tests (locally) or checked
//! (under `CI`) through one helper, `ensure_fresh`. The guide's worked example (CONTRIBUTING.md) is
//! run through the generator and the runtime request builder, so the guide cannot rot.

use std::path::Path;

use serde_json::{Map, Value, json};
use smartcar_mcp::catalogue::{self as rt, SIGNALS, TOOLS, ToolSpec};
use smartcar_mcp::upstream::build_request;

use crate::codegen::{self, Diagnostic, docs::Templates};
use crate::common;

const TOOLS_YAML: &str = include_str!("../tools.yaml");
const SIGNALS_YAML: &str = include_str!("../signals.yaml");
const GUIDE: &str = include_str!("../CONTRIBUTING.md");

/// What a maintainer runs to rewrite every generated file this module checks.
const REGENERATE: &str = "cargo test --test tests docs::";

const API_URL: &str = "http://127.0.0.1:1/v3";
const MANAGEMENT_API_URL: &str = "http://127.0.0.1:1/management/v3";

fn templates() -> Templates {
    Templates {
        tools: include_str!("../templates/tools.md.j2").into(),
        signals: include_str!("../templates/signals.md.j2").into(),
    }
}

fn show(problems: &[Diagnostic]) -> String {
    problems
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn generated() -> codegen::Generated {
    codegen::generate(TOOLS_YAML, SIGNALS_YAML, &templates())
        .unwrap_or_else(|e| panic!("{}", show(&e)))
}

/// CI systems set `CI` (GitHub Actions, GitLab, Buildkite, ... use `true`); `CI=false` or an empty
/// value is treated as a local run so a developer can opt out.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

fn first_difference(old: &str, new: &str) -> String {
    let clip = |s: &str| -> String {
        if s.chars().count() > 100 {
            format!("{}...", s.chars().take(100).collect::<String>())
        } else {
            s.to_string()
        }
    };
    let (mut old_lines, mut new_lines) = (old.lines(), new.lines());
    for line in 1.. {
        match (old_lines.next(), new_lines.next()) {
            (Some(a), Some(b)) if a == b => continue,
            (None, None) => return "only line endings differ".into(),
            (a, b) => {
                return format!(
                    "first difference at line {line}:\n  was:       {}\n  should be: {}",
                    a.map_or("(end of file)".into(), clip),
                    b.map_or("(end of file)".into(), clip)
                );
            }
        }
    }
    unreachable!()
}

/// Checks that the file at `path` (relative to the crate root) holds exactly `expected`.
///
/// Stale under `CI`: fails without writing and names the command to run. Stale locally: rewrites the
/// file and fails once, so the re-run passes and the rewritten file is ready to commit.
pub fn ensure_fresh(path: &str, expected: &str) {
    if let Err(message) = refresh(path, expected, in_ci()) {
        panic!("{message}");
    }
}

/// `ensure_fresh` with the CI switch passed in, so both behaviours are testable without touching
/// the process environment (which other tests read concurrently).
fn refresh(path: &str, expected: &str, ci: bool) -> Result<(), String> {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    // A checkout with CRLF line endings is not stale.
    let current = std::fs::read_to_string(&full)
        .unwrap_or_default()
        .replace("\r\n", "\n");
    if current == expected {
        return Ok(());
    }
    let diff = first_difference(&current, expected);
    if ci {
        return Err(format!(
            "{path} is stale; run `{REGENERATE}` locally and commit the result.\n{diff}"
        ));
    }
    if let Some(dir) = full.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    std::fs::write(&full, expected).map_err(|e| format!("writing {path}: {e}"))?;
    Err(format!(
        "{path} was stale and has been updated; re-run the tests.\n{diff}"
    ))
}

fn markers(name: &str) -> (String, String) {
    (
        format!("<!-- BEGIN GENERATED: {name} -->"),
        format!("<!-- END GENERATED: {name} -->"),
    )
}

/// Byte range of the text between a region's markers (markers excluded).
fn region_bounds(doc: &str, name: &str) -> (usize, usize) {
    let (begin, end) = markers(name);
    for m in [&begin, &end] {
        assert_eq!(
            doc.matches(m.as_str()).count(),
            1,
            "README.md must contain the line `{m}` exactly once"
        );
    }
    let start = doc.find(&begin).unwrap() + begin.len();
    let stop = doc.find(&end).unwrap();
    assert!(
        start <= stop,
        "README.md: `{begin}` must come before `{end}`"
    );
    (start, stop)
}

fn region<'a>(doc: &'a str, name: &str) -> &'a str {
    let (start, stop) = region_bounds(doc, name);
    &doc[start..stop]
}

/// The blank line before the END marker keeps the last table row from swallowing the marker in
/// renderers that let an HTML comment continue a table.
fn splice(doc: &str, name: &str, body: &str) -> String {
    let (start, stop) = region_bounds(doc, name);
    format!("{}\n{}\n\n{}", &doc[..start], body.trim_end(), &doc[stop..])
}

fn read_readme() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    std::fs::read_to_string(path)
        .expect("README.md is readable")
        .replace("\r\n", "\n")
}

/// What `tests/snapshots/tools_list.json` holds: `smartcar-mcp tools --json` with default settings.
pub fn tools_list_json() -> String {
    let all = common::all_tools();
    let json = serde_json::to_string_pretty(&smartcar_mcp::mcp::tools_json(&all))
        .expect("tools serialize");
    format!("{json}\n")
}

// --------------------------------------------------------------------------- freshness

#[test]
fn readme_tables_are_fresh() {
    let out = generated();
    // Both regions in one read-modify-write, so two tests never race on README.md.
    let readme = read_readme();
    let expected = splice(&readme, "tools", &out.tools_md);
    let expected = splice(&expected, "signals", &out.signals_md);
    ensure_fresh("README.md", &expected);
}

#[test]
fn tools_list_snapshot_is_fresh() {
    ensure_fresh("tests/snapshots/tools_list.json", &tools_list_json());
}

#[test]
fn generated_rust_snapshot_is_fresh() {
    ensure_fresh("tests/snapshots/catalogue.rs", &generated().rust);
}

/// The TypeScript server's 15 tool names plus `get_vehicle`: the README promises all of them, so
/// losing one is a compatibility break, while adding a tool needs no edit here.
const PROMISED_TOOLS: [&str; 16] = [
    "list_connections",
    "get_connection",
    "delete_connection",
    "delete_user",
    "get_signals",
    "get_signal",
    "get_vehicle",
    "lock_vehicle",
    "unlock_vehicle",
    "start_charge",
    "stop_charge",
    "set_charge_limit",
    "set_navigation_destination",
    "list_applications",
    "get_application",
    "list_application_secrets",
];

#[test]
fn readme_lists_every_tool_and_every_signal_code() {
    let readme = read_readme();
    let tools = region(&readme, "tools");
    let names = PROMISED_TOOLS
        .iter()
        .copied()
        .chain(TOOLS.iter().map(|t| t.name));
    for name in names {
        assert!(
            tools.contains(&format!("| `{name}` |")),
            "README's tools table has no row for `{name}`; run `{REGENERATE}`"
        );
    }
    assert!(tools.contains(&format!("{} tools in", TOOLS.len())));
    let signals = region(&readme, "signals");
    // Smartcar's signal reference (https://smartcar.com/docs/api-reference/signals) lists 93
    // codes; a code may be added, none may go missing.
    assert!(SIGNALS.len() >= 93, "only {} signal codes", SIGNALS.len());
    assert!(signals.contains(&format!("{} signal codes in", SIGNALS.len())));
    for s in SIGNALS.iter() {
        assert!(
            signals.contains(&format!("| `{}` |", s.code)),
            "README's signals table has no row for `{}`; run `{REGENERATE}`",
            s.code
        );
        for a in s.aliases {
            assert!(
                signals.contains(&format!("`{a}`")),
                "README's signals table does not list alias `{a}` of `{}`",
                s.code
            );
        }
    }
}

#[test]
fn a_stale_file_is_rewritten_locally_and_only_reported_under_ci() {
    let dir = std::env::temp_dir().join(format!("smartcar-mcp-docs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("stale.txt");
    // An absolute path joined to the crate root stays itself, so the helper writes in `dir`.
    let path = file.to_str().unwrap();
    std::fs::write(&file, "old\n").unwrap();

    let ci = refresh(path, "new\n", true).expect_err("stale under CI fails");
    assert!(ci.contains(&format!("run `{REGENERATE}` locally")), "{ci}");
    assert!(ci.contains("was:       old"), "{ci}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "old\n",
        "CI never writes"
    );

    let local = refresh(path, "new\n", false).expect_err("stale locally fails once");
    assert!(
        local.contains("was stale and has been updated; re-run the tests"),
        "{local}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "new\n");
    assert_eq!(refresh(path, "new\n", false), Ok(()), "the re-run passes");
    assert_eq!(refresh(path, "new\n", true), Ok(()));

    std::fs::write(&file, "new\r\n").unwrap();
    assert_eq!(
        refresh(path, "new\n", true),
        Ok(()),
        "CRLF is not staleness"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

// --------------------------------------------------------------------------- one model

#[test]
fn the_generator_model_is_exactly_the_compiled_table() {
    // The generator lowers into the runtime's own types, so what it holds must be, field for
    // field, what the binary compiled: no converter stands between them.
    let cat =
        codegen::lower::check(TOOLS_YAML, SIGNALS_YAML).unwrap_or_else(|e| panic!("{}", show(&e)));
    assert_eq!(cat.tools.len(), TOOLS.len());
    for (got, want) in cat.tools.iter().zip(TOOLS.iter()) {
        assert_eq!(got, want, "`{}` differs from the compiled table", want.name);
    }
    assert_eq!(cat.signals.as_slice(), SIGNALS.as_slice());
    assert_eq!(cat.unmapped.as_slice(), rt::UNMAPPED);
}

// --------------------------------------------------------------------------- the guide

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

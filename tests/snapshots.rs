//! Generated docs and snapshots stay fresh: the README's tool table and docs/signals.md's signal
//! table, `tests/snapshots/` (the tools/list JSON and the generated Rust), and the generator's
//! model is the compiled table.

use smartcar_mcp::catalogue::{self as rt, SIGNALS, TOOLS};

use std::path::Path;

use crate::codegen;
use crate::common;
use crate::common::catalogue::{SIGNALS_YAML, TOOLS_YAML, generated, show};
use crate::common::snapshot::{REGENERATE, ensure_fresh, refresh};

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
            "the document must contain the line `{m}` exactly once"
        );
    }
    let start = doc.find(&begin).unwrap() + begin.len();
    let stop = doc.find(&end).unwrap();
    assert!(start <= stop, "`{begin}` must come before `{end}`");
    (start, stop)
}

pub fn region<'a>(doc: &'a str, name: &str) -> &'a str {
    let (start, stop) = region_bounds(doc, name);
    &doc[start..stop]
}

/// The blank line before the END marker keeps the last table row from swallowing the marker in
/// renderers that let an HTML comment continue a table.
fn splice(doc: &str, name: &str, body: &str) -> String {
    let (start, stop) = region_bounds(doc, name);
    format!("{}\n{}\n\n{}", &doc[..start], body.trim_end(), &doc[stop..])
}

pub fn read_readme() -> String {
    read_doc("README.md")
}

/// A document of the repository (`README.md`, `docs/signals.md`), line endings normalised.
pub fn read_doc(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(full)
        .unwrap_or_else(|e| panic!("{path} is readable: {e}"))
        .replace("\r\n", "\n")
}

/// What `tests/snapshots/tools_list.json` holds: `smartcar-mcp tools --json` with default settings.
pub fn tools_list_json() -> String {
    let all = common::all_tools();
    let json = serde_json::to_string_pretty(&smartcar_mcp::mcp::tools_json(
        &all,
        smartcar_mcp::settings::LocationMode::Exact,
    ))
    .expect("tools serialize");
    format!("{json}\n")
}

// --------------------------------------------------------------------------- freshness

/// Several tests write the documents' generated regions; they take turns, so no test's
/// read-modify-write loses another's.
static DOCS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Checks (locally: rewrites) these regions of the document at `path`, each between its markers.
pub fn ensure_doc_regions(path: &str, regions: &[(&str, &str)]) {
    // A stale document panics while holding the turn; the next test still gets it.
    let _turn = DOCS.lock().unwrap_or_else(|e| e.into_inner());
    let mut expected = read_doc(path);
    for (name, body) in regions {
        expected = splice(&expected, name, body);
    }
    ensure_fresh(path, &expected);
}

#[test]
fn readme_tables_are_fresh() {
    let out = generated();
    ensure_doc_regions("README.md", &[("tools", &out.tools_md)]);
    ensure_doc_regions("docs/signals.md", &[("signals", &out.signals_md)]);
    ensure_doc_regions(
        "docs/configuration.md",
        &[("configuration", &smartcar_mcp::cli::configuration_table())],
    );
    ensure_doc_regions("docs/tools.md", &[("verify", &verify_table())]);
    ensure_doc_regions("docs/oauth.md", &[("scopes", &scope_table())]);
}

/// Which tools each OAuth scope allows, from each tool's `scope` in tools.yaml.
fn scope_table() -> String {
    use smartcar_mcp::catalogue::{Scope, TOOLS};
    let mut out = String::from(
        "<!-- Generated from each tool's `scope` in tools.yaml by `cargo test --test tests snapshots::`. -->\n\n\
         | Scope | Tools |\n|---|---|\n",
    );
    for scope in Scope::ALL {
        let tools: Vec<String> = TOOLS
            .iter()
            .filter(|t| t.scope == *scope)
            .map(|t| format!("`{}`", t.name))
            .collect();
        out.push_str(&format!(
            "| `{}` | {} |\n",
            scope.as_str(),
            tools.join(", ")
        ));
    }
    out
}

/// The commands `--verify-commands` checks, from each tool's `verify` in tools.yaml.
fn verify_table() -> String {
    use smartcar_mcp::catalogue::{Expect, TOOLS};
    let mut out = String::from(
        "<!-- Generated from each tool's `verify` in tools.yaml by `cargo test --test tests snapshots::`. -->\n\n\
         | Command | Signal | Verified when |\n|---|---|---|\n",
    );
    for t in TOOLS.iter() {
        let (Some(v), Some(signal)) = (t.verify, t.confirm_signal) else {
            continue;
        };
        let when = match v.expect {
            Expect::Bool(b) => format!("`{}` is `{b}`", v.at),
            Expect::Argument(a) => format!("`{}` equals the `{a}` sent", v.at),
        };
        out.push_str(&format!("| `{}` | `{signal}` | {when} |\n", t.name));
    }
    out
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
    let signals_doc = read_doc("docs/signals.md");
    let signals = region(&signals_doc, "signals");
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

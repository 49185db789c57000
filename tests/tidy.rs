//! House rules as tests (rust-analyzer's tidy): every file says what it is for, the crate's Layout
//! names every module, the three layers import only downward, and the repository cites no path
//! of a developer's machine.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn files_under(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, ext, out);
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}

fn rust_files(dirs: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in dirs {
        files_under(&root().join(d), "rs", &mut out);
    }
    out.sort();
    out
}

fn relative(p: &Path) -> String {
    p.strip_prefix(root())
        .unwrap()
        .to_string_lossy()
        .replace('\\', "/")
}

#[test]
fn every_rust_file_opens_with_what_it_is_for() {
    let mut files = rust_files(&["src", "tests", "benches"]);
    files.push(root().join("build.rs"));
    let bad: Vec<String> = files
        .iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            !(text.starts_with("//! ") || text.starts_with("// @generated"))
        })
        .map(|f| relative(f))
        .collect();
    assert!(
        bad.is_empty(),
        "files without a leading `//!` line: {bad:?}"
    );
}

/// The module a source file is, as a path below the crate: `tool::call`, `mcp`, `lib`.
fn module_of(file: &str) -> String {
    file.trim_start_matches("src/")
        .trim_end_matches(".rs")
        .trim_end_matches("/mod")
        .replace('/', "::")
}

/// Library modules (the generator is compiled into build.rs, not the library).
fn library_files() -> Vec<(String, String)> {
    rust_files(&["src"])
        .into_iter()
        .map(|f| relative(&f))
        .filter(|f| !f.starts_with("src/codegen/") && f != "src/main.rs")
        .map(|f| {
            let text = std::fs::read_to_string(root().join(&f)).unwrap();
            (f, text)
        })
        .collect()
}

#[test]
fn the_layout_section_names_every_module() {
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).unwrap();
    let layout: String = lib
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut missing = Vec::new();
    for (file, _) in library_files() {
        let module = module_of(&file);
        if module == "lib"
            || module.starts_with("simulator::")
            || module.starts_with("catalogue::generated")
        {
            continue;
        }
        if !layout.contains(&format!("`{module}`")) {
            missing.push(module);
        }
    }
    assert!(
        missing.is_empty(),
        "src/lib.rs's Layout does not name {missing:?}"
    );
}

/// The `crate::...` and `super::...` module paths a file names, resolved to modules.
fn imports(file: &str, text: &str) -> BTreeSet<String> {
    let me = module_of(file);
    // `super` of `tool::call` (tool/call.rs) is `tool`; of `tool` (tool/mod.rs), the crate.
    let parent = me
        .rsplit_once("::")
        .map(|(p, _)| p.to_string())
        .unwrap_or_default();
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        for (prefix, base) in [("crate::", String::new()), ("super::", parent.clone())] {
            let mut rest = code;
            while let Some(i) = rest.find(prefix) {
                // `smartcar_mcp::crate::` cannot occur; skip identifiers ending in the prefix.
                let before = rest[..i].chars().last();
                rest = &rest[i + prefix.len()..];
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let segs: Vec<&str> = rest
                    .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .next()
                    .unwrap_or("")
                    .split("::")
                    .filter(|s| !s.is_empty() && s.chars().next().is_some_and(|c| c.is_lowercase()))
                    .collect();
                if let Some(first) = segs.first() {
                    let top = if base.is_empty() {
                        first.to_string()
                    } else {
                        format!("{base}::{first}")
                    };
                    let second = segs.get(1).map(|s| format!("{top}::{s}"));
                    out.insert(second.filter(|m| is_module(m)).unwrap_or(top));
                }
            }
        }
    }
    out.remove(&me);
    out
}

fn is_module(m: &str) -> bool {
    let path = m.replace("::", "/");
    root().join(format!("src/{path}.rs")).exists()
        || root().join(format!("src/{path}/mod.rs")).exists()
}

fn layer(module: &str) -> &str {
    module.split("::").next().unwrap_or(module)
}

#[test]
fn layers_import_only_downward_and_rmcp_stays_in_mcp() {
    // Which top-level modules each may name; anything else is an upward (or sideways) edge.
    let allowed: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("secret", &[][..]),
        ("settings", &["secret"][..]),
        ("catalogue", &[][..]),
        ("text", &[][..]),
        ("sync", &[][..]),
        ("logging", &["sync"][..]),
        ("listen", &["settings", "sync", "logging"][..]),
        // Inbound OAuth tokens: under the layers, so the pipeline can name the caller's type.
        (
            "oauth",
            &["catalogue", "settings", "secret", "sync", "text", "logging"][..],
        ),
        (
            "upstream",
            &["catalogue", "settings", "secret", "sync", "text", "logging"][..],
        ),
        // The state that outlives a call: below the pipeline, beside the Smartcar client.
        (
            "store",
            &["settings", "secret", "sync", "text", "logging"][..],
        ),
        (
            "tool",
            &[
                "catalogue",
                "settings",
                "secret",
                "sync",
                "text",
                "logging",
                "upstream",
                "store",
                "oauth",
            ][..],
        ),
        (
            "mcp",
            &[
                "catalogue",
                "settings",
                "secret",
                "sync",
                "text",
                "logging",
                "listen",
                "upstream",
                "store",
                "tool",
                "oauth",
            ][..],
        ),
    ]);
    let mut problems = Vec::new();
    for (file, text) in library_files() {
        let me = module_of(&file);
        if let Some(ok) = allowed.get(layer(&me)) {
            for m in imports(&file, &text) {
                let target = layer(&m);
                if target != layer(&me) && !ok.contains(&target) {
                    problems.push(format!("{file} imports {m}"));
                }
            }
        }
        let names_rmcp = text.lines().any(|l| {
            let code = l.split("//").next().unwrap_or("");
            code.contains("rmcp::") || code.trim_start().starts_with("use rmcp")
        });
        if names_rmcp && !(file.starts_with("src/mcp/") || file == "src/demo.rs") {
            problems.push(format!("{file} names rmcp"));
        }
        // A backend behind the store serves any front end; HTTP serving is the MCP layer's.
        let names_axum = text.lines().any(|l| {
            let code = l.split("//").next().unwrap_or("");
            code.contains("axum::") || code.contains("hyper::")
        });
        if names_axum && file.starts_with("src/store/") {
            problems.push(format!("{file} names axum or hyper"));
        }
    }
    assert!(
        problems.is_empty(),
        "layer rules broken:\n{}",
        problems.join("\n")
    );
}

#[test]
fn no_module_import_goes_round_in_a_circle() {
    // Files of one directory form a graph through `super::`/`crate::` paths; mod.rs files only
    // declare and re-export, so they are not nodes.
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // Top-level modules too, folded to their first segment.
    let mut top: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, text) in library_files() {
        if file.ends_with("/mod.rs") || file == "src/lib.rs" {
            continue;
        }
        let me = module_of(&file);
        let edges = imports(&file, &text);
        top.entry(layer(&me).to_string()).or_default().extend(
            edges
                .iter()
                .map(|e| layer(e).to_string())
                .filter(|e| e != layer(&me)),
        );
        let files = edges
            .into_iter()
            .filter(|m| m.contains("::") || !is_dir_module(m))
            .collect();
        graph.insert(me, files);
    }
    for g in [&graph, &top] {
        if let Some(cycle) = find_cycle(g) {
            panic!("import circle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn the_circle_finder_finds_circles() {
    let g = |edges: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
        }
        g
    };
    assert_eq!(find_cycle(&g(&[("a", "b"), ("b", "c")])), None);
    let c = find_cycle(&g(&[("a", "b"), ("b", "c"), ("c", "a")])).expect("a circle");
    assert_eq!(c.first(), c.last());
    assert_eq!(c.len(), 4);
    // And the real graph has edges to search: a vacuous graph would pass anything.
    let tool_call = library_files()
        .into_iter()
        .find(|(f, _)| f == "src/tool/call/mod.rs")
        .unwrap();
    let found = imports(&tool_call.0, &tool_call.1);
    assert!(
        found.contains("tool::arguments") && found.contains("upstream"),
        "{found:?}"
    );
}

fn is_dir_module(m: &str) -> bool {
    root()
        .join(format!("src/{}/mod.rs", m.replace("::", "/")))
        .exists()
}

fn find_cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| s == n) {
            let mut c = stack[i..].to_vec();
            c.push(n.to_string());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_string());
        for next in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(next, g, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for n in g.keys() {
        if let Some(c) = visit(n, g, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn the_repository_cites_no_path_of_a_developers_machine() {
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches", "templates", ".ci"] {
        for ext in ["rs", "md", "j2", "json", "yaml", "toml", "expected"] {
            files_under(&root().join(dir), ext, &mut files);
        }
    }
    for f in [
        "README.md",
        "CONTRIBUTING.md",
        "Cargo.toml",
        "build.rs",
        "tools.yaml",
        "signals.yaml",
    ] {
        files.push(root().join(f));
    }
    let forbidden = ["/work/", "/root/", "../shared/", "steering/"];
    let mut hits = Vec::new();
    for f in files {
        let name = relative(&f);
        if name == "tests/tidy.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            if forbidden.iter().any(|p| line.contains(p)) {
                hits.push(format!("{name}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        hits.is_empty(),
        "paths outside the repository:\n{}",
        hits.join("\n")
    );
}

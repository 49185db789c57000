//! The documentation's links hold: every link in README.md, CONTRIBUTING.md and docs/*.md to a
//! file of this repository names a file that exists, and every `#anchor` a heading of its page.
//! The README links into docs/ by absolute URL only, because packaging ships the README alone (npm,
//! the .mcpb bundle, release archives), where a relative link leads nowhere.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::codegen::docs::DOCS;

/// The repository's files as published; `DOCS` is its `docs/` folder.
fn published_root() -> &'static str {
    DOCS.strip_suffix("/docs").expect("DOCS ends in /docs")
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Markdown files whose links are checked.
fn documents() -> Vec<PathBuf> {
    let mut docs = vec![root().join("README.md"), root().join("CONTRIBUTING.md")];
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    docs.extend(pages);
    docs
}

/// Text outside fenced code blocks, line by line.
fn prose(text: &str) -> impl Iterator<Item = &str> {
    let mut fenced = false;
    text.lines().filter(move |l| {
        if l.trim_start().starts_with("```") {
            fenced = !fenced;
            return false;
        }
        !fenced
    })
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    prose(text)
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| slug(l.trim_start_matches('#')))
        .collect()
}

/// Every `[text](target)` (and image) target on a line.
fn links(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("](") {
        let after = &rest[i + 2..];
        let Some(end) = after.find(')') else { break };
        out.push(after[..end].to_string());
        rest = &after[end..];
    }
    out
}

/// Where a link leads inside the repository: the file and the anchor; `None` for other sites.
fn target(from: &Path, link: &str) -> Option<(PathBuf, Option<String>)> {
    let (path, anchor) = match link.split_once('#') {
        Some((p, a)) => (p, Some(a.to_string())),
        None => (link, None),
    };
    if let Some(inside) = path.strip_prefix(published_root()) {
        let inside = inside.trim_start_matches('/');
        let inside = inside.strip_prefix("blob/main/").unwrap_or(inside);
        return Some((root().join(inside), anchor));
    }
    if path.starts_with("http://") || path.starts_with("https://") || path.starts_with("mailto:") {
        return None;
    }
    let file = if path.is_empty() {
        from.to_path_buf()
    } else {
        from.parent().unwrap().join(path)
    };
    Some((file, anchor))
}

#[test]
fn every_link_into_the_repository_leads_somewhere() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).unwrap();
        let name = doc.strip_prefix(root()).unwrap().display().to_string();
        for line in prose(&text) {
            for link in links(line) {
                let Some((file, anchor)) = target(&doc, &link) else {
                    continue;
                };
                checked += 1;
                if name == "README.md" && !link.starts_with('#') && !link.starts_with("http") {
                    problems.push(format!(
                        "{name}: `{link}` is relative; the README ships alone, so link by URL"
                    ));
                    continue;
                }
                if !file.exists() {
                    problems.push(format!("{name}: `{link}` names no file of the repository"));
                    continue;
                }
                if let Some(a) = anchor.filter(|a| !a.is_empty()) {
                    let page = std::fs::read_to_string(&file).unwrap_or_default();
                    if !anchors(&page).contains(&a) {
                        problems.push(format!("{name}: `{link}`: no heading #{a} there"));
                    }
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
    assert!(
        checked > 20,
        "only {checked} links found: is the reader broken?"
    );
}

#[test]
fn the_readme_stays_a_first_screen() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines <= 400,
        "README.md is {lines} lines; move detail to docs/"
    );
    for page in [
        "signals",
        "hosting",
        "webhooks",
        "billing",
        "privacy",
        "performance",
    ] {
        assert!(
            readme.contains(&format!("{DOCS}/{page}.md")),
            "the README links docs/{page}.md"
        );
    }
}

#[test]
fn the_link_reader_reads_what_github_renders() {
    assert_eq!(
        slug("Security: hostile input and its bounds"),
        "security-hostile-input-and-its-bounds"
    );
    assert_eq!(slug("Toolset `connections`"), "toolset-connections");
    assert_eq!(slug("Views (MCP Apps)"), "views-mcp-apps");
    assert_eq!(links("a [b](c.md#d) and ![e](f.png)"), ["c.md#d", "f.png"]);
    let readme = root().join("README.md");
    let (file, anchor) = target(&readme, &format!("{DOCS}/hosting.md#logs")).unwrap();
    assert_eq!(file, root().join("docs/hosting.md"));
    assert_eq!(anchor.as_deref(), Some("logs"));
    assert!(target(&readme, "https://smartcar.com").is_none());
}

/// Every test docs/architecture.md names as holding an invariant exists: `module::name` is a
/// function of tests/module.rs (or tests/module/*.rs), `upstream::executor::tests::name` one of
/// src/upstream/executor.rs, and `heap::name` one of tests/heap.rs.
#[test]
fn the_architecture_page_names_only_tests_that_exist() {
    let page = std::fs::read_to_string(root().join("docs/architecture.md")).unwrap();
    let mut named = 0;
    let mut missing = Vec::new();
    for line in prose(&page).filter(|l| l.starts_with('|')) {
        let Some(held_by) = line.trim_end_matches('|').rsplit('|').next() else {
            continue;
        };
        for path in held_by.split('`').skip(1).step_by(2) {
            let parts: Vec<&str> = path.split("::").collect();
            let (Some(name), true) = (parts.last(), parts.len() >= 2) else {
                continue;
            };
            let files: Vec<PathBuf> = match parts[0] {
                "upstream" | "tool" | "mcp" => {
                    let module = parts[..parts.len() - 2].join("/");
                    vec![root().join(format!("src/{module}.rs"))]
                }
                first => {
                    let dir = root().join(format!("tests/{}", parts[..parts.len() - 1].join("/")));
                    let mut v = vec![
                        root().join(format!("tests/{first}.rs")),
                        dir.with_extension("rs"),
                    ];
                    if let Ok(entries) = std::fs::read_dir(root().join(format!("tests/{first}"))) {
                        v.extend(entries.map(|e| e.unwrap().path()));
                    }
                    v
                }
            };
            named += 1;
            let defined = files.iter().any(|f| {
                std::fs::read_to_string(f).is_ok_and(|t| t.contains(&format!("fn {name}(")))
            });
            if !defined {
                missing.push(path.to_string());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/architecture.md names tests that do not exist: {missing:?}"
    );
    assert!(
        named >= 30,
        "only {named} tests named: is the reader broken?"
    );
}

/// The configuration table is generated from the clap definitions; a flag without a help line
/// would reach it as an empty cell, so every row must say what its setting does.
#[test]
fn every_flag_has_a_line_that_says_what_it_does() {
    let table = smartcar_mcp::cli::configuration_table();
    let mut rows = 0;
    for row in table.lines().skip(2) {
        rows += 1;
        let what = row
            .trim_end_matches('|')
            .rsplit('|')
            .next()
            .unwrap_or("")
            .trim();
        assert!(!what.is_empty(), "no help line: {row}");
    }
    assert!(
        rows > 30,
        "only {rows} settings: is the table reader broken?"
    );
    let guide = std::fs::read_to_string(root().join("CONTRIBUTING.md")).unwrap();
    assert!(guide.contains("## Adding a setting") && guide.contains("cli::ENV_ONLY"));
}

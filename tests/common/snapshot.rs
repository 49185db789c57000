//! Generated files checked for freshness: rewritten locally (fail once, pass on the re-run),
//! only reported under `CI`, so a stale file can never pass in CI.

use std::path::Path;

/// What a maintainer runs to rewrite every generated file the tests check.
pub const REGENERATE: &str = "cargo test --test tests";

/// CI systems set `CI` (GitHub Actions, GitLab, Buildkite, ... use `true`); `CI=false` or an empty
/// value is treated as a local run so a developer can opt out.
pub fn in_ci() -> bool {
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
pub fn refresh(path: &str, expected: &str, ci: bool) -> Result<(), String> {
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

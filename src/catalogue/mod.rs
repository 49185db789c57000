//! The tool and signal catalogue: its model (`spec`, shared with the generator), the published
//! schemas (`schema`), the tables generated from tools.yaml and signals.yaml, and lookups.

mod generated;
pub mod schema;
pub mod spec;

pub use generated::*;
pub use spec::*;

use std::sync::LazyLock;

/// A tool's published schemas as JSON objects, the form rmcp (tools/list) and jsonschema
/// (validation) take.
pub struct Published {
    pub input: serde_json::Map<String, serde_json::Value>,
    pub output: serde_json::Map<String, serde_json::Value>,
}

/// Every tool's schemas, in `TOOLS` order: parsed once from the generated text, on first use,
/// so a process that only prints `--help` never pays for it.
pub static SCHEMAS: LazyLock<Vec<Published>> = LazyLock::new(|| {
    let object = |text: &str| match serde_json::from_str(text) {
        Ok(serde_json::Value::Object(o)) => o,
        _ => unreachable!("build.rs emits object schemas"),
    };
    TOOLS
        .iter()
        .map(|t| Published {
            input: object(t.input_schema),
            output: object(t.output_schema),
        })
        .collect()
});

pub fn tool(name: &str) -> Option<&'static ToolSpec> {
    tool_index(name).map(|i| &TOOLS[i])
}

/// The signal for a code or any alias of it (aliases compared case-insensitively).
pub fn resolve_signal(code_or_alias: &str) -> Option<&'static Signal> {
    if let Some(i) = signal_index(code_or_alias) {
        return Some(&SIGNALS[i]);
    }
    let lower = code_or_alias.trim().to_ascii_lowercase();
    signal_index(&lower)
        .or_else(|| alias_index(&lower))
        .map(|i| &SIGNALS[i])
}

/// The longest string scored for "did you mean": longer than any code or alias (the longest is
/// under 60 characters), so no misspelling is lost, and scoring costs time in proportion to the
/// input's length against every code, which a megabyte turned into seconds of CPU.
pub const MAX_SIGNAL_CODE_CHARS: usize = 80;

/// Why `input` is not a signal code, for refusals (after the echoed input), and the codes it may
/// have meant: none for input too long to be a code, which is refused without being scored.
pub fn not_a_signal(input: &str) -> (String, Vec<&'static str>) {
    if input.chars().count() > MAX_SIGNAL_CODE_CHARS {
        return (
            format!(
                "is not a Smartcar signal code: codes are at most {MAX_SIGNAL_CODE_CHARS} characters (see smartcar://signals)"
            ),
            Vec::new(),
        );
    }
    let near = closest_signals(input);
    (
        format!(
            "is not a Smartcar signal code; did you mean {}?",
            near.join(", ")
        ),
        near,
    )
}

/// Up to three codes closest to something that is not a known code, for "did you mean"; none
/// for input longer than `MAX_SIGNAL_CODE_CHARS`.
pub fn closest_signals(input: &str) -> Vec<&'static str> {
    if input.chars().count() > MAX_SIGNAL_CODE_CHARS {
        return Vec::new();
    }
    let lower = input.trim().to_ascii_lowercase();
    if let Some(u) = UNMAPPED
        .iter()
        .find(|u| u.alias.eq_ignore_ascii_case(&lower))
    {
        return u.near.iter().take(3).copied().collect();
    }
    // Compare the dotted or spaced spelling as if it were hyphenated; every candidate is scored
    // against codes and aliases alike so `charge.istcharging` still lands on charge-ischarging.
    let normalized = lower.replace(['.', ' ', '_'], "-");
    static CANDIDATES: LazyLock<Vec<(String, &'static str)>> = LazyLock::new(|| {
        let mut v = Vec::new();
        for s in SIGNALS.iter() {
            v.push((s.code.to_string(), s.code));
            for a in s.aliases {
                v.push((a.to_ascii_lowercase().replace('.', "-"), s.code));
            }
        }
        v
    });
    let mut scored: Vec<(f64, &'static str)> = CANDIDATES
        .iter()
        .map(|(cand, code)| {
            let mut score = strsim::jaro_winkler(&normalized, cand);
            if !normalized.is_empty()
                && (cand.contains(&normalized) || normalized.contains(cand.as_str()))
            {
                score += 0.2;
            }
            (score, *code)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut out: Vec<&'static str> = Vec::new();
    for (_, code) in scored {
        if !out.contains(&code) {
            out.push(code);
        }
        if out.len() == 3 {
            break;
        }
    }
    out
}

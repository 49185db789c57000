//! The catalogue sources as the build reads them, for tests that run the generator themselves.

use crate::codegen::{self, Diagnostic, docs::Templates};

pub const TOOLS_YAML: &str = include_str!("../../tools.yaml");
pub const SIGNALS_YAML: &str = include_str!("../../signals.yaml");

pub fn templates() -> Templates {
    Templates {
        tools: include_str!("../../templates/tools.md.j2").into(),
        signals: include_str!("../../templates/signals.md.j2").into(),
    }
}

/// Diagnostics one per line, for panic messages.
pub fn show(problems: &[Diagnostic]) -> String {
    problems
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The real catalogue, generated.
pub fn generated() -> codegen::Generated {
    codegen::generate(TOOLS_YAML, SIGNALS_YAML, &templates())
        .unwrap_or_else(|e| panic!("{}", show(&e)))
}

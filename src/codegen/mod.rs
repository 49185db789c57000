//! The catalogue generator: tools.yaml + signals.yaml -> validated IR -> Rust source and Markdown.
//!
//! Pure (strings in, strings out), so build.rs and the tests drive the same code. Compiled into
//! build.rs and into tests with `#[path]`; its crates are build- and dev-dependencies only.

pub mod docs;
pub mod ir;
pub mod model;
pub mod rust;
pub mod schema;
pub mod validate;

pub use validate::Diagnostic;

/// Everything build.rs writes into OUT_DIR.
pub struct Generated {
    pub catalogue: ir::Catalogue,
    pub rust: String,
    pub tools_md: String,
    pub signals_md: String,
}

/// Runs the whole pipeline; any problem anywhere means no output at all, never a half server.
pub fn generate(
    tools_yaml: &str,
    signals_yaml: &str,
    templates: &docs::Templates,
) -> Result<Generated, Vec<Diagnostic>> {
    let catalogue = validate::check(tools_yaml, signals_yaml)?;
    let rust = rust::emit(&catalogue);
    let (tools_md, signals_md) = docs::render(&catalogue, templates).map_err(|e| {
        vec![Diagnostic {
            file: "templates",
            line: 1,
            column: 1,
            message: e,
        }]
    })?;
    Ok(Generated {
        catalogue,
        rust,
        tools_md,
        signals_md,
    })
}

//! The catalogue generator: tools.yaml + signals.yaml -> checked catalogue model -> Rust source and
//! Markdown.
//!
//! Pure (strings in, strings out), so build.rs and the tests drive the same code. Compiled into
//! build.rs and into the integration tests with `#[path]`; its crates are build- and
//! dev-dependencies only. The model it lowers into is the runtime's own (`catalogue::spec`, with
//! `catalogue::schema`): build.rs compiles those files in, and the tests use the library's, so a
//! generated tool can be handed straight to the runtime.

pub mod docs;
pub mod lower;
pub mod model;
pub mod rust;

#[cfg(not(test))]
#[path = "../catalogue/schema.rs"]
pub mod schema;
#[cfg(not(test))]
#[path = "../catalogue/spec.rs"]
pub mod spec;
#[cfg(test)]
pub use smartcar_mcp::catalogue::{schema, spec};

pub use lower::Diagnostic;

/// A result shape as tools.yaml declares it: what the runtime's shaper produces, as JSON Schema.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapeDef {
    pub shape: spec::Shape,
    pub description: String,
    pub schema: serde_json::Value,
}

/// The whole checked catalogue, in declaration order.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalogue {
    pub tools: Vec<spec::ToolSpec>,
    pub shapes: Vec<ShapeDef>,
    pub signals: Vec<spec::Signal>,
    pub unmapped: Vec<spec::Unmapped>,
}

/// Everything build.rs writes into OUT_DIR.
pub struct Generated {
    pub catalogue: Catalogue,
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
    let catalogue = lower::check(tools_yaml, signals_yaml)?;
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

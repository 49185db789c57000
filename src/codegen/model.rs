//! The YAML model of tools.yaml and signals.yaml: the only file that names the YAML crate.
//!
//! Scalars that a later check may complain about are `Spanned`, so every diagnostic can point at
//! `FILE:LINE:COL`. Enumerated keys (method, toolset, type, ...) stay strings here and are checked in
//! `validate`, so that one bad value does not hide every other problem behind a single parse error.

use serde::Deserialize;

/// A value with the line and column it was written at.
#[derive(Debug, Clone)]
pub struct Spanned<T> {
    pub value: T,
    pub line: u64,
    pub column: u64,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = serde_saphyr::Spanned::<T>::deserialize(d)?;
        Ok(Spanned {
            value: s.value,
            line: s.referenced.line(),
            column: s.referenced.column(),
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolsFile {
    pub tools: Vec<ToolDef>,
    #[serde(default)]
    pub shapes: std::collections::BTreeMap<String, ShapeDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShapeDef {
    pub description: Spanned<String>,
    pub schema: Spanned<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolDef {
    pub name: Spanned<String>,
    pub toolset: Spanned<String>,
    pub title: Spanned<String>,
    pub description: Spanned<String>,
    pub method: Spanned<String>,
    pub api: Spanned<String>,
    pub path: Spanned<String>,
    #[serde(default)]
    pub confirm: bool,
    #[serde(default)]
    pub asks: Option<Spanned<String>>,
    #[serde(default)]
    pub redact: Vec<Spanned<String>>,
    pub annotations: Spanned<AnnotationsDef>,
    pub output: Spanned<String>,
    #[serde(default)]
    pub raw: bool,
    #[serde(default)]
    pub search_hint: Option<Spanned<String>>,
    #[serde(default)]
    pub always_load: bool,
    #[serde(default)]
    pub says: Option<Spanned<String>>,
    #[serde(default)]
    pub confirm_signal: Option<Spanned<String>>,
    #[serde(default)]
    pub verify: Option<Spanned<VerifyDef>>,
    #[serde(default)]
    pub location_exempt: bool,
    pub scope: Spanned<String>,
    pub params: Vec<ParamDef>,
}

/// `verify: { code, at, expect }`: the confirming signal and what it reads after the command.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyDef {
    pub code: Spanned<String>,
    pub at: Spanned<String>,
    pub expect: Spanned<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnnotationsDef {
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
    pub open_world: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamDef {
    pub name: Spanned<String>,
    /// Required for a tool's parameters; a field of an object takes its parent's.
    #[serde(default, rename = "in")]
    pub location: Option<Spanned<String>>,
    #[serde(default)]
    pub wire: Option<Spanned<String>>,
    #[serde(rename = "type")]
    pub ty: Spanned<String>,
    pub required: bool,
    #[serde(default, rename = "enum")]
    pub enum_values: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub minimum: Option<Spanned<f64>>,
    #[serde(default)]
    pub maximum: Option<Spanned<f64>>,
    #[serde(default)]
    pub examples: Vec<Spanned<String>>,
    /// Required for a tool's parameters; a field's name and type may say enough.
    #[serde(default)]
    pub description: Option<Spanned<String>>,
    #[serde(default)]
    pub role: Option<Spanned<String>>,
    #[serde(default)]
    pub keys: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub fields: Vec<ParamDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalsFile {
    pub groups: Vec<GroupDef>,
    #[serde(default)]
    pub unmapped: Vec<UnmappedDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupDef {
    pub group: Spanned<String>,
    pub title: Spanned<String>,
    pub signals: Vec<SignalDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalDef {
    pub code: Spanned<String>,
    pub name: Spanned<String>,
    pub description: Spanned<String>,
    #[serde(default)]
    pub unit: Option<Spanned<String>>,
    pub kind: Spanned<String>,
    #[serde(default)]
    pub aliases: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnmappedDef {
    pub alias: Spanned<String>,
    pub near: Vec<Spanned<String>>,
}

/// A syntax or shape error, with where the YAML crate located it.
pub struct ParseError {
    pub line: u64,
    pub column: u64,
    pub message: String,
}

fn parse<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, ParseError> {
    serde_saphyr::from_str::<T>(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((1, 1));
        // The crate's Display draws a source snippet over several lines; the first line is the
        // message a one-line diagnostic needs.
        let full = e.to_string();
        let message = full
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("invalid YAML")
            .to_string();
        ParseError {
            line,
            column,
            message,
        }
    })
}

pub fn parse_tools(text: &str) -> Result<ToolsFile, ParseError> {
    parse(text)
}

pub fn parse_signals(text: &str) -> Result<SignalsFile, ParseError> {
    parse(text)
}

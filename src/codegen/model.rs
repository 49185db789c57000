//! The YAML model of tools.yaml and signals.yaml: the only file that names the YAML crate.
//!
//! Scalars that a later check may complain about are `Spanned`, so every diagnostic can point at
//! `FILE:LINE:COL`. Enumerated keys (method, toolset, type, ...) stay strings here and are checked in
//! `validate`, so that one bad value does not hide every other problem behind a single parse error.

use serde::Deserialize;

/// A value with the line and column it was written at.
#[derive(Debug, Clone)]
pub struct Sp<T> {
    pub value: T,
    pub line: u64,
    pub column: u64,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sp<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = serde_saphyr::Spanned::<T>::deserialize(d)?;
        Ok(Sp {
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
    pub description: Sp<String>,
    pub schema: Sp<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolDef {
    pub name: Sp<String>,
    pub toolset: Sp<String>,
    pub title: Sp<String>,
    pub description: Sp<String>,
    pub method: Sp<String>,
    pub api: Sp<String>,
    pub path: Sp<String>,
    #[serde(default)]
    pub confirm: bool,
    #[serde(default)]
    pub redact: Vec<Sp<String>>,
    pub annotations: Sp<AnnotationsDef>,
    pub output: Sp<String>,
    #[serde(default)]
    pub says: Option<Sp<String>>,
    #[serde(default)]
    pub confirm_signal: Option<Sp<String>>,
    pub params: Vec<ParamDef>,
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
    pub name: Sp<String>,
    #[serde(rename = "in")]
    pub location: Sp<String>,
    #[serde(default)]
    pub wire: Option<Sp<String>>,
    #[serde(rename = "type")]
    pub ty: Sp<String>,
    pub required: bool,
    #[serde(default, rename = "enum")]
    pub enum_values: Option<Sp<Vec<Sp<String>>>>,
    #[serde(default)]
    pub minimum: Option<Sp<f64>>,
    #[serde(default)]
    pub maximum: Option<Sp<f64>>,
    pub description: Sp<String>,
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
    pub group: Sp<String>,
    pub title: Sp<String>,
    pub signals: Vec<SignalDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalDef {
    pub code: Sp<String>,
    pub name: Sp<String>,
    pub description: Sp<String>,
    #[serde(default)]
    pub unit: Option<Sp<String>>,
    pub kind: Sp<String>,
    #[serde(default)]
    pub aliases: Vec<Sp<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnmappedDef {
    pub alias: Sp<String>,
    pub near: Vec<Sp<String>>,
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

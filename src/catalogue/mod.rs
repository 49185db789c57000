//! Runtime types of the tool and signal catalogue, the generated tables, and lookups over them.

mod generated;

pub use generated::*;

use std::sync::LazyLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Toolset {
    Connections,
    Signals,
    Commands,
    Management,
}

impl Toolset {
    pub const ALL: [Toolset; 4] = [
        Toolset::Connections,
        Toolset::Signals,
        Toolset::Commands,
        Toolset::Management,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Toolset::Connections => "connections",
            Toolset::Signals => "signals",
            Toolset::Commands => "commands",
            Toolset::Management => "management",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// Which base URL a tool's path is joined to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Vehicle,
    Management,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Path,
    Query,
    Header,
    Body,
    /// Read by the server itself (e.g. `raw`), never sent to Smartcar.
    Local,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    Id,
    String,
    Integer,
    Number,
    Boolean,
    SignalCode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Annotations {
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
    pub open_world: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    Literal(&'static str),
    /// Index into `ToolSpec::params`.
    Param(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    pub name: &'static str,
    /// Query key, header name, dotted JSON body path, or (for path parameters) the name itself.
    pub wire: &'static str,
    pub location: Location,
    pub ty: ParamType,
    pub required: bool,
    pub enum_values: &'static [&'static str],
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
    pub description: &'static str,
}

/// One tool: what tools/list publishes and how a call becomes an HTTP request.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    /// The description's first sentence, for one-line listings.
    pub summary: &'static str,
    pub toolset: Toolset,
    pub method: Method,
    pub api: Api,
    pub path: &'static str,
    pub segments: &'static [Segment],
    pub params: &'static [ParamSpec],
    pub annotations: Annotations,
    /// A human must confirm the call before it is sent.
    pub confirm: bool,
    /// Result keys removed before a result reaches the model (compared ignoring case, `_`, `-`).
    pub redact: &'static [&'static str],
    /// The published JSON Schema of the arguments, as JSON text.
    pub input_schema: &'static str,
    /// Name of the result shape (tools.yaml `shapes`).
    pub output: &'static str,
    /// The published JSON Schema of the results (shape, error, dry run, raw), as JSON text.
    pub output_schema: &'static str,
    /// Sentence a successful change opens with; `{param}` is replaced by the argument.
    pub says: Option<&'static str>,
    /// Signal that confirms a pending command took effect.
    pub confirm_signal: Option<&'static str>,
}

impl ToolSpec {
    /// Whether this tool only reads, so that re-sending it after a 5xx or a timeout is safe.
    pub fn is_read(&self) -> bool {
        self.annotations.read_only
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalKind {
    Boolean,
    Number,
    String,
    Object,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub code: &'static str,
    /// The code prefix, e.g. `tractionbattery`.
    pub group: &'static str,
    /// Smartcar's PascalCase group name, e.g. `TractionBattery`.
    pub group_title: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub unit: Option<&'static str>,
    pub kind: SignalKind,
    pub aliases: &'static [&'static str],
}

#[derive(Debug, Clone, PartialEq)]
pub struct Unmapped {
    pub alias: &'static str,
    pub near: &'static [&'static str],
}

/// Published output schemas, parsed once.
pub static OUTPUT_SCHEMAS: LazyLock<Vec<serde_json::Map<String, serde_json::Value>>> =
    LazyLock::new(|| {
        TOOLS
            .iter()
            .map(|t| match serde_json::from_str(t.output_schema) {
                Ok(serde_json::Value::Object(o)) => o,
                _ => unreachable!("build.rs emits object schemas"),
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

/// Up to three codes closest to something that is not a known code, for "did you mean".
pub fn closest_signals(input: &str) -> Vec<&'static str> {
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

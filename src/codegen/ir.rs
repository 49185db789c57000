//! The validated intermediate representation the emitters read: plain owned data, no YAML.

#[derive(Debug, Clone, PartialEq)]
pub struct Catalogue {
    pub tools: Vec<Tool>,
    pub shapes: Vec<Shape>,
    pub groups: Vec<Group>,
    pub unmapped: Vec<Unmapped>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    pub toolset: String,
    pub title: String,
    pub description: String,
    pub method: String,
    pub api: String,
    /// The path template as written, e.g. `/vehicles/{vehicle_id}/signals`.
    pub path: String,
    pub segments: Vec<Segment>,
    pub confirm: bool,
    pub redact: Vec<String>,
    pub annotations: Annotations,
    /// Name of the result shape.
    pub output: String,
    /// Sentence a successful change opens with; `{param}` placeholders.
    pub says: Option<String>,
    /// Signal that confirms a pending command.
    pub confirm_signal: Option<String>,
    pub params: Vec<Param>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    pub name: String,
    pub description: String,
    pub schema: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    Literal(String),
    /// Index into `Tool::params`.
    Param(usize),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Annotations {
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
    pub open_world: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: String,
    pub location: Location,
    /// Wire name: the query key, header name, dotted body path, or the path placeholder.
    pub wire: String,
    pub ty: ParamType,
    pub required: bool,
    pub enum_values: Vec<String>,
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
    pub description: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Location {
    Path,
    Query,
    Header,
    Body,
    Local,
}

impl Location {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "path" => Self::Path,
            "query" => Self::Query,
            "header" => Self::Header,
            "body" => Self::Body,
            "local" => Self::Local,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Path => "path",
            Self::Query => "query",
            Self::Header => "header",
            Self::Body => "body",
            Self::Local => "local",
        }
    }
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

impl ParamType {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "id" => Self::Id,
            "string" => Self::String,
            "integer" => Self::Integer,
            "number" => Self::Number,
            "boolean" => Self::Boolean,
            "signal_code" => Self::SignalCode,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::String => "string",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::SignalCode => "signal_code",
        }
    }
    pub fn is_numeric(self) -> bool {
        matches!(self, Self::Integer | Self::Number)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub group: String,
    pub title: String,
    pub signals: Vec<Signal>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub code: String,
    pub name: String,
    pub description: String,
    pub unit: Option<String>,
    pub kind: String,
    pub aliases: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Unmapped {
    pub alias: String,
    pub near: Vec<String>,
}

pub const TOOLSETS: &[&str] = &["connections", "signals", "commands", "management"];
pub const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];
pub const APIS: &[&str] = &["vehicle", "management"];
pub const SIGNAL_KINDS: &[&str] = &["boolean", "number", "string", "object"];

impl Catalogue {
    pub fn signal_codes(&self) -> Vec<String> {
        self.groups
            .iter()
            .flat_map(|g| g.signals.iter().map(|s| s.code.clone()))
            .collect()
    }
}

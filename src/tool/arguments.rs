//! Argument checking before any request: aliases mapped, the published schema enforced (jsonschema,
//! compiled once per tool), whole floats made integers. What passes is the canonical form the
//! request is built from.

use std::sync::{LazyLock, OnceLock};

use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::{Map, Value};

use crate::catalogue::schema::{ID_MAX_CHARS, ID_RULE};
use crate::catalogue::{self, ParamSpec, ParamType, TOOLS, ToolSpec, tool_index};

/// Arguments larger than this are refused before parsing further: no tool needs more.
pub const MAX_ARGUMENT_BYTES: usize = 16 * 1024;

/// One slot per tool, compiled on first use: compiling all of them up front was most of the
/// server's cold start (benches/e2e.rs).
static VALIDATORS: LazyLock<Vec<OnceLock<jsonschema::Validator>>> =
    LazyLock::new(|| TOOLS.iter().map(|_| OnceLock::new()).collect());

fn compile(schema: &Value) -> jsonschema::Validator {
    jsonschema::options()
        .should_validate_formats(false)
        .build(schema)
        .expect("build.rs emits valid schemas")
}

fn validator(index: usize) -> &'static jsonschema::Validator {
    // Its own schema parsed from the generated text, not every tool's (`catalogue::SCHEMAS`).
    VALIDATORS[index].get_or_init(|| {
        let schema = serde_json::from_str(TOOLS[index].input_schema);
        compile(&schema.expect("build.rs emits valid JSON"))
    })
}

/// Compiles the validators of these tools now (the caller may do it off the serving path).
pub fn warm_up(tools: &[usize]) {
    for i in tools {
        validator(*i);
    }
}

/// A bound as a person writes it: 90, not 90.0.
fn number(v: &Value) -> String {
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        _ => v.to_string(),
    }
}

fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}...", s.chars().take(57).collect::<String>())
    } else {
        s
    }
}

fn type_word(kind: &TypeKind) -> String {
    let one = |t: &jsonschema::JsonType| match format!("{t}").as_str() {
        "integer" => "a whole number".to_string(),
        "number" => "a number".to_string(),
        "string" => "a string".to_string(),
        "boolean" => "true or false".to_string(),
        "object" => "an object".to_string(),
        other => other.to_string(),
    };
    match kind {
        TypeKind::Single(t) => one(t),
        TypeKind::Multiple(ts) => ts.iter().map(|t| one(&t)).collect::<Vec<_>>().join(" or "),
    }
}

fn is_id(spec: &ToolSpec, param: &str) -> bool {
    spec.params
        .iter()
        .any(|p| p.name == param && p.ty == ParamType::Id)
}

/// The parameter or field at this instance path (`days/monday/startTime`), if the spec has one.
fn member<'a>(spec: &'a ToolSpec, path: &str) -> Option<&'a ParamSpec> {
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    let first = segments.next()?;
    let mut at = spec.params.iter().find(|p| p.name == first)?;
    let mut keyed = !at.keys.is_empty();
    for s in segments {
        if keyed {
            keyed = false;
            continue;
        }
        at = at.fields.iter().find(|f| f.name == s)?;
        keyed = !at.keys.is_empty();
    }
    Some(at)
}

fn names(members: &[ParamSpec]) -> String {
    members
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A schema violation in words a model can act on, naming the parameter and the rule.
fn describe(spec: &ToolSpec, e: &jsonschema::ValidationError<'_>) -> String {
    let path = e.instance_path().to_string();
    // A field is named by its whole path, `days.monday.startTime`.
    let param = path.trim_start_matches('/').replace('/', ".");
    let param = param.as_str();
    let got = show(e.instance());
    match e.kind() {
        ValidationErrorKind::Required { property } if !param.is_empty() => {
            format!("`{param}.{}` is required", property.as_str().unwrap_or(""))
        }
        ValidationErrorKind::Required { property } => {
            format!("`{}` is required", property.as_str().unwrap_or(""))
        }
        ValidationErrorKind::PropertyNames { error } => {
            let keys = member(spec, &path)
                .map(|m| m.keys.join(", "))
                .unwrap_or_default();
            format!(
                "`{param}` keys must be among {keys} (got {})",
                show(error.instance())
            )
        }
        ValidationErrorKind::MinProperties { .. } => {
            let keys = member(spec, &path)
                .map(|m| m.keys.join(", "))
                .unwrap_or_default();
            format!("`{param}` must have at least one of {keys}")
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let takes = if spec.params.is_empty() {
                "this tool takes no arguments".to_string()
            } else {
                format!("this tool takes: {}", names(spec.params))
            };
            format!(
                "unknown argument{} {} ({takes})",
                if unexpected.len() > 1 { "s" } else { "" },
                unexpected
                    .iter()
                    .map(|u| format!("`{u}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        ValidationErrorKind::Type { kind } if param.is_empty() => {
            format!("arguments must be {} (got {got})", type_word(kind))
        }
        ValidationErrorKind::Type { kind } => {
            format!("`{param}` must be {} (got {got})", type_word(kind))
        }
        ValidationErrorKind::Minimum { limit } => {
            format!("`{param}` must be at least {} (got {got})", number(limit))
        }
        ValidationErrorKind::Maximum { limit } => {
            format!("`{param}` must be at most {} (got {got})", number(limit))
        }
        ValidationErrorKind::Enum { options } => {
            let opts = options
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|o| o.as_str().unwrap_or("").to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            format!("`{param}` must be one of {opts} (got {got})")
        }
        ValidationErrorKind::Pattern { .. } if is_id(spec, param) => {
            let given = e.instance().as_str().unwrap_or("");
            let chars = given.chars().count();
            let why = match given {
                "" => "is empty".to_string(),
                _ if chars > ID_MAX_CHARS => format!("is {chars} characters long"),
                _ => format!("contains a character outside the rule (got {got})"),
            };
            format!("`{param}` is not a valid id: it {why}; {ID_RULE}")
        }
        ValidationErrorKind::MinLength { .. } => format!("`{param}` must not be empty"),
        ValidationErrorKind::MaxLength { limit } => format!(
            "`{param}` must be at most {limit} characters (got {})",
            e.instance()
                .as_str()
                .map(|s| s.chars().count())
                .unwrap_or(0)
        ),
        ValidationErrorKind::Pattern { pattern } if pattern == catalogue::schema::TIME_PATTERN => {
            format!("`{param}` must be a 24-hour time HH:MM, 00:00 to 23:59 (got {got})")
        }
        ValidationErrorKind::Pattern { pattern } if pattern == catalogue::schema::NAME_PATTERN => {
            format!(
                "`{param}` must be {} (got {got})",
                catalogue::schema::NAME_RULE
            )
        }
        _ => format!("`{param}`: {e}"),
    }
}

/// Why a call's arguments were refused; no request was made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", .problems.join("; "))]
pub struct ArgumentError {
    pub problems: Vec<String>,
    /// For an unknown signal code: the closest real codes.
    pub suggestions: Vec<String>,
}

impl ArgumentError {
    pub fn message(&self, tool: &str) -> String {
        format!(
            "Invalid arguments for {tool}: {}. Nothing was sent to Smartcar.",
            self.problems.join("; ")
        )
    }
}

/// Maps signal aliases to codes, or refuses an unknown code with the closest ones.
fn resolve_signal_codes(
    spec: &ToolSpec,
    args: &mut Map<String, Value>,
) -> Result<(), ArgumentError> {
    for p in spec.params.iter().filter(|p| p.ty == ParamType::SignalCode) {
        let Some(Value::String(given)) = args.get(p.name) else {
            continue;
        };
        match catalogue::resolve_signal(given) {
            Some(sig) => {
                args.insert(p.name.to_string(), Value::String(sig.code.to_string()));
            }
            None => {
                let (why, near) = catalogue::not_a_signal(given);
                return Err(ArgumentError {
                    problems: vec![format!(
                        "`{}` {} {why}",
                        p.name,
                        show(&Value::String(given.clone())),
                    )],
                    suggestions: near.iter().map(|s| s.to_string()).collect(),
                });
            }
        }
    }
    Ok(())
}

/// The part of the id rule the published schema leaves out: `.` and `..` match its pattern but
/// would address the parent path.
fn dot_ids<'a>(spec: &'a ToolSpec, args: &'a Value) -> impl Iterator<Item = String> + 'a {
    spec.params
        .iter()
        .filter(|p| p.ty == ParamType::Id)
        .filter_map(move |p| match args.get(p.name) {
            Some(Value::String(v)) if v == "." || v == ".." => Some(format!(
                "`{}` is not a valid id: it is {}; {ID_RULE}",
                p.name,
                show(&Value::String(v.clone()))
            )),
            _ => None,
        })
}

/// Turns 80.0 into 80 for integer parameters: JSON Schema calls it an integer, serde would not.
fn normalize_integers(spec: &ToolSpec, args: &mut Map<String, Value>) {
    for p in spec.params.iter().filter(|p| p.ty == ParamType::Integer) {
        if let Some(Value::Number(n)) = args.get(p.name)
            && n.as_i64().is_none()
            && let Some(f) = n.as_f64()
            && f.fract() == 0.0
            && f.abs() < 9.0e15
        {
            args.insert(p.name.to_string(), Value::from(f as i64));
        }
    }
}

/// Checks a call's arguments and returns their canonical form, or every problem found.
pub fn check(
    spec: &'static ToolSpec,
    raw: Option<&Map<String, Value>>,
) -> Result<Map<String, Value>, ArgumentError> {
    let mut args = raw.cloned().unwrap_or_default();
    let size = serde_json::to_vec(&args)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_ARGUMENT_BYTES {
        return Err(ArgumentError {
            problems: vec![format!(
                "arguments are {size} bytes, more than the {MAX_ARGUMENT_BYTES} bytes any tool accepts"
            )],
            suggestions: vec![],
        });
    }
    resolve_signal_codes(spec, &mut args)?;
    let instance = Value::Object(args);
    // A spec outside the compiled table (the generator's own tests) gets a validator of its own.
    let fresh;
    let validator = match tool_index(spec.name).filter(|i| std::ptr::eq(&TOOLS[*i], spec)) {
        Some(i) => validator(i),
        None => {
            fresh = compile(&serde_json::from_str(spec.input_schema).unwrap_or(Value::Null));
            &fresh
        }
    };
    let mut problems: Vec<String> = Vec::new();
    for problem in validator
        .iter_errors(&instance)
        .map(|e| describe(spec, &e))
        .chain(dot_ids(spec, &instance))
    {
        if !problems.contains(&problem) {
            problems.push(problem);
        }
    }
    if !problems.is_empty() {
        return Err(ArgumentError {
            problems,
            suggestions: vec![],
        });
    }
    let Value::Object(mut args) = instance else {
        unreachable!("built from a map")
    };
    normalize_integers(spec, &mut args);
    Ok(args)
}

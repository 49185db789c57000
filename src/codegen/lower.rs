//! Checks the parsed catalogue and lowers it to the catalogue model (`catalogue::spec`), collecting
//! every problem instead of stopping at the first, so a maintainer fixes a broken YAML in one round.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::model::{self, Spanned};
use super::schema;
use super::spec::*;
use super::{Catalogue, ShapeDef};

/// Text for the model's `&'static` fields: build.rs is a short-lived program, so what it parsed
/// may live until it exits.
fn leak(s: impl Into<String>) -> &'static str {
    Box::leak(s.into().into_boxed_str())
}

fn leak_all<T>(v: Vec<T>) -> &'static [T] {
    Box::leak(v.into_boxed_slice())
}

/// One problem, printed as `FILE:LINE:COL: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: &'static str,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

struct Sink {
    file: &'static str,
    out: Vec<Diagnostic>,
}

impl Sink {
    fn at<T>(&mut self, at: &Spanned<T>, message: String) {
        self.out.push(Diagnostic {
            file: self.file,
            line: at.line,
            column: at.column,
            message,
        });
    }
}

/// MCP tool names (SEP-986): 1 to 128 characters of letters, digits, `_`, `-` and `.`.
fn valid_tool_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Parses and checks both files; either the whole catalogue or every problem found.
pub fn check(tools_yaml: &str, signals_yaml: &str) -> Result<Catalogue, Vec<Diagnostic>> {
    let mut problems = Vec::new();
    let tools = model::parse_tools(tools_yaml).map_err(|e| Diagnostic {
        file: "tools.yaml",
        line: e.line,
        column: e.column,
        message: e.message,
    });
    let signals = model::parse_signals(signals_yaml).map_err(|e| Diagnostic {
        file: "signals.yaml",
        line: e.line,
        column: e.column,
        message: e.message,
    });
    let (tools, signals) = match (tools, signals) {
        (Ok(t), Ok(s)) => (t, s),
        (t, s) => {
            problems.extend(t.err());
            problems.extend(s.err());
            return Err(problems);
        }
    };
    let mut sink = Sink {
        file: "signals.yaml",
        out: Vec::new(),
    };
    let (signals, unmapped) = lower_signals(&signals, &mut sink);
    problems.append(&mut sink.out);
    let mut sink = Sink {
        file: "tools.yaml",
        out: Vec::new(),
    };
    let codes: BTreeSet<String> = signals.iter().map(|s| s.code.to_string()).collect();
    let shapes = lower_shapes(&tools, &mut sink);
    let mut specs = lower_tools(&tools, &codes, &mut sink);
    problems.append(&mut sink.out);
    if problems.is_empty() {
        for t in &mut specs {
            let shape = shapes
                .iter()
                .find(|s| s.shape == t.output)
                .expect("checked: every output is a declared shape");
            t.input_schema = leak(schema::input_schema(t).to_string());
            t.output_schema = leak(schema::output_schema(t, &shape.schema).to_string());
        }
        Ok(Catalogue {
            tools: specs,
            shapes,
            signals,
            unmapped,
        })
    } else {
        problems.sort_by(|a, b| (a.file, a.line, a.column).cmp(&(b.file, b.line, b.column)));
        Err(problems)
    }
}

fn lower_signals(file: &model::SignalsFile, sink: &mut Sink) -> (Vec<Signal>, Vec<Unmapped>) {
    let mut codes: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut aliases: BTreeMap<String, String> = BTreeMap::new();
    let mut signals = Vec::new();
    let mut group_names = BTreeSet::new();
    for g in &file.groups {
        if !group_names.insert(g.group.value.clone()) {
            sink.at(
                &g.group,
                format!("group `{}`: declared twice", g.group.value),
            );
        }
        if g.signals.is_empty() {
            sink.at(
                &g.group,
                format!("group `{}`: has no signals", g.group.value),
            );
        }
        for s in &g.signals {
            let code = &s.code.value;
            let ctx = format!("signal `{code}`");
            let prefix = format!("{}-", g.group.value);
            let rest = code.strip_prefix(&prefix);
            if rest.is_none_or(|r| {
                r.is_empty()
                    || !r
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            }) {
                sink.at(
                    &s.code,
                    format!(
                        "{ctx}: a code must be `{prefix}NAME` with NAME in lowercase letters and digits"
                    ),
                );
            }
            if let Some((l, c)) = codes.insert(code.clone(), (s.code.line, s.code.column)) {
                sink.at(
                    &s.code,
                    format!("{ctx}: duplicate code (first declared at line {l}, column {c})"),
                );
            }
            let kind = SignalKind::parse(&s.kind.value);
            if kind.is_none() {
                sink.at(
                    &s.kind,
                    format!(
                        "{ctx}: unknown kind `{}` (expected one of {})",
                        s.kind.value,
                        SignalKind::words()
                    ),
                );
            }
            if s.description.value.trim().is_empty() {
                sink.at(&s.description, format!("{ctx}: description is empty"));
            }
            for a in &s.aliases {
                if a.value.is_empty() || a.value.contains(char::is_whitespace) {
                    sink.at(
                        a,
                        format!("{ctx}: alias `{}` must be a non-empty word", a.value),
                    );
                }
                if let Some(other) = aliases.insert(a.value.clone(), code.clone()) {
                    sink.at(
                        a,
                        format!(
                            "{ctx}: alias `{}` is already an alias of `{other}`",
                            a.value
                        ),
                    );
                }
            }
            signals.push(Signal {
                code: leak(code.as_str()),
                group: leak(g.group.value.as_str()),
                group_title: leak(g.title.value.as_str()),
                name: leak(s.name.value.as_str()),
                description: leak(s.description.value.trim()),
                unit: s.unit.as_ref().map(|u| leak(u.value.as_str())),
                kind: kind.unwrap_or(SignalKind::String),
                aliases: leak_all(s.aliases.iter().map(|a| leak(a.value.as_str())).collect()),
            });
        }
    }
    // An alias spelled like a real code would make a code mean two things.
    for g in &file.groups {
        for s in &g.signals {
            for a in &s.aliases {
                if codes.contains_key(&a.value) {
                    sink.at(
                        a,
                        format!(
                            "signal `{}`: alias `{}` clashes with the signal code `{}`",
                            s.code.value, a.value, a.value
                        ),
                    );
                }
            }
        }
    }
    let mut unmapped = Vec::new();
    for u in &file.unmapped {
        if let Some(code) = aliases.get(&u.alias.value) {
            sink.at(
                &u.alias,
                format!("unmapped `{}`: is an alias of `{code}`", u.alias.value),
            );
        }
        if codes.contains_key(&u.alias.value) {
            sink.at(
                &u.alias,
                format!("unmapped `{}`: is a signal code", u.alias.value),
            );
        }
        if u.near.is_empty() {
            sink.at(
                &u.alias,
                format!("unmapped `{}`: `near` is empty", u.alias.value),
            );
        }
        for n in &u.near {
            if !codes.contains_key(&n.value) {
                sink.at(
                    n,
                    format!(
                        "unmapped `{}`: near code `{}` is not a signal code",
                        u.alias.value, n.value
                    ),
                );
            }
        }
        unmapped.push(Unmapped {
            alias: leak(u.alias.value.as_str()),
            near: leak_all(u.near.iter().map(|n| leak(n.value.as_str())).collect()),
        });
    }
    (signals, unmapped)
}

fn lower_shapes(file: &model::ToolsFile, sink: &mut Sink) -> Vec<ShapeDef> {
    let mut out = Vec::new();
    for (name, def) in &file.shapes {
        let ctx = format!("shape `{name}`");
        let shape = Shape::parse(name);
        if shape.is_none() {
            sink.at(
                &def.description,
                format!(
                    "{ctx}: the runtime implements no such shape (it implements {})",
                    Shape::words()
                ),
            );
        }
        let schema = &def.schema.value;
        if schema.get("type").and_then(|t| t.as_str()) != Some("object") {
            sink.at(&def.schema, format!("{ctx}: schema must be `type: object`"));
        }
        if !file.tools.iter().any(|t| &t.output.value == name) {
            sink.at(&def.description, format!("{ctx}: no tool uses it"));
        }
        let Some(shape) = shape else { continue };
        out.push(ShapeDef {
            shape,
            description: def.description.value.trim().to_string(),
            schema: schema.clone(),
        });
    }
    out
}

fn lower_tools(
    file: &model::ToolsFile,
    codes: &BTreeSet<String>,
    sink: &mut Sink,
) -> Vec<ToolSpec> {
    let mut names: BTreeMap<String, u64> = BTreeMap::new();
    if file.tools.is_empty() {
        sink.out.push(Diagnostic {
            file: sink.file,
            line: 1,
            column: 1,
            message: "no tools declared".into(),
        });
    }
    file.tools
        .iter()
        .map(|t| lower_tool(t, file, codes, &mut names, sink))
        .collect()
}

/// One tool: each check below looks at one aspect, reports into `sink` and returns its piece.
fn lower_tool(
    t: &model::ToolDef,
    file: &model::ToolsFile,
    codes: &BTreeSet<String>,
    names: &mut BTreeMap<String, u64>,
    sink: &mut Sink,
) -> ToolSpec {
    let name = &t.name.value;
    let ctx = format!("tool `{name}`");
    check_tool_name(t, names, &ctx, sink);
    let (toolset, method, api) = tool_words(t, &ctx, sink);
    check_texts(t, &ctx, sink);
    check_annotations(t, &ctx, sink);
    let mut params = lower_params(t, codes, &ctx, sink);
    if t.raw {
        if !t.annotations.value.read_only {
            sink.at(
                &t.name,
                format!("{ctx}: `raw` is for read_only tools (their answer is a document)"),
            );
        }
        params.push(RAW_PARAM);
    }
    let segments = lower_path(t, &params, &ctx, sink);
    let output = tool_output(t, file, &ctx, sink);
    check_sentences(t, &params, &ctx, sink);
    check_roles(t, &params, &segments, &ctx, sink);
    let (confirm_signal, verify) = tool_verify(t, file, &params, codes, &ctx, sink);
    let scope = Scope::parse(&t.scope.value);
    if scope.is_none() {
        sink.at(
            &t.scope,
            format!(
                "{ctx}: scope `{}` is not one of {}",
                t.scope.value,
                Scope::words()
            ),
        );
    }
    let a = &t.annotations.value;
    ToolSpec {
        name: leak(name.as_str()),
        toolset: toolset.unwrap_or(Toolset::Connections),
        title: leak(t.title.value.trim()),
        description: leak(t.description.value.trim()),
        summary: leak(super::docs::summary(t.description.value.trim())),
        method: method.unwrap_or(Method::Get),
        api: api.unwrap_or(Api::Vehicle),
        path: leak(t.path.value.as_str()),
        segments: leak_all(segments),
        confirm: t.confirm,
        asks: t.asks.as_ref().map(|s| leak(s.value.as_str())),
        output: output.unwrap_or(Shape::Signal),
        raw: t.raw,
        says: t.says.as_ref().map(|s| leak(s.value.as_str())),
        confirm_signal,
        verify,
        location_exempt: t.location_exempt,
        scope: scope.unwrap_or(Scope::AppAdmin),
        search_hint: t.search_hint.as_ref().map(|s| leak(s.value.trim())),
        always_load: t.always_load,
        redact: leak_all(t.redact.iter().map(|r| leak(r.value.as_str())).collect()),
        // Filled in once the whole catalogue is known to be sound (`check`).
        input_schema: "",
        output_schema: "",
        annotations: Annotations {
            read_only: a.read_only,
            destructive: a.destructive,
            idempotent: a.idempotent,
            open_world: a.open_world,
        },
        params: leak_all(params),
    }
}

/// A valid name, not taken by an earlier tool.
fn check_tool_name(
    t: &model::ToolDef,
    names: &mut BTreeMap<String, u64>,
    ctx: &str,
    sink: &mut Sink,
) {
    if !valid_tool_name(&t.name.value) {
        sink.at(
            &t.name,
            format!("{ctx}: a tool name is 1 to 128 characters of A-Z a-z 0-9 _ - ."),
        );
    }
    if let Some(first) = names.insert(t.name.value.clone(), t.name.line) {
        sink.at(
            &t.name,
            format!("{ctx}: duplicate tool name (first declared at line {first})"),
        );
    }
}

/// The toolset, method and API, each one of its known words.
fn tool_words(
    t: &model::ToolDef,
    ctx: &str,
    sink: &mut Sink,
) -> (Option<Toolset>, Option<Method>, Option<Api>) {
    let mut word = |field: &str, value: &Spanned<String>, known: bool, words: String| {
        if !known {
            sink.at(
                value,
                format!(
                    "{ctx}: unknown {field} `{}` (expected one of {words})",
                    value.value
                ),
            );
        }
    };
    let toolset = Toolset::parse(&t.toolset.value);
    word("toolset", &t.toolset, toolset.is_some(), Toolset::words());
    let method = Method::parse(&t.method.value);
    word("method", &t.method, method.is_some(), Method::words());
    let api = Api::parse(&t.api.value);
    word("api", &t.api, api.is_some(), Api::words());
    (toolset, method, api)
}

/// The title, the description, the search hint and the redact keys say something.
fn check_texts(t: &model::ToolDef, ctx: &str, sink: &mut Sink) {
    for (field, value) in [("title", &t.title), ("description", &t.description)] {
        if value.value.trim().is_empty() {
            sink.at(value, format!("{ctx}: {field} is empty"));
        }
    }
    for r in &t.redact {
        if r.value.trim().is_empty() {
            sink.at(r, format!("{ctx}: an empty redact key"));
        }
    }
    if let Some(hint) = &t.search_hint {
        let n = hint.value.trim().chars().count();
        if n == 0 || n > 120 {
            sink.at(
                hint,
                format!("{ctx}: `search_hint` is 1 to 120 characters (got {n})"),
            );
        }
    }
}

/// The annotations agree with each other, with the method and with `confirm`.
fn check_annotations(t: &model::ToolDef, ctx: &str, sink: &mut Sink) {
    let a = &t.annotations.value;
    if a.read_only && a.destructive {
        sink.at(
            &t.annotations,
            format!("{ctx}: a tool cannot be both read_only and destructive"),
        );
    }
    if a.read_only && t.method.value != "GET" {
        sink.at(
            &t.annotations,
            format!(
                "{ctx}: read_only is only for GET tools (method is {})",
                t.method.value
            ),
        );
    }
    if t.confirm && a.read_only {
        sink.at(
            &t.annotations,
            format!("{ctx}: confirm is for tools that change something, not read_only ones"),
        );
    }
}

/// The result shape: one the runtime implements and the file declares.
fn tool_output(
    t: &model::ToolDef,
    file: &model::ToolsFile,
    ctx: &str,
    sink: &mut Sink,
) -> Option<Shape> {
    let output = Shape::parse(&t.output.value);
    if output.is_none() {
        sink.at(
            &t.output,
            format!(
                "{ctx}: output shape `{}` is not one the runtime implements (it implements {})",
                t.output.value,
                Shape::words()
            ),
        );
    } else if !file.shapes.contains_key(&t.output.value) {
        let known: Vec<&str> = file.shapes.keys().map(String::as_str).collect();
        sink.at(
            &t.output,
            format!(
                "{ctx}: output shape `{}` is not declared under `shapes` (declared: {})",
                t.output.value,
                known.join(", ")
            ),
        );
    }
    output
}

/// Each role at most once, on an `id`; the vehicle a `/vehicles/{p}` path acts on and the
/// `sc-user-id` header say so, since the pipeline and shapes find them by role.
fn check_roles(
    t: &model::ToolDef,
    params: &[ParamSpec],
    segments: &[Segment],
    ctx: &str,
    sink: &mut Sink,
) {
    for role in Role::ALL {
        let with: Vec<usize> = (0..params.len())
            .filter(|i| params[*i].role == Some(*role))
            .collect();
        for i in with.iter().skip(1) {
            sink.at(
                &t.params[*i].name,
                format!(
                    "{ctx}: param `{}`: role `{}` is already `{}`'s",
                    params[*i].name,
                    role.as_str(),
                    params[with[0]].name
                ),
            );
        }
    }
    if let [Segment::Literal("vehicles"), Segment::Param(i), ..] = segments
        && params[*i].role != Some(Role::Vehicle)
    {
        sink.at(
            &t.params[*i].name,
            format!(
                "{ctx}: param `{}` is the vehicle in the path `{}`: give it `role: vehicle`",
                params[*i].name, t.path.value
            ),
        );
    }
    for (i, p) in params.iter().enumerate() {
        if p.location == Location::Header && p.wire == "sc-user-id" && p.role != Some(Role::User) {
            sink.at(
                &t.params[i].name,
                format!(
                    "{ctx}: param `{}` is the `sc-user-id` header: give it `role: user`",
                    p.name
                ),
            );
        }
    }
}

/// The confirming signal, from `confirm_signal` (not verifiable) or `verify.code`, and what
/// `--verify-commands` compares: a pointer into the compact `signal` shape, and `true`, `false`
/// or `{param}` (the value the call sent).
fn tool_verify(
    t: &model::ToolDef,
    file: &model::ToolsFile,
    params: &[ParamSpec],
    codes: &BTreeSet<String>,
    ctx: &str,
    sink: &mut Sink,
) -> (Option<&'static str>, Option<Verify>) {
    let code = match (&t.confirm_signal, &t.verify) {
        (Some(sig), Some(_)) => {
            sink.at(
                sig,
                format!("{ctx}: give the confirming signal once: `verify.code` names it"),
            );
            None
        }
        (Some(sig), None) => Some(sig),
        (None, Some(v)) => Some(&v.value.code),
        (None, None) => None,
    };
    if let Some(code) = code
        && !codes.contains(&code.value)
    {
        sink.at(
            code,
            format!(
                "{ctx}: confirming signal `{}` is not a signal code",
                code.value
            ),
        );
    }
    let confirm_signal = code.map(|c| leak(c.value.as_str()));
    let Some(v) = &t.verify else {
        return (confirm_signal, None);
    };
    if t.annotations.value.read_only {
        sink.at(v, format!("{ctx}: `verify` is for commands, not reads"));
    }
    let v = &v.value;
    let first =
        v.at.value
            .strip_prefix('/')
            .and_then(|p| p.split('/').next());
    let signal_keys = file
        .shapes
        .get(Shape::Signal.as_str())
        .and_then(|s| s.schema.value.get("properties")?.as_object());
    match (first, signal_keys) {
        (Some(key), Some(keys)) if keys.contains_key(key) => {}
        (Some(key), Some(keys)) => sink.at(
            &v.at,
            format!(
                "{ctx}: verify.at `{}`: the `signal` shape has no `{key}` (it has {})",
                v.at.value,
                keys.keys()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        (None, _) => sink.at(
            &v.at,
            format!(
                "{ctx}: verify.at `{}` must be a JSON pointer such as `/value`",
                v.at.value
            ),
        ),
        (_, None) => {}
    }
    let expect = match &v.expect.value {
        serde_json::Value::Bool(b) => Some(Expect::Bool(*b)),
        serde_json::Value::String(text) => {
            match text.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
                Some(name) if params.iter().any(|p| p.name == name) => {
                    Some(Expect::Argument(leak(name)))
                }
                Some(name) => {
                    sink.at(
                        &v.expect,
                        format!(
                            "{ctx}: verify.expect names `{{{name}}}`, which is not a parameter"
                        ),
                    );
                    None
                }
                None => None,
            }
        }
        _ => None,
    };
    let Some(expect) = expect else {
        if !matches!(&v.expect.value, serde_json::Value::String(t) if t.starts_with('{')) {
            sink.at(
                &v.expect,
                format!("{ctx}: verify.expect must be true, false or `{{param}}` (the value sent)"),
            );
        }
        return (confirm_signal, None);
    };
    let at = leak(v.at.value.as_str());
    (confirm_signal, Some(Verify { at, expect }))
}

/// `says` (for tools that change something) and `asks` (with `confirm: true`, and only then)
/// name only the tool's parameters.
fn check_sentences(t: &model::ToolDef, params: &[ParamSpec], ctx: &str, sink: &mut Sink) {
    if let Some(says) = &t.says {
        if t.annotations.value.read_only {
            sink.at(
                says,
                format!("{ctx}: `says` is for tools that change something"),
            );
        }
        check_placeholders("says", says, params, ctx, sink);
    }
    match (&t.asks, t.confirm) {
        (Some(asks), true) => check_placeholders("asks", asks, params, ctx, sink),
        (Some(asks), false) => sink.at(
            asks,
            format!("{ctx}: `asks` is the confirmation question, for `confirm: true` tools"),
        ),
        (None, true) => sink.at(
            &t.name,
            format!("{ctx}: `confirm: true` needs `asks`, the question the human answers"),
        ),
        (None, false) => {}
    }
}

fn check_placeholders(
    key: &str,
    text: &Spanned<String>,
    params: &[ParamSpec],
    ctx: &str,
    sink: &mut Sink,
) {
    for ph in placeholders(&text.value) {
        if !params.iter().any(|p| p.name == ph) {
            sink.at(
                text,
                format!("{ctx}: `{key}` names `{{{ph}}}`, which is not a parameter"),
            );
        }
    }
}

fn lower_params(
    t: &model::ToolDef,
    codes: &BTreeSet<String>,
    ctx: &str,
    sink: &mut Sink,
) -> Vec<ParamSpec> {
    let mut seen_wire = BTreeSet::new();
    let params = lower_members(&t.params, t, codes, ctx, None, sink);
    for (p, def) in params.iter().zip(&t.params) {
        let wire_at = def.wire.as_ref().unwrap_or(&def.name);
        if def
            .location
            .as_ref()
            .and_then(|l| Location::parse(&l.value))
            .is_some()
            && !seen_wire.insert((p.location, p.wire))
        {
            sink.at(
                wire_at,
                format!(
                    "{ctx}: param `{}`: {} `{}` is already used by another parameter",
                    p.name,
                    p.location.as_str(),
                    p.wire
                ),
            );
        }
    }
    params
}

/// A tool's parameters (`parent` None) or an object's fields (`parent` the object's location).
fn lower_members(
    defs: &[model::ParamDef],
    t: &model::ToolDef,
    codes: &BTreeSet<String>,
    ctx: &str,
    parent: Option<Location>,
    sink: &mut Sink,
) -> Vec<ParamSpec> {
    let mut out = Vec::new();
    let mut seen_names = BTreeSet::new();
    for p in defs {
        let pname = &p.name.value;
        let ctx = format!(
            "{ctx}: {} `{pname}`",
            if parent.is_some() { "field" } else { "param" }
        );
        if !seen_names.insert(pname.clone()) {
            sink.at(&p.name, format!("{ctx}: declared twice"));
        }
        out.push(lower_param(p, t, codes, &ctx, parent, sink));
    }
    out
}

/// One parameter (or, with `parent`, a field of an object parameter): each check below looks at
/// one aspect, reports into `sink` and returns its piece of the spec.
fn lower_param(
    p: &model::ParamDef,
    t: &model::ToolDef,
    codes: &BTreeSet<String>,
    ctx: &str,
    parent: Option<Location>,
    sink: &mut Sink,
) -> ParamSpec {
    check_param_name(p, ctx, sink);
    let location = param_location(p, parent, ctx, sink);
    let ty = param_type(p, ctx, sink);
    let wire = param_wire(p, parent, ctx, sink);
    if parent.is_none() {
        check_placement(p, t, location, ty, &wire, ctx, sink);
    }
    let is_object = ty == Some(ParamType::Object);
    check_object(p, location, is_object, ctx, sink);
    let keys = param_keys(p, is_object, ctx, sink);
    let fields = lower_members(
        &p.fields,
        t,
        codes,
        ctx,
        Some(location.unwrap_or(Location::Body)),
        sink,
    );
    let enum_values = param_enum(p, ty, ctx, sink);
    check_bounds(p, ty, ctx, sink);
    check_description(p, parent, ctx, sink);
    check_examples(p, ty, codes, ctx, sink);
    let role = param_role(p, parent, ty, ctx, sink);
    ParamSpec {
        name: leak(p.name.value.as_str()),
        location: location.unwrap_or(Location::Query),
        wire: leak(wire),
        ty: ty.unwrap_or(ParamType::String),
        required: p.required,
        enum_values: leak_all(enum_values.into_iter().map(leak).collect()),
        minimum: p.minimum.as_ref().map(|m| m.value),
        maximum: p.maximum.as_ref().map(|m| m.value),
        examples: leak_all(p.examples.iter().map(|e| leak(e.value.as_str())).collect()),
        description: leak(p.description.as_ref().map_or("", |d| d.value.trim())),
        role,
        keys: leak_all(keys.into_iter().map(leak).collect()),
        fields: leak_all(fields),
    }
}

/// A role is one of the known words, on a tool's own `id` parameter.
fn param_role(
    p: &model::ParamDef,
    parent: Option<Location>,
    ty: Option<ParamType>,
    ctx: &str,
    sink: &mut Sink,
) -> Option<Role> {
    let r = p.role.as_ref()?;
    let Some(role) = Role::parse(&r.value) else {
        sink.at(
            r,
            format!("{ctx}: role `{}` is not one of {}", r.value, Role::words()),
        );
        return None;
    };
    if parent.is_some() {
        sink.at(r, format!("{ctx}: a field of an object has no role"));
    } else if ty.is_some_and(|t| t != ParamType::Id) {
        sink.at(r, format!("{ctx}: role `{}` is for an `id`", r.value));
    }
    Some(role)
}

fn check_param_name(p: &model::ParamDef, ctx: &str, sink: &mut Sink) {
    let pname = &p.name.value;
    if pname.is_empty()
        || !pname.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        || pname.starts_with(|c: char| c.is_ascii_digit())
    {
        sink.at(
            &p.name,
            format!(
                "{ctx}: a parameter name is letters, digits and `_`, not starting with a digit"
            ),
        );
    }
}

/// Where the parameter is sent; a field is sent inside its object, at its parent's location.
fn param_location(
    p: &model::ParamDef,
    parent: Option<Location>,
    ctx: &str,
    sink: &mut Sink,
) -> Option<Location> {
    // `local` is the server's own switch, declared with the tool key `raw: true`.
    match (&p.location, parent) {
        (Some(l), None) => {
            let location = Location::parse(&l.value).filter(|l| *l != Location::Local);
            if location.is_none() {
                sink.at(
                    l,
                    format!(
                        "{ctx}: unknown location `{}` (expected one of path, query, header, body; the `raw` switch is the tool key `raw: true`)",
                        l.value
                    ),
                );
            }
            location
        }
        (None, None) => {
            sink.at(
                &p.name,
                format!("{ctx}: `in` is required (path, query, header or body)"),
            );
            None
        }
        (Some(l), Some(_)) => {
            sink.at(
                l,
                format!("{ctx}: a field takes no `in`: it is sent inside its object"),
            );
            parent
        }
        (None, Some(_)) => parent,
    }
}

fn param_type(p: &model::ParamDef, ctx: &str, sink: &mut Sink) -> Option<ParamType> {
    let ty = ParamType::parse(&p.ty.value);
    if ty.is_none() {
        sink.at(
            &p.ty,
            format!(
                "{ctx}: unknown type `{}` (expected one of {})",
                p.ty.value,
                ParamType::words()
            ),
        );
    }
    ty
}

/// The name on the wire: `wire` when given, else the name; a field's is always its name.
fn param_wire(p: &model::ParamDef, parent: Option<Location>, ctx: &str, sink: &mut Sink) -> String {
    if parent.is_some()
        && let Some(w) = &p.wire
    {
        sink.at(
            w,
            format!("{ctx}: a field takes no `wire`: its name is its key"),
        );
    }
    match (&p.wire, parent) {
        (Some(w), None) => w.value.clone(),
        _ => p.name.value.clone(),
    }
}

/// What each location allows of a top-level parameter: its type, its wire name, the method.
fn check_placement(
    p: &model::ParamDef,
    t: &model::ToolDef,
    location: Option<Location>,
    ty: Option<ParamType>,
    wire: &str,
    ctx: &str,
    sink: &mut Sink,
) {
    let wire_at = p.wire.as_ref().unwrap_or(&p.name);
    match location {
        Some(Location::Path) => {
            if p.wire.is_some() {
                sink.at(
                    wire_at,
                    format!("{ctx}: a path parameter takes no `wire` name"),
                );
            }
            if !p.required {
                sink.at(&p.name, format!("{ctx}: a path parameter must be required"));
            }
            if matches!(
                ty,
                Some(
                    ParamType::Integer | ParamType::Number | ParamType::Boolean | ParamType::Object
                )
            ) {
                sink.at(
                    &p.ty,
                    format!("{ctx}: a path parameter must be a string type"),
                );
            }
        }
        Some(Location::Header) if !valid_header_name(wire) => sink.at(
            wire_at,
            format!("{ctx}: header `{wire}` must be lowercase letters, digits and `-`"),
        ),
        Some(Location::Body)
            if wire
                .split('.')
                .any(|s| s.is_empty() || s.contains(char::is_whitespace)) =>
        {
            sink.at(
                wire_at,
                format!("{ctx}: body path `{wire}` has an empty or spaced segment"),
            )
        }
        Some(Location::Body) if t.method.value == "GET" || t.method.value == "DELETE" => sink.at(
            p.location.as_ref().unwrap_or(&p.name),
            format!("{ctx}: a {} request has no body", t.method.value),
        ),
        Some(Location::Query) if wire.is_empty() || wire.contains(char::is_whitespace) => sink.at(
            wire_at,
            format!("{ctx}: query key `{wire}` is empty or spaced"),
        ),
        _ => {}
    }
}

/// An object goes in the body and has fields; `fields` belong to objects only.
fn check_object(
    p: &model::ParamDef,
    location: Option<Location>,
    is_object: bool,
    ctx: &str,
    sink: &mut Sink,
) {
    if is_object && location.is_some_and(|l| l != Location::Body) {
        sink.at(
            &p.ty,
            format!("{ctx}: an object is sent in the body (`in: body`)"),
        );
    }
    if is_object && p.fields.is_empty() {
        sink.at(&p.ty, format!("{ctx}: an object needs `fields`"));
    }
    if !is_object && let Some(f) = p.fields.first() {
        sink.at(&f.name, format!("{ctx}: `fields` are only for type object"));
    }
}

/// The names an object keyed by name may have, each once.
fn param_keys(p: &model::ParamDef, is_object: bool, ctx: &str, sink: &mut Sink) -> Vec<String> {
    let mut keys = Vec::new();
    let Some(k) = &p.keys else {
        return keys;
    };
    if !is_object {
        sink.at(k, format!("{ctx}: `keys` are only for type object"));
    }
    if k.value.is_empty() {
        sink.at(k, format!("{ctx}: `keys` is empty"));
    }
    for key in &k.value {
        if keys.contains(&key.value) {
            sink.at(key, format!("{ctx}: key `{}` is listed twice", key.value));
        } else if key.value.is_empty() || key.value.contains(char::is_whitespace) {
            sink.at(
                key,
                format!("{ctx}: key `{}` is empty or spaced", key.value),
            );
        } else {
            keys.push(key.value.clone());
        }
    }
    keys
}

/// A string's allowed values, each once.
fn param_enum(
    p: &model::ParamDef,
    ty: Option<ParamType>,
    ctx: &str,
    sink: &mut Sink,
) -> Vec<String> {
    let mut values = Vec::new();
    let Some(e) = &p.enum_values else {
        return values;
    };
    if !matches!(ty, Some(ParamType::String)) {
        sink.at(e, format!("{ctx}: `enum` is only for type string"));
    }
    if e.value.is_empty() {
        sink.at(e, format!("{ctx}: `enum` is empty"));
    }
    for v in &e.value {
        if values.contains(&v.value) {
            sink.at(
                v,
                format!("{ctx}: enum value `{}` is listed twice", v.value),
            );
        } else {
            values.push(v.value.clone());
        }
    }
    values
}

/// `minimum` and `maximum`: numbers only, whole for integers, in order.
fn check_bounds(p: &model::ParamDef, ty: Option<ParamType>, ctx: &str, sink: &mut Sink) {
    for bound in [&p.minimum, &p.maximum].into_iter().flatten() {
        if !ty.is_some_and(ParamType::is_numeric) {
            sink.at(
                bound,
                format!("{ctx}: minimum/maximum are only for integer and number"),
            );
        } else if ty == Some(ParamType::Integer) && bound.value.fract() != 0.0 {
            sink.at(
                bound,
                format!(
                    "{ctx}: an integer bound must be whole (got {})",
                    bound.value
                ),
            );
        }
    }
    if let (Some(min), Some(max)) = (&p.minimum, &p.maximum)
        && min.value > max.value
    {
        sink.at(
            min,
            format!(
                "{ctx}: minimum {} is above maximum {}",
                min.value, max.value
            ),
        );
    }
}

/// A parameter says what it is for; a field may leave it to its object.
fn check_description(p: &model::ParamDef, parent: Option<Location>, ctx: &str, sink: &mut Sink) {
    match &p.description {
        Some(d) if d.value.trim().is_empty() => sink.at(d, format!("{ctx}: description is empty")),
        None if parent.is_none() => sink.at(&p.name, format!("{ctx}: `description` is required")),
        _ => {}
    }
}

/// A signal code's examples are signal codes.
fn check_examples(
    p: &model::ParamDef,
    ty: Option<ParamType>,
    codes: &BTreeSet<String>,
    ctx: &str,
    sink: &mut Sink,
) {
    for e in &p.examples {
        if ty == Some(ParamType::SignalCode) && !codes.contains(&e.value) {
            sink.at(
                e,
                format!("{ctx}: example `{}` is not a signal code", e.value),
            );
        }
    }
}

fn lower_path(
    t: &model::ToolDef,
    params: &[ParamSpec],
    ctx: &str,
    sink: &mut Sink,
) -> Vec<Segment> {
    let path = &t.path.value;
    let mut segments = Vec::new();
    if !path.starts_with('/') {
        sink.at(&t.path, format!("{ctx}: path `{path}` must start with `/`"));
    }
    let mut used = BTreeSet::new();
    for raw in path.split('/').filter(|s| !s.is_empty()) {
        if let Some(inner) = raw.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
            match params.iter().position(|p| p.name == inner) {
                Some(i) if params[i].location == Location::Path => {
                    used.insert(i);
                    segments.push(Segment::Param(i));
                }
                Some(_) => sink.at(
                    &t.path,
                    format!("{ctx}: path placeholder `{{{inner}}}` names a parameter that is not `in: path`"),
                ),
                None => sink.at(
                    &t.path,
                    format!("{ctx}: path placeholder `{{{inner}}}` is not a declared parameter"),
                ),
            }
        } else if raw.contains(['{', '}', '?', '#', ' ']) {
            sink.at(&t.path, format!("{ctx}: path segment `{raw}` is malformed"));
        } else {
            segments.push(Segment::Literal(leak(raw)));
        }
    }
    for (i, p) in params.iter().enumerate() {
        if p.location == Location::Path && !used.contains(&i) {
            let at = &t.params[i].name;
            sink.at(
                at,
                format!(
                    "{ctx}: param `{}`: path parameter is not used in path `{path}`",
                    p.name
                ),
            );
        }
    }
    segments
}

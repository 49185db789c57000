//! Renders the README's tool table and docs/signals.md's signal table from the catalogue with
//! minijinja (strict undefined).

use minijinja::{Environment, UndefinedBehavior, context};
use serde::Serialize;

/// Where the docs pages are published. Links from the README are absolute: packaging ships the
/// README alone (npm, the .mcpb bundle, release archives), where a relative link leads nowhere.
pub const DOCS: &str = "https://github.com/smartcar/smartcar-mcp/blob/main/docs";

use super::Catalogue;
use super::spec::{Annotations, Location, ParamSpec, ParamType, Toolset};

/// The template sources (templates/tools.md.j2, templates/signals.md.j2).
pub struct Templates {
    pub tools: String,
    pub signals: String,
}

#[derive(Serialize)]
struct ToolsetView {
    name: String,
    tools: Vec<ToolView>,
}

#[derive(Serialize)]
struct ToolView {
    name: String,
    title: String,
    summary: String,
    method: String,
    path: String,
    hints: String,
    params: Vec<ParamView>,
}

#[derive(Serialize)]
struct ParamView {
    name: String,
    ty: String,
    required: bool,
    rule: String,
    description: String,
}

#[derive(Serialize)]
struct GroupView {
    group: String,
    title: String,
    signals: Vec<SignalView>,
}

#[derive(Serialize)]
struct SignalView {
    code: String,
    description: String,
    unit: String,
    aliases: Vec<String>,
}

/// The first sentence of a description: the one-line summary tables and CLIs show.
pub fn summary(description: &str) -> String {
    let text = description.split_whitespace().collect::<Vec<_>>().join(" ");
    // A sentence ends at ". " before a capital letter, so "e.g. tractionbattery" does not end it.
    let bytes = text.as_bytes();
    for (i, _) in text.match_indices(". ") {
        if bytes.get(i + 2).is_some_and(u8::is_ascii_uppercase) {
            return text[..=i].to_string();
        }
    }
    text
}

fn num(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// The JSON type a parameter is written as (ids, codes and times are strings).
fn json_type(ty: ParamType) -> &'static str {
    match ty {
        ParamType::Id | ParamType::SignalCode | ParamType::Time | ParamType::Name => "string",
        other => other.as_str(),
    }
}

fn rule(p: &ParamSpec) -> String {
    let mut parts = Vec::new();
    match (p.minimum, p.maximum) {
        (Some(a), Some(b)) => parts.push(format!("{} to {}", num(a), num(b))),
        (Some(a), None) => parts.push(format!(">= {}", num(a))),
        (None, Some(b)) => parts.push(format!("<= {}", num(b))),
        (None, None) => {}
    }
    if !p.enum_values.is_empty() {
        let quoted: Vec<String> = p.enum_values.iter().map(|v| format!("`{v}`")).collect();
        parts.push(format!("one of {}", quoted.join(", ")));
    }
    if p.location == Location::Local {
        parts.push("read by the server, not sent to Smartcar".into());
    }
    match p.ty {
        ParamType::Id => parts.push("1-128 chars".into()),
        ParamType::SignalCode => parts.push(format!(
            "a [signal code]({DOCS}/signals.md), aliases accepted"
        )),
        ParamType::Time => parts.push("HH:MM, 24-hour".into()),
        ParamType::Name => parts.push("1-64 chars".into()),
        ParamType::Object => {
            let members: Vec<String> = p
                .fields
                .iter()
                .map(|f| {
                    let star = if f.required { "*" } else { "" };
                    match rule(f) {
                        r if r.is_empty() => format!("`{}`{star} ({})", f.name, json_type(f.ty)),
                        r => format!("`{}`{star} ({}, {r})", f.name, json_type(f.ty)),
                    }
                })
                .collect();
            let members = members.join(", ");
            if p.keys.is_empty() {
                parts.push(format!("with {members}"));
            } else {
                let keys: Vec<String> = p.keys.iter().map(|k| format!("`{k}`")).collect();
                parts.push(format!(
                    "keyed by any of {}, each with {members}",
                    keys.join(", ")
                ));
            }
        }
        _ => {}
    }
    parts.join("; ")
}

fn hints(a: &Annotations, confirm: bool) -> String {
    let mut h = Vec::new();
    if a.read_only {
        h.push("read-only");
    }
    if a.destructive {
        h.push("destructive");
    }
    if a.idempotent {
        h.push("idempotent");
    }
    if a.open_world {
        h.push("open-world");
    }
    if confirm {
        h.push("needs confirmation");
    }
    h.join(", ")
}

pub fn render(cat: &Catalogue, t: &Templates) -> Result<(String, String), String> {
    let toolsets: Vec<ToolsetView> = Toolset::ALL
        .iter()
        .map(|ts| ToolsetView {
            name: ts.as_str().to_string(),
            tools: cat
                .tools
                .iter()
                .filter(|tool| tool.toolset == *ts)
                .map(|tool| ToolView {
                    name: tool.name.to_string(),
                    title: tool.title.to_string(),
                    summary: md_cell(tool.summary),
                    method: tool.method.as_str().to_string(),
                    path: tool.path.to_string(),
                    hints: hints(&tool.annotations, tool.confirm),
                    params: tool
                        .params
                        .iter()
                        .map(|p| ParamView {
                            name: p.name.to_string(),
                            ty: json_type(p.ty).into(),
                            required: p.required,
                            rule: md_cell(&rule(p)),
                            description: md_cell(p.description),
                        })
                        .collect(),
                })
                .collect(),
        })
        .filter(|ts| !ts.tools.is_empty())
        .collect();
    let mut groups: Vec<GroupView> = Vec::new();
    for s in &cat.signals {
        if groups.last().is_none_or(|g| g.group != s.group) {
            groups.push(GroupView {
                group: s.group.to_string(),
                title: s.group_title.to_string(),
                signals: Vec::new(),
            });
        }
        let group = groups.last_mut().expect("pushed above");
        group.signals.push(SignalView {
            code: s.code.to_string(),
            description: md_cell(s.description),
            unit: s.unit.unwrap_or_default().to_string(),
            aliases: s.aliases.iter().map(|a| a.to_string()).collect(),
        });
    }
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.add_template("tools", &t.tools)
        .map_err(|e| format!("templates/tools.md.j2: {e}"))?;
    env.add_template("signals", &t.signals)
        .map_err(|e| format!("templates/signals.md.j2: {e}"))?;
    let tool_count = cat.tools.len();
    let signal_count = cat.signals.len();
    let tools_md = env
        .get_template("tools")
        .and_then(|tpl| tpl.render(context! { toolsets, tool_count }))
        .map_err(|e| format!("templates/tools.md.j2: {e}"))?;
    let signals_md = env
        .get_template("signals")
        .and_then(|tpl| tpl.render(context! { groups, signal_count }))
        .map_err(|e| format!("templates/signals.md.j2: {e}"))?;
    Ok((tools_md, signals_md))
}

//! Renders the README's tool and signal tables from the IR with minijinja (strict undefined).

use minijinja::{Environment, UndefinedBehavior, context};
use serde::Serialize;

use super::ir::{Catalogue, ParamType, TOOLSETS};

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

fn rule(p: &super::ir::Param) -> String {
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
    if p.location == super::ir::Location::Local {
        parts.push("read by the server, not sent to Smartcar".into());
    }
    match p.ty {
        ParamType::Id => parts.push("1-128 chars".into()),
        ParamType::SignalCode => parts.push("a [signal code](#signals), aliases accepted".into()),
        _ => {}
    }
    parts.join("; ")
}

pub fn hints(a: &super::ir::Annotations, confirm: bool) -> String {
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
    let toolsets: Vec<ToolsetView> = TOOLSETS
        .iter()
        .map(|ts| ToolsetView {
            name: ts.to_string(),
            tools: cat
                .tools
                .iter()
                .filter(|tool| tool.toolset == *ts)
                .map(|tool| ToolView {
                    name: tool.name.clone(),
                    title: tool.title.clone(),
                    summary: md_cell(&summary(&tool.description)),
                    method: tool.method.clone(),
                    path: tool.path.clone(),
                    hints: hints(&tool.annotations, tool.confirm),
                    params: tool
                        .params
                        .iter()
                        .map(|p| ParamView {
                            name: p.name.clone(),
                            ty: match p.ty {
                                ParamType::Id | ParamType::SignalCode => "string".into(),
                                other => other.as_str().into(),
                            },
                            required: p.required,
                            rule: md_cell(&rule(p)),
                            description: md_cell(&p.description),
                        })
                        .collect(),
                })
                .collect(),
        })
        .filter(|ts| !ts.tools.is_empty())
        .collect();
    let groups: Vec<GroupView> = cat
        .groups
        .iter()
        .map(|g| GroupView {
            group: g.group.clone(),
            title: g.title.clone(),
            signals: g
                .signals
                .iter()
                .map(|s| SignalView {
                    code: s.code.clone(),
                    description: md_cell(&s.description),
                    unit: s.unit.clone().unwrap_or_default(),
                    aliases: s.aliases.clone(),
                })
                .collect(),
        })
        .collect();
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.add_template("tools", &t.tools)
        .map_err(|e| format!("templates/tools.md.j2: {e}"))?;
    env.add_template("signals", &t.signals)
        .map_err(|e| format!("templates/signals.md.j2: {e}"))?;
    let tool_count = cat.tools.len();
    let signal_count: usize = cat.groups.iter().map(|g| g.signals.len()).sum();
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

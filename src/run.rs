//! The subcommands, one function each, so `main.rs` only parses, sets up logging and picks one.
//! Output goes to the writer `main` hands in (stdout); diagnostics to stderr.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use serde_json::{Map, Value};

use crate::catalogue::{SIGNALS, TOOLS, ToolSpec};
use crate::cli::Options;
use crate::mcp::{self, Shared};
use crate::secret::Secret;
use crate::settings::Settings;
use crate::simulator;
use crate::tool::{AppState, Confirm, Step, ToolError, Verdict, call, selection};

/// The tools these options serve, as indices into `TOOLS`.
pub fn enabled_tools(o: &Options) -> anyhow::Result<Vec<usize>> {
    Ok(selection::select(
        &o.toolsets,
        &o.tools,
        &o.exclude_tools,
        o.read_only,
    )?)
}

/// Settings from the options; with `--simulator`, pointed at a fresh in-process simulator.
async fn settings_for(o: &Options) -> anyhow::Result<(Settings, Option<simulator::Simulator>)> {
    let mut settings = o.settings();
    if !o.simulator {
        return Ok((settings, None));
    }
    let sim = simulator::Simulator::start(simulator::SimConfig::default()).await?;
    eprintln!(
        "smartcar-mcp: using the built-in Smartcar simulator at {} (any SMARTCAR_* URLs and credentials are ignored)",
        sim.api_url()
    );
    let up = &mut settings.upstream;
    up.auth_url = sim.auth_url();
    up.api_url = sim.api_url();
    up.management_api_url = sim.management_url();
    up.compatibility_api_url = sim.compatibility_url();
    up.client_id = Some("simulator-client".into());
    up.client_secret = Some(Secret::new("simulator-secret"));
    Ok((settings, Some(sim)))
}

/// `tools`: the served tools as a table, or their tools/list JSON.
pub fn tools(out: &mut impl Write, o: &Options, json: bool) -> anyhow::Result<()> {
    let enabled = enabled_tools(o)?;
    if json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&mcp::tools_json(&enabled))?
        )?;
        return Ok(());
    }
    for t in enabled.iter().map(|i| &TOOLS[*i]) {
        let a = t.annotations;
        let mut hints = Vec::new();
        if a.read_only {
            hints.push("read-only");
        }
        if a.destructive {
            hints.push("destructive");
        }
        if t.confirm {
            hints.push("confirm");
        }
        writeln!(
            out,
            "{:<28} {:<12} {:<24} {}",
            t.name,
            t.toolset.as_str(),
            hints.join(","),
            t.summary.trim_end_matches('.')
        )?;
    }
    Ok(())
}

/// `signals [GROUP]`: the signal codes with units and aliases.
pub fn signals(out: &mut impl Write, group: Option<&str>) -> anyhow::Result<()> {
    let groups: Vec<&str> = {
        let mut g: Vec<&str> = SIGNALS.iter().map(|s| s.group).collect();
        g.dedup();
        g
    };
    if let Some(g) = group
        && !groups.contains(&g)
    {
        anyhow::bail!("unknown signal group `{g}` (groups: {})", groups.join(", "));
    }
    for s in SIGNALS
        .iter()
        .filter(|s| group.is_none_or(|g| s.group == g))
    {
        let unit = s.unit.map(|u| format!(" [{u}]")).unwrap_or_default();
        writeln!(out, "{:<44} {}{unit}", s.code, s.description)?;
        if !s.aliases.is_empty() {
            writeln!(out, "{:<44}   aliases: {}", "", s.aliases.join(", "))?;
        }
    }
    Ok(())
}

/// Confirmation for the `call` command: a y/N question on the terminal; without a terminal
/// nobody can say yes, so the call is refused.
struct Terminal;

impl Confirm for Terminal {
    type Ask = std::convert::Infallible;

    async fn confirm(
        &self,
        _spec: &'static ToolSpec,
        question: &str,
        _args: &Map<String, Value>,
    ) -> Result<Verdict<Self::Ask>, ToolError> {
        let why = if !std::io::stdin().is_terminal() {
            "no terminal to ask on"
        } else if ask_on_terminal(question) {
            return Ok(Verdict::Go);
        } else {
            "the human answered no"
        };
        Err(ToolError::NotConfirmed {
            question: question.to_string(),
            why,
        })
    }
}

fn ask_on_terminal(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).is_ok()
        && matches!(line.trim(), "y" | "Y" | "yes" | "YES")
}

/// `call TOOL ARGS`: one call through the pipeline; the result is printed, exit 1 on a tool error.
pub async fn call(
    out: &mut impl Write,
    o: &Options,
    tool: &str,
    raw: &str,
) -> anyhow::Result<ExitCode> {
    let enabled = enabled_tools(o)?;
    if !enabled.iter().any(|i| TOOLS[*i].name == tool) {
        let names: Vec<&str> = enabled.iter().map(|i| TOOLS[*i].name).collect();
        anyhow::bail!("unknown tool `{tool}` (tools: {})", names.join(", "));
    }
    let args: Value =
        serde_json::from_str(raw).map_err(|e| anyhow::anyhow!("arguments are not JSON: {e}"))?;
    let Some(args) = args.as_object() else {
        anyhow::bail!("arguments must be a JSON object, like '{{\"vehicle_id\": \"...\"}}'");
    };
    let (settings, _sim) = settings_for(o).await?;
    let state = AppState::new(settings, &enabled)?;
    let spec = state.lookup(tool).expect("checked above");
    let Step::Done(result) = call::run(&state, spec, Some(args), &Terminal).await;
    // A refused confirmation is the operator's own answer, not a result to print.
    if result.error_type.as_deref() == Some("NOT_CONFIRMED") {
        anyhow::bail!(
            "{} (confirm on a terminal, or pass --confirm off)",
            result.lead.unwrap_or_default()
        );
    }
    if let Some(lead) = &result.lead {
        writeln!(out, "{lead}")?;
    }
    writeln!(out, "{}", serde_json::to_string_pretty(&result.structured)?)?;
    Ok(if result.is_error {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Serving MCP: over stdio, or over Streamable HTTP when `http` names an address.
pub async fn serve(
    o: &Options,
    http: Option<&str>,
    allowed_hosts: &[String],
) -> anyhow::Result<()> {
    let enabled = enabled_tools(o)?;
    let (settings, _sim) = settings_for(o).await?;
    let up = &settings.upstream;
    if (up.client_id.is_none() || up.client_secret.is_none()) && !settings.serving.dry_run {
        tracing::warn!(
            "SMARTCAR_CLIENT_ID or SMARTCAR_CLIENT_SECRET is not set: tools are listed, and each call will say what is missing"
        );
    }
    let shared = Shared::new(settings, &enabled)?;
    match http {
        Some(addr) => mcp::http::serve(shared, addr, allowed_hosts).await,
        None => mcp::serve_stdio(shared).await,
    }
}

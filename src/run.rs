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
use crate::store::{Location, RowFilter, Store};
use crate::tool::{AppState, Caller, Confirm, Step, ToolError, Verdict, call, selection};

/// The tools these options serve, as indices into `TOOLS`.
pub fn enabled_tools(o: &Options) -> anyhow::Result<Vec<usize>> {
    Ok(selection::select(
        &o.toolsets,
        &o.tools,
        &o.exclude_tools,
        o.read_only,
    )?)
}

const SIMULATOR_MANAGEMENT_TOKEN: &str = "simulator-management-token";

/// Settings from the options; with `--simulator`, pointed at a fresh in-process simulator.
async fn settings_for(o: &Options) -> anyhow::Result<(Settings, Option<simulator::Simulator>)> {
    o.store_location().map_err(anyhow::Error::msg)?;
    let mut settings = o.settings();
    if !o.simulator {
        return Ok((settings, None));
    }
    let sim = simulator::Simulator::start(simulator::SimConfig::default()).await?;
    crate::logging::banner(&format!(
        "using the built-in Smartcar simulator at {} (any SMARTCAR_* URLs and credentials are ignored)",
        sim.api_url()
    ));
    let up = &mut settings.upstream;
    up.auth_url = sim.auth_url();
    up.api_url = sim.api_url();
    up.management_api_url = sim.management_url();
    up.compatibility_api_url = sim.compatibility_url();
    up.client_id = Some("simulator-client".into());
    up.client_secret = Some(Secret::new("simulator-secret"));
    // The simulator signs the webhooks it pushes with this token, so the receiver accepts them.
    if settings.serving.management_token.is_none() {
        settings.serving.management_token = Some(Secret::new(SIMULATOR_MANAGEMENT_TOKEN));
    }
    Ok((settings, Some(sim)))
}

/// `tools`: the served tools as a table, their tools/list JSON, or their model-visible budget.
pub fn tools(out: &mut impl Write, o: &Options, json: bool, budget: bool) -> anyhow::Result<()> {
    let enabled = enabled_tools(o)?;
    if json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&mcp::tools_json(&enabled, o.location))?
        )?;
        return Ok(());
    }
    if budget {
        return tools_budget(out, &enabled, o);
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

/// `tools --budget`: per served tool the bytes a model reads on every request, then the total and
/// the average, against the limits the test suite holds the default tool set to.
fn tools_budget(out: &mut impl Write, enabled: &[usize], o: &Options) -> anyhow::Result<()> {
    use mcp::server::{MAX_AVERAGE_BYTES, MAX_TOOL_BYTES};
    let seen = mcp::model_visible(enabled, o.location);
    writeln!(out, "{:<28} {:<12} {:>6}", "tool", "toolset", "bytes")?;
    for ((name, json), i) in seen.iter().zip(enabled) {
        let over = if json.len() > MAX_TOOL_BYTES {
            "  over the per-tool limit"
        } else {
            ""
        };
        writeln!(
            out,
            "{name:<28} {:<12} {:>6}{over}",
            TOOLS[*i].toolset.as_str(),
            json.len()
        )?;
    }
    let total: usize = seen.iter().map(|(_, j)| j.len()).sum();
    let average = total.checked_div(seen.len()).unwrap_or(0);
    writeln!(
        out,
        "{} tools: {total} bytes, {average} bytes per tool on average",
        seen.len()
    )?;
    writeln!(
        out,
        "limits: {MAX_TOOL_BYTES} bytes per tool; {MAX_AVERAGE_BYTES} bytes on average for the default tool set (o200k token counts: docs/tools.md, Model-visible budget)"
    )?;
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
        if let Some(spec) = TOOLS.iter().find(|t| t.name == tool) {
            let set = spec.toolset.as_str();
            anyhow::bail!(
                "tool `{tool}` is not served with these settings: it is in toolset `{set}` (serve it with --toolsets {set}, --toolsets all or --tools {tool})"
            );
        }
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
    let caller = Caller {
        transport: "cli",
        ..Caller::default()
    };
    let Step::Done(result) = call::run(&state, spec, Some(args), &Terminal, &caller).await;
    // A refused confirmation is the operator's own answer, not a result to print.
    if result.error_type == Some(crate::tool::result::ErrorKind::NotConfirmed) {
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

/// The store `--store` (or `--audit-db`) names, for reading.
fn read_store(o: &Options) -> anyhow::Result<Store> {
    match o.store_location().map_err(anyhow::Error::msg)? {
        Location::Postgres(url) => Ok(Store::read(&Location::Postgres(url))?),
        _ => Ok(Store::read_sqlite(&audit_file(o)?)),
    }
}

fn audit_file(o: &Options) -> anyhow::Result<std::path::PathBuf> {
    o.audit_path().ok_or_else(|| {
        anyhow::anyhow!("the audit log is off (--audit-db off), so there is nothing to read")
    })
}

/// `audit`: the commands and deletions on record, oldest first.
pub async fn audit(
    out: &mut impl Write,
    o: &Options,
    only: &RowFilter<'_>,
    json: bool,
) -> anyhow::Result<()> {
    let store = read_store(o)?;
    let rows = store.rows(only).await?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(());
    }
    for r in rows {
        writeln!(
            out,
            "{} {:<26} vehicle={} user={} [{}] {} ({}){}",
            r.at,
            r.tool,
            r.vehicle_id.as_deref().unwrap_or("-"),
            r.user_id.as_deref().unwrap_or("-"),
            r.confirmation,
            r.status(),
            match &r.principal {
                Some(sub) => format!("{} sub={sub}", r.caller),
                None => r.caller.clone(),
            },
            r.request_id
                .as_deref()
                .map(|id| format!(" request {id}"))
                .unwrap_or_default()
        )?;
    }
    Ok(())
}

/// `usage`: upstream calls made and saved, per vehicle and tool, from the audit database.
pub async fn usage(out: &mut impl Write, o: &Options, json: bool) -> anyhow::Result<()> {
    let store = read_store(o)?;
    let totals = store.usage_totals().await?;
    let report = crate::tool::usage::report(&totals, true);
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<40} {:<28} {:>8} {:>9} {:>7} {:>6} {:>5}",
        "vehicle", "tool", "upstream", "coalesced", "cached", "pushed", "429s"
    )?;
    for ((vehicle, tool), c) in &totals {
        writeln!(
            out,
            "{:<40} {:<28} {:>8} {:>9} {:>7} {:>6} {:>5}",
            if vehicle.is_empty() { "-" } else { vehicle },
            tool,
            c.upstream_calls,
            c.coalesced,
            c.cached,
            c.pushed,
            c.rate_limited
        )?;
    }
    let t = &report["total"];
    writeln!(
        out,
        "total: {} upstream calls made, {} saved",
        t["upstream_calls"], report["saved"]
    )?;
    Ok(())
}

/// Serving MCP: over stdio, or over Streamable HTTP when `http` names an address.
pub async fn serve(o: &Options, http: Option<&str>) -> anyhow::Result<()> {
    let allowed_hosts = &o.allowed_hosts;
    let enabled = enabled_tools(o)?;
    let (settings, sim) = settings_for(o).await?;
    let up = &settings.upstream;
    if (up.client_id.is_none() || up.client_secret.is_none()) && !settings.serving.dry_run {
        tracing::warn!(
            "SMARTCAR_CLIENT_ID or SMARTCAR_CLIENT_SECRET is not set: tools are listed, and each call will say what is missing"
        );
    }
    if http.is_none() && settings.serving.oauth.is_some() {
        // stdio is the operator's own client (the MCP spec: stdio takes its credentials from the
        // environment), so there is no token to check.
        tracing::warn!("--oauth-issuer applies to `serve --http` only; stdio serving ignores it");
    }
    let webhook_addr = settings.serving.webhook_addr.clone();
    let token = settings.serving.management_token.clone();
    let shared = Shared::new(settings, &enabled)?;
    // A shared store connects, migrates and takes this replica's lock now: unreachable, the
    // server says so (the URL without its password) and exits instead of refusing every command.
    shared.app.store.ready().await?;
    if let Some((url, replica)) = shared.app.store.shared_as() {
        tracing::info!(store = url, replica, "state shared through PostgreSQL");
    }
    let receiver = match (http, webhook_addr.as_deref()) {
        (None, Some(addr)) => {
            let hosts = mcp::http::host_allow_list(allowed_hosts)?;
            Some(mcp::webhook::listen(shared.clone(), addr, hosts).await?)
        }
        // Known before binding only when the port is; a port of 0 leaves the simulator silent.
        (Some(addr), _) => addr
            .parse::<std::net::SocketAddr>()
            .ok()
            .filter(|a| a.port() != 0)
            .map(|a| format!("http://{a}{}", mcp::webhook::WEBHOOK_PATH)),
        (None, None) => None,
    };
    if token.is_some() && (http.is_some() || webhook_addr.is_some()) {
        mcp::webhook::reopen_verify_window_on_sighup(shared.clone());
    }
    // With --simulator, the simulator pushes its state changes to this server's own receiver.
    if let (Some(sim), Some(url), Some(token)) = (&sim, receiver, token) {
        sim.deliver_webhooks(&url, token.expose());
    }
    match http {
        Some(addr) => mcp::http::serve(shared, addr, allowed_hosts).await,
        None => mcp::serve_stdio(shared).await,
    }
}

/// `doctor`: every check against Smartcar (or, with `--simulator`, a fresh in-process simulator),
/// the report on `out`, the question before billed calls on stderr with the answer read from
/// stdin. Exit 0 when no check failed, 1 when one did.
pub async fn doctor(
    out: &mut impl Write,
    o: &Options,
    opts: &crate::doctor::DoctorOptions,
    yes: bool,
) -> anyhow::Result<ExitCode> {
    let (settings, sim) = settings_for(o).await?;
    let confirm = |question: &str| {
        let mut err = std::io::stderr().lock();
        if yes {
            let _ = writeln!(err, "{question} (--yes: going ahead)");
            return true;
        }
        let _ = write!(err, "{question} Make them? [y/N] ");
        let _ = err.flush();
        let mut answer = String::new();
        // No terminal or an empty answer is a no: nothing billed without a clear yes.
        match std::io::stdin().read_line(&mut answer) {
            Ok(_) => matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"),
            Err(_) => false,
        }
    };
    let report = crate::doctor::check(&settings, opts, confirm).await;
    if opts.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report.to_json())?)?;
    } else {
        report.write_text(out)?;
    }
    out.flush()?;
    if let Some(sim) = sim {
        sim.shutdown();
    }
    Ok(if report.failed() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

//! The `smartcar-mcp` binary: parses the command line, sends logs to stderr, runs the chosen mode.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;

use smartcar_mcp::catalogue::{SIGNALS, TOOLS};
use smartcar_mcp::config::{Cli, Command, ConfirmMode, Options, Settings};
use smartcar_mcp::server::{self, Shared};
use smartcar_mcp::{dispatch, selection, simulator};

fn enabled_tools(o: &Options) -> anyhow::Result<Vec<usize>> {
    selection::select(&o.toolsets, &o.tools, &o.exclude_tools, o.read_only)
        .map_err(anyhow::Error::msg)
}

/// Settings from the options; with `--simulator`, pointed at a fresh in-process simulator.
async fn settings_for(o: &Options) -> anyhow::Result<(Settings, Option<simulator::Simulator>)> {
    let mut settings = Settings::from_options(o);
    if !o.simulator {
        return Ok((settings, None));
    }
    let sim = simulator::Simulator::start(simulator::SimConfig::default()).await?;
    eprintln!(
        "smartcar-mcp: using the built-in Smartcar simulator at {} (any SMARTCAR_* URLs and credentials are ignored)",
        sim.api_url()
    );
    settings.auth_url = sim.auth_url();
    settings.api_url = sim.api_url();
    settings.management_api_url = sim.management_url();
    settings.client_id = Some("simulator-client".into());
    settings.client_secret = Some(smartcar_mcp::config::Secret::new("simulator-secret"));
    Ok((settings, Some(sim)))
}

fn print_tools(json: bool, enabled: &[usize]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&server::tools_json(enabled))?
        )?;
        return Ok(());
    }
    for i in enabled {
        let t = &TOOLS[*i];
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

fn print_signals(group: Option<&str>) -> anyhow::Result<()> {
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
    let mut out = std::io::stdout().lock();
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

fn ask_on_terminal(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).is_ok()
        && matches!(line.trim(), "y" | "Y" | "yes" | "YES")
}

async fn call(o: &Options, tool: &str, raw: &str) -> anyhow::Result<ExitCode> {
    let enabled = enabled_tools(o)?;
    let Some(index) = smartcar_mcp::catalogue::tool_index(tool).filter(|i| enabled.contains(i))
    else {
        anyhow::bail!(
            "unknown tool `{tool}` (tools: {})",
            enabled
                .iter()
                .map(|i| TOOLS[*i].name)
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    let args: serde_json::Value =
        serde_json::from_str(raw).map_err(|e| anyhow::anyhow!("arguments are not JSON: {e}"))?;
    let Some(args) = args.as_object() else {
        anyhow::bail!("arguments must be a JSON object, like '{{\"vehicle_id\": \"...\"}}'");
    };
    let (settings, _sim) = settings_for(o).await?;
    let shared = Shared::new(settings, &enabled)?;
    let result = match dispatch::validate(index, Some(args)) {
        Err(r) => r,
        Ok(args) if o.dry_run => dispatch::dry_run(&shared.exec, index, &args),
        Ok(args) => {
            let spec = &TOOLS[index];
            if spec.confirm && o.confirm == ConfirmMode::Required {
                let q = dispatch::confirmation_question(spec, &args);
                let yes = std::io::stdin().is_terminal() && ask_on_terminal(&q);
                if !yes {
                    anyhow::bail!(
                        "{q} was not confirmed, so nothing was sent (confirm on a terminal, or pass --confirm off)"
                    );
                }
            }
            dispatch::execute(&shared.exec, index, &args).await
        }
    };
    let mut out = std::io::stdout().lock();
    for t in result.text.iter().take(result.text.len().saturating_sub(1)) {
        writeln!(out, "{t}")?;
    }
    writeln!(out, "{}", serde_json::to_string_pretty(&result.structured)?)?;
    Ok(if result.is_error {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let o = &cli.opts;
    match &cli.command {
        Some(Command::Tools { json }) => print_tools(*json, &enabled_tools(o)?)?,
        Some(Command::Signals { group }) => print_signals(group.as_deref())?,
        Some(Command::Call { tool, args }) => return call(o, tool, args).await,
        Some(Command::Simulator { port }) => {
            simulator::run_standalone(*port, |banner| {
                // The banner is this subcommand's output; stdout is not an MCP channel here.
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{banner}");
                let _ = out.flush();
            })
            .await?
        }
        Some(Command::Demo) => return smartcar_mcp::demo::run().await,
        None | Some(Command::Serve { .. }) => {
            let enabled = enabled_tools(o)?;
            let (settings, _sim) = settings_for(o).await?;
            if (settings.client_id.is_none() || settings.client_secret.is_none())
                && !settings.dry_run
            {
                tracing::warn!(
                    "SMARTCAR_CLIENT_ID or SMARTCAR_CLIENT_SECRET is not set: tools are listed, and each call will say what is missing"
                );
            }
            let shared = Shared::new(settings, &enabled)?;
            match &cli.command {
                Some(Command::Serve {
                    http: Some(addr),
                    allowed_hosts,
                }) => smartcar_mcp::http::serve(shared, addr, allowed_hosts).await?,
                _ => server::serve_stdio(shared).await?,
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    smartcar_mcp::config::init_logging();
    // Serving stdio, one thread does the work: on 2 cores it measured faster and leaner than the
    // multi-threaded scheduler (benches/e2e.rs); HTTP serving keeps every core.
    let stdio = matches!(cli.command, None | Some(Command::Serve { http: None, .. }));
    let mut builder = if stdio {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("smartcar-mcp: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("smartcar-mcp: {e:#}");
            ExitCode::from(2)
        }
    }
}
